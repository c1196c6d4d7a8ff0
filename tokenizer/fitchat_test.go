package tokenizer

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// naiveFit drops one exchange at a time, rendering after each: what
// FitChat must agree with.
func naiveFit(t *Tokenizer, msgs []Message, room int) ([]Message, error) {
	h := append([]Message(nil), msgs...)
	for {
		ids, _, err := t.RenderChat(h, true)
		if err != nil {
			return nil, err
		}
		if len(ids) <= room {
			return h, nil
		}
		first := 0
		if h[0].Role == "system" {
			first = 1
		}
		if len(h)-first <= 1 {
			return nil, fmt.Errorf("does not fit")
		}
		n := 1
		if first+1 < len(h)-1 && h[first+1].Role == "assistant" {
			n = 2
		}
		h = append(h[:first], h[first+n:]...)
	}
}

func TestFitChat(t *testing.T) {
	tok := smallTrained(t)
	var h []Message
	h = append(h, Message{Role: "system", Content: "Be brief."})
	for i := range 12 {
		h = append(h, Message{Role: "user", Content: fmt.Sprintf("question %d %s", i, string(rune('a'+i)))})
		if i%4 != 3 { // a few turns without an answer
			h = append(h, Message{Role: "assistant", Content: fmt.Sprintf("answer number %d", i)})
		}
	}
	h = append(h, Message{Role: "user", Content: "last"})
	full, _, _ := tok.RenderChat(h, true)
	for room := len(full) + 1; room > 0; room-- {
		want, wantErr := naiveFit(tok, h, room)
		got, ids, err := tok.FitChat(h, room)
		if (err != nil) != (wantErr != nil) || !slices.Equal(got, want) {
			t.Fatalf("room %d: FitChat kept %d messages (%v), one at a time keeps %d (%v)", room, len(got), err, len(want), wantErr)
		}
		if err == nil && (len(ids) > room || got[0] != h[0] || got[len(got)-1] != h[len(h)-1]) {
			t.Fatalf("room %d: %d tokens, kept %v", room, len(ids), got)
		}
	}
	// A history of 20,000 turns is trimmed in a few renders.
	long := []Message{}
	for i := range 10_000 {
		long = append(long, Message{Role: "user", Content: fmt.Sprint("q", i)}, Message{Role: "assistant", Content: "a"})
	}
	long = append(long, Message{Role: "user", Content: "last"})
	start := time.Now()
	got, _, err := tok.FitChat(long, 64)
	if err != nil || got[len(got)-1].Content != "last" || len(got) > 40 {
		t.Fatalf("long history: kept %d, %v", len(got), err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("trimming 20,001 messages took %v", d)
	}
	if _, _, err := tok.FitChat([]Message{{Role: "user", Content: "far too long for three tokens"}}, 3); err == nil {
		t.Error("a message longer than the room was kept")
	}
}
