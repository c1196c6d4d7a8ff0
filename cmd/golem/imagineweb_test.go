package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/internal/testmodels"
	"github.com/golem-ml/golem/model/vqvae"
	"github.com/golem-ml/golem/safetensors"
	"github.com/golem-ml/golem/train"
)

// webSession is a logged-in user of golem serve's web app: a cookie jar
// and the CSRF token the login answered.
type webSession struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

func webLogin(t *testing.T, base, user, password string) *webSession {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	s := &webSession{t: t, base: base, c: &http.Client{Jar: jar, Timeout: time.Minute}}
	var me struct{ CSRF string }
	s.json("POST", "/app/api/login", map[string]string{"username": user, "password": password}, 200, &me)
	s.csrf = me.CSRF
	return s
}

// call sends body (a string as is, anything else as JSON) and returns the
// status and the answer.
func (s *webSession) call(method, path string, body any) (int, []byte) {
	s.t.Helper()
	var b []byte
	switch v := body.(type) {
	case nil:
	case string:
		b = []byte(v)
	default:
		b, _ = json.Marshal(v)
	}
	req, err := http.NewRequest(method, s.base+path, bytes.NewReader(b))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if s.csrf != "" {
		req.Header.Set("X-CSRF-Token", s.csrf)
	}
	resp, err := s.c.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// json is call that fails the test unless the status is want, and
// decodes the answer into v (when not nil).
func (s *webSession) json(method, path string, body any, want int, v any) {
	s.t.Helper()
	status, b := s.call(method, path, body)
	if status != want {
		s.t.Fatalf("%s %s: %d %s; want %d", method, path, status, b, want)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			s.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// startServe runs golem serve with args on a free loopback port, never
// watching its folders, as the process cmd makes (golemCmdIn, or golemCmd
// with a cache), until the test ends, and returns its URL once it answers.
func startServe(t *testing.T, cmd func(args ...string) *exec.Cmd, args ...string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	srv := cmd(append([]string{"serve", "--addr", addr, "--watch", "-1s"}, args...)...)
	var log bytes.Buffer
	srv.Stdout, srv.Stderr = &log, &log
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Process.Kill()
		srv.Wait()
	})
	url := "http://" + addr
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(url + "/v1/models"); err == nil {
			resp.Body.Close()
			return url
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("golem serve did not start:\n%s", log.String())
		}
	}
}

