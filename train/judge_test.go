package train

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/golem-ml/golem/internal/testmodels"
	"github.com/golem-ml/golem/nn"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data/synth/shapes"
	"github.com/golem-ml/golem/model/resnet"
)

// judgeWorld writes judgeFixture's shapes world once per test binary
// (TestMain removes it; the tests only read it).
var judgeWorld = sync.OnceValues(func() (string, error) {
	dir, err := fixtureDir("judge")
	if err != nil {
		return "", err
	}
	_, err = shapes.Write(shapes.Options{Out: dir, Seed: 1, Size: 24, Train: 128, Test: 32, PerClass: 1})
	return dir, err
})

// judgeFixture returns the first n of 128 train scenes and the 32 test
// scenes of a small shapes world (24 x 24 images) as judge examples, and
// a tiny judge's config.
func judgeFixture(t *testing.T, n int) (trainEx, testEx []CellExample, c resnet.GridConfig) {
	t.Helper()
	dir, err := judgeWorld()
	if err != nil {
		t.Fatal(err)
	}
	read := func(split string) []CellExample {
		recs, scenes, err := shapes.ReadScenes(filepath.Join(dir, split+"_scenes.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		var ex []CellExample
		for i, r := range recs {
			ex = append(ex, CellExample{Image: filepath.Join(dir, r.Image), Labels: scenes[i].CellLabels()})
		}
		return ex
	}
	names, classes := shapes.JudgeHeads()
	var heads []resnet.Head
	for i := range names {
		heads = append(heads, resnet.Head{Name: names[i], Classes: classes[i]})
	}
	rc := resnet.Presets()["tiny"]
	rc.Channels = 3
	return read("train")[:n], read("test"), resnet.GridConfig{Backbone: rc, Grid: 3, ImageSize: 24, Heads: heads}
}

// golem vision judge train's stage: the loss falls, the held-out cells'
// occupancy is read better than always saying "empty" (the majority), each
// head's accuracy is logged, the folder loads, and bad labels are refused
// naming the image.
func TestJudgeLearnsCells(t *testing.T) {
	trainEx, testEx, c := judgeFixture(t, 128)
	out := filepath.Join(t.TempDir(), "judge")
	var losses []float64
	// 30 steps under -short: the held-out occupancy read 0.910 against a
	// bound of 0.805 (1.000 after 40), the loss 6.70 -> 1.74 (a quarter).
	steps := 40
	if testing.Short() {
		steps = 30
	}
	res, err := Judge(context.Background(), JudgeOptions{Backend: cpu.New(), Train: trainEx, Eval: testEx, Model: c, Batch: 16,
		Recolour: shapes.Recolour, Log: io.Discard,
		Loop: Config{Steps: steps, LR: 3e-3, Warmup: 4, Beta2: 0.999, Seed: 1, Out: out, Quiet: true,
			OnStep: func(_ int, l float64) { losses = append(losses, l) }}})
	if err != nil {
		t.Fatal(err)
	}
	if !(losses[len(losses)-1] < 0.5*losses[0]) {
		t.Errorf("loss %.3f after %d steps, from %.3f: want it halved", losses[len(losses)-1], steps, losses[0])
	}
	empty, cells := 0, 0
	for _, e := range testEx {
		for _, l := range e.Labels {
			if l[shapes.HeadOccupied] == 0 {
				empty++
			}
			cells++
		}
	}
	if base := float64(empty) / float64(cells); !(res.Eval["val_acc_occupied"] > base+0.1) {
		t.Errorf("held-out occupancy accuracy %.3f, always-empty %.3f: want 0.1 more", res.Eval["val_acc_occupied"], base)
	}
	b, err := os.ReadFile(filepath.Join(out, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"acc_occupied"`, `"acc_colour"`, `"acc_shape"`, `"acc_size"`, `"val_acc_colour"`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("metrics.jsonl has no %s", k)
		}
	}
	if _, err := resnet.LoadGrid(cpu.New(), out); err != nil {
		t.Fatal(err)
	}
	bad := append([]CellExample{}, trainEx[:2]...)
	bad[1] = CellExample{Image: trainEx[1].Image, Labels: trainEx[1].Labels[:8]}
	_, err = Judge(context.Background(), JudgeOptions{Backend: cpu.New(), Train: bad, Model: c, Log: io.Discard,
		Loop: Config{Steps: 1, LR: 1e-3, Out: filepath.Join(t.TempDir(), "bad"), Quiet: true}})
	if err == nil || !strings.Contains(err.Error(), trainEx[1].Image+": 8 cell labels, want 9") {
		t.Errorf("8 cells' labels: error %v, want one naming the image", err)
	}
}

// A judge run stopped after 2 of 4 steps and resumed ends with the same
// parameters (BatchNorm's running statistics included) as 4 in one run.
func TestJudgeResumeExact(t *testing.T) {
	trainEx, _, c := judgeFixture(t, 16)
	resumeExact(t, func(ctx context.Context, loop Config) (Result, error) {
		loop.LR, loop.Seed = 1e-2, 3
		return Judge(ctx, JudgeOptions{Backend: cpu.New(), Train: trainEx, Model: c, Batch: 4, Recolour: shapes.Recolour, Log: io.Discard, Loop: loop})
	}, func(dir string) ([]nn.Named, error) {
		m, err := resnet.LoadGrid(cpu.New(), dir)
		if err != nil {
			return nil, err
		}
		return m.Params(), nil
	})
}

// With VQ, the judge also trains on the VQ-VAE's reconstructions of its
// training images, which are not the images; a folder that is not a
// VQ-VAE is refused naming it.
func TestJudgeVQ(t *testing.T) {
	trainEx, _, c := judgeFixture(t, 8)
	be := cpu.New()
	vqDir := testmodels.VQVAEDir(t, 24, 1)
	rec, err := vqRecon(be, vqDir, trainEx, c)
	if err != nil {
		t.Fatal(err)
	}
	px, _, err := loadCells(trainEx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec) != len(px) || len(rec[0]) != len(px[0]) || slices.Equal(rec[0], px[0]) {
		t.Fatalf("%d reconstructions of %d values, want %d of %d unlike the images", len(rec), len(rec[0]), len(px), len(px[0]))
	}
	if _, err := Judge(context.Background(), JudgeOptions{Backend: be, Train: trainEx, Model: c, Batch: 4, VQ: vqDir, Log: io.Discard,
		Loop: Config{Steps: 2, LR: 1e-3, Out: filepath.Join(t.TempDir(), "j"), Quiet: true}}); err != nil {
		t.Fatal(err)
	}
	_, err = Judge(context.Background(), JudgeOptions{Backend: be, Train: trainEx, Model: c, Batch: 4, VQ: t.TempDir(), Log: io.Discard,
		Loop: Config{Steps: 2, LR: 1e-3, Out: filepath.Join(t.TempDir(), "j2"), Quiet: true}})
	if err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("an empty --vq folder: error %v, want one naming its config.json", err)
	}
}
