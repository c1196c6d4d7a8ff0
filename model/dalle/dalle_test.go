package dalle

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/kvcache"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/vqvae"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// tiny returns a small model: 16 text tokens, a 4x4 grid of 64 codes (the
// tiny VQ-VAE at 16 pixels), width 32, 2 blocks.
func tiny(t *testing.T, seed uint64) *Model {
	t.Helper()
	be := cpu.New()
	tok, err := tokenizer.Train(tokenizer.TrainOptions{Texts: []string{"a red circle", "a blue square", "two shapes: a red circle and a blue square"}, VocabSize: 280})
	if err != nil {
		t.Fatal(err)
	}
	vc := vqvae.Presets()["tiny"]
	vc.ImageSize = 16
	vq, err := vqvae.New(be, vc, 3)
	if err != nil {
		t.Fatal(err)
	}
	pad, _ := tok.SpecialID(tokenizer.Pad)
	m, err := New(be, NewConfig(tok.VocabSize(), pad, 16, 4, 64, 32, 2, 2), tok, vq, seed)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func batch(t *testing.T, m *Model, r *rand.Rand, captions ...string) (text, codes []int32) {
	t.Helper()
	for _, c := range captions {
		ids, err := m.Text(c)
		if err != nil {
			t.Fatal(err)
		}
		text = append(text, ids...)
		for range m.Config.Tokens() {
			codes = append(codes, int32(r.IntN(m.Config.Codes)))
		}
	}
	return text, codes
}

// The loss of random weights is about ln(codes); backward reaches every
// parameter; the input embeddings are the text's token rows, then each
// image token's code row plus its row's and column's embeddings.
func TestForwardBackward(t *testing.T) {
	m := tiny(t, 1)
	r := rand.New(rand.NewPCG(1, 2))
	text, codes := batch(t, m, r, "a red circle", "")
	s := tensor.NewScope()
	defer s.Close()
	loss, err := m.Loss(text, codes, 2, gpt.Options{Scope: s})
	if err != nil {
		t.Fatal(err)
	}
	if l := float64(loss.Item()); math.Abs(l-math.Log(64)) > 0.3 {
		t.Fatalf("initial loss %.3f, want about ln 64 = %.3f", l, math.Log(64))
	}
	tensor.Backward(loss)
	for _, p := range m.Params() {
		g := p.Tensor.Grad()
		if g == nil {
			t.Fatalf("%s has no gradient", p.Name)
		}
		nz := false
		for _, v := range g.Host() {
			nz = nz || v != 0
		}
		if !nz {
			t.Errorf("%s: gradient all zero", p.Name)
		}
	}
	// Embeds: text rows, then code + row + column rows.
	L := m.Config.TextLength
	e := m.Embeds(s, text[:L], codes[:5], 1, 0)
	if got := e.Shape(); len(got) != 3 || got[0] != 1 || got[1] != L+5 || got[2] != 32 {
		t.Fatalf("embeds of shape %v, want [1 %d 32]", got, L+5)
	}
	host := e.Host()
	wte, img, row, col := m.LM.Embed.Weight.Host(), m.Image.Weight.Host(), m.Row.Weight.Host(), m.Col.Weight.Host()
	for c := range 32 {
		if host[2*32+c] != wte[int(text[2])*32+c] {
			t.Fatal("text position 2 is not its token's embedding")
		}
		j := 4 // image token 4: row 1, column 0
		want := img[int(codes[j])*32+c] + row[1*32+c] + col[0*32+c]
		if math.Abs(float64(host[(L+j)*32+c]-want)) > 1e-6 {
			t.Fatalf("image token %d, channel %d: %v, want code + row 1 + column 0 = %v", j, c, host[(L+j)*32+c], want)
		}
	}
}

// checkFD compares grad[i], the gradient of f() at element i of p (whose
// values are v), with central finite differences (step 1e-2), within atol
// plus 2% of them; p's values are put back.
func checkFD(t *testing.T, p nn.Named, v, grad []float32, i int, f func() *tensor.Tensor, atol float64) {
	t.Helper()
	const h = 1e-2
	orig := v[i]
	var fp, fm float64
	tensor.NoGrad(func() {
		v[i] = orig + h
		p.Tensor.Set(v)
		fp = float64(f().Item())
		v[i] = orig - h
		p.Tensor.Set(v)
		fm = float64(f().Item())
	})
	v[i] = orig
	p.Tensor.Set(v)
	num := (fp - fm) / (2 * h)
	if d := math.Abs(num - float64(grad[i])); d > atol+2e-2*math.Abs(num) {
		t.Errorf("%s[%d]: gradient %g, finite differences %g", p.Name, i, grad[i], num)
	}
}

// The gradients of the image layers (code, row and column embeddings, the
// head) through the whole loss agree with central finite differences.
func TestGradients(t *testing.T) {
	m := tiny(t, 2)
	r := rand.New(rand.NewPCG(3, 4))
	text, codes := batch(t, m, r, "a blue square", "a red circle")
	loss := func() *tensor.Tensor {
		l, err := m.Loss(text, codes, 2, gpt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	for _, p := range m.Params() {
		p.Tensor.ZeroGrad()
	}
	tensor.Backward(loss())
	image := nn.Params(m)
	rr := rand.New(rand.NewPCG(9, 9))
	for _, p := range image {
		grad := p.Tensor.Grad().Host()
		v := p.Tensor.Host()
		// The rows a token of the batch reads (embeddings) or any (head).
		var idx []int
		C := m.Config.Text.Hidden
		for range 4 {
			var row int
			switch p.Name {
			case "image_embed.weight":
				row = int(codes[rr.IntN(len(codes)-1)])
			default:
				row = rr.IntN(p.Tensor.Dim(0))
			}
			idx = append(idx, row*C+rr.IntN(C))
		}
		for _, i := range idx {
			checkFD(t, p, v, grad, i, loss, 2e-4)
		}
	}
}

// Prefill and one token at a time through the KV cache give the logits
// of the whole sequence's forward pass.
func TestCacheMatchesForward(t *testing.T) {
	m := tiny(t, 3)
	r := rand.New(rand.NewPCG(5, 6))
	text, codes := batch(t, m, r, "a red circle", "two shapes: a red circle")
	B, L, N := 2, m.Config.TextLength, m.Config.Tokens()
	tensor.NoGrad(func() {
		s := tensor.NewScope()
		defer s.Close()
		in := append(append([]int32{}, codes[:N-1]...), codes[N:2*N-1]...)
		h := m.LM.Forward(nil, B, 0, gpt.Options{Embeds: m.Embeds(s, text, in, B, 0), Scope: s})
		full := m.Head.Forward(h).Host() // [B, L+N-1, K]
		K := m.Config.Codes
		at := func(b, t, k int) float32 { return full[(b*(L+N-1)+t)*K+k] }
		cache := &kvcache.Growable{}
		defer cache.Close()
		logits := m.Prefill(cache, text, B)
		for j := 0; ; j++ {
			for b := range B {
				for k := range K {
					if d := math.Abs(float64(logits[b*K+k] - at(b, L-1+j, k))); d > 1e-4 {
						t.Fatalf("row %d, image token %d, code %d: cached %v, whole pass %v", b, j, k, logits[b*K+k], at(b, L-1+j, k))
					}
				}
			}
			if j == N-1 {
				break
			}
			var err error
			if logits, err = m.Step(cache, []int32{codes[j], codes[N+j]}, j, logits); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// Save then Load gives the same tensors bit for bit (the VQ-VAE's too),
// the same tokenizer and the same loss.
func TestSaveLoad(t *testing.T) {
	m := tiny(t, 4)
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json", "vq/config.json", "vq/model.safetensors"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	if !IsDalle(dir) || IsDalle(filepath.Join(dir, VQFolder)) || IsDalle(t.TempDir()) {
		t.Error("IsDalle should tell the model folder from its VQ-VAE's and an empty one")
	}
	l, err := Load(cpu.New(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if l.Config != m.Config {
		t.Fatalf("config %+v after load, saved %+v", l.Config, m.Config)
	}
	same := func(a, b []nn.Named) {
		t.Helper()
		if len(a) != len(b) {
			t.Fatalf("%d tensors loaded, %d saved", len(a), len(b))
		}
		for i := range a {
			x, y := a[i].Tensor.Host(), b[i].Tensor.Host()
			for j := range x {
				if math.Float32bits(x[j]) != math.Float32bits(y[j]) {
					t.Fatalf("%s[%d]: %v loaded, %v saved", a[i].Name, j, y[j], x[j])
				}
			}
		}
	}
	same(m.Params(), l.Params())
	same(m.VQ.Params(), l.VQ.Params())
	a, _ := m.Text("two shapes: a red circle")
	b, _ := l.Text("two shapes: a red circle")
	if len(a) != len(b) {
		t.Fatalf("text of %d ids after load, %d before", len(b), len(a))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("the loaded tokenizer gives %v, the saved one %v", b, a)
		}
	}
	r := rand.New(rand.NewPCG(7, 8))
	text, codes := batch(t, m, r, "a red circle")
	s := tensor.NewScope()
	defer s.Close()
	la, _ := m.Loss(text, codes, 1, gpt.Options{Scope: s})
	lb, _ := l.Loss(text, codes, 1, gpt.Options{Scope: s})
	if la.Item() != lb.Item() {
		t.Fatalf("loss %v after load, %v before", lb.Item(), la.Item())
	}
}

// Bad input: a prompt longer than the text context, image tokens outside
// the codebook, a folder without its VQ-VAE, a config.json field out of
// range — each a clear error.
func TestBadInput(t *testing.T) {
	m := tiny(t, 5)
	if _, err := m.Text("two shapes: a red circle and a blue square and a red circle"); !errors.Is(err, ErrPromptTooLong) || !strings.Contains(err.Error(), "the context holds 16") {
		t.Fatalf("long prompt: %v", err)
	}
	text, _ := m.Text("a red circle")
	codes := make([]int32, m.Config.Tokens())
	codes[3] = 64
	if _, err := m.Loss(text, codes, 1, gpt.Options{}); err == nil || !strings.Contains(err.Error(), "image token 3 is 64, want 0 to 63") {
		t.Fatalf("code outside the codebook: %v", err)
	}
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, VQFolder)); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(cpu.New(), dir); err == nil || !strings.Contains(err.Error(), "no VQ-VAE folder vq/") {
		t.Fatalf("no vq/: %v", err)
	}
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	cj := filepath.Join(dir, "config.json")
	b, _ := os.ReadFile(cj)
	if err := os.WriteFile(cj, []byte(strings.Replace(string(b), `"image_grid": 4`, `"image_grid": 5`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(cpu.New(), dir); err == nil || !strings.Contains(err.Error(), "config.json") || !strings.Contains(err.Error(), "image_grid") {
		t.Fatalf("image_grid 5: %v", err)
	}
}

// LogProbs is each row's sum of its image tokens' log-probabilities:
// minus Loss times the grid's tokens for one row, the rows' own in a
// batch; its gradients agree with central finite differences.
func TestLogProbs(t *testing.T) {
	m := tiny(t, 4)
	r := rand.New(rand.NewPCG(7, 8))
	text, codes := batch(t, m, r, "a red circle", "a blue square", "")
	N, L := m.Config.Tokens(), m.Config.TextLength
	var lp []float32
	tensor.NoGrad(func() {
		s := tensor.NewScope()
		defer s.Close()
		v, err := m.LogProbs(text, codes, 3, gpt.Options{Scope: s})
		if err != nil {
			t.Fatal(err)
		}
		if got := v.Shape(); len(got) != 1 || got[0] != 3 {
			t.Fatalf("log-probs of shape %v, want [3]", got)
		}
		lp = v.Host()
		for b := range 3 {
			l, err := m.Loss(text[b*L:(b+1)*L], codes[b*N:(b+1)*N], 1, gpt.Options{Scope: s})
			if err != nil {
				t.Fatal(err)
			}
			if want := -float64(l.Item()) * float64(N); math.Abs(float64(lp[b])-want) > 1e-3 {
				t.Fatalf("row %d: log-prob %v, want -loss x %d = %v", b, lp[b], N, want)
			}
		}
	})
	if lp[0] == lp[1] {
		t.Fatal("two rows have the same log-prob")
	}
	// d(2 lp[0] - lp[2]) / d(a weight) against finite differences.
	f := func() *tensor.Tensor {
		v, err := m.LogProbs(text, codes, 3, gpt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return tensor.Sum(tensor.Mul(v, tensor.FromHost(m.Head.Weight.Backend(), []float32{2, 0, -1}, 3)))
	}
	for _, p := range m.Params() {
		p.Tensor.ZeroGrad()
	}
	tensor.Backward(f())
	rr := rand.New(rand.NewPCG(1, 1))
	for _, p := range []nn.Named{{Name: "wte", Tensor: m.LM.Embed.Weight}, {Name: "image_head.weight", Tensor: m.Head.Weight}, {Name: "image_embed.weight", Tensor: m.Image.Weight}} {
		grad, v := p.Tensor.Grad().Host(), p.Tensor.Host()
		C := m.Config.Text.Hidden
		for range 3 {
			i := rr.IntN(len(v))
			switch p.Name {
			case "image_embed.weight":
				i = int(codes[rr.IntN(N-1)])*C + rr.IntN(C)
			case "wte": // the text token table: a row the first caption reads
				i = int(text[rr.IntN(3)])*C + rr.IntN(C)
			}
			checkFD(t, p, v, grad, i, f, 2e-3)
		}
	}
}
