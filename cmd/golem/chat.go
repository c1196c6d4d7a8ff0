package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/golem-ml/golem/generate"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/load"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tokenizer"
)

func init() {
	register("chat", "chat with a model in the terminal (reads lines from stdin; /reset, /exit)", runChat)
}

func runChat(args []string) error {
	fs := newFlags("chat", `printf "What is 12 + 7?\n" | golem chat --model out/sft --temperature 0`)
	model := fs.String("model", "", "model folder or adapter folder (required)")
	system := fs.String("system", "", "system message")
	sampling := addSamplingFlags(fs)
	dev := addDeviceFlag(fs)
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	if *model == "" {
		return fmt.Errorf("chat: --model DIR is required")
	}
	gen := sampling.options()
	if err := gen.Validate(); err != nil {
		return fmt.Errorf("chat: %w", err)
	}
	l, err := load.Model(be, *model, load.Options{})
	if err != nil {
		return err
	}
	prompt := ""
	if fi, err := os.Stdin.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		prompt = "> "
		fmt.Fprintln(os.Stderr, "chatting with", *model, "(/reset clears the history, /exit or Ctrl-D ends)")
	}
	return chat(l.Model, l.Tok, os.Stdin, os.Stdout, chatOptions{System: *system, Soft: l.SoftPrompt, Prompt: prompt,
		Gen: gen})
}

// chatOptions configure chat.
type chatOptions struct {
	System string           // system message at the start of the conversation
	Gen    generate.Options // sampling (MaxTokens default 256)
	Soft   *nn.SoftPrompt   // prompt tuning's virtual tokens: decoding is then greedy
	Prompt string           // shown before each user turn (e.g. "> " on a terminal)
}

// chat is a conversation in a terminal: each line read from in is a user
// turn, and the model's answer, rendered with the chat template over the
// whole history, is streamed to out. "/reset" forgets the history and
// "/exit" ends the chat (as does the end of the input). When the history
// outgrows the context window, the oldest turns are left out.
func chat(m *gpt.Model, tok *tokenizer.Tokenizer, in io.Reader, out io.Writer, o chatOptions) error {
	if o.Gen.MaxTokens <= 0 {
		o.Gen.MaxTokens = 256
	}
	o.Gen.MaxTokens = min(o.Gen.MaxTokens, m.Config.Context/2)
	o.Gen.StopIDs = append(o.Gen.StopIDs, tok.EndIDs()...)
	var history []tokenizer.Message
	reset := func() {
		history = history[:0]
		if o.System != "" {
			history = append(history, tokenizer.Message{Role: "system", Content: o.System})
		}
	}
	reset()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for {
		fmt.Fprint(out, o.Prompt)
		if !sc.Scan() {
			if o.Prompt != "" {
				fmt.Fprintln(out)
			}
			return sc.Err()
		}
		line := strings.TrimSpace(sc.Text())
		switch line {
		case "":
			continue
		case "/exit", "/quit":
			return nil
		case "/reset":
			reset()
			fmt.Fprintln(out, "(history cleared)")
			continue
		}
		history = append(history, tokenizer.Message{Role: "user", Content: line})
		ids, err := fitHistory(tok, &history, m.Config.Context-o.Gen.MaxTokens-promptLen(o.Soft))
		if err != nil {
			return err
		}
		var reply string
		if o.Soft != nil {
			res, err := generate.Tokens(m, [][]int{ids}, generate.Options{MaxTokens: o.Gen.MaxTokens, StopIDs: o.Gen.StopIDs, SoftPrompt: o.Soft}, nil)
			if err != nil {
				return err
			}
			reply = tok.Decode(res[0])
			fmt.Fprint(out, reply)
		} else {
			st := generate.NewStream(tok, o.Gen.Stop)
			_, err := generate.Tokens(m, [][]int{ids}, o.Gen, func(_, id int) bool {
				fmt.Fprint(out, st.Add(id))
				return !st.Stopped
			})
			if err != nil {
				return err
			}
			fmt.Fprint(out, st.Flush())
			reply = st.Text()
		}
		fmt.Fprintln(out)
		history = append(history, tokenizer.Message{Role: "assistant", Content: strings.TrimSpace(reply)})
	}
}

func promptLen(sp *nn.SoftPrompt) int {
	if sp == nil {
		return 0
	}
	return sp.Weight.Dim(0)
}

// fitHistory renders the history for the next answer, dropping the oldest
// exchanges (never the system message or the last user turn) until it fits
// in room tokens (tokenizer.FitChat).
func fitHistory(tok *tokenizer.Tokenizer, history *[]tokenizer.Message, room int) ([]int, error) {
	h, ids, err := tok.FitChat(*history, room)
	if err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	*history = h
	return ids, nil
}
