package ssl

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/model/resnet"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/train"
)

// memSet is an in-memory data set of two classes of c×s×s images: a bright
// horizontal or vertical bar at a random place on noise (coloured red or
// blue for c=3).
type memSet struct{ ims []*vision.Image }

func (d *memSet) Len() int                          { return len(d.ims) }
func (d *memSet) Load(i int) (*vision.Image, error) { return d.ims[i], nil }
func (d *memSet) Name(i int) string                 { return fmt.Sprintf("mem[%d]", i) }
func (d *memSet) Close() error                      { return nil }

func bars(n, c, s int, seed uint64) *memSet {
	r := rand.New(rand.NewPCG(seed, 2))
	d := &memSet{}
	for i := 0; i < n; i++ {
		m := vision.NewImage(c, s, s)
		m.Label = i % 2
		for j := range m.Pix {
			m.Pix[j] = 0.2 * r.Float32()
		}
		at := r.IntN(s)
		for k := 0; k < s; k++ {
			y, x := at, k
			if m.Label == 1 {
				y, x = k, at
			}
			for ch := 0; ch < c; ch++ {
				v := float32(0.9)
				if c == 3 && ch != 2*m.Label {
					v = 0.1
				}
				m.Set(ch, y, x, v)
			}
		}
		d.ims = append(d.ims, m)
	}
	return d
}

// NT-Xent on hand-computed values: with T = 1 and views z1 = z2 = the two
// unit axes, each view's logits over the other three are (0, 1, 0) with
// the positive at 1: the loss is log(1 + 2/e) for every view.
func TestNTXentHand(t *testing.T) {
	be := cpu.New()
	z := []float32{1, 0, 0, 3} // the second row is not unit: the loss normalises
	got := NTXent(tensor.FromHost(be, z, 2, 2), tensor.FromHost(be, z, 2, 2), 1).Item()
	if want := math.Log(1 + 2/math.E); math.Abs(float64(got)-want) > 1e-5 {
		t.Errorf("NT-Xent %v, want log(1+2/e) = %v", got, want)
	}
	// T = 0.5, z2 = -z1: the positive's cosine is -1, a negative's 0:
	// logits (0, -2, 0) over (neg, pos, neg): log(2 + e^-2) + 2.
	neg := []float32{-1, 0, 0, -3}
	got = NTXent(tensor.FromHost(be, z, 2, 2), tensor.FromHost(be, neg, 2, 2), 0.5).Item()
	if want := math.Log(2+math.Exp(-2)) + 2; math.Abs(float64(got)-want) > 1e-5 {
		t.Errorf("NT-Xent %v, want log(2+e^-2)+2 = %v", got, want)
	}
}

// MoCo v3's loss by hand: q = k = the unit axes, T = 1: each query's
// logits are (1, 0) with its key first: 2T * log(1 + e^-1) per direction.
func TestMoCoLossHand(t *testing.T) {
	be := cpu.New()
	e := []float32{1, 0, 0, 1}
	x := func() *tensor.Tensor { return tensor.FromHost(be, e, 2, 2) }
	got := MoCoLoss(x(), x(), x(), x(), 1).Item()
	if want := 2 * 2 * math.Log(1+1/math.E); math.Abs(float64(got)-want) > 1e-5 {
		t.Errorf("MoCo loss %v, want 4 log(1+1/e) = %v", got, want)
	}
	// T = 0.2 scales the logits by 5 and the loss by 0.4.
	got = MoCoLoss(x(), x(), x(), x(), 0.2).Item()
	if want := 2 * 0.4 * math.Log(1+math.Exp(-5)); math.Abs(float64(got)-want) > 1e-5 {
		t.Errorf("MoCo loss at T=0.2: %v, want 0.8 log(1+e^-5) = %v", got, want)
	}
}

// BYOL's loss by hand: p = (1,0) vs z = (0,2) is 2 - 2*0 = 2; p = (1,1) vs
// z = (3,0) is 2 - 2/sqrt 2; the mean is 2 - 1/sqrt 2.
func TestBYOLLossHand(t *testing.T) {
	be := cpu.New()
	p := tensor.FromHost(be, []float32{1, 0, 1, 1}, 2, 2)
	z := tensor.FromHost(be, []float32{0, 2, 3, 0}, 2, 2)
	got := BYOLLoss(p, z).Item()
	if want := 2 - 1/math.Sqrt2; math.Abs(float64(got)-want) > 1e-5 {
		t.Errorf("BYOL loss %v, want 2 - 1/sqrt2 = %v", got, want)
	}
}

