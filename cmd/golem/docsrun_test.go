package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golem-ml/golem/internal/shared"
)

// How TestDocsRun runs the docs' shell blocks. Every fenced block of
// README.md, docs/*.md and serve/README.md that shows a golem command is a
// ```sh (or ```bash) block that runs, or is marked on the line before it
// (markers may stack):
//
//	<!-- not run: REASON -->   it is not run, for REASON (a synopsis, a
//	                           loop that needs people); the test counts
//	                           and logs these
//	<!-- needs: PATH -->       it runs when PATH exists (relative to the
//	                           repository, e.g. ../shared/data/... or
//	                           gguf/e2e/node_modules) or, without a slash,
//	                           a command of that name is on PATH (jq);
//	                           else the rest of the document is skipped,
//	                           saying why (a failure under CI=true, as
//	                           shared.Missing)
//
// The blocks of one document run in order, each with sh -e, in one empty
// folder that stands for the repository root: ../shared is beside it (a
// link to the real one) and gguf/e2e holds the repository's node scripts
// (docsScriptDirs). golem is on PATH (the test binary as golem). The
// commands run as written, with these rewrites, which the test log shows:
//
//   - `go run ./cmd/golem` is `golem`;
//   - lines of `go test`, `go run ./bench` and `apt-get` are left out: the
//     tests run elsewhere and the benchmarks are not CI;
//   - a command that trains (its flag set has --steps: pretrain, sft,
//     reward, ppo, dpo, grpo...) runs at most docsSteps optimizer steps
//     (--steps lowered, or added at the end of the command), unless it
//     resumes a run (--resume) or runs in the background to be killed
//     (`... &`); golem demo gets --quick; eval's --n and --limit are at
//     most docsItems; vision probe's --limit-train and --limit-test are
//     at most docsImages and its --probe-steps at most docsSteps
//     (lowered, or added); imagine's batch mode's and data shapes-prefs'
//     --limit are at most docsItems (lowered, or added).
//
// A golem serve in the foreground would never end: it must run in the
// background (`golem serve ... &`; what a block leaves running is killed
// when it ends) or the block be marked not run.
const (
	docsSteps  = 5
	docsItems  = 20
	docsImages = 500
)

// docsExitsEnv names the file where TestGolemChild notes each golem
// command of a doc block that failed: one inside a pipeline (golem export
// ... | jq) fails the block too, though sh sees only the pipeline's last
// status.
const docsExitsEnv = "GOLEM_DOCS_EXITS"

// recordExit notes a failed golem command in the file f.
func recordExit(f string, code int, args []string) {
	w, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	fmt.Fprintf(w, "exit %d: golem %s\n", code, strings.Join(args, " "))
	w.Close()
}

// docsLeftOut matches the lines TestDocsRun leaves out.
var docsLeftOut = regexp.MustCompile(`^(\$ )?(go test|go run \./bench|(sudo )?apt-get)\b`)

// docLine is one logical line of a block (continued lines joined).
type docLine struct {
	line int // 1-based, in the document
	text string
}

// docBlock is a fenced block of a document.
type docBlock struct {
	file   string
	line   int // the fence's line
	lang   string
	lines  []docLine
	notRun string   // the reason of a <!-- not run: ... --> marker
	needs  []string // <!-- needs: PATH --> markers
	golem  bool     // it shows a golem command
}

var docMarker = regexp.MustCompile(`^<!--\s*(not run|needs):\s*(.*?)\s*-->$`)

