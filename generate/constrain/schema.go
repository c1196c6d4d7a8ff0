package constrain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// kind is what a schema node matches.
type kind uint8

const (
	kAny     kind = iota // any JSON value (nesting bounded by MaxDepth)
	kObject              // an object: its properties in order, or any keys (open)
	kArray               // an array of items
	kString              // a string, its length in characters bounded
	kNumber              // a number
	kInteger             // an integer (no fraction, no exponent)
	kLiteral             // one of a list of exact texts (enum, const, true, false, null)
	kAnyOf               // one of several schemas
	kSeq                 // parts one after another (the root: prefix, value, suffix)
	kRef                 // a $ref, resolved to target
)

// node is one compiled schema.
type node struct {
	id       int32
	kind     kind
	props    []prop // object: in the schema's order
	reqAfter []bool // object: reqAfter[k]: a required property among props[k:]
	open     bool   // object: any keys, any values
	items    *node  // array
	minItems int32
	maxItems int32 // -1: no bound
	minLen   int32 // string, in characters
	maxLen   int32 // -1: no bound
	lits     [][]byte
	alts     []*node // anyOf alternatives, seq parts
	target   *node   // ref
}

type prop struct {
	name     string
	key      []byte // `"name":`
	val      *node
	required bool
}

// MaxDepth bounds the nesting of objects and arrays a schema may declare
// and a value may have where the schema allows any JSON.
const MaxDepth = 16

// Limits on numbers: digits before the point, after it, of the exponent.
// A float64 holds 17 significant digits; more would not round-trip anyway.
const (
	maxIntDigits  = 16
	maxFracDigits = 16
	maxExpDigits  = 2
)

// Schema is a compiled JSON schema: the values it matches, written as
// compact JSON (no whitespace between tokens), object properties in the
// order the schema lists them.
type Schema struct {
	root  *node // a kSeq: prefix, value, suffix
	nodes []*node
}

// The values of "any JSON": shared by every schema.
var (
	anyNode    = &node{kind: kAny}
	anyObject  = &node{kind: kObject, open: true}
	anyArray   = &node{kind: kArray, items: anyNode, maxItems: -1}
	anyString  = &node{kind: kString, maxLen: -1}
	anyNumber  = &node{kind: kNumber}
	litTrue    = &node{kind: kLiteral, lits: [][]byte{[]byte("true")}}
	litFalse   = &node{kind: kLiteral, lits: [][]byte{[]byte("false")}}
	litNull    = &node{kind: kLiteral, lits: [][]byte{[]byte("null")}}
	litBoolean = &node{kind: kLiteral, lits: [][]byte{[]byte("true"), []byte("false")}}
)

func init() {
	for i, n := range []*node{anyNode, anyObject, anyArray, anyString, anyNumber, litTrue, litFalse, litNull, litBoolean} {
		n.id = int32(i + 1)
	}
}

const firstID = 16 // ids below are the shared nodes'

// AnyJSON matches any JSON value (nesting up to MaxDepth).
func AnyJSON() *Schema { return newSchema(anyNode) }

// AnyObject matches any JSON object: what OpenAI's response_format
// json_object and Ollama's format "json" ask for.
func AnyObject() *Schema { return newSchema(anyObject) }

func newSchema(root *node) *Schema {
	s := &Schema{}
	s.root = s.add(&node{kind: kSeq, alts: []*node{root}})
	return s
}

// maxNodes bounds a compiled schema's nodes.
const maxNodes = 2048

func (s *Schema) add(n *node) *node {
	n.id = int32(firstID + len(s.nodes))
	s.nodes = append(s.nodes, n)
	return n
}

// Wrap returns a schema that matches prefix, then a value of s, then
// suffix (a tool call's <tool_call> and </tool_call>).
func (s *Schema) Wrap(prefix, suffix string) *Schema {
	w := &Schema{nodes: s.nodes[:len(s.nodes):len(s.nodes)]}
	parts := []*node{}
	if prefix != "" {
		parts = append(parts, w.add(&node{kind: kLiteral, lits: [][]byte{[]byte(prefix)}}))
	}
	parts = append(parts, s.root.alts...)
	if suffix != "" {
		parts = append(parts, w.add(&node{kind: kLiteral, lits: [][]byte{[]byte(suffix)}}))
	}
	w.root = w.add(&node{kind: kSeq, alts: parts})
	return w
}

