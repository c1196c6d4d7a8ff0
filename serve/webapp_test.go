package serve

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/golem-ml/golem/store"
	"github.com/golem-ml/golem/tokenizer"
)

// The chat page's defaults fit the model: /app/api/models gives each
// model's context and a default answer length of a quarter of it, and
// /app/api/chat/fit trims a history that /v1/chat/completions refuses into
// one it answers, keeping the system message and the last turn.
func TestWebChatFitsTheContext(t *testing.T) {
	ts := newTestServer(t, Options{}, EngineOptions{})
	_, alice, _ := setupAnnotators(t, ts)
	status, body := alice.call("GET", "/app/api/models", nil)
	mustStatus(t, "models", 200, status, body)
	var models struct {
		Models []string
		Info   []struct {
			Name      string
			Context   int
			MaxTokens int `json:"max_tokens"`
		}
	}
	if err := json.Unmarshal(body, &models); err != nil || len(models.Info) != len(models.Models) || len(models.Info) == 0 {
		t.Fatalf("models: %s, %v", body, err)
	}
	m := models.Info[0]
	if m.Name != models.Models[0] || m.Context < 16 || m.MaxTokens != max(m.Context/4, 16) || m.MaxTokens >= m.Context {
		t.Fatalf("model info %+v: want max_tokens a quarter of the context, at least 16", m)
	}

	// A history far longer than the context.
	msgs := []tokenizer.Message{{Role: "system", Content: "Be brief."}}
	for i := range 40 {
		msgs = append(msgs, tokenizer.Message{Role: "user", Content: fmt.Sprintf("Tell me about the number %d, please.", i)},
			tokenizer.Message{Role: "assistant", Content: fmt.Sprintf("The number %d is a fine number.", i)})
	}
	msgs = append(msgs, tokenizer.Message{Role: "user", Content: "And 41?"})
	chat := func(msgs []tokenizer.Message) (int, []byte) {
		return alice.call("POST", "/v1/chat/completions", map[string]any{"model": m.Name, "messages": msgs, "max_tokens": m.MaxTokens})
	}
	if status, body := chat(msgs); status != 400 {
		t.Fatalf("the whole history: %d %s; want 400 (too long for the context)", status, body)
	}
	status, body = alice.call("POST", "/app/api/chat/fit", map[string]any{"model": m.Name, "messages": msgs, "max_tokens": m.MaxTokens})
	mustStatus(t, "fit", 200, status, body)
	var fit struct {
		Messages     []tokenizer.Message
		Dropped      int
		PromptTokens int `json:"prompt_tokens"`
		Context      int
	}
	if err := json.Unmarshal(body, &fit); err != nil {
		t.Fatal(err)
	}
	n := len(fit.Messages)
	if fit.Dropped == 0 || fit.Dropped%2 != 0 || n+fit.Dropped != len(msgs) || fit.Messages[0] != msgs[0] || fit.Messages[n-1] != msgs[len(msgs)-1] ||
		fit.PromptTokens+m.MaxTokens > fit.Context || fit.Context != m.Context {
		t.Fatalf("fit: dropped %d, kept %d, %d prompt tokens + %d in context %d: %s", fit.Dropped, n, fit.PromptTokens, m.MaxTokens, fit.Context, body)
	}
	// The kept turns are the newest ones.
	if fit.Messages[n-2] != msgs[len(msgs)-2] {
		t.Errorf("fit kept %v before the last turn, want %v", fit.Messages[n-2], msgs[len(msgs)-2])
	}
	if status, body := chat(fit.Messages); status != 200 {
		t.Fatalf("the fitted history: %d %s", status, body)
	}
	// A history that fits is kept whole.
	status, body = alice.call("POST", "/app/api/chat/fit", map[string]any{"model": m.Name, "messages": msgs[len(msgs)-1:], "max_tokens": m.MaxTokens})
	if mustStatus(t, "short fit", 200, status, body); !strings.Contains(string(body), `"dropped":0`) {
		t.Errorf("a short history: %s", body)
	}
	for _, c := range []struct {
		body       any
		status     int
		wantInBody string
	}{
		{map[string]any{"model": m.Name, "messages": msgs, "max_tokens": 0}, 400, `max_tokens`},
		{map[string]any{"model": m.Name, "messages": msgs, "max_tokens": m.Context}, 400, `max_tokens`},
		{map[string]any{"model": "nope", "messages": msgs, "max_tokens": 8}, 404, `nope`},
		{map[string]any{"model": m.Name, "messages": []tokenizer.Message{{Role: "user", Content: strings.Repeat("word ", m.Context)}}, "max_tokens": m.MaxTokens}, 400, `context`},
		{map[string]any{"model": m.Name, "messages": []tokenizer.Message{{Role: "robot", Content: "hi"}}, "max_tokens": 8}, 400, `robot`},
		{`{"model": 3}`, 400, `model`},
		{`{"model": "tiny-llama", "messages": [], "max_tokens": 8}`, 400, `messages`},
		{`{"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}], "max_tokens": "8"}`, 400, `max_tokens`},
		{`{"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8`, 400, `JSON`},
	} {
		status, body := alice.call("POST", "/app/api/chat/fit", c.body)
		mustStatus(t, fmt.Sprint("fit ", c.body), c.status, status, body)
		if !strings.Contains(string(body), c.wantInBody) {
			t.Errorf("fit %v: %s does not mention %q", c.body, body, c.wantInBody)
		}
	}
}

