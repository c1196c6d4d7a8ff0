package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/golem-ml/golem/data/synth"
	"github.com/golem-ml/golem/generate"
	"github.com/golem-ml/golem/generate/constrain"
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
	model := fs.String("model", "", "model folder, adapter folder, FILE.gguf or ollama:NAME[:TAG] (required)")
	system := fs.String("system", "", "system message")
	tools := fs.String("tools", "", "built-in tools the model may call, comma-separated: calculator, lookup (golem runs each call and gives the result back)")
	toolChoice := fs.String("tool-choice", "auto", "auto: the model calls a tool when it chooses; required: its first answer of each turn is a call (constrained decoding)")
	image := fs.String("image", "", "an image `FILE` to talk about with a vision-language model (golem vlm): it goes in the first turn")
	sampling := addSamplingFlags(fs)
	dev := addDeviceFlag(fs)
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	if err := required(fs, "model"); err != nil {
		return err
	}
	gen := sampling.options()
	if err := gen.Validate(); err != nil {
		return fmt.Errorf("chat: %w", err)
	}
	prompt := ""
	if fi, err := os.Stdin.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		prompt = "> "
	}
	if *image != "" {
		if *tools != "" || *system != "" {
			return fmt.Errorf("chat: --image takes no --tools or --system")
		}
		m, tok, pixels, err := loadImageModel(be, *model, *image)
		if err != nil {
			return err
		}
		if prompt != "" {
			fmt.Fprintln(os.Stderr, "chatting with", *model, "about", *image, "(/reset clears the history, /exit or Ctrl-D ends)")
		}
		gen.MaxTokens = min(gen.MaxTokens, m.Config.Text.Context/2)
		return imageChat(m, tok, pixels, os.Stdin, os.Stdout, gen, prompt)
	}
	var toolList []string
	if *tools != "" {
		toolList = strings.Split(*tools, ",")
	}
	switch {
	case *toolChoice != "auto" && *toolChoice != "required":
		return fmt.Errorf("chat: --tool-choice %q: want auto or required", *toolChoice)
	case *toolChoice == "required" && len(toolList) == 0:
		return fmt.Errorf("chat: --tool-choice required needs --tools")
	}
	l, err := load.Model(be, *model, load.Options{})
	if err != nil {
		return err
	}
	if prompt != "" {
		fmt.Fprintln(os.Stderr, "chatting with", *model, "(/reset clears the history, /exit or Ctrl-D ends)")
	}
	return chat(l.Model, l.Tok, os.Stdin, os.Stdout, chatOptions{System: *system, Soft: l.SoftPrompt, Prompt: prompt,
		Gen: gen, Tools: toolList, ForceCall: *toolChoice == "required"})
}

// chatOptions configure chat.
type chatOptions struct {
	System string           // system message at the start of the conversation
	Gen    generate.Options // sampling (MaxTokens default 256)
	Soft   *nn.SoftPrompt   // prompt tuning's virtual tokens: decoding is then greedy
	Prompt string           // shown before each user turn (e.g. "> " on a terminal)
	// Tools are built-in tools (data/synth: "calculator", "lookup") the
	// model may call, offered in the system message as golem's chat
	// format writes tools: each call the model makes is run, shown as
	// "[calculator {...} -> 42]", and given back as a tool response, and
	// the model answers again (at most maxToolCalls times a turn).
	Tools []string
	// ForceCall makes the model's first answer of each turn a call of one
	// of Tools whose arguments validate (constrained decoding), as the
	// APIs' tool_choice "required".
	ForceCall bool
}

// maxToolCalls bounds the tool calls of one turn of chat.
const maxToolCalls = 4

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
	system := []tokenizer.Message{}
	if o.System != "" {
		system = append(system, tokenizer.Message{Role: "system", Content: o.System})
	}
	var force func() generate.Constraint
	if len(o.Tools) > 0 {
		raw, specs, err := synth.Tools(o.Tools)
		if err != nil {
			return fmt.Errorf("chat: %w", err)
		}
		var ts []tokenizer.ToolMessage
		for _, m := range system {
			ts = append(ts, tokenizer.ToolMessage{Role: m.Role, Content: m.Content})
		}
		if system, err = tokenizer.ChatMLToolMessages(ts, raw); err != nil {
			return err
		}
		if o.ForceCall {
			var cts []constrain.Tool
			for _, t := range specs {
				cts = append(cts, constrain.Tool{Name: t.Name, Parameters: t.Parameters})
			}
			sc, err := constrain.ToolCall(cts, tokenizer.ToolCallOpen+"\n", "\n"+tokenizer.ToolCallClose)
			if err != nil {
				return fmt.Errorf("chat: %w", err)
			}
			g := constrain.NewGuide(sc, constrain.TokenizerVocab(tok, m.Config.Vocab, o.Gen.StopIDs))
			force = func() generate.Constraint { return g.Start() }
		}
	}
	var history []tokenizer.Message
	reset := func() {
		history = append(history[:0], system...)
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
		reply, err := chatAnswer(m, tok, &history, out, o, force)
		if err != nil {
			return err
		}
		for calls := 0; len(o.Tools) > 0; {
			_, cs, err := tokenizer.ParseToolCalls(reply)
			if err != nil || len(cs) == 0 || calls+len(cs) > maxToolCalls {
				break
			}
			calls += len(cs)
			history = append(history, tokenizer.Message{Role: "assistant", Content: strings.TrimSpace(reply)})
			var results []string
			for _, c := range cs {
				r, err := "", fmt.Errorf("the tool %q is not offered", c.Name)
				if slices.Contains(o.Tools, c.Name) {
					r, err = synth.RunTool(nil, c.Name, c.Arguments)
				}
				if err != nil {
					r = "error: " + err.Error()
				}
				fmt.Fprintf(out, "[%s %s -> %s]\n", c.Name, c.Arguments, r)
				results = append(results, "<tool_response>\n"+r+"\n</tool_response>")
			}
			history = append(history, tokenizer.Message{Role: "user", Content: strings.Join(results, "\n")})
			if reply, err = chatAnswer(m, tok, &history, out, o, nil); err != nil {
				return err
			}
		}
		history = append(history, tokenizer.Message{Role: "assistant", Content: strings.TrimSpace(reply)})
	}
}

// chatAnswer generates the answer to the history, streamed to out
// (constrained by force, if set), and returns it.
func chatAnswer(m *gpt.Model, tok *tokenizer.Tokenizer, history *[]tokenizer.Message, out io.Writer, o chatOptions, force func() generate.Constraint) (string, error) {
	ids, err := fitHistory(tok, history, m.Config.Context-o.Gen.MaxTokens-promptLen(o.Soft))
	if err != nil {
		return "", err
	}
	var reply string
	if o.Soft != nil {
		res, err := generate.Tokens(m, [][]int{ids}, generate.Options{MaxTokens: o.Gen.MaxTokens, StopIDs: o.Gen.StopIDs, SoftPrompt: o.Soft}, nil)
		if err != nil {
			return "", err
		}
		reply = tok.Decode(res[0])
		fmt.Fprint(out, reply)
	} else {
		gen := o.Gen
		gen.Constrain = force
		if force != nil {
			gen.Stop = nil // a stop string would cut the call
		}
		st := generate.NewStream(tok, gen.Stop)
		_, err := generate.Tokens(m, [][]int{ids}, gen, func(_, id int) bool {
			fmt.Fprint(out, st.Add(id))
			return !st.Stopped
		})
		if err != nil {
			return "", err
		}
		fmt.Fprint(out, st.Flush())
		reply = st.Text()
	}
	fmt.Fprintln(out)
	return reply, nil
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