// docBlocks returns the fenced blocks of the document file (its name as
// shown in messages: docs/rlhf.md).
func docBlocks(t *testing.T, path, name string) []docBlock {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	var blocks []docBlock
	for i := 0; i < len(lines); i++ {
		fence := strings.TrimLeft(lines[i], " \t")
		if !strings.HasPrefix(fence, "```") {
			continue
		}
		indent := len(lines[i]) - len(fence)
		blk := docBlock{file: name, line: i + 1, lang: strings.TrimSpace(strings.TrimPrefix(fence, "```"))}
		for j := i - 1; j >= 0; j-- {
			m := docMarker.FindStringSubmatch(strings.TrimSpace(lines[j]))
			if m == nil {
				break
			}
			if m[1] == "not run" {
				if m[2] == "" {
					t.Errorf("%s:%d: <!-- not run: --> gives no reason", name, j+1)
				}
				blk.notRun = m[2]
			} else {
				p, _, _ := strings.Cut(m[2], " ") // the path, then a comment
				blk.needs = append(blk.needs, p)
			}
		}
		i++
		for ; i < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i]), "```"); i++ {
			start := i
			l := lines[i]
			for strings.HasSuffix(l, "\\") && i+1 < len(lines) {
				i++
				l = strings.TrimSuffix(l, "\\") + " " + strings.TrimLeft(lines[i], " \t")
			}
			if len(l) >= indent && strings.TrimSpace(l[:indent]) == "" {
				l = l[indent:]
			}
			blk.lines = append(blk.lines, docLine{line: start + 1, text: l})
			if len(golemCommands(l)) > 0 {
				blk.golem = true
			}
		}
		blocks = append(blocks, blk)
	}
	return blocks
}

// docsScript turns a block into the script TestDocsRun runs: before each
// line it prints `+ FILE:LINE: line` to stderr, so a failure's output
// names the line; rewrites are applied and logged.
func docsScript(t *testing.T, blk docBlock) string {
	var sb strings.Builder
	heredoc := false
	for _, l := range blk.lines {
		text := l.text
		where := fmt.Sprintf("%s:%d", blk.file, l.line)
		if heredoc { // a here-document's body is data, not commands
			sb.WriteString(text + "\n")
			continue
		}
		trimmed := strings.TrimSpace(text)
		if docsLeftOut.MatchString(trimmed) {
			t.Logf("%s: left out: %s", where, trimmed)
			continue
		}
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			sb.WriteString(text + "\n")
			continue
		}
		if r := rewriteDocLine(t, text); r != text {
			t.Logf("%s: runs %s", where, strings.TrimSpace(r))
			text = r
		}
		fmt.Fprintf(&sb, "printf '%%s\\n' %s >&2\n", shellQuote("+ "+where+": "+strings.TrimSpace(text)))
		sb.WriteString(text + "\n")
		heredoc = strings.Contains(text, "<<")
	}
	return sb.String()
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

var (
	goRunGolem = regexp.MustCompile(`\bgo run \./cmd/golem\b`)
	stepsFlag  = regexp.MustCompile(`--steps[ =](\d+)`)
	itemsFlag  = regexp.MustCompile(`--(n|limit)[ =](\d+)`)
)

// rewriteDocLine applies TestDocsRun's rewrites to one shell line.
func rewriteDocLine(t *testing.T, line string) string {
	line = goRunGolem.ReplaceAllString(line, "golem")
	var out strings.Builder
	for {
		i := golemAt(line)
		if i < 0 {
			out.WriteString(line)
			return out.String()
		}
		end, background := segmentEnd(line, i)
		seg := line[i:end]
		words := strings.Fields(seg)
		sub := ""
		if len(words) > 1 {
			sub = words[1]
		}
		body := strings.TrimRight(seg, " \t")
		tail := seg[len(body):]
		switch {
		case takesSteps(t, words[1:]) && !background && !strings.Contains(body, "--resume"):
			n := docsSteps
			m := stepsFlag.FindStringSubmatch(body)
			if m != nil {
				if v, _ := strconv.Atoi(m[1]); v < n {
					n = v
				}
				body = stepsFlag.ReplaceAllString(body, "--steps "+strconv.Itoa(n))
			}
			if m == nil || strings.Contains(body, "$") { // a variable may hold --steps: the last one counts
				body += " --steps " + strconv.Itoa(n)
			}
		case sub == "demo" && !strings.Contains(body, "--quick"):
			body += " --quick"
		case sub == "eval":
			body = itemsFlag.ReplaceAllStringFunc(body, func(f string) string {
				m := itemsFlag.FindStringSubmatch(f)
				v, _ := strconv.Atoi(m[2])
				return fmt.Sprintf("--%s %d", m[1], min(v, docsItems))
			})
		case sub == "imagine" && strings.Contains(body, "--prompts"), sub == "data" && len(words) > 2 && words[2] == "shapes-prefs":
			body = capFlag(body, "limit", docsItems, true)
		case sub == "vision" && len(words) > 2 && words[2] == "probe":
			// Features of all 70,000 MNIST images for three encoders
			// and 1,500 probe steps each take over 5 minutes.
			body = capFlag(body, "limit-train", docsImages, true)
			body = capFlag(body, "limit-test", docsImages, true)
			body = capFlag(body, "probe-steps", docsSteps, false)
		}
		out.WriteString(line[:i] + body + tail)
		line = line[end:]
	}
}

