package serve

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// Strictness: a request field golem does not use is an error naming it,
// not silently dropped (Options.Lenient ignores the unknown ones). What a
// field may hold when golem does not use it is in fieldRules.

// fieldRule says what golem does with a request field that its request
// structs do not hold.
type fieldRule struct {
	// notYet marks a feature golem will have (thinking, Ollama's
	// logprobs): a 400 "not supported yet" even when lenient, since
	// its answer would have another shape. null, false and neutral pass.
	notYet bool
	// noop marks a field that does not change the answer (how Ollama runs
	// a model: threads, GPU layers, batch size): accepted whatever it is.
	noop bool
	// neutral are the JSON values that mean "off" and are accepted.
	neutral []string
}

// notYet and neutral build fieldRules.
func notYet(neutral ...string) fieldRule { return fieldRule{notYet: true, neutral: neutral} }
func neutral(values ...string) fieldRule { return fieldRule{neutral: values} }

var noop = fieldRule{noop: true}

// openaiFields are the rules for the OpenAI API's fields golem's structs
// do not hold. Keys are paths with [] for any array element.
var openaiFields = map[string]fieldRule{
	"functions":                notYet("[]"),
	"function_call":            notYet(`"none"`),
	"messages[].function_call": notYet(),
	"frequency_penalty":        neutral("0"),
	"presence_penalty":         neutral("0"),
	"repetition_penalty":       neutral("1"), // vLLM's
	"logit_bias":               neutral("{}"),
	"best_of":                  neutral("1"),
	"suffix":                   neutral(`""`),
	"modalities":               neutral(`["text"]`),
	"store":                    neutral(),
	"user":                     noop, // an end user's id, for the provider's abuse monitoring
	"metadata":                 noop, // kept with stored completions, which golem does not keep
	"service_tier":             neutral(`"auto"`, `"default"`),
	"messages[].refusal":       neutral(),
}

// ollamaFields are the rules for the Ollama API's fields golem's structs
// do not hold.
var ollamaFields = map[string]fieldRule{
	"think":               notYet(),
	"logprobs":            notYet(),
	"top_logprobs":        notYet("0"),
	"messages[].thinking": notYet(`""`),
	"template":            neutral(`""`),
	"suffix":              neutral(`""`),
	"context":             neutral("[]"),
	"verbose":             noop, // /api/show: golem's answer is short anyway
	// How Ollama runs a model, not what it answers: golem always runs the
	// model's whole context on the server's --device and --threads.
	"options.num_ctx":    noop,
	"options.num_batch":  noop,
	"options.num_gpu":    noop,
	"options.main_gpu":   noop,
	"options.low_vram":   noop,
	"options.f16_kv":     noop,
	"options.logits_all": noop,
	"options.vocab_only": noop,
	"options.use_mmap":   noop,
	"options.use_mlock":  noop,
	"options.num_thread": noop,
	"options.numa":       noop,
	"options.num_keep":   noop,
	// Sampling golem does not do: only the values that turn it off.
	"options.repeat_penalty":    neutral("1"),
	"options.presence_penalty":  neutral("0"),
	"options.frequency_penalty": neutral("0"),
	"options.min_p":             neutral("0"),
	"options.typical_p":         neutral("1"),
	"options.tfs_z":             neutral("1"),
	"options.mirostat":          neutral("0"),
	"options.repeat_last_n":     noop, // only used by the penalties above
	"options.penalize_newline":  noop,
	"options.mirostat_tau":      noop, // only used by mirostat
	"options.mirostat_eta":      noop,
}

// checkFields checks body, already decoded into v, for fields v does not
// hold, following rules; lenient lets unknown fields pass (never a notYet
// one). The error names the field as the client wrote it
// ("messages[1].images").
func checkFields(body []byte, v any, rules map[string]fieldRule, lenient bool) error {
	return walkFields(json.RawMessage(body), reflect.TypeOf(v), "", "", rules, lenient)
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

func walkFields(raw json.RawMessage, t reflect.Type, pattern, path string, rules map[string]fieldRule, lenient bool) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil // it checks itself (stopList, chatContent)
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return nil
		}
		for i, it := range items {
			if err := walkFields(it, t.Elem(), pattern+"[]", fmt.Sprintf("%s[%d]", path, i), rules, lenient); err != nil {
				return err
			}
		}
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			return nil
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p, pp := k, k
			if path != "" {
				p, pp = pattern+"."+k, path+"."+k
			}
			if ft := jsonField(t, k); ft != nil {
				if err := walkFields(obj[k], ft, p, pp, rules, lenient); err != nil {
					return err
				}
				continue
			}
			if err := judgeField(pp, obj[k], rules[p], lenient); err != nil {
				return err
			}
		}
	}
	return nil
}

// judgeField decides on a field golem's structs do not hold.
func judgeField(path string, raw json.RawMessage, r fieldRule, lenient bool) error {
	var val any
	if json.Unmarshal(raw, &val) != nil || val == nil || val == false || r.noop {
		return nil
	}
	for _, n := range r.neutral {
		var nv any
		json.Unmarshal([]byte(n), &nv)
		if reflect.DeepEqual(val, nv) {
			return nil
		}
	}
	shown := string(raw)
	if len(shown) > 40 {
		shown = shown[:37] + "..."
	}
	switch {
	case r.notYet:
		return &fieldError{path, fmt.Sprintf("%q is not supported yet by golem serve; leave it out (or send null)", path)}
	case lenient:
		return nil
	case len(r.neutral) > 0:
		return &fieldError{path, fmt.Sprintf("%q %s: golem serve does not support it (only %s, which turns it off); leave it out, or start golem serve with --lenient to ignore fields it does not support", path, shown, strings.Join(r.neutral, " or "))}
	}
	return &fieldError{path, fmt.Sprintf("%q: golem serve does not support this field; leave it out, or start golem serve with --lenient to ignore fields it does not support", path)}
}

// fieldError is a request field golem refuses; path names it.
type fieldError struct{ path, msg string }

func (e *fieldError) Error() string { return e.msg }
