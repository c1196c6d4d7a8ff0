package train

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data"
	"github.com/golem-ml/golem/data/synth"
	"github.com/golem-ml/golem/data/synth/shapes"
	"github.com/golem-ml/golem/gguf"
	"github.com/golem-ml/golem/gguf/export"
	"github.com/golem-ml/golem/internal/memflat"
	"github.com/golem-ml/golem/internal/shared"
	"github.com/golem-ml/golem/internal/testmodels"
	"github.com/golem-ml/golem/model/gpt"
)

// checkFlat runs a stage for memflat.Steps() tiny steps (run starts it on be
// with loop, which evaluates every memflat.From() steps) and checks that its
// memory is flat from step memflat.From() to the end (memflat.Probe.Check):
// 100 steps, the last 50 measured, in the short tier; 1,000 and 900 in the
// full run.
func checkFlat(t *testing.T, run func(be *cpu.CPU, loop Config) error) {
	t.Helper()
	be := cpu.New()
	p := memflat.New(be)
	loop := Config{Steps: memflat.Steps(), LR: 1e-3, Seed: 3, EvalEvery: memflat.From(), Quiet: true, Progress: io.Discard, Out: t.TempDir(),
		OnStep: p.OnStep}
	if err := run(be, loop); err != nil {
		t.Fatal(err)
	}
	p.Check(t)
}

// fullTier skips the subtest run in the short tier unless it is one of
// short, the short tier's representatives (a subtest skipped here runs in
// the full run).
func fullTier(t *testing.T, run string, short ...string) {
	t.Helper()
	if testing.Short() && !slices.Contains(short, run) {
		t.Skipf("%s runs in the full tier; -short checks %s", run, strings.Join(short, ", "))
	}
}

func TestMemoryFlatPretrain(t *testing.T) {
	dir := t.TempDir()
	corpus := filepath.Join(dir, "corpus.txt")
	if err := os.WriteFile(corpus, []byte(synth.Corpus(synth.CorpusOptions{Seed: 1, Bytes: 25000})[:20000]), 0o644); err != nil {
		t.Fatal(err)
	}
	checkFlat(t, func(be *cpu.CPU, loop Config) error {
		p := Presets()["baby"]
		p.Model.Layers, p.Model.Heads, p.Model.KVHeads, p.Model.Hidden, p.Model.Intermediate = 1, 2, 2, 16, 32
		p.Model.Dropout = 0.1
		p.Block, p.Batch, p.EvalIters, p.Model.Context = 8, 2, 1, 8
		p.Loop = loop
		_, err := Pretrain(context.Background(), PretrainOptions{Backend: be, Tokenizer: "char", Data: []string{corpus}, Preset: p, CacheDir: dir, Log: io.Discard})
		return err
	})
}

// TestMemoryFlatSFT checks full SFT, LoRA and LoRA over a Q8_0 base. The
// short tier checks full and lora-q8 (LoRA's adapters with dropout, and
// the quantized products under them), the full run lora too.
func TestMemoryFlatSFT(t *testing.T) {
	base := tinyLM(t, 1, 64)
	// LoRA over the base's Q8_0 GGUF export: the quantized products and
	// their backward stay flat too.
	q8 := filepath.Join(t.TempDir(), "q8.gguf")
	if _, err := export.Folder(base, q8, export.Options{Type: gguf.Q8_0}); err != nil {
		t.Fatal(err)
	}
	for _, run := range []string{"full", "lora", "lora-q8"} {
		t.Run(run, func(t *testing.T) {
			fullTier(t, run, "full", "lora-q8")
			checkFlat(t, func(be *cpu.CPU, loop Config) error {
				o := SFTOptions{Backend: be, Model: base, Examples: builtinSFT(t, 1, 16), Batch: 2, Loop: loop, Log: io.Discard}
				if run == "lora-q8" {
					o.Model = q8
				}
				if run != "full" {
					o.LoRA = &gpt.LoRAConfig{R: 2, Alpha: 4, Dropout: 0.1}
				}
				_, err := SFT(context.Background(), o)
				return err
			})
		})
	}
}

