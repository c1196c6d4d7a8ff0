// Package weights is the one path between a module's named parameters
// (nn.Params, named by nn tags after the Hugging Face checkpoint names) and
// a checkpoint: Fill sets every parameter from a safetensors file or model
// folder by name, checking shapes, refusing NaN or infinite values and
// tensors no parameter takes, so a mismatched checkpoint never loads
// half-way; Save writes them as one safetensors file. Every config.json is
// read through LoadConfig (bounded, errors naming the file and the line or
// field). Every architecture folder (model/gpt's decoders, model/vit,
// model/clip, model/llava, model/resnet, model/vqvae, model/dalle) loads
// and saves through it.
package weights

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/golem-ml/golem/internal/atomicfile"
	"github.com/golem-ml/golem/internal/regfile"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/safetensors"
)

// Source is a safetensors file or a (possibly sharded) model folder.
type Source interface {
	Names() []string
	Info(name string) (safetensors.TensorInfo, bool)
	Float32(name string) ([]float32, []int, error)
}

// Fill sets every parameter from st by name, checking shapes, and refuses
// tensors of st that no parameter takes unless extra accepts them (extra
// may be nil). Errors start with where (the file or folder).
func Fill(st Source, params []nn.Named, where string, extra func(name string) bool) error {
	want := map[string]bool{}
	for _, p := range params {
		want[p.Name] = true
		if err := Check(st, p.Name, p.Tensor.Shape(), where); err != nil {
			return err
		}
		data, _, err := st.Float32(p.Name)
		if err != nil {
			return err
		}
		if err := Finite(data, where, p.Name); err != nil {
			return err
		}
		p.Tensor.Set(data)
	}
	for _, n := range st.Names() {
		if !want[n] && (extra == nil || !extra(n)) {
			return fmt.Errorf("%s: unexpected tensor %q (another architecture or an adapter?)", where, n)
		}
	}
	return nil
}

// Check refuses a tensor name that st lacks or holds in another shape
// than the model's. Errors start with where.
func Check(st Source, name string, shape []int, where string) error {
	info, ok := st.Info(name)
	if !ok {
		return fmt.Errorf("%s: tensor %q missing", where, name)
	}
	if !slices.Equal(info.Shape, shape) {
		return fmt.Errorf("%s: tensor %q has shape %v, model wants %v", where, name, info.Shape, shape)
	}
	return nil
}

// Finite refuses data, the values of the tensor name, when one is NaN or
// infinite, naming it; the error starts with where (the file or folder).
func Finite(data []float32, where, name string) error {
	for i, x := range data {
		if x-x != 0 { // NaN and ±Inf; one subtraction is cheaper than two calls
			return fmt.Errorf("%s: tensor %q: element %d is %g; NaN or infinite weights are refused", where, name, i, x)
		}
	}
	return nil
}

// Save writes named tensors as one safetensors file (atomically).
func Save(path string, params []nn.Named, meta map[string]string) error {
	ts := make([]safetensors.Tensor, 0, len(params))
	for _, p := range params {
		ts = append(ts, safetensors.Tensor{Name: p.Name, Shape: slices.Clone(p.Tensor.Shape()), F32: p.Tensor.Host()})
	}
	return safetensors.Write(path, ts, meta)
}

// Layers returns the number of blocks a checkpoint holds: one more than
// the highest index i of a tensor named prefix + "i." (indices at or
// above limit are not counted).
func Layers(st Source, prefix string, limit int) int {
	n := 0
	for _, name := range st.Names() {
		if rest, ok := strings.CutPrefix(name, prefix); ok {
			i, _, _ := strings.Cut(rest, ".")
			if l, err := strconv.Atoi(i); err == nil && l >= 0 && l < limit {
				n = max(n, l+1)
			}
		}
	}
	return n
}

// Expect is a tensor whose shape a config fixes; Fields names the
// config.json fields that set it, for the error.
type Expect struct {
	Name   string
	Shape  []int
	Fields string
}

