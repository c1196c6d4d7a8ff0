package train

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/data"
	"github.com/golem-ml/golem/generate"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/llava"
	"github.com/golem-ml/golem/model/load"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// This file holds what the preference and RL stages (reward, ppo, dpo,
// grpo) share: chat rendering of prompts and answers, padding, masked
// reductions and the log-sigmoid.

// loadPolicy loads a language model and its tokenizer (loadLM) and checks
// that the tokenizer has the chat tokens and that the weights can be
// trained (not quantized).
func loadPolicy(be backend.Backend, dir, what string) (*gpt.Model, *tokenizer.Tokenizer, error) {
	m, tok, err := loadLM(be, dir, what)
	if err != nil {
		return nil, nil, err
	}
	if q := m.Quantized(); len(q) > 0 {
		return nil, nil, fmt.Errorf("%s: %s: %d of its weight matrices are kept as GGUF stores them (Q8_0, Q4_0 or F16) and cannot be trained: start from the float model", what, dir, len(q))
	}
	if err := checkChatTokenizer(tok, m.Config.Vocab, dir); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	return m, tok, nil
}

// loadLM loads a language model to train, and its tokenizer, from what a
// stage's --model or --policy names (model/load): a model folder, or a LoRA
// adapter merged into its base. A prompt-tuning adapter is refused: the
// stages train whole models, and its soft prompt would be lost.
func loadLM(be backend.Backend, dir, what string) (*gpt.Model, *tokenizer.Tokenizer, error) {
	l, err := load.Model(be, dir, load.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	if l.SoftPrompt != nil {
		return nil, nil, fmt.Errorf("%s: %s is a prompt-tuning adapter, and this stage trains a whole model, which would drop its soft prompt: give it a model folder or a LoRA adapter", what, dir)
	}
	return l.Model, l.Tok, nil
}

func checkChatTokenizer(tok *tokenizer.Tokenizer, vocab int, dir string) error {
	if tok.VocabSize() > vocab {
		return fmt.Errorf("%s: the tokenizer has %d tokens but the model only %d", dir, tok.VocabSize(), vocab)
	}
	if _, ok := tok.TurnEnd(); !ok || !tok.HasChatTemplate() {
		return fmt.Errorf("%s: the tokenizer has no chat template, nor a %s token, so it cannot render chats (was the model trained with golem's chat tokens?)", dir, tokenizer.ImEnd)
	}
	return nil
}

// sameTokenizer fails unless a and b encode the same way: a reward model
// read with another tokenizer scores other texts than the policy wrote.
func sameTokenizer(a, b *tokenizer.Tokenizer, aDir, bDir string) error {
	var ja, jb bytes.Buffer
	a.WriteJSON(&ja)
	b.WriteJSON(&jb)
	if sha256.Sum256(ja.Bytes()) != sha256.Sum256(jb.Bytes()) {
		return fmt.Errorf("the tokenizers of %s (%d tokens) and %s (%d tokens) differ: the reward model must be trained from the policy's tokenizer (e.g. from the same SFT model)", aDir, a.VocabSize(), bDir, b.VocabSize())
	}
	return nil
}

// chat renders conversations for a model with context ctx.
type chat struct {
	tok   *tokenizer.Tokenizer
	ctx   int
	imEnd int
	// truncate keeps the last ctx tokens of a too-long conversation
	// instead of failing (the prompt loses its beginning).
	truncate  bool
	truncated int // conversations truncated so far
	// vision is the LLaVA model around the stage's language model, nil
	// for a text-only model: render then writes its format (image_prompt.go).
	vision *llava.Model
}

func newChat(tok *tokenizer.Tokenizer, ctx int, truncate bool) *chat {
	id, _ := tok.TurnEnd() // <|im_end|>, or the model's template's end of turn
	return &chat{tok: tok, ctx: ctx, imEnd: id, truncate: truncate}
}

// prompt renders a prompt followed by the assistant's header, ready for
// generation; it must leave room for at least one new token.
func (c *chat) prompt(msgs []data.Message, where string) ([]int, error) {
	ids, _, err := c.tok.RenderChat(msgs, true)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if len(ids) >= c.ctx {
		if !c.truncate {
			return nil, fmt.Errorf("%s: the prompt has %d tokens, longer than the model's context of %d allows (shorten it or use a model with a longer context)", where, len(ids), c.ctx)
		}
		c.truncated++
		ids = ids[len(ids)-c.ctx/2:]
	}
	return ids, nil
}

// answer renders a prompt and an answer (assistant turns) and returns the
// tokens up to the <|im_end|> closing the answer and the mask of the
// answer's tokens (what the assistant wrote, and that <|im_end|>). A
// prompt too long to leave room for the answer is an error unless the
// chat truncates; a long answer is cut at the context.
func (c *chat) answer(prompt, answer []data.Message, where string) ([]int, []bool, error) {
	ids, mask, err := c.tok.RenderChat(append(append([]data.Message{}, prompt...), answer...), false)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", where, err)
	}
	// Drop the newline after the last <|im_end|>: the score is read there.
	for len(ids) > 0 && ids[len(ids)-1] != c.imEnd {
		ids, mask = ids[:len(ids)-1], mask[:len(mask)-1]
	}
	start := 0
	for start < len(mask) && !mask[start] {
		start++
	}
	if len(ids) > c.ctx {
		if start >= c.ctx-1 {
			if !c.truncate {
				return nil, nil, fmt.Errorf("%s: the prompt has %d tokens, longer than the model's context of %d allows with an answer (use a model with a longer context, or truncate)", where, start, c.ctx)
			}
			// Keep the answer's end and as much of the prompt as fits.
			cut := max(0, len(ids)-c.ctx)
			ids, mask = ids[cut:], mask[cut:]
		} else {
			ids, mask = ids[:c.ctx], mask[:c.ctx]
		}
		c.truncated++
	}
	return ids, mask, nil
}

