package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The documents whose golem commands TestDocsCommandsParse checks.
var docFiles = []string{"README.md", "docs/*.md", "serve/README.md"}

// docCommand is one golem command line a document shows, or a flag its
// prose names alone (`--loss-type ipo`: args is nil, flag is loss-type).
type docCommand struct {
	where string   // FILE:LINE
	args  []string // after "golem"
	flag  string
}

var (
	inlineCode = regexp.MustCompile("`([^`]+)`")
	assignment = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)=(.*)$`)
	variable   = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)
	// A placeholder: DIR, FILE, SFT_DIR, N, PATH... (and golem's own
	// sqlite:FILE keeps its prefix).
	placeholder = regexp.MustCompile(`^[A-Z][A-Z0-9_]*(\.\.\.)?$`)
)

// shellWords splits a shell line into words and operators (|, ||, &&, ;,
// &), honouring quotes and dropping a # comment and redirections.
func shellWords(line string) []string {
	var words []string
	var w strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			words = append(words, w.String())
		}
		w.Reset()
		inWord = false
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\'' || c == '"':
			j := strings.IndexByte(line[i+1:], c)
			if j < 0 {
				j = len(line) - i - 1
			}
			w.WriteString(line[i+1 : i+1+j])
			inWord = true
			i += j + 1
		case c == '\\' && i+1 < len(line):
			w.WriteByte(line[i+1])
			inWord = true
			i++
		case c == ' ' || c == '\t':
			flush()
		case c == '#' && !inWord:
			flush()
			return words
		case c == ';' || c == '&' || (c == '|' && !inWord):
			flush()
			op := string(c)
			if i+1 < len(line) && line[i+1] == c {
				op += op
				i++
			}
			words = append(words, op)
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	flush()
	// Drop redirections: > FILE, 2>&1, < FILE.
	var out []string
	for i := 0; i < len(words); i++ {
		switch wd := words[i]; {
		case wd == ">" || wd == ">>" || wd == "<" || wd == "2>":
			i++
		case strings.HasPrefix(wd, ">") || strings.HasPrefix(wd, "2>") || strings.HasPrefix(wd, "<"):
		default:
			out = append(out, wd)
		}
	}
	return out
}

// golemCommands returns the golem command lines (the words after golem or
// go run ./cmd/golem) in one shell line.
func golemCommands(line string) [][]string {
	var cmds [][]string
	words := shellWords(strings.TrimPrefix(strings.TrimSpace(line), "$ "))
	for len(words) > 0 {
		end := len(words)
		for i, w := range words {
			if w == "|" || w == "||" || w == "&&" || w == ";" || w == "&" {
				end = i
				break
			}
		}
		seg := words[:end]
		switch {
		case len(seg) > 0 && seg[0] == "golem":
			cmds = append(cmds, seg[1:])
		case len(seg) > 2 && seg[0] == "go" && seg[1] == "run" && seg[2] == "./cmd/golem":
			cmds = append(cmds, seg[3:])
		}
		if end == len(words) {
			break
		}
		words = words[end+1:]
	}
	return cmds
}

// docCommands extracts every golem command README.md, docs/*.md and
// serve/README.md show, in code blocks and in inline code (prose and table
// cells). In a code block, continued lines are joined and VAR="..." lines
// are expanded in the lines after them.
func docCommands(t *testing.T) []docCommand {
	t.Helper()
	var files []string
	for _, g := range docFiles {
		m, err := filepath.Glob(filepath.Join("..", "..", g))
		if err != nil || len(m) == 0 {
			t.Fatalf("no %s", g)
		}
		files = append(files, m...)
	}
	var cmds []docCommand
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(filepath.ToSlash(f), "../../")
		lines := strings.Split(string(b), "\n")
		inCode := false
		vars := map[string]string{}
		var prose []string // the lines of the current stretch of prose
		proseStart := 0
		flushProse := func() {
			// Inline code may wrap: join the stretch, then find the spans.
			text := strings.Join(prose, "\n")
			for _, m := range inlineCode.FindAllStringSubmatchIndex(text, -1) {
				span := strings.ReplaceAll(text[m[2]:m[3]], "\n", " ")
				line := proseStart + strings.Count(text[:m[0]], "\n") + 1
				if strings.HasPrefix(span, "--") {
					fl, _, _ := strings.Cut(strings.TrimPrefix(span, "--"), " ")
					fl, _, _ = strings.Cut(fl, "=")
					cmds = append(cmds, docCommand{where: fmt.Sprintf("%s:%d", name, line), flag: fl})
				}
				for _, args := range golemCommands(span) {
					if n := len(args); n > 0 && strings.HasPrefix(args[n-1], "--") {
						args = append(args, "X") // prose names a flag: `golem export --db`
					}
					cmds = append(cmds, docCommand{where: fmt.Sprintf("%s:%d", name, line), args: args})
				}
			}
			prose = nil
		}
		for i := 0; i < len(lines); i++ {
			l := lines[i]
			if strings.HasPrefix(strings.TrimSpace(l), "```") {
				if !inCode {
					flushProse()
					vars = map[string]string{}
				}
				inCode = !inCode
				proseStart = i + 1
				continue
			}
			if !inCode {
				if len(prose) == 0 {
					proseStart = i
				}
				prose = append(prose, l)
				continue
			}
			start := i
			for strings.HasSuffix(l, "\\") && i+1 < len(lines) {
				i++
				l = strings.TrimSuffix(l, "\\") + " " + lines[i]
			}
			if m := assignment.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
				if w := shellWords(m[2]); len(w) == 1 {
					vars[m[1]] = w[0]
				}
				continue
			}
			l = variable.ReplaceAllStringFunc(l, func(v string) string {
				if val, ok := vars[variable.FindStringSubmatch(v)[1]]; ok {
					return val
				}
				return v
			})
			for _, args := range golemCommands(l) {
				cmds = append(cmds, docCommand{where: fmt.Sprintf("%s:%d", name, start+1), args: args})
			}
		}
		flushProse()
	}
	return cmds
}

