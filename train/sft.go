package train

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/data"
	"github.com/golem-ml/golem/gguf"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/load"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// SFTOptions configures SFT. The zero value of each field gets the default
// noted.
type SFTOptions struct {
	Backend backend.Backend
	Model   string   // base model folder, or a LoRA adapter (model/load)
	Data    []string // data files in any format package data reads
	Format  data.Format
	Eval    []string // held-out data files (default: EvalExamples, else ValFrac of the data)
	ValFrac float64  // share of the data held out when there is no held-out data (default 0.05)
	// Examples are examples made in memory (golem's built-in tasks,
	// data/synth), trained on before Data's; EvalExamples are held-out
	// ones, used when Eval is empty. ExamplesAbout says what Examples
	// are, for the log ("2000 built-in en tasks (train split)").
	Examples      []data.Example
	EvalExamples  []data.Example
	ExamplesAbout string
	MaxLen        int  // tokens per example, longer ones are truncated (default: the model's context)
	Batch         int  // examples per micro-batch (default 8)
	Packing       bool // group examples of similar length, up to Batch*MaxLen tokens per micro-batch
	AllTokens     bool // loss on every token, not only the assistant's
	Epochs        float64
	// LoRA, when set, trains low-rank adapters on a frozen model; Merge
	// then also writes the merged model to Out/merged.
	LoRA  *gpt.LoRAConfig
	Merge bool
	// PromptTokens > 0 trains that many virtual tokens before every input
	// of a frozen model (prompt tuning).
	PromptTokens int
	Loop         Config // Loop.Steps 0 means Epochs (default 1) over the data
	Log          io.Writer
}

// SFTResult is what SFT reports beyond the loop's Result.
type SFTResult struct {
	Result
	Method          string // "full", "lora" or "prompt-tuning"
	Trainable       int    // trainable parameters
	Total           int    // parameters of the model (and adapter)
	TrainExamples   int
	ValExamples     int
	Truncated       int      // examples cut to MaxLen
	Skipped         int      // truncated examples left without any answer token, not trained on
	AddedTokens     []string // special tokens added to the tokenizer
	Merged          string   // folder of the merged model, if written
	TokensPerSecond float64  // example tokens (not padding) trained on per second
}

// encoded is one example as token ids; loss[i] says whether predicting
// ids[i] counts.
type encoded struct {
	ids  []int32
	loss []bool
}

// sftTask trains on batches of encoded examples: each example is its own
// row of the batch, right-padded, so no example ever attends to another.
type sftTask struct {
	model     *gpt.Model
	tok       *tokenizer.Tokenizer
	train     []encoded
	val       []encoded
	batch     int
	maxTokens int // with packing: the token budget of a micro-batch
	maxLen    int // tokens per example
	packing   bool
	seed      uint64
	pad       int32
	accum     int // micro-batches per step: micro-batch k is step*accum+micro
	seen      int // example tokens trained on in this run (padding not counted)

	method string
	lora   *gpt.LoRAConfig
	prompt *nn.SoftPrompt
	base   string // base model folder, for adapters' configs
	out    string // the run's folder, where adapters are published

	groups [][]int // packing: micro-batches of example indices, sorted by length
	epoch  int
	order  [][]int // this epoch's micro-batches
}

