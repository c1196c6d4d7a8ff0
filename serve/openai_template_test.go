package serve

import (
	"bytes"
	"encoding/json"
	"testing"
)

// A streamed token's chunk written from the template is, byte for byte,
// what json.Marshal writes for the chunk's map, for chat and completions,
// and for text that needs escaping.
func TestDeltaTemplate(t *testing.T) {
	for _, chat := range []bool{true, false} {
		for _, delta := range []string{"hi", ` "quoted" \ <b>&`, "naïve 中文\n\t", "\u2028"} {
			for _, i := range []int{0, 3} {
				tm := deltaTemplate("chatcmpl-x\"y", "chat.completion.chunk", "m<1>", 1700000000, chat)
				got := tm.append(nil, i, delta)
				choice := map[string]any{"index": i, "finish_reason": nil, "logprobs": nil}
				if chat {
					choice["delta"] = map[string]any{"content": delta}
				} else {
					choice["text"] = delta
				}
				b, _ := json.Marshal(map[string]any{"id": "chatcmpl-x\"y", "object": "chat.completion.chunk", "created": 1700000000,
					"model": "m<1>", "system_fingerprint": "golem", "choices": []any{choice}})
				want := append(append([]byte("data: "), b...), '\n', '\n')
				if !bytes.Equal(got, want) {
					t.Fatalf("chat %v delta %q index %d:\n got %s\nwant %s", chat, delta, i, got, want)
				}
			}
		}
	}
}
