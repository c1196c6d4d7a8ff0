package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// processCPU is the CPU time (user and system, all threads) this process
// has used so far, or 0 where the system does not say.
func processCPU() time.Duration { return rusageSelf() }

// peerCPUPerStep is the peer script's CPU time per training step: the
// difference of the CPU time (user and system, as the OS accounts for the
// child) of two runs that differ only in their timed steps, 1 and
// 1+steps, divided by steps, so the interpreter's start-up and the model's
// set-up cancel out. extra are the script's other arguments.
func peerCPUPerStep(name string, steps int, extra ...string) (time.Duration, error) {
	script, err := peerScriptNamed(name)
	if err != nil {
		return 0, err
	}
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		py = "python3"
	}
	run := func(n int) (time.Duration, error) {
		args := append([]string{script}, extra...)
		args = append(args, "--steps", fmt.Sprint(n))
		cmd := exec.Command(py, args...)
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		fmt.Printf("peer: %s %s\n", filepath.Base(script), strings.Join(args[1:], " "))
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("peer failed: %v\n%s", err, buf.String())
		}
		st := cmd.ProcessState
		return st.UserTime() + st.SystemTime(), nil
	}
	short, err := run(1)
	if err != nil {
		return 0, err
	}
	long, err := run(1 + steps)
	if err != nil {
		return 0, err
	}
	return (long - short) / time.Duration(steps), nil
}
