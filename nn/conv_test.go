package nn

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/safetensors"
	"github.com/golem-ml/golem/tensor"
)

func newConvNet(in *Init) *convNet {
	return &convNet{
		Conv: NewConv2d(in, 3, 8, 3, 3, false, tensor.ConvOptions{Padding: [2]int{1, 1}}),
		BN:   NewBatchNorm2d(in, 8, 1e-5, true),
		GN:   NewGroupNorm(in, 2, 4, 1e-5, true),
		Up:   NewConvTranspose2d(in, 8, 4, 2, 2, true, tensor.ConvOptions{Stride: [2]int{2, 2}}),
		Pool: MaxPool2d{Kernel: [2]int{2, 2}},
		Avg:  AvgPool2d{Kernel: [2]int{3, 3}, Stride: [2]int{1, 1}, Padding: [2]int{1, 1}},
	}
}

type convNet struct {
	Conv  *Conv2d          `nn:"conv"`
	BN    *BatchNorm2d     `nn:"bn"`
	GN    *GroupNorm       `nn:"gn"`
	Up    *ConvTranspose2d `nn:"up"`
	Pool  MaxPool2d
	Avg   AvgPool2d
	Gpool GlobalAvgPool2d
}

func (n *convNet) forward(x *tensor.Tensor) *tensor.Tensor {
	y := tensor.ReLU(n.BN.Forward(n.Conv.Forward(x)))
	y = n.GN.Forward(n.Up.Forward(n.Pool.Forward(y)))
	return n.Gpool.Forward(n.Avg.Forward(y))
}

// TestConvLayers: names and shapes as PyTorch's state dict, BatchNorm's
// running statistics kept out of training, and a small conv net's loss
// going down under SGD.
func TestConvLayers(t *testing.T) {
	be := cpu.New()
	in := NewInit(be, 3)
	n := newConvNet(in)
	var got []string
	for _, p := range Params(n) {
		got = append(got, fmt.Sprintf("%s%v", p.Name, p.Tensor.Shape()))
	}
	want := "[conv.weight[8 3 3 3] bn.weight[8] bn.bias[8] bn.running_mean[8] bn.running_var[8] gn.weight[4] gn.bias[4] up.weight[8 4 2 2] up.bias[4]]"
	if fmt.Sprint(got) != want {
		t.Fatalf("params %v, want %s", got, want)
	}
	if c := len(Trainable(Params(n))); c != 7 {
		t.Fatalf("%d trainable, want 7 (running statistics are not)", c)
	}
	x := in.Normal(1, 4, 3, 8, 8).SetRequiresGrad(false)
	target := in.Normal(1, 4, 4, 1, 1).SetRequiresGrad(false)
	ps := Trainable(Params(n))
	var first, last float32
	for step := range 60 {
		y := n.forward(x)
		loss := tensor.Mean(tensor.Square(tensor.Sub(y, target)))
		tensor.Backward(loss)
		for _, p := range ps {
			w, g := p.Tensor.Host(), p.Tensor.Grad().Host()
			for i := range w {
				w[i] -= 0.3 * g[i]
			}
			p.Tensor.Set(w)
			p.Tensor.ZeroGrad()
		}
		if step == 0 {
			first = loss.Item()
		}
		last = loss.Item()
		tensor.Release(loss)
	}
	if !(last < first/2) {
		t.Fatalf("loss %.4g -> %.4g, want it at least halved", first, last)
	}
	if n.BN.RunningMean.HasGrad() {
		t.Fatal("running mean got a gradient")
	}
	rv := n.BN.RunningVar.Host()
	if rv[0] == 1 || math.IsNaN(float64(rv[0])) {
		t.Fatalf("running var not updated: %v", rv)
	}
	// Evaluation uses the running statistics: the output of one image does
	// not depend on the rest of the batch.
	n.BN.Training = false
	tensor.NoGrad(func() {
		a := n.forward(x).Host()[:4]
		b := n.forward(tensor.Slice(x, 0, 0, 1)).Host()
		for i := range b {
			if math.Abs(float64(a[i]-b[i])) > 1e-5 {
				t.Fatalf("eval output %v alone, %v in a batch", b, a)
			}
		}
	})

	// The running statistics are saved and loaded with the weights, by
	// their PyTorch names: a fresh net loaded from the file evaluates the same.
	path := filepath.Join(t.TempDir(), "model.safetensors")
	var ts []safetensors.Tensor
	for _, p := range Params(n) {
		ts = append(ts, safetensors.Tensor{Name: p.Name, Shape: p.Tensor.Shape(), F32: p.Tensor.Host()})
	}
	if err := safetensors.Write(path, ts, nil); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := newConvNet(NewInit(be, 99))
	for _, p := range Params(m) {
		d, _, err := f.Float32(p.Name)
		if err != nil {
			t.Fatal(err)
		}
		p.Tensor.Set(d)
	}
	m.BN.Training = false
	tensor.NoGrad(func() {
		a, b := n.forward(x).Host(), m.forward(x).Host()
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("loaded net gives %v, saved one %v", b, a)
		}
	})
}
