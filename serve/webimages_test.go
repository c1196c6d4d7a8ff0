package serve

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// redPNG is a 6 x 4 red PNG.
func redPNG(t *testing.T) []byte {
	t.Helper()
	m := image.NewNRGBA(image.Rect(0, 0, 6, 4))
	for i := range 24 {
		m.SetNRGBA(i%6, i/6, color.NRGBA{255, 0, 0, 255})
	}
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// upload posts the admin's import as the app does: the prompts file and
// its images as multipart/form-data.
func (wc *webClient) upload(name string, prompts []byte, images map[string][]byte) (int, []byte) {
	wc.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	w, _ := mw.CreateFormFile("prompts", name)
	w.Write(prompts)
	for n, b := range images {
		w, _ := mw.CreateFormFile("images", n)
		w.Write(b)
	}
	mw.Close()
	req, _ := http.NewRequest("POST", wc.base+importPath, &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("X-CSRF-Token", wc.csrf)
	resp, err := wc.c.Do(req)
	if err != nil {
		wc.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// An image prompt through the web app: uploaded with its image, served by
// its key to logged-in users only (its type, cached as immutable), shown in
// the task's prompt, answered by hand when the served models read text
// only, and exported with the image's path.
func TestWebImages(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { webImages(t, newTestServer(t, Options{}, EngineOptions{})) })
	t.Run("postgres", func(t *testing.T) { webImages(t, newTestServerOn(t, postgresDSN(t), Options{}, EngineOptions{})) })
}

func webImages(t *testing.T, ts *testServer) {
	admin, alice, _ := setupAnnotators(t, ts)
	red := redPNG(t)
	sum := sha256.Sum256(red)
	key := hex.EncodeToString(sum[:])

	// The browser sends file names without folders: pics/red.png is the
	// one uploaded red.png.
	prompts := []byte(`{"prompt": "<image>\nWhat colour is this?", "images": ["pics/red.png"]}` + "\n")
	status, body := admin.upload("img.jsonl", []byte(`{"prompt": "ok"}`+"\n"+`{"prompt": "x", "images": ["blue.png"]}`), map[string][]byte{"red.png": red})
	mustStatus(t, "upload without the image", 400, status, body)
	if !strings.Contains(string(body), `img.jsonl line 2: image \"blue.png\": not among the 1 images uploaded`) {
		t.Errorf("upload without the image: %s", body)
	}
	status, body = admin.upload("img.jsonl", prompts, map[string][]byte{"red.png": []byte("not a png")})
	mustStatus(t, "upload of a broken image", 400, status, body)
	if !strings.Contains(string(body), "img.jsonl line 1") || !strings.Contains(string(body), "not a readable image") {
		t.Errorf("upload of a broken image: %s", body)
	}
	status, body = admin.call("POST", importPath+"?name=plain.jsonl", string(prompts))
	mustStatus(t, "plain JSONL naming an image", 400, status, body)
	status, body = admin.upload("img.jsonl", prompts, map[string][]byte{"red.png": red})
	mustStatus(t, "upload", 200, status, body)
	if !strings.Contains(string(body), `"added":1`) || !strings.Contains(string(body), `"images":1`) {
		t.Fatalf("upload: %s", body)
	}

	// The image prompt is the fourth; alice skips the three text prompts.
	var next struct{ Prompt promptJSON }
	for {
		status, body = alice.call("GET", "/app/api/next?task=rank", nil)
		mustStatus(t, "next", 200, status, body)
		next.Prompt = promptJSON{}
		json.Unmarshal(body, &next)
		if next.Prompt.Image != "" || next.Prompt.ID == 0 {
			break
		}
		status, body = alice.call("POST", "/app/api/skips", map[string]any{"prompt_id": next.Prompt.ID, "task": "rank"})
		mustStatus(t, "skip", 200, status, body)
	}
	if next.Prompt.Image != "/app/api/images/"+key {
		t.Fatalf("next: %s; want the image /app/api/images/%s", body, key)
	}

	// The image, to logged-in users only.
	if status, _ := do(t, nil, "GET", ts.URL+next.Prompt.Image, nil, nil); status != 401 {
		t.Errorf("the image without logging in: %d, want 401", status)
	}
	resp, err := alice.c.Get(ts.URL + next.Prompt.Image)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, red) || resp.Header.Get("Content-Type") != "image/png" ||
		resp.Header.Get("Cache-Control") != "private, max-age=31536000, immutable" || resp.Header.Get("ETag") != `"`+key+`"` {
		t.Errorf("the image: %d %q %q %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"), resp.Header.Get("ETag"), len(got))
	}
	req, _ := http.NewRequest("GET", ts.URL+next.Prompt.Image, nil)
	req.Header.Set("If-None-Match", `"`+key+`"`)
	if resp, err := alice.c.Do(req); err != nil || resp.StatusCode != 304 {
		t.Errorf("the image again with its ETag: %v %v; want 304", resp.StatusCode, err)
	}
	status, body = alice.call("GET", "/app/api/images/"+strings.Repeat("0", 64), nil)
	mustStatus(t, "an unknown image", 404, status, body)
	status, body = alice.call("GET", "/app/api/images/..%2Fetc", nil)
	mustStatus(t, "not a key", 400, status, body)

	// The served models read text only: no answers, and why.
	status, body = alice.call("POST", "/app/api/samples", map[string]any{"prompt_id": next.Prompt.ID, "k": 4})
	mustStatus(t, "samples", 200, status, body)
	var s struct {
		Answers         []answerJSON
		ImagesNotServed bool `json:"images_not_served"`
	}
	json.Unmarshal(body, &s)
	if len(s.Answers) != 0 || !s.ImagesNotServed {
		t.Fatalf("samples for an image prompt from text models: %s", body)
	}
	// Answers written by hand are ranked; the export names the image.
	status, body = alice.call("POST", "/app/api/rankings", map[string]any{"prompt_id": next.Prompt.ID, "order": []int{1, 0},
		"responses": []map[string]any{{"model": "human", "content": "Blue."}, {"model": "human", "content": "Red."}}})
	mustStatus(t, "ranking by hand", 201, status, body)
	status, body = admin.call("GET", "/app/api/admin/export?kind=preferences", nil)
	if want := `"chosen":[{"role":"assistant","content":"Red."}],"rejected":[{"role":"assistant","content":"Blue."}],"images":["images/` + key + `.png"]`; status != 200 || !strings.Contains(string(body), want) {
		t.Errorf("export: %d %s; want %s", status, body, want)
	}
	// The zip holds the JSONL and the image it names.
	status, body = admin.call("GET", "/app/api/admin/export?kind=preferences&format=zip", nil)
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if status != 200 || err != nil {
		t.Fatalf("zip export: %d %v", status, err)
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, _ := f.Open()
		files[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	if !strings.Contains(string(files["golem-preferences.jsonl"]), `"images":["images/`+key+`.png"]`) || !bytes.Equal(files["images/"+key+".png"], red) {
		t.Errorf("zip export: %d files %v", len(files), slices.Sorted(maps.Keys(files)))
	}
}

// With a vision-language model served beside a text-only one, the app's
// candidate answers to an image prompt come from the model that sees the
// image (the text-only model is not asked), and a text prompt's from both.
func TestWebImagesVLM(t *testing.T) {
	ts := newTestServerWith(t, "sqlite:"+t.TempDir()+"/labels.db", Options{}, EngineOptions{}, "llama", "llava")
	admin, alice, _ := setupAnnotators(t, ts)
	prompts := []byte(`{"prompt": "<image>\nWhat colour is this?", "images": ["red.png"]}` + "\n")
	status, body := admin.upload("img.jsonl", prompts, map[string][]byte{"red.png": redPNG(t)})
	mustStatus(t, "upload", 200, status, body)
	var image, text int64
	for image == 0 || text == 0 {
		status, body = alice.call("GET", "/app/api/next?task=rank", nil)
		mustStatus(t, "next", 200, status, body)
		var next struct{ Prompt promptJSON }
		json.Unmarshal(body, &next)
		if next.Prompt.ID == 0 {
			t.Fatalf("next: %s: no image prompt and text prompt", body)
		}
		if next.Prompt.Image != "" {
			image = next.Prompt.ID
		} else {
			text = next.Prompt.ID
		}
		status, body = alice.call("POST", "/app/api/skips", map[string]any{"prompt_id": next.Prompt.ID, "task": "rank"})
		mustStatus(t, "skip", 200, status, body)
	}
	for _, c := range []struct {
		id   int64
		want []string
	}{{image, []string{"tiny-llava"}}, {text, []string{"tiny-llama", "tiny-llava"}}} {
		status, body = alice.call("POST", "/app/api/samples", map[string]any{"prompt_id": c.id, "k": 4, "max_tokens": 6})
		mustStatus(t, "samples", 200, status, body)
		var s struct {
			Answers         []answerJSON
			ImagesNotServed bool `json:"images_not_served"`
		}
		json.Unmarshal(body, &s)
		models := map[string]bool{}
		for _, a := range s.Answers {
			models[a.Model] = true
		}
		if s.ImagesNotServed || len(s.Answers) == 0 || !slices.Equal(slices.Sorted(maps.Keys(models)), c.want) {
			t.Errorf("samples for prompt %d: %s; want answers from %v", c.id, body, c.want)
		}
	}
}
