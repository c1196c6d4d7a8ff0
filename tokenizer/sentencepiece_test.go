package tokenizer

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/golem-ml/golem/internal/shared"
)

// These tests check SentencePiece models against SentencePiece itself:
// models trained here by spm_train (BPE and Unigram, byte fallback on and
// off, identity and nmt_nfkc normalization), every text encoded by
// spm_encode and by golem, ids compared.

// spTexts are the texts encoded by both (one line each: spm_encode reads
// lines).
var spTexts = []string{
	"Hello world",
	"The quick brown fox jumps over the lazy dog.",
	" leading space",
	"trailing space ",
	"runs   of    spaces\tand\ttabs  ",
	"      ",
	"a",
	"Ünïcödé ÀÉÎÕÜ façade naïve coöperate",
	"子曰：學而時習之，不亦說乎？有朋自遠方來，不亦樂乎？",
	"中文和English混合 text 123",
	"emoji 😀🎉👍🏽 and 🇫🇷 flags",
	"rare bytes \x01\x02\x7f and ▁ the meta symbol itself ▁▁x",
	"fullwidth ＡＢＣ１２３ and ligature ﬁ and ① circled",
	"numbers 1234567890 3.14159 -42 1e10",
	"punctuation!? \"quotes\" 'single' (parens) [brackets] {braces} <angle>",
	"Ελληνικά Русский язык العربية עברית हिन्दी 日本語のテキスト 한국어",
	"mixed\u00a0nbsp\u2003em space\u200bzero width",
	"invalid \xff\xfe utf8 \xc3",
	"<s> </s> <unk> look like control pieces",
	strings.Repeat("abcdefghij", 40),
	"Combining e\u0301 and n\u0303 marks",
	"user pieces: <tool>call</tool> golemgolem tokenizer tok<tool>",
}

type spConfig struct {
	name string
	args []string
}

var spConfigs = []spConfig{
	{"bpe-llama", []string{"--model_type=bpe", "--byte_fallback", "--normalization_rule_name=identity", "--remove_extra_whitespaces=false", "--split_digits", "--allow_whitespace_only_pieces"}},
	{"bpe-nfkc", []string{"--model_type=bpe", "--byte_fallback"}},
	{"bpe-nofallback", []string{"--model_type=bpe", "--normalization_rule_name=identity"}},
	{"unigram", []string{"--model_type=unigram", "--byte_fallback"}},
	{"unigram-identity", []string{"--model_type=unigram", "--byte_fallback", "--normalization_rule_name=identity", "--remove_extra_whitespaces=false"}},
	{"unigram-nofallback", []string{"--model_type=unigram"}},
	{"unigram-noprefix", []string{"--model_type=unigram", "--add_dummy_prefix=false", "--byte_fallback"}},
	{"bpe-user", []string{"--model_type=bpe", "--byte_fallback", "--user_defined_symbols=<tool>,golem,tok"}},
	{"unigram-user", []string{"--model_type=unigram", "--byte_fallback", "--user_defined_symbols=<tool>,golem,tok"}},
}

// spTrainText returns the text the models are trained on: English (Tiny
// Shakespeare) and Chinese from ../shared, which do not change (golem's docs,
// trained on before, changed every week and with them the models, so
// that a rare exact tie between two paths could appear with an edit of
// the README; see viterbi), else golem's docs. Under -short each file
// gives at most its first 64 KiB, in whole lines (Tiny Shakespeare's 1.1
// MB made spm_train's Unigram model take 4.7 CPU-s, 64 KiB 0.6): the
// short tests compare spTexts' ids, the full run every training line.
func spTrainText(t *testing.T) string {
	var b strings.Builder
	var files []string
	if d := shared.Dir(); d != "" {
		files = []string{filepath.Join(d, "data/text/tinyshakespeare.txt"), filepath.Join(d, "data/text/zh/lunyu.txt")}
	} else {
		files, _ = filepath.Glob("../docs/*.md")
		files = append(files, "../README.md")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if testing.Short() && len(data) > 1<<16 {
			data = data[:bytes.LastIndexByte(data[:1<<16], '\n')+1]
		}
		b.Write(data)
		b.WriteByte('\n')
	}
	return b.String()
}