// SFT runs supervised fine-tuning: the examples are rendered with the
// chat template (plain text is trained as is), the loss is on the
// assistant's tokens, and the model, a LoRA adapter or a soft prompt is
// trained with the shared loop. With Loop.Resume it continues the run in
// Loop.Out.
func SFT(ctx context.Context, o SFTOptions) (SFTResult, error) {
	if o.Log == nil {
		o.Log = os.Stderr
	}
	var res SFTResult
	cfg := o.Loop
	if cfg.Out == "" {
		return res, errors.New("sft: an output folder is needed (--out)")
	}
	if o.Model == "" && !cfg.Resume {
		return res, errors.New("sft: a base model is needed (--model)")
	}
	if len(o.Data) == 0 && len(o.Examples) == 0 {
		return res, errors.New("sft: no data (--data FILE or --data builtin)")
	}
	if o.LoRA != nil && o.PromptTokens > 0 {
		return res, errors.New("sft: choose LoRA or prompt tuning, not both")
	}
	if o.Merge && o.LoRA == nil {
		return res, errors.New("sft: --merge needs LoRA (--lora-r)")
	}
	if o.Batch <= 0 {
		o.Batch = 8
	}
	if o.ValFrac == 0 {
		o.ValFrac = 0.05
	}
	if o.Epochs == 0 {
		o.Epochs = 1
	}
	release, err := cfg.open() // lock Out; on resume, its files are the checkpoint's
	if err != nil {
		return res, err
	}
	defer release()
	t := &sftTask{batch: o.Batch, packing: o.Packing, seed: cfg.Seed, method: "full", lora: o.LoRA}
	if err := t.load(o, &res); err != nil {
		return res, err
	}
	m := t.model
	P := 0
	if t.prompt != nil {
		P = t.prompt.Weight.Dim(0)
	}
	if o.MaxLen <= 0 || o.MaxLen > m.Config.Context-P {
		o.MaxLen = m.Config.Context - P
	}
	if o.MaxLen < 2 {
		return res, fmt.Errorf("sft: the model's context of %d leaves no room after %d virtual tokens", m.Config.Context, P)
	}
	t.maxTokens, t.maxLen = o.Batch*o.MaxLen, o.MaxLen
	if id, ok := t.tok.SpecialID(tokenizer.Pad); ok {
		t.pad = int32(id)
	} else if id, ok := t.tok.SpecialID(tokenizer.EndOfText); ok {
		t.pad = int32(id)
	}

	trainEx, valEx, err := sftData(o, o.Log)
	if err != nil {
		return res, err
	}
	var st encodeStats
	if t.train, err = encodeAll(t.tok, trainEx, o.MaxLen, o.AllTokens, &st); err != nil {
		return res, err
	}
	var vst encodeStats
	if t.val, err = encodeAll(t.tok, valEx, o.MaxLen, o.AllTokens, &vst); err != nil {
		return res, err
	}
	res.TrainExamples, res.ValExamples = len(t.train), len(t.val)
	res.Truncated, res.Skipped = st.truncated+vst.truncated, st.skipped+vst.skipped
	fmt.Fprintf(o.Log, "data: %d train examples (%d tokens, %d in the loss, longest %d), %d validation examples\n",
		len(t.train), st.tokens, st.lossTokens, st.longest, len(t.val))
	if res.Truncated > 0 {
		fmt.Fprintf(o.Log, "data: %d examples were longer than --max-len %d and truncated", res.Truncated, o.MaxLen)
		if res.Skipped > 0 {
			fmt.Fprintf(o.Log, "; %d of them kept no answer token and are not trained on (%s)", res.Skipped, strings.Join(st.skippedAt, ", "))
		}
		fmt.Fprintln(o.Log)
	}
	if len(t.train) == 0 {
		return res, errors.New("sft: no trainable example (every answer was cut off by --max-len?)")
	}
	if t.packing {
		t.groups = packGroups(t.train, t.maxTokens, o.Batch, o.MaxLen)
	}
	nb := (len(t.train) + o.Batch - 1) / o.Batch
	if t.packing {
		nb = len(t.groups)
	}
	if cfg.Steps <= 0 {
		cfg.Steps = max(1, int(math.Ceil(o.Epochs*float64(nb)/float64(max(cfg.Accum, 1)))))
	}
	res.Trainable = nn.Count(nn.Trainable(t.Params()))
	res.Total = nn.Count(m.Params()) + nn.Count(m.LoRAParams())
	if t.prompt != nil {
		res.Total += t.prompt.Weight.Len()
	}
	res.Method = t.method
	fmt.Fprintf(o.Log, "model: %s, method %s, %d of %d parameters trainable (%.3f%%); %d micro-batches per epoch, %d steps\n",
		m.Config.Arch, t.method, res.Trainable, res.Total, 100*float64(res.Trainable)/float64(res.Total), nb, cfg.Steps)
	if cfg.Progress == nil {
		cfg.Progress = o.Log
	}
	t.accum = max(cfg.Accum, 1)
	cfg.Card = &ModelCard{Stage: "sft", Base: cmp.Or(o.Model, t.base), Data: o.Data,
		What: fmt.Sprintf("instruction tuning (%s; %d of %d parameters trained)", t.method, res.Trainable, res.Total)}
	cfg.checkpointModels(t.model)
	r, err := Run(ctx, cfg, t)
	res.Result = r
	if err != nil {
		return res, err
	}
	if r.Seconds > 0 {
		res.TokensPerSecond = float64(t.seen) / r.Seconds
	}
	if o.Merge && !r.Interrupted {
		if res.Merged, err = saveMerged(cfg.Out, m, t.tok, o.Log); err != nil {
			return res, err
		}
	}
	return res, nil
}

