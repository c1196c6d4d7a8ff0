package constrain_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data/synth"
	"github.com/golem-ml/golem/generate"
	"github.com/golem-ml/golem/generate/constrain"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/tokenizer"
)

// tinyModel is a random llama with a BPE tokenizer trained on golem's
// corpus and some JSON, so that tokens span several JSON characters.
func tinyModel(t testing.TB) (*gpt.Model, *tokenizer.Tokenizer) {
	t.Helper()
	text := synth.Corpus(synth.CorpusOptions{Seed: 1, Bytes: 30000}) +
		strings.Repeat(`{"name":"Ann","age":31,"tags":["a","b"],"ok":true,"x":null,"v":-1.5e3}`+"\n", 50)
	tok, err := tokenizer.Train(tokenizer.TrainOptions{Texts: []string{text}, VocabSize: 500, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	cfg := gpt.Config{Arch: "llama", Vocab: tok.VocabSize(), Context: 512, Layers: 1, Heads: 2, KVHeads: 1,
		Hidden: 16, Intermediate: 32, Eps: 1e-5, RopeTheta: 10000, BOS: -1, EOS: -1}
	m, err := gpt.New(cpu.New(), cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	return m, tok
}

// randomSchema writes a schema whose values are short: strings have a
// maxLength or an enum, arrays a maxItems.
func randomSchema(r *rand.Rand, depth int) map[string]any {
	kinds := []string{"string", "enum", "integer", "number", "boolean", "null"}
	if depth < 3 {
		kinds = append(kinds, "object", "object", "array", "anyOf")
	}
	switch kinds[r.IntN(len(kinds))] {
	case "string":
		s := map[string]any{"type": "string", "maxLength": r.IntN(6)}
		if r.IntN(2) == 0 {
			s["minLength"] = r.IntN(s["maxLength"].(int) + 1)
		}
		return s
	case "enum":
		return map[string]any{"enum": []any{"red", "green", "blue green", 7, nil}[:1+r.IntN(5)]}
	case "integer", "number", "boolean", "null":
		return map[string]any{"type": []string{"integer", "number", "boolean", "null"}[r.IntN(4)]}
	case "array":
		mx := r.IntN(4)
		return map[string]any{"type": "array", "items": randomSchema(r, depth+1), "minItems": r.IntN(mx + 1), "maxItems": mx}
	case "anyOf":
		return map[string]any{"anyOf": []any{randomSchema(r, depth+1), randomSchema(r, depth+1)}}
	}
	props := map[string]any{}
	req := []string{}
	for i := range 1 + r.IntN(3) {
		k := fmt.Sprintf("k%d", i)
		props[k] = randomSchema(r, depth+1)
		if r.IntN(3) > 0 {
			req = append(req, k)
		}
	}
	return map[string]any{"type": "object", "properties": props, "required": req, "additionalProperties": false}
}

// validator compiles schema with santhosh-tekuri/jsonschema: a check of
// the answers independent of golem's matcher.
func validator(t *testing.T, schema []byte) *jsonschema.Schema {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("schema.json", doc); err != nil {
		t.Fatal(err)
	}
	v, err := c.Compile("schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A random model, sampled hot, writes only values of the schema: every
// answer that ends parses and validates, and an answer that does not end
// was cut at the token limit.
func TestRandomModelRandomSchemas(t *testing.T) {
	m, tok := tinyModel(t)
	eot, _ := tok.SpecialID(tokenizer.EndOfText)
	vocab := constrain.TokenizerVocab(tok, m.Config.Vocab, []int{eot})
	r := rand.New(rand.NewPCG(1, 2))
	whole := 0
	for i := range 40 {
		raw, _ := json.Marshal(randomSchema(r, 0))
		s, err := constrain.Compile(raw)
		if err != nil {
			t.Fatalf("Compile(%s): %v", raw, err)
		}
		g := constrain.NewGuide(s, vocab)
		var ms []*constrain.Matcher
		o := generate.Options{MaxTokens: 200, Temperature: 1.5, Seed: uint64(i), StopIDs: []int{eot},
			Constrain: func() generate.Constraint { c := g.Start(); ms = append(ms, c); return c }}
		prompt := tok.Encode("Answer in JSON:")
		out, err := generate.Tokens(m, [][]int{prompt, prompt}, o, nil)
		if err != nil {
			t.Fatal(err)
		}
		val := validator(t, raw)
		for b, ids := range out {
			text := tok.Decode(ids)
			if !ms[b].Stopped() {
				if len(ids) != o.MaxTokens {
					t.Errorf("schema %s: unfinished answer %q of %d tokens", raw, text, len(ids))
				}
				continue
			}
			whole++
			if whole%10 == 1 {
				t.Logf("schema %s: %s", raw, text)
			}
			var v any
			if err := json.Unmarshal([]byte(text), &v); err != nil {
				t.Errorf("schema %s: answer %q: %v", raw, text, err)
				continue
			}
			inst, _ := jsonschema.UnmarshalJSON(strings.NewReader(text))
			if err := val.Validate(inst); err != nil {
				t.Errorf("schema %s: answer %q does not validate: %v", raw, text, err)
			}
			if !s.Match([]byte(text)) {
				t.Errorf("schema %s: the matcher refuses its own answer %q", raw, text)
			}
		}
	}
	if whole < 60 {
		t.Errorf("only %d of 80 answers ended within 200 tokens", whole)
	}
}

// An answer cut by the token limit is not whole, and the matcher says so.
func TestCutAnswerIsNotComplete(t *testing.T) {
	m, tok := tinyModel(t)
	eot, _ := tok.SpecialID(tokenizer.EndOfText)
	s, err := constrain.Compile([]byte(`{"type":"object","properties":{"name":{"type":"string","minLength":30}},"required":["name"]}`))
	if err != nil {
		t.Fatal(err)
	}
	g := constrain.NewGuide(s, constrain.TokenizerVocab(tok, m.Config.Vocab, []int{eot}))
	var c *constrain.Matcher
	o := generate.Options{MaxTokens: 3, Temperature: 1, StopIDs: []int{eot},
		Constrain: func() generate.Constraint { c = g.Start(); return c }}
	out, err := generate.Tokens(m, [][]int{tok.Encode("Answer:")}, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	text := tok.Decode(out[0])
	if len(out[0]) != 3 || c.Complete() || c.Stopped() || json.Valid([]byte(text)) {
		t.Fatalf("cut answer %q (%d tokens): Complete() = %v, Stopped() = %v", text, len(out[0]), c.Complete(), c.Stopped())
	}
	if !strings.HasPrefix(text, `{"name":"`[:min(len(text), 9)]) {
		t.Fatalf("cut answer %q does not begin the object", text)
	}
}
