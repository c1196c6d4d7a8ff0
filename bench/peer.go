package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// peerScript finds ../shared/peer/pytorch_gpt_bench.py.
func peerScript() (string, error) { return peerScriptNamed("pytorch_gpt_bench.py") }

// peerScriptNamed finds the peer script ../shared/peer/NAME.
func peerScriptNamed(name string) (string, error) {
	for _, p := range []string{os.Getenv("GOLEM_SHARED"), "../shared", "../../shared"} {
		if p == "" {
			continue
		}
		s := filepath.Join(p, "peer", name)
		if _, err := os.Stat(s); err == nil {
			return s, nil
		}
	}
	return "", fmt.Errorf("peer script ../shared/peer/%s not found (run from the repository root, or set GOLEM_SHARED)", name)
}

// runPeer runs the PyTorch peer and returns the value of its last
// "key=value" line for key, echoing its output.
func runPeer(key string, args ...string) (float64, error) {
	script, err := peerScript()
	if err != nil {
		return 0, err
	}
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		py = "python3"
	}
	check := exec.Command(py, "-c", "import torch")
	if out, err := check.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("the PyTorch peer needs Debian's torch: apt-get install -y python3-torch python3-numpy libopenblas0-openmp (%s: %s)", py, strings.TrimSpace(string(out)))
	}
	cmd := exec.Command(py, append([]string{script}, args...)...)
	var buf bytes.Buffer
	cmd.Stdout = &buf
	cmd.Stderr = os.Stderr
	fmt.Printf("peer: %s %s\n", filepath.Base(script), strings.Join(args, " "))
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("peer failed: %v\n%s", err, buf.String())
	}
	val := -1.0
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		line := sc.Text()
		fmt.Println("  peer|", line)
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				val = f
			}
		}
	}
	if val < 0 {
		return 0, fmt.Errorf("peer printed no %s= line", key)
	}
	return val, nil
}
