package serve

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/golem-ml/golem/internal/testmodels"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/generate"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tokenizer"
)

// A prompt-tuning adapter served: its virtual tokens go before every
// prompt of a left-padded batch prefill (the batch cache's lead columns),
// and each sequence, of whatever length, through a cache that grows, gets
// what generate gives it alone with the soft prompt.
func TestEngineSoftPrompt(t *testing.T) {
	for _, arch := range []string{"llama", "gpt2"} {
		t.Run(arch, func(t *testing.T) {
			base, dir := tinyDir(t, arch), filepath.Join(t.TempDir(), "pt")
			m, err := gpt.Load(cpu.New(), base)
			if err != nil {
				t.Fatal(err)
			}
			sp := nn.NewSoftPrompt(nn.NewInit(cpu.New(), 3), 5, m.Config.Hidden, m.Embed.Weight)
			if err := m.SavePromptTuning(dir, sp, base); err != nil {
				t.Fatal(err)
			}
			w, err := LoadWeights(cpu.New(), dir)
			if err != nil {
				t.Fatal(err)
			}
			if w.SoftPrompt == nil || w.Context != m.Config.Context-5 {
				t.Fatalf("soft prompt %v, context %d of the model's %d", w.SoftPrompt, w.Context, m.Config.Context)
			}
			w.Stop = nil // every answer runs to its max tokens
			e := &Engine{Name: "pt"}
			e.opts.defaults()
			e.opts.FloatKV = true
			newSeq := func(text string, n int) *seq {
				s := Sampling{MaxTokens: n}
				return &seq{ctx: context.Background(), prompt: w.Tok.Encode(text), s: s, samp: newSampler(s), out: make(chan Event, n+2)}
			}
			first := []*seq{newSeq("a", 70), newSeq("a longer prompt, padded less", 20), newSeq("mid length", 5)}
			var bt batch
			e.step(w, &bt, first)
			for !first[2].done {
				e.step(w, &bt, nil)
			}
			late := []*seq{newSeq("joins later", 8), newSeq("x", 8)}
			e.step(w, &bt, late)
			for len(bt.active) > 0 {
				e.step(w, &bt, nil)
			}
			for i, s := range append(first, late...) {
				want, err := generate.Tokens(w.Model, [][]int{s.prompt}, generate.Options{MaxTokens: s.s.MaxTokens, SoftPrompt: w.SoftPrompt}, nil)
				if err != nil {
					t.Fatal(err)
				}
				plain, _ := generate.Tokens(w.Model, [][]int{s.prompt}, generate.Options{MaxTokens: s.s.MaxTokens}, nil)
				got, _ := collect(t, s.out)
				if !slices.Equal(got, want[0]) {
					t.Errorf("sequence %d: %v, alone with the soft prompt %v (without it %v)", i, got, want[0], plain[0])
				}
			}
			if st := e.Stats(); st.Grows < 1 || st.PrefillTokens == 0 {
				t.Errorf("stats %+v: want the cache to grow with soft-prompted sequences in it", st)
			}
			bt.release()
		})
	}
}

// loraOver writes a LoRA adapter over the model folder base with random
// matrices drawn from seed (rank 4 on every linear layer), and the model
// it merges into (a folder with the base's tokenizer); it returns both.
func loraOver(t *testing.T, base string, seed uint64) (adapter, merged string) {
	t.Helper()
	m, err := gpt.Load(cpu.New(), base)
	if err != nil {
		t.Fatal(err)
	}
	c := gpt.LoRAConfig{R: 4, Alpha: 8, Targets: []string{"all-linear"}}
	ps, err := m.AttachLoRA(c, seed)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 9))
	for _, p := range ps {
		x := p.Tensor.Host()
		for i := range x {
			x[i] = float32(r.NormFloat64() * 0.3)
		}
		p.Tensor.Set(x)
	}
	adapter, merged = t.TempDir(), t.TempDir()
	if err := m.SaveLoRA(adapter, c, base); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(base)
	if err != nil {
		t.Fatal(err)
	}
	m.MergeLoRA()
	if err := m.Save(merged); err != nil {
		t.Fatal(err)
	}
	if err := tok.Save(merged); err != nil {
		t.Fatal(err)
	}
	return adapter, merged
}

