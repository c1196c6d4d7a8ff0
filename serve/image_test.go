package serve

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data/synth/shapes"
	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/generate"
	"github.com/golem-ml/golem/internal/shared"
	"github.com/golem-ml/golem/model/clip"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/llava"
	"github.com/golem-ml/golem/model/load"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// shapePNG is scene i of the shapes world's test split as a PNG.
func shapePNG(t testing.TB, i int) []byte {
	t.Helper()
	b, err := vision.EncodePNG(shapes.Generate(1, shapes.Test, i).Render(32))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func dataURL(b []byte) string { return "data:image/png;base64," + base64.StdEncoding.EncodeToString(b) }

// imageAnswer is generate.ImageText's greedy answer (what golem generate
// --image prints) to question about png, on the LLaVA folder dir.
func imageAnswer(t *testing.T, dir string, png []byte, question string, maxTokens int) string {
	t.Helper()
	w, err := load.Model(cpu.New(), dir, load.Options{}) // as golem generate --image loads it
	if err != nil {
		t.Fatal(err)
	}
	im, err := vision.Decode("scene", png, vision.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	v := w.VLM.Config.Vision
	pix, err := vision.CLIPPixels(im, v.Image, v.Channels)
	if err != nil {
		t.Fatal(err)
	}
	out, err := generate.ImageText(w.VLM, w.Tok, pix, llava.UserTurn(llava.Placeholder+"\n"+question), generate.Options{MaxTokens: maxTokens}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// As JSON carries it: a byte that is not UTF-8 becomes U+FFFD.
	b, _ := json.Marshal(out)
	json.Unmarshal(b, &out)
	return out
}

// A LLaVA folder served: image requests on both APIs, sent together with
// text requests so that they decode in one batch, answer greedily what
// golem generate --image answers (the same text, through
// generate.ImageText), and usage counts the image's tokens.
func TestImageChatEqualsGenerate(t *testing.T) {
	ts := newTestServerWith(t, "sqlite:"+filepath.Join(t.TempDir(), "s.db"), Options{}, EngineOptions{}, "llava")
	const maxTok = 12
	questions := []string{"What colour is the circle?", "How many shapes are there?", "Describe the image."}
	type call struct {
		path, body string
		want       string // "" for a text request
	}
	var calls []call
	wants := map[string]bool{}
	for i, q := range questions {
		png := shapePNG(t, i)
		want := imageAnswer(t, tinyDir(t, "llava"), png, q, maxTok)
		// A random tiny model's answer may not change with every image:
		// one of a few others must change it.
		for k := 5; k < 9 && !wants["the image changes the answer"]; k++ {
			if other := imageAnswer(t, tinyDir(t, "llava"), shapePNG(t, i+k), q, maxTok); other != want {
				wants["the image changes the answer"] = true
			}
		}
		// The image part first, then the text: "<image>\n" + q, as golem
		// generate --image asks it.
		oai, _ := json.Marshal(map[string]any{"model": "tiny-llava", "temperature": 0, "max_tokens": maxTok,
			"messages": []any{map[string]any{"role": "user", "content": []any{
				map[string]any{"type": "image_url", "image_url": map[string]any{"url": dataURL(png), "detail": "low"}},
				map[string]any{"type": "text", "text": q}}}}})
		oll, _ := json.Marshal(map[string]any{"model": "tiny-llava", "stream": false, "options": map[string]any{"temperature": 0, "num_predict": maxTok},
			"messages": []any{map[string]any{"role": "user", "content": q, "images": []string{base64.StdEncoding.EncodeToString(png)}}}})
		gen, _ := json.Marshal(map[string]any{"model": "tiny-llava", "stream": false, "prompt": q, "images": []string{base64.StdEncoding.EncodeToString(png)},
			"options": map[string]any{"temperature": 0, "num_predict": maxTok}})
		calls = append(calls, call{"/v1/chat/completions", string(oai), want}, call{"/api/chat", string(oll), want}, call{"/api/generate", string(gen), want},
			call{"/v1/chat/completions", fmt.Sprintf(`{"model":"tiny-llava","max_tokens":%d,"temperature":0,"messages":[{"role":"user","content":"%s"}]}`, maxTok, q), ""})
	}
	if !wants["the image changes the answer"] {
		t.Error("other images give the same answers: the test could not tell whether the image is seen")
	}
	var wg sync.WaitGroup
	for _, c := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, body := do(t, nil, "POST", ts.URL+c.path, []byte(c.body), nil)
			if status != 200 {
				t.Errorf("%s: %d %s", c.path, status, body)
				return
			}
			var r struct {
				Choices []struct {
					Message struct{ Content string }
				}
				Message  struct{ Content string }
				Response string
				Usage    struct {
					PromptTokens int `json:"prompt_tokens"`
				}
				PromptEvalCount int `json:"prompt_eval_count"`
			}
			json.Unmarshal(body, &r)
			got := r.Message.Content + r.Response
			if len(r.Choices) > 0 {
				got = r.Choices[0].Message.Content
			}
			prompt := max(r.Usage.PromptTokens, r.PromptEvalCount)
			if c.want == "" {
				return
			}
			if got != c.want {
				t.Errorf("%s: served %q, golem generate --image %q", c.path, got, c.want)
			}
			if prompt < 4+5 { // the image's 4 tokens and the turn's text
				t.Errorf("%s: prompt tokens %d leave out the image's", c.path, prompt)
			}
		}()
	}
	wg.Wait()
	e := ts.srv.models["tiny-llava"].e
	if st := e.Stats(); st.MaxActive < 2 {
		t.Errorf("at most %d sequences decoded together; want image and text requests in one batch", st.MaxActive)
	}
}

// Image prompts submitted to the engine together with text prompts get
// the token ids generate gets for each alone (greedy), on the float32 and
// the float16 cache: the image's prefix as PromptEmbeds makes it and the
// prefill generate.Tokens runs.
func TestEngineImageEqualsAlone(t *testing.T) {
	for _, f32 := range []bool{true, false} {
		w, err := LoadWeights(cpu.New(), tinyDir(t, "llava"))
		if err != nil {
			t.Fatal(err)
		}
		e := NewEngine("tiny-llava", "", w, EngineOptions{MaxBatch: 8, FloatKV: f32})
		defer e.Close()
		type req struct {
			img    *ImagePrompt
			prompt []int
			want   []int
		}
		var reqs []req
		v := w.VLM.Config.Vision
		for i, q := range []string{"What colour is it?", "Describe the image.", "Is there a square?", "hello", "A circle"} {
			text := llava.UserTurn(llava.Placeholder + "\n" + q)
			before, after, _ := strings.Cut(text, llava.Placeholder)
			im, _ := vision.Decode("scene", shapePNG(t, i), vision.Limits{})
			pix, err := vision.CLIPPixels(im, v.Image, v.Channels)
			if err != nil {
				t.Fatal(err)
			}
			r := req{img: &ImagePrompt{Before: w.Tok.Encode(before), Pixels: pix}, prompt: w.Tok.EncodeWithSpecial(after)}
			o := generate.Options{MaxTokens: 16, StopIDs: w.Stop}
			if i >= 3 { // text prompts in the same batch
				r.img, r.prompt = nil, w.Tok.EncodeWithSpecial(q)
			} else if o.SoftPrompt, err = w.VLM.PromptEmbeds(r.img.Before, pix); err != nil {
				t.Fatal(err)
			}
			out, err := generate.Tokens(w.Model, [][]int{r.prompt}, o, nil)
			if err != nil {
				t.Fatal(err)
			}
			r.want = out[0]
			reqs = append(reqs, r)
		}
		got := make([][]int, len(reqs))
		// Hold the scheduler while the requests go in, so that they start
		// in one batch however slowly this goroutine runs (on a loaded
		// machine the first ones finished before the last were submitted).
		held, hold := make(chan struct{}), make(chan struct{})
		go e.Do(context.Background(), func(*Weights) { close(held); <-hold })
		<-held
		var wg sync.WaitGroup
		for i, r := range reqs {
			ch, err := e.SubmitImage(context.Background(), r.img, r.prompt, Sampling{MaxTokens: 16})
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				got[i], _ = collect(t, ch)
			}()
		}
		close(hold)
		wg.Wait()
		total := 0
		for i, r := range reqs {
			total += len(r.want)
			if !slices.Equal(got[i], r.want) {
				t.Errorf("f32 %v: request %d: served %v, alone %v", f32, i, got[i], r.want)
			}
		}
		if total < 20 {
			t.Errorf("only %d tokens in all; the comparison says little", total)
		}
		if st := e.Stats(); st.MaxActive < 4 {
			t.Errorf("f32 %v: at most %d sequences decoded together, want the image and text ones in one batch", f32, st.MaxActive)
		}
	}
}

