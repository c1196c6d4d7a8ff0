package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/train"
)

// The nanoGPT anchor: the whole baby run on Shakespeare (2,000 steps),
// golem's wall time against the PyTorch peer doing the same 2,000 training
// steps of the same model (its data is random tokens, so its time is a
// lower bound of a real run).
func init() {
	register("pretrain", func(args []string) error {
		fs := flag.NewFlagSet("pretrain", flag.ExitOnError)
		steps := fs.Int("steps", 2000, "steps of both runs")
		noPeer := fs.Bool("no-peer", false, "skip the PyTorch peer")
		fs.Parse(args)
		script, err := peerScript()
		if err != nil {
			return err
		}
		text := filepath.Join(filepath.Dir(filepath.Dir(script)), "data", "text", "tinyshakespeare.txt")
		var peerWall float64
		if !*noPeer {
			t0 := time.Now()
			if _, err := runPeer("tokens_per_s", "--config", "baby", "--tuned", "--steps", fmt.Sprint(*steps), "--warmup", "1"); err != nil {
				return err
			}
			peerWall = time.Since(t0).Seconds()
		}
		out, err := os.MkdirTemp("", "golem-anchor-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(out)
		p := train.Presets()["baby"]
		p.Loop.Steps, p.Loop.Out, p.Loop.Seed = *steps, out, 1337
		t0 := time.Now()
		res, err := train.Pretrain(context.Background(), train.PretrainOptions{Backend: cpu.New(), Data: []string{text}, Tokenizer: "char", Preset: p})
		if err != nil {
			return err
		}
		wall := time.Since(t0).Seconds()
		fmt.Printf("golem: %d steps in %.1fs (training, evaluation every 250 steps and checkpoint), val_loss=%.4f (nanoGPT reports 1.88)\n", res.Step, wall, res.Eval["val_loss"])
		if peerWall > 0 {
			fmt.Printf("peer:  %d steps in %.1fs (process wall time, training steps only)\n", *steps, peerWall)
			fmt.Printf("ratio=%.2f\n", peerWall/wall)
		}
		return nil
	})
}