func TestMemoryFlatReward(t *testing.T) {
	sft := tinyLM(t, 1, 64)
	kinds := []string{synth.KindFirstLetter, synth.KindNumberOnly}
	ex := rankingsOf(synth.MustTasks(synth.TaskOptions{Seed: 1, N: 8, Kinds: kinds}))
	checkFlat(t, func(be *cpu.CPU, loop Config) error {
		_, _, err := Reward(context.Background(), RewardOptions{Backend: be, Model: sft, Data: ex, Heldout: ex[:2], Batch: 1, Loop: loop, Log: io.Discard})
		return err
	})
}

func TestMemoryFlatDPO(t *testing.T) {
	sft := tinyLM(t, 1, 64)
	kinds := []string{synth.KindFirstLetter, synth.KindNumberOnly}
	tr := prefPairs(synth.MustTasks(synth.TaskOptions{Seed: 1, N: 8, Kinds: kinds}))
	checkFlat(t, func(be *cpu.CPU, loop Config) error {
		_, err := DPO(context.Background(), DPOOptions{Backend: be, Policy: sft, Data: tr, Heldout: tr[:2], Beta: 0.5, Batch: 2, RPOAlpha: 0.5,
			Loop: loop, Log: io.Discard})
		return err
	})
}

// TestMemoryFlatPPO checks PPO with full weights and with LoRA. The short
// tier checks lora (the rollouts, the reward model's scores, the policy's
// and the value head's updates, the pretraining mix; the adapters with
// dropout), the full run full too (half the CPU again: every weight's
// gradient and AdamW state, the value model a whole copy); TestPPOResumeIsExact
// runs full-weight PPO in the short tier.
func TestMemoryFlatPPO(t *testing.T) {
	sft := tinyLM(t, 1, 64)
	rm := tinyRM(t, sft, tinyTokenizer(t))
	prompts := taskPrompts(synth.MustTasks(synth.TaskOptions{Seed: 1, N: 4, Kinds: []string{synth.KindFirstLetter}}))
	text := synth.Corpus(synth.CorpusOptions{Seed: 2, Bytes: 10000})[:5000]
	for _, run := range []string{"full", "lora"} {
		t.Run(run, func(t *testing.T) {
			fullTier(t, run, "lora")
			checkFlat(t, func(be *cpu.CPU, loop Config) error {
				o := PPOOptions{Backend: be, Policy: sft, Reward: rm, Prompts: prompts, Batch: 2, MiniBatches: 2, Epochs: 2,
					MaxTokens: 3, PtxCoef: 0.5, PtxBatch: 1, PtxTexts: []string{text}, Loop: loop, Log: io.Discard}
				if run == "lora" { // the policy's and the value model's adapters, dropout on, the reward model's backbone shared
					o.LoRA = &gpt.LoRAConfig{R: 2, Alpha: 4, Dropout: 0.1}
				}
				_, err := PPO(context.Background(), o)
				return err
			})
		})
	}
}

func TestMemoryFlatGRPO(t *testing.T) {
	sft := tinyLM(t, 1, 64)
	tasks := verifiable(synth.MustTasks(synth.TaskOptions{Seed: 1, N: 4, Kinds: []string{synth.KindFirstLetter}}))
	checkFlat(t, func(be *cpu.CPU, loop Config) error {
		_, err := GRPO(context.Background(), GRPOOptions{Backend: be, Policy: sft, Tasks: tasks, Rewards: []string{"correct", "format"}, Group: 2, Prompts: 1, MaxTokens: 3, Beta: 0.1,
			Loop: loop, Log: io.Discard})
		return err
	})
}

func TestMemoryFlatJudge(t *testing.T) {
	trainEx, testEx, c := judgeFixture(t, 8)
	c.ImageSize = 12
	checkFlat(t, func(be *cpu.CPU, loop Config) error {
		_, err := Judge(context.Background(), JudgeOptions{Backend: be, Train: trainEx, Eval: testEx[:4], Model: c, Batch: 2, Recolour: shapes.Recolour,
			Log: io.Discard, Loop: loop})
		return err
	})
}