// spModels holds the models spTrain trained, by configuration, in one
// folder for the test binary (TestMain removes it): each configuration is
// trained once, however many tests use it.
var spModels struct {
	sync.Mutex
	dir   string
	paths map[string]string
}

// spTrainDir returns the folder of spTrain's models and their training
// text, train.txt, written on first use.
func spTrainDir(t *testing.T) string {
	t.Helper()
	spModels.Lock()
	defer spModels.Unlock()
	if spModels.dir == "" {
		dir, err := os.MkdirTemp("", "golem-spm-")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "train.txt"), []byte(spTrainText(t)), 0o644); err != nil {
			os.RemoveAll(dir)
			t.Fatal(err)
		}
		spModels.dir, spModels.paths = dir, map[string]string{}
	}
	return spModels.dir
}

// spTrain trains a model of configuration c with spm_train (once a test
// binary) and returns its path.
func spTrain(t *testing.T, c spConfig) string {
	t.Helper()
	if _, err := exec.LookPath("spm_train"); err != nil {
		shared.Missing(t, "skipping: needs spm_train and spm_encode (Debian's sentencepiece package) as the oracle")
	}
	dir := spTrainDir(t)
	spModels.Lock()
	defer spModels.Unlock()
	if p, ok := spModels.paths[c.name]; ok {
		return p
	}
	in := filepath.Join(dir, "train.txt")
	prefix := filepath.Join(dir, c.name)
	args := append([]string{"--input=" + in, "--model_prefix=" + prefix, "--vocab_size=1200",
		"--character_coverage=0.99", "--seed_sentencepiece_size=20000", "--num_threads=1"}, c.args...)
	out, err := exec.Command("spm_train", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("spm_train %s: %v\n%s", strings.Join(args, " "), err, lastLines(out, 5))
	}
	spModels.paths[c.name] = prefix + ".model"
	return prefix + ".model"
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// spmEncode runs spm_encode --output_format=id over texts.
func spmEncode(t *testing.T, model string, texts []string) [][]int {
	t.Helper()
	cmd := exec.Command("spm_encode", "--model="+model, "--output_format=id")
	cmd.Stdin = strings.NewReader(strings.Join(texts, "\n") + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("spm_encode: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(texts) {
		t.Fatalf("spm_encode gave %d lines for %d texts", len(lines), len(texts))
	}
	res := make([][]int, len(lines))
	for i, l := range lines {
		res[i] = []int{}
		for _, f := range strings.Fields(l) {
			id, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("spm_encode line %d: %q", i+1, l)
			}
			res[i] = append(res[i], id)
		}
	}
	return res
}

// spmDecode runs spm_decode --input_format=id over id lists.
func spmDecode(t *testing.T, model string, ids [][]int) []string {
	t.Helper()
	var in bytes.Buffer
	for _, l := range ids {
		for j, id := range l {
			if j > 0 {
				in.WriteByte(' ')
			}
			fmt.Fprint(&in, id)
		}
		in.WriteByte('\n')
	}
	cmd := exec.Command("spm_decode", "--model="+model, "--input_format=id")
	cmd.Stdin = &in
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("spm_decode: %v", err)
	}
	return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
}

