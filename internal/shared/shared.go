// Package shared finds the project's shared folder (real data sets, Hugging
// Face fixtures, peer scripts), which lives beside the repository as
// ../shared. Tests that need it skip with a clear message when it is absent.
package shared

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Dir returns the absolute path of the shared folder, or "" if there is none.
// GOLEM_SHARED overrides the location.
func Dir() string {
	if d := os.Getenv("GOLEM_SHARED"); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			s := filepath.Join(filepath.Dir(d), "shared")
			if fi, err := os.Stat(s); err == nil && fi.IsDir() {
				return s
			}
			return ""
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

// Path returns the path of rel inside the shared folder, skipping the test
// with a clear message when the folder or the file is missing.
func Path(t testing.TB, rel string) string {
	t.Helper()
	d := Dir()
	if d == "" {
		t.Skipf("skipping: needs ../shared (the shared data folder beside the repository) for %s", rel)
	}
	p := filepath.Join(d, rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("skipping: %s not found in shared folder %s", rel, d)
	}
	return p
}

// Missing reports that something a test needs is not installed: the test
// is skipped with msg, except under CI=true, where .ci/run installs
// everything the tests need and a missing piece fails the test instead.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Python3 returns the python3 on PATH as the path of the interpreter
// itself (its sys.executable), asked once per process: a version
// manager's shim (pyenv's, a bash script that runs pyenv) took 0.6 s of
// CPU a start, more than most of the scripts the tests run with it. The
// error is exec.LookPath's when there is no python3.
var Python3 = sync.OnceValues(func() (string, error) {
	p, err := exec.LookPath("python3")
	if err != nil {
		return "", err
	}
	out, err := exec.Command(p, "-c", "import sys; print(sys.executable)").Output()
	if exe := strings.TrimSpace(string(out)); err == nil && filepath.IsAbs(exe) {
		if _, err := os.Stat(exe); err == nil {
			return exe, nil
		}
	}
	return p, nil
})
