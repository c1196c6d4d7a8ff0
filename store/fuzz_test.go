package store

import (
	"errors"
	"testing"
)

// FuzzParsePromptLine: no import line makes the parser panic, every
// rejection is ErrInvalid, and every accepted prompt is a valid conversation.
func FuzzParsePromptLine(f *testing.F) {
	for _, seed := range []string{
		`{"prompt": "hi"}`,
		`{"prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}], "source": "x"}`,
		`{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}, {"role": "user", "content": "q2"}]}`,
		`{"prompt": null, "messages": null}`,
		`{"prompt": [1, 2]}`,
		`{"prompt": {"role": "user"}}`,
		"{\"prompt\": \"\xff\"}",
		`[]`, `""`, `null`, `{`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		msgs, _, _, err := parsePromptLine(line)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("parsePromptLine(%q): error %v is not ErrInvalid", line, err)
			}
			return
		}
		if err := validConversation(msgs); err != nil {
			t.Fatalf("parsePromptLine(%q) accepted an invalid conversation: %v", line, err)
		}
	})
}