// Error is a schema golem cannot compile; Path names the place
// ("properties.age.minimum") and is empty for the whole schema.
type Error struct {
	Path string
	Msg  string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return "schema: " + e.Msg
	}
	return "schema: " + e.Path + ": " + e.Msg
}

// Compile compiles a JSON schema: the subset OpenAI's strict mode takes
// (type object with properties, required and additionalProperties false;
// string with enum or const, minLength, maxLength; number; integer;
// boolean; null; array with items, minItems, maxItems; anyOf; enum;
// const; $ref to $defs or definitions, recursive ones included; a list of
// types), and annotations (title, description, default, examples, ...),
// which are ignored. An object without properties is any object; {} or
// true is any value. Properties are written in the schema's order, the
// required ones always, the others optionally. Any other keyword is an
// error naming it, as is nesting deeper than MaxDepth.
func Compile(raw []byte) (*Schema, error) {
	v, err := parseOrdered(raw)
	if err != nil {
		return nil, &Error{Msg: "not JSON: " + err.Error()}
	}
	c := &compiler{s: &Schema{}, defs: map[string]*node{}}
	if obj, ok := v.(*object); ok {
		for _, k := range []string{"$defs", "definitions"} {
			d, ok := obj.get(k)
			if !ok {
				continue
			}
			do, ok := d.(*object)
			if !ok {
				return nil, &Error{k, "not an object"}
			}
			for _, kv := range do.kv {
				c.defs["#/"+k+"/"+escapeRef(kv.k)] = c.s.add(&node{kind: kRef})
				c.raw = append(c.raw, defRaw{"#/" + k + "/" + escapeRef(kv.k), k + "." + kv.k, kv.v})
			}
		}
	}
	for _, d := range c.raw {
		n, err := c.compile(d.v, d.path, 0)
		if err != nil {
			return nil, err
		}
		c.defs[d.ref].target = n
	}
	root, err := c.compile(v, "", 0)
	if err != nil {
		return nil, err
	}
	for ref, n := range c.defs {
		if leftRecursive(n, n, map[*node]bool{}) {
			return nil, &Error{Msg: fmt.Sprintf("$ref %q refers to itself before any value (through anyOf or $ref): it matches nothing", ref)}
		}
	}
	if len(c.s.nodes) > maxNodes {
		return nil, &Error{Msg: fmt.Sprintf("%d schemas in all; at most %d", len(c.s.nodes), maxNodes)}
	}
	for ref, n := range c.defs {
		if n.target == nil {
			return nil, &Error{Msg: fmt.Sprintf("$ref %q: no such definition", ref)}
		}
		for t, hops := n.target, 0; t.kind == kRef; t, hops = t.target, hops+1 {
			if hops > len(c.defs) {
				return nil, &Error{Msg: fmt.Sprintf("$ref %q refers only to itself", ref)}
			}
		}
	}
	c.s.root = c.s.add(&node{kind: kSeq, alts: []*node{root}})
	return c.s, nil
}

// leftRecursive reports whether from reaches target through anyOf
// alternatives and $refs alone (without reading a byte).
func leftRecursive(target, from *node, seen map[*node]bool) bool {
	var next []*node
	switch from.kind {
	case kRef:
		next = []*node{from.target}
	case kAnyOf:
		next = from.alts
	}
	for _, n := range next {
		if n == target {
			return true
		}
		if !seen[n] {
			seen[n] = true
			if leftRecursive(target, n, seen) {
				return true
			}
		}
	}
	return false
}

func escapeRef(k string) string {
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}

type defRaw struct {
	ref, path string
	v         any
}

type compiler struct {
	s    *Schema
	defs map[string]*node
	raw  []defRaw
}

// ignored are annotations: they say nothing of which values match.
var ignored = map[string]bool{"title": true, "description": true, "default": true, "examples": true,
	"$schema": true, "$id": true, "$comment": true, "deprecated": true, "readOnly": true, "writeOnly": true,
	"$defs": true, "definitions": true, "strict": true}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func (c *compiler) compile(v any, path string, depth int) (*node, error) {
	if depth > MaxDepth {
		return nil, &Error{path, fmt.Sprintf("nested deeper than %d levels", MaxDepth)}
	}
	switch v := v.(type) {
	case bool:
		if !v {
			return nil, &Error{path, "false matches nothing"}
		}
		return anyNode, nil
	case *object:
		return c.object(v, path, depth)
	}
	return nil, &Error{path, "a schema must be an object"}
}

