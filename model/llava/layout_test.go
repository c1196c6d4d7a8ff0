package llava

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/safetensors"
	"github.com/golem-ml/golem/tensor"
)

// tinyLM is tinyOf over 50 tokens as a real checkpoint of arch has its
// biases: GPT-2 tied with biases, Llama untied without, Qwen2 untied with
// q/k/v biases.
func tinyLM(t *testing.T, arch string) *Model { return tinyOf(t, arch, 50, arch != "llama") }

// stateDict is the names and shapes of the state dict of transformers'
// LlavaForConditionalGeneration for tinyLM(arch)'s config with a
// vocabulary of V rows, written from transformers' code (read at commit
// 00d3cdbeaab2, 4.52's layout, which 5.x keeps:
// models/llava/modeling_llava.py's LlavaForConditionalGeneration
// holds model = LlavaModel and lm_head = nn.Linear(hidden, vocab,
// bias=False), named in its state dict even when tied; LlavaModel holds
// vision_tower = AutoModel(vision_config), multi_modal_projector
// (linear_1, linear_2 with multimodal_projector_bias) and language_model =
// AutoModel(text_config)). AutoModel is models/clip/modeling_clip.py's
// CLIPVisionModel (vision_model.embeddings.class_embedding,
// patch_embedding without bias, position_embedding; pre_layrnorm;
// encoder.layers.N: self_attn k/v/q/out_proj, layer_norm1, mlp.fc1/fc2,
// layer_norm2; post_layernorm; position_ids is a non-persistent buffer),
// models/gpt2/modeling_gpt2.py's GPT2Model (wte, wpe, h.N: ln_1,
// attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj, Conv1D weights
// [in, out]; ln_f; attn.bias/masked_bias are non-persistent buffers),
// models/llama/modeling_llama.py's LlamaModel and
// models/qwen2/modeling_qwen2.py's Qwen2Model (embed_tokens; layers.N:
// self_attn q/k/v/o_proj, Qwen2's q/k/v with bias, mlp
// gate/up/down_proj, input_layernorm, post_attention_layernorm; norm;
// rotary_emb.inv_freq is non-persistent).
func stateDict(arch string, V int) map[string][]int {
	const Dv, Iv, C, I, P, N = 16, 32, 32, 64, 64, 5
	sd := map[string][]int{}
	add := func(prefix string, shapes map[string][]int) {
		for n, s := range shapes {
			sd[prefix+n] = s
		}
	}
	v := "model.vision_tower.vision_model."
	add(v+"embeddings.", map[string][]int{"class_embedding": {Dv}, "patch_embedding.weight": {Dv, 3, 4, 4}, "position_embedding.weight": {N, Dv}})
	add(v, map[string][]int{"pre_layrnorm.weight": {Dv}, "pre_layrnorm.bias": {Dv}, "post_layernorm.weight": {Dv}, "post_layernorm.bias": {Dv}})
	l := v + "encoder.layers.0."
	for _, p := range []string{"k_proj", "v_proj", "q_proj", "out_proj"} {
		add(l+"self_attn."+p+".", map[string][]int{"weight": {Dv, Dv}, "bias": {Dv}})
	}
	add(l, map[string][]int{"layer_norm1.weight": {Dv}, "layer_norm1.bias": {Dv}, "layer_norm2.weight": {Dv}, "layer_norm2.bias": {Dv},
		"mlp.fc1.weight": {Iv, Dv}, "mlp.fc1.bias": {Iv}, "mlp.fc2.weight": {Dv, Iv}, "mlp.fc2.bias": {Dv}})
	add("model.multi_modal_projector.", map[string][]int{"linear_1.weight": {C, Dv}, "linear_1.bias": {C}, "linear_2.weight": {C, C}, "linear_2.bias": {C}})
	sd["lm_head.weight"] = []int{V, C}
	lm := "model.language_model."
	if arch == "gpt2" {
		add(lm, map[string][]int{"wte.weight": {V, C}, "wpe.weight": {P, C}, "ln_f.weight": {C}, "ln_f.bias": {C}})
		add(lm+"h.0.", map[string][]int{"ln_1.weight": {C}, "ln_1.bias": {C}, "ln_2.weight": {C}, "ln_2.bias": {C},
			"attn.c_attn.weight": {C, 3 * C}, "attn.c_attn.bias": {3 * C}, "attn.c_proj.weight": {C, C}, "attn.c_proj.bias": {C},
			"mlp.c_fc.weight": {C, I}, "mlp.c_fc.bias": {I}, "mlp.c_proj.weight": {I, C}, "mlp.c_proj.bias": {C}})
		return sd
	}
	add(lm, map[string][]int{"embed_tokens.weight": {V, C}, "norm.weight": {C}})
	add(lm+"layers.0.", map[string][]int{"input_layernorm.weight": {C}, "post_attention_layernorm.weight": {C},
		"self_attn.q_proj.weight": {C, C}, "self_attn.k_proj.weight": {C, C}, "self_attn.v_proj.weight": {C, C}, "self_attn.o_proj.weight": {C, C},
		"mlp.gate_proj.weight": {I, C}, "mlp.up_proj.weight": {I, C}, "mlp.down_proj.weight": {C, I}})
	if arch == "qwen2" {
		add(lm+"layers.0.self_attn.", map[string][]int{"q_proj.bias": {C}, "k_proj.bias": {C}, "v_proj.bias": {C}})
	}
	return sd
}

