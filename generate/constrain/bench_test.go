package constrain_test

import (
	"math/bits"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/golem-ml/golem/generate/constrain"
	"github.com/golem-ml/golem/internal/shared"
	"github.com/golem-ml/golem/tokenizer"
)

// QwenVocabSize is Qwen2's vocabulary (151,643 tokens and 293 specials).
const qwenVocabSize = 151936

// bigVocab is a vocabulary the size of Qwen2's: GPT-2's 50,257 tokens and,
// after them, pairs of GPT-2 tokens (" the"+" cat", "{\""+"name"), as
// merges of a larger BPE are, drawn at random without repeats.
func bigVocab(t testing.TB) *constrain.Vocab {
	tok, err := tokenizer.Load(filepath.Join(shared.Path(t, "data/tokenizer/gpt2"), "encoder.json"))
	if err != nil {
		t.Fatal(err)
	}
	n := tok.VocabSize()
	tokens := make([][]byte, qwenVocabSize)
	seen := map[string]bool{}
	for id := range n {
		s, _ := tok.Token(id)
		if !tok.IsSpecial(id) {
			tokens[id] = []byte(s)
			seen[s] = true
		}
	}
	r := rand.New(rand.NewPCG(7, 7))
	for id := n; id < qwenVocabSize-293; {
		a, _ := tok.Token(r.IntN(n - 1))
		b, _ := tok.Token(r.IntN(n - 1))
		if s := a + b; !seen[s] && len(s) <= 32 {
			seen[s] = true
			tokens[id] = []byte(s)
			id++
		}
	}
	return constrain.NewVocab(tokens, qwenVocabSize, []int{qwenVocabSize - 1})
}

const benchSchema = `{"type":"object","properties":{
	"name":{"type":"string","maxLength":40},
	"age":{"type":"integer"},
	"email":{"type":"string"},
	"tags":{"type":"array","items":{"type":"string","maxLength":20},"maxItems":4},
	"score":{"type":"number"},
	"kind":{"enum":["person","company","robot"]},
	"ok":{"type":"boolean"}
},"required":["name","age","email","tags","score","kind","ok"],"additionalProperties":false}`

// answer writes one answer to the schema, picking each token at random
// among the allowed ones (a stop token as soon as it is allowed, and the
// allowed tokens' shortest half past 40 tokens, so that strings end), and
// returns the tokens written and the time spent in the matcher (Allowed
// and Accept).
func answer(g *constrain.Guide, r *rand.Rand, stop int) (int, time.Duration) {
	m := g.Start()
	var ids []int
	var spent time.Duration
	for n := 0; n < 400; n++ {
		t0 := time.Now()
		mask := m.Allowed()
		spent += time.Since(t0)
		if mask[stop/64]>>(stop%64)&1 == 1 {
			m.Accept(stop)
			return n, spent
		}
		ids = ids[:0]
		for w, word := range mask {
			for word != 0 {
				ids = append(ids, w*64+bits.TrailingZeros64(word))
				word &= word - 1
			}
		}
		id := ids[r.IntN(len(ids))]
		if n > 40 {
			id = min(id, ids[r.IntN(len(ids))]) // GPT-2's ids: shorter first
		}
		t0 = time.Now()
		if !m.Accept(id) {
			panic("an allowed token was refused")
		}
		spent += time.Since(t0)
	}
	return 400, spent
}

// BenchmarkMask151936 is the cost of constrained decoding per token on a
// 151,936-token vocabulary: computing the allowed tokens and stepping the
// matcher. cold: a new guide for every answer (nothing cached); warm: one
// guide for all answers, as a server answering one schema again and again.
func BenchmarkMask151936(b *testing.B) {
	v := bigVocab(b)
	s, err := constrain.Compile([]byte(benchSchema))
	if err != nil {
		b.Fatal(err)
	}
	for _, warm := range []bool{false, true} {
		name := "cold"
		if warm {
			name = "warm"
		}
		b.Run(name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 1))
			g := constrain.NewGuide(s, v)
			if warm {
				answer(g, r, qwenVocabSize-1)
			}
			tokens, spent := 0, time.Duration(0)
			for b.Loop() {
				if !warm {
					g = constrain.NewGuide(s, v)
				}
				n, d := answer(g, r, qwenVocabSize-1)
				tokens, spent = tokens+n, spent+d
			}
			b.ReportMetric(float64(tokens)/float64(b.N), "tokens/answer")
			b.ReportMetric(float64(spent.Nanoseconds())/float64(tokens)/1e3, "µs/token")
		})
	}
}
