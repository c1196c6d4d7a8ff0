package serve

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data/synth"
	"github.com/golem-ml/golem/demo"
	"github.com/golem-ml/golem/internal/shared"
	"github.com/golem-ml/golem/tokenizer"

	"github.com/golem-ml/golem/store"
)

// needNode returns the node binary when it and the e2e packages are
// installed (.ci/e2e-deps.sh). Without them the test is skipped, except
// under CI=true, where it fails.
func needNode(t *testing.T, packages ...string) string {
	t.Helper()
	missing := func(what string) {
		msg := what + " is missing: run .ci/e2e-deps.sh (installs nodejs, npm, chromium and the npm packages of serve/e2e)"
		shared.Missing(t, msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node")
	}
	for _, p := range packages {
		if _, err := os.Stat(filepath.Join("e2e", "node_modules", p, "package.json")); err != nil {
			missing("the npm package " + p)
		}
	}
	return node
}

// runNode runs an e2e script and returns its output.
func runNode(t *testing.T, node, script string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Dir = "e2e"
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\n%s", script, err, out.String())
	}
	t.Logf("node %s: %s", script, strings.TrimSpace(out.String()))
	return out.String()
}

// The official openai package, streaming and not, against golem serve;
// the log-probabilities it reads (top_logprobs, echo) are golem's own
// forward pass over the same text, and its embeddings too.
func TestOpenAIClient(t *testing.T) {
	node := needNode(t, "openai")
	ts := newTestServer(t, Options{}, EngineOptions{})
	w, err := LoadWeights(cpu.New(), tinyDir(t, "llama"))
	if err != nil {
		t.Fatal(err)
	}
	out := runNode(t, node, "openai.mjs", ts.URL, "tiny-llama", strconv.Itoa(w.Model.Config.Hidden))
	var res struct {
		OK       bool
		Logprobs []chatLP
		Echo     struct {
			TokenLogprobs []*float64 `json:"token_logprobs"`
		}
		Embedding []float32
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil || !res.OK {
		t.Fatalf("%v: %s", err, out)
	}
	prompt, _, err := w.Tok.RenderChat([]tokenizer.Message{{Role: "system", Content: "You are terse."}, {Role: "user", Content: "Say hello."}}, true)
	if err != nil {
		t.Fatal(err)
	}
	var bs [][]int
	for _, c := range res.Logprobs {
		bs = append(bs, c.Bytes)
	}
	lps, rows := refLogprobs(t, w.Model, append(prompt, idsOf(t, w.Tok, bs)...))
	for i, c := range res.Logprobs {
		at := len(prompt) + i
		best := slices.Max(rows[at])
		if math.Abs(c.Logprob-lps[at]) > 1e-4 || math.Abs(c.TopLogprobs[0].Logprob-best) > 1e-4 {
			t.Errorf("token %d %q: logprob %.6f, top %.6f; golem's forward pass gives %.6f, top %.6f", i, c.Token, c.Logprob, c.TopLogprobs[0].Logprob, lps[at], best)
		}
	}
	ids := w.Tok.EncodeWithSpecial("Once upon a time")
	lps, _ = refLogprobs(t, w.Model, ids)
	if len(res.Echo.TokenLogprobs) != len(ids) {
		t.Fatalf("echo: %d token logprobs for %d tokens", len(res.Echo.TokenLogprobs), len(ids))
	}
	for i := 1; i < len(ids); i++ {
		if got := *res.Echo.TokenLogprobs[i]; math.Abs(got-lps[i]) > 1e-4 {
			t.Errorf("echo token %d: %.6f, golem's forward pass gives %.6f", i, got, lps[i])
		}
	}
	closeTo(t, "the openai client's embedding", res.Embedding, refEmbedding(w.Model, w.Tok.EncodeWithSpecial("The sky is blue."), false))
}

// The official ollama package, streaming and not, against golem serve,
// which loads the model on its first request: ollama.ps() before and
// after, ollama.embed() (golem's own forward pass), keep_alive 0.
func TestOllamaClient(t *testing.T) {
	node := needNode(t, "ollama")
	ts, _ := newLazyServer(t, Options{}, ModelSpec{"tiny-llama", tinyDir(t, "llama")})
	w, err := LoadWeights(cpu.New(), tinyDir(t, "llama"))
	if err != nil {
		t.Fatal(err)
	}
	out := runNode(t, node, "ollama.mjs", ts.URL, "tiny-llama", strconv.Itoa(w.Model.Config.Hidden))
	var res struct {
		OK        bool
		Embedding []float32
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil || !res.OK {
		t.Fatalf("%v: %s", err, out)
	}
	closeTo(t, "the ollama client's embedding", res.Embedding, refEmbedding(w.Model, w.Tok.EncodeWithSpecial("Why is the sky blue?"), false))
}

// A real browser logs in, reads hostile guidelines as text, writes a
// demonstration, ranks four answers (clicks, keys, a drag, ratings, flags),
// compares two (a tie undone, then B), edits the ranking, and every view
// passes axe-core's WCAG 2 AA rules (serve/e2e/browser.mjs); the rows are
// then in the database and in the export. With GOLEM_E2E_SHOTS=DIR it
// leaves screenshots of each view at 1280 and 400 px wide there.
func TestBrowserAnnotation(t *testing.T) {
	node := needBrowser(t)
	ts := newTestServer(t, Options{}, EngineOptions{})
	ctx := context.Background()
	if _, err := EnsureAdmin(ctx, ts.store, "admin-password"); err != nil {
		t.Fatal(err)
	}
	adm, err := ts.store.Authenticate(ctx, "admin", "admin-password")
	if err != nil {
		t.Fatal(err)
	}
	const hostile = "Write as the <b>assistant</b>, **briefly**. <img src=x onerror=window.pwned=1> <script>window.pwned=1</script>\n\n" +
		"- [a link](javascript:window.pwned=1)\n- <a href=x onclick=window.pwned=1>b</a>\n\n```\n<svg onload=window.pwned=1>\n```"
	if err := ts.store.SetGuidelines(ctx, adm.ID, store.TaskDemonstrate, hostile); err != nil {
		t.Fatal(err)
	}
	carol, err := ts.store.CreateUser(ctx, store.NewUser{Username: "carol", Password: "carol-password"})
	if err != nil {
		t.Fatal(err)
	}
	prompts := `{"prompt": "<b>bold?</b> <img src=x onerror=alert(1)>"}` + "\n" +
		`{"messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Name a color."}]}` + "\n"
	if _, err := ts.store.ImportPrompts(ctx, strings.NewReader(prompts), store.ImportOptions{Name: "p.jsonl"}); err != nil {
		t.Fatal(err)
	}
	runNode(t, node, "browser.mjs", ts.URL, "carol", "carol-password", "admin", "admin-password")
	// The password carol changed, and the admin then disabled her.
	if _, err := ts.store.Authenticate(ctx, "carol", "carol-password-changed"); !errors.Is(err, store.ErrDisabled) {
		t.Errorf("carol after the browser: %v, want her new password right and her account disabled", err)
	}

	l, err := ts.store.ListByAnnotator(ctx, carol.ID)
	if err != nil {
		t.Fatal(err)
	}
	const demo = "Hello! I am golem's demonstration, written in a real browser."
	if len(l.Demonstrations) != 1 || l.Demonstrations[0].Response != demo {
		t.Fatalf("demonstrations in the store: %+v", l.Demonstrations)
	}
	if len(l.Rankings) != 2 {
		t.Fatalf("%d rankings in the store, want 2", len(l.Rankings))
	}
	// Ranked B, A, D, C, then edited in My labels to B, A, C, D.
	rk := l.Rankings[0]
	var ratings []int
	for _, r := range rk.Responses {
		ratings = append(ratings, r.Rating)
	}
	if rk.K() != 4 || !slices.Equal(rk.Order, []int{1, 0, 2, 3}) || !slices.Equal(rk.Responses[2].Flags, []string{"incorrect", "harmful"}) ||
		!slices.Equal(ratings, []int{5, 7, 0, 2}) {
		t.Fatalf("ranking in the store: order %v, flags %v, ratings %v", rk.Order, rk.Responses[2].Flags, ratings)
	}
	// The tie was undone (deleted); B won.
	if l.Rankings[1].K() != 2 || !slices.Equal(l.Rankings[1].Order, []int{1, 0}) || l.Rankings[1].Verdict != "" {
		t.Fatalf("comparison in the store: %+v", l.Rankings[1])
	}
	if g, err := ts.store.Guidelines(ctx); err != nil || g[store.TaskCompare] != "Pick the **kinder** answer." {
		t.Errorf("guidelines after the admin's edit: %q, %v", g, err)
	}
	// golem export's output holds them.
	dir := t.TempDir()
	for kind, want := range map[store.ExportKind]string{
		store.ExportSFT:         demo,
		store.ExportRankings:    `"ranking":[1,0,2,3],"ratings":[5,7,0,2]`,
		store.ExportPreferences: runePrefix(rk.Responses[1].Content, 8),
	} {
		path := filepath.Join(dir, string(kind)+".jsonl")
		n, err := store.ExportFile(ctx, ts.dsn, kind, path) // what golem export runs
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		if n == 0 || !(strings.Contains(string(b), jsonText(want)) || decodedContains(t, b, want)) {
			t.Errorf("export %s: %d lines without %q:\n%s", kind, n, want, b)
		}
	}
}

// A real browser chats (serve/e2e/chat.mjs): Max tokens starts at what
// fits, Enter sends and Shift+Enter does not, a history longer than the
// context is trimmed and answered, Regenerate, Stop, a failed turn that
// leaves no empty answer, an error cleared by the next success, axe-core's
// WCAG 2 AA rules, and the Markdown renderer against hostile input.
func TestBrowserChat(t *testing.T) {
	node := needBrowser(t)
	ts := newTestServerWith(t, "sqlite:"+filepath.Join(t.TempDir(), "labels.db"), Options{}, EngineOptions{}, "llama")
	if _, err := ts.store.CreateUser(context.Background(), store.NewUser{Username: "erin", Password: "erin-password"}); err != nil {
		t.Fatal(err)
	}
	runNode(t, node, "chat.mjs", ts.URL, "erin", "erin-password")
}

// needBrowser is needNode for the browser scripts: playwright-core and
// chromium ($CHROMIUM, by default /usr/bin/chromium).
func needBrowser(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("a headless-Chromium test: go test -short leaves it to the full run (CI)")
	}
	node := needNode(t, "playwright-core")
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		shared.Missing(t, chromium+" missing: run .ci/e2e-deps.sh")
	}
	return node
}

