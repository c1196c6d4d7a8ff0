package serve

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// refLogprobs scores ids with the model's forward pass directly, as eval
// scores a text: entry i is log p(ids[i] | ids[:i]) by tensor.TokenLogProbs
// and the whole log-softmax row that predicts it (entry 0 is unused).
func refLogprobs(t *testing.T, m *gpt.Model, ids []int) ([]float64, [][]float64) {
	t.Helper()
	T := len(ids)
	in, tgt := make([]int32, T), make([]int32, T-1)
	for i, id := range ids {
		in[i] = int32(id)
		if i > 0 {
			tgt[i-1] = int32(id)
		}
	}
	var chosen, logits []float32
	tensor.NoGrad(func() {
		h := m.Forward(in, 1, T, gpt.Options{})
		lg := m.Logits(tensor.Reshape(tensor.Slice(h, 1, 0, T-1), T-1, -1))
		logits = lg.Host()
		lp := tensor.TokenLogProbs(lg, tgt)
		chosen = lp.Host()
		tensor.Release(lp)
	})
	V := m.Config.Vocab
	lps, rows := make([]float64, T), make([][]float64, T)
	for i := 1; i < T; i++ {
		lps[i] = float64(chosen[i-1])
		row := logits[(i-1)*V : i*V]
		mx := float64(slices.Max(row))
		var z float64
		for _, v := range row {
			z += math.Exp(float64(v) - mx)
		}
		rows[i] = make([]float64, V)
		for j, v := range row {
			rows[i][j] = float64(v) - mx - math.Log(z)
		}
	}
	return lps, rows
}

// idsOf maps chat logprobs' bytes back to token ids.
func idsOf(t *testing.T, tok *tokenizer.Tokenizer, bytes [][]int) []int {
	t.Helper()
	byText := map[string]int{}
	for id := tok.VocabSize() - 1; id >= 0; id-- {
		if s, ok := tok.Token(id); ok && !tok.IsSpecial(id) {
			byText[s] = id
		}
	}
	for id := range tok.VocabSize() {
		if s, ok := tok.Token(id); ok && tok.IsSpecial(id) {
			byText[s] = id
		}
	}
	ids := make([]int, len(bytes))
	for i, b := range bytes {
		s := make([]byte, len(b))
		for j, c := range b {
			s[j] = byte(c)
		}
		id, ok := byText[string(s)]
		if !ok {
			t.Fatalf("token %d: bytes %q are no token", i, s)
		}
		ids[i] = id
	}
	return ids
}

type chatLP struct {
	Token       string
	Logprob     float64
	Bytes       []int
	TopLogprobs []struct {
		Token   string
		Logprob float64
		Bytes   []int
	} `json:"top_logprobs"`
}

