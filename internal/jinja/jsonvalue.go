package jinja

// golem's addition: JSON decoded straight into Values, keeping the order
// of object keys as Python's json.loads does (tojson then writes them in
// the order the user gave, as transformers does).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// maxJSONDepth bounds the nesting of decoded JSON.
const maxJSONDepth = 512

// ParseJSON decodes one JSON value. Integers stay integers; object keys
// keep their order (a repeated key keeps its first place and last value,
// as in Python).
func ParseJSON(data []byte) (Value, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeJSON(dec, 0)
	if err != nil {
		return Undefined(), err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Undefined(), fmt.Errorf("json: data after the value at offset %d", dec.InputOffset())
	}
	return v, nil
}

func decodeJSON(dec *json.Decoder, depth int) (Value, error) {
	if depth > maxJSONDepth {
		return Undefined(), fmt.Errorf("json: nested more than %d deep at offset %d", maxJSONDepth, dec.InputOffset())
	}
	tok, err := dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Undefined(), fmt.Errorf("json: offset %d: %w", dec.InputOffset(), err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '[':
			var items []Value
			for dec.More() {
				v, err := decodeJSON(dec, depth+1)
				if err != nil {
					return Undefined(), err
				}
				items = append(items, v)
			}
			if _, err := dec.Token(); err != nil {
				return Undefined(), fmt.Errorf("json: offset %d: %w", dec.InputOffset(), err)
			}
			return NewList(items), nil
		case '{':
			d := NewDict()
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return Undefined(), fmt.Errorf("json: offset %d: %w", dec.InputOffset(), err)
				}
				v, err := decodeJSON(dec, depth+1)
				if err != nil {
					return Undefined(), err
				}
				d.AsDict().Set(k.(string), v)
			}
			if _, err := dec.Token(); err != nil {
				return Undefined(), fmt.Errorf("json: offset %d: %w", dec.InputOffset(), err)
			}
			return d, nil
		}
		return Undefined(), fmt.Errorf("json: unexpected %v at offset %d", t, dec.InputOffset())
	default:
		return FromGoValue(t), nil
	}
}