func (c *compiler) object(o *object, path string, depth int) (*node, error) {
	if r, ok := o.get("$ref"); ok {
		ref, ok := r.(string)
		if !ok {
			return nil, &Error{join(path, "$ref"), "not a string"}
		}
		for _, kv := range o.kv {
			if kv.k != "$ref" && !ignored[kv.k] {
				return nil, &Error{join(path, kv.k), "beside $ref is not supported"}
			}
		}
		n, ok := c.defs[ref]
		if !ok {
			return nil, &Error{join(path, "$ref"), fmt.Sprintf("%q: only references to #/$defs/NAME or #/definitions/NAME of this schema are supported", ref)}
		}
		return n, nil
	}
	// Every keyword is either understood or refused.
	types := []string{}
	for _, kv := range o.kv {
		p := join(path, kv.k)
		switch kv.k {
		case "type":
			switch t := kv.v.(type) {
			case string:
				types = append(types, t)
			case []any:
				for _, x := range t {
					s, ok := x.(string)
					if !ok {
						return nil, &Error{p, "a list of types must hold strings"}
					}
					types = append(types, s)
				}
				if len(types) == 0 {
					return nil, &Error{p, "an empty list of types matches nothing"}
				}
			default:
				return nil, &Error{p, "must be a string or a list of strings"}
			}
		case "properties", "required", "additionalProperties", "items", "minItems", "maxItems",
			"minLength", "maxLength", "enum", "const", "anyOf":
		default:
			if !ignored[kv.k] {
				return nil, &Error{p, fmt.Sprintf("keyword %q is not supported (golem's constrained decoding takes type, properties, required, additionalProperties, items, minItems, maxItems, minLength, maxLength, enum, const, anyOf, $ref and $defs)", kv.k)}
			}
		}
	}
	if e, ok := o.get("enum"); ok {
		list, ok := e.([]any)
		if !ok || len(list) == 0 {
			return nil, &Error{join(path, "enum"), "must be a non-empty list"}
		}
		return c.literals(list, types, path)
	}
	if e, ok := o.get("const"); ok {
		return c.literals([]any{e}, types, path)
	}
	if a, ok := o.get("anyOf"); ok {
		list, ok := a.([]any)
		if !ok || len(list) == 0 {
			return nil, &Error{join(path, "anyOf"), "must be a non-empty list of schemas"}
		}
		if len(types) > 0 {
			return nil, &Error{join(path, "anyOf"), `"type" beside "anyOf" is not supported: put it in each alternative`}
		}
		n := c.s.add(&node{kind: kAnyOf})
		for i, x := range list {
			alt, err := c.compile(x, fmt.Sprintf("%s[%d]", join(path, "anyOf"), i), depth+1)
			if err != nil {
				return nil, err
			}
			n.alts = append(n.alts, alt)
		}
		return n, nil
	}
	if len(types) == 0 {
		// No type: any value (the keywords of a type need that type).
		for _, k := range []string{"properties", "items", "minLength", "maxLength", "minItems", "maxItems", "required", "additionalProperties"} {
			if _, ok := o.get(k); ok {
				return nil, &Error{join(path, k), `needs a "type"`}
			}
		}
		return anyNode, nil
	}
	var alts []*node
	for _, t := range types {
		n, err := c.typed(o, t, path, depth)
		if err != nil {
			return nil, err
		}
		alts = append(alts, n)
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return c.s.add(&node{kind: kAnyOf, alts: alts}), nil
}

// keywords of each type: any other type's keyword is refused, not ignored.
var typeKeywords = map[string][]string{
	"object": {"properties", "required", "additionalProperties"},
	"array":  {"items", "minItems", "maxItems"},
	"string": {"minLength", "maxLength"},
}

func (c *compiler) typed(o *object, t, path string, depth int) (*node, error) {
	for typ, kws := range typeKeywords {
		if typ == t {
			continue
		}
		for _, k := range kws {
			if _, ok := o.get(k); ok && !hasType(o, typ) {
				return nil, &Error{join(path, k), fmt.Sprintf("applies to type %s, not %s", typ, t)}
			}
		}
	}
	switch t {
	case "object":
		return c.objectType(o, path, depth)
	case "array":
		n := c.s.add(&node{kind: kArray, items: anyNode, maxItems: -1})
		if it, ok := o.get("items"); ok {
			item, err := c.compile(it, join(path, "items"), depth+1)
			if err != nil {
				return nil, err
			}
			n.items = item
		} else if depth+1 > MaxDepth {
			return nil, &Error{path, fmt.Sprintf("nested deeper than %d levels", MaxDepth)}
		}
		var err error
		if n.minItems, err = count(o, "minItems", path, 0); err != nil {
			return nil, err
		}
		if n.maxItems, err = count(o, "maxItems", path, -1); err != nil {
			return nil, err
		}
		if n.maxItems >= 0 && n.maxItems < n.minItems {
			return nil, &Error{join(path, "maxItems"), "less than minItems"}
		}
		return n, nil
	case "string":
		n := c.s.add(&node{kind: kString})
		var err error
		if n.minLen, err = count(o, "minLength", path, 0); err != nil {
			return nil, err
		}
		if n.maxLen, err = count(o, "maxLength", path, -1); err != nil {
			return nil, err
		}
		if n.maxLen >= 0 && n.maxLen < n.minLen {
			return nil, &Error{join(path, "maxLength"), "less than minLength"}
		}
		return n, nil
	case "number":
		return anyNumber, nil
	case "integer":
		return c.s.add(&node{kind: kInteger}), nil
	case "boolean":
		return litBoolean, nil
	case "null":
		return litNull, nil
	}
	return nil, &Error{join(path, "type"), fmt.Sprintf("%q is not a JSON schema type (object, array, string, number, integer, boolean, null)", t)}
}

func hasType(o *object, t string) bool {
	v, _ := o.get("type")
	switch v := v.(type) {
	case string:
		return v == t
	case []any:
		for _, x := range v {
			if x == t {
				return true
			}
		}
	}
	return false
}

// count reads a non-negative integer keyword; def when absent.
func count(o *object, k, path string, def int32) (int32, error) {
	v, ok := o.get(k)
	if !ok {
		return def, nil
	}
	f, ok := v.(json.Number)
	if !ok {
		return 0, &Error{join(path, k), "not a number"}
	}
	n, err := strconv.ParseInt(string(f), 10, 32)
	if err != nil || n < 0 || n > 1<<20 {
		return 0, &Error{join(path, k), fmt.Sprintf("%s is not an integer between 0 and %d", f, 1<<20)}
	}
	return int32(n), nil
}

func (c *compiler) objectType(o *object, path string, depth int) (*node, error) {
	n := c.s.add(&node{kind: kObject})
	pv, hasProps := o.get("properties")
	if ap, ok := o.get("additionalProperties"); ok {
		switch ap := ap.(type) {
		case bool:
			// false: only the properties; true: golem writes only the
			// properties anyway (a subset of what matches).
		case *object:
			if len(ap.kv) > 0 {
				return nil, &Error{join(path, "additionalProperties"), "a schema for additional properties is not supported: use false"}
			}
		default:
			return nil, &Error{join(path, "additionalProperties"), "must be false (or true)"}
		}
	}
	if !hasProps {
		if _, ok := o.get("required"); ok {
			return nil, &Error{join(path, "required"), `needs "properties"`}
		}
		if depth+1 > MaxDepth {
			return nil, &Error{path, fmt.Sprintf("nested deeper than %d levels", MaxDepth)}
		}
		n.open = true
		return n, nil
	}
	po, ok := pv.(*object)
	if !ok {
		return nil, &Error{join(path, "properties"), "must be an object"}
	}
	required := map[string]bool{}
	if rv, ok := o.get("required"); ok {
		list, ok := rv.([]any)
		if !ok {
			return nil, &Error{join(path, "required"), "must be a list of property names"}
		}
		for i, x := range list {
			s, ok := x.(string)
			if !ok {
				return nil, &Error{fmt.Sprintf("%s[%d]", join(path, "required"), i), "not a string"}
			}
			if _, ok := po.get(s); !ok {
				return nil, &Error{fmt.Sprintf("%s[%d]", join(path, "required"), i), fmt.Sprintf("%q is not among the properties", s)}
			}
			required[s] = true
		}
	}
	for _, kv := range po.kv {
		val, err := c.compile(kv.v, join(join(path, "properties"), kv.k), depth+1)
		if err != nil {
			return nil, err
		}
		key, _ := marshal(kv.k)
		n.props = append(n.props, prop{name: kv.k, key: append(key, ':'), val: val, required: required[kv.k]})
	}
	n.reqAfter = make([]bool, len(n.props)+1)
	for k := len(n.props) - 1; k >= 0; k-- {
		n.reqAfter[k] = n.reqAfter[k+1] || n.props[k].required
	}
	return n, nil
}

// literals compiles enum or const: each value written as compact JSON.
func (c *compiler) literals(list []any, types []string, path string) (*node, error) {
	n := c.s.add(&node{kind: kLiteral})
	seen := map[string]bool{}
	for _, v := range list {
		b, err := marshal(plain(v))
		if err != nil {
			return nil, &Error{path, err.Error()}
		}
		if len(types) > 0 && !matchesType(v, types) {
			return nil, &Error{path, fmt.Sprintf("enum/const value %s is not of type %s", b, strings.Join(types, " or "))}
		}
		if !seen[string(b)] {
			seen[string(b)] = true
			n.lits = append(n.lits, b)
		}
	}
	return n, nil
}

func matchesType(v any, types []string) bool {
	for _, t := range types {
		switch v := v.(type) {
		case nil:
			if t == "null" {
				return true
			}
		case bool:
			if t == "boolean" {
				return true
			}
		case string:
			if t == "string" {
				return true
			}
		case json.Number:
			f, _ := v.Float64()
			if t == "number" || t == "integer" && f == math.Trunc(f) {
				return true
			}
		case []any:
			if t == "array" {
				return true
			}
		case *object:
			if t == "object" {
				return true
			}
		}
	}
	return false
}

func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// object is a JSON object with its keys in order.
type object struct{ kv []kv }

type kv struct {
	k string
	v any
}

func (o *object) get(k string) (any, bool) {
	for _, x := range o.kv {
		if x.k == k {
			return x.v, true
		}
	}
	return nil, false
}

// plain turns ordered objects back into what encoding/json writes (maps,
// keys sorted): an enum's object values.
func plain(v any) any {
	switch v := v.(type) {
	case *object:
		m := map[string]any{}
		for _, x := range v.kv {
			m[x.k] = plain(x.v)
		}
		return m
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = plain(x)
		}
		return out
	}
	return v
}

