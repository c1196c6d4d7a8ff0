package generate

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/internal/shared"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

func load(t *testing.T, name string) (*gpt.Model, *tokenizer.Tokenizer) {
	t.Helper()
	dir := shared.Path(t, filepath.Join("fixtures/hf", name))
	v, _ := loaded.LoadOrStore(name, &loadedModel{})
	l := v.(*loadedModel)
	l.once.Do(func() {
		if l.m, l.err = gpt.Load(cpu.New(), dir); l.err == nil {
			l.tok, l.err = tokenizer.Load(dir)
		}
	})
	if l.err != nil {
		t.Fatal(l.err)
	}
	return l.m, l.tok
}

// loaded holds each fixture load has read, read once per test binary (the
// tests only read the models; a GPT-2 tokenizer.json takes 0.2 s to read).
var loaded sync.Map // name -> *loadedModel

type loadedModel struct {
	once sync.Once
	m    *gpt.Model
	tok  *tokenizer.Tokenizer
	err  error
}

// A batch of prompts of different lengths (left-padded) must give each
// prompt the tokens it gets alone.
func TestBatchedEqualsSingle(t *testing.T) {
	for _, name := range []string{"gpt2-tiny", "llama-tiny", "qwen2-tiny"} {
		m, tok := load(t, name)
		prompts := [][]int{tok.Encode("Hello world, this is"), tok.Encode("A"), tok.Encode("The quick brown fox jumps over")}
		for _, o := range []Options{{MaxTokens: 8}, {MaxTokens: 8, Temperature: 0.9, TopK: 50, TopP: 0.9, RepetitionPenalty: 1.3, Seed: 5}} {
			batch, err := Tokens(m, prompts, o, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range prompts {
				oi := o
				oi.Seed = o.Seed + uint64(i)
				one, err := Tokens(m, [][]int{p}, oi, nil)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(one[0], batch[i]) {
					t.Errorf("%s %+v prompt %d: alone %v, in a batch %v", name, o, i, one[0], batch[i])
				}
				if len(batch[i]) != 8 {
					t.Errorf("%s: %d tokens, want 8", name, len(batch[i]))
				}
			}
		}
	}
}

func TestSamplingOptions(t *testing.T) {
	m, tok := load(t, "gpt2-tiny")
	p := [][]int{tok.Encode("Once upon a time")}
	greedy, _ := Tokens(m, p, Options{MaxTokens: 10}, nil)
	top1, _ := Tokens(m, p, Options{MaxTokens: 10, Temperature: 1, TopK: 1, Seed: 3}, nil)
	if !slices.Equal(greedy[0], top1[0]) {
		t.Errorf("top-k 1 %v differs from greedy %v", top1[0], greedy[0])
	}
	a, _ := Tokens(m, p, Options{MaxTokens: 10, Temperature: 1.5, Seed: 7}, nil)
	b, _ := Tokens(m, p, Options{MaxTokens: 10, Temperature: 1.5, Seed: 7}, nil)
	c, _ := Tokens(m, p, Options{MaxTokens: 10, Temperature: 1.5, Seed: 8}, nil)
	if !slices.Equal(a[0], b[0]) {
		t.Error("same seed, different samples")
	}
	if slices.Equal(a[0], c[0]) {
		t.Error("different seeds, same 10 samples from a random model at temperature 1.5")
	}
	// A stop token ends the sequence and is not returned.
	stopAt := greedy[0][3]
	s, _ := Tokens(m, p, Options{MaxTokens: 10, StopIDs: []int{stopAt}}, nil)
	if len(s[0]) != slices.Index(greedy[0], stopAt) {
		t.Errorf("stop token %d: got %v from %v", stopAt, s[0], greedy[0])
	}
	// Generation goes on past the context, as nanoGPT's does.
	long, err := Tokens(m, p, Options{MaxTokens: m.Config.Context + 20}, nil)
	if err != nil || len(long[0]) != m.Config.Context+20 {
		t.Errorf("past the context: %d tokens, %v", len(long[0]), err)
	}
	if _, err := Tokens(m, [][]int{make([]int, m.Config.Context+1)}, Options{}, nil); err == nil {
		t.Error("prompt longer than the context accepted")
	}
}

func TestStreamStopStringsAndUTF8(t *testing.T) {
	_, tok := load(t, "gpt2-tiny")
	text := "Hi! 你好 END and more"
	ids := tok.Encode(text)
	s := NewStream(tok, []string{"END"})
	var got strings.Builder
	for _, id := range ids {
		d := s.Add(id)
		if !strings.HasPrefix(text, got.String()+d) || !utf8.ValidString(d) {
			t.Fatalf("delta %q after %q is not a prefix of the text, or not whole characters", d, got.String())
		}
		got.WriteString(d)
		if s.Stopped {
			break
		}
	}
	got.WriteString(s.Flush())
	if got.String() != "Hi! 你好 " || s.Text() != "Hi! 你好 " {
		t.Errorf("streamed %q (text %q), want %q", got.String(), s.Text(), "Hi! 你好 ")
	}
}

// A stop string made of several tokens (and of parts of characters) is
// never shown in part, and the text before it is.
func TestStreamStopAcrossTokens(t *testing.T) {
	_, tok := load(t, "gpt2-tiny")
	text := "one 你好 two"
	s := NewStream(tok, []string{"好 tw"})
	var got strings.Builder
	for _, id := range tok.Encode(text) {
		d := s.Add(id)
		if strings.Contains(got.String()+d, "好") || !utf8.ValidString(d) {
			t.Fatalf("delta %q after %q shows part of the stop string", d, got.String())
		}
		got.WriteString(d)
	}
	got.WriteString(s.Flush())
	if !s.Stopped || got.String() != "one 你" {
		t.Fatalf("streamed %q (stopped %v), want %q", got.String(), s.Stopped, "one 你")
	}
}

func TestTextAPI(t *testing.T) {
	m, tok := load(t, "llama-tiny")
	var deltas [2]strings.Builder
	out, err := Text(m, tok, []string{"One two", "Three"}, Options{MaxTokens: 6}, func(i int, d string) { deltas[i].WriteString(d) })
	if err != nil {
		t.Fatal(err)
	}
	for i := range out {
		if out[i] != deltas[i].String() || out[i] == "" {
			t.Errorf("sequence %d: returned %q, streamed %q", i, out[i], deltas[i].String())
		}
	}
}

// Soft prompts go through the same prefill and cached decoding as tokens:
// each greedy token of a padded batch with virtual tokens before every row
// is the argmax of a whole forward pass, without a cache, of the virtual
// tokens, the prompt and the tokens before it.
func TestSoftPromptMatchesFullForward(t *testing.T) {
	for _, name := range []string{"gpt2-tiny", "llama-tiny"} {
		m, tok := load(t, name)
		sp := nn.NewSoftPrompt(nn.NewInit(cpu.New(), 3), 5, m.Config.Hidden, m.Embed.Weight)
		prompts := [][]int{tok.Encode("Hello world, this is"), tok.Encode("A"), tok.Encode("The quick brown fox jumps over")}
		got, err := Tokens(m, prompts, Options{MaxTokens: 6, SoftPrompt: sp}, nil)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := Tokens(m, prompts, Options{MaxTokens: 6}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if slices.EqualFunc(plain, got, slices.Equal) {
			t.Errorf("%s: the soft prompt changed nothing", name)
		}
		wide := nn.NewSoftPrompt(nn.NewInit(cpu.New(), 3), 2, m.Config.Hidden+1, nil)
		if _, err := Tokens(m, prompts, Options{SoftPrompt: wide}, nil); err == nil || !strings.Contains(err.Error(), "wide") {
			t.Errorf("%s: a soft prompt of the wrong width: %v", name, err)
		}
		long := nn.NewSoftPrompt(nn.NewInit(cpu.New(), 3), m.Config.Context, m.Config.Hidden, nil)
		if _, err := Tokens(m, prompts, Options{SoftPrompt: long}, nil); !errors.Is(err, ErrPromptTooLong) {
			t.Errorf("%s: virtual tokens and a prompt beyond the context: %v", name, err)
		}
		V := m.Config.Vocab
		tensor.NoGrad(func() {
			for b, p := range prompts {
				if len(got[b]) != 6 {
					t.Fatalf("%s prompt %d: %d tokens, want 6", name, b, len(got[b]))
				}
				seq := slices.Clone(p)
				for i, want := range got[b] {
					ids := make([]int32, len(seq))
					for j, id := range seq {
						ids[j] = int32(id)
					}
					h := m.Forward(ids, 1, len(ids), gpt.Options{Embeds: sp.Batch(1)})
					n := h.Dim(1)
					lg := m.Logits(tensor.Slice(h, 1, n-1, n))
					row := lg.Host()[:V]
					tensor.Release(lg)
					best := 0
					for j, v := range row {
						if v > row[best] {
							best = j
						}
					}
					if best != want {
						t.Fatalf("%s prompt %d token %d: decoded %d, a whole forward pass gives %d", name, b, i, want, best)
					}
					seq = append(seq, want)
				}
			}
		})
	}
}
