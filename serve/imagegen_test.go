package serve

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golem-ml/golem/internal/testmodels"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/generate/imagine"
	"github.com/golem-ml/golem/model/dalle"
)

// tinyDalleDir saves a small text-to-image model with random weights (16
// text tokens, a 4x4 grid of 64 codes, the tiny VQ-VAE at 16 pixels, as
// model/dalle's tests build it) and returns its folder.
func tinyDalleDir(t *testing.T) string {
	t.Helper()
	return tinyDalleDirSized(t, 16)
}

// tinyDalleDirSized is tinyDalleDir with images of side pixels (a grid
// of side/4 squared image tokens).
func tinyDalleDirSized(t *testing.T, side int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "t2i")
	if err := testmodels.Dalle(t, cpu.New(), side, 7).Save(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// imageServer serves the tiny text-to-image model as "tiny-t2i" beside
// the tiny GPT-2, and returns the model's folder.
func imageServer(t *testing.T) (*testServer, string) {
	t.Helper()
	return imageServerWith(t, Options{}, 16)
}

// imageServerWith is imageServer with the server's options and the
// model's image side in pixels.
func imageServerWith(t *testing.T, o Options, side int) (*testServer, string) {
	t.Helper()
	return imageServerOn(t, "sqlite:"+filepath.Join(t.TempDir(), "labels.db"), o, side)
}

// imageServerOn is imageServerWith on the store dsn.
func imageServerOn(t *testing.T, dsn string, o Options, side int) (*testServer, string) {
	t.Helper()
	dir := tinyDalleDirSized(t, side)
	w, err := LoadWeights(cpu.New(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if w.Dalle == nil || w.Model != nil {
		t.Fatalf("%s loaded as %+v, want a text-to-image model", dir, w)
	}
	info, err := folderInfo(dir)
	if err != nil || info.config.Arch != dalle.ModelType || info.params != paramCount(w) {
		t.Fatalf("folderInfo(%s) = %+v, %v; want a golem_dalle model's of %d parameters (its VQ-VAE's too)", dir, info, err, paramCount(w))
	}
	e := NewEngine("tiny-t2i", dir, w, EngineOptions{})
	t.Cleanup(e.Close)
	g, err := LoadWeights(cpu.New(), tinyDir(t, "gpt2"))
	if err != nil {
		t.Fatal(err)
	}
	ge := NewEngine("tiny-gpt2", tinyDir(t, "gpt2"), g, EngineOptions{})
	t.Cleanup(ge.Close)
	return serveEngines(t, dsn, o, e, ge), dir
}

// TestImagesGenerations: POST /v1/images/generations answers n PNGs of the
// model's size as base64, the same for the same seed.
func TestImagesGenerations(t *testing.T) {
	ts, dir := imageServer(t)
	if status, body := do(t, nil, "GET", ts.URL+"/v1/models", nil, nil); status != 200 || !strings.Contains(string(body), `"tiny-t2i"`) {
		t.Fatalf("models: %d %s", status, body)
	}
	gen := func(req string) [][]byte {
		t.Helper()
		status, body := do(t, nil, "POST", ts.URL+"/v1/images/generations", []byte(req), nil)
		if status != 200 {
			t.Fatalf("%s: %d %s", req, status, body)
		}
		var res struct {
			Created int64
			Data    []map[string]string
		}
		if err := json.Unmarshal(body, &res); err != nil {
			t.Fatal(err)
		}
		if res.Created < 1e9 {
			t.Errorf("created %d, want a unix time", res.Created)
		}
		var pngs [][]byte
		for i, d := range res.Data {
			if len(d) != 1 {
				t.Errorf("data[%d] has %d fields, want b64_json alone", i, len(d))
			}
			b, err := base64.StdEncoding.DecodeString(d["b64_json"])
			if err != nil {
				t.Fatalf("data[%d]: %v", i, err)
			}
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("data[%d]: not a PNG: %v", i, err)
			}
			if s := img.Bounds().Size(); s.X != 16 || s.Y != 16 {
				t.Errorf("data[%d] is %v, want 16x16", i, s)
			}
			pngs = append(pngs, b)
		}
		return pngs
	}
	a := gen(`{"model":"tiny-t2i","prompt":"a red circle","n":3,"size":"16x16","response_format":"b64_json","seed":5}`)
	if len(a) != 3 {
		t.Fatalf("%d images, want 3", len(a))
	}
	if bytes.Equal(a[0], a[1]) && bytes.Equal(a[1], a[2]) {
		t.Error("the 3 samples are the same image: each should draw with its own seed")
	}
	b := gen(`{"model":"tiny-t2i","prompt":"a red circle","n":3,"seed":5}`)
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Errorf("image %d differs for the same seed", i)
		}
	}
	if d := gen(`{"model":"tiny-t2i","prompt":""}`); len(d) != 1 { // n defaults to 1, size to the model's
		t.Errorf("%d images by default, want 1", len(d))
	}
	// Ollama's lists show it, loaded, its size with its VQ-VAE's weights.
	var tags struct {
		Models []struct {
			Name string
			Size int64
		}
	}
	_, body := do(t, nil, "GET", ts.URL+"/api/tags", nil, nil)
	json.Unmarshal(body, &tags)
	var files int64
	for _, f := range []string{"model.safetensors", "vq/model.safetensors"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		files += fi.Size()
	}
	if len(tags.Models) == 0 || tags.Models[0].Name != "tiny-t2i:latest" || tags.Models[0].Size != files {
		t.Errorf("/api/tags: %s, want tiny-t2i of %d bytes", body, files)
	}
	for _, path := range []string{"/api/tags", "/api/ps"} {
		if status, body := do(t, nil, "GET", ts.URL+path, nil, nil); status != 200 || !strings.Contains(string(body), `"tiny-t2i:latest"`) {
			t.Errorf("%s: %d %s", path, status, body)
		}
	}
}

