// Package tokenizer is golem's byte-level BPE tokenizer: it trains
// vocabularies, encodes and decodes text, reads the tokenizers people use
// (byte-level BPE, and SentencePiece BPE and Unigram models, see
// sentencepiece.go) and writes Hugging Face tokenizer.json files.
//
// A byte-level BPE first splits text into pieces with a pre-tokenizer
// pattern (GPT-2's, or tiktoken's cl100k/o200k, also used by Llama 3 and
// Qwen2), then merges the bytes of each piece pairwise, lowest-ranked pair
// first. Any byte string, invalid UTF-8 included, encodes and decodes back
// unchanged. The patterns are hand-written scanners that give the same
// pieces as the regular expressions (which Go's regexp cannot express: they
// need lookahead). Encoding caches the ids of each piece per goroutine, and
// EncodeParallel and EncodeBatch spread large inputs over several cores.
//
// Load reads GPT-2's encoder.json + vocab.bpe, tiktoken rank files,
// Hugging Face tokenizer.json files (byte-level BPE models with a ByteLevel
// pre-tokenizer, or a Split of a known pattern followed by ByteLevel; no
// normalizer or NFC; or SentencePiece-style BPE and Unigram models with
// byte fallback, Metaspace or Prepend/Replace, as Llama 2, Mistral and
// Gemma ship them) and SentencePiece .model files (LoadSentencePiece),
// which encode as spm_encode does. Save writes tokenizer.json, which Hugging Face
// tokenizers loads and encodes identically, and tokenizer_config.json with
// the special tokens and the chat template.
//
// Train learns a vocabulary from files, directories and JSONL "text"
// fields. Trained tokenizers reserve <|endoftext|>, <|im_start|>, <|im_end|>
// and <|pad|> as special tokens. RenderChat renders a conversation and
// marks the assistant's tokens for loss masking; SFT, reward modelling, RL,
// evaluation, generation and serving all use it. It renders with the
// model's own chat template when the tokenizer has one (Load reads
// chat_template from the tokenizer_config.json beside tokenizer.json; a
// list of named templates gives "default"), rendered exactly as
// transformers does by package chattemplate, and in ChatML otherwise:
// golem's own models keep ChatML, byte for byte.
//
// NewChar makes a character-level tokenizer (nanoGPT's shakespeare_char):
// the vocabulary is the sorted distinct characters of a text. It is saved
// as a tokenizer.json whose model is
//
//	{"type": "WordLevel", "unk_token": "<unk>", "vocab": {"\n": 0, " ": 1, ...}}
//
// with the pre-tokenizer {"type": "Split", "pattern": {"Regex": "[\\s\\S]"},
// "behavior": "Isolated"} (every character a word) and the decoder
// {"type": "Fuse"}. Load reads any WordLevel model whose tokens are all
// single characters as a character tokenizer; Encode drops characters that
// are not in the vocabulary (Hugging Face fails on them instead, as no
// <unk> token is in the vocabulary).
package tokenizer
