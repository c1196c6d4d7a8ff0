package vit

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/safetensors"
)

// Bad folders are refused with an error naming the file and the field or
// tensor, before anything the config asks for is allocated.
func TestLoadRefusesBadFolders(t *testing.T) {
	be := cpu.New()
	good := t.TempDir()
	m, err := New(be, tiny(MAE), 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Save(good); err != nil {
		t.Fatal(err)
	}
	cfg, _ := os.ReadFile(filepath.Join(good, "config.json"))
	weightsFile, _ := os.ReadFile(filepath.Join(good, "model.safetensors"))
	for _, tc := range []struct {
		name, from, to, want string
		nan                  bool
	}{
		{name: "huge hidden", from: `"hidden_size": 8`, to: `"hidden_size": 4096`, want: `"hidden_size"`},
		{name: "huge image", from: `"image_size": 8`, to: `"image_size": 16384`, want: `"image_size"`},
		{name: "more layers", from: `"num_hidden_layers": 2`, to: `"num_hidden_layers": 900`, want: `"num_hidden_layers" is 900, but model.safetensors has 2 layers`},
		{name: "decoder", from: `"decoder_intermediate_size": 8`, to: `"decoder_intermediate_size": 80000`, want: `"decoder_intermediate_size"`},
		{name: "heads", from: `"num_attention_heads": 2`, to: `"num_attention_heads": 3`, want: `"num_attention_heads" 3`},
		{name: "activation", from: `"hidden_act": "gelu"`, to: `"hidden_act": "swish"`, want: `"hidden_act" "swish"`},
		{name: "eps", from: `"layer_norm_eps": 1e-12`, to: `"layer_norm_eps": -1`, want: `"layer_norm_eps"`},
		{name: "mask ratio", from: `"mask_ratio": 0.5`, to: `"mask_ratio": 1`, want: `"mask_ratio"`},
		{name: "type", from: `"model_type": "vit_mae"`, to: `"model_type": "resnet"`, want: `model_type "resnet"`},
		{name: "json", from: `{`, to: `[`, want: "config.json"},
		{name: "nan", nan: true, want: "NaN or infinite"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c := strings.Replace(string(cfg), tc.from, tc.to, 1)
			if tc.from != "" && c == string(cfg) {
				t.Fatalf("%q not in config.json:\n%s", tc.from, cfg)
			}
			os.WriteFile(filepath.Join(dir, "config.json"), []byte(c), 0o644)
			w := weightsFile
			if tc.nan {
				nm, _ := New(be, tiny(MAE), 1)
				b := make([]float32, nm.Decoder.Pred.Bias.Len())
				b[1] = float32(math.NaN())
				nm.Decoder.Pred.Bias.Set(b)
				if err := nm.Save(dir); err != nil {
					t.Fatal(err)
				}
			} else {
				os.WriteFile(filepath.Join(dir, safetensors.ModelFile), w, 0o644)
			}
			_, err := Load(be, dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load: %v, want an error containing %q", err, tc.want)
			}
			if !tc.nan && !strings.Contains(err.Error(), "config.json") {
				t.Errorf("error %q does not name config.json", err)
			}
		})
	}
}