// The annotation API behind the web app's new controls: guidelines the
// admin writes and every annotator reads, the admin's prompt list with
// label counts, a tie saved with ratings then edited into a win, labels
// listed with their prompt's text, and the prompts left in each queue.
func TestWebGuidelinesTiesAndPrompts(t *testing.T) {
	ts := newTestServer(t, Options{}, EngineOptions{})
	admin, alice, _ := setupAnnotators(t, ts)
	status, body := alice.call("PUT", "/app/api/admin/guidelines", map[string]string{"task": "rank", "text": "x"})
	mustStatus(t, "guidelines by an annotator", 403, status, body)
	status, body = admin.call("PUT", "/app/api/admin/guidelines", map[string]string{"task": "rank", "text": "Prefer **honest** answers."})
	mustStatus(t, "guidelines", 200, status, body)
	status, body = admin.call("PUT", "/app/api/admin/guidelines", map[string]string{"task": "dance", "text": "x"})
	mustStatus(t, "guidelines for a dance", 400, status, body)
	status, body = alice.call("GET", "/app/api/guidelines", nil)
	if mustStatus(t, "read guidelines", 200, status, body); string(body) != `{"guidelines":{"rank":"Prefer **honest** answers."}}`+"\n" {
		t.Errorf("guidelines: %s", body)
	}

	status, body = alice.call("GET", "/app/api/next?task=compare", nil)
	mustStatus(t, "next", 200, status, body)
	var next struct{ Prompt promptJSON }
	json.Unmarshal(body, &next)
	tie := map[string]any{"prompt_id": next.Prompt.ID, "order": []int{0, 1}, "verdict": "tie",
		"responses": []map[string]any{{"model": "m", "content": "one", "rating": 3}, {"model": "m", "content": "two", "rating": 3}}}
	status, body = alice.call("POST", "/app/api/rankings", tie)
	mustStatus(t, "tie", 201, status, body)
	var rk rankingJSON
	json.Unmarshal(body, &rk)
	if rk.Verdict != store.VerdictTie || rk.Responses[1].Rating != 3 {
		t.Fatalf("tie saved as %s", body)
	}
	for name, c := range map[string]struct {
		change func(map[string]any)
		want   string
	}{
		"a draw":      {func(r map[string]any) { r["verdict"] = "draw" }, `"draw"`},
		"a rating 8":  {func(r map[string]any) { r["responses"].([]map[string]any)[0]["rating"] = 8 }, `rating 8`},
		"a rating -1": {func(r map[string]any) { r["responses"].([]map[string]any)[1]["rating"] = -1 }, `rating -1`},
		"a tie of 3": {func(r map[string]any) {
			r["responses"] = append(r["responses"].([]map[string]any), map[string]any{"model": "m", "content": "three"})
			r["order"] = []int{0, 1, 2}
		}, `verdict "tie" is for a comparison of 2 answers`},
	} {
		bad := map[string]any{"prompt_id": next.Prompt.ID + 1, "order": []int{0, 1}, "verdict": "tie",
			"responses": []map[string]any{{"model": "m", "content": "one"}, {"model": "m", "content": "two"}}}
		c.change(bad)
		status, body = alice.call("POST", "/app/api/rankings", bad)
		mustStatus(t, name, 400, status, body)
		var e struct{ Error string }
		if json.Unmarshal(body, &e); !strings.Contains(e.Error, c.want) {
			t.Errorf("%s: %s does not say %q", name, body, c.want)
		}
	}
	status, body = alice.call("PUT", fmt.Sprintf("/app/api/rankings/%d", rk.ID), map[string]any{"order": []int{1, 0}, "ratings": []int{2, 6}})
	mustStatus(t, "edit", 200, status, body)
	if got, _ := ts.store.Ranking(t.Context(), rk.ID); got.Verdict != "" || got.Order[0] != 1 || got.Responses[1].Rating != 6 {
		t.Errorf("after the edit the store has %+v", got)
	}
	status, body = alice.call("PUT", fmt.Sprintf("/app/api/rankings/%d", rk.ID), map[string]any{"order": []int{1, 0}, "ratings": []int{2, 9}})
	mustStatus(t, "a rating of 9", 400, status, body)

	status, body = alice.call("GET", "/app/api/labels", nil)
	mustStatus(t, "labels", 200, status, body)
	var labels struct{ Rankings []rankingJSON }
	json.Unmarshal(body, &labels)
	if len(labels.Rankings) != 1 || len(labels.Rankings[0].Prompt) == 0 || labels.Rankings[0].Prompt[0].Content != next.Prompt.Messages[0].Content {
		t.Errorf("labels without the prompt's text: %s", body)
	}
	status, body = alice.call("GET", "/app/api/progress", nil)
	var p progressJSON
	json.Unmarshal(body, &p)
	if p.Prompts < 2 || p.LeftRank != p.Prompts-1 || p.LeftDemonstrate != p.Prompts {
		t.Errorf("progress %s: want one prompt fewer left to rank", body)
	}

	status, body = alice.call("GET", importPath, nil)
	mustStatus(t, "prompts by an annotator", 403, status, body)
	status, body = admin.call("GET", importPath+"?limit=1000", nil)
	mustStatus(t, "prompts?limit=1000", 400, status, body)
	status, body = admin.call("GET", importPath, nil)
	mustStatus(t, "prompts", 200, status, body)
	var list struct {
		Prompts []promptStatJSON
		Total   int
	}
	json.Unmarshal(body, &list)
	if list.Total != p.Prompts || len(list.Prompts) != p.Prompts {
		t.Fatalf("prompts: %s", body)
	}
	for _, ps := range list.Prompts {
		if want := ps.ID == next.Prompt.ID; (ps.Rankings == 1 && ps.Comparisons == 1) != want || len(ps.Messages) == 0 {
			t.Errorf("prompt %d: %+v", ps.ID, ps)
		}
	}
}