func TestSentencePieceMatchesSpmEncode(t *testing.T) {
	if testing.Short() {
		t.Skip("full tier: trains every configuration with spm_train and compares with spm_encode; TestSentencePieceMetaspaceJSON and TestSentencePieceT5JSON train two of them in the short tier")
	}
	dir := t.TempDir()
	for _, c := range spConfigs {
		t.Run(c.name, func(t *testing.T) {
			model := spTrain(t, c)
			tok, err := Load(model)
			if err != nil {
				t.Fatal(err)
			}
			texts := append(slices.Clone(spTexts), spTrainLines(t, 1<<30)...)
			want := spmEncode(t, model, texts)
			bad := 0
			for i, text := range texts {
				if got := tok.Encode(text); !slices.Equal(got, want[i]) {
					bad++
					if bad <= 5 {
						t.Errorf("%q:\n got %v\nwant %v", truncate(text), got, want[i])
					}
				}
			}
			if bad > 0 {
				t.Fatalf("%d of %d texts encode differently from spm_encode", bad, len(texts))
			}
			// Decoding: as spm_decode does, but <unk> is written as its
			// text, as Hugging Face does, where spm_decode writes " ⁇ ".
			dec := spmDecode(t, model, want)
			for i, ids := range want {
				if got, w := tok.Decode(ids), strings.ReplaceAll(dec[i], " \u2047 ", "<unk>"); got != w {
					t.Errorf("Decode(%v) = %q, spm_decode %q", ids, got, w)
				}
			}
			// The tokenizer.json golem writes for it (transformers' legacy
			// LlamaTokenizerFast form) loads back to the same encoder.
			jdir := filepath.Join(dir, c.name+"-json")
			if err := tok.Save(jdir); err != nil {
				t.Fatal(err)
			}
			jtok, err := Load(jdir)
			if err != nil {
				t.Fatal(err)
			}
			for i, text := range texts {
				if got := jtok.Encode(text); !slices.Equal(got, want[i]) {
					t.Fatalf("from the saved tokenizer.json, %q:\n got %v\nwant %v", truncate(text), got, want[i])
				}
				if got, w := jtok.Decode(want[i]), tok.Decode(want[i]); got != w {
					t.Fatalf("from the saved tokenizer.json, Decode(%v) = %q, want %q", want[i], got, w)
				}
			}
			// Without normalization and with byte fallback, every valid
			// text decodes back to itself.
			if strings.Contains(c.name, "identity") || c.name == "bpe-llama" {
				for _, text := range texts {
					if got := tok.Decode(tok.Encode(text)); got != text && utf8.ValidString(text) && !strings.Contains(text, "▁") {
						t.Errorf("Decode(Encode(%q)) = %q", truncate(text), got)
					}
				}
			}
		})
	}
}

// spTrainLines returns up to n non-empty lines of the training text
// (TestSentencePieceMatchesSpmEncode compares all of them: exact ties
// between two splits are rare, and an encoder that breaks them otherwise
// than SentencePiece showed on a few lines in thousands).
func spTrainLines(t *testing.T, n int) []string {
	data, err := os.ReadFile(filepath.Join(spTrainDir(t), "train.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(l) != "" && len(out) < n {
			out = append(out, l)
		}
	}
	return out
}

// TestSentencePieceBadModel checks that a damaged .model file gives an
// error, never a panic: every truncation and byte flip of a real model.
func TestSentencePieceBadModel(t *testing.T) {
	model := spTrain(t, spConfigs[1]) // BPE with nmt_nfkc's character map
	data, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSentencePiece(data[:len(data)/2]); err == nil {
		t.Error("half a model loaded without error")
	}
	if _, err := LoadSentencePiece([]byte("not a model")); err == nil {
		t.Error("text loaded as a model")
	}
	step := 1 + len(data)/300
	if testing.Short() {
		step = 1 + len(data)/100 // a third of the places; the full run all 300
	}
	for i := 0; i < len(data); i += step {
		for _, d := range [][]byte{data[:i], flip(data, i)} {
			tok, err := LoadSentencePiece(d)
			if err == nil {
				tok.Encode(spTexts[7] + spTexts[8])
			}
		}
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "tokenizer.model")
	os.WriteFile(bad, []byte{0x0a, 0xff}, 0o644)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("Load of a bad tokenizer.model: %v, want an error naming %s", err, bad)
	}
}