// headerOf is the names and shapes of a safetensors file.
func headerOf(t *testing.T, path string) map[string][]int {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := map[string][]int{}
	for _, n := range f.Names() {
		info, _ := f.Info(n)
		h[n] = info.Shape
	}
	return h
}

func sameHeader(t *testing.T, what string, got, want map[string][]int) {
	t.Helper()
	for n, s := range want {
		if g, ok := got[n]; !ok {
			t.Errorf("%s: no tensor %q", what, n)
		} else if !slices.Equal(g, s) {
			t.Errorf("%s: %q is %v, want %v", what, n, g, s)
		}
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			t.Errorf("%s: tensor %q is not transformers'", what, n)
		}
	}
}

// A saved LLaVA folder holds exactly the tensors, by name and shape, of
// the state dict transformers' LlavaForConditionalGeneration has for its
// config (4.52 and later, 5.x), whatever the language model: GPT-2 (the
// presets of golem pretrain), Llama, Qwen2; config.json says whether the
// head is tied at the top as in text_config.
func TestFolderIsTransformersStateDict(t *testing.T) {
	for _, arch := range []string{"gpt2", "llama", "qwen2"} {
		t.Run(arch, func(t *testing.T) {
			m := tinyLM(t, arch)
			dir := t.TempDir()
			if err := m.Save(dir); err != nil {
				t.Fatal(err)
			}
			var cj struct {
				Tie  *bool `json:"tie_word_embeddings"`
				Text struct {
					Vocab int   `json:"vocab_size"`
					Tie   *bool `json:"tie_word_embeddings"`
				} `json:"text_config"`
			}
			b, err := os.ReadFile(filepath.Join(dir, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &cj); err != nil {
				t.Fatal(err)
			}
			if cj.Tie == nil || cj.Text.Tie == nil || *cj.Tie != (arch == "gpt2") || *cj.Text.Tie != *cj.Tie {
				t.Errorf("tie_word_embeddings %v, text_config's %v; want both %v", cj.Tie, cj.Text.Tie, arch == "gpt2")
			}
			sameHeader(t, arch, headerOf(t, filepath.Join(dir, safetensors.ModelFile)), stateDict(arch, cj.Text.Vocab))
		})
	}
}

// logitsOf is m's logits for a prompt whose image sits between two
// tokens and two more after it, and for a text alone, on host.
func logitsOf(m *Model) []float32 {
	var out []float32
	tensor.NoGrad(func() {
		s := tensor.NewScope()
		defer s.Close()
		img, err := m.ImageFeatures(s, pixels(m, 1), 1)
		if err != nil {
			panic(err)
		}
		h := m.LM.Forward([]int32{7, 8}, 1, 2, gpt.Options{Embeds: m.Prefix([]int{3, 4}, img), Scope: s})
		out = append(out, s.Adopt(m.LM.Logits(h)).Host()...)
		h = m.LM.Forward([]int32{1, 2, 3, 4, 5}, 1, 5, gpt.Options{Scope: s})
		out = append(out, s.Adopt(m.LM.Logits(h)).Host()...)
	})
	return out
}

func sameBits(t *testing.T, what string, a, b []float32) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d logits, want %d", what, len(b), len(a))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("%s: logit %d is %v, want %v", what, i, b[i], a[i])
		}
	}
}

