package serve

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data/synth"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/tokenizer"
)

// modelDirs are tiny random models written once for all tests, by
// architecture: a BPE tokenizer trained on golem's synthetic corpus (with
// the ChatML specials) and a gpt.New model, saved as a Hugging Face folder.
var modelDirs = map[string]string{}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	dir, err := os.MkdirTemp("", "golem-serve-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		tok, err := tokenizer.Train(tokenizer.TrainOptions{
			Texts:     []string{synth.Corpus(synth.CorpusOptions{Seed: 1, Bytes: 60000})},
			VocabSize: 400, Workers: 1,
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		for i, arch := range []string{"llama", "gpt2"} {
			d := filepath.Join(dir, "tiny-"+arch)
			if err := writeTinyModel(d, arch, tok, uint64(i+1)); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			modelDirs[arch] = d
		}
		return m.Run()
	}()
	os.Exit(code)
}

// writeTinyModel saves a random model of architecture arch with tok.
func writeTinyModel(dir, arch string, tok *tokenizer.Tokenizer, seed uint64) error {
	// llama has room for long answers; gpt2's learned positions stop at 96.
	ctx := 1024
	if arch == "gpt2" {
		ctx = 96
	}
	cfg := gpt.Config{Arch: arch, Vocab: tok.VocabSize(), Context: ctx, Layers: 2, Heads: 4, KVHeads: 2,
		Hidden: 32, Intermediate: 64, Eps: 1e-5, RopeTheta: 10000, BOS: -1, EOS: -1}
	if arch == "gpt2" {
		cfg.KVHeads, cfg.Bias, cfg.Activation, cfg.Tied = 4, true, "gelu_new", true
	}
	m, err := gpt.New(cpu.New(), cfg, seed)
	if err != nil {
		return err
	}
	if err := m.Save(dir); err != nil {
		return err
	}
	return tok.Save(dir)
}

// tinyDir returns the folder of the tiny model of arch.
func tinyDir(t testing.TB, arch string) string {
	d, ok := modelDirs[arch]
	if !ok {
		t.Fatalf("no tiny %s model", arch)
	}
	return d
}