// pngOf encodes an RGB image of w x h pixels.
func pngOf(t *testing.T, w, h int) []byte {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	m.Set(0, 0, color.RGBA{255, 0, 0, 255})
	var b bytes.Buffer
	// BestSpeed: the same pixels as Encode's, a fifth of its CPU (0.27 s
	// for 2049x2048 here).
	if err := (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Bad images are a 400 in each API's shape naming the field: a URL to
// fetch, a payload that is no image, corrupt base64, an image over the
// pixel bound (refused from its header), two images, and any image for a
// text-only model.
func TestBadImages(t *testing.T) {
	ts := newTestServerWith(t, "sqlite:"+filepath.Join(t.TempDir(), "s.db"), Options{}, EngineOptions{}, "llava", "gpt2")
	ok := dataURL(shapePNG(t, 0))
	big := dataURL(pngOf(t, 2049, 2048))
	part := func(url string) string {
		return `{"type":"image_url","image_url":{"url":"` + url + `"}}`
	}
	oai := func(model, parts string) string {
		return `{"model":"` + model + `","max_tokens":2,"messages":[{"role":"system","content":"be brief"},{"role":"user","content":[` + parts + `]}]}`
	}
	oll := func(model string, images ...string) string {
		b, _ := json.Marshal(map[string]any{"model": model, "stream": false, "messages": []any{map[string]any{"role": "user", "content": "hi", "images": images}}})
		return string(b)
	}
	b64 := func(u string) string { return u[strings.Index(u, ",")+1:] }
	cases := []struct {
		path, body, param, want string
	}{
		{"/v1/chat/completions", oai("tiny-llava", part("https://example.com/cat.png")), "messages[1].content[0].image_url", "golem fetches nothing: send the image as a data: URI"},
		{"/v1/chat/completions", oai("tiny-llava", part("file:///etc/passwd")), "messages[1].content[0].image_url", "golem fetches nothing"},
		{"/v1/chat/completions", oai("tiny-llava", part("data:text/plain;base64,aGVsbG8=")), "messages[1].content[0].image_url", "is not an image"},
		{"/v1/chat/completions", oai("tiny-llava", part("data:image/png;base64,aGVsbG8=")), "messages[1].content[0].image_url", "not a readable image"},
		{"/v1/chat/completions", oai("tiny-llava", part("data:image/png;base64,%%%")), "messages[1].content[0].image_url", "not base64"},
		{"/v1/chat/completions", oai("tiny-llava", `{"type":"text","text":"look"},`+part(big)), "messages[1].content[1].image_url", "2049x2048 pixels exceeds the limit of 4194304 pixels; refused before decoding"},
		{"/v1/chat/completions", oai("tiny-llava", part(ok)+`,`+part(ok)), "messages[1].content[1].image_url", "2 images in the conversation; model tiny-llava takes 1"},
		{"/v1/chat/completions", oai("tiny-gpt2", part(ok)), "messages[1].content[0].image_url", "model tiny-gpt2 is a text-only model and takes no images"},
		{"/api/chat", oll("tiny-llava", "%%%"), "messages[0].images[0]", "not base64"},
		{"/api/chat", oll("tiny-llava", "aGVsbG8="), "messages[0].images[0]", "not a readable image"},
		{"/api/chat", oll("tiny-llava", b64(big)), "messages[0].images[0]", "exceeds the limit"},
		{"/api/chat", oll("tiny-llava", b64(ok), b64(ok)), "messages[0].images[1]", "2 images"},
		{"/api/chat", oll("tiny-gpt2", b64(ok)), "messages[0].images[0]", "is a text-only model"},
		{"/api/generate", `{"model":"tiny-gpt2","prompt":"hi","images":["` + b64(ok) + `"]}`, "images[0]", "is a text-only model"},
	}
	for _, c := range cases {
		status, body := do(t, nil, "POST", ts.URL+c.path, []byte(c.body), nil)
		m := errorMessage(body)
		if status != 400 || !strings.HasPrefix(m, c.param+": ") || !strings.Contains(m, c.want) {
			t.Errorf("%s %.120s: %d %s; want a 400 naming %s: %q", c.path, c.body, status, body, c.param, c.want)
		}
		if strings.HasPrefix(c.path, "/v1/") {
			var e struct{ Error struct{ Param, Type string } }
			json.Unmarshal(body, &e)
			if e.Error.Param != c.param || e.Error.Type != "invalid_request_error" {
				t.Errorf("%s: OpenAI error param %q type %q, want %q invalid_request_error", c.body[:60], e.Error.Param, e.Error.Type, c.param)
			}
		}
	}
	// An image URL the test itself serves: still a 400, and no request
	// reaches it, on the chat APIs or on embeddings.
	var hits atomic.Int64
	pics := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "image/png")
		w.Write(shapePNG(t, 0))
	}))
	defer pics.Close()
	for _, c := range []struct{ path, body string }{
		{"/v1/chat/completions", oai("tiny-llava", part(pics.URL+"/a.png"))},
		{"/v1/embeddings", `{"model":"tiny-llava","input":[{"type":"image_url","image_url":{"url":"` + pics.URL + `/b.png"}}]}`},
	} {
		if status, body := do(t, nil, "POST", ts.URL+c.path, []byte(c.body), nil); status != 400 {
			t.Errorf("%s with an http:// image: %d %s; want 400", c.path, status, body)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the server fetched the image URL %d times; it must fetch nothing", n)
	}

	// The server still answers, in every format data/vision decodes.
	scene := shapes.Generate(1, shapes.Test, 3).Render(32)
	rgba := image.NewRGBA(image.Rect(0, 0, 32, 32))
	for y := range 32 {
		for x := range 32 {
			rgba.Set(x, y, color.RGBA{uint8(255 * scene.At(0, y, x)), uint8(255 * scene.At(1, y, x)), uint8(255 * scene.At(2, y, x)), 255})
		}
	}
	var jb, gb bytes.Buffer
	if err := jpeg.Encode(&jb, rgba, nil); err != nil {
		t.Fatal(err)
	}
	if err := gif.Encode(&gb, rgba, nil); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{ok, "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(jb.Bytes()),
		"data:image/gif;base64," + base64.StdEncoding.EncodeToString(gb.Bytes()),
		"data:image/webp;base64,UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA=="} { // a 1x1 lossless WebP
		if status, body := do(t, nil, "POST", ts.URL+"/v1/chat/completions", []byte(oai("tiny-llava", part(u))), nil); status != 200 {
			t.Errorf("%.30s: %d %s", u, status, body)
		}
	}
}