// toLegacy renames a tensor of a folder in the current layout to the
// name transformers up to 4.51 (and golem before) gave it, "" to drop
// it; body is the language model's own prefix ("transformer.",
// "model."), tied whether its head is the embedding.
func toLegacy(name, body string, tied bool) string {
	n, adapter := strings.CutPrefix(name, "base_model.model.")
	switch {
	case n == "lm_head.weight" && tied:
		return ""
	case n == "lm_head.weight" || n == "score.weight":
		n = "language_model." + n
	case strings.HasPrefix(n, LMPrefix):
		n = "language_model." + body + strings.TrimPrefix(n, LMPrefix)
	default:
		n = strings.TrimPrefix(n, "model.")
	}
	if adapter {
		n = "base_model.model." + n
	}
	return n
}

// relayout rewrites the safetensors file path with each tensor renamed
// by rename ("" drops it), its metadata kept; with trim, a tensor of a
// row per token loses its last row (the image token's).
func relayout(t *testing.T, path string, rename func(string) string, trim ...bool) {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for _, n := range f.Names() {
		x, shape, err := f.Float32(n)
		if err != nil {
			t.Fatal(err)
		}
		if len(trim) > 0 && trim[0] && vocabRows(n) {
			shape = []int{shape[0] - 1, shape[1]}
			x = x[:shape[0]*shape[1]]
		}
		if r := rename(n); r != "" {
			ts = append(ts, safetensors.Tensor{Name: r, Shape: shape, F32: x})
		}
	}
	meta := f.Metadata()
	f.Close()
	if err := safetensors.Write(path, ts, meta); err != nil {
		t.Fatal(err)
	}
}

// legacyFolder turns the folder Save wrote into the one golem wrote
// before (the layout of transformers up to 4.51, and llava-hf's on the
// Hub): the weights under the old names, without the image token's row,
// text_config's vocab_size the language model's (image_token_index past
// it).
func legacyFolder(t *testing.T, dir string, m *Model) {
	t.Helper()
	body := "model."
	if m.Config.Text.Arch == "gpt2" {
		body = "transformer."
	}
	relayout(t, filepath.Join(dir, safetensors.ModelFile), func(n string) string { return toLegacy(n, body, m.Config.Text.Tied) }, true)
	oldVocab(t, dir, m.Config.Text.Vocab)
	h := headerOf(t, filepath.Join(dir, safetensors.ModelFile))
	if s := h[legacyLM+lmEmbedName(&m.Config)]; len(s) != 2 || s[0] != m.Config.Text.Vocab {
		t.Fatalf("the legacy folder's %s is %v, want %d rows", legacyLM+lmEmbedName(&m.Config), s, m.Config.Text.Vocab)
	}
}

// oldVocab rewrites dir's config.json as golem wrote it before: text_config's
// vocab_size V (the language model's), not V+1, image_token_index V.
func oldVocab(t *testing.T, dir string, V int) {
	t.Helper()
	p := filepath.Join(dir, "config.json")
	b, _ := os.ReadFile(p)
	re := regexp.MustCompile(fmt.Sprintf(`"vocab_size": ?%d\b`, V+1))
	old := re.ReplaceAllString(string(b), fmt.Sprintf(`"vocab_size": %d`, V))
	if old == string(b) || !strings.Contains(old, fmt.Sprintf(`"image_token_index": %d`, V)) {
		t.Fatalf("config.json: no vocab_size %d and image_token_index %d:\n%s", V+1, V, b)
	}
	os.WriteFile(p, []byte(old), 0o644)
}

