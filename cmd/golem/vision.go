package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/eval/probe"
	"github.com/golem-ml/golem/train"
	"github.com/golem-ml/golem/train/ssl"
)

func init() {
	register("vision pretrain", "self-supervised pretraining of an image encoder (mae, simclr, moco, byol, colorize, inpaint)", runVisionPretrain)
	register("vision probe", "linear-probe and k-NN accuracy of an encoder's frozen features, beside raw pixels and random initialisation", runVisionProbe)
}

// visionDefaults are each method's steps and learning rate when --steps
// and --lr are not given: runs that finish in about 10 minutes on 2 cores
// with the tiny encoder on 28x28 images (docs/vision.md).
var visionDefaults = map[string]struct {
	steps int
	lr    float64
}{
	"simclr": {1200, 2e-3}, "moco": {300, 2e-3}, "byol": {300, 2e-3},
	"mae": {700, 2e-3}, "colorize": {600, 2e-3}, "inpaint": {600, 2e-3},
}

func runVisionPretrain(args []string) error {
	fs := newFlags("vision pretrain", `golem vision pretrain --method simclr --data ../shared/data/images/mnist/train-images-idx3-ubyte.gz --out out/simclr`)
	method := fs.String("method", "", "mae, simclr, moco, byol, colorize or inpaint (required)")
	data := fs.String("data", "", "images: an idx images file, a folder of class folders, a .jsonl or a .tar shard (required)")
	out := fs.String("out", "", "model folder to write: the encoder, report.html, metrics.jsonl (required)")
	config := fs.String("config", "", "encoder: "+strings.Join(ssl.Configs(), ", ")+" (default: tiny, a ResNet)")
	steps := fs.Int("steps", -1, "optimizer steps; 0 writes the initialised encoder (default: the method's, sized for about 10 minutes on 2 idle cores)")
	batch := fs.Int("batch", 128, "images per step")
	lr := fs.Float64("lr", 0, "peak learning rate, cosine to a tenth (default: the method's, 2e-3)")
	warmup := fs.Int("warmup", -1, "warmup steps (default: a tenth of --steps)")
	wd := fs.Float64("weight-decay", 1e-4, "weight decay on matrices and convolution kernels")
	saveEvery := fs.Int("save-every", 0, "also checkpoint every N steps into OUT/trainer/step-N, 0 = at the end and on Ctrl-C")
	seed := fs.Uint64("seed", defaultSeed, "random seed (initialisation, batches, augmentations)")
	dev := addDeviceFlag(fs)
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	def, ok := visionDefaults[*method]
	switch {
	case *method == "":
		return usageError{fmt.Errorf("vision pretrain: --method is required (%s)", strings.Join(ssl.Methods(), ", "))}
	case !ok:
		return usageError{fmt.Errorf("vision pretrain: unknown --method %q (have %s)", *method, strings.Join(ssl.Methods(), ", "))}
	case *data == "" || *out == "":
		return usageError{fmt.Errorf("vision pretrain: --data SPEC and --out DIR are required")}
	}
	if *steps < 0 {
		*steps = def.steps
	}
	if *lr <= 0 {
		*lr = def.lr
	}
	if *warmup < 0 {
		*warmup = *steps / 10
	}
	ds, err := vision.Open(*data, vision.Limits{})
	if err != nil {
		return err
	}
	defer ds.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := ssl.Pretrain(ctx, ssl.Options{Backend: be, Method: *method, Data: ds, Spec: *data, Config: *config, Batch: *batch,
		Loop: train.Config{Steps: *steps, LR: *lr, Warmup: *warmup, WeightDecay: *wd, Beta2: 0.999, SaveEvery: *saveEvery, Seed: *seed, Out: *out}})
	if err != nil {
		return err
	}
	fmt.Printf("encoder saved to %s (%d steps, %.0fs); report: %s/report.html\n", *out, res.Step, res.Seconds, *out)
	if res.Step > 0 {
		fmt.Printf("loss=%.4f\n", res.Loss)
	}
	return interrupted(res.Interrupted, res.Step, *out)
}

