package serve

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golem-ml/golem/store"
)

// Pictures from words through the web app over HTTP: a person draws images
// for an imported prompt with the served text-to-image model (the same
// images /v1/images/generations draws with the same seed), kept in the
// store; an annotator compares each pair of them (a choice, a tie, a
// skip), counted in the progress; the admin's export (JSONL and zip) names
// the chosen and rejected images' files; bad input is the app's error
// shape, never a crash.
func TestWebImageGeneration(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { ts, _ := imageServer(t); webImageGeneration(t, ts) })
	t.Run("postgres", func(t *testing.T) {
		ts, _ := imageServerOn(t, postgresDSN(t), Options{}, 16)
		webImageGeneration(t, ts)
	})
}

func webImageGeneration(t *testing.T, ts *testServer) {
	admin, alice, bob := setupAnnotators(t, ts)
	status, body := admin.call("POST", importPath+"?name=draw.jsonl", `{"prompt": "a red circle"}`+"\n")
	mustStatus(t, "import", 200, status, body)

	status, body = alice.call("GET", "/app/api/models", nil)
	mustStatus(t, "models", 200, status, body)
	if !strings.Contains(string(body), `{"name":"tiny-t2i","context":`) || !strings.Contains(string(body), `"images":true`) || !strings.Contains(string(body), `"max_images":64`) {
		t.Errorf("models: %s; want tiny-t2i marked images", body)
	}

	// The first prompt not drawn yet: setupAnnotators' first.
	var next struct {
		Prompt *struct {
			ID   int64
			Text string
		}
	}
	status, body = alice.call("GET", "/app/api/generations/prompt", nil)
	mustStatus(t, "next prompt to draw", 200, status, body)
	if json.Unmarshal(body, &next); next.Prompt == nil || next.Prompt.Text != "Say hello." {
		t.Fatalf("next prompt to draw: %s", body)
	}

	// Bad input: the app's {"error"} with its status, naming the field.
	for _, tc := range []struct {
		req    string
		status int
		want   string
	}{
		{`{"model": "nope", "prompt": "x"}`, 404, `model \"nope\" not found`},
		{`{"model": "tiny-gpt2", "prompt": "x"}`, 400, "model tiny-gpt2 does not make images"},
		{`{"model": "tiny-t2i", "prompt": "x", "n": 65}`, 400, `\"n\" is 65, want 1 to 64`},
		{`{"model": "tiny-t2i", "prompt": "x", "n": 0}`, 400, `\"n\" is 0`},
		{`{"model": "tiny-t2i", "prompt": "x", "size": "32x32"}`, 400, `model tiny-t2i makes 16x16 images only`},
		{`{"model": "tiny-t2i"}`, 400, `\"prompt\" missing`},
		{`{"model": "tiny-t2i", "prompt": " "}`, 400, `\"prompt\" is empty`},
		{`{"model": "tiny-t2i", "prompt": "` + strings.Repeat("circle ", 400) + `"}`, 400, "prompt"},
		{`{"model": "tiny-t2i", "prompt": "x", "prompt_id": 1}`, 400, `not both`},
		{`{"model": "tiny-t2i", "prompt_id": 999}`, 404, "prompt 999"},
		{`{"model": "tiny-t2i", "prompt": 3}`, 400, "prompt"},
		{`not json`, 400, ""},
	} {
		status, body := alice.call("POST", "/app/api/generations", tc.req)
		mustStatus(t, tc.req[:min(60, len(tc.req))], tc.status, status, body)
		if !strings.Contains(string(body), tc.want) {
			t.Errorf("%.60s: %s; want it to say %s", tc.req, body, tc.want)
		}
	}

	// Three images of the imported prompt, seeds 5, 6, 7: the images
	// /v1/images/generations draws with seed 5.
	var gen struct{ Generations []generationJSON }
	status, body = alice.call("POST", "/app/api/generations", fmt.Sprintf(`{"model": "tiny-t2i", "prompt_id": %d, "n": 3, "seed": 5}`, next.Prompt.ID))
	mustStatus(t, "generate", 200, status, body)
	if json.Unmarshal(body, &gen); len(gen.Generations) != 3 {
		t.Fatalf("generate: %s", body)
	}
	status, body = do(t, nil, "POST", ts.URL+"/v1/images/generations", []byte(`{"model":"tiny-t2i","prompt":"Say hello.","n":3,"seed":5}`), nil)
	mustStatus(t, "the API's images", 200, status, body)
	var api struct {
		Data []struct {
			B64JSON string `json:"b64_json"`
		}
	}
	json.Unmarshal(body, &api)
	shown := map[int64][]byte{}
	for i, g := range gen.Generations {
		if g.Prompt != "Say hello." || g.Model != "tiny-t2i" || g.Seed != uint64(5+i) || !strings.HasPrefix(g.Image, "/app/api/images/") {
			t.Errorf("generation %d: %+v", i, g)
		}
		status, img := alice.call("GET", g.Image, nil)
		if status != 200 {
			t.Fatalf("%s: %d", g.Image, status)
		}
		want, _ := base64.StdEncoding.DecodeString(api.Data[i].B64JSON)
		if !bytes.Equal(img, want) {
			t.Errorf("generation %d's image is not the API's image %d for the same seed", i, i)
		}
		if p, err := png.Decode(bytes.NewReader(img)); err != nil || p.Bounds().Dx() != 16 {
			t.Errorf("generation %d: not a 16x16 PNG: %v", i, err)
		}
		sum := sha256.Sum256(img)
		if g.Image != "/app/api/images/"+hex.EncodeToString(sum[:]) {
			t.Errorf("generation %d: %s is not its bytes' SHA-256", i, g.Image)
		}
		shown[g.ID] = img
	}
	if bytes.Equal(shown[gen.Generations[0].ID], shown[gen.Generations[1].ID]) || bytes.Equal(shown[gen.Generations[1].ID], shown[gen.Generations[2].ID]) || bytes.Equal(shown[gen.Generations[0].ID], shown[gen.Generations[2].ID]) {
		t.Fatal("the three seeds drew the same image twice; the pairs below need three different images")
	}
	status, body = alice.call("GET", "/app/api/generations/prompt", nil)
	if json.Unmarshal(body, &next); next.Prompt == nil || next.Prompt.Text != "Count to three." {
		t.Errorf("next prompt to draw after the first was drawn: %s", body)
	}

	// Bob compares the three pairs: the first chosen (B as shown), a tie,
	// a skip; then none is left.
	type pairJSON struct {
		Pair *struct {
			Prompt string
			A, B   generationJSON
		}
	}
	nextPair := func() pairJSON {
		t.Helper()
		status, body := bob.call("GET", "/app/api/imagepairs/next", nil)
		mustStatus(t, "next pair", 200, status, body)
		var p pairJSON
		json.Unmarshal(body, &p)
		if p.Pair != nil && (strings.Contains(string(body), `"model"`) || strings.Contains(string(body), `"seed"`)) {
			t.Errorf("next pair: %s; want it blind (no model, no seed)", body)
		}
		return p
	}
	p := nextPair()
	if p.Pair == nil || p.Pair.Prompt != "Say hello." || p.Pair.A.ID == p.Pair.B.ID {
		t.Fatalf("next pair: %+v", p)
	}
	for _, tc := range []struct {
		req    string
		status int
		want   string
	}{
		{fmt.Sprintf(`{"a": %d, "b": %d, "chosen": 999}`, p.Pair.A.ID, p.Pair.B.ID), 400, "chosen 999"},
		{fmt.Sprintf(`{"a": %d, "b": 999, "chosen": 999}`, p.Pair.A.ID), 404, "generation 999"},
		{fmt.Sprintf(`{"a": %d, "b": %d, "verdict": "meh"}`, p.Pair.A.ID, p.Pair.B.ID), 400, `verdict \"meh\"`},
	} {
		status, body := bob.call("POST", "/app/api/imagecomparisons", tc.req)
		mustStatus(t, tc.req, tc.status, status, body)
		if !strings.Contains(string(body), tc.want) {
			t.Errorf("%s: %s; want it to say %s", tc.req, body, tc.want)
		}
	}
	chosen, rejected := p.Pair.B.ID, p.Pair.A.ID
	status, body = bob.call("POST", "/app/api/imagecomparisons", map[string]any{"a": p.Pair.A.ID, "b": p.Pair.B.ID, "chosen": chosen})
	mustStatus(t, "compare", 201, status, body)
	status, body = bob.call("POST", "/app/api/imagecomparisons", map[string]any{"a": p.Pair.A.ID, "b": p.Pair.B.ID, "verdict": "tie"})
	mustStatus(t, "compare again", 409, status, body)
	for _, verdict := range []string{"tie", "skip"} {
		p := nextPair()
		if p.Pair == nil {
			t.Fatalf("no pair left for the %s", verdict)
		}
		status, body := bob.call("POST", "/app/api/imagecomparisons", map[string]any{"a": p.Pair.A.ID, "b": p.Pair.B.ID, "verdict": verdict})
		mustStatus(t, verdict, 201, status, body)
	}
	if p := nextPair(); p.Pair != nil {
		t.Errorf("a fourth pair of three images: %+v", p)
	}
	var prog progressJSON
	status, body = bob.call("GET", "/app/api/progress", nil)
	if json.Unmarshal(body, &prog); prog.ImageComparisons != 2 || prog.LeftImageCompare != 0 || prog.Skipped != 1 {
		t.Errorf("bob's progress: %s; want 2 image comparisons, 0 left, 1 skipped", body)
	}
	status, body = admin.call("GET", "/app/api/admin/users", nil)
	if !strings.Contains(string(body), `"username":"alice"`) || !strings.Contains(string(body), `"image_comparisons":2,"left_image_compare":0`) ||
		!strings.Contains(string(body), `"image_comparisons":0,"left_image_compare":3`) {
		t.Errorf("the admin's users: %s; want bob's 2 image comparisons and 3 pairs left to the others", body)
	}

	// The export: one preference, bob's choice; the zip has its images.
	key := func(id int64) string {
		for _, g := range gen.Generations {
			if g.ID == id {
				return strings.TrimPrefix(g.Image, "/app/api/images/")
			}
		}
		t.Fatalf("generation %d was not drawn", id)
		return ""
	}
	want := `{"prompt":"Say hello.","chosen":"images/` + key(chosen) + `.png","rejected":"images/` + key(rejected) + `.png"}` + "\n"
	status, body = admin.call("GET", "/app/api/admin/export?kind=image_preferences", nil)
	if status != 200 || withoutTokens(t, body) != want {
		t.Errorf("export: %d %s; want %s", status, body, want)
	}
	status, body = admin.call("GET", "/app/api/admin/export?kind=image_preferences&format=zip", nil)
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
	if len(files) != 3 || withoutTokens(t, files["golem-image_preferences.jsonl"]) != want ||
		!bytes.Equal(files["images/"+key(chosen)+".png"], shown[chosen]) || !bytes.Equal(files["images/"+key(rejected)+".png"], shown[rejected]) {
		t.Errorf("zip export: %d files, jsonl %q", len(files), files["golem-image_preferences.jsonl"])
	}
}

