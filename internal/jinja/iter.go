package jinja

import "fmt"

// Iterator is a lazy sequence: what jinja2's map, select, reject,
// selectattr, rejectattr, items, unique and batch filters return (a Python
// generator) and what reverse returns for a list or a dict (a reverse
// iterator). As in Python it yields its items once, computing each when
// asked: a for loop, list, join, first, in or sort takes them, and a second
// pass finds it empty. It has no length, no index and no JSON form (length,
// last and tojson of one fail as in transformers), and prints as Python's
// repr, with a fixed address where Python's changes from run to run.
type Iterator struct {
	typ   string                   // Python's type name: generator, list_reverseiterator...
	fn    string                   // a generator's function (sync_do_map), for its repr
	start func() (nextFunc, error) // called on the first Next, as a generator's body starts then
	next  nextFunc                 // nil until started
	done  bool                     // exhausted, or failed
}

// nextFunc yields the next item, false at the end.
type nextFunc func() (Value, bool, error)

// newGenerator is a generator of Python function fn whose body, start,
// runs on the first Next: like jinja2's, its errors come when it is used.
func newGenerator(fn string, start func() (nextFunc, error)) Value {
	return Value{kind: KindIterator, v: &Iterator{typ: "generator", fn: fn, start: start}}
}

// newIterator is a Python iterator of type typ over next.
func newIterator(typ string, next nextFunc) Value {
	return Value{kind: KindIterator, v: &Iterator{typ: typ, next: next}}
}

// IsIterator reports whether v is a lazy sequence.
func (v Value) IsIterator() bool { return v.kind == KindIterator }

// Next yields the iterator's next item, false when it is exhausted. An
// error ends it, as an exception ends a Python generator.
func (it *Iterator) Next() (Value, bool, error) {
	if it.done {
		return Undefined(), false, nil
	}
	if it.next == nil {
		next, err := it.start()
		if err != nil {
			it.done = true
			return Undefined(), false, err
		}
		it.next = next
	}
	v, ok, err := it.next()
	if !ok || err != nil {
		it.done = true
	}
	return v, ok, err
}

// repr is Python's repr of the iterator. Python's has the object's
// address, which changes from run to run; golem prints 0x0 there so that
// the same conversation always renders the same prompt.
func (it *Iterator) repr() string {
	if it.fn != "" {
		return fmt.Sprintf("<%s object %s at 0x0>", it.typ, it.fn)
	}
	return fmt.Sprintf("<%s object at 0x0>", it.typ)
}

// pyIter is Python's iter(v): a list's items, a dict's keys, a string's
// characters, an iterator itself; Jinja's Undefined iterates as empty, and
// anything else is a TypeError.
func pyIter(v Value) (nextFunc, error) {
	switch v.kind {
	case KindIterator:
		return v.v.(*Iterator).Next, nil
	case KindUndefined:
		return func() (Value, bool, error) { return Undefined(), false, nil }, nil
	case KindList, KindDict, KindString:
		seq := sequenceItems(v)
		i := 0
		return func() (Value, bool, error) {
			if i >= len(seq) {
				return Undefined(), false, nil
			}
			i++
			return seq[i-1], true, nil
		}, nil
	}
	return nil, fmt.Errorf("TypeError: '%s' object is not iterable", typeName(v))
}

// sequenceItems is what iterating a list, dict or string yields.
func sequenceItems(v Value) []Value {
	switch v.kind {
	case KindList:
		return v.AsList().Items
	case KindDict:
		d := v.AsDict()
		keys := make([]Value, len(d.Keys))
		for i, k := range d.Keys {
			keys[i] = NewString(k)
		}
		return keys
	case KindString:
		var chars []Value
		for _, r := range v.AsString() {
			chars = append(chars, NewString(string(r)))
		}
		return chars
	}
	return nil
}

// pyList is Python's list(v): every item iterating v yields (an
// iterator's rest, which it consumes).
func pyList(v Value) ([]Value, error) {
	if v.IsList() {
		return v.AsList().Items, nil
	}
	if !v.IsIterator() {
		if _, err := pyIter(v); err != nil {
			return nil, err
		}
		return sequenceItems(v), nil
	}
	var items []Value
	it := v.v.(*Iterator)
	for {
		x, ok, err := it.Next()
		if err != nil {
			return nil, err
		}
		if !ok {
			return items, nil
		}
		items = append(items, x)
	}
}