// The losses' gradients (compositions of ops, with NT-Xent's masked
// diagonal) against central finite differences.
func TestLossGradients(t *testing.T) {
	be := cpu.New()
	r := rand.New(rand.NewPCG(3, 4))
	rnd := func(n int) []float32 {
		d := make([]float32, n)
		for i := range d {
			d[i] = float32(r.NormFloat64())
		}
		return d
	}
	keys := rnd(24) // the momentum encoder's keys: constants
	for name, f := range map[string]func(a, b *tensor.Tensor) *tensor.Tensor{
		"ntxent": func(a, b *tensor.Tensor) *tensor.Tensor { return NTXent(a, b, 0.5) },
		"moco": func(a, b *tensor.Tensor) *tensor.Tensor {
			return MoCoLoss(a, b, tensor.FromHost(be, keys[:12], 3, 4), tensor.FromHost(be, keys[12:], 3, 4), 0.2)
		},
		"byol": func(a, b *tensor.Tensor) *tensor.Tensor { return BYOLLoss(a, b) },
	} {
		a0, b0 := rnd(12), rnd(12)
		a := tensor.FromHost(be, a0, 3, 4).SetRequiresGrad(true)
		b := tensor.FromHost(be, b0, 3, 4)
		tensor.Backward(f(a, b))
		g := a.Grad().Host()
		for i := range a0 {
			at := func(d float32) float64 {
				x := append([]float32(nil), a0...)
				x[i] += d
				var v float32
				tensor.NoGrad(func() { v = f(tensor.FromHost(be, x, 3, 4), tensor.FromHost(be, b0, 3, 4)).Item() })
				return float64(v)
			}
			const h = 1e-2
			num := (at(h) - at(-h)) / (2 * h)
			if math.Abs(num-float64(g[i])) > 2e-3+2e-2*math.Abs(num) {
				t.Errorf("%s: d/da[%d] = %v, finite differences %v", name, i, g[i], num)
			}
		}
	}
}

// Every method: a few steps on tiny data lower its loss on a fixed batch
// (the loss of step 0's micro-batch, augmentations and masks included,
// before and after training): 25 steps, 10 under -short (the smallest
// drop at 10 is mae/vit-tiny's, 0.9624 to 0.9406; at 25, 0.9323).
func TestMethodsLowerLoss(t *testing.T) {
	steps := 25
	if testing.Short() {
		steps = 10
	}
	for _, run := range append(Methods(), "mae/vit-tiny", "moco/vit-tiny") {
		t.Run(run, func(t *testing.T) {
			method, config, _ := strings.Cut(run, "/")
			if config == "" {
				config = "tiny"
			}
			c, in := 1, 1
			if method == "colorize" {
				c = 3
			}
			be := cpu.New()
			ds := bars(64, c, 8, 5)
			enc, err := NewEncoder(be, config, method, in, 8, 8, 1)
			if err != nil {
				t.Fatal(err)
			}
			o := Options{Backend: be, Method: method, Data: ds, Spec: "bars", Encoder: enc, Batch: 32,
				Loop: train.Config{Steps: steps, LR: 3e-3, Seed: 1, Quiet: true, Progress: io.Discard}, Log: io.Discard}
			base, err := newTask(o)
			if err != nil {
				t.Fatal(err)
			}
			tk, err := methods[method](base)
			if err != nil {
				t.Fatal(err)
			}
			fixed := func() float64 {
				var v float64
				tensor.NoGrad(func() {
					s := tensor.NewScope()
					defer s.Close()
					l, _, _, err := tk.Loss(s, 0, 0)
					if err != nil {
						t.Fatal(err)
					}
					v = float64(l.Item())
				})
				return v
			}
			before := fixed()
			if _, err := train.Run(context.Background(), o.Loop, tk); err != nil {
				t.Fatal(err)
			}
			after := fixed()
			t.Logf("%s: loss %.4f -> %.4f", method, before, after)
			if !(after < before) {
				t.Errorf("%s: loss %.4f before %d steps, %.4f after: it did not go down", method, before, steps, after)
			}
		})
	}
}