// Chat's logprobs and top_logprobs, whole and streamed, are the model's own
// log-probabilities of the tokens it sampled (before temperature), as a
// forward pass over the prompt and the answer gives them, within 1e-4.
func TestChatLogprobs(t *testing.T) {
	ts := newTestServer(t, Options{}, EngineOptions{})
	w, err := LoadWeights(cpu.New(), tinyDir(t, "llama"))
	if err != nil {
		t.Fatal(err)
	}
	msgs := []tokenizer.Message{{Role: "user", Content: "Name a color."}}
	prompt, _, err := w.Tok.RenderChat(msgs, true)
	if err != nil {
		t.Fatal(err)
	}
	const k = 5
	req := `{"model":"tiny-llama","messages":[{"role":"user","content":"Name a color."}],"max_tokens":12,"temperature":1.5,"seed":4,"logprobs":true,"top_logprobs":5}`
	status, body := do(t, nil, "POST", ts.URL+"/v1/chat/completions", []byte(req), nil)
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	var resp struct {
		Choices []struct {
			Message  struct{ Content string }
			Logprobs struct{ Content []chatLP }
		}
		Usage struct {
			CompletionTokens int `json:"completion_tokens"`
		}
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	content := resp.Choices[0].Logprobs.Content
	if len(content) != resp.Usage.CompletionTokens || len(content) == 0 {
		t.Fatalf("%d logprobs for %d tokens: %s", len(content), resp.Usage.CompletionTokens, body)
	}
	var bs [][]int
	for _, c := range content {
		bs = append(bs, c.Bytes)
	}
	gen := idsOf(t, w.Tok, bs)
	if text := w.Tok.Decode(gen); strings.ToValidUTF8(text, "\ufffd") != resp.Choices[0].Message.Content {
		t.Errorf("the tokens say %q, the answer %q", text, resp.Choices[0].Message.Content)
	}
	for i, c := range content {
		if want := shownToken(w.Tok.Decode(gen[i : i+1])); c.Token != want {
			t.Errorf("token %d is shown as %q, want %q", i, c.Token, want)
		}
	}
	lps, rows := refLogprobs(t, w.Model, append(slices.Clone(prompt), gen...))
	for i, c := range content {
		at := len(prompt) + i
		if d := math.Abs(c.Logprob - lps[at]); d > 1e-4 {
			t.Errorf("token %d %q: logprob %.6f, the forward pass gives %.6f", i, c.Token, c.Logprob, lps[at])
		}
		if len(c.TopLogprobs) != k {
			t.Fatalf("token %d: %d top logprobs, want %d", i, len(c.TopLogprobs), k)
		}
		want := slices.Clone(rows[at])
		sort.Sort(sort.Reverse(sort.Float64Slice(want)))
		for j, tp := range c.TopLogprobs {
			id := idsOf(t, w.Tok, [][]int{tp.Bytes})[0]
			if d := math.Abs(tp.Logprob - want[j]); d > 1e-4 || math.Abs(rows[at][id]-tp.Logprob) > 1e-4 {
				t.Errorf("token %d: top %d %q: %.6f, the forward pass gives the %d-th best %.6f (and that token %.6f)", i, j, tp.Token, tp.Logprob, j, want[j], rows[at][id])
			}
		}
	}

	// Streamed, with the same seed: the same tokens and values, chunk by chunk.
	status, body = do(t, nil, "POST", ts.URL+"/v1/chat/completions", []byte(strings.Replace(req, `"seed":4`, `"seed":4,"stream":true`, 1)), nil)
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	var streamed []chatLP
	for _, line := range strings.Split(string(body), "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var ch struct {
			Choices []struct {
				Logprobs *struct{ Content []chatLP }
			}
		}
		if err := json.Unmarshal([]byte(data), &ch); err != nil {
			t.Fatal(err)
		}
		for _, c := range ch.Choices {
			if c.Logprobs != nil {
				streamed = append(streamed, c.Logprobs.Content...)
			}
		}
	}
	if len(streamed) != len(content) {
		t.Fatalf("streamed %d logprobs, whole %d", len(streamed), len(content))
	}
	for i := range streamed {
		if streamed[i].Token != content[i].Token || streamed[i].Logprob != content[i].Logprob {
			t.Errorf("streamed token %d: %q %v, whole %q %v", i, streamed[i].Token, streamed[i].Logprob, content[i].Token, content[i].Logprob)
		}
	}

	// The alternatives do not depend on the temperature: greedy decoding
	// reports the same first-position distribution.
	greedy := strings.Replace(req, `"temperature":1.5`, `"temperature":0`, 1)
	_, body = do(t, nil, "POST", ts.URL+"/v1/chat/completions", []byte(greedy), nil)
	var g struct {
		Choices []struct{ Logprobs struct{ Content []chatLP } }
	}
	json.Unmarshal(body, &g)
	if len(g.Choices) == 0 || len(g.Choices[0].Logprobs.Content) == 0 {
		t.Fatalf("greedy: %s", body)
	}
	for j := range k {
		if a, b := g.Choices[0].Logprobs.Content[0].TopLogprobs[j], content[0].TopLogprobs[j]; a.Token != b.Token || a.Logprob != b.Logprob {
			t.Errorf("first position, top %d: greedy %q %v, temperature 1.5 %q %v", j, a.Token, a.Logprob, b.Token, b.Logprob)
		}
	}
}

