package serve

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/generate"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/nn"
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
