// Package constrain is constrained decoding: a JSON schema (the subset
// OpenAI's strict mode takes) compiled to a byte-level pushdown matcher,
// and, at each step of a sequence, the set of tokens whose bytes continue
// a value of the schema, so that whatever the model (an untrained one
// included), the answer parses and validates.
//
// Compile (or AnyJSON, AnyObject) gives a Schema; NewVocab or
// TokenizerVocab a tokenizer's tokens as a trie; NewGuide joins the two
// and caches the allowed tokens by matcher state; Guide.Start gives one
// sequence's Matcher, a generate.Constraint for generate.Options.Constrain
// or generate.Sampler.Constrain.
//
// A step's mask walks the token trie with the matcher's state: tokens
// that share a prefix are checked once for it, and a branch the state
// refuses is skipped whole (after a '{' only the tokens that start with
// '"' or '}' are visited). Masks are cached by state, with counters
// (characters left of a maxLength, digits, items) clipped to the longest
// token, so a string's text is walked once, not once a character.
//
// The matcher writes compact JSON (no whitespace between tokens), object
// properties in the schema's order. Nesting is bounded by MaxDepth;
// numbers by 16 digits before and after the point and 2 of exponent, so
// that every number a float64 holds; the end of text (the stop tokens) is
// allowed only once the value is whole. An answer cut by the token limit
// is not whole: Matcher.Complete says so.
package constrain
