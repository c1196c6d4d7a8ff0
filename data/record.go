package data

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Error is a record that could not be read. It names the file, the line
// and, when one field is at fault, the field.
type Error struct {
	File   string // the file as it was named to the reader
	Line   int    // 1-based line of the fault or of the record; 0 if unknown
	Record int    // 1-based index of the record in a JSON array; 0 in JSON lines
	Field  string // the field at fault, such as `"conversations"[2].from`; may be empty
	Msg    string // what is wrong
}

// Error formats the error as `data: alpaca.json line 17: "output" missing`.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("data: ")
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, " line %d", e.Line)
	}
	if e.Record > 0 {
		fmt.Fprintf(&b, " (record %d)", e.Record)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(" ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// record is one JSON object being read.
type record struct {
	file   string
	line   int    // line where the record starts
	index  int    // 1-based record index in a JSON array, 0 in JSON lines
	raw    []byte // the object's bytes, to find a field's line in a JSON array
	fields map[string]json.RawMessage
}

// fail returns an error for field (a path such as `"output"` or
// `"messages"[2].role`) of the record.
func (r *record) fail(field, format string, args ...any) *Error {
	return &Error{File: r.file, Line: r.fieldLine(field), Record: r.index, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// fieldLine is the line of the field's top-level key when the record spans
// several lines (a pretty-printed JSON array), else the record's line.
func (r *record) fieldLine(field string) int {
	if r.index == 0 || !strings.HasPrefix(field, `"`) {
		return r.line
	}
	key := field
	if end := strings.Index(field[1:], `"`); end >= 0 {
		key = field[:end+2]
	}
	for off := 0; ; {
		i := bytes.Index(r.raw[off:], []byte(key))
		if i < 0 {
			return r.line
		}
		off += i + len(key)
		rest := bytes.TrimLeft(r.raw[off:], " \t\r\n")
		if len(rest) > 0 && rest[0] == ':' {
			return r.line + bytes.Count(r.raw[:off], []byte("\n"))
		}
	}
}

// q quotes a field name the way errors show it.
func q(name string) string { return strconv.Quote(name) }

// has reports whether the record has the key with a non-null value.
func (r *record) has(key string) bool {
	v, ok := r.fields[key]
	return ok && !isNull(v)
}

func isNull(v json.RawMessage) bool { return string(v) == "null" }

// jsonType names the JSON type of a value for error messages.
func jsonType(v json.RawMessage) string {
	if len(v) == 0 {
		return "empty"
	}
	switch v[0] {
	case '"':
		return "a string"
	case '[':
		return "a list"
	case '{':
		return "an object"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// missing returns the error for an absent or null required field.
func (r *record) missing(key string) *Error {
	if _, ok := r.fields[key]; ok {
		return r.fail(q(key), "is null")
	}
	return r.fail(q(key), "missing")
}

// decodeString decodes v, which must be a JSON string, for the field path.
func (r *record) decodeString(v json.RawMessage, path string) (string, error) {
	if len(v) == 0 || v[0] != '"' {
		return "", r.fail(path, "is %s, want a string", jsonType(v))
	}
	// The record was checked as a whole, so a string without escapes is
	// its bytes between the quotes.
	if len(v) >= 2 && v[len(v)-1] == '"' && bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1]), nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", r.fail(path, "is not a valid string: %v", err)
	}
	return s, nil
}

// text returns the required, non-blank string field key.
func (r *record) text(key string) (string, error) {
	if !r.has(key) {
		return "", r.missing(key)
	}
	s, err := r.decodeString(r.fields[key], q(key))
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(s) == "" {
		return "", r.fail(q(key), "is empty")
	}
	return s, nil
}

// optText returns the optional string field key, "" when absent or null.
func (r *record) optText(key string) (string, error) {
	if !r.has(key) {
		return "", nil
	}
	return r.decodeString(r.fields[key], q(key))
}

// list decodes v, which must be a JSON list, for the field path.
func (r *record) list(v json.RawMessage, path string) ([]json.RawMessage, error) {
	if len(v) == 0 || v[0] != '[' {
		return nil, r.fail(path, "is %s, want a list", jsonType(v))
	}
	var items []json.RawMessage
	if err := json.Unmarshal(v, &items); err != nil {
		return nil, r.fail(path, "is not a valid list: %v", err)
	}
	return items, nil
}

// images reads the optional "images" list (TRL's vision formats' field):
// image file paths, relative ones taken against dir (the data file's
// folder). One image a record: golem's vision-language model takes one.
// Whether the files exist is checked where they are read.
func (r *record) images(dir string) ([]string, error) {
	if !r.has("images") {
		return nil, nil
	}
	vs, err := r.list(r.fields["images"], q("images"))
	if err != nil {
		return nil, err
	}
	if len(vs) > 1 {
		return nil, r.fail(q("images"), "holds %d images; golem's vision-language model takes one a record", len(vs))
	}
	var out []string
	for i, v := range vs {
		path := fmt.Sprintf(`"images"[%d]`, i)
		s, err := r.decodeString(v, path)
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(s) == "" {
			return nil, r.fail(path, "is empty")
		}
		if !filepath.IsAbs(s) {
			s = filepath.Join(dir, filepath.FromSlash(s))
		}
		out = append(out, s)
	}
	return out, nil
}

// object decodes v, which must be a JSON object, for the field path.
func (r *record) object(v json.RawMessage, path string) (map[string]json.RawMessage, error) {
	if len(v) == 0 || v[0] != '{' {
		return nil, r.fail(path, "is %s, want an object", jsonType(v))
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(v, &m); err != nil {
		return nil, r.fail(path, "is not a valid object: %v", err)
	}
	return m, nil
}

// Role names as they appear in files, and the role each stands for.
var roleAliases = map[string]string{
	"system":    "system",
	"user":      "user",
	"assistant": "assistant",
	"human":     "user",
	"gpt":       "assistant",
}

// message decodes one message object: {"role","content"} as TRL and OpenAI
// write it, or {"from","value"} as ShareGPT does. Content must not be blank,
// except for an assistant message when compared is set (see [Example]).
func (r *record) message(v json.RawMessage, path string, compared bool) (Message, error) {
	m, err := r.object(v, path)
	if err != nil {
		return Message{}, err
	}
	roleKey, contentKey, want := "role", "content", "system, user or assistant"
	if _, ok := m["from"]; ok {
		roleKey, contentKey, want = "from", "value", "human, gpt or system"
	} else if _, ok := m["value"]; ok {
		roleKey, contentKey, want = "from", "value", "human, gpt or system"
	}
	rv, ok := m[roleKey]
	if !ok || isNull(rv) {
		return Message{}, r.fail(path+"."+roleKey, "missing")
	}
	role, err := r.decodeString(rv, path+"."+roleKey)
	if err != nil {
		return Message{}, err
	}
	norm, ok := roleAliases[role]
	if !ok {
		return Message{}, r.fail(path+"."+roleKey, "%q unknown (want %s)", role, want)
	}
	cv, ok := m[contentKey]
	if !ok {
		return Message{}, r.fail(path+"."+contentKey, "missing")
	}
	if len(cv) > 0 && cv[0] == '[' {
		return Message{}, r.fail(path+"."+contentKey, "is a list of parts; only text content is supported")
	}
	content, err := r.decodeString(cv, path+"."+contentKey)
	if err != nil {
		return Message{}, err
	}
	if strings.TrimSpace(content) == "" && !(compared && norm == "assistant") {
		return Message{}, r.fail(path+"."+contentKey, "is empty")
	}
	return Message{Role: norm, Content: content}, nil
}

// messages decodes a non-empty list of messages.
func (r *record) messages(v json.RawMessage, path string, compared bool) ([]Message, error) {
	items, err := r.list(v, path)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, r.fail(path, "is an empty list")
	}
	msgs := make([]Message, len(items))
	for i, it := range items {
		if msgs[i], err = r.message(it, fmt.Sprintf("%s[%d]", path, i), compared); err != nil {
			return nil, err
		}
	}
	return msgs, nil
}

// checkTurns checks the order of a conversation's roles: an optional
// system message first (only when first is "user"), then turns alternating
// between user and assistant starting with first, ending with last.
func (r *record) checkTurns(msgs []Message, path, first, last string) error {
	want := first
	for i, m := range msgs {
		if m.Role == "system" {
			if i == 0 && first == "user" {
				continue
			}
			if first == "user" {
				return r.fail(fmt.Sprintf("%s[%d]", path, i), "is a system message; only the first message may be one")
			}
			return r.fail(fmt.Sprintf("%s[%d]", path, i), "is a system message; an answer holds only assistant and user turns")
		}
		if m.Role != want {
			return r.fail(fmt.Sprintf("%s[%d]", path, i), "is %s message where %s message should be (turns alternate between user and assistant, starting with %s)", an(m.Role), an(want), first)
		}
		want = other(want)
	}
	if n := len(msgs); n > 0 && msgs[n-1].Role != last {
		return r.fail(path, "ends with %s message, want %s", an(msgs[n-1].Role), last)
	}
	return nil
}

// an puts the indefinite article before a role name.
func an(role string) string {
	if role == "assistant" {
		return "an assistant"
	}
	return "a " + role
}

func other(role string) string {
	if role == "user" {
		return "assistant"
	}
	return "user"
}

// turns decodes a field that is either a string (standard form) or a list
// of messages (conversational form), and reports which it was. compared
// lets an answer be empty.
func (r *record) turns(key string, compared bool) (s string, msgs []Message, plain bool, err error) {
	if !r.has(key) {
		return "", nil, false, r.missing(key)
	}
	v := r.fields[key]
	switch v[0] {
	case '"':
		if compared {
			s, err = r.decodeString(v, q(key))
		} else {
			s, err = r.text(key)
		}
		return s, nil, true, err
	case '[':
		msgs, err = r.messages(v, q(key), compared)
		return "", msgs, false, err
	}
	return "", nil, false, r.fail(q(key), "is %s, want a string or a list of messages", jsonType(v))
}

// prompt decodes a prompt field: a string becomes one user message.
func (r *record) prompt(key string) ([]Message, bool, error) {
	s, msgs, plain, err := r.turns(key, false)
	if err != nil {
		return nil, false, err
	}
	if plain {
		return []Message{{Role: "user", Content: s}}, true, nil
	}
	return msgs, false, r.checkTurns(msgs, q(key), "user", "user")
}

// answer decodes an answer field: a string becomes one assistant message.
// compared lets the answer be empty.
func (r *record) answer(key string, compared bool) ([]Message, bool, error) {
	s, msgs, plain, err := r.turns(key, compared)
	if err != nil {
		return nil, false, err
	}
	if plain {
		return []Message{{Role: "assistant", Content: s}}, true, nil
	}
	return msgs, false, r.checkTurns(msgs, q(key), "assistant", "assistant")
}

// sameForm checks that fields a and b are both strings or both lists.
func (r *record) sameForm(a string, aPlain bool, b string, bPlain bool) error {
	if aPlain == bPlain {
		return nil
	}
	form := func(p bool) string {
		if p {
			return "a string"
		}
		return "a list of messages"
	}
	return r.fail(q(b), "is %s but %s is %s; use strings for both (standard) or message lists for both (conversational)", form(bPlain), q(a), form(aPlain))
}

// keys lists the record's keys, sorted, for error messages.
func (r *record) keys() string {
	ks := make([]string, 0, len(r.fields))
	for k := range r.fields {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return strings.Join(ks, ", ")
}
