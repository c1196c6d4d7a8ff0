package train

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/golem-ml/golem/internal/memtmp"
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

// TestMain puts the tests' temporary folders (t.TempDir, fixturesRoot) in
// memory where it can (memtmp.Use): the stages' tests write hundreds of
// checkpoints, each file synced and renamed and its folder synced, and on
// a disk's file system those syncs and the folders' creation and removal
// were a tenth of the package's CPU time. The code under test runs the
// same: only the file system under it differs.
func TestMain(m *testing.M) {
	done := memtmp.Use("train")
	code := m.Run()
	if root, err := fixturesRoot(); err == nil {
		os.RemoveAll(root)
	}
	done()
	os.Exit(code)
}