func flip(b []byte, i int) []byte {
	c := slices.Clone(b)
	c[i] ^= 0xa5
	return c
}

// TestSentencePieceMetaspaceJSON reads the newer form of Llama's and
// Mistral's tokenizer.json: no normalizer, a Metaspace pre-tokenizer. It
// puts "▁" before the text unless the text starts with a space (where
// SentencePiece would put a second one), and with prepend_scheme "first"
// not after a special token.
func TestSentencePieceMetaspaceJSON(t *testing.T) {
	model := spTrain(t, spConfigs[0])
	sp, err := Load(model)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	sp.WriteJSON(&buf)
	legacy := buf.String()
	norm := "\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [\n    {\"type\": \"Prepend\", \"prepend\": \"▁\"}, \n    {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"▁\"}\n  ]},\n  \"pre_tokenizer\": null,"
	if !strings.Contains(legacy, norm) {
		t.Fatalf("tokenizer.json has no legacy normalizer:\n%s", legacy[:min(len(legacy), 2000)])
	}
	for _, scheme := range []string{"first", "always"} {
		js := strings.Replace(legacy, norm, `"normalizer": null, "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "`+scheme+`", "split": false},`, 1)
		tok, err := LoadTokenizerJSON([]byte(js))
		if err != nil {
			t.Fatal(err)
		}
		for _, text := range spTexts {
			want := sp.Encode(text)
			if text != "" && text[0] == ' ' {
				want = sp.Encode(text[1:]) // one "▁", not two
			}
			if got := tok.Encode(text); !slices.Equal(got, want) {
				t.Errorf("%s: %q: got %v, want %v", scheme, text, got, want)
			}
		}
		got := tok.EncodeWithSpecial("<s>Hello")
		bos, _ := tok.SpecialID("<s>")
		want := append([]int{bos}, sp.Encode("Hello")...)
		if scheme == "first" { // no "▁" after <s>
			never, err := LoadTokenizerJSON([]byte(strings.Replace(js, `"prepend_scheme": "first"`, `"prepend_scheme": "never"`, 1)))
			if err != nil {
				t.Fatal(err)
			}
			want = append([]int{bos}, never.Encode("Hello")...)
			if slices.Equal(want[1:], sp.Encode("Hello")) {
				t.Fatal("never gives the same ids as always")
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: EncodeWithSpecial(\"<s>Hello\") = %v, want %v", scheme, got, want)
		}
	}
}

// TestSentencePieceT5JSON reads T5's tokenizer.json form (a Precompiled
// normalizer, then WhitespaceSplit and Metaspace, a Unigram model) made
// from an nmt_nfkc Unigram model: ids as spm_encode's, where white space
// other than spaces (which nmt_nfkc maps to spaces) does not decide.
func TestSentencePieceT5JSON(t *testing.T) {
	model := spTrain(t, spConfigs[3]) // unigram, nmt_nfkc, byte fallback
	sp, err := Load(model)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	sp.WriteJSON(&buf)
	js := buf.String()
	i, j := strings.Index(js, `"normalizer"`), strings.Index(js, `"post_processor"`)
	charsmap := js[strings.Index(js, `{"type": "Precompiled"`):]
	charsmap = charsmap[:strings.Index(charsmap, "}")+1]
	js = js[:i] + `"normalizer": ` + charsmap + `,
  "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"}, {"type": "Metaspace", "replacement": "▁", "add_prefix_space": true}]},
  ` + js[j:]
	tok, err := LoadTokenizerJSON([]byte(js))
	if err != nil {
		t.Fatalf("%v\n%s", err, js[:min(len(js), 1500)])
	}
	want := spmEncode(t, model, spTexts)
	for k, text := range spTexts {
		if got := tok.Encode(text); !slices.Equal(got, want[k]) {
			t.Errorf("%q:\n got %v\nwant %v", truncate(text), got, want[k])
		}
	}
}
