// Command golem builds ChatGPT-style assistants: tokenizer, pretraining,
// instruction tuning, reward modelling, RLHF, evaluation and serving.
//
// Each subcommand lives in its own file and registers itself in init with
// register; this file only dispatches.
package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/golem-ml/golem/internal/cpuprof"
)

type command struct {
	name    string // may contain a space for nested commands: "tokenizer train"
	summary string
	run     func(args []string) error
}

var commands = map[string]command{}

func register(name, summary string, run func(args []string) error) {
	if _, dup := commands[name]; dup {
		panic("golem: command registered twice: " + name)
	}
	commands[name] = command{name: name, summary: summary, run: run}
}

// findCommand returns the command args name, longest match first
// ("vision judge train" before "vision judge", "tokenizer train" before
// "tokenizer"), and the arguments after its name.
func findCommand(args []string) (command, []string, bool) {
	for n := min(len(args), 3); n >= 1; n-- {
		if c, ok := commands[strings.Join(args[:n], " ")]; ok {
			return c, args[n:], true
		}
	}
	return command{}, nil, false
}

func main() {
	os.Exit(run(os.Args[1:]))
}

// run runs the command line args and returns the exit status: 0, 1 when
// the command failed, 2 when the command line is wrong, 130 when Ctrl-C
// stopped a training run (after it saved).
func run(args []string) int {
	if len(args) == 0 {
		printCommands(os.Stderr, "")
		return 2
	}
	if isHelp(args[0]) {
		if len(args) == 1 {
			printCommands(os.Stdout, "")
			return 0
		}
		// golem help CMD: the command's usage, as golem CMD --help.
		return run(append(append([]string{}, args[1:]...), "--help"))
	}
	if c, rest, ok := findCommand(args); ok {
		defer cpuprof.Start("golem")()
		return exit(c.run(rest))
	}
	var sub []string
	for n := range commands {
		if strings.HasPrefix(n, args[0]+" ") {
			sub = append(sub, strings.TrimPrefix(n, args[0]+" "))
		}
	}
	switch {
	case len(sub) > 0 && len(args) >= 2 && isHelp(args[1]):
		printCommands(os.Stdout, args[0])
		return 0
	case len(sub) > 0:
		sort.Strings(sub)
		fmt.Fprintf(os.Stderr, "golem %s: need a subcommand: %s\n", args[0], strings.Join(sub, ", "))
	default:
		fmt.Fprintf(os.Stderr, "golem: unknown command %q\n", args[0])
		printCommands(os.Stderr, "")
	}
	return 2
}

// exit reports a command's error and returns its exit status.
func exit(err error) int {
	var ue usageError
	switch {
	case err == nil, errors.Is(err, errHelp), errors.Is(err, errParsed):
		return 0
	case errors.Is(err, errInterrupted):
		return 130
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, "golem:", err)
		return 2
	}
	fmt.Fprintln(os.Stderr, "golem:", err)
	return 1
}
