package nn

import (
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/tensor"
)

type block struct {
	Attn *Linear   `nn:"attn"`
	Norm LayerNorm `nn:"ln"`
	Skip *Linear   // untagged: not a parameter
}

type net struct {
	Blocks []*block `nn:"h"`
	Head   *Linear  `nn:"lm_head"`
}

func TestParamsNamesAndFreeze(t *testing.T) {
	in := NewInit(cpu.New(), 1)
	n := &net{Blocks: []*block{
		{Attn: NewLinear(in, 4, 6, true, 0.02), Norm: *NewLayerNorm(in, 4, false, 1e-5), Skip: NewLinear(in, 2, 2, false, 1)},
		{Attn: NewLinear(in, 4, 6, false, 0.02), Norm: *NewLayerNorm(in, 4, true, 1e-5)},
	}, Head: NewLinear(in, 4, 10, false, 0.02)}
	var names []string
	for _, p := range Params(n) {
		names = append(names, p.Name)
	}
	want := []string{"h.0.attn.weight", "h.0.attn.bias", "h.0.ln.weight", "h.1.attn.weight", "h.1.ln.weight", "h.1.ln.bias", "lm_head.weight"}
	if len(names) != len(want) {
		t.Fatalf("names %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("names %v, want %v", names, want)
		}
	}
	if c := Count(Params(n)); c != 24+6+4+24+4+4+40 {
		t.Errorf("count %d", c)
	}
	Freeze(n.Blocks[0])
	if got := len(Trainable(Params(n))); got != 4 {
		t.Errorf("%d trainable after freezing block 0, want 4", got)
	}
}

// Replace swaps a layer's weight and gives the old one's memory back.
func TestReplace(t *testing.T) {
	be := cpu.New()
	live := func() int64 { return be.MemStats().Live }
	base := live()
	l := NewLinear(NewInit(be, 1), 4, 6, false, 0.02)
	old := live() - base
	w := tensor.FromHost(be, make([]float32, 8*4), 8, 4)
	both := live()
	Replace(&l.Weight, w)
	if l.Weight != w || l.OutFeatures() != 8 {
		t.Fatalf("weight %v after Replace", l.Weight.Shape())
	}
	if got, want := live(), both-old; old <= 0 || got != want {
		t.Fatalf("%d bytes live, want %d (the old 6x4 weight given back)", got, want)
	}
	Replace(&l.Weight, w) // the same tensor: kept
	if l.Weight.Host()[0] != 0 {
		t.Fatal("replacing a weight by itself freed it")
	}
}

func TestLoRAStartsAtBase(t *testing.T) {
	be := cpu.New()
	in := NewInit(be, 2)
	l := NewLinear(in, 8, 5, true, 0.5)
	x := in.Normal(1, 3, 8)
	var base, with []float32
	tensor.NoGrad(func() {
		base = l.Forward(x).Host()
		l.LoRA = NewLoRA(in, 8, 5, 4, 8, 0)
		with = l.Forward(x).Host()
	})
	for i := range base {
		if base[i] != with[i] {
			t.Fatal("a fresh LoRA (B = 0) changed the layer's output")
		}
	}
	if l.LoRA.Scale != 2 {
		t.Errorf("scale %v, want alpha/r = 2", l.LoRA.Scale)
	}
}