// clipFolder is the clip-tiny fixture (a Hugging Face CLIPModel) with
// CLIP's tokenizer beside it, as golem clip train writes its --out.
func clipFolder(t *testing.T) string {
	t.Helper()
	fix := shared.Path(t, "fixtures/hf/clip-tiny")
	vocab := shared.Path(t, "data/tokenizer/clip/"+tokenizer.CLIPFiles[0])
	dir := filepath.Join(t.TempDir(), "clip")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{filepath.Join(fix, "config.json"), filepath.Join(fix, "model.safetensors"), vocab} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// A served CLIP model's text and image embeddings (OpenAI's input with
// image_url items, Ollama's images) are unit vectors whose cosine is the
// one model/clip's own towers give; a LLaVA model's text embeddings are
// its language model's, as any LM's; images for a model without an image
// tower, and generation with a CLIP model, are 400s.
func TestCLIPEmbeddings(t *testing.T) {
	dir := clipFolder(t)
	w, err := LoadWeights(cpu.New(), dir)
	if err != nil {
		t.Fatal(err)
	}
	clipEngine := NewEngine("clip", dir, w, EngineOptions{})
	t.Cleanup(clipEngine.Close)
	lw, err := LoadWeights(cpu.New(), tinyDir(t, "llava"))
	if err != nil {
		t.Fatal(err)
	}
	llavaEngine := NewEngine("tiny-llava", tinyDir(t, "llava"), lw, EngineOptions{})
	t.Cleanup(llavaEngine.Close)
	ts := serveEngines(t, "sqlite:"+filepath.Join(t.TempDir(), "s.db"), Options{}, clipEngine, llavaEngine)

	png := shapePNG(t, 1)
	texts := []string{"a red circle", "two blue squares and a green triangle"}
	body, _ := json.Marshal(map[string]any{"model": "clip", "input": []any{texts[0],
		map[string]any{"type": "image_url", "image_url": map[string]any{"url": dataURL(png)}}, texts[1]}})
	status, resp := do(t, nil, "POST", ts.URL+"/v1/embeddings", body, nil)
	if status != 200 {
		t.Fatalf("%d %s", status, resp)
	}
	var oai struct {
		Data []struct{ Embedding []float32 }
	}
	json.Unmarshal(resp, &oai)
	if len(oai.Data) != 3 {
		t.Fatalf("%d embeddings for 3 inputs: %s", len(oai.Data), resp)
	}
	dot := func(a, b []float32) float64 {
		var s float64
		for i := range a {
			s += float64(a[i]) * float64(b[i])
		}
		return s
	}
	for i, d := range oai.Data {
		if len(d.Embedding) != w.CLIP.Config.Projection || math.Abs(dot(d.Embedding, d.Embedding)-1) > 1e-5 {
			t.Errorf("embedding %d: %d dimensions, norm² %.6f; want %d, 1", i, len(d.Embedding), dot(d.Embedding, d.Embedding), w.CLIP.Config.Projection)
		}
	}
	// model/clip's towers directly.
	m, err := clip.Load(cpu.New(), dir)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.LoadCLIPDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := vision.Decode("scene", png, vision.Limits{})
	vc := m.Config.Vision
	pix, err := vision.CLIPPixels(im, vc.Image, vc.Channels)
	if err != nil {
		t.Fatal(err)
	}
	var img []float32
	txt := make([][]float32, len(texts))
	tensor.NoGrad(func() {
		s := tensor.NewScope()
		defer s.Close()
		img = m.ImageEmbeds(s.FromHost(m.Heads.LogitScale.Backend(), pix, 1, vc.Channels, vc.Image, vc.Image)).Host()
		for i, text := range texts {
			T := min(m.Config.Text.Context, len(tok.Encode(text))+2)
			ids, err := tok.Batch([]string{text}, T, m.Config.Text.Pad)
			if err != nil {
				t.Fatal(err)
			}
			txt[i] = s.Adopt(m.TextEmbeds(ids, 1, T)).Host()
		}
	})
	cos := func(a, b []float32) float64 { return dot(a, b) / math.Sqrt(dot(a, a)*dot(b, b)) }
	for i, at := range []int{0, 2} {
		want := cos(txt[i], img)
		if got := dot(oai.Data[at].Embedding, oai.Data[1].Embedding); math.Abs(got-want) > 1e-5 {
			t.Errorf("text %q and the image: served cosine %.6f, model/clip's %.6f", texts[i], got, want)
		}
	}
	if got, want := dot(oai.Data[0].Embedding, oai.Data[2].Embedding), cos(txt[0], txt[1]); math.Abs(got-want) > 1e-5 {
		t.Errorf("the two texts: served cosine %.6f, model/clip's %.6f", got, want)
	}

	// Ollama: texts in input, images in images, in that order.
	body, _ = json.Marshal(map[string]any{"model": "clip", "input": texts[0], "images": []string{base64.StdEncoding.EncodeToString(png)}})
	status, resp = do(t, nil, "POST", ts.URL+"/api/embed", body, nil)
	var oll struct{ Embeddings [][]float32 }
	if json.Unmarshal(resp, &oll); status != 200 || len(oll.Embeddings) != 2 {
		t.Fatalf("/api/embed: %d %s", status, resp)
	}
	for i, at := range []int{0, 1} {
		if got := dot(oll.Embeddings[i], oai.Data[at].Embedding); math.Abs(got-1) > 1e-5 {
			t.Errorf("/api/embed's embedding %d: cosine %.6f with /v1/embeddings' (batched with other inputs)", i, got)
		}
	}

	// A LLaVA model's text embeddings are its language model's.
	status, resp = do(t, nil, "POST", ts.URL+"/v1/embeddings", []byte(`{"model":"tiny-llava","input":"The sky is blue."}`), nil)
	json.Unmarshal(resp, &oai)
	if status != 200 || len(oai.Data) != 1 {
		t.Fatalf("tiny-llava: %d %s", status, resp)
	}
	closeTo(t, "tiny-llava's text embedding", oai.Data[0].Embedding, refEmbedding(lw.Model, lw.Tok.EncodeWithSpecial("The sky is blue."), false))

	for _, c := range []struct{ path, body, want string }{
		{"/v1/embeddings", `{"model":"tiny-llava","input":["hi",{"type":"image_url","image_url":{"url":"` + dataURL(png) + `"}}]}`, "input[1].image_url: model tiny-llava gives text embeddings only"},
		{"/api/embed", `{"model":"tiny-llava","images":["` + base64.StdEncoding.EncodeToString(png) + `"]}`, "images[0]: model tiny-llava gives text embeddings only"},
		{"/v1/embeddings", `{"model":"clip","input":[{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}`, "input[0].image_url: golem fetches nothing"},
		{"/v1/embeddings", `{"model":"clip","input":[1,2,3]}`, "input: a CLIP model takes texts"},
		{"/api/embed", `{"model":"clip","images":["aGVsbG8="]}`, "images[0]: not a readable image"},
		{"/api/embed", `{"model":"clip","images":["` + base64.StdEncoding.EncodeToString(pngOf(t, 2049, 2048)) + `"]}`, "images[0]: png of 2049x2048 pixels exceeds the limit of 4194304 pixels; refused before decoding"},
		{"/v1/embeddings", `{"model":"clip","input":["hi",{"type":"image_url","image_url":{"url":"` + dataURL(pngOf(t, 2048, 2049)) + `"}}]}`, "input[1].image_url: png of 2048x2049 pixels exceeds the limit of 4194304 pixels; refused before decoding"},
		{"/v1/chat/completions", `{"model":"clip","messages":[{"role":"user","content":"hi"}]}`, "model clip is a CLIP model: it only gives embeddings"},
		{"/api/generate", `{"model":"clip","prompt":"hi"}`, "model clip is a CLIP model"},
	} {
		status, resp := do(t, nil, "POST", ts.URL+c.path, []byte(c.body), nil)
		if m := errorMessage(resp); status != 400 || !strings.HasPrefix(m, c.want) {
			t.Errorf("%s %.80s: %d %s; want a 400 %q", c.path, c.body, status, resp, c.want)
		}
	}
	// The lists show the CLIP model.
	if status, resp := do(t, nil, "GET", ts.URL+"/api/tags", nil, nil); status != 200 || !strings.Contains(string(resp), `"family":"clip"`) {
		t.Errorf("/api/tags: %d %s", status, resp)
	}
}

// Every chat path renders a LLaVA model's conversation in its own format
// (the web app's chat and samples go through chatPrompt), its text's own
// "<image>" taken out.
func TestVLMChatFormat(t *testing.T) {
	w, err := LoadWeights(cpu.New(), tinyDir(t, "llava"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := chatPrompt(w, []tokenizer.Message{{Role: "user", Content: "hi <image>there"}})
	if want := w.Tok.EncodeWithSpecial("USER: hi there\nASSISTANT:"); err != nil || !slices.Equal(got, want) {
		t.Errorf("chatPrompt: %v, %v; want %v (llava's format)", got, err, want)
	}
}

// A LoRA adapter over a LLaVA folder (golem vlm --lora-r's OUT) is served
// like the folder: an image request answers what golem generate --image
// answers on the adapter, which is not the base's answer.
func TestServeLLaVAAdapter(t *testing.T) {
	base := tinyDir(t, "llava")
	m, err := llava.Load(cpu.New(), base)
	if err != nil {
		t.Fatal(err)
	}
	c := gpt.LoRAConfig{R: 2, Alpha: 16}
	if _, err := m.LM.AttachLoRA(c, 1); err != nil {
		t.Fatal(err)
	}
	for i, p := range m.LM.LoRAParams() { // a B that is not zero: the adapter moves the answers
		v := p.Tensor.Host()
		for j := range v {
			v[j] = float32((i+j)%7-3) * 0.3
		}
		p.Tensor.Set(v)
	}
	dir := filepath.Join(t.TempDir(), "llava-lora")
	if err := m.SaveLoRA(dir, c, base); err != nil {
		t.Fatal(err)
	}
	w, err := LoadWeights(cpu.New(), dir)
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine("tiny-llava-lora", dir, w, EngineOptions{})
	t.Cleanup(e.Close)
	ts := serveEngines(t, "sqlite:"+filepath.Join(t.TempDir(), "s.db"), Options{}, e)
	const q, maxTok = "What colour is the circle?", 12
	png := shapePNG(t, 1)
	want := imageAnswer(t, dir, png, q, maxTok)
	if want == imageAnswer(t, base, png, q, maxTok) {
		t.Fatalf("the adapter answers %q as its base does: the test could not tell them apart", want)
	}
	body, _ := json.Marshal(map[string]any{"model": "tiny-llava-lora", "temperature": 0, "max_tokens": maxTok,
		"messages": []any{map[string]any{"role": "user", "content": []any{
			map[string]any{"type": "image_url", "image_url": map[string]any{"url": dataURL(png)}},
			map[string]any{"type": "text", "text": q}}}}})
	status, resp := do(t, nil, "POST", ts.URL+"/v1/chat/completions", body, nil)
	var r struct {
		Choices []struct{ Message struct{ Content string } }
	}
	json.Unmarshal(resp, &r)
	if status != 200 || len(r.Choices) != 1 || r.Choices[0].Message.Content != want {
		t.Fatalf("served: %d %s; want %q, golem generate --image's answer on the adapter", status, resp, want)
	}
}
