package tokenizer

// Message is one turn of a conversation. Role is "system", "user" or
// "assistant". The JSON shape is the one TRL and OpenAI use.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}
