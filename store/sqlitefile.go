package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// createPrivate creates a missing SQLite database file readable and
// writable by its owner only (0600: it holds password hashes and the
// labels); SQLite gives the -wal and -shm files it makes beside it the
// same mode. An existing file is left as it is.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return invalidf("store: create the database file: %v", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("store: create the database file: %w", err)
	}
	return nil
}
