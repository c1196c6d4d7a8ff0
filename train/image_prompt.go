package train

import (
	"fmt"
	"slices"
	"strings"

	"github.com/golem-ml/golem/data"
	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/llava"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
)

// This file lets the preference stages (dpo, reward) train a
// vision-language model (model/llava) on labels with images (data's
// Example.Images): a prompt may carry one image, whose projected patch
// tokens, with the text before its "<image>", go before the row's tokens
// as input embeddings (gpt.Options.Embeds). A text-only row is the same
// path with no embeddings. A LLaVA model's conversations are rendered in
// the format golem vlm trains it in (llava.UserTurn, each answer " text"
// and the tokenizer's end token).

// imagePrompt is what goes before a row's tokens: the text before its
// image's placeholder and the image's pixels (for the model's tower).
type imagePrompt struct {
	before []int
	pixels []float32
}

// imageFiles reads examples' image files for a LLaVA model's tower, each
// file once.
type imageFiles struct {
	v     *llava.Model
	cache map[string][]float32
}

func newImageFiles(v *llava.Model) *imageFiles {
	return &imageFiles{v: v, cache: map[string][]float32{}}
}

// pixels returns the example's image prepared for the tower; nil when it
// has none. A text-only model (v nil) refuses an image; where names the
// example (file:line).
func (f *imageFiles) pixels(images []string, model, stage, where string) ([]float32, error) {
	if len(images) == 0 {
		return nil, nil
	}
	if f == nil || f.v == nil {
		return nil, fmt.Errorf("%s: %s: the example has an image (\"images\") but %s is a text-only model; images need a vision-language model (golem vlm's --out)", stage, where, model)
	}
	path := images[0]
	if p, ok := f.cache[path]; ok {
		return p, nil
	}
	im, err := vision.ReadFile(path, vision.Limits{})
	if err != nil {
		return nil, fmt.Errorf("%s: %s: image %s: %w", stage, where, path, err)
	}
	vc := f.v.Config.Vision
	p, err := vision.CLIPPixels(im, vc.Image, vc.Channels)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: image %s: %w", stage, where, path, err)
	}
	f.cache[path] = p
	return p, nil
}

// render renders a prompt and an answer for the stage's model: with a
// LLaVA model (c.vision) in its format, the text before the image apart
// (img.before; img nil without an image), else as answer does. ids and
// mask are the tokens after the image and which are the answer's.
func (c *chat) render(prompt, answer []data.Message, pixels []float32, where string) (img *imagePrompt, ids []int, mask []bool, err error) {
	if c.vision == nil {
		ids, mask, err = c.answer(prompt, answer, where)
		return nil, ids, mask, err
	}
	end := c.tok.Encode("\n")
	if e := c.tok.EndIDs(); len(e) > 0 {
		end = e[:1]
	}
	if pixels != nil {
		img = &imagePrompt{pixels: pixels}
	}
	placed := false
	for i, m := range append(append([]data.Message{}, prompt...), answer...) {
		switch m.Role {
		case "user":
			text := m.Content
			has := strings.Contains(text, llava.Placeholder)
			switch {
			case has && img == nil:
				return nil, nil, nil, fmt.Errorf("%s: the prompt holds %q but the example has no image (\"images\")", where, llava.Placeholder)
			case has && placed:
				return nil, nil, nil, fmt.Errorf("%s: the prompt holds %q more than once; the model takes one image", where, llava.Placeholder)
			case img != nil && !placed && !has:
				text, has = llava.Placeholder+"\n"+text, true // before the first user text
			}
			if !has {
				t := c.tok.Encode(llava.UserTurn(text))
				ids, mask = append(ids, t...), append(mask, make([]bool, len(t))...)
				continue
			}
			b, a, err := llava.Split(llava.UserTurn(text), c.tok.Encode)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("%s: %w", where, err)
			}
			img.before = append(ids, b...)
			ids, mask, placed = a, make([]bool, len(a)), true
		case "assistant":
			t := append(c.tok.Encode(" "+m.Content), end...)
			ids = append(ids, t...)
			for range t {
				mask = append(mask, i >= len(prompt))
			}
		default:
			return nil, nil, nil, fmt.Errorf("%s: a %s message; the format of golem's LLaVA models has user and assistant turns only", where, m.Role)
		}
	}
	n := len(ids)
	if img != nil {
		n += len(img.before) + c.vision.Tokens()
	}
	if n > c.ctx {
		return nil, nil, nil, fmt.Errorf("%s: the conversation takes %d positions with its image, more than the model's context of %d", where, n, c.ctx)
	}
	return img, ids, mask, nil
}

