package imagine

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/golem-ml/golem/internal/testmodels"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/generate"
	"github.com/golem-ml/golem/internal/shared"
	"github.com/golem-ml/golem/model/clip"
	"github.com/golem-ml/golem/model/dalle"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tokenizer"
)

// tiny is a random model: 16 text tokens, a 4x4 grid of 64 codes decoded
// by a random tiny VQ-VAE to 16 x 16 pixels.
func tiny(t *testing.T) *dalle.Model {
	t.Helper()
	m := testmodels.Dalle(t, cpu.New(), 16, 7)
	// Larger head weights, so that the random model's distributions are
	// far from uniform and guidance changes what is drawn.
	w := m.Head.Weight.Host()
	for i := range w {
		w[i] *= 100
	}
	m.Head.Weight.Set(w)
	return m
}

func sampling(seed uint64) generate.Options {
	return generate.Options{Temperature: 1, Seed: seed}
}

// The same seed draws the same grids and images; another seed others;
// each sample draws with its own seed (sample i of seed s is sample 0 of
// seed s+i).
func TestDeterministic(t *testing.T) {
	m := tiny(t)
	a, err := Images(m, "a red circle", Options{N: 3, Sampling: sampling(5)})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Images(m, "a red circle", Options{N: 3, Sampling: sampling(5)})
	c, _ := Images(m, "a red circle", Options{N: 3, Sampling: sampling(6)})
	if len(a.Images) != 3 || len(a.Codes) != 3 || len(a.Codes[0]) != 16 || a.Scores != nil || a.Best != 0 {
		t.Fatalf("result of %d images, %d grids of %d, scores %v, best %d", len(a.Images), len(a.Codes), len(a.Codes[0]), a.Scores, a.Best)
	}
	if sz := a.Images[0].Bounds().Size(); sz.X != 16 || sz.Y != 16 {
		t.Fatalf("image of %v, want 16x16", sz)
	}
	for i := range a.Codes {
		if !slices.Equal(a.Codes[i], b.Codes[i]) {
			t.Fatalf("sample %d: %v, then %v with the same seed", i, a.Codes[i], b.Codes[i])
		}
		if a.Images[i].At(5, 7) != b.Images[i].At(5, 7) {
			t.Fatalf("sample %d: the same grid decoded to two images", i)
		}
	}
	if !slices.Equal(a.Codes[1], c.Codes[0]) || slices.Equal(a.Codes[0], c.Codes[0]) {
		t.Fatalf("seed 5's sample 1 %v, seed 6's sample 0 %v (want equal); seed 5's sample 0 %v (want different)", a.Codes[1], c.Codes[0], a.Codes[0])
	}
}

// Classifier-free guidance at scale 1 is the conditional model: the same
// grids as sampling without guidance, though the unconditional rows run
// beside them; a larger scale changes them.
func TestGuidanceOne(t *testing.T) {
	m := tiny(t)
	off, err := Images(m, "a blue square", Options{N: 4, Sampling: sampling(1)})
	if err != nil {
		t.Fatal(err)
	}
	one, err := Images(m, "a blue square", Options{N: 4, Sampling: sampling(1), Guidance: 1})
	if err != nil {
		t.Fatal(err)
	}
	three, err := Images(m, "a blue square", Options{N: 4, Sampling: sampling(1), Guidance: 3})
	if err != nil {
		t.Fatal(err)
	}
	changed := false
	for i := range off.Codes {
		if !slices.Equal(off.Codes[i], one.Codes[i]) {
			t.Fatalf("sample %d: %v without guidance, %v at scale 1", i, off.Codes[i], one.Codes[i])
		}
		changed = changed || !slices.Equal(off.Codes[i], three.Codes[i])
	}
	if !changed {
		t.Fatal("guidance at scale 3 drew the same grids as none")
	}
}

// With a CLIP model, every sample gets its CLIP score for the prompt (the
// scores of the images returned, as clip.Model.Scores computes them) and
// Best is the highest.
func TestRerank(t *testing.T) {
	dir := shared.Path(t, "fixtures/hf/clip-tiny")
	cm, err := clip.Load(cpu.New(), dir)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.LoadCLIP(shared.Path(t, "data/tokenizer/clip/bpe_simple_vocab_16e6.txt.gz"))
	if err != nil {
		t.Fatal(err)
	}
	m := tiny(t)
	res, err := Images(m, "a red circle", Options{N: 6, Sampling: sampling(3), Rerank: cm, RerankTokenizer: tok})
	if err != nil {
		t.Fatal(err)
	}
	var pixels [][]float32
	for _, img := range res.Images {
		p, err := vision.CLIPPixels(vision.FromImage(img), cm.Config.Vision.Image, 3)
		if err != nil {
			t.Fatal(err)
		}
		pixels = append(pixels, p)
	}
	want, err := cm.Scores(tok, "a red circle", pixels)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Scores, want) {
		t.Fatalf("scores %v, the images' CLIP scores %v", res.Scores, want)
	}
	best := 0
	for i, s := range want {
		if s > want[best] {
			best = i
		}
	}
	if res.Best != best || slices.Min(want) == slices.Max(want) {
		t.Fatalf("best %d of scores %v, want %d (and scores that differ)", res.Best, want, best)
	}
}

