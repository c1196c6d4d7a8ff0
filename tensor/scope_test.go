package tensor

import (
	"strings"
	"sync"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
)

// live returns the bytes the backend has handed out and not had back.
func live(be *cpu.CPU) int64 { return be.MemStats().Live }

// mustPanic runs fn and returns its panic's message, failing if none.
func mustPanic(t *testing.T, what string, fn func()) string {
	t.Helper()
	var msg string
	func() {
		defer func() {
			if r := recover(); r != nil {
				msg, _ = r.(string)
			}
		}()
		fn()
		t.Fatalf("%s did not panic", what)
	}()
	return msg
}

// Closing a scope gives back every buffer of its step: values, the
// gradients Backward made and the buffers ops saved for backward (softmax's
// and layer norm's), and leaves the parameters and their gradients alone.
func TestScopeCloseFreesValuesGradsAndSaved(t *testing.T) {
	be := cpu.New()
	w := FromHost(be, []float32{1, 2, 3, 4, 5, 6, 7, 8, 9}, 3, 3).SetRequiresGrad(true)
	g := FromHost(be, []float32{1, 1, 1}, 3).SetRequiresGrad(true)
	base := live(be)
	for step := range 3 {
		s := NewScope()
		x := s.FromHost(be, []float32{0.5, -1, 2, 0.25, 1, -0.5}, 2, 3)
		h := LayerNorm(Linear(x, w, nil), nil, nil, 1e-5) // saves mean and rstd
		p := Softmax(Reshape(Mul(h, Reshape(g, 1, 3)), 3, 2))
		loss := Mean(Square(p))
		Backward(loss)
		if loss.Scope() != s || p.Scope() != s {
			t.Fatalf("step %d: results are not in the step's scope", step)
		}
		if live(be) <= base {
			t.Fatalf("step %d: nothing allocated?", step)
		}
		s.Close()
		// The parameters' gradients are their holder's: allocated once.
		if got, want := live(be), base+2*4*16; got != want {
			t.Fatalf("step %d: %d bytes live after Close, want %d (the two parameter gradients)", step, got, want)
		}
	}
	if !w.HasGrad() || w.Host()[0] != 1 {
		t.Fatal("the parameter lost its values or gradient")
	}
}

// Nested scopes: an op over a parent's and a child's tensors joins the
// child; closing the child frees its tensors only; closing the parent
// closes an open child too. Escape hands a child's result to the parent.
func TestScopeNestingAndEscape(t *testing.T) {
	be := cpu.New()
	base := live(be)
	parent := NewScope()
	a := parent.FromHost(be, []float32{1, 2}, 2)
	child := parent.Child()
	if child.Parent() != parent {
		t.Fatal("Child's parent")
	}
	b := child.FromHost(be, []float32{3, 4}, 2)
	c := Add(a, b)
	if c.Scope() != child {
		t.Fatalf("Add of the parent's and the child's tensors is in %v, want the child %v", c.Scope(), child)
	}
	kept := child.Escape(Mul(c, c)) // [16 36]
	if kept.Scope() != parent {
		t.Fatalf("Escape moved the result to %v, want the parent %v", kept.Scope(), parent)
	}
	child.Close()
	if got := kept.Host(); got[0] != 16 || got[1] != 36 {
		t.Fatalf("the escaped result after the child closed: %v", got)
	}
	if got := a.Host(); got[0] != 1 {
		t.Fatalf("the parent's tensor after the child closed: %v", got)
	}
	msg := mustPanic(t, "using a closed child's tensor", func() { Add(b, a) })
	if !strings.Contains(msg, "scope was closed") {
		t.Errorf("panic %q does not say the scope was closed", msg)
	}
	grandchild := parent.Child()
	d := Exp(grandchild.Adopt(Neg(kept))) // Neg(kept) is in the parent: Adopt leaves it there
	if d.Scope() != parent {
		t.Fatalf("Exp of a parent's tensor is in %v", d.Scope())
	}
	e := grandchild.New(be, 2)
	parent.Close()
	if !grandchild.Closed() {
		t.Fatal("closing the parent left its child open")
	}
	mustPanic(t, "Host of a tensor of a closed scope", func() { e.Host() })
	mustPanic(t, "Item of a tensor of a closed scope", func() { Sum(d).Item() })
	if got := live(be); got != base {
		t.Fatalf("%d bytes live after closing everything, want %d", got, base)
	}
	parent.Close() // twice: nothing

	// Scopes not nested: an op joins the one opened last (a step's, opened
	// after the long-lived scope it reads from).
	long, step := NewScope(), NewScope()
	if y := Mul(long.New(be, 2), step.New(be, 2)); y.Scope() != step {
		t.Fatalf("an op over a long-lived and a step's tensor joined %v, want the step's %v", y.Scope(), step)
	}
	step.Close()
	long.Close()
}