// TestImagesGenerationsBadInput: each bad request is a 400 in OpenAI's
// error shape naming its param, and a text-to-image model refuses text.
func TestImagesGenerationsBadInput(t *testing.T) {
	ts, _ := imageServer(t)
	long := strings.Repeat("a red circle and a blue square ", 8)
	for _, c := range []struct{ req, param, want string }{
		{`{"model":"tiny-t2i","prompt":"` + long + `"}`, "prompt", "longer than the model's text context"},
		{`{"model":"tiny-t2i","prompt":"` + strings.Repeat("x", 100000) + `"}`, "prompt", "maximum context length is 16 tokens"},
		{`{"model":"tiny-t2i","prompt":"a","n":0}`, "n", `"n" is 0`},
		{fmt.Sprintf(`{"model":"tiny-t2i","prompt":"a","n":%d}`, imagine.MaxN+1), "n", fmt.Sprintf("want 1 to %d", imagine.MaxN)},
		{`{"model":"tiny-t2i","prompt":"a","size":"1024x1024"}`, "size", `makes 16x16 images only`},
		{`{"model":"tiny-t2i","prompt":"a","response_format":"url"}`, "response_format", `"b64_json" only`},
		{`{"model":"tiny-t2i"}`, "prompt", `"prompt" missing`},
		{`{"model":"tiny-t2i","prompt":"a","style":"vivid"}`, "style", "style"},
		{`{"model":"tiny-gpt2","prompt":"a"}`, "model", "does not make images"},
	} {
		status, body := do(t, nil, "POST", ts.URL+"/v1/images/generations", []byte(c.req), nil)
		var e struct {
			Error struct{ Message, Type, Param string }
		}
		json.Unmarshal(body, &e)
		if status != 400 || e.Error.Param != c.param || e.Error.Type != "invalid_request_error" || !strings.Contains(e.Error.Message, c.want) {
			t.Errorf("%.80s: %d %s, want a 400 naming %q saying %q", c.req, status, body, c.param, c.want)
		}
	}
	for _, c := range []struct{ path, req string }{
		{"/v1/chat/completions", `{"model":"tiny-t2i","messages":[{"role":"user","content":"hi"}]}`},
		{"/v1/completions", `{"model":"tiny-t2i","prompt":"hi"}`},
		{"/v1/embeddings", `{"model":"tiny-t2i","input":"hi"}`},
		{"/api/chat", `{"model":"tiny-t2i","messages":[{"role":"user","content":"hi"}],"stream":false}`},
		{"/api/embed", `{"model":"tiny-t2i","input":"hi"}`},
		{"/api/generate", `{"model":"tiny-t2i","prompt":"hi","stream":false}`},
		{"/api/show", `{"model":"tiny-t2i"}`},
	} {
		status, body := do(t, nil, "POST", ts.URL+c.path, []byte(c.req), nil)
		if status != 400 || !strings.Contains(string(body), "an image model: use /v1/images/generations") {
			t.Errorf("%s: %d %s, want a 400 saying it is an image model", c.path, status, body)
		}
	}
	// The server still answers.
	if status, body := do(t, nil, "POST", ts.URL+"/v1/images/generations", []byte(`{"model":"tiny-t2i","prompt":"a blue square","seed":1}`), nil); status != 200 {
		t.Fatalf("after bad input: %d %s", status, body)
	}
}

