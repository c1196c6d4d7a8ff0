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
	"github.com/golem-ml/golem/internal/atomicfile"
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
// error, and so is one whose labels of the kind have images: their
// examples would lose them (ExportFile writes them with their image files,
// for a vision-language model).
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
	if kind == ExportImagePreferences {
		return nil, invalidf("store: %s: image preferences are pairs of images, for a text-to-image model: golem export --db ... --kind %s --out FILE writes them with their images", s.dialect, kind)
	}
	var buf bytes.Buffer
	images := exportImages{}
	n, err := s.exportJSONL(ctx, &buf, kind, true, images)
	if err != nil {
		return nil, err
	}
	if len(images) > 0 {
		return nil, invalidf("store: %s: %s labels of prompts with images (%d images): a text dataset would lose them; golem export --db ... --kind %s --out FILE writes them with their images", s.dialect, kind, len(images), kind)
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
// and the images its records name beside it (images/SHA256.EXT, each file
// written atomically; one already there with the right bytes is kept),
// then the file itself atomically (a temporary file renamed into place), so
// that it never names an image not yet written. It returns the number of
// lines. The store must exist (OpenExisting).
func ExportFile(ctx context.Context, dsn string, kind ExportKind, path string) (int, error) {
	return exportFile(ctx, dsn, path, func(s *Store, w io.Writer, images exportImages) (int, error) {
		return s.exportJSONL(ctx, w, kind, false, images)
	})
}

// ExportLLaVAFile writes the store's demonstrations of prompts with an
// image to path as LLaVA's conversation JSON (ExportLLaVA), and their
// images beside it, as ExportFile does. It returns the records written and
// the demonstrations left out.
func ExportLLaVAFile(ctx context.Context, dsn, path string) (n, left int, err error) {
	n, err = exportFile(ctx, dsn, path, func(s *Store, w io.Writer, images exportImages) (int, error) {
		var err error
		n, left, err = s.exportLLaVA(ctx, w, images)
		return n, err
	})
	return n, left, err
}

// exportFile opens the store, runs export into a temporary file beside
// path, writes the images it named, and renames the file into place.
func exportFile(ctx context.Context, dsn, path string, export func(*Store, io.Writer, exportImages) (int, error)) (int, error) {
	s, err := OpenExisting(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return 0, fmt.Errorf("store: export: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return 0, fmt.Errorf("store: export: %w", err)
	}
	defer os.Remove(f.Name())
	images := exportImages{}
	n, err := export(s, f, images)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.writeImages(ctx, filepath.Dir(path), images)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err == nil {
		err = atomicfile.SyncDir(filepath.Dir(path))
	}
	if err != nil {
		return 0, fmt.Errorf("store: export to %s: %w", path, err)
	}
	return n, nil
}