// answerLogps returns the log-probability under m of each row's tokens
// marked in masks ([len(rows)], in scope s), their mean with mean set; v
// is the LLaVA model around m (nil for a text-only model), and imgs[b]
// what goes before row b (nil: nothing).
func answerLogps(s *tensor.Scope, m *gpt.Model, v *llava.Model, rows [][]int, masks [][]bool, imgs []*imagePrompt, mean bool) *tensor.Tensor {
	return byImage(s, v, imgs, len(rows), m.Config.Context, func(g []int, embeds *tensor.Tensor, ctx int) *tensor.Tensor {
		n := len(g)
		rs, ms := make([][]int, n), make([][]bool, n)
		for j, b := range g {
			rs[j], ms[j] = rows[b], masks[b]
		}
		ids, T := padRows(rs, ctx)
		tg := actionTargets(rs, ms, T)
		w := make([]float32, len(tg))
		for b := range n {
			cnt := 0
			for p := range T {
				if tg[b*T+p] >= 0 {
					cnt++
				}
			}
			for p := range T {
				if tg[b*T+p] >= 0 {
					w[b*T+p] = 1
					if mean {
						w[b*T+p] = 1 / float32(cnt)
					}
				}
			}
		}
		return rowSums(tokenLogProbsAfter(s, m, embeds, ids, tg, n, T, 1), w, n, T)
	})
}

// rowScores returns the scorer's score of each row read at its last token
// ([len(rows)], in scope s); v and imgs as for answerLogps.
func rowScores(s *tensor.Scope, sc *gpt.Scorer, v *llava.Model, rows [][]int, imgs []*imagePrompt) *tensor.Tensor {
	return byImage(s, v, imgs, len(rows), sc.Config.Context, func(g []int, embeds *tensor.Tensor, ctx int) *tensor.Tensor {
		rs := make([][]int, len(g))
		last := make([]int, len(g))
		for j, b := range g {
			rs[j], last[j] = rows[b], len(rows[b])-1
		}
		ids, T := padRows(rs, ctx)
		return sc.Scores(ids, len(g), T, last, gpt.Options{Scope: s, Embeds: embeds})
	})
}

// scoreAll scores rows in batches of 16 without gradients (rowScores).
func scoreAll(sc *gpt.Scorer, v *llava.Model, rows [][]int, imgs []*imagePrompt) []float64 {
	out := make([]float64, 0, len(rows))
	for i := 0; i < len(rows); i += 16 {
		j := min(i+16, len(rows))
		var im []*imagePrompt
		if imgs != nil {
			im = imgs[i:j]
		}
		for _, x := range noGradValues(func(s *tensor.Scope) *tensor.Tensor { return rowScores(s, sc, v, rows[i:j], im) }) {
			out = append(out, float64(x))
		}
	}
	return out
}

// byImage runs fn on each group of the n rows that share the text before
// their image (text-only rows, imgs[b] nil or imgs nil, are one group):
// fn gets the group's row indices, the embeddings that go before their
// tokens (nil for text rows) and the context left for the tokens, and
// returns one value a row. The values come back in the rows' order.
func byImage(s *tensor.Scope, v *llava.Model, imgs []*imagePrompt, n, ctx int, fn func(g []int, embeds *tensor.Tensor, ctx int) *tensor.Tensor) *tensor.Tensor {
	var keys []string
	groups := map[string][]int{}
	for b := range n {
		k := "text"
		if imgs != nil && imgs[b] != nil {
			k = fmt.Sprint(imgs[b].before)
		}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], b)
	}
	var parts []*tensor.Tensor
	var order []int // order[j]: the row at position j of the concatenated parts
	for _, k := range keys {
		g := groups[k]
		var embeds *tensor.Tensor
		var pixels []float32
		for _, b := range g {
			if imgs != nil && imgs[b] != nil {
				pixels = append(pixels, imgs[b].pixels...)
			}
		}
		left := ctx
		if pixels != nil {
			feats, err := v.ImageFeatures(s, pixels, len(g))
			if err != nil {
				panic(err) // imageFiles prepared every image for this tower
			}
			embeds = v.Prefix(imgs[g[0]].before, feats)
			left -= embeds.Dim(1)
		}
		parts = append(parts, fn(g, embeds, left))
		order = append(order, g...)
	}
	if len(parts) == 1 {
		return parts[0]
	}
	// Back to the rows' order: a permutation matrix times the parts.
	perm := make([]float32, n*n)
	for j, b := range order {
		perm[b*n+j] = 1
	}
	all := tensor.Reshape(tensor.Concat(0, parts...), n, 1)
	return tensor.Reshape(tensor.MatMul(s.FromHost(all.Backend(), perm, n, n), all, false, false), n)
}