// With a model that gives the same answer every time, a real browser is
// told there is nothing to rank or compare, and skips from prompt to
// prompt in every task; the skips are in the store.
func TestBrowserSkip(t *testing.T) {
	node := needBrowser(t)
	ts := newTestServerWith(t, "sqlite:"+filepath.Join(t.TempDir(), "labels.db"), Options{}, EngineOptions{}, "same")
	ctx := context.Background()
	dave, err := ts.store.CreateUser(ctx, store.NewUser{Username: "dave", Password: "dave-password"})
	if err != nil {
		t.Fatal(err)
	}
	prompts := `{"prompt": "Say yes."}` + "\n" + `{"prompt": "Say no."}` + "\n"
	if _, err := ts.store.ImportPrompts(ctx, strings.NewReader(prompts), store.ImportOptions{Name: "p.jsonl"}); err != nil {
		t.Fatal(err)
	}
	runNode(t, node, "skip.mjs", ts.URL, "dave", "dave-password")
	for _, task := range []store.Task{store.TaskRank, store.TaskCompare} {
		if p, err := ts.store.NextPrompt(ctx, dave.ID, task); err == nil {
			t.Errorf("after skipping both prompts, next %s prompt is %d", task, p.ID)
		}
	}
	if p, err := ts.store.Progress(ctx, dave.ID); err != nil || p.Skipped != 3 || p.Rankings != 0 {
		t.Errorf("progress %+v, %v; want 3 skips and no ranking", p, err)
	}
}

