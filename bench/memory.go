package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tokenizer"
	"github.com/golem-ml/golem/train"
)

// The memory benchmark: the peak resident memory of `golem sft` on a real
// model's shape (random weights in a Hugging Face-layout folder of float32
// safetensors, the tokenizer of ../shared/fixtures/hf/qwen2-tiny with
// ChatML's tokens), at
// --seq tokens per sequence, as a user runs it: the golem binary in its
// own process, its peak RSS read from the kernel (getrusage's maxrss) when
// it exits. Modes: lora (a rank-8 adapter on the frozen base, PEFT's
// default targets), full (every parameter trained, AdamW state), and each
// with --checkpoint-activations. There is no peer: it ends with the
// largest peak, peak_rss_gib=X, to set beside the machine's memory.
func init() {
	register("memory", func(args []string) error {
		fs := flag.NewFlagSet("memory", flag.ExitOnError)
		config := fs.String("config", "qwen2.5-0.5b", "model shape: qwen2.5-0.5b or llama3.2-1b")
		seq := fs.Int("seq", 1024, "tokens per sequence")
		steps := fs.Int("steps", 2, "optimizer steps of each run (the peak is reached in the first)")
		modes := fs.String("modes", "lora,full", "comma-separated runs: lora, full, lora+ckpt, full+ckpt")
		fs.Parse(args)
		c, ok := llamacppConfigs[*config]
		if !ok {
			return fmt.Errorf("-config %q: want qwen2.5-0.5b or llama3.2-1b", *config)
		}
		tmp, err := os.MkdirTemp("", "golem-bench-memory")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		file := filepath.Join(tmp, *config)
		if err := randomFolder(file, c); err != nil {
			return err
		}
		bin := filepath.Join(tmp, "golem")
		if out, err := exec.Command("go", "build", "-o", bin, "./cmd/golem").CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/golem (run from the repository root): %v\n%s", err, out)
		}
		data := filepath.Join(tmp, "sft.jsonl")
		if err := longConversations(data, 8, *seq); err != nil {
			return err
		}
		fmt.Printf("model: %s shape, random weights, float32 safetensors; %d tokens a sequence, batch 1, %d steps\n", *config, *seq, *steps)
		worst := 0.0
		for _, mode := range strings.Split(*modes, ",") {
			a := []string{"sft", "--model", file, "--data", data, "--out", filepath.Join(tmp, "out-"+mode),
				"--max-len", fmt.Sprint(*seq), "--batch", "1", "--steps", fmt.Sprint(*steps), "--warmup", "0", "--eval-every", "0"}
			base, ckpt := strings.CutSuffix(mode, "+ckpt")
			switch base {
			case "lora":
				a = append(a, "--lora-r", "8")
			case "full":
			default:
				return fmt.Errorf("-modes: unknown mode %q (want lora, full, lora+ckpt or full+ckpt)", mode)
			}
			if ckpt {
				a = append(a, "--checkpoint-activations")
			}
			cmd := exec.Command(bin, a...)
			cmd.Stderr = os.Stderr
			t0 := time.Now()
			out, err := cmd.Output()
			if err != nil {
				return fmt.Errorf("golem %s: %v\n%s", strings.Join(a, " "), err, out)
			}
			ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
			if !ok {
				return fmt.Errorf("no rusage on this platform")
			}
			gib := float64(ru.Maxrss) * 1024 / (1 << 30) // Linux: maxrss in KiB
			worst = max(worst, gib)
			fmt.Printf("%-10s peak RSS %6.2f GiB   %5.1f s for %d steps (load included)\n", mode+":", gib, time.Since(t0).Seconds(), *steps)
		}
		fmt.Printf("peak_rss_gib=%.2f\n", worst)
		return nil
	})
}

// longConversations writes n SFT examples in TRL's language-modelling
// format ({"text"}: the random-weights file's tokenizer has no chat
// tokens), random words longer than seq tokens (sft truncates them to
// --max-len).
func longConversations(file string, n, seq int) error {
	words := strings.Fields("the model reads a long answer about rivers mountains cities numbers colours " +
		"people history music science and many other things that fill its context window to the end")
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	r := rand.New(rand.NewPCG(1, 2))
	for range n {
		var b strings.Builder
		for range seq * 2 {
			b.WriteString(words[r.IntN(len(words))])
			b.WriteByte(' ')
		}
		line, _ := json.Marshal(map[string]string{"text": b.String()})
		w.Write(append(line, '\n'))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// randomFolder writes a model folder of config c with golem's random
// initialisation and qwen2-tiny's tokenizer with <|im_start|> and
// <|im_end|> (a real Qwen2.5 tokenizer has them; LoRA needs them there).
func randomFolder(dir string, c gpt.Config) error {
	src, err := sharedPath("fixtures/hf/qwen2-tiny")
	if err != nil {
		return err
	}
	tok, err := tokenizer.Load(src)
	if err != nil {
		return err
	}
	if tok, _, err = train.AddChatTokens(tok); err != nil {
		return err
	}
	c.Context = 4096 // the sequences measured; RoPE tables are sized by it
	m, err := gpt.New(cpu.New(), c, 1)
	if err != nil {
		return err
	}
	fmt.Printf("writing %s (%.0fM parameters) ...\n", dir, float64(nn.Count(m.Params()))/1e6)
	if err := m.Save(dir); err != nil {
		return err
	}
	return tok.SaveForModel(dir, c.Context)
}