// Bad input is a clear error: n 0 or too large, a prompt longer than the
// text context, a negative guidance scale, options that do not apply.
func TestBadInput(t *testing.T) {
	m := tiny(t)
	for _, c := range []struct {
		prompt string
		o      Options
		want   string
	}{
		{"a red circle", Options{N: 0}, "n 0, want 1 to 64"},
		{"a red circle", Options{N: 65}, "n 65, want 1 to 64"},
		{strings.Repeat("a red circle and ", 8), Options{N: 1}, "the context holds 16"},
		{"a red circle", Options{N: 1, Guidance: -1}, "guidance scale -1"},
		{"a red circle", Options{N: 1, Sampling: generate.Options{MaxTokens: 5}}, "only the temperature"},
		{"a red circle", Options{N: 1, Sampling: generate.Options{TopP: 2}}, "top-p 2"},
	} {
		_, err := Images(m, c.prompt, c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q %+v: %v, want an error with %q", c.prompt, c.o, err, c.want)
		}
	}
	if _, err := Images(m, strings.Repeat("a red circle and ", 8), Options{N: 1}); !errors.Is(err, dalle.ErrPromptTooLong) {
		t.Errorf("long prompt: %v is not dalle.ErrPromptTooLong", err)
	}
}

// Grid lays N images out with room for their scores and frames the best.
func TestGrid(t *testing.T) {
	m := tiny(t)
	res, err := Images(m, "a red circle", Options{N: 5, Sampling: sampling(1)})
	if err != nil {
		t.Fatal(err)
	}
	g := Grid(res.Images, []float64{0.1, 0.2, 0.3, 0.4, 0.5}, 4)
	// 3 columns, 2 rows of 96-pixel tiles (16 x 6) with 6-pixel gaps and
	// a 16-pixel label under each.
	if sz := g.Bounds().Size(); sz.X != 3*(96+6)+6 || sz.Y != 2*(96+6+16)+6 {
		t.Fatalf("grid of %v", sz)
	}
	// The best (index 4: row 1, column 1) has a green frame.
	if r, gr, b, _ := g.At(6+102-2, 6+118-2).RGBA(); r != 0 || gr>>8 != 200 || b != 0 {
		t.Fatalf("no green frame around the best: %v %v %v", r, gr, b)
	}
}

// ImagesContext stops drawing at the step after its context ends: cancelled
// while the third image token is drawn, no fourth is; cancelled before it
// begins, nothing is drawn. Uncancelled, Progress counts every token.
func TestImagesCancel(t *testing.T) {
	m := tiny(t)
	const n = 3
	var calls []int
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := Options{N: n, Sampling: sampling(1), Guidance: 2, Progress: func(tokens int) {
		calls = append(calls, tokens)
		if len(calls) == 3 {
			cancel()
		}
	}}
	res, err := ImagesContext(ctx, m, "a red circle", o)
	if !errors.Is(err, context.Canceled) || res != nil {
		t.Fatalf("cancelled at step 3: %v, %v; want context.Canceled and no result", res, err)
	}
	if !slices.Equal(calls, []int{n, 2 * n, 3 * n}) {
		t.Errorf("tokens drawn after each step: %v, want [3 6 9] (stopped within a step of the cancel)", calls)
	}
	calls = nil
	if _, err := ImagesContext(ctx, m, "a red circle", o); !errors.Is(err, context.Canceled) || calls != nil {
		t.Errorf("a context ended before: %v, steps %v; want context.Canceled and no step", err, calls)
	}
	calls = nil
	o.Progress = func(tokens int) { calls = append(calls, tokens) }
	if _, err := ImagesContext(context.Background(), m, "a red circle", o); err != nil || len(calls) != 16 || calls[15] != 16*n {
		t.Errorf("uncancelled: %v, steps %v; want 16 steps ending at %d tokens", err, calls, 16*n)
	}
}

// Frozen weights (the text-to-image model and its VQ-VAE kept packed, as
// golem imagine keeps them) draw the very grids and images, under
// guidance, that unfrozen ones draw.
func TestFrozenSameImages(t *testing.T) {
	be := cpu.New()
	m := testmodels.Dalle(t, be, 16, 7)
	o := Options{N: 4, Guidance: 3, Sampling: sampling(11)}
	a, err := Images(m, "a red circle", o)
	if err != nil {
		t.Fatal(err)
	}
	params := append(m.Params(), m.VQ.Params()...)
	thaw, _ := nn.FreezeBuffers(params, nn.MaxFrozenBytes)
	defer thaw()
	b, err := Images(m, "a red circle", o)
	if err != nil {
		t.Fatal(err)
	}
	var packed int64
	for _, p := range params {
		packed += be.FrozenBytes(p.Tensor.Buffer())
	}
	if packed == 0 {
		t.Fatal("no weight was kept packed: the comparison below compares nothing")
	}
	for i := range a.Codes {
		if !slices.Equal(a.Codes[i], b.Codes[i]) {
			t.Fatalf("sample %d: %v unfrozen, %v frozen", i, a.Codes[i], b.Codes[i])
		}
		for y := range 16 {
			for x := range 16 {
				if a.Images[i].At(x, y) != b.Images[i].At(x, y) {
					t.Fatalf("sample %d: pixel (%d, %d) %v unfrozen, %v frozen", i, x, y, a.Images[i].At(x, y), b.Images[i].At(x, y))
				}
			}
		}
	}
}