// answers is a batch of answers a policy sampled.
type answers struct {
	rows  [][]int // prompt + answer tokens
	start []int   // where each answer begins
	// outs are the answers' new tokens. An answer that stopped ends with
	// <|im_end|> in rows (the stop token is an action too), not in outs.
	outs [][]int
	// prompt is each row's prompt (an index into the stage's prompts),
	// for its image.
	prompt []int
}

// append adds b's rows from to to (their tokens, starts, answers and
// prompts) to a.
func (a *answers) append(b answers, from, to int) {
	a.rows = append(a.rows, b.rows[from:to]...)
	a.start = append(a.start, b.start[from:to]...)
	a.outs = append(a.outs, b.outs[from:to]...)
	if b.prompt != nil {
		a.prompt = append(a.prompt, b.prompt[from:to]...)
	}
}

// freezeRollouts keeps the policy's weights packed while a rollout
// samples (sampleRollout); off only in the test that checks it changes
// nothing.
var freezeRollouts = true

// sampleRollout has the policy answer rendered prompts at temperature
// temp, with up to maxTokens new tokens each (fewer where the context
// ends), each answer stopping at <|im_end|>; pre, when not nil, are the
// input embeddings before each prompt (its image: rowPrefixes), all of
// one length.
func sampleRollout(policy *gpt.Model, prompts [][]int, pre []*nn.SoftPrompt, maxTokens int, temp float64, imEnd int, seed uint64) (answers, error) {
	L := 0
	for _, p := range prompts {
		L = max(L, len(p))
	}
	if len(pre) > 0 {
		L += pre[0].Weight.Dim(0)
	}
	maxNew := min(maxTokens, policy.Config.Context-L)
	// The policy's weights are fixed while it samples: keep them packed
	// for the decode steps' products (len(prompts) rows each), and thaw
	// them before the optimizer writes them.
	thaw := func() {}
	if freezeRollouts {
		thaw, _ = nn.FreezeBuffers(append(policy.Params(), policy.LoRAParams()...), nn.MaxFrozenBytes)
	}
	outs, err := generate.Tokens(policy, prompts, generate.Options{MaxTokens: maxNew, Temperature: temp, StopIDs: []int{imEnd}, Seed: seed, RowPrompts: pre}, nil)
	thaw()
	if err != nil {
		return answers{}, err
	}
	a := answers{outs: outs}
	for i, p := range prompts {
		row := append(append([]int{}, p...), outs[i]...)
		if len(outs[i]) < maxNew {
			row = append(row, imEnd)
		}
		a.rows, a.start = append(a.rows, row), append(a.start, len(p))
	}
	return a, nil
}

// padRows right-pads rows into one [B, T] batch and returns it with T,
// rounded up to a multiple of 16 within the context ctx: the CPU backend keeps freed buffers by
// exact size, so a few distinct shapes keep memory bounded where every
// length of its own would not.
func padRows(rows [][]int, ctx int) ([]int32, int) {
	longest := 0
	for _, r := range rows {
		longest = max(longest, len(r))
	}
	T := max(longest, min(ctx, (longest+15)/16*16))
	ids := make([]int32, len(rows)*T)
	for b, r := range rows {
		for t, id := range r {
			ids[b*T+t] = int32(id)
		}
	}
	return ids, T
}