// Pretrain writes the encoder and report.html with its pictures and
// learning curve; with 0 steps the initialised encoder.
func TestPretrainWritesReport(t *testing.T) {
	be := cpu.New()
	for _, c := range []struct {
		method, png string
		steps       int
	}{{"simclr", "augmentations.png", 2}, {"mae", "reconstructions.png", 0}} {
		out := filepath.Join(t.TempDir(), "m")
		var log strings.Builder
		res, err := Pretrain(context.Background(), Options{Backend: be, Method: c.method, Data: bars(40, 1, 8, 1), Spec: "bars", Batch: 16,
			Loop: train.Config{Steps: c.steps, LR: 1e-3, Seed: 3, Out: out, Quiet: true, Progress: io.Discard}, Log: &log})
		if err != nil {
			t.Fatal(err)
		}
		if res.Step != c.steps {
			t.Errorf("%s: %d steps, want %d", c.method, res.Step, c.steps)
		}
		// The data's time beside the training's: the steps' images (not the
		// report's pictures), within the run's time, printed.
		if res.DataImages != 16*c.steps || (c.steps > 0) != (res.DataSeconds > 0) || res.WaitSeconds > res.Seconds {
			t.Errorf("%s: %d images in %.4fs of data, waited %.4fs of a %.4fs run; want %d images, a wait within the run", c.method, res.DataImages, res.DataSeconds, res.WaitSeconds, res.Seconds, 16*c.steps)
		}
		if want := fmt.Sprintf("data: %d images decoded and augmented at ", 16*c.steps); (c.steps > 0) != strings.Contains(log.String(), want) ||
			(c.steps > 0) != strings.Contains(log.String(), "% of the run waited on data") {
			t.Errorf("%s: log lacks %q and the share of the run:\n%s", c.method, want, log.String())
		}
		enc, err := LoadEncoder(be, out)
		if err != nil {
			t.Fatal(err)
		}
		if c.steps == 0 {
			fresh, _ := NewEncoder(be, DefaultConfig("mae"), "mae", 1, 8, 8, 3)
			if got, want := enc.Params()[0].Tensor.Host()[0], fresh.Params()[0].Tensor.Host()[0]; got != want {
				t.Errorf("--steps 0 wrote weights %v, the seed's initialisation is %v", got, want)
			}
		}
		page, err := os.ReadFile(filepath.Join(out, "report.html"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(page), `src="`+c.png+`"`) {
			t.Errorf("%s: report.html does not show %s", c.method, c.png)
		}
		if (c.steps > 0) != strings.Contains(string(page), "<svg") {
			t.Errorf("%s: %d steps, learning curve shown: %v", c.method, c.steps, strings.Contains(string(page), "<svg"))
		}
		if fi, err := os.Stat(filepath.Join(out, c.png)); err != nil || fi.Size() < 100 {
			t.Errorf("%s: %s: %v", c.method, c.png, err)
		}
	}
}

// A training step's batch starts the next micro-batch's decoding and
// augmenting on other goroutines (the next step waits only when that is
// late); the prefetched images are the ones the step would have drawn
// itself, with accumulation too; the last step starts nothing.
func TestBatchPrefetch(t *testing.T) {
	pipe := []vision.Transform{vision.HFlip{P: 0.5}, vision.Solarize{Threshold: 0.5, P: 0.5}}
	mk := func(accum int) *task {
		tk, err := newTask(Options{Data: bars(40, 1, 8, 1), Spec: "bars", Batch: 8, Loop: train.Config{Steps: 3, Accum: accum, Seed: 5}})
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	for _, accum := range []int{1, 2} {
		a := mk(accum)
		if _, err := a.batch(0, 0, pipe); err != nil {
			t.Fatal(err)
		}
		ns, nm := 1, 0
		if accum == 2 {
			ns, nm = 0, 1
		}
		p := a.next
		if p == nil || p.step != ns || p.micro != nm {
			t.Fatalf("accum %d: after (0, 0) the prefetch is %+v, want (%d, %d) on its way", accum, p, ns, nm)
		}
		<-p.done // decoded before its step asks
		got, err := a.batch(ns, nm, pipe)
		if err != nil {
			t.Fatal(err)
		}
		want, err := mk(accum).load(ns, nm, 8, [][]vision.Transform{pipe})
		if err != nil {
			t.Fatal(err)
		}
		for v := range want {
			for k := range want[v] {
				if !slices.Equal(got[v][k].Pix, want[v][k].Pix) {
					t.Fatalf("accum %d: prefetched view %d of image %d differs from the step's own draw", accum, v, k)
				}
			}
		}
		if _, err := a.batch(2, accum-1, pipe); err != nil || a.next != nil {
			t.Fatalf("accum %d: the last micro-batch started %+v (%v)", accum, a.next, err)
		}
		a.drain()
	}
}

// Bad settings are clear errors.
func TestPretrainErrors(t *testing.T) {
	be := cpu.New()
	for _, c := range []struct {
		method, config string
		data           *memSet
		want           string
	}{
		{"colorize", "", bars(8, 1, 8, 1), "colorize predicts colour from gray, but bars has 1-channel images"},
		{"mae", "", bars(8, 1, 6, 1), "sides must be multiples of the 4-pixel patch"},
		{"mae", "vit-tiny", bars(8, 1, 6, 1), "multiple of its 4-pixel patch"},
		{"inpaint", "", bars(8, 1, 6, 1), "multiples of 4"},
		{"dino", "", bars(8, 1, 8, 1), `unknown method "dino"`},
		{"simclr", "", bars(1, 1, 8, 1), "batches of 1 image(s) (--batch 128, 1 images)"},
	} {
		_, err := Pretrain(context.Background(), Options{Backend: be, Method: c.method, Config: c.config, Data: c.data, Spec: "bars",
			Loop: train.Config{Steps: 1, LR: 1e-3, Out: t.TempDir(), Quiet: true}, Log: io.Discard})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.method, err, c.want)
		}
	}
}

