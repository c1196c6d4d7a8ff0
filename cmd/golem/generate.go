package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/golem-ml/golem/generate"
	"github.com/golem-ml/golem/generate/constrain"
	"github.com/golem-ml/golem/model/llava"
	"github.com/golem-ml/golem/model/load"
)

func init() {
	register("generate", "sample a continuation of a prompt, streamed to stdout", runGenerate)
}

// samplingFlags are the sampling flags of generate and chat, with one set
// of defaults: Ollama's (temperature 0.8, top-k 40, top-p 0.9, repetition
// penalty 1.1).
type samplingFlags struct {
	maxTokens, topK     *int
	temp, topP, penalty *float64
	seed                *uint64
}

func addSamplingFlags(fs *flag.FlagSet) samplingFlags {
	return samplingFlags{
		maxTokens: fs.Int("max-tokens", 256, "new tokens at most (per answer)"),
		temp:      fs.Float64("temperature", 0.8, "sampling temperature (0 = greedy)"),
		topK:      fs.Int("top-k", 40, "keep the K most likely tokens (0 = all)"),
		topP:      fs.Float64("top-p", 0.9, "nucleus sampling mass (1 = all)"),
		penalty:   fs.Float64("repetition-penalty", 1.1, "penalty for tokens already present (1 = off)"),
		seed:      fs.Uint64("seed", defaultSeed, "random seed"),
	}
}

func (s samplingFlags) options() generate.Options {
	return generate.Options{MaxTokens: *s.maxTokens, Temperature: *s.temp, TopK: *s.topK, TopP: *s.topP,
		RepetitionPenalty: *s.penalty, Seed: *s.seed}
}

// outputSchema reads --json-schema FILE or --format json (nil: text).
func outputSchema(file, format string) (*constrain.Schema, error) {
	switch {
	case file != "" && format != "":
		return nil, errors.New("generate: give --json-schema or --format, not both")
	case format == "json":
		return constrain.AnyObject(), nil
	case format != "":
		return nil, fmt.Errorf("generate: --format %q: only \"json\" (or --json-schema FILE)", format)
	case file == "":
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("generate: --json-schema: %w", err)
	}
	s, err := constrain.Compile(b)
	if err != nil {
		return nil, fmt.Errorf("generate: --json-schema %s: %w", file, err)
	}
	return s, nil
}

// addWeightsDTypeFlag is --dtype on the commands that run a model without
// training it.
func addWeightsDTypeFlag(fs *flag.FlagSet) *string {
	return fs.String("dtype", "float32", "float32, or bf16: keep the model's matrices in bfloat16 (half their memory; products with the activations rounded to bfloat16, float32 sums)")
}

// weightsBF16 reads --dtype's value for addWeightsDTypeFlag.
func weightsBF16(dtype string) (bool, error) {
	switch dtype {
	case "float32":
		return false, nil
	case "bf16":
		return true, nil
	}
	return false, fmt.Errorf("--dtype %q: want float32 or bf16", dtype)
}

func runGenerate(args []string) (err error) {
	fs := newFlags("generate", `golem generate --model out/shakespeare --prompt "ROMEO:" --max-tokens 200`)
	model := fs.String("model", "", "model folder, adapter folder, FILE.gguf or ollama:NAME[:TAG] (required)")
	prompt := fs.String("prompt", "", "text to continue")
	sampling := addSamplingFlags(fs)
	var stop listFlag
	fs.Var(&stop, "stop", "stop string (repeatable)")
	n := fs.Int("n", 1, "samples to draw (decoded as one batch)")
	schemaFile := fs.String("json-schema", "", "answer with a JSON value of this JSON schema `FILE` (constrained decoding)")
	format := fs.String("format", "", `"json": answer with a JSON object (constrained decoding)`)
	image := fs.String("image", "", "an image `FILE` for a vision-language model (golem vlm): a prompt with <image> is continued as written, one without is asked as a user turn about the image")
	dtype := addWeightsDTypeFlag(fs)
	dev := addDeviceFlag(fs)
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	if err := required(fs, "model"); err != nil {
		return err
	}
	bf16, err := weightsBF16(*dtype)
	if err != nil {
		return err
	}
	o := sampling.options()
	o.Stop = stop
	if err := o.Validate(); err != nil {
		return err
	}
	if *n < 1 {
		return fmt.Errorf("generate: --n %d: want at least 1 sample", *n)
	}
	schema, err := outputSchema(*schemaFile, *format)
	if err != nil {
		return err
	}
	if schema != nil && len(stop) > 0 {
		return fmt.Errorf("generate: --stop would cut the JSON value of --json-schema/--format; leave it out")
	}
	if *image != "" {
		if bf16 {
			return fmt.Errorf("generate: --dtype bf16 is for language models, not with --image")
		}
		if schema != nil || *n != 1 {
			return fmt.Errorf("generate: --image takes one sample (--n 1) without --json-schema/--format")
		}
		vm, tok, pixels, err := loadImageModel(be, *model, *image)
		if err != nil {
			return err
		}
		p := *prompt
		if !strings.Contains(p, llava.Placeholder) { // a question about the image, in the format the model was trained in
			p = llava.UserTurn(llava.Placeholder + "\n" + p)
		}
		_, err = generate.ImageText(vm, tok, pixels, p, o, func(d string) { os.Stdout.WriteString(d) })
		fmt.Println()
		return err
	}
	l, err := load.Model(be, *model, load.Options{BF16: bf16})
	if err != nil {
		return err
	}
	m, tok := l.Model, l.Tok
	if *n > 1 { // every decode step a product of n rows by each matrix: keep them packed
		defer l.Freeze()()
	}
	if bf16 {
		fmt.Fprintf(os.Stderr, "generate: %d matrices kept as bfloat16\n", len(m.Quantized()))
	}
	o.SoftPrompt = l.SoftPrompt
	var matchers []*constrain.Matcher
	if schema != nil {
		o.StopIDs = tok.EndIDs()
		if eos := m.Config.EOS; eos >= 0 && eos < m.Config.Vocab && !slices.Contains(o.StopIDs, eos) {
			o.StopIDs = append(o.StopIDs, eos)
		}
		g := constrain.NewGuide(schema, constrain.TokenizerVocab(tok, m.Config.Vocab, o.StopIDs))
		o.Constrain = func() generate.Constraint {
			c := g.Start()
			matchers = append(matchers, c)
			return c
		}
		defer func() {
			for i, c := range matchers {
				if !c.Stopped() && err == nil {
					err = fmt.Errorf("generate: sample %d was cut at --max-tokens %d before its JSON value was whole", i+1, o.MaxTokens)
				}
			}
		}()
	}
	prompts := make([]string, *n)
	for i := range prompts {
		prompts[i] = *prompt
	}
	if *n == 1 {
		_, err = generate.Text(m, tok, prompts, o, func(_ int, d string) { os.Stdout.WriteString(d) })
		fmt.Println()
		return err
	}
	out, err := generate.Text(m, tok, prompts, o, nil)
	for i, s := range out {
		fmt.Printf("--- sample %d ---\n%s\n", i+1, s)
	}
	return err
}