// Several LoRA adapters over one base, served with it, hold the base's
// weights once: the adapters' models read the base model's very tensors
// (their layers are their own, their LoRA unmerged), and loading two
// adapters after the base takes the backend their LoRA matrices' bytes,
// not a base's each. Each adapter's engine (adapters are batched each in
// its own engine) decodes what the merged model decodes, its logits within
// 1e-5 of the merged model's; reloading one adapter folder reads that
// adapter alone (the base's tensors and the other adapter's weights stay).
func TestAdaptersShareBase(t *testing.T) {
	for _, arch := range []string{"llama", "gpt2"} {
		t.Run(arch, func(t *testing.T) {
			base := tinyDir(t, arch)
			a0, m0 := loraOver(t, base, 1)
			a1, m1 := loraOver(t, base, 2)
			be := cpu.New()
			live := func() int64 { return be.MemStats().Live }
			l0 := live()
			wb, err := LoadWeights(be, base)
			if err != nil {
				t.Fatal(err)
			}
			l1 := live()
			w0, err := LoadWeights(be, a0)
			if err != nil {
				t.Fatal(err)
			}
			w1, err := LoadWeights(be, a1)
			if err != nil {
				t.Fatal(err)
			}
			l2 := live()
			var loraBytes int64
			for _, w := range []*Weights{w0, w1} {
				for _, p := range w.Model.LoRAParams() {
					loraBytes += 4 * int64(p.Tensor.Len())
				}
			}
			t.Logf("base %d bytes; two adapters %d more (their LoRA matrices: %d)", l1-l0, l2-l1, loraBytes)
			if loraBytes == 0 || l2-l1 > 2*loraBytes || l2-l1 >= (l1-l0)/2 {
				t.Errorf("loading two adapters over a base of %d bytes took %d more, their LoRA matrices %d", l1-l0, l2-l1, loraBytes)
			}
			basePs := wb.Model.Params()
			for _, w := range []*Weights{w0, w1} {
				for i, p := range w.Model.Params() {
					if p.Tensor != basePs[i].Tensor {
						t.Fatalf("%s is a copy of the base's", p.Name)
					}
				}
			}
			be2 := cpu.New()
			prompt := wb.Tok.Encode("the cat sat on")
			wants := map[*Weights][]int{}
			for i, c := range []struct {
				w      *Weights
				dir    string
				merged string
			}{{w0, a0, m0}, {w1, a1, m1}} {
				mm, err := gpt.Load(be2, c.merged)
				if err != nil {
					t.Fatal(err)
				}
				want, err := generate.Tokens(mm, [][]int{prompt}, generate.Options{MaxTokens: 12}, nil)
				if err != nil {
					t.Fatal(err)
				}
				plain, _ := generate.Tokens(wb.Model, [][]int{prompt}, generate.Options{MaxTokens: 12}, nil)
				c.w.Stop = nil
				e := NewEngine(fmt.Sprint("a", i), c.dir, c.w, EngineOptions{FloatKV: true})
				ch, err := e.Submit(context.Background(), prompt, Sampling{MaxTokens: 12})
				if err != nil {
					t.Fatal(err)
				}
				got, _ := collect(t, ch)
				e.Close()
				if !slices.Equal(got, want[0]) {
					t.Errorf("adapter %d served %v, the merged model %v (the base %v)", i, got, want[0], plain[0])
				}
				wants[c.w], wants[wb] = want[0], plain[0]
				lw, lm, lb := testmodels.Logits(c.w.Model, prompt), testmodels.Logits(mm, prompt), testmodels.Logits(wb.Model, prompt)
				if e := testmodels.RelDiff(lw, lm); e > 1e-5 {
					t.Errorf("adapter %d: logits %.2g off the merged model's", i, e)
				}
				if testmodels.RelDiff(lb, lm) < 1e-3 {
					t.Errorf("adapter %d changes the base's logits by less than 1e-3", i)
				}
			}
			// The base and both adapters decoding at once, on the shared
			// tensors (go test -race checks that nothing is written).
			// Every request is submitted before any is read: the engines
			// decode together (each answer's channel holds all its tokens).
			wb.Stop = nil
			type req struct {
				i  int
				ch <-chan Event
			}
			var reqs []req
			for i, w := range []*Weights{wb, w0, w1} {
				e := NewEngine(fmt.Sprint("m", i), "", w, EngineOptions{FloatKV: true})
				defer e.Close()
				for range 2 {
					ch, err := e.Submit(context.Background(), prompt, Sampling{MaxTokens: 12})
					if err != nil {
						t.Fatal(err)
					}
					reqs = append(reqs, req{i, ch})
				}
			}
			for _, r := range reqs {
				w := []*Weights{wb, w0, w1}[r.i]
				if got, _ := collect(t, r.ch); !slices.Equal(got, wants[w]) {
					t.Errorf("model %d decoding beside the others: %v, alone %v", r.i, got, wants[w])
				}
			}
			// Reload one adapter folder: new matrices, the same base.
			e0, e1 := NewEngine("a0", a0, w0, EngineOptions{}), NewEngine("a1", a1, w1, EngineOptions{})
			defer e0.Close()
			defer e1.Close()
			loraOverInto(t, base, a0, 3)
			if ok, err := e0.Reload(true); !ok || err != nil {
				t.Fatalf("reload: %v, %v", ok, err)
			}
			n0 := e0.Weights()
			if n0 == w0 || slices.Equal(n0.Model.LoRAParams()[1].Tensor.Host(), w0.Model.LoRAParams()[1].Tensor.Host()) {
				t.Error("the reloaded adapter has the old matrices")
			}
			for i, p := range n0.Model.Params() {
				if p.Tensor != basePs[i].Tensor {
					t.Fatalf("reloading the adapter read the base again (%s)", p.Name)
				}
			}
			if e1.Weights() != w1 {
				t.Error("reloading one adapter swapped the other's weights")
			}
		})
	}
}

