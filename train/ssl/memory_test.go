package ssl

import (
	"context"
	"io"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/internal/memflat"
	"github.com/golem-ml/golem/train"
)

// TestMemoryFlat runs memflat.Steps() tiny steps of BYOL (two views, the
// target network's no-gradient pass and its EMA update, BatchNorm), of
// MAE on the ViT (model/vit's ForwardMAE), and of SimCLR, MoCo (its queue
// of keys), colorization and inpainting under train.Run, and checks that
// the backend's memory is the same after step memflat.From() and at the end:
// every tensor a step makes belongs to the step's scope.
func TestMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("full tier: 1,000 steps of each method; train's TestMemoryFlat* tests hold the scope rule of train.Run in the short tier")
	}
	for _, c := range []struct {
		method, config string
		side, batch    int
	}{{"byol", "tiny", 4, 2}, {"mae", "vit-tiny", 8, 4}, {"simclr", "tiny", 4, 2}, {"moco", "tiny", 4, 2}, {"colorize", "tiny", 4, 2}, {"inpaint", "tiny", 8, 2}} {
		t.Run(c.method, func(t *testing.T) {
			channels := 1
			if c.method == "colorize" { // gray in, colour out
				channels = 3
			}
			be := cpu.New()
			p := memflat.New(be)
			enc, err := NewEncoder(be, c.config, c.method, 1, c.side, c.side, 1)
			if err != nil {
				t.Fatal(err)
			}
			o := Options{Backend: be, Method: c.method, Data: bars(16, channels, c.side, 5), Spec: "bars", Encoder: enc, Batch: c.batch, Log: io.Discard,
				Loop: train.Config{Steps: memflat.Steps(), LR: 1e-3, Seed: 3, EvalEvery: memflat.From(), Quiet: true, Progress: io.Discard,
					Out: t.TempDir(), OnStep: p.OnStep}}
			base, err := newTask(o)
			if err != nil {
				t.Fatal(err)
			}
			tk, err := methods[c.method](base)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := train.Run(context.Background(), o.Loop, tk); err != nil {
				t.Fatal(err)
			}
			p.Check(t)
		})
	}
}
