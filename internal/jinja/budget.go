package jinja

// This file is golem's addition to the engine: the limits that keep a
// template that loops, recurses or grows its output from hanging or
// exhausting the process that renders it.

import (
	"context"
	"fmt"
	"strings"
)

// Limits bound one render. A zero field takes its default.
type Limits struct {
	MaxSteps  int64 // statements and expressions evaluated (default 10,000,000)
	MaxOutput int   // bytes of output and of any one string built (default 16 MiB)
	MaxAlloc  int64 // bytes of strings and list slots built in all (default 16 x MaxOutput)
	MaxDepth  int   // nested macro and caller calls (default 256)
}

func (l Limits) withDefaults() Limits {
	if l.MaxSteps <= 0 {
		l.MaxSteps = 10_000_000
	}
	if l.MaxOutput <= 0 {
		l.MaxOutput = 16 << 20
	}
	if l.MaxAlloc <= 0 {
		l.MaxAlloc = 16 * int64(l.MaxOutput)
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = 256
	}
	return l
}

// LimitError reports a render stopped by a limit or by its context.
type LimitError struct{ Msg string }

func (e *LimitError) Error() string { return e.Msg }

// budget is what one render has spent.
type budget struct {
	ctx   context.Context
	lim   Limits
	steps int64
	alloc int64
	depth int
	// exprDepth is the nesting of the expression being evaluated.
	exprDepth int
}

// maxExprDepth bounds the nesting of an evaluated expression.
const maxExprDepth = 10000

func (b *budget) step() error {
	b.steps++
	if b.steps > b.lim.MaxSteps {
		return &LimitError{fmt.Sprintf("template ran more than %d steps (a loop that does not end?)", b.lim.MaxSteps)}
	}
	if b.steps&1023 == 0 {
		if err := b.ctx.Err(); err != nil {
			return &LimitError{fmt.Sprintf("template stopped after %d steps: %v", b.steps, context.Cause(b.ctx))}
		}
	}
	return nil
}

// size checks that a string or list of n bytes (slots) may be built.
func (b *budget) size(n int64) error {
	if n > int64(b.lim.MaxOutput) {
		return &LimitError{fmt.Sprintf("template built a value of %d bytes (the limit is %d)", n, b.lim.MaxOutput)}
	}
	b.alloc += n
	if b.alloc > b.lim.MaxAlloc {
		return &LimitError{fmt.Sprintf("template built more than %d bytes of values", b.lim.MaxAlloc)}
	}
	return nil
}

// grow checks that an output of have bytes may grow by n.
func (b *budget) grow(have, n int) error {
	if int64(have)+int64(n) > int64(b.lim.MaxOutput) {
		return &LimitError{fmt.Sprintf("template output exceeds %d bytes", b.lim.MaxOutput)}
	}
	return b.size(int64(n))
}

// charge accounts for a value an expression built.
func (b *budget) charge(v Value) error {
	switch v.kind {
	case KindString:
		return b.size(int64(len(v.AsString())))
	case KindList:
		return b.size(int64(v.AsList().Len()) * 16)
	}
	return nil
}

func (b *budget) enter(name string) error {
	b.depth++
	if b.depth > b.lim.MaxDepth {
		return &LimitError{fmt.Sprintf("macro %s: calls nest more than %d deep (a recursion that does not end?)", name, b.lim.MaxDepth)}
	}
	return nil
}

func (b *budget) leave() { b.depth-- }

// maxBuilt bounds a string that a filter or method builds (join, replace,
// indent) before the budget sees it.
const maxBuilt = 64 << 20

func errTooBig(what string, n int64) error {
	return &LimitError{fmt.Sprintf("%s: the result would be %d bytes (the limit is %d)", what, n, maxBuilt)}
}

// replaceChecked is strings.Replace within maxBuilt.
func replaceChecked(s, old, new string, count int) (Value, error) {
	n := int64(strings.Count(s, old))
	if count >= 0 && int64(count) < n {
		n = int64(count)
	}
	if size := int64(len(s)) + n*(int64(len(new))-int64(len(old))); size > maxBuilt {
		return Undefined(), errTooBig("replace", size)
	}
	return NewString(strings.Replace(s, old, new, count)), nil
}