// Completions' echo with max_tokens 0 scores the prompt (as lm-eval's
// openai-completions does): its tokens, null then each token's
// log-probability given those before, as the forward pass gives them; a
// prompt of token ids works the same, and max_tokens 1 adds one token.
func TestCompletionsEchoLogprobs(t *testing.T) {
	ts := newTestServer(t, Options{}, EngineOptions{})
	w, err := LoadWeights(cpu.New(), tinyDir(t, "gpt2"))
	if err != nil {
		t.Fatal(err)
	}
	const text = "The cat sat on the mat."
	ids := w.Tok.EncodeWithSpecial(text)
	lps, rows := refLogprobs(t, w.Model, ids)
	type legacy struct {
		Choices []struct {
			Text     string
			Logprobs struct {
				Tokens        []string
				TokenLogprobs []*float64           `json:"token_logprobs"`
				TopLogprobs   []map[string]float64 `json:"top_logprobs"`
				TextOffset    []int                `json:"text_offset"`
			}
		}
		Usage struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
		}
	}
	idsJSON, _ := json.Marshal(ids)
	for _, prompt := range []string{`"` + text + `"`, string(idsJSON), "[" + string(idsJSON) + "]"} {
		for _, max := range []int{0, 1} {
			req := fmt.Sprintf(`{"model":"tiny-gpt2","prompt":%s,"max_tokens":%d,"echo":true,"logprobs":3,"temperature":0}`, prompt, max)
			status, body := do(t, nil, "POST", ts.URL+"/v1/completions", []byte(req), nil)
			if status != 200 {
				t.Fatalf("%s: %d %s", req, status, body)
			}
			var r legacy
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatal(err)
			}
			c := r.Choices[0]
			lp := c.Logprobs
			n := len(ids) + r.Usage.CompletionTokens
			if r.Usage.PromptTokens != len(ids) || r.Usage.CompletionTokens > max || !strings.HasPrefix(c.Text, text) ||
				len(lp.Tokens) != n || len(lp.TokenLogprobs) != n || len(lp.TopLogprobs) != n || len(lp.TextOffset) != n {
				t.Fatalf("%s: %s", req, body)
			}
			if lp.TokenLogprobs[0] != nil || lp.TopLogprobs[0] != nil || lp.TextOffset[0] != 0 {
				t.Errorf("%s: the first token has %v %v at %d, want null, null at 0", req, lp.TokenLogprobs[0], lp.TopLogprobs[0], lp.TextOffset[0])
			}
			off := 0
			for i := range ids {
				if want := shownToken(w.Tok.Decode(ids[i : i+1])); lp.Tokens[i] != want || lp.TextOffset[i] != off {
					t.Errorf("%s: token %d %q at %d, want %q at %d", req, i, lp.Tokens[i], lp.TextOffset[i], want, off)
				}
				off += len(w.Tok.Decode(ids[i : i+1]))
				if i == 0 {
					continue
				}
				if d := math.Abs(*lp.TokenLogprobs[i] - lps[i]); d > 1e-4 {
					t.Errorf("%s: token %d: %.6f, the forward pass gives %.6f", req, i, *lp.TokenLogprobs[i], lps[i])
				}
				want := slices.Clone(rows[i])
				sort.Sort(sort.Reverse(sort.Float64Slice(want)))
				got := mapValues(lp.TopLogprobs[i])
				sort.Sort(sort.Reverse(sort.Float64Slice(got)))
				if len(got) != 3 {
					t.Fatalf("%s: token %d: %d alternatives, want 3", req, i, len(got))
				}
				for j := range got {
					if math.Abs(got[j]-want[j]) > 1e-4 {
						t.Errorf("%s: token %d: alternatives %v, the forward pass's best %v", req, i, got, want[:3])
					}
				}
			}
		}
	}
	for _, c := range []struct{ body, want string }{
		{`{"model":"tiny-gpt2","prompt":"hi","max_tokens":0}`, `"max_tokens" 0 is less than 1`},
		{`{"model":"tiny-gpt2","prompt":"hi","max_tokens":1,"logprobs":21}`, `"logprobs" 21 is not between 0 and 20`},
		{`{"model":"tiny-gpt2","prompt":[1,2,100000],"max_tokens":1}`, `prompt[2]: token id 100000 is not in the vocabulary`},
		{`{"model":"tiny-gpt2","prompt":["a","b"],"max_tokens":1}`, `"prompt" has 2 prompts`},
	} {
		if status, body := do(t, nil, "POST", ts.URL+"/v1/completions", []byte(c.body), nil); status != 400 || !strings.Contains(errorMessage(body), c.want) {
			t.Errorf("%s: %d %s, want 400 %q", c.body, status, body, c.want)
		}
	}
	for _, c := range []struct{ body, want string }{
		{`{"model":"tiny-gpt2","messages":[{"role":"user","content":"hi"}],"logprobs":true,"top_logprobs":21}`, `"top_logprobs" 21 is not between 0 and 20`},
		{`{"model":"tiny-gpt2","messages":[{"role":"user","content":"hi"}],"top_logprobs":2}`, `"top_logprobs" needs "logprobs": true`},
	} {
		if status, body := do(t, nil, "POST", ts.URL+"/v1/chat/completions", []byte(c.body), nil); status != 400 || !strings.Contains(errorMessage(body), c.want) {
			t.Errorf("%s: %d %s, want 400 %q", c.body, status, body, c.want)
		}
	}
}

func mapValues(m map[string]float64) []float64 {
	var v []float64
	for _, x := range m {
		v = append(v, x)
	}
	return v
}
