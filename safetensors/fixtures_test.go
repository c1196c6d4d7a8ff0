package safetensors

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/golem-ml/golem/internal/shared"
)

var fixtureModels = []string{"gpt2-tiny", "llama-tiny", "qwen2-tiny", "clip-tiny"}

// TestFixtures reads the checkpoints transformers wrote and checks names,
// dtypes and shapes against config.json, and that values are sane.
func TestFixtures(t *testing.T) {
	for _, m := range fixtureModels {
		t.Run(m, func(t *testing.T) {
			dir := shared.Path(t, filepath.Join("fixtures/hf", m))
			var cfg map[string]any
			raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(raw, &cfg); err != nil {
				t.Fatal(err)
			}
			f, err := Open(filepath.Join(dir, "model.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if got := f.Metadata()["format"]; got != "pt" {
				t.Errorf("metadata format = %q, want pt", got)
			}
			names := f.Names()
			if len(names) < 20 {
				t.Fatalf("only %d tensors", len(names))
			}
			for i := 1; i < len(names); i++ {
				if names[i-1] >= names[i] {
					t.Fatalf("names not sorted: %q before %q", names[i-1], names[i])
				}
			}
			for _, name := range names {
				info, ok := f.Info(name)
				if !ok || info.DType != F32 {
					t.Fatalf("%s: info %+v, %v", name, info, ok)
				}
				v, shape, err := f.Float32(name)
				if err != nil {
					t.Fatal(err)
				}
				if n := numel(shape); n != len(v) || n == 0 {
					t.Fatalf("%s: %d values for shape %v", name, len(v), shape)
				}
				for i, x := range v {
					if math.IsNaN(float64(x)) || math.Abs(float64(x)) > 100 {
						t.Fatalf("%s[%d] = %v", name, i, x)
					}
				}
			}
			// Embedding shape and a norm initialised to ones, per architecture.
			var emb, norm string
			var vocab, width int
			switch m {
			case "gpt2-tiny":
				emb, norm = "transformer.wte.weight", "transformer.ln_f.weight"
				vocab, width = num(cfg["vocab_size"]), num(cfg["n_embd"])
			case "clip-tiny":
				tc := cfg["text_config"].(map[string]any)
				emb, norm = "text_model.embeddings.token_embedding.weight", "text_model.final_layer_norm.weight"
				vocab, width = num(tc["vocab_size"]), num(tc["hidden_size"])
			default:
				emb, norm = "model.embed_tokens.weight", "model.norm.weight"
				vocab, width = num(cfg["vocab_size"]), num(cfg["hidden_size"])
			}
			info, ok := f.Info(emb)
			if !ok || !slices.Equal(info.Shape, []int{vocab, width}) {
				t.Errorf("%s: info %+v %v, want shape [%d %d]", emb, info, ok, vocab, width)
			}
			ones, _, err := f.Float32(norm)
			if err != nil {
				t.Fatal(err)
			}
			for i, x := range ones {
				if x != 1 {
					t.Fatalf("%s[%d] = %v, want 1 (fresh norm weight)", norm, i, x)
				}
			}
			w, _, err := f.Float32(emb)
			if err != nil {
				t.Fatal(err)
			}
			var ss float64
			for _, x := range w {
				ss += float64(x) * float64(x)
			}
			if std := math.Sqrt(ss / float64(len(w))); std < 0.005 || std > 0.1 {
				t.Errorf("%s: std %v, want about initializer_range 0.02", emb, std)
			}

			g, err := Open(filepath.Join(dir, "golden.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			ids, shape, err := g.Int64("input_ids")
			if err != nil {
				t.Fatal(err)
			}
			if len(shape) != 2 || shape[0] != 2 {
				t.Errorf("input_ids shape %v", shape)
			}
			for i, id := range ids {
				if id < 0 || id >= int64(vocab) {
					t.Fatalf("input_ids[%d] = %d outside vocabulary %d", i, id, vocab)
				}
			}
			loss, _, err := g.Float32("loss")
			if err != nil {
				t.Fatal(err)
			}
			if len(loss) != 1 || !(loss[0] > 0 && loss[0] < 20) {
				t.Errorf("loss = %v", loss)
			}
			if _, _, err := g.Float32("input_ids"); err == nil {
				t.Error("Float32 of an I64 tensor: no error")
			}
			if _, _, err := g.Int64("loss"); err == nil {
				t.Error("Int64 of an F32 tensor: no error")
			}
		})
	}
}

// TestRewriteFixturesIdentical writes every fixture file back from its own
// tensors and checks the bytes equal what Python's safetensors wrote.
func TestRewriteFixturesIdentical(t *testing.T) {
	for _, m := range fixtureModels {
		for _, file := range []string{"model.safetensors", "golden.safetensors"} {
			path := shared.Path(t, filepath.Join("fixtures/hf", m, file))
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			var ts []Tensor
			names := f.Names()
			for i := len(names) - 1; i >= 0; i-- { // order must not matter
				raw, info, err := f.Raw(names[i])
				if err != nil {
					t.Fatal(err)
				}
				ts = append(ts, Tensor{Name: names[i], DType: info.DType, Shape: info.Shape, Data: raw})
			}
			out := filepath.Join(t.TempDir(), file)
			if err := Write(out, ts, f.Metadata()); err != nil {
				t.Fatal(err)
			}
			f.Close()
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s/%s: rewritten file differs (%d vs %d bytes)", m, file, len(got), len(want))
			}
		}
	}
}

func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}
