package constrain

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func mustCompile(t testing.TB, schema string) *Schema {
	t.Helper()
	s, err := Compile([]byte(schema))
	if err != nil {
		t.Fatalf("Compile(%s): %v", schema, err)
	}
	return s
}

func TestMatchAnyJSON(t *testing.T) {
	s := AnyJSON()
	good := []string{`0`, `-0`, `12`, `-1.5e+10`, `1E3`, `0.25`, `"a"`, `"\u00e9\n\"\\"`, `"é中😀"`, `true`, `false`, `null`,
		`[]`, `[1,"x",[],{}]`, `{}`, `{"a":1,"b":{"c":[null]}}`, `{"a":1,"a":2}`}
	bad := []string{``, `01`, `1.`, `.5`, `-`, `1e`, `+1`, `"abc`, `"\x"`, "\"a\x01\"", `[1,]`, `[,1]`, `{"a"}`, `{"a":}`,
		`{a:1}`, `{"a":1,}`, `tru`, `nul`, `[1 ]`, `{ }`, `"\ud8"`, "\"\xff\"", "\"\xc0\x80\"", "\"\xed\xa0\x80\"", `1 `, `{}{}`,
		`123456789012345678`}
	for _, g := range good {
		if !s.Match([]byte(g)) {
			t.Errorf("any JSON refuses %s", g)
		}
	}
	for _, b := range bad {
		if s.Match([]byte(b)) {
			t.Errorf("any JSON takes %q", b)
		}
	}
	deep := strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)
	if !s.Match([]byte(deep)) {
		t.Errorf("refuses %d nested arrays", MaxDepth)
	}
	if deeper := "[" + deep + "]"; s.Match([]byte(deeper)) {
		t.Errorf("takes %d nested arrays", MaxDepth+1)
	}
}

func TestMatchSchema(t *testing.T) {
	s := mustCompile(t, `{"type":"object","properties":{
		"name":{"type":"string","maxLength":3},
		"age":{"type":"integer"},
		"tags":{"type":"array","items":{"enum":["a","b"]},"minItems":1,"maxItems":2},
		"kind":{"anyOf":[{"type":"null"},{"const":{"x":1}}]},
		"ok":{"type":["boolean","null"]}
	},"required":["name","age","tags"],"additionalProperties":false}`)
	good := []string{`{"name":"abc","age":-3,"tags":["a"]}`, `{"name":"","age":0,"tags":["a","b"],"kind":null}`,
		`{"name":"é","age":7,"tags":["b"],"kind":{"x":1},"ok":true}`, `{"name":"x","age":1,"tags":["a"],"ok":null}`}
	bad := []string{`{"name":"abcd","age":1,"tags":["a"]}`, `{"name":"a","age":1.5,"tags":["a"]}`, `{"name":"a","age":1,"tags":[]}`,
		`{"name":"a","age":1,"tags":["a","b","a"]}`, `{"age":1,"name":"a","tags":["a"]}`, `{"name":"a","age":1}`,
		`{"name":"a","age":1,"tags":["c"]}`, `{"name":"a","age":1,"tags":["a"],"extra":1}`, `{"name":"a","age":1,"tags":["a"],"kind":{"x":2}}`}
	for _, g := range good {
		if !s.Match([]byte(g)) {
			t.Errorf("refuses %s", g)
		}
	}
	for _, b := range bad {
		if s.Match([]byte(b)) {
			t.Errorf("takes %s", b)
		}
	}
}

func TestMatchRefAndWrap(t *testing.T) {
	s := mustCompile(t, `{"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},"next":{"anyOf":[{"$ref":"#/$defs/node"},{"type":"null"}]}},"required":["v","next"],"additionalProperties":false}},"$ref":"#/$defs/node"}`)
	if !s.Match([]byte(`{"v":1,"next":{"v":2,"next":null}}`)) {
		t.Error("refuses a linked list")
	}
	if s.Match([]byte(`{"v":1,"next":{"v":2}}`)) {
		t.Error("takes a node without next")
	}
	w := s.Wrap("<tool_call>\n", "\n</tool_call>")
	if !w.Match([]byte("<tool_call>\n{\"v\":1,\"next\":null}\n</tool_call>")) {
		t.Error("wrapped: refuses a call")
	}
	if w.Match([]byte(`{"v":1,"next":null}`)) {
		t.Error("wrapped: takes the bare value")
	}
}