// load reads the model and tokenizer (from Out when resuming) and sets up
// the method's trainable parameters.
func (t *sftTask) load(o SFTOptions, res *SFTResult) error {
	be := o.Backend
	cfg := o.Loop
	t.out = cfg.Out
	var err error
	if cfg.Resume {
		l, err := load.Model(be, cfg.Out, load.Options{KeepLoRA: true})
		if err != nil {
			return fmt.Errorf("sft: --resume: %w", err)
		}
		t.model, t.tok = l.Model, l.Tok
		if a := l.Adapter; a != nil {
			t.base = a.Base
			switch a.Type {
			case "LORA":
				if o.LoRA == nil {
					return fmt.Errorf("sft: --resume: %s holds a LoRA adapter; pass the same --lora-r", cfg.Out)
				}
				t.method, t.lora = "lora", &a.LoRA
				t.lora.Dropout = o.LoRA.Dropout
			case "PROMPT_TUNING":
				t.method, t.prompt = "prompt-tuning", a.SoftPrompt
			}
			return nil
		}
		if o.LoRA != nil || o.PromptTokens > 0 {
			return fmt.Errorf("sft: --resume: %s holds a full model, not an adapter", cfg.Out)
		}
		return nil
	}
	if t.model, t.tok, err = loadLM(be, o.Model, "sft"); err != nil {
		return err
	}
	if q := t.model.Quantized(); len(q) > 0 {
		switch {
		case o.LoRA == nil && o.PromptTokens <= 0:
			return fmt.Errorf("sft: %s: %d of its weight matrices are kept as GGUF stores them (Q8_0, Q4_0 or F16) and cannot be trained: fine-tune it with LoRA (--lora-r R) or prompt tuning (--prompt-tuning N), or start from the float model", o.Model, len(q))
		case o.Merge:
			return fmt.Errorf("sft: %s: --merge: the base model's weight matrices are quantized, LoRA cannot be merged into them (use the adapter with its base, or train from the float model)", o.Model)
		}
	}
	t.base = o.Model
	if !strings.HasPrefix(o.Model, gguf.OllamaPrefix) {
		if t.base, err = filepath.Abs(o.Model); err != nil {
			return err
		}
	}
	if !HasChatTokens(t.tok) {
		if o.LoRA != nil || o.PromptTokens > 0 {
			return fmt.Errorf("sft: %s: the tokenizer has no %s and %s tokens, and LoRA and prompt tuning keep the base model's embeddings frozen, so they cannot learn new tokens; run a full SFT first (it adds the tokens) or use a base model whose tokenizer has them (golem pretrain reserves them)", o.Model, tokenizer.ImStart, tokenizer.ImEnd)
		}
		tok, added, err := AddChatTokens(t.tok)
		if err != nil {
			return err
		}
		t.tok, res.AddedTokens = tok, added
		growVocab(t.model, max(t.model.Config.Vocab, tok.VocabSize()))
		fmt.Fprintf(o.Log, "tokenizer: added %s as special tokens; the embedding now has %d rows\n", strings.Join(added, " and "), t.model.Config.Vocab)
	}
	switch {
	case o.LoRA != nil:
		t.method = "lora"
		if _, err := t.model.AttachLoRA(*o.LoRA, cfg.Seed+7); err != nil {
			return fmt.Errorf("sft: %w", err)
		}
	case o.PromptTokens > 0:
		t.method = "prompt-tuning"
		t.model.Freeze()
		t.prompt = nn.NewSoftPrompt(nn.NewInit(be, cfg.Seed+7), o.PromptTokens, t.model.Config.Hidden, t.model.Embed.Weight)
	}
	return nil
}

// sftData reads the training and validation examples.
func sftData(o SFTOptions, log io.Writer) (train, val []data.Example, err error) {
	train = append(train, o.Examples...)
	if len(o.Examples) > 0 {
		about := o.ExamplesAbout
		if about == "" {
			about = fmt.Sprintf("%d examples", len(o.Examples))
		}
		fmt.Fprintf(log, "data: %s\n", about)
	}
	if len(o.Data) > 0 {
		d, err := data.ReadAll(o.Data, data.ReadOptions{Format: o.Format})
		if err != nil {
			return nil, nil, err
		}
		for _, s := range d.Files {
			fmt.Fprintf(log, "data: %s: %s (%s), %d records, %d examples\n", s.File, s.Format, s.Shape, s.Records, s.Examples)
		}
		train = append(train, d.Examples...)
	}
	for i := range train {
		if err := sftUsable(&train[i]); err != nil {
			return nil, nil, err
		}
	}
	switch {
	case len(o.Eval) > 0 || len(o.EvalExamples) > 0:
		val = o.EvalExamples
		if len(o.Eval) > 0 {
			d, err := data.ReadAll(o.Eval, data.ReadOptions{Format: o.Format})
			if err != nil {
				return nil, nil, err
			}
			val = d.Examples
		}
		for i := range val {
			if err := sftUsable(&val[i]); err != nil {
				return nil, nil, err
			}
		}
	default:
		// Hold out a fixed random share of the examples.
		r := rand.New(rand.NewPCG(o.Loop.Seed, 0x5f7))
		perm := r.Perm(len(train))
		n := min(max(1, int(o.ValFrac*float64(len(train)))), 200)
		if len(train) < 2 {
			n = 0
		}
		hold := map[int]bool{}
		for _, i := range perm[:n] {
			hold[i] = true
		}
		var keep []data.Example
		for i, e := range train {
			if hold[i] {
				val = append(val, e)
			} else {
				keep = append(keep, e)
			}
		}
		train = keep
	}
	return train, val, nil
}