// TestWebImagePreferencesDPO is issue #16's loop in one piece, through
// the real binary: golem serve draws two images for each imported prompt
// with the web app's endpoints, an annotator (a logged-in HTTP client)
// picks one of each pair, golem export --kind image_preferences writes
// the choices, and golem imagine dpo trains on that very file; golem
// imagine draws with the tuned model, whose weights moved.
func TestWebImagePreferencesDPO(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "t2i")
	if err := testmodels.Dalle(t, cpu.New(), 16, 7).Save(model); err != nil {
		t.Fatal(err)
	}
	dsn := "sqlite:" + filepath.Join(dir, "labels.db")
	url := startServe(t, func(a ...string) *exec.Cmd { return golemCmdIn(t, a...) }, "--model", "t2i="+model, "--db", dsn, "--admin-password", "admin-password-1")

	admin := webLogin(t, url, "admin", "admin-password-1")
	admin.json("POST", "/app/api/admin/users", map[string]string{"username": "ann", "password": "ann-password-1"}, 201, nil)
	prompts := []string{"a red circle", "a blue square", "a red square"}
	var jsonl strings.Builder
	for _, p := range prompts {
		fmt.Fprintf(&jsonl, "{\"prompt\": %q}\n", p)
	}
	admin.json("POST", "/app/api/admin/prompts?name=draw.jsonl", jsonl.String(), 200, nil)

	// The admin draws two images of each prompt, the next prompt the app
	// offers each time.
	type generation struct {
		ID     int64
		Prompt string
		Image  string
	}
	shown := map[int64]generation{} // by id: what the app drew
	for i := range prompts {
		var next struct{ Prompt *struct{ ID int64 } }
		admin.json("GET", "/app/api/generations/prompt", nil, 200, &next)
		if next.Prompt == nil {
			t.Fatalf("no prompt %d to draw", i)
		}
		var gen struct{ Generations []generation }
		admin.json("POST", "/app/api/generations", map[string]any{"model": "t2i", "prompt_id": next.Prompt.ID, "n": 2, "seed": 10 * (i + 1)}, 200, &gen)
		if len(gen.Generations) != 2 || gen.Generations[0].Image == gen.Generations[1].Image {
			t.Fatalf("generate %d: %+v; want two different images", i, gen)
		}
		for _, g := range gen.Generations {
			shown[g.ID] = g
		}
	}

	// Ann compares each pair the app shows her and picks image B of each
	// (A of the last), reading the PNGs as a browser would.
	ann := webLogin(t, url, "ann", "ann-password-1")
	type choice struct{ prompt, chosen, rejected string }
	var chosen []choice
	pngs := map[string][]byte{} // by key: the bytes the app showed
	for {
		var next struct {
			Pair *struct {
				Prompt string
				A, B   generation
			}
		}
		ann.json("GET", "/app/api/imagepairs/next", nil, 200, &next)
		if next.Pair == nil {
			break
		}
		p := next.Pair
		for _, g := range []generation{p.A, p.B} {
			status, b := ann.call("GET", g.Image, nil)
			sum := sha256.Sum256(b)
			key := hex.EncodeToString(sum[:])
			if status != 200 || g.Image != "/app/api/images/"+key || shown[g.ID].Image != g.Image || shown[g.ID].Prompt != p.Prompt {
				t.Fatalf("pair of %q: image %d at %s (%d), drawn as %+v", p.Prompt, g.ID, g.Image, status, shown[g.ID])
			}
			pngs[key] = b
		}
		win, lose := p.B, p.A
		if len(chosen) == len(prompts)-1 {
			win, lose = p.A, p.B
		}
		ann.json("POST", "/app/api/imagecomparisons", map[string]any{"a": p.A.ID, "b": p.B.ID, "chosen": win.ID}, 201, nil)
		key := func(g generation) string { return "images/" + strings.TrimPrefix(g.Image, "/app/api/images/") + ".png" }
		chosen = append(chosen, choice{p.Prompt, key(win), key(lose)})
	}
	if len(chosen) != len(prompts) {
		t.Fatalf("ann was shown %d pairs, want one per prompt (%d)", len(chosen), len(prompts))
	}

	// The admin's export, as users run it: one line per choice naming the
	// two images shown, the one picked as chosen, the PNGs beside it.
	prefs := filepath.Join(dir, "export", "image_prefs.jsonl")
	if stdout, stderr, code := runGolem(t, "export", "--db", dsn, "--kind", "image_preferences", "--out", prefs); code != 0 {
		t.Fatalf("golem export: exit %d\n%s%s", code, stdout, stderr)
	}
	b, err := os.ReadFile(prefs)
	if err != nil {
		t.Fatal(err)
	}
	vq, err := vqvae.Load(cpu.New(), filepath.Join(model, "vq"))
	if err != nil {
		t.Fatal(err)
	}
	var got []choice
	for l := range strings.Lines(string(b)) {
		var x struct {
			Prompt, Chosen, Rejected string
			ChosenTokens             []int32 `json:"chosen_tokens"`
			RejectedTokens           []int32 `json:"rejected_tokens"`
		}
		if err := json.Unmarshal([]byte(l), &x); err != nil {
			t.Fatalf("export line %q: %v", l, err)
		}
		got = append(got, choice{x.Prompt, x.Chosen, x.Rejected})
		for k, f := range []string{x.Chosen, x.Rejected} {
			png, err := os.ReadFile(filepath.Join(filepath.Dir(prefs), f))
			if err != nil || !bytes.Equal(png, pngs[strings.TrimSuffix(strings.TrimPrefix(f, "images/"), ".png")]) {
				t.Errorf("export: %s beside it is not the image the app showed (%v)", f, err)
			}
			// The tokens beside each image are the ones the served model
			// drew it from: its VQ-VAE decodes them to the image's pixels.
			// (This random VQ-VAE encodes every image shown here to one
			// grid: trained on the PNGs, DPO would learn nothing.)
			tok := [2][]int32{x.ChosenTokens, x.RejectedTokens}[k]
			if len(tok) != 16 {
				t.Fatalf("export line %q: %s has %d tokens, want its 4x4 grid", l, f, len(tok))
			}
			img, err := train.VQImage(vq, [][]int32{tok[0:4], tok[4:8], tok[8:12], tok[12:16]})
			if err != nil {
				t.Fatal(err)
			}
			dec, err := vision.EncodePNG(img)
			if err != nil {
				t.Fatal(err)
			}
			decoded, err := vision.Decode(f, dec, vision.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			shown, err := vision.Decode(f, png, vision.Limits{})
			if err != nil || !slices.Equal(decoded.Pix, shown.Pix) {
				t.Errorf("export line %q: %s's tokens do not decode to it (%v)", l, f, err)
			}
		}
		if slices.Equal(x.ChosenTokens, x.RejectedTokens) {
			t.Errorf("export line %q: the two images' tokens are the same", l)
		}
	}
	if len(got) != len(chosen) {
		t.Fatalf("export has %d preferences, want ann's %d:\n%s", len(got), len(chosen), b)
	}
	for _, c := range chosen {
		if !slices.Contains(got, c) {
			t.Errorf("export has no line for ann's choice %+v:\n%s", c, b)
		}
	}

	// golem imagine dpo trains on that very file, as a user would run it
	// (a tenth of the prompts held out by their hash: here one of three),
	// on the tokens the images were drawn as, and its loss falls from
	// ln 2 (the PNGs encoded again are one grid here: the loss stayed
	// 0.6931 when the export had no tokens).
	tuned := filepath.Join(dir, "t2i-dpo")
	stdout, stderr, code := runGolem(t, "imagine", "dpo", "--model", model, "--data", prefs, "--steps", "2", "--batch", "3",
		"--lr", "1e-2", "--out", tuned, "--threads", "2")
	m := regexp.MustCompile(`^loss=([0-9.]+) val_accuracy=[0-9.]+ val_margin=-?[0-9.]+$`).FindStringSubmatch(lastLine(stdout))
	if code != 0 || m == nil || !strings.Contains(stderr, "imagine dpo: 2 pairs to train on, 1 held out (0 images as 4x4 code grids, 3 pairs' images as the tokens they were drawn as)") {
		t.Fatalf("imagine dpo: exit %d\n%s%s", code, stdout, stderr)
	}
	if loss, _ := strconv.ParseFloat(m[1], 64); !(loss < 0.69) {
		t.Errorf("imagine dpo's loss after 2 steps is %s, want below ln 2 = 0.6931 (learning from the pairs):\n%s%s", m[1], stdout, stderr)
	}
	// The tuned weights moved: the same tensors, some of them changed.
	before, err := safetensors.OpenModel(model)
	if err != nil {
		t.Fatal(err)
	}
	after, err := safetensors.OpenModel(tuned)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before.Names(), after.Names()) {
		t.Fatalf("imagine dpo wrote tensors %v, the model had %v", after.Names(), before.Names())
	}
	changed, most := 0, 0.0
	for _, name := range before.Names() {
		b, _, err := before.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		a, _, err := after.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		d := 0.0
		for i := range b {
			d = math.Max(d, math.Abs(float64(a[i]-b[i])))
		}
		if d > 0 {
			changed++
		}
		most = math.Max(most, d)
	}
	if changed == 0 {
		t.Fatalf("imagine dpo left all %d tensors as they were", len(before.Names()))
	}
	t.Logf("imagine dpo changed %d of %d tensors, by up to %.3g; %s", changed, len(before.Names()), most, lastLine(stdout))
	png := filepath.Join(dir, "tuned.png")
	if stdout, stderr, code := runGolem(t, "imagine", "--model", tuned, "--prompt", "a red circle", "--out", png); code != 0 {
		t.Fatalf("imagine with the tuned model: exit %d\n%s%s", code, stdout, stderr)
	}
	if img, err := vision.ReadFile(png, vision.Limits{}); err != nil || img.H != 16 || img.W != 16 {
		t.Fatalf("imagine with the tuned model wrote %v (%v), want a 16x16 PNG", img, err)
	}
}
