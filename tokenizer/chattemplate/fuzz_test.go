package chattemplate

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzTemplate: any template source parses or fails, and renders or fails,
// within its limits; never a panic, a hang or a crash. The seeds are the
// corpus and the snippets (go test runs them; go test -fuzz explores).
func FuzzTemplate(f *testing.F) {
	files, _ := filepath.Glob("testdata/templates/*.jinja")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	for _, s := range snippets {
		f.Add(s)
	}
	b, err := os.ReadFile("testdata/messages.json")
	if err != nil {
		f.Fatal(err)
	}
	var sets map[string]json.RawMessage
	if err := json.Unmarshal(b, &sets); err != nil {
		f.Fatal(err)
	}
	in := Input{Messages: sets["tool_calls"], Tools: json.RawMessage(`[{"type": "function", "function": {"name": "f", "parameters": {}}}]`), AddGenerationPrompt: true,
		Vars: map[string]any{"bos_token": "<s>", "eos_token": "</s>"}}
	f.Fuzz(func(t *testing.T, src string) {
		tmpl, err := Parse(src)
		if err != nil {
			return
		}
		start := time.Now()
		tmpl.RenderLimited(context.Background(), in, Limits{Steps: 100_000, Output: 1 << 20, Timeout: time.Second})
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("render took %v", d)
		}
	})
}
