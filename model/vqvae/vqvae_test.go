package vqvae

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/optim"
	"github.com/golem-ml/golem/tensor"
)

// handModel is a model whose quantizer has a hand-set 3 x 2 codebook.
func handModel(t *testing.T, decay float64, dead int) *Model {
	t.Helper()
	c := Presets()["tiny"]
	c.Codes, c.CodeDim, c.Decay, c.DeadAfter, c.Epsilon = 3, 2, decay, dead, 1e-5
	m, err := New(cpu.New(), c, 1)
	if err != nil {
		t.Fatal(err)
	}
	m.Quantizer.Codebook.Set([]float32{0, 0, 1, 0, 0, 1})
	if decay > 0 {
		m.Quantizer.Sum.Set([]float32{0, 0, 1, 0, 0, 1})
	}
	return m
}

func close32(a, b []float32, tol float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > tol {
			return false
		}
	}
	return true
}

// Nearest picks each row's closest code under L2, not the largest dot
// product (the hand cases below).
func TestNearestCode(t *testing.T) {
	m := handModel(t, 0.99, 0)
	m.Quantizer.Codebook.Set([]float32{0, 0, 1, 0, 3, 3})
	be := m.be
	s := tensor.NewScope()
	defer s.Close()
	// (0.9, 0.1) -> (1,0); (0.2, -0.1) -> (0,0); (2, 2) -> (3,3) (distance
	// 2 against (1,0)'s 5; dot products would also pick it); (0.6, 0.6):
	// (1,0) at 0.52, (0,0) at 0.72, (3,3) at 11.52 -> 1, where the largest
	// dot product would pick (3,3).
	z := s.FromHost(be, []float32{0.9, 0.1, 0.2, -0.1, 2, 2, 0.6, 0.6}, 4, 2)
	got := m.Quantizer.Nearest(z)
	want := []int32{1, 0, 2, 1}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("codes %v, want %v", got, want)
		}
	}
}

// The straight-through estimator on a hand example: the output is the
// codes' vectors; z's gradient is the loss's gradient at the output plus
// beta times the commitment loss's 2(z - e)/(N*D); the EMA codebook gets
// none, the gradient-learned one gets the codebook loss's 2(e - z)/(N*D).
func TestStraightThrough(t *testing.T) {
	for _, decay := range []float64{0.99, 0} {
		m := handModel(t, decay, 0)
		s := tensor.NewScope()
		zv := []float32{0.9, 0.1, 0.2, -0.1}
		z := s.FromHost(m.be, zv, 2, 2).SetRequiresGrad(true)
		st, commit, cb, codes := m.Quantizer.Quantize(z)
		if codes[0] != 1 || codes[1] != 0 || !close32(st.Host(), []float32{1, 0, 0, 0}, 0) {
			t.Fatalf("codes %v, output %v: want [1 0] and (1,0), (0,0)", codes, st.Host())
		}
		g := []float32{1, 2, 3, 4}
		loss := tensor.Add(tensor.Sum(tensor.Mul(st, s.FromHost(m.be, g, 2, 2))), tensor.Scale(commit, 0.25))
		if decay == 0 {
			loss = tensor.Add(loss, cb)
		} else if cb != nil {
			t.Fatal("a codebook loss under EMA")
		}
		tensor.Backward(loss)
		e := []float32{1, 0, 0, 0}
		want := make([]float32, 4)
		for i := range want {
			want[i] = g[i] + 0.25*2*(zv[i]-e[i])/4
		}
		if got := z.Grad().Host(); !close32(got, want, 1e-6) {
			t.Fatalf("decay %v: z's gradient %v, want %v", decay, got, want)
		}
		if decay > 0 && m.Quantizer.Codebook.HasGrad() {
			t.Fatal("the EMA codebook got a gradient")
		}
		if decay == 0 {
			// code 1 <- row 0, code 0 <- row 1: 2(e - z)/4
			wantCB := []float32{2 * (0 - 0.2) / 4, 2 * (0 + 0.1) / 4, 2 * (1 - 0.9) / 4, 2 * (0 - 0.1) / 4, 0, 0}
			if got := m.Quantizer.Codebook.Grad().Host(); !close32(got, wantCB, 1e-6) {
				t.Fatalf("codebook gradient %v, want %v", got, wantCB)
			}
		}
		s.Close()
	}
}

