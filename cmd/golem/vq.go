package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/internal/atomicfile"
	"github.com/golem-ml/golem/model/vqvae"
	"github.com/golem-ml/golem/train"
)

func init() {
	register("vq train", "train a VQ-VAE image tokenizer (reports reconstruction PSNR and codebook usage)", runVQTrain)
	register("vq encode", "an image's token grid under a VQ-VAE, as JSON rows of code ids", runVQEncode)
	register("vq decode", "a token grid (JSON rows of code ids) back to a PNG image", runVQDecode)
}

func runVQTrain(args []string) error {
	fs := newFlags("vq train", `golem vq train --data shapes/train.jsonl --eval-data shapes/test.jsonl --out vq-shapes`)
	data := fs.String("data", "", "training images: JSONL, a folder, an idx file or a .tar shard (required)")
	evalData := fs.String("eval-data", "", "held-out images: val_psnr, val_mse, val_perplexity, val_codes_used at each evaluation")
	out := fs.String("out", "", "model folder to write: config.json, model.safetensors, metrics.jsonl (required)")
	model := fs.String("model", "", "a VQ-VAE folder to start from (default: a new --config model)")
	config := fs.String("config", "tiny", "the new model: "+strings.Join(vqvae.PresetNames(), ", "))
	image := fs.Int("image-size", 0, "the new model's image side in pixels, a multiple of 4 (default: the --config's, 32)")
	batch := fs.Int("batch", 64, "images per micro-batch")
	steps := fs.Int("steps", 1000, "optimizer steps")
	accum := fs.Int("accum", 1, "micro-batches per step")
	lr := fs.Float64("lr", 1e-3, "peak learning rate")
	minLR := fs.Float64("min-lr", 1e-4, "final learning rate")
	warmup := fs.Int("warmup", 20, "warmup steps")
	wd := fs.Float64("weight-decay", 0, "weight decay on convolution kernels (and a gradient-learned codebook)")
	clipNorm := fs.Float64("clip", 1, "gradient-norm clip, 0 = off")
	evalEvery := fs.Int("eval-every", 200, "evaluate every N steps, 0 = at the end")
	saveEvery := fs.Int("save-every", 0, "also checkpoint every N steps into OUT/trainer/step-N, 0 = at the end and on Ctrl-C")
	resume := fs.Bool("resume", false, resumeHelp)
	seed := fs.Uint64("seed", defaultSeed, "random seed")
	dev := addDeviceFlag(fs)
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	if *data == "" || *out == "" {
		return usageError{fmt.Errorf("vq train: need --data SPEC and --out DIR (golem vq train --help)")}
	}
	mc, ok := vqvae.Presets()[*config]
	if !ok {
		return usageError{fmt.Errorf("vq train: unknown --config %q (have %s)", *config, strings.Join(vqvae.PresetNames(), ", "))}
	}
	if *image > 0 {
		mc.ImageSize = *image
	}
	if *batch < 1 {
		return usageError{fmt.Errorf("vq train: --batch %d, want 1 or more", *batch)}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := train.VQ(ctx, train.VQOptions{Backend: be, Data: *data, EvalData: *evalData, Init: *model, Model: mc, Batch: *batch,
		Loop: train.Config{Steps: *steps, Accum: *accum, LR: *lr, MinLR: *minLR, Warmup: *warmup, WeightDecay: *wd, Beta2: 0.999, Clip: *clipNorm,
			EvalEvery: *evalEvery, SaveEvery: *saveEvery, Seed: *seed, Out: *out, Resume: *resume}})
	if err != nil {
		return err
	}
	fmt.Printf("model saved to %s (%d steps, %.0fs)\n", *out, res.Step, res.Seconds)
	if v, ok := res.Eval["val_psnr"]; ok {
		fmt.Printf("held-out: val_psnr=%.2f dB val_mse=%.5f val_perplexity=%.1f val_codes_used=%.3f\n", v, res.Eval["val_mse"], res.Eval["val_perplexity"], res.Eval["val_codes_used"])
	}
	fmt.Printf("loss=%.4f\n", res.Loss)
	return interrupted(res.Interrupted, res.Step, *out)
}

func runVQEncode(args []string) error {
	fs := newFlags("vq encode", `golem vq encode --model vq-shapes --image shapes/test/000000.png --out tokens.json`)
	model := fs.String("model", "", "a VQ-VAE folder (golem vq train's --out; required)")
	image := fs.String("image", "", "the image: PNG, JPEG, GIF or WebP (required)")
	out := fs.String("out", "", "the JSON file to write (default: standard output)")
	dev := addDeviceFlag(fs)
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	if *model == "" || *image == "" {
		return usageError{fmt.Errorf("vq encode: need --model DIR and --image FILE (golem vq encode --help)")}
	}
	m, err := vqvae.Load(be, *model)
	if err != nil {
		return err
	}
	img, err := vision.ReadFile(*image, vision.Limits{})
	if err != nil {
		return err
	}
	grid, err := train.VQTokens(m, img)
	if err != nil {
		return fmt.Errorf("vq encode: %s: %w", *image, err)
	}
	var b bytes.Buffer
	b.WriteString("[\n")
	for y, row := range grid {
		r, _ := json.Marshal(row)
		b.WriteString("  ")
		b.Write(r)
		if y < len(grid)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("]\n")
	if *out == "" {
		_, err = os.Stdout.Write(b.Bytes())
		return err
	}
	if err := atomicfile.WriteFile(*out, b.Bytes()); err != nil {
		return err
	}
	fmt.Printf("%dx%d tokens written to %s\n", len(grid), len(grid[0]), *out)
	return nil
}

func runVQDecode(args []string) error {
	fs := newFlags("vq decode", `golem vq decode --model vq-shapes --tokens tokens.json --out recon.png`)
	model := fs.String("model", "", "a VQ-VAE folder (golem vq train's --out; required)")
	tokens := fs.String("tokens", "", "the token grid: a JSON array of rows of code ids, as vq encode writes (required)")
	out := fs.String("out", "", "the PNG file to write (required)")
	dev := addDeviceFlag(fs)
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	if *model == "" || *tokens == "" || *out == "" {
		return usageError{fmt.Errorf("vq decode: need --model DIR, --tokens FILE.json and --out FILE.png (golem vq decode --help)")}
	}
	grid, err := readTokenGrid(*tokens)
	if err != nil {
		return err
	}
	m, err := vqvae.Load(be, *model)
	if err != nil {
		return err
	}
	img, err := train.VQImage(m, grid)
	if err != nil {
		return fmt.Errorf("vq decode: %s: %w", *tokens, err)
	}
	b, err := vision.EncodePNG(img)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(*out, b); err != nil {
		return err
	}
	fmt.Printf("%dx%d image written to %s\n", img.W, img.H, *out)
	return nil
}

// readTokenGrid reads a JSON array of rows of ids; errors name the file
// and line.
func readTokenGrid(path string) ([][]int32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var grid [][]int32
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&grid); err != nil {
		var off int64 = -1
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			off = se.Offset
		case errors.As(err, &te):
			off = te.Offset
		}
		if off >= 0 {
			return nil, fmt.Errorf("%s:%d: %v (want a JSON array of rows of code ids, as golem vq encode writes)", path, 1+bytes.Count(b[:min(int(off), len(b))], []byte("\n")), err)
		}
		return nil, fmt.Errorf("%s: %v (want a JSON array of rows of code ids, as golem vq encode writes)", path, err)
	}
	return grid, nil
}