// runePrefix returns the first n characters of s.
func runePrefix(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// decodedContains reports whether a string inside any JSON line of b
// contains want (model answers hold control characters that JSON escapes).
func decodedContains(t *testing.T, b []byte, want string) bool {
	var walk func(v any) bool
	walk = func(v any) bool {
		switch v := v.(type) {
		case string:
			return strings.Contains(v, want)
		case []any:
			for _, x := range v {
				if walk(x) {
					return true
				}
			}
		case map[string]any:
			for _, x := range v {
				if walk(x) {
					return true
				}
			}
		}
		return false
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var v any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("export line %q: %v", line, err)
		}
		if walk(v) {
			return true
		}
	}
	return false
}

// jsonText returns s as it appears inside a JSON string (quotes are left
// alone when s is already JSON).
func jsonText(s string) string {
	if strings.HasPrefix(s, `"`) {
		return s
	}
	return strings.NewReplacer(`"`, `\"`, "\n", `\n`).Replace(s)
}

// A web page on another port of localhost, and one on an origin allowed
// with --cors-origin, call both APIs from headless Chromium (the chat POST
// needs a preflight: JSON and an API key); the browser keeps the answers
// from a page on an origin not allowed.
func TestBrowserCORS(t *testing.T) {
	node := needBrowser(t)
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<!doctype html><title>app</title><h1>another app</h1>")
	}))
	defer page.Close()
	_, port, _ := net.SplitHostPort(page.Listener.Addr().String())
	ts := newTestServerWith(t, "sqlite:"+filepath.Join(t.TempDir(), "c.db"),
		Options{APIKey: "k3y", CORSOrigins: []string{"http://allowed.test:" + port}}, EngineOptions{}, "gpt2")
	out := runNode(t, node, "cors.mjs", ts.URL, port, "k3y", "tiny-gpt2")
	if !strings.Contains(out, `"ok":true`) {
		t.Fatal(out)
	}
}

