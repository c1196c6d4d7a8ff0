package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/internal/cpuprof"
	"github.com/golem-ml/golem/model/clip"
	"github.com/golem-ml/golem/model/vit"
	"github.com/golem-ml/golem/model/vqvae"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/optim"
	"github.com/golem-ml/golem/tensor"
)

// visionConfigs are the peer's configs (../shared/peer/pytorch_vision_bench.py)
// as golem models: the same widths, depths, heads, patches, batch and
// loss. What differs is named: golem's ViT has separate q, k and v
// projections (transformers' layout) where the peer fuses them, MAE's
// positions are fixed sin-cos as transformers' (the peer learns them),
// and CLIP's vision tower has CLIP's LayerNorm before its blocks. Both
// CLIP towers use the peer's exact GELU, not CLIP's quick_gelu (three
// elementwise ops in golem, not one kernel: 3.5x GELU's CPU time forward
// and backward).
var visionConfigs = map[string]struct {
	batch   int
	classes int // a classification head over Features (vit-*)
	vit     vit.Config
	clip    *clip.Config
	vq      *vqvae.Config
}{
	"vit-mnist": {batch: 128, classes: 10, vit: vitConfig(vit.ViT, 28, 1, 4, 6)},
	"vit-tiny":  {batch: 16, classes: 1000, vit: vitConfig(vit.ViT, 224, 3, 16, 12)},
	"mae-mnist": {batch: 128, vit: func() vit.Config {
		c := vitConfig(vit.MAE, 28, 1, 4, 6)
		c.DecoderHidden, c.DecoderLayers, c.DecoderHeads, c.DecoderIntermediate = 128, 2, 4, 512
		c.MaskRatio, c.NormPixLoss = 0.75, true
		return c
	}()},
	"clip-tiny": {batch: 128, clip: &clip.Config{
		Vision: vitConfig(vit.CLIP, 32, 3, 4, 6),
		Text: clip.TextConfig{Vocab: 49408, Context: 32, Hidden: 192, Layers: 6, Heads: 3, Intermediate: 768,
			Activation: "gelu", Eps: 1e-5, BOS: 49406, EOS: 49407, Pad: 1},
		Projection: 128, LogitScaleInit: 2.6592,
	}},
	// The peer's VQVAE learns its codebook by the codebook loss (decay 0),
	// without restarts; golem's model/vqvae preset otherwise updates it by
	// EMA outside the optimizer step.
	"vqvae-32": {batch: 32, vq: func() *vqvae.Config {
		c := vqvae.Presets()["vqvae-32"]
		c.Decay, c.DeadAfter = 0, 0
		return &c
	}()},
}

// vitConfig is the peer's ViT: width 192, 3 heads, MLP 4x, exact GELU.
func vitConfig(arch string, image, channels, patch, layers int) vit.Config {
	return vit.Config{Arch: arch, Image: image, Channels: channels, Patch: patch, Hidden: 192, Layers: layers, Heads: 3,
		Intermediate: 768, Activation: "gelu", Eps: 1e-5, QKVBias: true}
}