func runVisionProbe(args []string) error {
	fs := newFlags("vision probe", `golem vision probe --model out/simclr --train ../shared/data/images/mnist/train-images-idx3-ubyte.gz --test ../shared/data/images/mnist/t10k-images-idx3-ubyte.gz`)
	model := fs.String("model", "", "encoder folder (golem vision pretrain's --out)")
	pixels := fs.Bool("pixels", false, "probe raw pixels instead of an encoder")
	trainSpec := fs.String("train", "", "labelled training images (required)")
	testSpec := fs.String("test", "", "labelled test images (required)")
	k := fs.Int("k", 20, "neighbours for k-NN")
	limitTrain := fs.Int("limit-train", 0, "use the first N training images (0 = all)")
	limitTest := fs.Int("limit-test", 0, "use the first N test images (0 = all)")
	baselines := fs.Bool("baselines", true, "with --model, also probe raw pixels and the encoder at its random initialisation")
	steps := fs.Int("probe-steps", 1500, "AdamW steps of the linear probe (1024 images each)")
	cells := fs.Int("cells", 1, "average a ResNet's last feature map over N x N cells (N*N*width features) instead of over the whole map; the random-init baseline gets the same")
	seed := fs.Uint64("seed", defaultSeed, "random seed of the linear probe")
	dev := addDeviceFlag(fs)
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	if (*model == "") == !*pixels {
		return usageError{fmt.Errorf("vision probe: give --model DIR or --pixels (one of them)")}
	}
	if *trainSpec == "" || *testSpec == "" {
		return usageError{fmt.Errorf("vision probe: --train SPEC and --test SPEC are required")}
	}
	if *cells < 1 || *cells > 16 {
		return usageError{fmt.Errorf("vision probe: --cells is %d, want 1 to 16", *cells)}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	p := &prober{be: be, k: *k, opts: probe.LinearOptions{Steps: *steps, Seed: *seed}, limitTrain: *limitTrain, limitTest: *limitTest, cells: *cells}
	if p.train, err = vision.Open(*trainSpec, vision.Limits{}); err != nil {
		return err
	}
	defer p.train.Close()
	if p.test, err = vision.Open(*testSpec, vision.Limits{}); err != nil {
		return err
	}
	defer p.test.Close()
	p.trainSpec, p.testSpec = *trainSpec, *testSpec
	var rows []probeRow
	if *pixels || *baselines {
		r, err := p.run(ctx, "raw pixels", nil)
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	if *model != "" {
		enc, err := ssl.LoadEncoder(be, *model)
		if err != nil {
			return err
		}
		if *baselines {
			init, err := ssl.RandomInit(enc)
			if err != nil {
				return err
			}
			r, err := p.run(ctx, "random init", init)
			if err != nil {
				return err
			}
			rows = append(rows, r)
		}
		r, err := p.run(ctx, *model, enc)
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	fmt.Printf("%-28s %12s %8s\n", "features", "linear probe", "k-NN")
	for _, r := range rows {
		fmt.Printf("%-28s %12.4f %8.4f\n", r.name, r.linear, r.knn)
	}
	last := rows[len(rows)-1]
	fmt.Printf("linear_probe_acc=%.4f knn_acc=%.4f\n", last.linear, last.knn)
	return nil
}

// prober computes the probes of one set of features at a time.
type prober struct {
	be                    backend.Backend
	train, test           vision.Dataset
	trainSpec, testSpec   string
	limitTrain, limitTest int
	k, cells              int
	opts                  probe.LinearOptions
}

type probeRow struct {
	name        string
	linear, knn float64
}

// run probes enc's features, or the raw pixels when enc is nil.
func (p *prober) run(ctx context.Context, name string, enc ssl.Encoder) (probeRow, error) {
	sets := [2]probe.Set{}
	for i, src := range []struct {
		ds    vision.Dataset
		spec  string
		limit int
	}{{p.train, p.trainSpec, p.limitTrain}, {p.test, p.testSpec, p.limitTest}} {
		var err error
		s := &sets[i]
		if enc == nil {
			s.X, s.D, s.Y, err = ssl.Pixels(ctx, src.ds, src.spec, src.limit)
		} else {
			s.X, s.D, s.Y, err = ssl.Features(ctx, enc, src.ds, src.spec, src.limit, 256, p.cells)
		}
		if err != nil {
			return probeRow{}, err
		}
	}
	fmt.Fprintf(os.Stderr, "%s: %d training and %d test images, %d features each\n", name, sets[0].Len(), sets[1].Len(), sets[0].D)
	lin, err := probe.Linear(p.be, sets[0], sets[1], p.opts)
	if err != nil {
		return probeRow{}, err
	}
	knn, err := probe.KNN(p.be, sets[0], sets[1], p.k)
	if err != nil {
		return probeRow{}, err
	}
	return probeRow{name: name, linear: lin, knn: knn}, nil
}