// The EMA update equals the formula on a hand example: decay 0.5, codes
// (0,0), (1,0), (0,1) with counts 1; z rows (2, 0) and (4, 2) both pick
// code 1, none picks 0 or 2.
func TestEMAUpdate(t *testing.T) {
	m := handModel(t, 0.5, 0)
	z := []float32{2, 0, 4, 2}
	m.Quantizer.Update(z, []int32{1, 1}, rand.New(rand.NewPCG(1, 1)))
	// counts: 0.5*1 + 0.5*n = 0.5, 1.5, 0.5; n = 2.5.
	wantN := []float32{0.5, 1.5, 0.5}
	if got := m.Quantizer.Count.Host(); !close32(got, wantN, 1e-6) {
		t.Fatalf("counts %v, want %v", got, wantN)
	}
	// sums: 0.5*e + 0.5*dw: code 1: 0.5*(1,0) + 0.5*(6,2) = (3.5, 1).
	wantSum := []float32{0, 0, 3.5, 1, 0, 0.5}
	if got := m.Quantizer.Sum.Host(); !close32(got, wantSum, 1e-6) {
		t.Fatalf("sums %v, want %v", got, wantSum)
	}
	const eps = 1e-5
	smooth := func(c float64) float64 { return (c + eps) / (2.5 + 3*eps) * 2.5 }
	want := []float32{0, 0, float32(3.5 / smooth(1.5)), float32(1 / smooth(1.5)), 0, float32(0.5 / smooth(0.5))}
	if got := m.Quantizer.Codebook.Host(); !close32(got, want, 1e-5) {
		t.Fatalf("codebook %v, want %v", got, want)
	}
	if got := m.Quantizer.Unused.Host(); !close32(got, []float32{1, 0, 1}, 0) {
		t.Fatalf("unused steps %v, want [1 0 1]", got)
	}
}

// A code unused for DeadAfter steps is restarted from one of the batch's
// encoder rows; a used one is not.
func TestDeadCodeRestart(t *testing.T) {
	for _, decay := range []float64{0, 0.9} {
		m := handModel(t, decay, 2)
		z := []float32{7, 8, 9, 10}
		r := rand.New(rand.NewPCG(1, 2))
		if n := m.Quantizer.Update(z, []int32{1, 1}, r); n != 0 {
			t.Fatalf("decay %v: %d codes restarted after 1 unused step, want 0", decay, n)
		}
		if n := m.Quantizer.Update(z, []int32{1, 1}, r); n != 2 {
			t.Fatalf("decay %v: %d codes restarted after 2 unused steps, want 2 (codes 0 and 2)", decay, n)
		}
		e := m.Quantizer.Codebook.Host()
		for _, k := range []int{0, 2} {
			row := e[2*k : 2*k+2]
			if !close32(row, z[:2], 0) && !close32(row, z[2:], 0) {
				t.Errorf("decay %v: code %d is %v after its restart, want a row of z %v", decay, k, row, z)
			}
		}
		if got := m.Quantizer.Unused.Host(); !close32(got, []float32{0, 0, 0}, 0) {
			t.Errorf("decay %v: unused steps %v after the restarts, want zeros", decay, got)
		}
		if decay > 0 {
			if c := m.Quantizer.Count.Host(); c[0] != 1 || c[2] != 1 {
				t.Errorf("restarted codes' EMA counts %v, want 1", c)
			}
		}
	}
}

func TestUsage(t *testing.T) {
	p, u := Usage([]int32{0, 1, 2, 3}, 8)
	if math.Abs(p-4) > 1e-9 || u != 0.5 {
		t.Fatalf("perplexity %v used %v, want 4 and 0.5", p, u)
	}
	p, u = Usage([]int32{5, 5}, 8)
	if math.Abs(p-1) > 1e-9 || u != 0.125 {
		t.Fatalf("perplexity %v used %v, want 1 and 0.125", p, u)
	}
}

// squares draws n images with a coloured square each on a dark ground.
func squares(n, size int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	pix := make([]float32, n*3*size*size)
	for i := range n {
		x0, y0, s := r.IntN(size/2), r.IntN(size/2), 3+r.IntN(size/2)
		col := [3]float32{r.Float32(), r.Float32(), r.Float32()}
		for c := range 3 {
			for y := y0; y < min(size, y0+s); y++ {
				for x := x0; x < min(size, x0+s); x++ {
					pix[((i*3+c)*size+y)*size+x] = col[c]
				}
			}
		}
	}
	for i := range pix {
		pix[i] -= 0.5
	}
	return pix
}

