package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// The errors a command returns for exit codes other than 1.
var (
	// errHelp: the command printed its usage because -h, --help or golem
	// help CMD asked for it; exit 0.
	errHelp = errors.New("help requested")
	// errInterrupted: Ctrl-C stopped a training run after it saved; exit
	// 130 (128+SIGINT), so that golem sft ... && golem reward ... stops.
	errInterrupted = errors.New("interrupted")
	// errParsed: parseOnly is set and the flags parsed; the command does
	// nothing more (the docs test checks commands this way).
	errParsed = errors.New("flags parsed")
)

// usageError is a command line golem cannot run (an unknown flag, a bad
// value, an argument too many); exit 2.
type usageError struct{ error }

// defaultSeed is every --seed's default (nanoGPT's): training, sampling,
// the demo and the held-out tasks eval tasks picks.
const defaultSeed = 1337

// parseOnly makes parseFlags return errParsed after a successful parse, so
// that a test can check a command line against the real flag sets without
// running it.
var parseOnly bool

// lastFlags is the flag set parseOnly stopped after, for tests.
var lastFlags *flag.FlagSet

// examples holds each flag set's example command line, for its usage.
var examples = map[*flag.FlagSet]string{}

// newFlags returns the flag set of the command registered as name. Its
// usage (-h, --help, golem help NAME) goes to stdout: the command's
// summary, the example (one command line, or several separated by
// newlines) and the flags with their defaults.
func newFlags(name, example string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // parseFlags reports errors and prints usage
	fs.Usage = func() {}
	examples[fs] = example
	return fs
}

// parseFlags parses a command's flags; an argument that is not a flag is
// an error.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := parseWithArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("%s: unexpected argument %q (flags start with --; golem %s --help lists them)", fs.Name(), fs.Arg(0), fs.Name())}
	}
	return nil
}

// parseWithArgs parses a command's flags and leaves the arguments after
// them in fs.Args().
func parseWithArgs(fs *flag.FlagSet, args []string) error {
	if parseOnly {
		lastFlags = fs
	}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printUsage(os.Stdout, fs)
		return errHelp
	case err != nil:
		// The flag package names flags -name; golem writes --name.
		msg := strings.NewReplacer(": -", ": --", "flag -", "flag --").Replace(err.Error())
		return usageError{fmt.Errorf("%s: %s (golem %s --help lists the flags)", fs.Name(), msg, fs.Name())}
	case parseOnly:
		return errParsed
	}
	return nil
}

// printUsage writes a command's usage: summary, example and flags. Hidden
// aliases are left out; a default is shown unless it is the zero value or
// the flag's help already says what the default is.
func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: golem %s [flags]\n\n", fs.Name())
	if c, ok := commands[fs.Name()]; ok {
		fmt.Fprintf(w, "%s\n\n", c.summary)
	}
	if ex := examples[fs]; ex != "" {
		fmt.Fprintf(w, "example:\n  %s\n\n", strings.ReplaceAll(ex, "\n", "\n  "))
	}
	fmt.Fprintln(w, "flags:")
	fs.VisitAll(func(f *flag.Flag) {
		if _, ok := f.Value.(aliasValue); ok {
			return
		}
		typ, help := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if typ != "" {
			line += " " + typ
		}
		if !strings.Contains(help, "default") && !zeroDefault(f.DefValue) {
			if g, ok := f.Value.(flag.Getter); ok && isString(g.Get()) {
				help += fmt.Sprintf(" (default %q)", f.DefValue)
			} else {
				help += fmt.Sprintf(" (default %s)", f.DefValue)
			}
		}
		fmt.Fprintf(w, "%s\n        %s\n", line, strings.ReplaceAll(help, "\n", "\n        "))
	})
}

func isString(v any) bool { _, ok := v.(string); return ok }

func zeroDefault(v string) bool {
	switch v {
	case "", "0", "false", "0s", "[]":
		return true
	}
	return false
}

// aliasValue is a hidden old name of a flag: it sets the same value and is
// left out of the usage.
type aliasValue struct {
	flag.Value
}

func (a aliasValue) IsBoolFlag() bool {
	b, ok := a.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func (a aliasValue) Get() any {
	if g, ok := a.Value.(flag.Getter); ok {
		return g.Get()
	}
	return a.Value.String()
}

// alias makes old, hidden, another name of the flag name: command lines
// written for an earlier golem keep working.
func alias(fs *flag.FlagSet, old, name string) {
	f := fs.Lookup(name)
	if f == nil {
		panic("golem: alias of an undefined flag --" + name)
	}
	fs.Var(aliasValue{f.Value}, old, "hidden alias of --"+name)
}

// isSet reports whether the command line gave the flag name (or an alias
// of it).
func isSet(fs *flag.FlagSet, name string) bool {
	v := fs.Lookup(name).Value
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
		if a, ok := f.Value.(aliasValue); ok && a.Value == v {
			set = true
		}
	})
	return set
}

// printCommands writes the list of commands, or of the subcommands of
// group ("tokenizer") when group is not empty.
func printCommands(w io.Writer, group string) {
	if group == "" {
		fmt.Fprintln(w, "usage: golem COMMAND [flags]   (golem help COMMAND, or golem COMMAND --help, for its flags and an example)\n\ncommands:")
	} else {
		fmt.Fprintf(w, "usage: golem %s SUBCOMMAND [flags]\n\nsubcommands:\n", group)
	}
	names := make([]string, 0, len(commands))
	for n := range commands {
		if group == "" || strings.HasPrefix(n, group+" ") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-22s %s\n", n, commands[n].summary)
	}
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help" || arg == "help"
}

// required returns a usage error (exit 2) naming the flags among names the
// command line left empty: `dpo: --data and --out are required`.
func required(fs *flag.FlagSet, names ...string) error {
	var missing []string
	for _, n := range names {
		if fs.Lookup(n).Value.String() == "" {
			missing = append(missing, "--"+n)
		}
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return usageError{fmt.Errorf("%s: %s is required (golem %s --help lists the flags)", fs.Name(), missing[0], fs.Name())}
	}
	last := len(missing) - 1
	return usageError{fmt.Errorf("%s: %s and %s are required (golem %s --help lists the flags)",
		fs.Name(), strings.Join(missing[:last], ", "), missing[last], fs.Name())}
}