// A saved folder loads back to the same logits bit for bit, for an image
// prompt and a text; so do the folders golem wrote before, and
// transformers' up to 4.51 (the legacy names).
func TestRoundTripBothLayouts(t *testing.T) {
	for _, arch := range []string{"gpt2", "llama", "qwen2"} {
		for _, legacy := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/legacy=%v", arch, legacy), func(t *testing.T) {
				m := tinyLM(t, arch)
				want := logitsOf(m)
				dir := t.TempDir()
				if err := m.Save(dir); err != nil {
					t.Fatal(err)
				}
				if legacy {
					legacyFolder(t, dir, m)
				}
				got, err := Load(cpu.New(), dir)
				if err != nil {
					t.Fatal(err)
				}
				sameBits(t, "loaded", want, logitsOf(got))
				if got.LM.Config.Vocab != m.LM.Config.Vocab || (got.LM.Head == nil) != (m.LM.Head == nil) {
					t.Errorf("loaded vocab %d, tied %v; want %d, %v", got.LM.Config.Vocab, got.LM.Head == nil, m.LM.Config.Vocab, m.LM.Head == nil)
				}
			})
		}
	}
}

// A LoRA adapter over a LLaVA folder names its tensors as PEFT does over
// transformers 5.x's LlavaForConditionalGeneration ("base_model.model." +
// the module's name in it), its target_modules matches the language
// model's modules there and not the vision tower's; it loads back to the
// same logits, and so does one golem wrote before (the legacy names).
func TestLoRAAdapterNames(t *testing.T) {
	for _, arch := range []string{"gpt2", "llama"} {
		t.Run(arch, func(t *testing.T) {
			base := t.TempDir()
			m := tinyLM(t, arch)
			if err := m.Save(base); err != nil {
				t.Fatal(err)
			}
			targets := []string{"q_proj", "v_proj"}
			module, lm := "layers.0.self_attn.q_proj", "model.language_model.layers.0.self_attn.q_proj"
			if arch == "gpt2" {
				targets = []string{"c_attn"}
				module, lm = "h.0.attn.c_attn", "model.language_model.h.0.attn.c_attn"
			}
			c := gpt.LoRAConfig{R: 2, Alpha: 4, Targets: targets}
			ps, err := m.LM.AttachLoRA(c, 4)
			if err != nil {
				t.Fatal(err)
			}
			fill(ps, 5, 0.1)
			want := logitsOf(m)
			dir := filepath.Join(t.TempDir(), "lora")
			if err := m.SaveLoRA(dir, c, base); err != nil {
				t.Fatal(err)
			}
			h := headerOf(t, filepath.Join(dir, gpt.AdapterModelFile))
			for _, n := range []string{"base_model.model." + lm + ".lora_A.weight", "base_model.model." + lm + ".lora_B.weight",
				"base_model.model.model.multi_modal_projector.linear_1.weight", "base_model.model.model.multi_modal_projector.linear_2.bias"} {
				if _, ok := h[n]; !ok {
					t.Errorf("adapter has no %q: %v", n, h)
				}
			}
			a, err := gpt.ReadAdapterConfig(dir)
			if err != nil {
				t.Fatal(err)
			}
			re := a.TargetPattern
			if !fullMatch(re, lm) || fullMatch(re, "model.vision_tower.vision_model.encoder.layers.0.self_attn.q_proj") || fullMatch(re, "language_model."+module) {
				t.Errorf("target_modules %q: want it to match %s alone", re, lm)
			}
			got, err := Load(cpu.New(), dir)
			if err != nil {
				t.Fatal(err)
			}
			sameValues(t, "merged adapter", want, logitsOf(got))

			// The adapter golem wrote before.
			body := map[string]string{"gpt2": "transformer.", "llama": "model."}[arch]
			relayout(t, filepath.Join(dir, gpt.AdapterModelFile), func(n string) string { return toLegacy(n, body, false) })
			p := filepath.Join(dir, gpt.AdapterConfigFile)
			b, _ := os.ReadFile(p)
			old := strings.Replace(string(b), `model\\.language_model\\.`, `language_model\\.`, 1)
			if old == string(b) {
				t.Fatalf("no current prefix in %s", b)
			}
			os.WriteFile(p, []byte(old), 0o644)
			if _, ok := headerOf(t, filepath.Join(dir, gpt.AdapterModelFile))["base_model.model.language_model."+body+module+".lora_A.weight"]; !ok {
				t.Fatal("the legacy adapter lacks its old names")
			}
			got, err = Load(cpu.New(), dir)
			if err != nil {
				t.Fatal(err)
			}
			sameValues(t, "legacy adapter", want, logitsOf(got))
		})
	}
}

