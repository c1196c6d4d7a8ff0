// Package load reads what a command's --model (or --policy) names: a model
// folder (golem's or Hugging Face's: config.json, model.safetensors and a
// tokenizer), a GGUF model (a .gguf file, ollama:NAME[:TAG], or a folder
// holding model.gguf: weights, config and tokenizer from the one file,
// through gpt.Load and tokenizer.Load), or a PEFT adapter folder (adapter_config.json and
// adapter_model.safetensors: LoRA, or prompt tuning) over its base model,
// found from base_model_name_or_path relative to the adapter folder; a
// LLaVA folder or a LoRA adapter over one (Loaded.VLM, Model its language
// model). It is
// the one loader every command uses, so a folder any of them accepts all
// of them accept.
package load

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/gguf"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/llava"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/safetensors"
	"github.com/golem-ml/golem/tokenizer"
)

// Options configure Model.
type Options struct {
	// KeepLoRA leaves a LoRA adapter attached, unmerged, to train it
	// further. By default it is merged into the weights (W + B·A·alpha/r,
	// what `golem sft --merge` writes), so the model runs as fast as its
	// base and gives the merged model's outputs.
	KeepLoRA bool
	// Bases, when set, reads the model folder under an adapter folder (a
	// cache of loaded bases: golem serve's). The adapter is then attached
	// to a copy of the base's layers holding the base's tensors
	// (gpt.Model.Share), its LoRA unmerged, so that the base's weights are
	// in memory once however many adapters over it are loaded. Adapters
	// over adapters and over LLaVA models are read without it.
	Bases func(dir string) (*Loaded, error)
	// BF16 keeps the model's matrices as bfloat16 (half their memory, the
	// bf16 kernel), for inference: a BF16 checkpoint's as it holds them, a
	// float32 one's rounded. A model folder's are read so one at a time
	// (gpt.LoadBF16), an adapter's base model folder too, the adapter
	// left unmerged over its matrices (as over a base Bases gives, which
	// should then be bf16 itself); a chain of adapters over adapters is
	// merged in float32, then its matrices rounded (gpt.Model.KeepBF16).
	BF16 bool
}

// Loaded is a model folder as Model read it.
type Loaded struct {
	Model *gpt.Model
	Tok   *tokenizer.Tokenizer
	// SoftPrompt is a prompt-tuning adapter's virtual tokens, to put
	// before every prompt (generate.Options.SoftPrompt); nil otherwise.
	SoftPrompt *nn.SoftPrompt
	// Adapter is the adapter the folder holds (nil for a model folder);
	// Base is then the model folder under it (its base, or its base's
	// base: an adapter may be trained over another), else the folder
	// itself.
	Adapter *gpt.Adapter
	Base    string
	// VLM is the vision-language model when dir is a LLaVA folder or a
	// LoRA adapter over one (model/llava); Model is then its language
	// model.
	VLM *llava.Model
}

// maxDepth bounds a chain of adapters over adapters (and catches a
// base_model_name_or_path that points back at its own folder).
const maxDepth = 8

// Model reads dir: a model folder, or an adapter folder and the model
// under it. The tokenizer is the folder's own, else its base's. Errors
// name the folder (and the adapter's config file).
func Model(be backend.Backend, dir string, o Options) (*Loaded, error) {
	if o.BF16 && o.KeepLoRA {
		return nil, fmt.Errorf("%s: bfloat16 weights are for inference; an adapter kept to train cannot have them", dir)
	}
	l, err := read(be, dir, o, 0)
	if err != nil {
		return nil, err
	}
	if o.BF16 {
		if _, err := l.Model.KeepBF16(); err != nil {
			return nil, fmt.Errorf("%s: %w", dir, err)
		}
	}
	if l.Tok.VocabSize() > l.Model.Config.Vocab {
		return nil, fmt.Errorf("%s: the tokenizer has %d tokens but the model only %d", dir, l.Tok.VocabSize(), l.Model.Config.Vocab)
	}
	return l, nil
}