// capFlag lowers the integer flag --name of a command to at most max, or
// adds it at the end when the command does not set it (its default is
// more); zeroAll: 0 means no limit, and is lowered too.
func capFlag(body, name string, max int, zeroAll bool) string {
	re := regexp.MustCompile(`--` + regexp.QuoteMeta(name) + `[ =](\d+)\b`)
	if !re.MatchString(body) {
		return body + fmt.Sprintf(" --%s %d", name, max)
	}
	return re.ReplaceAllStringFunc(body, func(f string) string {
		v, _ := strconv.Atoi(re.FindStringSubmatch(f)[1])
		if v == 0 && zeroAll {
			v = max
		}
		return fmt.Sprintf("--%s %d", name, min(v, max))
	})
}

// takesSteps reports whether the golem command whose words (after golem)
// start with words has a --steps flag: it trains.
func takesSteps(t *testing.T, words []string) bool {
	n := 0 // the command's name: its words before the first flag, three at most
	for n < len(words) && n < 3 && !strings.HasPrefix(words[n], "-") {
		n++
	}
	fs, _ := parseCommand(t, words[:n]...)
	return fs != nil && fs.Lookup("steps") != nil
}

// golemAt returns where the first golem command of line starts (the word
// golem at the start of a command), or -1.
func golemAt(line string) int {
	for i := 0; i+len("golem ") <= len(line); i++ {
		if line[i:i+6] == "golem " && (i == 0 || strings.ContainsRune(" \t;&|(!", rune(line[i-1])) && !inQuotes(line[:i])) {
			return i
		}
	}
	return -1
}

// inQuotes reports whether the end of s is inside a quoted string.
func inQuotes(s string) bool {
	var q byte
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case q != 0 && c == q:
			q = 0
		case q == 0 && (c == '\'' || c == '"'):
			q = c
		}
	}
	return q != 0
}

// segmentEnd returns where the command starting at i ends (an unquoted ;,
// &, |, ), a # comment or the end of the line) and whether it runs in the
// background (ends with a lone &).
func segmentEnd(line string, i int) (int, bool) {
	var q byte
	for j := i; j < len(line); j++ {
		c := line[j]
		switch {
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '\'' || c == '"':
			q = c
		case c == '\\':
			j++
		case c == ';' || c == '|' || c == ')':
			return j, false
		case c == '&':
			return j, !(j+1 < len(line) && line[j+1] == '&') && !(j > 0 && line[j-1] == '>')
		case c == '#' && (line[j-1] == ' ' || line[j-1] == '\t'):
			return j, false
		}
	}
	return len(line), false
}

