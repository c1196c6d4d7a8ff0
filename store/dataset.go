package store

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/golem-ml/golem/data"
)

// IsDSN reports whether name is a store rather than a data file:
// "sqlite:FILE", "postgres://..." or "postgresql://...". The training
// stages use it to accept --data sqlite:labels.db next to file paths.
func IsDSN(name string) bool {
	return strings.HasPrefix(name, "sqlite:") || strings.HasPrefix(name, "postgres://") || strings.HasPrefix(name, "postgresql://")
}

// ReadDataset reads the store named by dsn as the examples data.Read makes
// of the JSONL ExportJSONL writes for kind: ExportSFT gives conversational
// language-modelling examples, ExportRankings ranking examples and
// ExportPreferences preference examples (neither holds a tie or a
// both-bad comparison). A stage reads the store as it reads a file:
//
//	if store.IsDSN(path) {
//		ds, err = store.ReadDataset(ctx, path, store.ExportPreferences)
//	} else {
//		ds, err = data.Read(path, data.ReadOptions{})
//	}
//
// The store must exist (OpenExisting); one with no labels of the kind is an
// error.
func ReadDataset(ctx context.Context, dsn string, kind ExportKind) (*data.Dataset, error) {
	s, err := OpenExisting(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Dataset(ctx, kind)
}

// Dataset is ReadDataset on an open store.
func (s *Store) Dataset(ctx context.Context, kind ExportKind) (*data.Dataset, error) {
	var buf bytes.Buffer
	n, err := s.exportJSONL(ctx, &buf, kind, true)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("store: %s: no %s labels yet", s.dialect, kind)
	}
	name := fmt.Sprintf("%s store (%s)", s.dialect, kind)
	r, err := data.NewReader(&buf, name, data.ReadOptions{})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	ds := &data.Dataset{}
	for {
		ex, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		ds.Examples = append(ds.Examples, ex)
	}
	ds.Files = append(ds.Files, r.Summary())
	return ds, nil
}

// ExportFile writes the store named by dsn to path as ExportJSONL's kind,
// atomically (a temporary file renamed into place), and returns the number
// of lines. The store must exist (OpenExisting).
func ExportFile(ctx context.Context, dsn string, kind ExportKind, path string) (int, error) {
	s, err := OpenExisting(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return 0, fmt.Errorf("store: export: %w", err)
	}
	defer os.Remove(f.Name())
	n, err := s.ExportJSONL(ctx, f, kind)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return 0, fmt.Errorf("store: export %s to %s: %w", kind, path, err)
	}
	return n, nil
}