// sftUsable rejects examples SFT cannot learn from, naming where they are.
func sftUsable(e *data.Example) error {
	switch e.Kind {
	case data.LanguageModeling, data.PromptCompletion:
		return nil
	}
	return fmt.Errorf("sft: %s: a %s example; SFT trains on demonstrations (text, messages, prompt/completion, Alpaca, ShareGPT)", e.Source, e.Kind)
}

type encodeStats struct {
	tokens, lossTokens, longest int
	truncated, skipped          int
	skippedAt                   []string
}

// encodeAll renders examples: plain text as text and an end-of-text token,
// everything else with the chat template, the loss on the assistant's
// tokens unless allTokens. Examples over maxLen+1 tokens are truncated and
// counted; one left with no loss token is skipped and counted.
func encodeAll(tok *tokenizer.Tokenizer, exs []data.Example, maxLen int, allTokens bool, st *encodeStats) ([]encoded, error) {
	out := make([]encoded, 0, len(exs))
	eot, hasEOT := tok.SpecialID(tokenizer.EndOfText)
	for i := range exs {
		e := &exs[i]
		var ids []int
		var mask []bool
		if e.Kind == data.LanguageModeling && e.Plain {
			ids = tok.Encode(e.Text)
			if hasEOT {
				ids = append(ids, eot)
			}
			mask = make([]bool, len(ids))
			for j := range mask {
				mask[j] = true
			}
		} else {
			var err error
			ids, mask, err = tok.RenderChat(e.Messages(), false)
			if err != nil {
				return nil, fmt.Errorf("sft: %s: %w", e.Source, err)
			}
			if allTokens {
				for j := range mask {
					mask[j] = true
				}
			}
		}
		st.longest = max(st.longest, len(ids))
		if len(ids) > maxLen+1 {
			ids, mask = ids[:maxLen+1], mask[:maxLen+1]
			st.truncated++
		}
		n := 0
		for _, b := range mask[1:] {
			if b {
				n++
			}
		}
		if n == 0 {
			st.skipped++
			if len(st.skippedAt) < 5 {
				st.skippedAt = append(st.skippedAt, e.Source)
			}
			continue
		}
		st.tokens += len(ids)
		st.lossTokens += n
		enc := encoded{ids: make([]int32, len(ids)), loss: mask}
		for j, id := range ids {
			enc.ids[j] = int32(id)
		}
		out = append(out, enc)
	}
	return out, nil
}

// rowQuantum is what a micro-batch's row length is rounded up to, so that
// batches come in few shapes (the backend keeps freed buffers by size).
const rowQuantum = 16

// rowLen returns the padded row length for examples of up to n tokens.
func rowLen(n, limit int) int {
	return min((n+rowQuantum-1)/rowQuantum*rowQuantum, max(limit, n))
}

// packGroups sorts examples by length and fills micro-batches with up to
// maxTokens padded tokens (rows × the padded row length), each example in
// its own row: short examples share a micro-batch with many others, long
// ones with few (at least minRows), and there is little padding. A
// micro-batch holds examples of one padded length, so all but the last of
// each length have the same shape.
func packGroups(exs []encoded, maxTokens, minRows, limit int) [][]int {
	idx := make([]int, len(exs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return len(exs[idx[a]].ids) < len(exs[idx[b]].ids) })
	var groups [][]int
	var cur []int
	curT := 0
	for _, i := range idx {
		T := rowLen(len(exs[i].ids)-1, limit)
		if len(cur) > 0 && (T != curT || len(cur) >= max(minRows, maxTokens/T)) {
			groups = append(groups, cur)
			cur = nil
		}
		cur, curT = append(cur, i), T
	}
	if len(cur) > 0 {
		groups = append(groups, cur)
	}
	return groups
}