// A CLIP run (both towers, the symmetric InfoNCE loss, the learned
// temperature) holds no more memory at its last step than after the warm-up.
func TestMemoryFlatCLIP(t *testing.T) {
	tok := shared.Path(t, "data/tokenizer/clip/bpe_simple_vocab_16e6.txt.gz")
	dir := t.TempDir()
	if _, err := shapes.Write(shapes.Options{Out: dir, Seed: 1, Size: 16, Train: 16, Test: 4, PerClass: 1}); err != nil {
		t.Fatal(err)
	}
	c := CLIPPresets()["tiny"]
	c.Vision.Image, c.Vision.Patch, c.Vision.Hidden, c.Vision.Layers, c.Vision.Intermediate = 16, 8, 16, 1, 32
	c.Text.Context, c.Text.Hidden, c.Text.Layers, c.Text.Intermediate, c.Projection = 16, 16, 1, 32, 16
	checkFlat(t, func(be *cpu.CPU, loop Config) error {
		_, err := CLIP(context.Background(), CLIPOptions{Backend: be, Data: filepath.Join(dir, "train.jsonl"), Model: c, Tokenizer: tok, Batch: 4, Loop: loop, Log: io.Discard})
		return err
	})
}

// LLaVA's two stages, and stage 2 with LoRA, hold no more memory at their
// last step than after the warm-up (the image's tokens enter as input
// embeddings; the tower runs without gradients), evaluations included.
// The short tier checks instruct-lora (the stages' one loss, a frozen
// language model under the projector's gradients, as in align), on the
// first two exchanges of each conversation; the full run all three.
func TestMemoryFlatVLM(t *testing.T) {
	_, clipDir, lmDir := vlmFixture(t)
	// A world of 4 scenes: every batch's length is seen before the warm-up ends
	// (a length first seen later takes a new buffer from the pool, as in
	// every stage; the other stages' tests cycle their data too).
	data := t.TempDir()
	if _, err := shapes.Write(shapes.Options{Out: data, Seed: 1, Size: 16, Train: 4, Test: 2, PerClass: 1}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"train_llava.json", "test_llava.json"} {
		if err := shortConversations(filepath.Join(data, f)); err != nil {
			t.Fatal(err)
		}
	}
	align := filepath.Join(t.TempDir(), "align")
	if _, err := VLM(context.Background(), VLMOptions{Backend: cpu.New(), Stage: StageAlign, Vision: clipDir, LM: lmDir, Data: filepath.Join(data, "train.jsonl"),
		Batch: 2, Log: io.Discard, Loop: Config{Steps: 1, LR: 1e-3, Out: align, Quiet: true, Progress: io.Discard}}); err != nil {
		t.Fatal(err)
	}
	for _, run := range []string{"align", "instruct", "instruct-lora"} {
		t.Run(run, func(t *testing.T) {
			fullTier(t, run, "instruct-lora")
			checkFlat(t, func(be *cpu.CPU, loop Config) error {
				o := VLMOptions{Backend: be, Stage: StageInstruct, Model: align, Data: filepath.Join(data, "train_llava.json"), EvalData: filepath.Join(data, "test_llava.json"),
					Batch: 2, Loop: loop, Log: io.Discard}
				if run == "align" {
					o = VLMOptions{Backend: be, Stage: StageAlign, Vision: clipDir, LM: lmDir, Data: filepath.Join(data, "train.jsonl"), EvalData: filepath.Join(data, "test.jsonl"),
						Batch: 2, Loop: loop, Log: io.Discard}
				}
				if run == "instruct-lora" {
					o.LoRA = &gpt.LoRAConfig{R: 2, Alpha: 4}
				}
				_, err := VLM(context.Background(), o)
				return err
			})
		})
	}
}

// A text-to-image run (golem imagine train: image tokens after the
// caption, caption dropout) holds no more memory at its last step than
// after the warm-up.
func TestMemoryFlatImagine(t *testing.T) {
	dir := t.TempDir()
	if _, err := shapes.Write(shapes.Options{Out: dir, Seed: 1, Size: 16, Train: 8, Test: 4, PerClass: 1}); err != nil {
		t.Fatal(err)
	}
	vqDir := filepath.Join(dir, "vq")
	if err := testmodels.VQVAE(t, cpu.New(), 16, 1).Save(vqDir); err != nil {
		t.Fatal(err)
	}
	checkFlat(t, func(be *cpu.CPU, loop Config) error {
		_, err := Imagine(context.Background(), ImagineOptions{Backend: be, VQ: vqDir, Data: filepath.Join(dir, "train.jsonl"), EvalData: filepath.Join(dir, "test.jsonl"),
			Model: ImaginePreset{Hidden: 16, Layers: 1, Heads: 2, TextLength: 64, Vocab: 512}, Batch: 2, Loop: loop, Log: io.Discard})
		return err
	})
}