// fullMatch reports whether PEFT's target_modules expression re matches
// the module name whole (re.fullmatch).
func fullMatch(re, name string) bool {
	return regexp.MustCompile("^(?:" + re + ")$").MatchString(name)
}

// A LLaVA reward model's folder and its adapter take the current names
// (model.language_model.*, score.weight at the top; the adapter's
// "base_model.model.score.weight"), and load back; so do the ones golem
// wrote before.
func TestScorerNames(t *testing.T) {
	be := cpu.New()
	base := t.TempDir()
	m := tinyLM(t, "gpt2")
	if err := m.Save(base); err != nil {
		t.Fatal(err)
	}
	rm := NewScorer(m, 5)
	fill([]nn.Named{{Name: "score", Tensor: rm.Score.Score.Weight}}, 6, 1)
	want := values(rm)
	dir := filepath.Join(t.TempDir(), "rm")
	if err := rm.Save(dir); err != nil {
		t.Fatal(err)
	}
	h := headerOf(t, filepath.Join(dir, safetensors.ModelFile))
	for _, n := range []string{"score.weight", "model.language_model.wte.weight", "model.multi_modal_projector.linear_1.weight"} {
		if _, ok := h[n]; !ok {
			t.Errorf("reward model has no %q", n)
		}
	}
	c := gpt.LoRAConfig{R: 2, Alpha: 4, Targets: []string{"c_attn"}}
	rs := NewScorer(m, 7)
	ps, err := rs.Score.AttachLoRA(c, 8)
	if err != nil {
		t.Fatal(err)
	}
	fill(ps, 9, 0.1)
	wantA := values(rs)
	adir := filepath.Join(t.TempDir(), "rm-lora")
	if err := rs.SaveLoRA(adir, c, base); err != nil {
		t.Fatal(err)
	}
	ah := headerOf(t, filepath.Join(adir, gpt.AdapterModelFile))
	for _, n := range []string{"base_model.model.score.weight", "base_model.model.model.language_model.h.0.attn.c_attn.lora_A.weight"} {
		if _, ok := ah[n]; !ok {
			t.Errorf("reward adapter has no %q: %v", n, ah)
		}
	}
	for _, legacy := range []bool{false, true} {
		if legacy {
			relayout(t, filepath.Join(dir, safetensors.ModelFile), func(n string) string { return toLegacy(n, "transformer.", true) }, true)
			relayout(t, filepath.Join(adir, gpt.AdapterModelFile), func(n string) string { return toLegacy(n, "transformer.", false) })
			p := filepath.Join(adir, gpt.AdapterConfigFile)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, []byte(strings.Replace(string(b), `model\\.language_model\\.`, `language_model\\.`, 1)), 0o644)
			oldVocab(t, dir, m.Config.Text.Vocab)
			if _, ok := headerOf(t, filepath.Join(dir, safetensors.ModelFile))["language_model.score.weight"]; !ok {
				t.Fatal("the legacy reward model lacks language_model.score.weight")
			}
		}
		got, err := LoadScorer(be, dir)
		if err != nil {
			t.Fatalf("legacy %v: %v", legacy, err)
		}
		sameValues(t, fmt.Sprintf("reward model, legacy %v", legacy), want, values(got))
		ga, err := LoadScorer(be, adir)
		if err != nil {
			t.Fatalf("legacy %v: %v", legacy, err)
		}
		sameValues(t, fmt.Sprintf("reward adapter, legacy %v", legacy), wantA, values(ga))
	}
}