// Features runs the encoder in evaluation mode over the first images, in
// order, with their labels; a one-channel encoder gets colour images as
// gray; unlabelled images and channel mismatches are errors.
func TestFeatures(t *testing.T) {
	be := cpu.New()
	cfg := resnet.Presets()["tiny"]
	cfg.Channels = 1
	enc, _ := resnet.New(be, cfg, 2)
	ds := bars(30, 3, 8, 1)
	x, dim, y, err := Features(context.Background(), enc, ds, "bars", 20, 8, 1)
	if err != nil {
		t.Fatal(err)
	}
	if dim != enc.Dim() || len(y) != 20 || len(x) != 20*enc.Dim() || y[3] != 1 {
		t.Fatalf("%d labels, %d values (want 20, %d), y[3]=%d", len(y), len(x), 20*enc.Dim(), y[3])
	}
	var want []float32
	tensor.NoGrad(func() {
		g := vision.Gray(ds.ims[19])
		want = enc.Features(tensor.FromHost(be, g.Pix, 1, 1, 8, 8)).Host()
	})
	for j, v := range want {
		if d := x[19*enc.Dim()+j] - v; d > 1e-5 || d < -1e-5 {
			t.Fatalf("feature %d of image 19: %v, the gray image's is %v", j, x[19*enc.Dim()+j], v)
		}
	}
	px, d, _, err := Pixels(context.Background(), ds, "bars", 0)
	if err != nil || d != 3*64 || len(px) != 30*d || px[5*d+7] != ds.ims[5].Pix[7] {
		t.Errorf("pixels: %v, d %d, %d values", err, d, len(px))
	}
	ds.ims[4].Label = -1
	if _, _, _, err := Features(context.Background(), enc, ds, "bars", 0, 8, 1); err == nil || !strings.Contains(err.Error(), "mem[4] has no label") {
		t.Errorf("unlabelled image: %v", err)
	}
	cfg.Channels = 3
	enc3, _ := resnet.New(be, cfg, 2)
	if _, _, _, err := Features(context.Background(), enc3, bars(4, 1, 8, 1), "bars", 0, 8, 1); err == nil || !strings.Contains(err.Error(), "bars has 1-channel images, the encoder takes 3") {
		t.Errorf("channel mismatch: %v", err)
	}
}

// With a grid of cells, a row is the feature map averaged over each cell
// (resnet's CellFeatures of the same image), Dim*n*n values; an encoder
// with no feature map (the ViT) is refused with a message.
func TestFeaturesCells(t *testing.T) {
	be := cpu.New()
	cfg := resnet.Presets()["tiny"]
	cfg.Channels = 1
	enc, _ := resnet.New(be, cfg, 2)
	ds := bars(6, 1, 16, 1)
	x, dim, y, err := Features(context.Background(), enc, ds, "bars", 0, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	if dim != 4*enc.Dim() || len(x) != 6*dim || len(y) != 6 {
		t.Fatalf("%d values of %d for %d labels, want 6 rows of %d", len(x), dim, len(y), 4*enc.Dim())
	}
	var want []float32
	tensor.NoGrad(func() {
		want = enc.CellFeatures(tensor.FromHost(be, ds.ims[5].Pix, 1, 1, 16, 16), 2).Host()
	})
	for j, v := range want {
		if d := x[5*dim+j] - v; d > 1e-5 || d < -1e-5 {
			t.Fatalf("value %d of image 5: %v, its 2x2 cell features' %v", j, x[5*dim+j], v)
		}
	}
	v, err := NewEncoder(be, "vit-tiny", "simclr", 1, 16, 16, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := Features(context.Background(), v, ds, "bars", 0, 4, 2); err == nil || !strings.Contains(err.Error(), "need a convolutional encoder") {
		t.Errorf("a ViT's cell features: %v", err)
	}
}

// BYOL's target must follow the online network within a run of the
// lengths golem trains (150-300 steps): after 150 steps of its decay
// schedule the share of the random initialisation left in the target is
// under 5%. From 0.99 about half was left, and on Fashion-MNIST the
// features fell below the random encoder's (docs/vision.md).
func TestBYOLTargetFollows(t *testing.T) {
	left := 1.0
	for k := 1; k <= 150; k++ {
		left *= float64(targetDecay(byolTau0, k, 150))
	}
	if left > 0.05 {
		t.Errorf("after 150 steps the target keeps %.3f of its initialisation, want under 0.05", left)
	}
}
