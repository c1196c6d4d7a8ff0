package serve

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/tensor"
)

// refEmbedding runs ids alone through m and pools its final hidden states
// (mean, or the last token's), L2-normalised.
func refEmbedding(m *gpt.Model, ids []int, last bool) []float64 {
	in := make([]int32, len(ids))
	for i, id := range ids {
		in[i] = int32(id)
	}
	var h []float32
	tensor.NoGrad(func() {
		out := m.Forward(in, 1, len(ids), gpt.Options{})
		h = out.Host()
		tensor.Release(out)
	})
	C := m.Config.Hidden
	v := make([]float64, C)
	from := 0
	if last {
		from = len(ids) - 1
	}
	for i := from; i < len(ids); i++ {
		for c := range C {
			v[c] += float64(h[i*C+c]) / float64(len(ids)-from)
		}
	}
	var n float64
	for _, x := range v {
		n += x * x
	}
	for c := range v {
		v[c] /= math.Sqrt(n)
	}
	return v
}

func closeTo(t *testing.T, what string, got []float32, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d dimensions, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Abs(float64(got[i])-want[i]) > 1e-5 {
			t.Fatalf("%s: dimension %d is %v, the forward pass alone gives %v", what, i, got[i], want[i])
		}
	}
}

// /v1/embeddings, /api/embed and /api/embeddings answer the model's mean
// pooled (or last-token) final hidden states, normalised, for texts and
// token ids batched in one request, equal to each input run alone;
// base64, dimensions, usage, the context and Ollama's truncate.
func TestEmbeddings(t *testing.T) {
	ts := newTestServer(t, Options{}, EngineOptions{})
	w, err := LoadWeights(cpu.New(), tinyDir(t, "gpt2"))
	if err != nil {
		t.Fatal(err)
	}
	m, C := w.Model, w.Model.Config.Hidden
	texts := []string{"The cat sat on the mat.", "A dog", "<|im_start|>user"}
	ids := [][]int{w.Tok.EncodeWithSpecial(texts[0]), w.Tok.EncodeWithSpecial(texts[1]), w.Tok.EncodeWithSpecial(texts[2])}
	type oaEmb struct {
		Data []struct {
			Object    string
			Index     int
			Embedding json.RawMessage
		}
		Model string
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
			TotalTokens  int `json:"total_tokens"`
		}
	}
	post := func(path, body string) []byte {
		t.Helper()
		status, b := do(t, nil, "POST", ts.URL+path, []byte(body), nil)
		if status != 200 {
			t.Fatalf("%s %s: %d %s", path, body, status, b)
		}
		return b
	}
	in, _ := json.Marshal(texts)
	for _, format := range []string{"float", "base64"} {
		var r oaEmb
		json.Unmarshal(post("/v1/embeddings", fmt.Sprintf(`{"model":"tiny-gpt2","input":%s,"encoding_format":%q,"dimensions":%d}`, in, format, C)), &r)
		if len(r.Data) != 3 || r.Model != "tiny-gpt2" || r.Usage.PromptTokens != len(ids[0])+len(ids[1])+len(ids[2]) || r.Usage.TotalTokens != r.Usage.PromptTokens {
			t.Fatalf("%s: %+v", format, r)
		}
		for i, d := range r.Data {
			var v []float32
			if format == "float" {
				json.Unmarshal(d.Embedding, &v)
			} else {
				var s string
				json.Unmarshal(d.Embedding, &s)
				b, err := base64.StdEncoding.DecodeString(s)
				if err != nil || len(b) != 4*C {
					t.Fatalf("base64 %q: %v", s, err)
				}
				for j := 0; j < len(b); j += 4 {
					v = append(v, math.Float32frombits(binary.LittleEndian.Uint32(b[j:])))
				}
			}
			if d.Index != i || d.Object != "embedding" {
				t.Errorf("data[%d]: %+v", i, d)
			}
			closeTo(t, fmt.Sprintf("%s input %d", format, i), v, refEmbedding(m, ids[i], false))
		}
	}
	// Token ids, one list and a list of lists.
	var r oaEmb
	idsJSON, _ := json.Marshal(ids[0])
	json.Unmarshal(post("/v1/embeddings", `{"model":"tiny-gpt2","input":[`+string(idsJSON)+`,[5,6,7]]}`), &r)
	var v []float32
	json.Unmarshal(r.Data[0].Embedding, &v)
	closeTo(t, "token ids", v, refEmbedding(m, ids[0], false))
	json.Unmarshal(r.Data[1].Embedding, &v)
	closeTo(t, "token ids", v, refEmbedding(m, []int{5, 6, 7}, false))

	// Ollama: /api/embed with one input or several; the legacy endpoint.
	var oe struct {
		Model           string
		Embeddings      [][]float32
		PromptEvalCount int `json:"prompt_eval_count"`
	}
	json.Unmarshal(post("/api/embed", `{"model":"tiny-gpt2:latest","input":`+string(in)+`}`), &oe)
	if len(oe.Embeddings) != 3 || oe.PromptEvalCount != len(ids[0])+len(ids[1])+len(ids[2]) {
		t.Fatalf("/api/embed: %+v", oe)
	}
	for i := range texts {
		closeTo(t, fmt.Sprintf("/api/embed input %d", i), oe.Embeddings[i], refEmbedding(m, ids[i], false))
	}
	json.Unmarshal(post("/api/embed", `{"model":"tiny-gpt2","input":"A dog"}`), &oe)
	closeTo(t, "/api/embed one input", oe.Embeddings[0], refEmbedding(m, ids[1], false))
	var legacy struct{ Embedding []float32 }
	json.Unmarshal(post("/api/embeddings", `{"model":"tiny-gpt2","prompt":"A dog"}`), &legacy)
	closeTo(t, "/api/embeddings", legacy.Embedding, refEmbedding(m, ids[1], false))

	// The context: OpenAI refuses, Ollama truncates unless told not to.
	long := strings.Repeat("cat ", 200)
	longIDs := w.Tok.EncodeWithSpecial(long)
	if len(longIDs) <= m.Config.Context {
		t.Fatalf("the long text has %d tokens, the context %d", len(longIDs), m.Config.Context)
	}
	json.Unmarshal(post("/api/embed", `{"model":"tiny-gpt2","input":"`+long+`"}`), &oe)
	closeTo(t, "truncated", oe.Embeddings[0], refEmbedding(m, longIDs[:m.Config.Context], false))
	for _, c := range []struct{ path, body, want string }{
		{"/api/embed", `{"model":"tiny-gpt2","input":"` + long + `","truncate":false}`, "maximum context length is 96"},
		{"/v1/embeddings", `{"model":"tiny-gpt2","input":"` + long + `"}`, "maximum context length is 96"},
		{"/v1/embeddings", `{"model":"tiny-gpt2","input":"hi","dimensions":8}`, `"dimensions" 8: this model's embeddings have 32 dimensions`},
		{"/v1/embeddings", `{"model":"tiny-gpt2","input":"hi","encoding_format":"int8"}`, `"encoding_format" "int8"`},
		{"/v1/embeddings", `{"model":"tiny-gpt2","input":["hi",""]}`, `input[1] is empty`},
		{"/v1/embeddings", `{"model":"tiny-gpt2","input":[[1,-1]]}`, `input[1]: token id -1`},
		{"/api/embeddings", `{"model":"tiny-gpt2","input":"hi"}`, `takes "prompt"`},
	} {
		status, b := do(t, nil, "POST", ts.URL+c.path, []byte(c.body), nil)
		if status != 400 || !strings.Contains(errorMessage(b), c.want) {
			t.Errorf("%s %.80s: %d %s, want 400 %q", c.path, c.body, status, b, c.want)
		}
	}

	// --embed-pool last: the last token's hidden state.
	lastTS := newTestServerWith(t, "sqlite:"+filepath.Join(t.TempDir(), "l.db"), Options{EmbedPool: PoolLast}, EngineOptions{}, "gpt2")
	status, b := do(t, nil, "POST", lastTS.URL+"/v1/embeddings", []byte(`{"model":"tiny-gpt2","input":`+string(in)+`}`), nil)
	if status != 200 {
		t.Fatalf("%d %s", status, b)
	}
	json.Unmarshal(b, &r)
	for i := range texts {
		json.Unmarshal(r.Data[i].Embedding, &v)
		closeTo(t, fmt.Sprintf("last-token input %d", i), v, refEmbedding(m, ids[i], true))
	}
}