// golem imagine dpo (the policy and its frozen reference scoring each
// pair's images after its caption) holds no more memory at its last step
// than after the warm-up.
func TestMemoryFlatImagineDPO(t *testing.T) {
	m := imagineStartPreset
	if testing.Short() {
		m.Hidden = 16 // the same layers at half the width: a step costs 0.6 of one at 32
	}
	dir, start := imagineStartModel(t, m, 4, Config{Steps: 1, LR: 1e-3, Seed: 1})
	trainP, testP := imagePrefsData(t, dir)
	checkFlat(t, func(be *cpu.CPU, loop Config) error {
		_, err := ImagineDPO(context.Background(), ImagineDPOOptions{Backend: be, Model: start, Data: trainP, EvalData: testP, Beta: 0.1, RPOAlpha: 0.5, Batch: 2,
			Loop: loop, Log: io.Discard})
		return err
	})
}

// The preference and RL stages on a LLaVA model (golem reward, dpo, ppo
// and grpo --model a LLaVA folder: the image's tokens enter as input
// embeddings, the tower runs without gradients) hold no more memory at
// their last step than after the warm-up, each full and with LoRA. The short
// tier checks dpo-lora and ppo (LoRA and full weights, the preference
// loss, rollouts scored by a LLaVA reward model: grpo's rollouts sample
// the image rows as ppo's do), the full run all eight.
func TestMemoryFlatVLMRL(t *testing.T) {
	vlmDir, _, rmDir, ds, _, _ := ppoVLMFixture(t)
	file, _, _ := strings.Cut(ds.Examples[0].Source, ":") // the shapes world's some_prefs.jsonl
	shapesDir := filepath.Dir(file)
	ranks := filepath.Join(shapesDir, "mem_rankings.jsonl") // beside the images its lines name
	writeHead(t, filepath.Join(shapesDir, "train_rankings.jsonl"), ranks, 4)
	rk, err := data.Read(ranks, data.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	prefs := ds.Examples[:4] // four pairs on one image: every batch's length is seen before the warm-up ends
	if testing.Short() {
		// Four pairs of one-line descriptions of a one-shape scene (about
		// 50 characters an answer, not 170): dpo-lora's steps cost a third.
		prefs = ds.Examples[36:40]
	}
	for _, run := range []string{"reward", "reward-lora", "dpo", "dpo-lora", "ppo", "ppo-lora", "grpo", "grpo-lora"} {
		t.Run(run, func(t *testing.T) {
			fullTier(t, run, "dpo-lora", "ppo")
			var lora *gpt.LoRAConfig
			if strings.HasSuffix(run, "-lora") {
				lora = &gpt.LoRAConfig{R: 2, Alpha: 4, Dropout: 0.1}
			}
			checkFlat(t, func(be *cpu.CPU, loop Config) error {
				var err error
				switch strings.TrimSuffix(run, "-lora") {
				case "reward":
					_, _, err = Reward(context.Background(), RewardOptions{Backend: be, Model: vlmDir, Data: rk.Examples, Heldout: rk.Examples[:2], Batch: 1, LoRA: lora, Loop: loop, Log: io.Discard})
				case "dpo":
					_, err = DPO(context.Background(), DPOOptions{Backend: be, Policy: vlmDir, Data: prefs, Heldout: prefs[:2], Beta: 0.5, Batch: 2, RPOAlpha: 0.5, LoRA: lora,
						Loop: loop, Log: io.Discard})
				case "ppo":
					_, err = PPO(context.Background(), PPOOptions{Backend: be, Policy: vlmDir, Reward: rmDir, Prompts: prefs, Batch: 2, MiniBatches: 2, Epochs: 2,
						MaxTokens: 3, LoRA: lora, Loop: loop, Log: io.Discard})
				case "grpo":
					_, err = GRPO(context.Background(), GRPOOptions{Backend: be, Policy: vlmDir, Tasks: vlmVerifiable(prefs), Rewards: []string{"short"}, Group: 2, Prompts: 1,
						MaxTokens: 3, Beta: 0.1, LoRA: lora, Loop: loop, Log: io.Discard})
				}
				return err
			})
		})
	}
}