// actionTargets returns, for right-padded rows [B, T] whose tokens marked
// in masks are the model's actions, the next-token targets of each
// position: the action at t+1 where it is one, -1 elsewhere (so that
// tensor.TokenLogProbs gives 0 there).
func actionTargets(rows [][]int, masks [][]bool, T int) []int32 {
	tg := make([]int32, len(rows)*T)
	for b, r := range rows {
		for t := 0; t < T; t++ {
			tg[b*T+t] = -1
			if t+1 < len(r) && masks[b][t+1] {
				tg[b*T+t] = int32(r[t+1])
			}
		}
	}
	return tg
}

// tokenLogProbs returns the log-probabilities the model gives the targets
// at each position of ids [B, T] ([B*T], 0 where the target is -1), with
// the logits divided by temp (as they were when sampling; 0 means 1), in
// scope s.
func tokenLogProbs(s *tensor.Scope, m *gpt.Model, ids, targets []int32, B, T int, temp float64) *tensor.Tensor {
	return tokenLogProbsAfter(s, m, nil, ids, targets, B, T, temp)
}

// tokenLogProbsAfter is tokenLogProbs with embeds [B, P, C] (an image's
// tokens and the text before it; nil for none) before each row's tokens:
// the embeddings' positions predict nothing.
func tokenLogProbsAfter(s *tensor.Scope, m *gpt.Model, embeds *tensor.Tensor, ids, targets []int32, B, T int, temp float64) *tensor.Tensor {
	h := m.Forward(ids, B, T, gpt.Options{Scope: s, Embeds: embeds})
	if embeds != nil {
		P := embeds.Dim(1)
		h = tensor.Slice(h, 1, P, P+T)
	}
	logits := tempered(m.Logits(h), temp)
	return tensor.TokenLogProbs(tensor.Reshape(logits, B*T, m.Config.Vocab), targets)
}

// tempered divides logits by the sampling temperature: RL on answers
// sampled at a temperature optimises that tempered policy, as TRL does.
func tempered(logits *tensor.Tensor, temp float64) *tensor.Tensor {
	if temp == 0 || temp == 1 {
		return logits
	}
	return tensor.Scale(logits, float32(1/temp))
}

// rowSums sums x [B*T] over each row with weights w [B*T]: [B].
func rowSums(x *tensor.Tensor, w []float32, B, T int) *tensor.Tensor {
	return tensor.SumLast(tensor.Reshape(tensor.Mul(x, x.Scope().FromHost(x.Backend(), w, B*T)), B, T))
}

// logSigmoid is log σ(x) = min(x, 0) - log(1 + e^-|x|), stable for any x.
func logSigmoid(x *tensor.Tensor) *tensor.Tensor {
	return tensor.Sub(tensor.ClampMax(x, 0), tensor.Log(tensor.AddScalar(tensor.Exp(tensor.Neg(tensor.Abs(x))), 1)))
}

// stepRand is the random source of one step of a stage: a function of the
// seed and the step alone, which makes resumed runs exact.
func stepRand(seed uint64, stream string, step int) *rand.Rand {
	h := uint64(14695981039346656037)
	for i := 0; i < len(stream); i++ {
		h = (h ^ uint64(stream[i])) * 1099511628211
	}
	return rand.New(rand.NewPCG(seed^h, uint64(step)))
}

// epochOrder returns the item at position i of a stream of epochs, each a
// permutation of n items drawn from the seed and the epoch.
func epochOrder(seed uint64, n, i int) int {
	epoch := i / n
	perm := stepRand(seed, "epoch", epoch).Perm(n)
	return perm[i%n]
}

// pearson is the correlation of x and y (0 when either is constant).
func pearson(x, y []float64) float64 {
	n := float64(len(x))
	if n < 2 {
		return 0
	}
	var mx, my float64
	for i := range x {
		mx += x[i]
		my += y[i]
	}
	mx, my = mx/n, my/n
	var sxy, sxx, syy float64
	for i := range x {
		dx, dy := x[i]-mx, y[i]-my
		sxy += dx * dy
		sxx += dx * dx
		syy += dy * dy
	}
	if sxx == 0 || syy == 0 {
		return 0
	}
	return sxy / math.Sqrt(sxx*syy)
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// noGradValues runs fn with gradients off in a scope of its own and
// returns the values of the tensor it makes (scoring answers).
func noGradValues(fn func(s *tensor.Scope) *tensor.Tensor) []float32 {
	var v []float32
	tensor.NoGrad(func() {
		s := tensor.NewScope()
		defer s.Close()
		v = fn(s).Host()
	})
	return v
}
