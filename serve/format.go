package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/golem-ml/golem/generate/constrain"
)

// Structured output: OpenAI's response_format and Ollama's format, by
// constrained decoding (generate/constrain): at each step the tokens that
// cannot continue a value of the schema get probability 0, so the answer
// parses and validates whatever the model. Stop strings are not applied
// to such answers (they would cut the value); an answer cut by max_tokens
// or the context ends with finish_reason "length" and is not whole JSON.

// responseFormat is OpenAI's "response_format".
type responseFormat struct {
	Type       string `json:"type"`
	JSONSchema *struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Schema      json.RawMessage `json:"schema"`
		Strict      *bool           `json:"strict"`
	} `json:"json_schema"`
}

// schema compiles the format: nil for text.
func (f *responseFormat) schema() (*constrain.Schema, error) {
	if f == nil {
		return nil, nil
	}
	switch f.Type {
	case "text":
		return nil, nil
	case "json_object":
		return constrain.AnyObject(), nil
	case "json_schema":
		js := f.JSONSchema
		if js == nil {
			return nil, &fieldError{"response_format.json_schema", `"response_format": type "json_schema" needs "json_schema": {"name": ..., "schema": {...}}`}
		}
		if js.Name == "" {
			return nil, &fieldError{"response_format.json_schema.name", `"response_format.json_schema.name" missing`}
		}
		return compileSchema(js.Schema, "response_format.json_schema.schema")
	case "":
		return nil, &fieldError{"response_format.type", `"response_format.type" missing: "text", "json_object" or "json_schema"`}
	}
	return nil, &fieldError{"response_format.type", fmt.Sprintf(`"response_format.type" %q is not "text", "json_object" or "json_schema"`, f.Type)}
}

// compileSchema compiles a request's JSON schema, which must be an
// object; field names it in errors.
func compileSchema(raw json.RawMessage, field string) (*constrain.Schema, error) {
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
		return nil, &fieldError{field, fmt.Sprintf("%q must be a JSON schema object", field)}
	}
	s, err := constrain.Compile(raw)
	var se *constrain.Error
	if errors.As(err, &se) {
		path := field
		if se.Path != "" {
			path += "." + se.Path
		}
		return nil, &fieldError{path, fmt.Sprintf("%q: %s", path, se.Msg)}
	}
	return s, err
}

// ollamaFormat compiles Ollama's "format": "json" (any object), a schema
// object, or "" / null (text).
func ollamaFormat(raw json.RawMessage) (*constrain.Schema, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || string(t) == "null" || string(t) == `""` {
		return nil, nil
	}
	var s string
	if json.Unmarshal(t, &s) == nil {
		if s != "json" {
			return nil, &fieldError{"format", fmt.Sprintf(`"format" %q: want "json" or a JSON schema object`, s)}
		}
		return constrain.AnyObject(), nil
	}
	return compileSchema(t, "format")
}

// guides keeps the guides of recent schemas, by model weights and schema:
// a schema asked again finds its masks cached.
var guides = struct {
	sync.Mutex
	vocabs map[*Weights]*constrain.Vocab
	byKey  map[guideKey]*constrain.Guide
}{vocabs: map[*Weights]*constrain.Vocab{}, byKey: map[guideKey]*constrain.Guide{}}

type guideKey struct {
	w      *Weights
	schema string
}

// maxGuides bounds the guides kept (each caches up to 16 MiB of masks).
const maxGuides = 16

// guideFor returns the guide of s (whose source is key) on w's vocabulary.
func guideFor(w *Weights, key string, s *constrain.Schema) *constrain.Guide {
	guides.Lock()
	defer guides.Unlock()
	k := guideKey{w, key}
	if g, ok := guides.byKey[k]; ok {
		return g
	}
	v, ok := guides.vocabs[w]
	if !ok {
		if len(guides.vocabs) >= maxGuides {
			clear(guides.vocabs)
		}
		v = constrain.TokenizerVocab(w.Tok, w.Model.Config.Vocab, w.Stop)
		guides.vocabs[w] = v
	}
	if len(guides.byKey) >= maxGuides {
		clear(guides.byKey)
	}
	g := constrain.NewGuide(s, v)
	guides.byKey[k] = g
	return g
}

// constrain makes the request's answers values of s (nil: free text);
// key identifies s for the guide cache.
func (g *genRequest) constrain(s *constrain.Schema, key string) {
	if s == nil {
		return
	}
	g.s.Guide = guideFor(g.w, key, s)
	g.stop = nil
}

// format applies an OpenAI request's response_format.
func (g *genRequest) format(c *openaiCommon) error {
	s, err := c.ResponseFormat.schema()
	if err != nil || s == nil {
		return err
	}
	key := c.ResponseFormat.Type
	if js := c.ResponseFormat.JSONSchema; js != nil && key == "json_schema" {
		key = string(js.Schema)
	}
	g.constrain(s, key)
	return nil
}