// An op over tensors of no scope makes one of no scope; such a result used
// by a scoped op joins that op's scope (a parameter's transpose, a
// broadcast soft prompt), and Adopt takes a step's first result (an
// embedding lookup) with the results below it, never the parameters.
func TestScopeAdoptsResultsOfNoScope(t *testing.T) {
	be := cpu.New()
	w := FromHost(be, []float32{1, 2, 3, 4, 5, 6}, 3, 2).SetRequiresGrad(true)
	base := live(be)
	s := NewScope()
	wt := Transpose(w, 0, 1) // of no scope
	if wt.Scope() != nil {
		t.Fatal("an op over parameters alone joined a scope")
	}
	emb := s.Adopt(Embedding(Scale(w, 2), []int32{2, 0})) // Scale's result joins too
	y := MatMul(emb, wt, false, false)
	if emb.Scope() != s || wt.Scope() != s || y.Scope() != s {
		t.Fatalf("scopes: lookup %v, transpose %v, product %v; want %v", emb.Scope(), wt.Scope(), y.Scope(), s)
	}
	Backward(Sum(y))
	s.Close()
	if got, want := live(be), base+4*16; got != want {
		t.Fatalf("%d bytes live after Close, want %d (the parameter's gradient)", got, want)
	}
	if w.Host()[5] != 6 {
		t.Fatal("Adopt took the parameter")
	}
	s2 := NewScope()
	if s2.Adopt(w); w.Scope() != nil {
		t.Fatal("Adopt took a parameter (a leaf)")
	}
	s2.Close()
	mustPanic(t, "an op over a tensor whose scope closed", func() { Sum(y) })
}

// Keep moves a step's result into a long-lived scope (a KV cache's): it
// outlives the step, the step's node of it does not, and a view's values
// are copied.
func TestScopeKeep(t *testing.T) {
	be := cpu.New()
	base := live(be)
	cache := NewScope()
	step := NewScope()
	k := Exp(step.FromHost(be, []float32{0, 0, 0, 0}, 2, 2))
	kept := cache.Keep(k)
	view := cache.Keep(Reshape(k, 4))
	step.Close()
	if got := kept.Host(); got[3] != 1 || kept.Scope() != cache {
		t.Fatalf("kept %v in %v", got, kept.Scope())
	}
	if got := view.Host(); len(got) != 4 || got[0] != 1 {
		t.Fatalf("kept view %v", got)
	}
	mustPanic(t, "using the step's node after its scope closed", func() { k.Host() })
	free := (*Scope)(nil).Keep(Exp(cache.New(be, 1))) // no scope: the caller's
	cache.Close()
	if free.Scope() != nil || free.Item() != 1 {
		t.Fatalf("a leaf kept by no scope: %v in %v", free, free.Scope())
	}
	free.Free()
	if got := live(be); got != base {
		t.Fatalf("%d bytes live, want %d", got, base)
	}
}

// A scope owns a buffer the backend allocated in its own form (a float16
// KV cache's) through FromBuffer: closing the scope gives it back.
func TestScopeFromBuffer(t *testing.T) {
	be := cpu.New()
	base := live(be)
	s := NewScope()
	h := s.FromBuffer(be, be.AllocHalf(64), 64)
	if h.Scope() != s || live(be) != base+2*64 {
		t.Fatalf("a 64-value float16 buffer: %d bytes live (want %d), scope %v", live(be), base+2*64, h.Scope())
	}
	s.Close()
	if got := live(be); got != base {
		t.Fatalf("%d bytes live after Close, want %d", got, base)
	}
}

// A nil scope is no scope: its tensors are the caller's.
func TestNilScope(t *testing.T) {
	be := cpu.New()
	var s *Scope
	x := s.FromHost(be, []float32{1}, 1)
	c := s.Child()
	if x.Scope() != nil || s.Adopt(x) != x || c == nil || c.Parent() != nil {
		t.Fatal("nil scope")
	}
	s.Close()
	c.Close()
	if x.Item() != 1 {
		t.Fatal("closing a nil scope freed its tensor")
	}
}

// Goroutines each run steps in their own scope over shared parameters
// (serve's engines, parallel tests), with -race watching; each step's
// memory comes back.
func TestScopesConcurrent(t *testing.T) {
	be := cpu.New()
	w := FromHost(be, []float32{0.1, 0.2, 0.3, 0.4}, 2, 2)
	base := live(be)
	var wg sync.WaitGroup
	results := make([][]float32, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			long := NewScope()
			defer long.Close()
			for i := range 50 {
				s := long.Child()
				x := s.FromHost(be, []float32{float32(g) / 4, float32(i) / 100}, 1, 2)
				y := Softmax(Linear(Tanh(Linear(x, w, nil)), w, nil))
				results[g] = y.Host()
				s.Close()
			}
		}()
	}
	wg.Wait()
	if got := live(be); got != base {
		t.Fatalf("%d bytes live after every goroutine closed its scopes, want %d", got, base)
	}
	for g := range 4 { // each goroutine's last step, computed alone
		x := FromHost(be, []float32{float32(g) / 4, 0.49}, 1, 2)
		want := Softmax(Linear(Tanh(Linear(x, w, nil)), w, nil)).Host()
		if results[g][0] != want[0] || results[g][1] != want[1] {
			t.Errorf("goroutine %d: %v, alone %v", g, results[g], want)
		}
	}
}
