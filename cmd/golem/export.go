package main

import (
	"context"
	"fmt"
	"os"

	"github.com/golem-ml/golem/data"
	"github.com/golem-ml/golem/store"
)

func init() {
	register("export", "write the store's labels as the JSONL the training stages read, or (--format gguf) a model as GGUF", runExport)
}

func runExport(args []string) error {
	if exportFormat(args) != "" {
		return runExportGGUF(args)
	}
	fs := newFlags("export", `golem export --db sqlite:labels.db --kind preferences --out preferences.jsonl`)
	db := fs.String("db", "", "the store golem serve --db wrote: sqlite:FILE or a postgres:// URL (required)")
	kind := fs.String("kind", "", "sft (demonstrations), rankings, or preferences (every ranked pair) (required)")
	out := fs.String("out", "", "output file (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := required(fs, "db", "kind", "out"); err != nil {
		return err
	}
	n, err := store.ExportFile(context.Background(), *db, store.ExportKind(*kind), *out)
	if err != nil {
		return err
	}
	fmt.Printf("export: %d %s lines to %s\n", n, *kind, *out)
	return nil
}

// storeFiles replaces each store (sqlite:FILE or a postgres:// URL) among
// paths with a temporary JSONL export of kind, so that a stage reading files
// reads the store: golem sft --data sqlite:labels.db. A store that does not
// exist is an error (store.OpenExisting). cleanup removes the exports.
func storeFiles(paths []string, kind store.ExportKind) (files []string, cleanup func(), err error) {
	var tmp []string
	cleanup = func() {
		for _, f := range tmp {
			os.Remove(f)
		}
	}
	for _, p := range paths {
		if !store.IsDSN(p) {
			files = append(files, p)
			continue
		}
		f, err := os.CreateTemp("", "golem-store-*.jsonl")
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		f.Close()
		tmp = append(tmp, f.Name())
		if _, err := store.ExportFile(context.Background(), p, kind, f.Name()); err != nil {
			cleanup()
			return nil, nil, err
		}
		files = append(files, f.Name())
	}
	return files, cleanup, nil
}

// readStore reads a store as kind's examples when path names one; a store
// that does not exist is an error (store.OpenExisting).
func readStore(path string, kind store.ExportKind) ([]data.Example, bool, error) {
	if !store.IsDSN(path) {
		return nil, false, nil
	}
	ds, err := store.ReadDataset(context.Background(), path, kind)
	if err != nil {
		return nil, true, err
	}
	return ds.Examples, true, nil
}