func read(be backend.Backend, dir string, o Options, depth int) (*Loaded, error) {
	if llava.IsLLaVA(dir) {
		return readVLM(be, dir, o)
	}
	if !gpt.IsAdapter(dir) {
		if gpt.IsScorer(dir) {
			return nil, fmt.Errorf("%s is a reward or value model (its config.json has num_labels), not a language model", dir)
		}
		loadModel := gpt.Load
		if o.BF16 {
			loadModel = gpt.LoadBF16 // never whole in float32
		}
		m, err := loadModel(be, dir)
		if err != nil {
			return nil, err
		}
		tok, err := tokenizer.Load(dir)
		if err != nil {
			return nil, err
		}
		return &Loaded{Model: m, Tok: tok, Base: dir}, nil
	}
	if depth >= maxDepth {
		return nil, fmt.Errorf("%s: adapters over adapters more than %d deep (does base_model_name_or_path lead back to itself?)", filepath.Join(dir, gpt.AdapterConfigFile), maxDepth)
	}
	a, err := gpt.ReadAdapterConfig(dir)
	if err != nil {
		return nil, err
	}
	var base *Loaded
	shared := o.Bases != nil && depth == 0 && !gpt.IsAdapter(a.Base) && !llava.IsLLaVA(a.Base)
	if shared {
		if base, err = o.Bases(a.Base); err == nil {
			b := *base
			b.Model = base.Model.Share()
			base = &b
		}
	} else {
		// A model folder under the adapter is read in bfloat16 when the
		// model is wanted so (never whole in float32); the adapter then
		// stays unmerged over its matrices, as over a shared base. Under
		// an adapter over an adapter the chain is merged in float32 and
		// rounded after (Model), since a module holds one adapter.
		bo := Options{BF16: o.BF16 && !gpt.IsAdapter(a.Base) && !llava.IsLLaVA(a.Base)}
		base, err = read(be, a.Base, bo, depth+1)
	}
	if err != nil {
		return nil, fmt.Errorf("adapter %s: base model: %w", dir, err)
	}
	if base.VLM != nil {
		return nil, fmt.Errorf("adapter %s: its base %s is a LLaVA model; adapters over vision-language models are not supported", dir, a.Base)
	}
	if base.SoftPrompt != nil {
		return nil, fmt.Errorf("adapter %s: its base %s is a prompt-tuning adapter; an adapter's base must be a model or a LoRA adapter", dir, a.Base)
	}
	if err := a.Apply(base.Model, dir); err != nil {
		return nil, err
	}
	l := &Loaded{Model: base.Model, Tok: base.Tok, SoftPrompt: a.SoftPrompt, Adapter: a, Base: base.Base}
	// A quantized base (GGUF) keeps its LoRA unmerged: its matrices cannot
	// be written, and the outputs are the same.
	// A shared base's LoRA stays unmerged too: its weights are others'.
	if a.Type == "LORA" && !o.KeepLoRA && !shared && len(l.Model.Quantized()) == 0 {
		// Merged, the model is what a model folder of the merged weights
		// loads as: every parameter trainable again.
		l.Model.MergeLoRA()
		for _, p := range l.Model.Params() {
			p.Tensor.SetRequiresGrad(true)
		}
	}
	if hasTokenizer(dir) {
		if l.Tok, err = tokenizer.Load(dir); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// readVLM reads a LLaVA folder, or a LoRA adapter over one (merged, or
// attached with o.KeepLoRA), with its tokenizer (an adapter's, else its
// base's).
func readVLM(be backend.Backend, dir string, o Options) (*Loaded, error) {
	l := &Loaded{Base: dir}
	var err error
	if gpt.IsAdapter(dir) {
		if l.Adapter, err = gpt.ReadAdapterConfig(dir); err != nil {
			return nil, err
		}
		l.Base = l.Adapter.Base
	}
	if o.KeepLoRA && l.Adapter != nil {
		l.VLM, _, err = llava.LoadLoRA(be, dir)
	} else {
		l.VLM, err = llava.Load(be, dir)
	}
	if err != nil {
		return nil, err
	}
	// An adapter without a tokenizer (PEFT saves none) takes its base's,
	// as an adapter over a language model does.
	tokDir := dir
	if l.Adapter != nil && !hasTokenizer(dir) {
		if tokDir, err = BaseDir(dir); err != nil {
			return nil, err
		}
	}
	if l.Tok, err = llava.LoadTokenizer(tokDir, &l.VLM.Config); err != nil {
		return nil, err
	}
	l.Model = l.VLM.LM
	return l, nil
}

func hasTokenizer(dir string) bool {
	for _, f := range []string{"tokenizer.json", "encoder.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return true
		}
	}
	return false
}

// BaseDir returns the model folder under dir: dir itself when it is one,
// else the base an adapter folder (or a chain of them) is trained over.
func BaseDir(dir string) (string, error) {
	for depth := 0; gpt.IsAdapter(dir); depth++ {
		if depth >= maxDepth {
			return "", fmt.Errorf("%s: adapters over adapters more than %d deep (does base_model_name_or_path lead back to itself?)", filepath.Join(dir, gpt.AdapterConfigFile), maxDepth)
		}
		a, err := gpt.ReadAdapterConfig(dir)
		if err != nil {
			return "", err
		}
		dir = a.Base
	}
	return dir, nil
}

// Files lists the files whose contents are the weights Model reads from
// dir: config.json and the checkpoint (model.safetensors, or the index and
// its shards) of a model folder, or the one GGUF file of a GGUF model (a
// .gguf path, ollama:NAME[:TAG], a folder holding model.gguf); an adapter
// folder's two files and then its base's. A server watches them to reload a folder when it changes.
func Files(dir string) ([]string, error) {
	var out []string
	for depth := 0; ; depth++ {
		if !gpt.IsAdapter(dir) {
			break
		}
		if depth >= maxDepth {
			return nil, fmt.Errorf("%s: adapters over adapters more than %d deep", filepath.Join(dir, gpt.AdapterConfigFile), maxDepth)
		}
		out = append(out, filepath.Join(dir, gpt.AdapterConfigFile), filepath.Join(dir, gpt.AdapterModelFile))
		a, err := gpt.ReadAdapterConfig(dir)
		if err != nil {
			return nil, err
		}
		dir = a.Base
	}
	if file, ok, err := gguf.Locate(dir); ok || err != nil {
		if err != nil {
			return nil, err
		}
		return append(out, file), nil
	}
	out = append(out, filepath.Join(dir, "config.json"))
	if _, err := os.Stat(filepath.Join(dir, safetensors.ModelFile)); err == nil {
		return append(out, filepath.Join(dir, safetensors.ModelFile)), nil
	}
	index := filepath.Join(dir, safetensors.IndexFile)
	if _, err := os.Stat(index); err != nil {
		return nil, fmt.Errorf("%s: no %s (nor %s)", dir, safetensors.ModelFile, safetensors.IndexFile)
	}
	shards, _ := filepath.Glob(filepath.Join(dir, "model-*-of-*.safetensors"))
	return append(append(out, index), shards...), nil
}

// Params are every parameter the loaded model runs with: a LLaVA model's
// vision tower and projector too, and an unmerged adapter's LoRA.
func (l *Loaded) Params() []nn.Named {
	if l.VLM != nil {
		return l.VLM.Params()
	}
	return append(l.Model.Params(), l.Model.LoRAParams()...)
}

// Freeze keeps the loaded weights packed for the matrix products of an
// inference-only command (nn.FreezeBuffers, up to nn.MaxFrozenBytes):
// nothing may write them until thaw.
func (l *Loaded) Freeze() (thaw func()) {
	thaw, _ = nn.FreezeBuffers(l.Params(), nn.MaxFrozenBytes)
	return thaw
}
