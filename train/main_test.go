package train

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// fixturesRoot holds the fixtures made once per test binary (vlmWorld);
// TestMain removes it when the tests end.
var fixturesRoot = sync.OnceValues(func() (string, error) { return os.MkdirTemp("", "golem-train-test-") })

// fixtureDir returns a new folder name under fixturesRoot.
func fixtureDir(name string) (string, error) {
	root, err := fixturesRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, name)
	return dir, os.Mkdir(dir, 0o755)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if root, err := fixturesRoot(); err == nil {
		os.RemoveAll(root)
	}
	os.Exit(code)
}