// The Chromium flow: generate images for an imported prompt, compare their
// pairs by keys, download the image preferences zip from the Admin view;
// its JSONL line names files in the zip that are the images the page
// showed, the one judged better as "chosen"; golem export's file
// (store.ExportFile) says the same with the files beside it.
func TestBrowserImageGeneration(t *testing.T) {
	node := needBrowser(t)
	ts, _ := imageServer(t)
	if _, err := EnsureAdmin(context.Background(), ts.store, "admin-password"); err != nil {
		t.Fatal(err)
	}
	zipPath := filepath.Join(t.TempDir(), "prefs.zip")
	out := runNode(t, node, "imagegen.mjs", ts.URL, "admin", "admin-password", zipPath)
	var res struct {
		Shown  []string
		Judged []struct {
			ID  int64
			Src string
		}
	}
	if err := json.Unmarshal([]byte(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]), &res); err != nil || len(res.Shown) != 3 || len(res.Judged) != 2 {
		t.Fatalf("the script's output: %v\n%s", err, out)
	}
	key := func(src string) string {
		if !slices.Contains(res.Shown, src) {
			t.Errorf("%s was compared but not among the images generated %v", src, res.Shown)
		}
		return strings.TrimPrefix(src, "/app/api/images/")
	}
	a, b := key(res.Judged[0].Src), key(res.Judged[1].Src)
	want := `{"prompt":"a red circle","chosen":"images/` + b + `.png","rejected":"images/` + a + `.png"}` + "\n"
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, _ := f.Open()
		files[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	if got := withoutTokens(t, files["golem-image_preferences.jsonl"]); got != want {
		t.Fatalf("the downloaded JSONL:\n%s\nwant (B was pressed)\n%s", got, want)
	}
	for _, k := range []string{a, b} {
		sum := sha256.Sum256(files["images/"+k+".png"])
		if hex.EncodeToString(sum[:]) != k {
			t.Errorf("images/%s.png in the zip is not the image shown at /app/api/images/%s", k, k)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "image_prefs.jsonl")
	if n, err := store.ExportFile(context.Background(), ts.dsn, store.ExportImagePreferences, path); err != nil || n != 1 {
		t.Fatalf("ExportFile: %d, %v", n, err)
	}
	if got, _ := os.ReadFile(path); withoutTokens(t, got) != want {
		t.Errorf("golem export's file: %s, want %s", got, want)
	}
	for _, k := range []string{a, b} {
		got, err := os.ReadFile(filepath.Join(dir, "images", k+".png"))
		sum := sha256.Sum256(got)
		if err != nil || hex.EncodeToString(sum[:]) != k {
			t.Errorf("images/%s.png beside golem export's file: %v", k, err)
		}
	}
}

// withoutTokens is an image preferences export with each line's
// chosen_tokens and rejected_tokens taken out, after checking that each
// line has both, a 4x4 grid of the tiny model's 64 codes each (the tokens
// the served model drew the images from: cmd/golem's
// TestWebImagePreferencesDPO decodes them to the images shown).
func withoutTokens(t *testing.T, export []byte) string {
	t.Helper()
	var out strings.Builder
	for l := range strings.Lines(string(export)) {
		var p struct {
			Prompt   string  `json:"prompt"`
			Chosen   string  `json:"chosen"`
			Rejected string  `json:"rejected"`
			C        []int32 `json:"chosen_tokens,omitempty"`
			R        []int32 `json:"rejected_tokens,omitempty"`
		}
		if err := json.Unmarshal([]byte(l), &p); err != nil {
			t.Fatalf("export line %q: %v", l, err)
		}
		if len(p.C) != 16 || len(p.R) != 16 || slices.Equal(p.C, p.R) || slices.ContainsFunc(slices.Concat(p.C, p.R), func(c int32) bool { return c < 0 || c >= 64 }) {
			t.Errorf("export line %q: want the two images' different 4x4 grids of codes 0 to 63", l)
		}
		p.C, p.R = nil, nil
		b, _ := json.Marshal(p)
		out.Write(append(b, '\n'))
	}
	return out.String()
}