// CheckHeader checks that the checkpoint's header holds each tensor with
// its shape (no data is read), so that a config that passes allocates no
// more than the weights file holds. file names the checkpoint in errors.
func CheckHeader(st Source, file string, want []Expect) error {
	for _, e := range want {
		info, ok := st.Info(e.Name)
		if !ok {
			return fmt.Errorf("%s has no tensor %q (another architecture?)", file, e.Name)
		}
		if !slices.Equal(info.Shape, e.Shape) {
			return fmt.Errorf("%s make %q %v, but %s has it %v", e.Fields, e.Name, e.Shape, file, info.Shape)
		}
	}
	return nil
}

// SaveFolder writes a model folder (created if needed), each file
// atomically: config as dir/config.json (a struct, or the JSON an
// architecture writes as a json.RawMessage) and params as
// dir/model.safetensors. Every architecture saves through it.
func SaveFolder(dir string, config any, params []nn.Named) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cj, err := json.MarshalIndent(config, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, ConfigFile), append(cj, '\n')); err != nil {
		return err
	}
	return Save(filepath.Join(dir, safetensors.ModelFile), params, map[string]string{"format": "pt"})
}

// ConfigFile is the name of a model folder's config.
const ConfigFile = "config.json"

// MaxConfigBytes bounds a config.json (and a PEFT adapter_config.json): real
// ones hold a few KiB, so a larger file is a mistake or hostile, refused
// before it is read whole.
const MaxConfigBytes = 16 << 20

// ConfigPath returns path's config.json: path/config.json when path is a
// folder, else path itself.
func ConfigPath(path string) string {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return filepath.Join(path, ConfigFile)
	}
	return path
}

// LoadConfig reads path's config.json (ConfigPath: a model folder or the
// file itself), bounded by MaxConfigBytes, and parses it with parse.
// Errors name the file, and a JSON syntax error its line (JSONError).
// Every architecture's LoadConfig is this with its parse.
func LoadConfig[C any](path string, parse func([]byte) (C, error)) (C, error) {
	path = ConfigPath(path)
	var c C
	b, err := regfile.ReadFile(path, MaxConfigBytes)
	if err != nil {
		return c, err
	}
	if c, err = parse(b); err != nil {
		return c, JSONError(path, b, err)
	}
	return c, nil
}

// ReadConfig reads path's config.json (ConfigPath) into c (a pointer),
// strictly: unknown fields are errors; then it runs validate. Errors name
// the file (LoadConfig).
func ReadConfig(path string, c any, validate func() error) error {
	_, err := LoadConfig(path, func(b []byte) (struct{}, error) {
		d := json.NewDecoder(bytes.NewReader(b))
		d.DisallowUnknownFields()
		if err := d.Decode(c); err != nil {
			return struct{}{}, err
		}
		return struct{}{}, validate()
	})
	return err
}

// PeekConfig decodes path's config.json (ConfigPath) into v leniently,
// fields v lacks ignored: a folder's model_type, or whether it has
// num_labels, before its whole config is parsed.
func PeekConfig(path string, v any) error {
	_, err := LoadConfig(path, func(b []byte) (struct{}, error) { return struct{}{}, json.Unmarshal(b, v) })
	return err
}

// ModelType returns the model_type of path's config.json (ConfigPath).
func ModelType(path string) (string, error) {
	var head struct {
		ModelType string `json:"model_type"`
	}
	err := PeekConfig(path, &head)
	return head.ModelType, err
}

// JSONError names the file of err, an error parsing the JSON file path
// that holds b, and for a JSON syntax error its line (a value of the wrong
// type is named by its field in the error's own words).
func JSONError(path string, b []byte, err error) error {
	if se := (*json.SyntaxError)(nil); errors.As(err, &se) {
		line := 1 + bytes.Count(b[:min(int64(len(b)), max(se.Offset, 0))], []byte("\n"))
		return fmt.Errorf("%s:%d: %w", path, line, err)
	}
	return fmt.Errorf("%s: %w", path, err)
}

// FillFolder fills params, a model just built, from dir's checkpoint
// (model.safetensors or its shards): every tensor there with its shape, none
// more, nothing NaN or infinite (Fill). It fails too when the files changed
// while they were read.
func FillFolder(dir string, params []nn.Named) error {
	st, err := safetensors.OpenModel(dir)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := Fill(st, params, dir, nil); err != nil {
		return err
	}
	return st.Changed()
}
