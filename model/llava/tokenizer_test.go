package llava

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// withTokenizer is a tiny LLaVA model whose language model's vocabulary
// is a tokenizer's, trained on a prompt in golem's format.
func withTokenizer(t *testing.T) (*Model, *tokenizer.Tokenizer) {
	t.Helper()
	tok, err := tokenizer.Train(tokenizer.TrainOptions{Texts: []string{"USER: <image>\nWhat is it?\nASSISTANT: a red circle<|endoftext|>"}, VocabSize: 280, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	m := tinyOf(t, "llama", tok.VocabSize(), false)
	return m, tok
}

// promptLogits is m's tokens and logits, with tok's encoding, for a text
// prompt (holding "<image>" as text too) and an image prompt.
func promptLogits(t *testing.T, m *Model, tok *tokenizer.Tokenizer) ([]int, []float32) {
	t.Helper()
	text := tok.EncodeWithSpecial(UserTurn("What is <image> here?"))
	before, after, err := Split(UserTurn(Placeholder+"\nWhat is it?"), tok.EncodeWithSpecial)
	if err != nil {
		t.Fatal(err)
	}
	ids := slices.Concat(text, before, after)
	var out []float32
	tensor.NoGrad(func() {
		s := tensor.NewScope()
		defer s.Close()
		img, err := m.ImageFeatures(s, pixels(m, 1), 1)
		if err != nil {
			t.Fatal(err)
		}
		h := m.LM.Forward(toInt32(after), 1, len(after), gpt.Options{Embeds: m.Prefix(before, img), Scope: s})
		out = append(out, s.Adopt(m.LM.Logits(h)).Host()...)
		h = m.LM.Forward(toInt32(text), 1, len(text), gpt.Options{Scope: s})
		out = append(out, s.Adopt(m.LM.Logits(h)).Host()...)
	})
	return ids, out
}

func toInt32(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}

func tokenizerJSON(tok *tokenizer.Tokenizer) []byte {
	var b bytes.Buffer
	tok.WriteJSON(&b)
	return b.Bytes()
}

// The tokenizer beside a LLaVA folder carries "<image>" as an added
// special token at image_token_index (the vocabulary's last row), in
// tokenizer.json and tokenizer_config.json as transformers writes them;
// golem reads it back to the language model's tokenizer, so the tokens
// and logits of a text prompt and an image prompt are the saved model's
// bit for bit, and a folder whose tokenizer lacks "<image>" (golem's
// before) reads the same.
func TestTokenizerCarriesImageToken(t *testing.T) {
	m, tok := withTokenizer(t)
	V := tok.VocabSize()
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	if err := SaveTokenizer(tok, dir, &m.Config); err != nil {
		t.Fatal(err)
	}
	var tj struct {
		Added []map[string]any `json:"added_tokens"`
	}
	var tc struct {
		Decoder map[string]map[string]any `json:"added_tokens_decoder"`
	}
	for name, v := range map[string]any{"tokenizer.json": &tj, "tokenizer_config.json": &tc} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	want := map[string]any{"id": float64(V), "content": Placeholder, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
	if i := slices.IndexFunc(tj.Added, func(a map[string]any) bool { return a["content"] == Placeholder }); i < 0 || !mapsEqual(tj.Added[i], want) {
		t.Errorf("tokenizer.json's added_tokens %v: want %v", tj.Added, want)
	}
	delete(want, "id")
	if got := tc.Decoder[fmt.Sprint(V)]; !mapsEqual(got, want) {
		t.Errorf("tokenizer_config.json's added_tokens_decoder[%d] = %v, want %v", V, got, want)
	}
	raw, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := raw.SpecialID(Placeholder); !ok || id != V || raw.VocabSize() != V+1 {
		t.Fatalf("the folder's tokenizer: <image> at %d (%v), %d tokens; want at %d of %d", id, ok, raw.VocabSize(), V, V+1)
	}

	wantIDs, wantLogits := promptLogits(t, m, tok)
	for _, old := range []bool{false, true} {
		if old { // golem's folders before: no <image> in the tokenizer
			if err := tok.SaveForModel(dir, m.Config.Text.Context); err != nil {
				t.Fatal(err)
			}
		}
		lm, err := Load(cpu.New(), dir)
		if err != nil {
			t.Fatal(err)
		}
		lt, err := LoadTokenizer(dir, &lm.Config)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := lt.SpecialID(Placeholder); ok || lt.VocabSize() != V || !bytes.Equal(tokenizerJSON(lt), tokenizerJSON(tok)) {
			t.Fatalf("old folder %v: read back with %d tokens (want %d), or not the tokenizer saved", old, lt.VocabSize(), V)
		}
		ids, logits := promptLogits(t, lm, lt)
		if !slices.Equal(ids, wantIDs) {
			t.Fatalf("old folder %v: tokens %v, want %v", old, ids, wantIDs)
		}
		sameBits(t, "read back", wantLogits, logits)
	}
}

// The files SaveTokenizer writes say to transformers (read by Python's
// json, as PreTrainedTokenizerFast and LlavaProcessor read those fields):
// "<image>" is a special added token whose id is config.json's
// image_token_index, inside text_config's vocab_size.
func TestTokenizerImageTokenForTransformers(t *testing.T) {
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	m, tok := withTokenizer(t)
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	if err := SaveTokenizer(tok, dir, &m.Config); err != nil {
		t.Fatal(err)
	}
	const check = `
import json, os, sys
d = sys.argv[1]
cfg = json.load(open(os.path.join(d, "config.json")))
tj = json.load(open(os.path.join(d, "tokenizer.json")))
tc = json.load(open(os.path.join(d, "tokenizer_config.json")))
idx, n = cfg["image_token_index"], cfg["text_config"]["vocab_size"]
assert 0 <= idx < n, (idx, n)
added = [a for a in tj["added_tokens"] if a["content"] == "<image>"]
assert len(added) == 1 and added[0]["id"] == idx and added[0]["special"] and not added[0]["normalized"], added
ids = [a["id"] for a in tj["added_tokens"]] + list(tj["model"]["vocab"].values())
assert len(ids) == len(set(ids)) and max(ids) < n, "ids clash or pass the embedding"
dec = tc["added_tokens_decoder"][str(idx)]
assert dec["content"] == "<image>" and dec["special"], dec
print("ok")
`
	out, err := exec.Command(py, "-c", check, dir).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("python's check: %v\n%s", err, out)
	}
}

func mapsEqual(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}