// The official openai package's client.images.generate (serve/e2e/images.mjs)
// gets the images a plain request with the same seed gets, and its
// BadRequestErrors name the param.
func TestOpenAIClientImages(t *testing.T) {
	if testing.Short() {
		t.Skip("full run only (go test ./...): another node process with the official openai client (TestOpenAIClient runs it under -short); the route's images and refusals are TestImagesGenerations' and TestImagesGenerationsBadInput's")
	}
	node := needNode(t, "openai")
	ts, _ := imageServer(t)
	out := runNode(t, node, "images.mjs", ts.URL, "tiny-t2i", "16x16")
	var res struct {
		OK     bool
		Images []string
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil || !res.OK || len(res.Images) != 2 {
		t.Fatalf("%v: %s", err, out)
	}
	status, body := do(t, nil, "POST", ts.URL+"/v1/images/generations", []byte(`{"model":"tiny-t2i","prompt":"a red circle","n":2,"seed":5}`), nil)
	var want struct{ Data []map[string]string }
	if err := json.Unmarshal(body, &want); status != 200 || err != nil || len(want.Data) != 2 {
		t.Fatalf("%d %s", status, body)
	}
	for i, b64 := range res.Images {
		b, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatal(err)
		}
		if img, err := png.Decode(bytes.NewReader(b)); err != nil || img.Bounds().Dx() != 16 {
			t.Fatalf("image %d: %v", i, err)
		}
		if b64 != want.Data[i]["b64_json"] {
			t.Errorf("image %d from the openai client differs from a plain request's with the same seed", i)
		}
	}
}

// TestImagesCancel: a client that goes away while its images are drawn
// stops the drawing. The request log counts the image tokens drawn: all
// n x 256 for an answered request of a 16 x 16 grid, and, for one whose
// real HTTP client gives up a third of the way through, a whole number of
// steps (n tokens each) short of it; its line is written once the drawing
// has stopped, and the engine then draws the next request.
func TestImagesCancel(t *testing.T) {
	var mu sync.Mutex
	logs := map[string]RequestLog{}
	o := Options{LogRequest: func(l RequestLog) {
		mu.Lock()
		logs[l.ID] = l
		mu.Unlock()
	}}
	ts, _ := imageServerWith(t, o, 64)
	const n, steps = 16, 16 * 16
	body := fmt.Sprintf(`{"model":"tiny-t2i","prompt":"a red circle","n":%d,"seed":1}`, n)
	logged := func(id string) RequestLog {
		t.Helper()
		for range 500 {
			mu.Lock()
			l, ok := logs[id]
			mu.Unlock()
			if ok {
				return l
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("no log line for request %q", id)
		return RequestLog{}
	}
	var postBody func(time.Duration, string) (*http.Response, error)
	post := func(timeout time.Duration) (*http.Response, error) { return postBody(timeout, body) }
	postBody = func(timeout time.Duration, body string) (*http.Response, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/images/generations", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return resp, err
	}
	// Two whole requests (the first warms up): the second's time is
	// what a whole drawing takes. Under -short one (a cold one's time
	// only makes the first wait longer: the shorter waits follow).
	var full time.Duration
	whole := 2
	if testing.Short() {
		whole = 1
	}
	for range whole {
		began := time.Now()
		resp, err := post(time.Minute)
		full = time.Since(began)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("a whole request: %v, %v", resp, err)
		}
		if l := logged(resp.Header.Get("X-Request-Id")); l.AnswerTokens != n*steps || l.Status != 200 {
			t.Fatalf("a whole request's log: %d image tokens, status %d; want %d, 200", l.AnswerTokens, l.Status, n*steps)
		}
		t.Logf("a whole request: %v", full)
	}
	// The client gives up a third of the way (sooner when the drawing
	// was quicker this time: a server that finished first logs 200).
	var l RequestLog
	gaveUp := time.Duration(0)
	for _, d := range []time.Duration{full / 3, full / 10, full / 30} {
		mu.Lock()
		seen := map[string]bool{}
		for id := range logs {
			seen[id] = true
		}
		mu.Unlock()
		post(d)
		l = RequestLog{}
		for i := 0; i < 500 && l.ID == ""; i++ {
			time.Sleep(10 * time.Millisecond)
			mu.Lock()
			for id, x := range logs {
				if !seen[id] {
					l = x
				}
			}
			mu.Unlock()
		}
		if l.ID == "" {
			t.Fatalf("no log line for the request given %v", d)
		}
		if l.Status == 499 && l.AnswerTokens < n*steps {
			gaveUp = d
			break
		}
		// Under load the server may finish the drawing before it hears
		// of the client's going (a 499 with every token drawn): try a
		// shorter wait, as for a request answered in time.
		t.Logf("the request given %v of the %v a whole one took drew %d of %d tokens (%d); trying with less", d, full, l.AnswerTokens, n*steps, l.Status)
	}
	if gaveUp == 0 {
		t.Fatalf("every request drew all its tokens although its client gave up sooner each time (last: status %d)", l.Status)
	}
	if l.AnswerTokens >= n*steps || l.AnswerTokens%n != 0 {
		t.Errorf("the cancelled request drew %d image tokens; want whole steps of %d, fewer than %d", l.AnswerTokens, n, n*steps)
	}
	t.Logf("a whole request drew %d tokens in %v; the one cancelled after %v drew %d (%d steps of %d)", n*steps, full, gaveUp, l.AnswerTokens, l.AnswerTokens/n, steps)
	// The server still draws: all n images (one under -short).
	after := body
	if testing.Short() {
		after = `{"model":"tiny-t2i","prompt":"a red circle","n":1,"seed":1}`
	}
	if resp, err := postBody(time.Minute, after); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the request after: %v, %v", resp, err)
	}
}
