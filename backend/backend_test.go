package backend_test

import (
	"errors"
	"testing"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/backend/cpu"
)

// Open finds a backend by the name it registered under and gives a new one
// each call (the demo opens one per stage); an unknown name, or a backend
// that fails to open, is an error that starts with the name and, for an
// unknown one, lists the known ones.
func TestOpen(t *testing.T) {
	a, err := backend.Open("cpu")
	if err != nil {
		t.Fatal(err)
	}
	b, err := backend.Open("cpu")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := a.(*cpu.CPU); !ok || a.Name() != "cpu" || a == b {
		t.Fatalf(`Open("cpu") = %T %q and %p, %p: want two CPU backends`, a, a.Name(), a, b)
	}
	buf := a.Alloc(3, false)
	a.Upload(buf, 0, []float32{1, 2, 3})
	a.Map(backend.Scale, 2, buf, buf)
	got := make([]float32, 3)
	a.Download(got, buf, 0)
	if got[0] != 2 || got[1] != 4 || got[2] != 6 {
		t.Fatalf("2*[1 2 3] on the opened backend = %v", got)
	}

	if _, err := backend.Open("nope"); err == nil || err.Error() != "nope: unknown device (have: cpu)" {
		t.Fatalf(`Open("nope"): %v; want "nope: unknown device (have: cpu)"`, err)
	}
	noDriver := errors.New("no driver found")
	backend.Register("broken", func() (backend.Backend, error) { return nil, noDriver })
	if _, err := backend.Open("broken"); !errors.Is(err, noDriver) || err.Error() != "broken: no driver found" {
		t.Fatalf(`Open("broken"): %v; want "broken: no driver found"`, err)
	}
}