// The official openai and ollama packages get structured output
// (json_schema, json_object, Ollama's format) from a random model, and
// every answer validates against its schema (santhosh-tekuri/jsonschema);
// and a forced tool call makes the round trip: the client parses the
// call, the script runs it and sends the result back as a tool message,
// and the model answers (a random model: the answer is not expected to
// use the result).
func TestStructuredClients(t *testing.T) {
	if testing.Short() {
		t.Skip("full run only (go test ./...): another node process with the official clients (TestOpenAIClient and TestOllamaClient run them under -short); the routes' structured output and tool calls are TestOpenAIJSONSchema's, TestOllamaFormat's, TestOpenAIForcedToolCall's and TestOpenAIToolCallStream's")
	}
	node := needNode(t, "openai", "ollama")
	ts := newTestServerWith(t, "sqlite:"+filepath.Join(t.TempDir(), "s.db"), Options{}, EngineOptions{}, "llama")
	out := runNode(t, node, "structured.mjs", ts.URL, "tiny-llama", personSchema)
	var res struct {
		OK      bool
		Answers []string
	}
	if err := json.Unmarshal([]byte(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]), &res); err != nil || !res.OK || len(res.Answers) != 8 {
		t.Fatalf("%v: %s", err, out)
	}
	for i, a := range res.Answers {
		if err := validate(t, personSchema, a); err != nil {
			t.Errorf("answer %d %q: %v", i, a, err)
		}
	}
}

// calcModel is demo.ToolModel's tiny model that calls the calculator,
// trained once for the package's tests (about a minute of CPU).
func calcModel(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("trains a model for about a minute: go test -short leaves it to the full run (CI)")
	}
	toolModel.once.Do(func() {
		out := filepath.Join(testDir, "calc")
		toolModel.score, toolModel.err = demo.ToolModel(context.Background(), demo.ToolModelOptions{NewBackend: func() backend.Backend { return cpu.New() }, Out: out, Log: io.Discard})
		toolModel.dir = filepath.Join(out, "sft")
	})
	if toolModel.err != nil {
		t.Fatal(toolModel.err)
	}
	// What it learned, on 50 held-out questions (one run: 0.92 and 0.82).
	if sc := toolModel.score; sc.Calls < 0.85 || sc.Success < 0.7 {
		t.Errorf("the calculator model: right calls %.2f, round trips right %.2f on %d held-out questions; want at least 0.85 and 0.7", sc.Calls, sc.Success, sc.Tasks)
	}
	return toolModel.dir
}

var toolModel struct {
	once  sync.Once
	dir   string
	score demo.ToolUse
	err   error
}