// A tiny VQ-VAE learns: its reconstruction loss falls over a few AdamW
// steps with EMA codebook updates and restarts.
func TestTinyLearns(t *testing.T) {
	c := Presets()["tiny"]
	c.ImageSize = 16
	be := cpu.New()
	m, err := New(be, c, 1)
	if err != nil {
		t.Fatal(err)
	}
	opt := optim.NewAdamW(nn.Trainable(m.Params()), 0.9, 0.999, 1e-8, 0)
	pix := squares(16, 16, 1)
	r := rand.New(rand.NewPCG(1, 1))
	var first, last float32
	for step := range 40 {
		s := tensor.NewScope()
		x := s.FromHost(be, pix, 16, 3, 16, 16)
		out := m.Forward(x)
		opt.ZeroGrad()
		tensor.Backward(out.Loss)
		opt.Update(3e-3)
		m.Quantizer.Update(out.Z.Host(), out.Codes, r)
		if step == 0 {
			first = out.MSE.Item()
		}
		last = out.MSE.Item()
		s.Close()
	}
	if !(last < 0.5*first) {
		t.Fatalf("reconstruction MSE %v after 40 steps, from %v: want it halved", last, first)
	}
}

// Encode -> decode: a 16x16 image is a 4x4 grid of ids in range, decoded
// back to a 3x16x16 image; ids out of range are refused by position.
func TestTokensRoundTrip(t *testing.T) {
	c := Presets()["tiny"]
	be := cpu.New()
	m, err := New(be, c, 1)
	if err != nil {
		t.Fatal(err)
	}
	s := tensor.NewScope()
	defer s.Close()
	x := s.FromHost(be, squares(2, 16, 3), 2, 3, 16, 16)
	ids, h, w := m.Tokens(x)
	if h != 4 || w != 4 || len(ids) != 32 {
		t.Fatalf("grid %dx%d of %d ids, want 4x4 of 32", h, w, len(ids))
	}
	for _, id := range ids {
		if id < 0 || int(id) >= c.Codes {
			t.Fatalf("id %d out of the codebook", id)
		}
	}
	img, err := m.FromTokens(s, ids, 2, h, w)
	if err != nil {
		t.Fatal(err)
	}
	if sh := img.Shape(); sh[0] != 2 || sh[1] != 3 || sh[2] != 16 || sh[3] != 16 {
		t.Fatalf("decoded %v, want [2 3 16 16]", sh)
	}
	// decoding the grid equals the model's reconstruction without gradients
	var rec []float32
	tensor.NoGrad(func() { rec = m.Forward(x).Recon.Host() })
	if !close32(img.Host(), rec, 1e-5) {
		t.Fatal("decoding the tokens differs from the forward pass's reconstruction")
	}
	if _, err := m.FromTokens(s, make([]int32, 2000*2000), 1, 2000, 2000); err == nil || !strings.Contains(err.Error(), "want 1 to 1024 a side") {
		t.Fatalf("a 2000x2000 grid: %v", err)
	}
	ids[5] = int32(c.Codes)
	if _, err := m.FromTokens(s, ids, 2, h, w); err == nil || !strings.Contains(err.Error(), "token 5 (row 1, column 1)") {
		t.Fatalf("an out-of-range id: %v, want an error naming token 5 at row 1, column 1", err)
	}
}