// loraOverInto rewrites the adapter folder dir over base with matrices
// drawn from seed.
func loraOverInto(t *testing.T, base, dir string, seed uint64) {
	t.Helper()
	a, _ := loraOver(t, base, seed)
	for _, f := range []string{gpt.AdapterConfigFile, gpt.AdapterModelFile} {
		b, err := os.ReadFile(filepath.Join(a, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// With --dtype bf16 the bases are shared too, keyed on the folder and the
// dtype: two bf16 adapters loaded after their base in bf16 read its very
// tensors (its matrices bfloat16; their LoRA float32, unmerged), each
// within bfloat16's rounding of its merged model's logits and changing
// the base's; a float32 load of the same folder is another base.
func TestAdaptersShareBF16Base(t *testing.T) {
	for _, arch := range []string{"llama", "gpt2"} {
		t.Run(arch, func(t *testing.T) {
			base := tinyDir(t, arch)
			a0, m0 := loraOver(t, base, 1)
			a1, _ := loraOver(t, base, 2)
			be := cpu.New()
			load := func(dir string, bf16 bool) *Weights {
				w, err := LoadWeightsAs(be, dir, bf16)
				if err != nil {
					t.Fatal(err)
				}
				return w
			}
			wb, w0, w1, wf := load(base, true), load(a0, true), load(a1, true), load(base, false)
			if len(wb.Model.Quantized()) == 0 {
				t.Fatal("the bf16 base has no bfloat16 matrix")
			}
			basePs := wb.Model.Params()
			for _, w := range []*Weights{w0, w1} {
				if len(w.Model.LoRAParams()) == 0 {
					t.Fatal("a bf16 adapter was read merged, not over the shared base")
				}
				for i, p := range w.Model.Params() {
					if p.Tensor != basePs[i].Tensor {
						t.Fatalf("%s is a copy of the bf16 base's", p.Name)
					}
				}
			}
			for i, p := range wf.Model.Params() {
				if p.Tensor == basePs[i].Tensor {
					t.Fatalf("the float32 load of %s shares the bf16 base's %s", base, p.Name)
				}
			}
			mm, err := gpt.Load(cpu.New(), m0)
			if err != nil {
				t.Fatal(err)
			}
			prompt := wb.Tok.Encode("the cat sat on")
			lw, lm, lb := testmodels.Logits(w0.Model, prompt), testmodels.Logits(mm, prompt), testmodels.Logits(wb.Model, prompt)
			if e := testmodels.RelDiff(lw, lm); e > 0.05 {
				t.Errorf("bf16 adapter: logits %.2g off the merged model's, more than bfloat16's rounding", e)
			}
			if testmodels.RelDiff(lb, lw) < 1e-3 {
				t.Error("the bf16 adapter changes the base's logits by less than 1e-3")
			}
		})
	}
}