// The tool call round trip with the official openai (whole and streamed)
// and ollama clients and tool_choice "auto": a model trained on calculator
// round trips decides to call the calculator on held-out questions (no
// constraint), the client runs the call and sends the result back as a
// tool message, and the final answer holds the result. The calls'
// arguments must evaluate to what the question asks.
func TestToolCallRoundTrip(t *testing.T) {
	node := needNode(t, "openai", "ollama")
	dir := calcModel(t)
	ts, _ := newLazyServer(t, Options{}, ModelSpec{"calc", dir})
	// The client offers the calculator as the model learned it.
	tools, _, err := synth.Tools([]string{"calculator"})
	if err != nil {
		t.Fatal(err)
	}
	var questions, want []string
	for _, tk := range synth.MustTasks(synth.TaskOptions{Seed: 11, N: 40, Kinds: []string{synth.KindCalculator}, Tools: []string{"calculator"}, Split: synth.SplitHeldout}) {
		if tk.Want.Match == synth.MatchToolCall && len(questions) < 3 {
			questions, want = append(questions, tk.User()), append(want, tk.Want.Values[0])
		}
	}
	out := runNode(t, node, "toolcall.mjs", append([]string{ts.URL, "calc", string(tools)}, questions...)...)
	var res struct {
		OK    bool
		Trips []struct{ Client, Question, Expression, Result, Answer string }
	}
	if err := json.Unmarshal([]byte(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]), &res); err != nil || !res.OK || len(res.Trips) != 3 {
		t.Fatalf("%v: %s", err, out)
	}
	for i, trip := range res.Trips {
		v, err := synth.Calculate(trip.Expression)
		if err != nil || synth.FormatNumber(v) != want[i] || trip.Result != want[i] {
			t.Errorf("%s: %q: the call's expression %q is %v (%v), the client's result %q; the question's answer is %s", trip.Client, trip.Question, trip.Expression, v, err, trip.Result, want[i])
		}
		if !strings.Contains(trip.Answer, want[i]) {
			t.Errorf("%s: %q: the final answer %q does not hold the tool's result %s", trip.Client, trip.Question, trip.Answer, want[i])
		}
	}
}

