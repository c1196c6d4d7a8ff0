package serve

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/store"
)

// A model folder with its own chat_template is served with it: Ollama's
// /api/show returns it, and /api/chat's prompt is that template's text.
func TestServeModelChatTemplate(t *testing.T) {
	dir := t.TempDir()
	src := tinyDir(t, "llama")
	files, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const tmpl = "{% for m in messages %}[{{ m.role | upper }}] {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}[ASSISTANT] {% endif %}"
	cfg, _ := json.Marshal(map[string]any{"chat_template": tmpl})
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := LoadWeights(cpu.New(), dir)
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine("templated", dir, w, EngineOptions{})
	t.Cleanup(e.Close)
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "labels.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := New([]*Engine{e}, st, Options{Logf: t.Logf})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)

	status, body := do(t, nil, "POST", ts.URL+"/api/show", []byte(`{"model":"templated"}`), nil)
	var show struct{ Template string }
	if status != 200 || json.Unmarshal(body, &show) != nil || show.Template != tmpl {
		t.Fatalf("/api/show: %d %s", status, body)
	}
	status, body = do(t, nil, "POST", ts.URL+"/api/chat", []byte(`{"model":"templated","stream":false,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"}],"options":{"num_predict":1}}`), nil)
	var chat struct {
		PromptEvalCount int `json:"prompt_eval_count"`
	}
	if status != 200 || json.Unmarshal(body, &chat) != nil {
		t.Fatalf("/api/chat: %d %s", status, body)
	}
	want := len(w.Tok.EncodeWithSpecial("[SYSTEM] Be brief.\n[USER] hi\n[ASSISTANT] "))
	if chat.PromptEvalCount != want {
		t.Errorf("/api/chat's prompt has %d tokens; the template's text has %d", chat.PromptEvalCount, want)
	}
}