// rowPrefixes returns what goes before each row's tokens when every row
// has an image and the same text before it (a rollout's prompts, PPO):
// [B, P, C] in scope s, each row's image's projected patch tokens after
// that text, embedded by v's language model.
func rowPrefixes(s *tensor.Scope, v *llava.Model, imgs []*imagePrompt) *tensor.Tensor {
	pixels := make([]float32, 0, len(imgs)*v.PixelSize())
	for _, im := range imgs {
		pixels = append(pixels, im.pixels...)
	}
	feats, err := v.ImageFeatures(s, pixels, len(imgs))
	if err != nil {
		panic(err) // imageFiles prepared every image for this tower
	}
	return v.Prefix(imgs[0].before, feats)
}

// imagePrompts are a rollout stage's prompts (ppo, grpo) for a LLaVA
// policy, each rendered in the format the model was trained in with its
// image. Every prompt needs one image and the same text before it: a
// rollout's rows share the embeddings' positions.
type imagePrompts struct {
	ids  [][]int        // each prompt's tokens after its image
	imgs []*imagePrompt // each prompt's image and the text before it
}

// imageEnd returns the end token a LLaVA model's answers stop at (the
// tokenizer's, as golem vlm ends them).
func imageEnd(c *chat, model, stage string) (int, error) {
	end := c.tok.EndIDs()
	if len(end) == 0 {
		return 0, fmt.Errorf("%s: %s: the tokenizer has no end token for the answers to stop at", stage, model)
	}
	return end[0], nil
}

// add renders a prompt and its image (images, one file) for c's LLaVA
// model; stage and where (file:line) name it in errors.
func (p *imagePrompts) add(c *chat, files *imageFiles, prompt []data.Message, images []string, model, stage, where string) error {
	if len(images) == 0 {
		return fmt.Errorf("%s: %s: the prompt has no image (\"images\"); a vision-language model's rollouts need one in every prompt", stage, where)
	}
	pixels, err := files.pixels(images, model, stage, where)
	if err != nil {
		return err
	}
	img, ids, _, err := c.render(prompt, nil, pixels, where)
	if err != nil {
		return fmt.Errorf("%s: %w", stage, err)
	}
	if n := len(img.before) + c.vision.Tokens() + len(ids); n >= c.ctx {
		return fmt.Errorf("%s: %s: the prompt takes %d positions with its image, leaving no room for an answer in the context of %d", stage, where, n, c.ctx)
	}
	if len(p.imgs) > 0 && !slices.Equal(img.before, p.imgs[0].before) {
		return fmt.Errorf("%s: %s: the text before the image differs from the first prompt's: a rollout's rows share it (put %s at the start of the first user turn)", stage, where, llava.Placeholder)
	}
	p.ids, p.imgs = append(p.ids, ids), append(p.imgs, img)
	return nil
}

// embeds returns what goes before rows answering prompts (indices into
// the prompts) for the LLaVA model v: [B, P, C] in scope s; nil when v
// is nil (a text-only run).
func (p *imagePrompts) embeds(s *tensor.Scope, v *llava.Model, prompts []int) *tensor.Tensor {
	if v == nil {
		return nil
	}
	imgs := make([]*imagePrompt, len(prompts))
	for i, j := range prompts {
		imgs[i] = p.imgs[j]
	}
	return rowPrefixes(s, v, imgs)
}

// prefixLen is the positions before each row's tokens for the LLaVA
// model v: its image's and the text's before it; 0 for text (v nil).
func (p *imagePrompts) prefixLen(v *llava.Model) int {
	if v == nil {
		return 0
	}
	return len(p.imgs[0].before) + v.Tokens()
}

// sample has policy, the language model of the LLaVA model v (nil: a
// text-only run, prompts the rendered prompts alone), answer rendered
// prompts, each row after its prompt's image (idx: each row's prompt);
// as sampleRollout otherwise.
func (p *imagePrompts) sample(policy *gpt.Model, v *llava.Model, prompts [][]int, idx []int, maxTokens int, temp float64, imEnd int, seed uint64) (answers, error) {
	var a answers
	var err error
	tensor.NoGrad(func() {
		s := tensor.NewScope()
		defer s.Close()
		var pre []*nn.SoftPrompt
		if e := p.embeds(s, v, idx); e != nil { // each row's image
			P, C := e.Dim(1), e.Dim(2)
			for b := range len(prompts) {
				pre = append(pre, &nn.SoftPrompt{Weight: tensor.Reshape(tensor.Slice(e, 0, b, b+1), P, C)})
			}
		}
		a, err = sampleRollout(policy, prompts, pre, maxTokens, temp, imEnd, seed)
	})
	a.prompt = idx
	return a, err
}