// Every shell block of README.md, docs/*.md and serve/README.md that shows
// a golem command runs as shown (with the rewrites above), document by
// document, each in its own folder; a block with golem commands that is
// not a shell block must say why it is not run.
func TestDocsRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every shell block of the docs (a few minutes)")
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := golemOnPath(t)
	var files []string
	for _, g := range docFiles {
		m, _ := filepath.Glob(filepath.Join(repo, g))
		files = append(files, m...)
	}
	ran, notRun := 0, 0
	for _, f := range files {
		name, _ := filepath.Rel(repo, f)
		name = filepath.ToSlash(name)
		run, skipped, errs := docsToRun(t, docBlocks(t, f, name))
		notRun += skipped
		for _, e := range errs {
			t.Error(e)
		}
		if len(run) == 0 {
			continue
		}
		ran += len(run)
		t.Run(strings.NewReplacer("/", "_", ".md", "").Replace(name), func(t *testing.T) {
			if shared.Dir() == "" {
				shared.Missing(t, "skipping: the docs' commands read ../shared (the shared data folder beside the repository)")
			}
			root := t.TempDir()
			dir := filepath.Join(root, "golem")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(shared.Dir(), filepath.Join(root, "shared")); err != nil {
				t.Fatal(err)
			}
			for _, d := range docsScriptDirs {
				copyScriptDir(t, filepath.Join(repo, d), filepath.Join(dir, d))
			}
			for _, blk := range run {
				for _, p := range blk.needs {
					if !docsHave(dir, p) {
						shared.Missing(t, fmt.Sprintf("skipping %s from line %d: it needs %s, which is not here", blk.file, blk.line, p))
					}
				}
				if err := runDocBlock(t, blk, dir, bin); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	if ran == 0 {
		t.Fatal("found no shell block with golem commands in the docs")
	}
	t.Logf("%d blocks run, %d marked not run", ran, notRun)
}

// golemOnPath returns a folder holding golem: a script that runs this test
// binary as golem (TestGolemChild).
func golemOnPath(t *testing.T) string {
	bin := t.TempDir()
	wrapper := fmt.Sprintf("#!/bin/sh\n%s=1 exec %q -test.run='^TestGolemChild$' -- \"$@\"\n", golemEnv, os.Args[0])
	if err := os.WriteFile(filepath.Join(bin, "golem"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// docsToRun returns the blocks of a document that run, the number marked
// not run, and an error for each block with golem commands that is neither
// a shell block nor marked.
func docsToRun(t *testing.T, blocks []docBlock) (run []docBlock, notRun int, errs []string) {
	for _, blk := range blocks {
		shell := blk.lang == "sh" || blk.lang == "bash" || blk.lang == "shell"
		switch {
		case !blk.golem:
		case blk.notRun != "":
			notRun++
			t.Logf("%s:%d: not run: %s", blk.file, blk.line, blk.notRun)
		case !shell:
			errs = append(errs, fmt.Sprintf("%s:%d: a ```%s block shows golem commands: make it ```sh (TestDocsRun runs it) or put <!-- not run: REASON --> on the line before it",
				blk.file, blk.line, blk.lang))
		default:
			run = append(run, blk)
			for _, l := range blk.lines {
				for rest := l.text; ; {
					i := golemAt(rest)
					if i < 0 {
						break
					}
					end, background := segmentEnd(rest, i)
					if w := strings.Fields(rest[i:end]); len(w) > 1 && w[1] == "serve" && !background {
						errs = append(errs, fmt.Sprintf("%s:%d: golem serve runs in the foreground and would never end: start it in the background (golem serve ... &), or put <!-- not run: REASON --> on the line before the block",
							blk.file, l.line))
					}
					rest = rest[end:]
				}
			}
		}
	}
	return run, notRun, errs
}

// docsScriptDirs are the repository's folders of scripts the docs run
// (node gguf/e2e/llamacpp.mjs): TestDocsRun copies their files into its
// folder and links their node_modules, so that paths relative to them
// (../../out) stay inside it.
var docsScriptDirs = []string{"gguf/e2e"}

func copyScriptDir(t *testing.T, from, to string) {
	t.Helper()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		src, dst := filepath.Join(from, e.Name()), filepath.Join(to, e.Name())
		if e.IsDir() || e.Type()&os.ModeSymlink != 0 {
			err = os.Symlink(src, dst) // node_modules
		} else if b, rerr := os.ReadFile(src); rerr != nil {
			err = rerr
		} else {
			err = os.WriteFile(dst, b, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// docsHave reports whether a <!-- needs: --> holds: a path (with a
// slash; relative to the repository root, dir here) exists, or a command
// (jq, spm_train) is on PATH.
func docsHave(dir, need string) bool {
	if !strings.Contains(need, "/") {
		_, err := exec.LookPath(need)
		return err == nil
	}
	if !filepath.IsAbs(need) {
		need = filepath.Join(dir, need)
	}
	_, err := os.Stat(need)
	return err == nil
}

// runDocBlock runs one block in dir with golem on PATH (the folder bin);
// its error names the document line of the command that failed and shows
// the end of the output.
func runDocBlock(t *testing.T, blk docBlock, dir, bin string) error {
	t.Helper()
	script := docsScript(t, blk)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-e", "-c", script)
	cmd.Dir = dir
	exits := filepath.Join(t.TempDir(), "exits")
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), docsExitsEnv+"="+exits)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A block that fails before it stops what it left in the background
	// (golem serve ... &) leaves the output pipe open: Run returns a
	// moment after the shell exits instead of waiting for it for ever.
	cmd.WaitDelay = 2 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // what the block left in the background
	}
	if err == nil {
		// A golem command may fail only where the block shows its error:
		// golem ... 2>&1 | grep MESSAGE.
		b, _ := os.ReadFile(exits)
		failed := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(b) == 0 {
			failed = nil
		}
		checked := 0
		for _, l := range blk.lines {
			checked += strings.Count(l.text, "2>&1 | grep ")
		}
		if len(failed) <= checked {
			t.Logf("%s:%d: ran in %.1fs", blk.file, blk.line, time.Since(start).Seconds())
			return nil
		}
		return fmt.Errorf("%s:%d: a golem command failed inside a pipeline (only one whose stderr goes to grep, 2>&1 | grep MESSAGE, may fail):\n%s\n---\n%s",
			blk.file, blk.line, strings.Join(failed, "\n"), tail(out.String()))
	}
	text := out.String()
	where := fmt.Sprintf("%s:%d", blk.file, blk.line)
	if i := strings.LastIndex(text, "\n+ "+blk.file+":"); i >= 0 || strings.HasPrefix(text, "+ "+blk.file+":") {
		text = text[i+1:]
		where, _, _ = strings.Cut(strings.TrimPrefix(text, "+ "), ": ")
	}
	// The command's line, then the end of its output.
	head, rest, _ := strings.Cut(text, "\n")
	return fmt.Errorf("%s: fails (%v):\n%s\n%s", where, err, head, tail(rest))
}

// tail returns the last 40 lines of a command's output, at most 4,000
// bytes (progress lines rewritten with \r can be long).
func tail(s string) string {
	if lines := strings.Split(s, "\n"); len(lines) > 40 {
		s = "...\n" + strings.Join(lines[len(lines)-40:], "\n")
	}
	if len(s) > 4000 {
		s = "..." + s[len(s)-4000:]
	}
	return s
}

// TestDocsRun's rewrites, its markers and its failure message, on a
// document of its own (fast: runs under -short).
func TestDocsRunHarness(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"go run ./cmd/golem pretrain --config baby --out out/a", "golem pretrain --config baby --out out/a --steps 5"},
		{"golem sft --model m --steps 1000 --out o   # comment", "golem sft --model m --steps 5 --out o   # comment"},
		{"golem sft --model m --steps 3 --out o", "golem sft --model m --steps 3 --out o"},
		{"golem sft $COMMON --out o", "golem sft $COMMON --out o --steps 5"},
		{"golem sft --steps 60 --out o & sleep 6; kill -9 $!", "golem sft --steps 60 --out o & sleep 6; kill -9 $!"},
		{"golem sft --steps 60 --out o --resume", "golem sft --steps 60 --out o --resume"},
		{"golem demo      # the recipe", "golem demo --quick      # the recipe"},
		{"golem vision judge train --data shapes --out j --steps 300", "golem vision judge train --data shapes --out j --steps 5"},
		{"golem eval tasks --model m --n 200 | tail -1", "golem eval tasks --model m --n 20 | tail -1"},
		{"golem imagine --model m --prompts s/test.jsonl --out-dir d --n 8", "golem imagine --model m --prompts s/test.jsonl --out-dir d --n 8 --limit 20"},
		{"golem imagine --model m --prompts s/test.jsonl --limit 200 --out-dir d", "golem imagine --model m --prompts s/test.jsonl --limit 20 --out-dir d"},
		{"golem data shapes-prefs --model m --data s --limit 300 --out p.jsonl", "golem data shapes-prefs --model m --data s --limit 20 --out p.jsonl"},
		{"golem data shapes-prefs --model m --data s --out p.jsonl", "golem data shapes-prefs --model m --data s --out p.jsonl --limit 20"},
		{"golem vision probe --model m --train a --test b", "golem vision probe --model m --train a --test b --limit-train 500 --limit-test 500 --probe-steps 5"},
		{"golem vision probe --model m --limit-train 0 --limit-test=100 --probe-steps 50 --train a # 10,000", "golem vision probe --model m --limit-train 500 --limit-test 100 --probe-steps 5 --train a # 10,000"},
		{"echo 'golem sft' | golem tokenizer encode --tokenizer t", "echo 'golem sft' | golem tokenizer encode --tokenizer t"},
		{"(golem reward --model m --data d --out o) && golem generate --model o", "(golem reward --model m --data d --out o --steps 5) && golem generate --model o"},
	} {
		if got := rewriteDocLine(t, c.in); got != c.want {
			t.Errorf("rewrite %q:\n got %q\nwant %q", c.in, got, c.want)
		}
	}

	doc := filepath.Join(t.TempDir(), "x.md")
	text := "# x\n\n```\ngolem version\n```\n\n<!-- not run: a synopsis -->\n```sh\ngolem eval tasks --model DIR\n```\n\n" +
		"```sh\necho fine\ngo test ./...\n```\n\n  ```sh\n  echo one \\\n    two\n  false && true\n  golem version\n  false\n  ```\n" +
		"\n```sh\ngolem serve --model m & sleep 1\ngolem generate --model m; golem serve --model m\n```\n"
	if err := os.WriteFile(doc, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	blocks := docBlocks(t, doc, "x.md")
	run, notRun, errs := docsToRun(t, blocks)
	if len(run) != 2 || run[0].line != 17 || notRun != 1 || len(errs) != 2 ||
		!strings.HasPrefix(errs[0], "x.md:3: a ``` block shows golem commands") || !strings.HasPrefix(errs[1], "x.md:27: golem serve runs in the foreground") {
		t.Fatalf("blocks: %d to run (%+v), %d not run, errors %q; want those at lines 17 and 25, 1, the block at line 3 and the serve at line 27", len(run), run, notRun, errs)
	}
	if !docsHave("", "sh") || docsHave("", "no-such-command-golem") || docsHave(t.TempDir(), "gguf/e2e/node_modules") {
		t.Error("<!-- needs: --> is not checked")
	}
	if s := docsScript(t, blocks[2]); strings.Contains(s, "go test") {
		t.Errorf("go test runs:\n%s", s)
	}
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "golem"), []byte("#!/bin/sh\necho golem \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := runDocBlock(t, run[0], t.TempDir(), bin)
	if err == nil || !strings.HasPrefix(err.Error(), "x.md:22: fails (exit status 1):\n+ x.md:22: false\n") {
		t.Errorf("a failing block: %v; want x.md:22 named with its command", err)
	}

	// A golem command that fails inside a pipeline fails the block, unless
	// the block greps its error.
	golem := golemOnPath(t)
	for _, c := range []struct {
		line, want string
	}{
		{"golem generate 2>/dev/null | cat", "x.md:1: a golem command failed inside a pipeline (only one whose stderr goes to grep, 2>&1 | grep MESSAGE, may fail):\nexit 2: golem generate\n"},
		{"golem generate 2>&1 | grep 'generate: --model is required'", ""},
	} {
		blk := docBlock{file: "x.md", line: 1, lines: []docLine{{2, c.line}}}
		err := runDocBlock(t, blk, t.TempDir(), golem)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want)) {
			t.Errorf("%s: %v; want %q", c.line, err, c.want)
		}
	}
}