// Save then Load gives the same tensors, EMA state included; a bad
// config.json names its field.
func TestSaveLoad(t *testing.T) {
	be := cpu.New()
	for _, name := range PresetNames() {
		c := Presets()[name]
		m, err := New(be, c, 9)
		if err != nil {
			t.Fatal(err)
		}
		m.Quantizer.Update(randPix(1, 1, 10, c.CodeDim, 3), make([]int32, 10), rand.New(rand.NewPCG(1, 1)))
		dir := t.TempDir()
		if err := m.Save(dir); err != nil {
			t.Fatal(err)
		}
		l, err := Load(be, dir)
		if err != nil {
			t.Fatal(err)
		}
		a, b := m.Params(), l.Params()
		if len(a) != len(b) {
			t.Fatalf("%s: %d tensors saved, %d loaded", name, len(a), len(b))
		}
		for i := range a {
			if a[i].Name != b[i].Name || !close32(a[i].Tensor.Host(), b[i].Tensor.Host(), 0) {
				t.Fatalf("%s: %s differs after Save and Load", name, a[i].Name)
			}
		}
		if l.Config != m.Config {
			t.Fatalf("%s: config %+v, want %+v", name, l.Config, m.Config)
		}
		if name == "vqvae-32" && l.Quantizer.Count == nil {
			t.Fatal("the EMA counts were not saved")
		}
	}
	dir := t.TempDir()
	c := Presets()["tiny"]
	m, _ := New(be, c, 1)
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.json")
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(b), `"image_size": 32`, `"image_size": 30`, 1)), 0o644)
	if _, err := Load(be, dir); err == nil || !strings.Contains(err.Error(), "image_size") || !strings.Contains(err.Error(), cfg) {
		t.Fatalf("image_size 30: %v, want an error naming config.json and image_size", err)
	}
}

// The vqvae-32 preset is the peer's model: 8x8 grid, 512 x 64 codebook,
// its parameter count as PyTorch counts it, codebook included.
func TestPeerShape(t *testing.T) {
	c := Presets()["vqvae-32"]
	c.Decay = 0 // the peer learns its codebook by gradient
	m, err := New(cpu.New(), c, 1)
	if err != nil {
		t.Fatal(err)
	}
	if n := nn.Count(nn.Trainable(m.Params())); n != peerParams {
		t.Fatalf("%d trainable parameters, want the peer's %d", n, peerParams)
	}
}

func randPix(n, c, h, w int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	x := make([]float32, n*c*h*w)
	for i := range x {
		x[i] = r.Float32() - 0.5
	}
	return x
}

// peerParams is PyTorch's count of the peer's VQVAE (pytorch_vision_bench.py).
const peerParams = 980291

// The vqvae-32 step (bench vision's: gradient-learned codebook, batch 4
// here) with Conv2d's 3x3 convolutions through Winograd's F(2x2, 3x3)
// and the 128-channel 4x4 stride-2 convolutions and transposed
// convolutions through F(4x4, 2x2) (their grids are 8x8), and with all of them through the
// implicit GEMM: the losses of 4 AdamW steps agree within
// 1e-5 relative (measured: 1e-7 at most; Winograd rounds its transforms
// differently, so not bit for bit), and so do the codes picked at the
// last step but for at most one of 256 (a near tie may flip; none did).
func TestWinogradStepLoss(t *testing.T) {
	run := func(wino bool) ([]float32, []int32) {
		defer tensor.SetWinograd(tensor.SetWinograd(wino))
		c := Presets()["vqvae-32"]
		c.Decay, c.DeadAfter = 0, 0
		be := cpu.New()
		m, err := New(be, c, 3)
		if err != nil {
			t.Fatal(err)
		}
		opt := optim.NewAdamW(nn.Trainable(m.Params()), 0.9, 0.999, 1e-8, 0.05)
		pix := squares(4, 32, 2)
		var losses []float32
		var codes []int32
		for range 4 {
			s := tensor.NewScope()
			out := m.Forward(s.FromHost(be, pix, 4, 3, 32, 32))
			opt.ZeroGrad()
			tensor.Backward(out.Loss)
			opt.ClipGradNorm(1)
			opt.Update(1e-3)
			losses = append(losses, out.Loss.Item())
			codes = append(codes[:0], out.Codes...)
			s.Close()
		}
		return losses, codes
	}
	lw, cw := run(true)
	lg, cg := run(false)
	for i := range lg {
		d := math.Abs(float64(lw[i]-lg[i])) / math.Abs(float64(lg[i]))
		t.Logf("step %d: loss %.7g through Winograd, %.7g through the GEMM (relative difference %.2g)", i, lw[i], lg[i], d)
		if d > 1e-5 {
			t.Errorf("step %d: loss %.7g through Winograd, %.7g through the GEMM", i, lw[i], lg[i])
		}
	}
	diff := 0
	for i := range cg {
		if cw[i] != cg[i] {
			diff++
		}
	}
	if len(cg) != 4*8*8 || diff > 1 {
		t.Errorf("%d of %d codes differ at the last step", diff, len(cg))
	}
}