// expand turns a documented synopsis into runnable command lines: optional
// [--flag X] groups are kept, PATH... is one PATH, a placeholder (DIR, N)
// becomes "1", and a word with alternatives (sft|rankings) becomes one
// command line per alternative.
func expand(args []string) [][]string {
	lines := [][]string{nil}
	for _, a := range args {
		a = strings.NewReplacer("[", "", "]", "").Replace(a)
		if a == "" || a == "..." {
			continue
		}
		alts := []string{a}
		if strings.Contains(a, "|") {
			alts = strings.Split(a, "|")
		}
		var next [][]string
		for _, l := range lines {
			for _, alt := range alts {
				alt = strings.TrimSuffix(alt, "...")
				if placeholder.MatchString(alt) {
					alt = "1"
				}
				next = append(next, append(append([]string{}, l...), alt))
			}
		}
		lines = next
	}
	return lines
}

// Every golem command README.md, docs/*.md and serve/README.md show names
// a real command and only its flags, with values of the right type: an
// unknown flag (docs/rlhf.md's --loss ipo, which is --loss-type) or
// subcommand fails, and so does a hidden old name (--policy). A synopsis
// with alternatives (sft|reward, FILE|builtin) passes when one of its
// expansions parses.
func TestDocsCommandsParse(t *testing.T) {
	cmds := docCommands(t)
	if len(cmds) < 50 {
		t.Fatalf("found only %d golem commands in the docs", len(cmds))
	}
	if testing.Verbose() {
		for _, c := range cmds {
			t.Logf("%s: golem %s", c.where, strings.Join(c.args, " "))
		}
	}
	flags := map[string]bool{}                             // every flag of every command: true, or false for a hidden old name
	variants := [][]string{{"export", "--format", "gguf"}} // a command whose flags depend on --format
	for _, name := range commandNames() {
		variants = append(variants, strings.Fields(name))
	}
	for _, v := range variants {
		fs, _ := parseCommand(t, v...)
		fs.VisitAll(func(f *flag.Flag) {
			_, isAlias := f.Value.(aliasValue)
			flags[f.Name] = flags[f.Name] || !isAlias
		})
	}
	for _, c := range cmds {
		if c.args == nil {
			// docs/cli.md's table lists the old names.
			if current, ok := flags[c.flag]; !ok || !current && !strings.HasPrefix(c.where, "docs/cli.md:") {
				t.Errorf("%s: --%s is no golem flag (or an old name)", c.where, c.flag)
			}
			continue
		}
		args := c.args
		if len(args) > 0 && args[0] == "help" { // golem help CMD: CMD must exist
			args = append(args[1:len(args):len(args)], "--help")
		}
		if len(args) == 0 || args[0] == "COMMAND" || args[0] == "--help" {
			continue // "golem" alone as a name, or the generic synopsis
		}
		if len(args) == 1 {
			if groupOf(args[0]) { // "golem eval", "golem users": a group named in prose
				continue
			}
		}
		var errs []string
		ok := false
		for _, args := range expand(args) {
			fs, err := parseCommand(t, args...)
			if err == nil {
				fs.Visit(func(f *flag.Flag) {
					if a, isAlias := f.Value.(aliasValue); isAlias {
						err = fmt.Errorf("--%s is an old name: write %s", f.Name, canonical(fs, a))
					}
				})
			}
			if err != nil {
				errs = append(errs, fmt.Sprintf("golem %s: %v", strings.Join(args, " "), err))
			} else {
				ok = true
			}
		}
		if !ok {
			t.Errorf("%s: golem %s does not parse:\n  %s", c.where, strings.Join(c.args, " "), strings.Join(errs, "\n  "))
		}
	}
}

// canonical names the flag an alias sets.
func canonical(fs *flag.FlagSet, a aliasValue) string {
	name := "?"
	fs.VisitAll(func(f *flag.Flag) {
		if _, isAlias := f.Value.(aliasValue); !isAlias && f.Value == a.Value {
			name = "--" + f.Name
		}
	})
	return name
}

func groupOf(name string) bool {
	for n := range commands {
		if strings.HasPrefix(n, name+" ") {
			return true
		}
		for _, alt := range strings.Split(name, "|") {
			if n == alt || strings.HasPrefix(n, alt+" ") {
				return true
			}
		}
	}
	return false
}
