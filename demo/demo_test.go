package demo

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/backend/cpu"
)

// TestDemoQuick runs every stage of the demo for a few steps.
func TestDemoQuick(t *testing.T) {
	out := t.TempDir()
	res, err := Run(context.Background(), Options{NewBackend: func() backend.Backend { return cpu.New() }, Out: out, Quick: true, Log: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Models) != 5 || res.Models[0].Name != "base" || res.Models[1].Name != "sft" {
		t.Fatalf("models: %+v", res.Models)
	}
	for _, name := range []string{"base", "sft", "reward", "ppo", "dpo", "grpo"} {
		if _, err := os.Stat(filepath.Join(out, name, "config.json")); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if res.RewardModel.Pairs == 0 || len(res.Curves["ppo"]) == 0 || len(res.Checks) == 0 {
		t.Errorf("missing numbers: %+v", res.RewardModel)
	}
	if _, err := os.Stat(filepath.Join(out, "demo_result.json")); err != nil {
		t.Error(err)
	}
}

// TestDemoFull runs the full demo when GOLEM_DEMO_OUT names a folder (it
// takes up to 15 minutes on two cores; not for CI).
func TestDemoFull(t *testing.T) {
	out := os.Getenv("GOLEM_DEMO_OUT")
	if out == "" {
		t.Skip("set GOLEM_DEMO_OUT=DIR to run the full demo")
	}
	res, err := Run(context.Background(), Options{NewBackend: func() backend.Backend { return cpu.New() }, Out: out, Log: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Checks {
		t.Logf("%v  %s", c.Pass, c.Claim)
	}
}
