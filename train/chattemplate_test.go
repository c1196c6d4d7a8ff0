package train

import (
	"strings"
	"testing"

	"github.com/golem-ml/golem/data"
	"github.com/golem-ml/golem/tokenizer"
)

// A model with its own chat template trains on that template, not ChatML:
// SFT adds no ChatML tokens, and the RL stages' answers end at the
// template's end of turn, with the assistant's words masked.
func TestStagesUseModelChatTemplate(t *testing.T) {
	text := strings.Repeat("The quick brown fox jumps over the lazy dog. What is two and two? Four. ", 200)
	tok, err := tokenizer.Train(tokenizer.TrainOptions{Texts: []string{text}, VocabSize: 300, Special: []string{"<start_of_turn>", "<end_of_turn>"}})
	if err != nil {
		t.Fatal(err)
	}
	// golem's trained tokenizers have ChatML's tokens: the template, not
	// their presence, must decide.
	tmpl := "{% for m in messages %}{{ '<start_of_turn>' + m.role + '\\n' + m.content + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}<start_of_turn>assistant\n{% endif %}"
	if err := tok.SetChatTemplate(tmpl, map[string]string{"eos_token": "<end_of_turn>"}); err != nil {
		t.Fatal(err)
	}
	if !HasChatTokens(tok) {
		t.Fatal("SFT would add ChatML tokens to a model with a chat template")
	}
	c := newChat(tok, 512, false)
	ids, mask, err := c.answer([]data.Message{{Role: "user", Content: "What is two and two?"}}, []data.Message{{Role: "assistant", Content: "Four."}}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Decode(ids); got != "<start_of_turn>user\nWhat is two and two?<end_of_turn>\n<start_of_turn>assistant\nFour.<end_of_turn>" {
		t.Fatalf("answer = %q", got)
	}
	var masked strings.Builder
	for i, m := range mask {
		if m {
			masked.WriteString(tok.Decode(ids[i : i+1]))
		}
	}
	if got := strings.TrimPrefix(masked.String(), "\n"); got != "Four.<end_of_turn>" {
		t.Errorf("masked = %q", got)
	}
	p, err := c.prompt([]data.Message{{Role: "user", Content: "Hi"}}, "test")
	if err != nil || !strings.HasSuffix(tok.Decode(p), "<start_of_turn>assistant\n") {
		t.Errorf("prompt = %q, %v", tok.Decode(p), err)
	}
}