// A saved folder's vocabulary holds the image token as transformers
// needs to look it up: text_config's vocab_size one more than the
// language model's, image_token_index that row, the embedding's and the
// LM head's row the mean of their others (LLaVA's recipe for the tokens
// it adds); golem reads it back to the language model's vocabulary, and
// saving again writes the same file. A folder whose image token is
// inside its vocabulary and not the last row (llava-hf's: 32000 of
// 32064) keeps its whole vocabulary.
func TestImageRow(t *testing.T) {
	for _, arch := range []string{"gpt2", "llama"} {
		t.Run(arch, func(t *testing.T) {
			m := tinyLM(t, arch)
			V, C := m.Config.Text.Vocab, m.Config.Text.Hidden
			dir := t.TempDir()
			if err := m.Save(dir); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
			for _, want := range []string{fmt.Sprintf(`"vocab_size": %d,`, V+1), fmt.Sprintf(`"image_token_index": %d,`, V)} {
				if !strings.Contains(string(b), want) {
					t.Errorf("config.json lacks %s", want)
				}
			}
			f, err := safetensors.Open(filepath.Join(dir, safetensors.ModelFile))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			embed := gpt.WrappedName(LMPrefix, lmEmbedName(&m.Config))
			for name, src := range map[string][]float32{embed: m.LM.Embed.Weight.Host(), "lm_head.weight": m.LM.Embed.Weight.Host()} {
				if name == "lm_head.weight" && m.LM.Head != nil {
					src = m.LM.Head.Weight.Host()
				}
				x, shape, err := f.Float32(name)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(shape, []int{V + 1, C}) || !slices.Equal(x[:V*C], src) {
					t.Fatalf("%s: shape %v, or its first %d rows not the model's", name, shape, V)
				}
				for j := range C {
					var sum float64
					for r := range V {
						sum += float64(src[r*C+j])
					}
					if d := float64(x[V*C+j]) - sum/float64(V); d > 1e-6 || d < -1e-6 {
						t.Fatalf("%s: row %d column %d is %v, want the mean %v", name, V, j, x[V*C+j], sum/float64(V))
					}
				}
			}
			got, err := Load(cpu.New(), dir)
			if err != nil {
				t.Fatal(err)
			}
			if got.Config.Text.Vocab != V || got.Config.ImageToken != V || got.LM.Embed.Weight.Dim(0) != V {
				t.Errorf("loaded vocab %d, image token %d, embedding rows %d; want %d each", got.Config.Text.Vocab, got.Config.ImageToken, got.LM.Embed.Weight.Dim(0), V)
			}
			again := t.TempDir()
			if err := got.Save(again); err != nil {
				t.Fatal(err)
			}
			for _, n := range []string{"config.json", safetensors.ModelFile} {
				a, _ := os.ReadFile(filepath.Join(dir, n))
				b, _ := os.ReadFile(filepath.Join(again, n))
				if string(a) != string(b) {
					t.Errorf("%s differs once loaded and saved again", n)
				}
			}
		})
	}
	// llava-hf's: the image token inside the vocabulary.
	m := tinyLM(t, "llama")
	m.Config.ImageToken = 40
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Text.Vocab != 50 || c.ImageToken != 40 {
		t.Errorf("image token inside the vocabulary: vocab %d, image token %d; want 50, 40", c.Text.Vocab, c.ImageToken)
	}
	if h := headerOf(t, filepath.Join(dir, safetensors.ModelFile)); h["lm_head.weight"][0] != 50 {
		t.Errorf("lm_head.weight %v, want 50 rows", h["lm_head.weight"])
	}
}
