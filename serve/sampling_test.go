package serve

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
)

// A positive temperature too small to scale by answers like temperature 0
// (the most likely tokens), not with NUL characters; one out of range is
// a 400 naming the field.
func TestTinyTemperature(t *testing.T) {
	w, err := LoadWeights(cpu.New(), tinyDir(t, "llama"))
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine("tiny", "", w, EngineOptions{})
	defer e.Close()
	url := newHTTPServer(t, New([]*Engine{e}, nil, Options{Logf: t.Logf})) + "/v1/completions"
	answer := func(temp string) (int, string) {
		body := `{"model":"tiny","prompt":"The answer is","max_tokens":16,"min_tokens":16,"temperature":` + temp + `}`
		resp, err := http.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		var out struct {
			Choices []struct{ Text string } `json:"choices"`
		}
		if json.Unmarshal(buf.Bytes(), &out) != nil || len(out.Choices) != 1 {
			return resp.StatusCode, buf.String()
		}
		return resp.StatusCode, out.Choices[0].Text
	}
	status, greedy := answer("0")
	if status != 200 || greedy == "" {
		t.Fatalf("temperature 0: %d %q", status, greedy)
	}
	for _, temp := range []string{"1e-308", "5e-324"} {
		if status, text := answer(temp); status != 200 || text != greedy || strings.ContainsRune(text, 0) {
			t.Errorf("temperature %s: %d %q, want greedy's %q", temp, status, text, greedy)
		}
	}
	for _, temp := range []string{"-1e-308", "2.5", "1e400"} {
		if status, text := answer(temp); status != 400 || !strings.Contains(text, "temperature") {
			t.Errorf("temperature %s: %d %s, want a 400 about the temperature", temp, status, text)
		}
	}
}
