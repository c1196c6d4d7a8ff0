// Command golem builds ChatGPT-style assistants: tokenizer, pretraining,
// instruction tuning, reward modelling, RLHF, evaluation and serving.
//
// Each subcommand lives in its own file and registers itself in init with
// register; this file only dispatches.
package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
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

func usage() {
	fmt.Fprintln(os.Stderr, "usage: golem COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-22s %s\n", n, commands[n].summary)
	}
}

func main() {
	args := os.Args[1:]
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		os.Exit(2)
	}
	// Longest match first: "tokenizer train" before "tokenizer".
	if len(args) >= 2 {
		if c, ok := commands[args[0]+" "+args[1]]; ok {
			exit(c.run(args[2:]))
			return
		}
	}
	c, ok := commands[args[0]]
	if !ok {
		var sub []string
		for n := range commands {
			if strings.HasPrefix(n, args[0]+" ") {
				sub = append(sub, strings.TrimPrefix(n, args[0]+" "))
			}
		}
		if len(sub) > 0 {
			sort.Strings(sub)
			fmt.Fprintf(os.Stderr, "golem %s: need a subcommand: %s\n", args[0], strings.Join(sub, ", "))
		} else {
			fmt.Fprintf(os.Stderr, "golem: unknown command %q\n", args[0])
			usage()
		}
		os.Exit(2)
	}
	exit(c.run(args[1:]))
}

func exit(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "golem:", err)
		os.Exit(1)
	}
}
