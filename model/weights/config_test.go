package weights_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golem-ml/golem/model/clip"
	"github.com/golem-ml/golem/model/dalle"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/llava"
	"github.com/golem-ml/golem/model/resnet"
	"github.com/golem-ml/golem/model/vit"
	"github.com/golem-ml/golem/model/vqvae"
	"github.com/golem-ml/golem/model/weights"
)

// loaders are every architecture's LoadConfig of a model folder: each
// reads config.json through weights.LoadConfig.
var loaders = map[string]func(dir string) error{
	"gpt":    func(dir string) error { _, err := gpt.LoadConfig(dir); return err },
	"vit":    func(dir string) error { _, err := vit.LoadConfig(dir); return err },
	"clip":   func(dir string) error { _, err := clip.LoadConfig(dir); return err },
	"llava":  func(dir string) error { _, err := llava.LoadConfig(dir); return err },
	"resnet": func(dir string) error { _, err := resnet.LoadConfig(dir); return err },
	"grid":   func(dir string) error { _, err := resnet.LoadGrid(nil, dir); return err },
	"vqvae":  func(dir string) error { _, err := vqvae.LoadConfig(dir); return err },
	"dalle":  func(dir string) error { _, err := dalle.LoadConfig(dir); return err },
	"peek":   func(dir string) error { _, err := weights.ModelType(dir); return err },
}

// A config.json over MaxConfigBytes is refused before it is read, by
// every architecture, naming the file (a sparse file: nothing is written).
func TestConfigBound(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, weights.ConfigFile)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(weights.MaxConfigBytes + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for name, load := range loaders {
		err := load(dir)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "limit") {
			t.Errorf("%s: a config.json of %d bytes: got %v, want the limit's error naming %s", name, weights.MaxConfigBytes+1, err, path)
		}
	}
	if clip.IsCLIP(dir) || llava.IsLLaVA(dir) || dalle.IsDalle(dir) || gpt.IsScorer(dir) || llava.IsScorer(dir) {
		t.Error("a config.json over the bound was taken for a model")
	}
	// PEFT's adapter_config.json has the same bound.
	a := filepath.Join(dir, gpt.AdapterConfigFile)
	if err := os.WriteFile(a, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(a, weights.MaxConfigBytes+1); err != nil {
		t.Fatal(err)
	}
	if _, err := gpt.ReadAdapterConfig(dir); err == nil || !strings.Contains(err.Error(), a) || !strings.Contains(err.Error(), "limit") {
		t.Errorf("an adapter_config.json of %d bytes: got %v, want the limit's error naming %s", weights.MaxConfigBytes+1, err, a)
	}
}

// A malformed config.json is an error naming the file and the line of a
// syntax error, or the field of a value of the wrong type.
func TestConfigMalformed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, weights.ConfigFile)
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("{\n  \"model_type\": \"gpt2\",\n  \"n_embd\": 8,,\n  \"n_layer\": 2\n}\n")
	for name, load := range loaders {
		if err := load(dir); err == nil || !strings.Contains(err.Error(), path+":3:") {
			t.Errorf("%s: a syntax error on line 3: got %v, want %s:3:", name, err, path)
		}
	}
	for _, tc := range []struct {
		name, json, field string
		load              func(string) error
	}{
		{"gpt", `{"model_type": "gpt2", "n_embd": "eight"}`, "n_embd", loaders["gpt"]},
		{"vit", `{"model_type": "vit", "hidden_size": "eight"}`, "hidden_size", loaders["vit"]},
		{"resnet", `{"model_type": "golem_resnet", "num_channels": "three"}`, "num_channels", loaders["resnet"]},
		{"resnet unknown field", `{"model_type": "golem_resnet", "num_chanels": 3}`, "num_chanels", loaders["resnet"]},
		{"clip text_config", `{"model_type": "clip", "text_config": {"hidden_size": "x"}}`, "hidden_size", loaders["clip"]},
	} {
		write(tc.json)
		err := tc.load(dir)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: %s: got %v, want an error naming %s and %q", tc.name, tc.json, err, path, tc.field)
		}
	}
	// A config.json path (not its folder) is read the same way.
	write(`{"model_type": "gpt2", "n_embd": "eight"}`)
	if _, err := gpt.LoadConfig(path); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%s: ", path)) {
		t.Errorf("gpt.LoadConfig(%s): got %v, want an error naming it", path, err)
	}
}