// The official openai and ollama packages send a shapes-world PNG to a
// served LLaVA model and get its answers, streamed and not: the greedy
// answer golem generate --image gives; a text-only model refuses the
// image as each client's typed 400 naming the field (TestBadImages has
// the other refusals).
func TestVisionClients(t *testing.T) {
	if testing.Short() {
		t.Skip("full run only (go test ./...): another node process with the official clients (TestOpenAIClient and TestOllamaClient run them under -short); image prompts on the routes are TestImageChatEqualsGenerate's, TestBadImages' and TestCLIPEmbeddings'")
	}
	node := needNode(t, "openai", "ollama")
	var engines []*Engine
	for _, arch := range []string{"llava", "llama"} {
		w, err := LoadWeights(cpu.New(), tinyDir(t, arch))
		if err != nil {
			t.Fatal(err)
		}
		engines = append(engines, NewEngine("tiny-"+arch, tinyDir(t, arch), w, EngineOptions{}))
	}
	args := []string{}
	if shared.Dir() != "" { // CLIP's embeddings too, on the clip-tiny fixture
		dir := clipFolder(t)
		w, err := LoadWeights(cpu.New(), dir)
		if err != nil {
			t.Fatal(err)
		}
		engines = append(engines, NewEngine("clip", dir, w, EngineOptions{}))
		args = append(args, "clip")
	}
	for _, e := range engines {
		t.Cleanup(e.Close)
	}
	ts := serveEngines(t, "sqlite:"+filepath.Join(t.TempDir(), "s.db"), Options{}, engines...)
	png := shapePNG(t, 2)
	file := filepath.Join(t.TempDir(), "scene.png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatal(err)
	}
	out := runNode(t, node, "vision.mjs", append([]string{ts.URL, "tiny-llava", "tiny-llama", file}, args...)...)
	var res struct {
		OK             bool
		OpenAI, Ollama string
		CLIP           *struct{ OpenAI, Ollama [][]float32 }
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil || !res.OK {
		t.Fatalf("%v: %s", err, out)
	}
	if want := imageAnswer(t, tinyDir(t, "llava"), png, "What colour is the circle?", 8); res.OpenAI != want || res.Ollama != want {
		t.Errorf("the clients got %q (openai) and %q (ollama); golem generate --image answers %q", res.OpenAI, res.Ollama, want)
	}
	if len(args) > 0 {
		if res.CLIP == nil || len(res.CLIP.OpenAI) != 2 || len(res.CLIP.Ollama) != 2 {
			t.Fatalf("CLIP embeddings through the clients: %s", out)
		}
		// The same text and image through both clients: the same vectors.
		for i := range 2 {
			var dot float64
			for j, x := range res.CLIP.OpenAI[i] {
				dot += float64(x) * float64(res.CLIP.Ollama[i][j])
			}
			if math.Abs(dot-1) > 1e-5 {
				t.Errorf("CLIP embedding %d: cosine %.6f between the openai and ollama clients'", i, dot)
			}
		}
	}
}

// The annotation flow with an image prompt in headless Chromium
// (serve/e2e/image.mjs): the admin imports a JSONL naming an image and
// uploads the image with it, an annotator sees the image loaded beside the
// prompt, writes a demonstration, ranks three answers written by hand
// (the served models read text only) and compares two about the second
// prompt; golem export's files then hold the records with the image,
// whose SHA-256 matches the uploaded file's.
func TestBrowserImage(t *testing.T) {
	node := needBrowser(t)
	ts := newTestServerWith(t, "sqlite:"+filepath.Join(t.TempDir(), "labels.db"), Options{}, EngineOptions{}, "llama")
	ctx := context.Background()
	if _, err := EnsureAdmin(ctx, ts.store, "admin-password"); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.store.CreateUser(ctx, store.NewUser{Username: "fay", Password: "fay-password"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	red := redPNG(t)
	sum := sha256.Sum256(red)
	key := hex.EncodeToString(sum[:])
	os.MkdirAll(filepath.Join(dir, "pics"), 0o755)
	imagePath := filepath.Join(dir, "pics", "red.png")
	promptsPath := filepath.Join(dir, "prompts.jsonl")
	if err := os.WriteFile(imagePath, red, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(promptsPath, []byte(`{"prompt": "What colour is this?", "images": ["pics/red.png"]}`+"\n"+
		`{"prompt": "Is this a cat?", "images": ["pics/red.png"]}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := runNode(t, node, "image.mjs", ts.URL, "admin", "admin-password", "fay", "fay-password", promptsPath, imagePath)
	if !strings.Contains(out, `"demoImage":[6,4]`) || !strings.Contains(out, `"rankImage":[6,4]`) || !strings.Contains(out, `"compareImage":[6,4]`) {
		t.Errorf("the image's natural size in the browser: %s; want 6 x 4", out)
	}

	exp := t.TempDir()
	img := "images/" + key + ".png"
	for _, c := range []struct {
		kind store.ExportKind
		want string
	}{
		{store.ExportSFT, `{"messages":[{"role":"user","content":"What colour is this?"},{"role":"assistant","content":"It is red."}],"images":["` + img + `"]}` + "\n"},
		{store.ExportPreferences, `"chosen":[{"role":"assistant","content":"It is red."}],"rejected":[{"role":"assistant","content":"It is blue."}],"images":["` + img + `"]}`},
		// The comparison: B (written second) is better.
		{store.ExportPreferences, `"content":"Is this a cat?"}],"chosen":[{"role":"assistant","content":"No, a red rectangle."}],"rejected":[{"role":"assistant","content":"Yes, a cat."}],"images":["` + img + `"]}`},
	} {
		path := filepath.Join(exp, string(c.kind)+".jsonl")
		if _, err := store.ExportFile(ctx, ts.dsn, c.kind, path); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(path); !strings.Contains(string(b), c.want) {
			t.Errorf("export %s:\n%s\nwant %s", c.kind, b, c.want)
		}
	}
	b, err := os.ReadFile(filepath.Join(exp, img))
	if got := sha256.Sum256(b); err != nil || hex.EncodeToString(got[:]) != key {
		t.Errorf("the exported image %s: %v, sha256 %x; want %s", img, err, got, key)
	}
}