func init() {
	register("vision", func(args []string) error {
		fs := flag.NewFlagSet("vision", flag.ExitOnError)
		config := fs.String("config", "vit-mnist", "vit-mnist, vit-tiny, mae-mnist, clip-tiny or vqvae-32")
		steps := fs.Int("steps", 10, "timed steps (median is reported)")
		warmup := fs.Int("warmup", 3, "untimed steps first")
		threads := fs.Int("threads", 2, "threads")
		noPeer := fs.Bool("no-peer", false, "skip the PyTorch peer (no ratio)")
		noWinograd := fs.Bool("no-winograd", false, "run 3x3 stride-1 convolutions as the implicit GEMM, not Winograd's F(2x2, 3x3) (tensor.SetWinograd): golem's baseline for vqvae-32")
		cpuTime := fs.Bool("cpu", false, "also compare CPU time per image (user+system, all threads): golem's timed steps by getrusage, the peer's by the difference of two runs (1 and 1+max(steps, 30) timed steps); steadier than wall time on a loaded machine")
		fs.Parse(args)
		vc, ok := visionConfigs[*config]
		if !ok {
			return fmt.Errorf("unknown config %q (vit-mnist, vit-tiny, mae-mnist, clip-tiny or vqvae-32)", *config)
		}
		cpu.SetThreads(*threads)
		tensor.SetWinograd(!*noWinograd)
		be := cpu.New()
		step, params, err := visionStep(be, vc.vit, vc.clip, vc.vq, vc.classes, vc.batch)
		if err != nil {
			return err
		}
		var peer, peerMinMS float64
		if !*noPeer {
			pf, err := scriptFields("pytorch_vision_bench.py", "--config", *config, "--tuned", "--steps", fmt.Sprint(*steps),
				"--warmup", fmt.Sprint(*warmup), "--threads", fmt.Sprint(*threads))
			if err != nil {
				return err
			}
			if peer, ok = pf["images_per_s"]; !ok || peer <= 0 {
				return fmt.Errorf("peer printed no images_per_s= line")
			}
			peerMinMS = pf["step_ms_min"]
		}
		var peerCPU time.Duration
		if !*noPeer && *cpuTime {
			// at least 30 steps apart: the interpreter's start-up varies
			// by a few tenths of a CPU-second from run to run
			if peerCPU, err = peerCPUPerStep("pytorch_vision_bench.py", max(*steps, 30), "--config", *config, "--tuned",
				"--warmup", fmt.Sprint(*warmup), "--threads", fmt.Sprint(*threads)); err != nil {
				return err
			}
		}
		defer cpuprof.Start("bench")()
		// The peer's optimizer: AdamW lr 1e-4, weight decay 0.05 on
		// matrices only, gradients clipped to norm 1.
		opt := optim.NewAdamW(params, 0.9, 0.999, 1e-8, 0.05)
		var times []float64
		var last float32
		var cpuSpent time.Duration
		for s := 0; s < *warmup+*steps; s++ {
			loss, scope := step() // the batch is made before the clock starts
			t0, c0 := time.Now(), processCPU()
			opt.ZeroGrad()
			l := loss()
			tensor.Backward(l)
			opt.ClipGradNorm(1)
			opt.Update(1e-4)
			if s >= *warmup {
				times = append(times, time.Since(t0).Seconds())
				cpuSpent += processCPU() - c0
			}
			last = l.Host()[0]
			scope.Close()
		}
		slices.Sort(times)
		med := times[len(times)/2]
		ips := float64(vc.batch) / med
		fmt.Printf("golem: config=%s params=%.2fM batch=%d threads=%d step_ms=%.1f step_ms_min=%.1f loss=%.4f images_per_s=%.1f\n",
			*config, float64(nn.Count(params))/1e6, vc.batch, *threads, med*1e3, times[0]*1e3, last, ips)
		if *cpuTime {
			cms := float64(cpuSpent.Microseconds()) / 1e3 / float64(*steps)
			fmt.Printf("golem: cpu_ms_per_step=%.1f cpu_ms_per_image=%.2f\n", cms, cms/float64(vc.batch))
			if peerCPU > 0 {
				pms := float64(peerCPU.Microseconds()) / 1e3
				fmt.Printf("peer:  cpu_ms_per_step=%.1f cpu_ms_per_image=%.2f\n", pms, pms/float64(vc.batch))
				fmt.Printf("cpu_ratio=%.2f\n", pms/cms)
			}
		}
		if peer > 0 {
			fmt.Printf("peer:  images_per_s=%.1f\n", peer)
			if peerMinMS > 0 {
				fmt.Printf("best steps: golem %.1fms, peer %.1fms: ratio_min=%.2f\n", times[0]*1e3, peerMinMS, peerMinMS/(times[0]*1e3))
			}
			fmt.Printf("ratio=%.2f\n", ips/peer)
		}
		return nil
	})
}

// visionStep builds the model of a config and returns a function that
// makes a random batch in a new scope and returns the function computing
// its loss and the scope (closed after the step), and the parameters.
func visionStep(be backend.Backend, vc vit.Config, cc *clip.Config, vq *vqvae.Config, classes, B int) (func() (func() *tensor.Tensor, *tensor.Scope), []nn.Named, error) {
	r := rand.New(rand.NewPCG(1, 2))
	images := func(s *tensor.Scope, c vit.Config) *tensor.Tensor {
		px := make([]float32, B*c.Channels*c.Image*c.Image)
		for i := range px {
			px[i] = float32(r.NormFloat64())
		}
		return s.FromHost(be, px, B, c.Channels, c.Image, c.Image)
	}
	if vq != nil {
		m, err := vqvae.New(be, *vq, 1)
		if err != nil {
			return nil, nil, err
		}
		S := vq.ImageSize
		return func() (func() *tensor.Tensor, *tensor.Scope) {
			s := tensor.NewScope()
			pix := images(s, vit.Config{Channels: vq.Channels, Image: S})
			return func() *tensor.Tensor { return m.Forward(pix).Loss }, s
		}, m.Params(), nil
	}
	if cc != nil {
		m, err := clip.New(be, *cc, 1)
		if err != nil {
			return nil, nil, err
		}
		T := cc.Text.Context
		return func() (func() *tensor.Tensor, *tensor.Scope) {
			s := tensor.NewScope()
			pix := images(s, cc.Vision)
			ids := make([]int32, B*T)
			for i := range ids {
				ids[i] = int32(1 + r.IntN(49406)) // the peer's randint(1, 49407)
			}
			return func() *tensor.Tensor { return m.Forward(pix, ids, B, T).Loss }, s
		}, m.Params(), nil
	}
	m, err := vit.New(be, vc, 1)
	if err != nil {
		return nil, nil, err
	}
	params := m.Params()
	if vc.Arch == vit.MAE {
		return func() (func() *tensor.Tensor, *tensor.Scope) {
			s := tensor.NewScope()
			pix := images(s, vc)
			return func() *tensor.Tensor {
				loss, _, _ := m.ForwardMAE(pix, vc.MaskRatio, nil)
				return loss
			}, s
		}, params, nil
	}
	head := nn.NewLinear(nn.NewInit(be, 2), vc.Hidden, classes, true, 0.02)
	params = append(params, nn.Named{Name: "classifier.weight", Tensor: head.Weight}, nn.Named{Name: "classifier.bias", Tensor: head.Bias})
	return func() (func() *tensor.Tensor, *tensor.Scope) {
		s := tensor.NewScope()
		pix := images(s, vc)
		labels := make([]int32, B)
		for i := range labels {
			labels[i] = int32(r.IntN(classes))
		}
		return func() *tensor.Tensor { return tensor.CrossEntropy(head.Forward(m.Features(pix)), labels, nil) }, s
	}, params, nil
}