// parseOrdered parses JSON keeping the order of object keys; a repeated
// key is an error.
func parseOrdered(raw []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	v, err := parseValue(d, 0)
	if err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("more after the schema")
	}
	return v, nil
}

func parseValue(d *json.Decoder, depth int) (any, error) {
	if depth > 4*MaxDepth {
		return nil, fmt.Errorf("nested deeper than %d levels", 4*MaxDepth)
	}
	t, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch t := t.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := &object{}
			for d.More() {
				kt, err := d.Token()
				if err != nil {
					return nil, err
				}
				k := kt.(string)
				if _, dup := o.get(k); dup {
					return nil, fmt.Errorf("key %q appears twice", k)
				}
				v, err := parseValue(d, depth+1)
				if err != nil {
					return nil, err
				}
				o.kv = append(o.kv, kv{k, v})
			}
			_, err := d.Token()
			return o, err
		case '[':
			list := []any{}
			for d.More() {
				v, err := parseValue(d, depth+1)
				if err != nil {
					return nil, err
				}
				list = append(list, v)
			}
			_, err := d.Token()
			return list, err
		}
	}
	return t, nil
}

// Tool is a function a model may call: its name and its parameters' JSON
// schema (nil: no arguments).
type Tool struct {
	Name       string
	Parameters json.RawMessage
}

// ToolCall compiles the schema of one call of one of tools, as golem's
// chat format writes it: open, {"name": NAME, "arguments": {...}} with
// arguments of that tool's parameters, close (tokenizer.ToolCallOpen and
// ToolCallClose with their newlines).
func ToolCall(tools []Tool, open, close string) (*Schema, error) {
	var alts []string
	for _, t := range tools {
		params := bytes.TrimSpace(t.Parameters)
		if len(params) == 0 || string(params) == "null" {
			params = []byte(`{"type":"object","properties":{}}`)
		}
		name, _ := marshal(t.Name)
		alts = append(alts, `{"type":"object","properties":{"name":{"const":`+string(name)+`},"arguments":`+string(params)+`},"required":["name","arguments"],"additionalProperties":false}`)
	}
	if len(alts) == 0 {
		return nil, &Error{Msg: "no tools to call"}
	}
	src := alts[0]
	if len(alts) > 1 {
		src = `{"anyOf":[` + strings.Join(alts, ",") + `]}`
	}
	s, err := Compile([]byte(src))
	if err != nil {
		return nil, err
	}
	return s.Wrap(open, close), nil
}
