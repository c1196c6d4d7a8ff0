package constrain

import (
	"math/rand/v2"
	"testing"
)

// testVocab has every byte, JSON's punctuation in runs, words, plain and
// escaped text, and UTF-8 in pieces.
func testVocab() [][]byte {
	var toks [][]byte
	for c := range 256 {
		toks = append(toks, []byte{byte(c)})
	}
	for _, s := range []string{`{"`, `":`, `","`, `"}`, `},{"`, `":"`, `"]`, `["`, `true`, `false`, `null`, `nu`, `ll`, `tr`,
		`12`, `0.`, `.5`, `e+`, `-1`, `007`, `name`, `"name":"`, `age`, `"age":`, `red`, `green`, ` blue`, `\n`, `\u00`, `e9`,
		`\"`, "é", "中", "\xe4\xb8", "\xad", "😀", `hello world`, `abcdefghijklmnopqrstuvwxyz0123456789abcdefghij`, `}}`, `]]`, `[[`,
		`,"`, `":[`, `":{"`, `"k0":`, `"k1":`, `"k2":`, `]}`, `1}`, `0,"`} {
		toks = append(toks, []byte(s))
	}
	return toks
}

// bruteMask steps every token's bytes through the state.
func bruteMask(v *Vocab, cur *state) []uint64 {
	mask := make([]uint64, (v.size+63)/64)
	if canEnd(cur) {
		for _, id := range v.stops {
			mask[id/64] |= 1 << (id % 64)
		}
	}
	a, b := &state{}, &state{}
	for id, t := range v.bytes {
		if len(t) == 0 {
			continue
		}
		s := cur
		ok := true
		for _, c := range t {
			step(a, s, c)
			if len(a.th) == 0 {
				ok = false
				break
			}
			s, a, b = a, b, a
		}
		if ok {
			mask[id/64] |= 1 << (id % 64)
		}
	}
	return mask
}

// The trie walk (and its plain-text shortcut, and the cache) allows
// exactly the tokens whose bytes the matcher takes, state after state.
func TestMaskEqualsBruteForce(t *testing.T) {
	toks := testVocab()
	stop := len(toks)
	toks = append(toks, nil) // the stop token: no bytes
	v := NewVocab(toks, len(toks)+5, []int{stop})
	schemas := []string{
		`{"type":"object","properties":{"name":{"type":"string","maxLength":5},"age":{"type":"integer"},"k0":{"enum":["red","green blue"]},"k1":{"type":"array","items":{"type":"number"},"maxItems":3},"k2":{"anyOf":[{"type":"string","minLength":2},{"type":"null"}]}},"required":["name","k1"]}`,
		`{"type":"string"}`, `{"type":"array","items":{"type":"string","maxLength":40}}`,
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, raw := range schemas {
		s, err := Compile([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		for _, sch := range []*Schema{s, AnyJSON()} {
			g := NewGuide(sch, v)
			for range 30 {
				m := g.Start()
				for n := 0; n < 60; n++ {
					got, want := m.Allowed(), bruteMask(v, m.cur)
					var ids []int
					for id := range v.size {
						g, w := got[id/64]>>(id%64)&1, want[id/64]>>(id%64)&1
						if g != w {
							t.Fatalf("%s after %d tokens: token %d %q: allowed %d, brute force %d", raw, n, id, v.bytes[min(id, len(v.bytes)-1)], g, w)
						}
						if w == 1 {
							ids = append(ids, id)
						}
					}
					if len(ids) == 0 {
						t.Fatalf("%s after %d tokens: nothing allowed", raw, n)
					}
					id := ids[r.IntN(len(ids))]
					if !m.Accept(id) {
						t.Fatalf("allowed token %d refused", id)
					}
					if id == stop {
						break
					}
				}
			}
		}
	}
}
