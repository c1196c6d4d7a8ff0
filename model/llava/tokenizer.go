package llava

import "github.com/golem-ml/golem/tokenizer"

// The tokenizer beside a LLaVA folder carries "<image>" as a special token
// whose id is the image token's row (c.ImageToken, past the language
// model's vocabulary: Save writes the row), as transformers' LLaVA
// tokenizers do, so that a transformers user's processor puts the id into
// input_ids. golem splits prompts on the text "<image>" and never looks
// the row up: LoadTokenizer drops the token again, so the tokenizer is
// the language model's and a literal "<image>" in text encodes as text.

// imageToken returns the added token SaveTokenizer writes for c: none
// when the image token is inside the vocabulary (llava-hf's folders, whose
// tokenizers have it already) or tok has "<image>" already.
func imageToken(tok *tokenizer.Tokenizer, c *Config) []tokenizer.AddedToken {
	if _, ok := tok.SpecialID(Placeholder); ok || c.ImageToken != c.Text.Vocab || tok.VocabSize() > c.ImageToken {
		return nil
	}
	return []tokenizer.AddedToken{{Content: Placeholder, ID: c.ImageToken}}
}

// SaveTokenizer writes tok into dir (tokenizer.json and
// tokenizer_config.json) beside a LLaVA folder, or an adapter over one,
// of config c: with "<image>" an added special token at c.ImageToken.
func SaveTokenizer(tok *tokenizer.Tokenizer, dir string, c *Config) error {
	return tok.SaveForModel(dir, c.Text.Context, imageToken(tok, c)...)
}

// LoadTokenizer reads the tokenizer in dir (a LLaVA folder, an adapter
// over one, or a folder with its tokenizer) for a LLaVA model of config c,
// without "<image>" when its id is c.ImageToken past the language model's
// vocabulary (SaveTokenizer's); a folder whose tokenizer has no
// "<image>" (golem's before) reads as it is.
func LoadTokenizer(dir string, c *Config) (*tokenizer.Tokenizer, error) {
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return nil, err
	}
	if id, ok := tok.SpecialID(Placeholder); ok && id == c.ImageToken && c.ImageToken == c.Text.Vocab {
		tok.RemoveSpecial(Placeholder)
	}
	return tok, nil
}
