// Package shared finds the project's shared folder (real data sets, Hugging
// Face fixtures, peer scripts), which lives beside the repository as
// ../shared. Tests that need it skip with a clear message when it is absent.
package shared

import (
	"os"
	"path/filepath"
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
