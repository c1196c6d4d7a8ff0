package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/backend/cpu" // registers the "cpu" device
)

// deviceFlag is --device NAME, the backend a command builds its models on,
// opened by name through backend.Open, and --threads N, the CPU threads its
// kernels use. Every command that builds a model registers both with
// addDeviceFlag.
type deviceFlag struct {
	name    *string
	threads *int
}

func addDeviceFlag(fs *flag.FlagSet) deviceFlag {
	return deviceFlag{
		name:    fs.String("device", "cpu", "backend to run the model on: "+strings.Join(backend.Names(), ", ")),
		threads: fs.Int("threads", 0, "CPU threads (default: all cores)"),
	}
}

// parse parses a command's flags (parseFlags) and opens the chosen device.
func (d deviceFlag) parse(fs *flag.FlagSet, args []string) (backend.Backend, error) {
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	return d.open()
}

// open returns a new backend of the chosen device; an unknown one is an
// error naming the flag and listing the known devices ("--device cuda:
// unknown device (have: cpu)").
func (d deviceFlag) open() (backend.Backend, error) {
	if *d.threads > 0 {
		cpu.SetThreads(*d.threads)
	}
	be, err := backend.Open(*d.name)
	if err != nil {
		return nil, fmt.Errorf("--device %w", err)
	}
	return be, nil
}

// perStage opens the chosen device once, to check it, and returns a
// function that gives a new backend of it each call: the demo's backend
// per stage, whose buffer pool goes when the stage ends. Should a later
// open fail, that stage shares the first backend (same results, only the
// pool is kept longer).
func (d deviceFlag) perStage() (func() backend.Backend, error) {
	first, err := d.open()
	if err != nil {
		return nil, err
	}
	return func() backend.Backend {
		if be, err := d.open(); err == nil {
			return be
		}
		return first
	}, nil
}