// batchAt returns the example indices of micro-batch k (counting over the
// whole run): each epoch is a fresh shuffle drawn from (seed, epoch), so a
// batch is a function of (seed, step, micro) and resume is exact.
func (t *sftTask) batchAt(k int) []int {
	var nb int
	if t.packing {
		nb = len(t.groups)
	} else {
		nb = (len(t.train) + t.batch - 1) / t.batch
	}
	epoch := k / nb
	if t.order == nil || epoch != t.epoch {
		r := rand.New(rand.NewPCG(t.seed, uint64(epoch)+0xa11ce))
		t.order, t.epoch = nil, epoch
		if t.packing {
			for _, i := range r.Perm(nb) {
				t.order = append(t.order, t.groups[i])
			}
		} else {
			perm := r.Perm(len(t.train))
			for s := 0; s < len(perm); s += t.batch {
				t.order = append(t.order, perm[s:min(s+t.batch, len(perm))])
			}
		}
	}
	return t.order[k%nb]
}

// rows lays out examples as right-padded rows: ids and targets (the next
// token where it counts, else tensor.IgnoreIndex).
func (t *sftTask) rows(exs []encoded) (ids, tgt []int32, B, T, n int) {
	B = len(exs)
	for _, e := range exs {
		T = max(T, len(e.ids)-1)
	}
	T = rowLen(T, t.maxLen)
	ids, tgt = make([]int32, B*T), make([]int32, B*T)
	for b, e := range exs {
		for i := 0; i < T; i++ {
			ids[b*T+i], tgt[b*T+i] = t.pad, tensor.IgnoreIndex
			if i+1 < len(e.ids) {
				ids[b*T+i] = e.ids[i]
				if e.loss[i+1] {
					tgt[b*T+i] = e.ids[i+1]
					n++
				}
			}
		}
	}
	return ids, tgt, B, T, n
}

func (t *sftTask) loss(s *tensor.Scope, exs []encoded, train bool, seed uint64) (*tensor.Tensor, int) {
	ids, tgt, B, T, n := t.rows(exs)
	o := gpt.Options{Train: train, Seed: seed, Scope: s}
	if t.prompt != nil {
		o.Embeds = t.prompt.Batch(B)
	}
	return t.model.Loss(ids, tgt, B, T, o), n
}

// Params returns what a checkpoint holds: the whole model for full tuning,
// else the adapter alone.
func (t *sftTask) Params() []nn.Named {
	switch {
	case t.prompt != nil:
		return []nn.Named{{Name: "prompt_embeddings", Tensor: t.prompt.Weight}}
	case t.lora != nil:
		return t.model.LoRAParams()
	}
	return t.model.Params()
}

func (t *sftTask) Loss(s *tensor.Scope, step, micro int) (*tensor.Tensor, int, map[string]float64, error) {
	k := step*t.accum + micro
	idx := t.batchAt(k)
	exs := make([]encoded, len(idx))
	for i, j := range idx {
		exs[i] = t.train[j]
		t.seen += len(exs[i].ids) - 1
	}
	seed := t.seed ^ uint64(step)<<20 ^ uint64(micro)
	if t.lora != nil {
		t.model.SetLoRASeed(seed)
	}
	loss, n := t.loss(s, exs, true, seed)
	return loss, n, nil, nil
}

// Eval is the mean loss per answer token over the validation examples.
func (t *sftTask) Eval() (map[string]float64, error) {
	if len(t.val) == 0 {
		return nil, nil
	}
	var sum float64
	var n int
	tensor.NoGrad(func() {
		for i := 0; i < len(t.val); i += t.batch {
			s := tensor.NewScope()
			loss, k := t.loss(s, t.val[i:min(i+t.batch, len(t.val))], false, 0)
			sum += float64(loss.Item()) * float64(k)
			n += k
			s.Close()
		}
	})
	return map[string]float64{"val_loss": sum / float64(max(n, 1))}, nil
}

func (t *sftTask) Save(dir string) error {
	var err error
	switch {
	case t.prompt != nil:
		err = t.model.SavePromptTuning(dir, t.prompt, t.baseFromOut())
	case t.lora != nil:
		err = t.model.SaveLoRA(dir, *t.lora, t.baseFromOut())
	default:
		return saveModel(dir, t.model, t.tok)
	}
	if err != nil {
		return err
	}
	return t.tok.SaveForModel(dir, t.model.Config.Context)
}

// baseFromOut is the base model's folder relative to the adapter's, OUT
// (gpt.ReadAdapterConfig resolves it against the adapter folder), so that
// the pair can move together; the absolute path when that fails.
func (t *sftTask) baseFromOut() string { return relBase(t.out, t.base) }
