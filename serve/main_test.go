package serve

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data/synth"
	"github.com/golem-ml/golem/internal/memtmp"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/llama"
	"github.com/golem-ml/golem/model/llava"
	"github.com/golem-ml/golem/model/vit"
	"github.com/golem-ml/golem/store"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// modelDirs are tiny random models written once for all tests, by
// architecture: a BPE tokenizer trained on golem's synthetic corpus (with
// the ChatML specials) and a gpt.New model, saved as a Hugging Face folder.
var modelDirs = map[string]string{}

// testDir holds the models TestMain writes, removed when the tests end.
var testDir string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		// Argon2id at 64 KiB and 1 pass for the accounts made and the
		// logins, as store's short tests hash: OWASP's cost was a third of
		// the package's CPU. The full run hashes at OWASP's.
		store.CheapPasswordsForTests()
	}
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	// The clock-bound tests (clockBound) wait together, not one after
	// another: more of them at once than -parallel's default (the cores).
	if !flagSet("test.parallel") {
		flag.Set("test.parallel", "16")
	}
	// Temporary folders in memory where there is room (memtmp.Use): the
	// servers' stores and checkpoints sync every write.
	done := memtmp.Use("serve")
	dir, err := os.MkdirTemp("", "golem-serve-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testDir = dir
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
		d := filepath.Join(dir, "tiny-llava")
		if err := writeTinyLLaVA(d, tok); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		modelDirs["llava"] = d
		// "same" says "yes" whatever it is asked; "two" says "yes" or
		// "no", then the same again.
		for name, words := range map[string][]string{"same": {"yes"}, "two": {"yes", "no"}} {
			d := filepath.Join(dir, "tiny-"+name)
			if err := writeFixedModel(d, tok, words...); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			modelDirs[name] = d
		}
		return m.Run()
	}()
	done()
	os.Exit(code)
}

// clockBound marks a test that mostly waits on the clock (a reload
// settling, a timeout or keep_alive running out, a child server starting,
// a fixed pause) and little on the CPU: it runs in parallel with the
// other clock-bound tests, after the package's other tests, so that their
// waits overlap (13 s of serve's 28 s alone on 2 idle cores were waits).
// Each still waits for the event it checks, as long as that takes.
func clockBound(t *testing.T) { t.Parallel() }

// flagSet reports whether the flag name was given on the command line.
func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
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

// writeTinyLLaVA saves a random LLaVA model with tok: a CLIP tower on 16
// x 16 images of 8 x 8 patches (4 image tokens) and a small Llama.
func writeTinyLLaVA(dir string, tok *tokenizer.Tokenizer) error {
	be := cpu.New()
	v, err := vit.New(be, vit.Config{Arch: vit.CLIP, Image: 16, Patch: 8, Channels: 3, Hidden: 16, Layers: 1, Heads: 2,
		Intermediate: 32, Activation: "gelu", Eps: 1e-5}, 3)
	if err != nil {
		return err
	}
	lm, err := gpt.New(be, gpt.Config{Arch: "llama", Vocab: tok.VocabSize(), Context: 256, Layers: 2, Heads: 4, KVHeads: 2,
		Hidden: 32, Intermediate: 64, Eps: 1e-5, RopeTheta: 10000, BOS: -1, EOS: -1}, 4)
	if err != nil {
		return err
	}
	m, err := llava.New(v, lm, -1, 5)
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

// writeFixedModel saves a llama that says the first token of one of words
// again and again, whatever it is asked and however hot it is sampled, as
// a well-trained small model repeats its one answer: its blocks add nothing
// to the residual stream (zero output projections), every token embeds to
// the same vector, and the head gives those tokens a logit 320 above every
// other.
func writeFixedModel(dir string, tok *tokenizer.Tokenizer, words ...string) error {
	var ids []int
	for _, w := range words {
		ids = append(ids, tok.Encode(w)[0])
	}
	return writeFixedModelIDs(dir, tok, 256, ids...)
}

// writeFixedModelIDs is writeFixedModel saying one of the tokens ids, with
// a context of ctx.
func writeFixedModelIDs(dir string, tok *tokenizer.Tokenizer, ctx int, ids ...int) error {
	be := cpu.New()
	cfg := gpt.Config{Arch: "llama", Vocab: tok.VocabSize(), Context: ctx, Layers: 1, Heads: 2, KVHeads: 1,
		Hidden: 32, Intermediate: 64, Eps: 1e-5, RopeTheta: 10000, BOS: -1, EOS: -1}
	m, err := gpt.New(be, cfg, 1)
	if err != nil {
		return err
	}
	C, V := cfg.Hidden, cfg.Vocab
	for _, b := range m.Body.(*llama.Model).Blocks {
		b.O.Weight = tensor.New(be, b.O.Weight.Shape()...)
		b.Down.Weight = tensor.New(be, b.Down.Weight.Shape()...)
	}
	m.Embed.Weight = tensor.FromHost(be, slices.Repeat([]float32{1}, V*C), V, C)
	head := make([]float32, V*C) // [V, C]
	for _, id := range ids {
		for c := range C {
			head[id*C+c] = 10
		}
	}
	m.Head.Weight = tensor.FromHost(be, head, V, C)
	if err := m.Save(dir); err != nil {
		return err
	}
	return tok.Save(dir)
}