func TestCompileErrors(t *testing.T) {
	for schema, want := range map[string]string{
		`{"type":"string","pattern":"a+"}`:                    `keyword "pattern" is not supported`,
		`{"type":"object","properties":{"a":{"type":"str"}}}`: `properties.a.type: "str" is not a JSON schema type`,
		`{"type":"object","properties":{"a":{"minimum":1}}}`:  `properties.a.minimum: keyword "minimum"`,
		`{"$ref":"#/$defs/x"}`:                                `$ref: "#/$defs/x": only references`,
		`[1]`:                                                 `a schema must be an object`,
		`{"type":"object","properties":{},"required":["a"]}`:  `required[0]: "a" is not among the properties`,
		`{"type":"string","maxLength":-1}`:                    `maxLength: -1 is not an integer`,
		`{"type":"array","items":{"type":"array","items":` + strings.Repeat(`{"type":"array","items":`, MaxDepth) + `{}` + strings.Repeat(`}`, MaxDepth) + `}}`: "nested deeper",
		`{"type":"object" `: "not JSON",
	} {
		_, err := Compile([]byte(schema))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Compile(%.60s): %v, want an error with %q", schema, err, want)
		}
	}
}

// FuzzMatch checks the any-JSON matcher against encoding/json: what it
// takes is valid JSON in valid UTF-8, and every compact JSON text whose
// numbers and nesting are within the bounds is taken.
func FuzzMatch(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5e3,"x\u00e9"]}`, `[true,false,null]`, `"\ud83d\ude00"`, `-0.0`, `{"":{}}`, "\"\xe2\x82\xac\""} {
		f.Add([]byte(s))
	}
	any := AnyJSON()
	f.Fuzz(func(t *testing.T, b []byte) {
		got := any.Match(b)
		if got && (!json.Valid(b) || !utf8.Valid(b)) {
			t.Fatalf("takes %q, which encoding/json or utf8 refuses", b)
		}
		if !json.Valid(b) || !utf8.Valid(b) {
			return
		}
		var c bytes.Buffer
		json.Compact(&c, b)
		if !bytes.Equal(c.Bytes(), b) || !withinBounds(b) {
			return
		}
		if !got {
			t.Fatalf("refuses compact JSON %q", b)
		}
	})
}

// withinBounds: nesting up to MaxDepth and numbers with at most the
// digits the matcher writes.
func withinBounds(b []byte) bool {
	depth, inStr, esc := 0, false, false
	digits := 0
	for _, c := range b {
		switch {
		case inStr:
			if esc {
				esc = false
			} else if c == '\\' {
				esc = true
			} else if c == '"' {
				inStr = false
			}
			continue
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			depth++
			if depth > MaxDepth {
				return false
			}
		case c == '}' || c == ']':
			depth--
		}
		if isDigit(c) {
			digits++
			if digits > maxExpDigits {
				return false
			}
		} else {
			digits = 0
		}
	}
	return true
}

// Schemas that fork without end (a $ref cycle through anyOf, anyOfs
// nested deep and wide) compile, and matching them stays bounded.
func TestSchemaForkBounds(t *testing.T) {
	for _, raw := range []string{
		`{"$defs":{"a":{"anyOf":[{"$ref":"#/$defs/a"},{"type":"null"}]}},"$ref":"#/$defs/a"}`,
		`{"$defs":{"a":{"anyOf":[{"$ref":"#/$defs/a"},{"$ref":"#/$defs/a"}]}},"$ref":"#/$defs/a"}`,
		strings.Repeat(`{"anyOf":[`, 12) + `{"type":"integer"}` + strings.Repeat(`,{"type":"integer"},{"type":"string"}]}`, 12),
	} {
		s, err := Compile([]byte(raw))
		if err != nil {
			t.Logf("%.50s: %v", raw, err)
			continue
		}
		s.Match([]byte("null"))
		s.Match([]byte("12"))
	}
}

// FuzzCompile: any bytes compile or fail with an error; what compiles
// matches any text without a panic.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{`{"type":"object","properties":{"a":{"type":"string","maxLength":3}},"required":["a"]}`,
		`{"$defs":{"n":{"anyOf":[{"$ref":"#/$defs/n"},{"type":"array","items":{"$ref":"#/$defs/n"}}]}},"$ref":"#/$defs/n"}`,
		`{"enum":[1,"a",null,{"x":[1]}]}`, `{"type":["string","null"]}`} {
		f.Add([]byte(s), []byte(`{"a":"xy"}`))
	}
	f.Fuzz(func(t *testing.T, schema, text []byte) {
		s, err := Compile(schema)
		if err != nil {
			return
		}
		if s.Match(text) && !json.Valid(text) {
			t.Fatalf("schema %s matches %q, which is not JSON", schema, text)
		}
	})
}
