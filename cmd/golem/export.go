package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/golem-ml/golem/data"
	"github.com/golem-ml/golem/store"
)

func init() {
	register("export", "write the store's labels as the JSONL the training stages read (their images beside it), LLaVA JSON (--format llava), or (--format gguf) a model as GGUF", runExport)
}

func runExport(args []string) error {
	if exportFormat(args) == "gguf" {
		return runExportGGUF(args)
	}
	fs := newFlags("export", `golem export --db sqlite:labels.db --kind preferences --out preferences.jsonl
golem export --db sqlite:labels.db --format llava --out llava.json   # demonstrations with images
golem export --db sqlite:labels.db --kind image_preferences --out image_prefs.jsonl   # generated images compared`)
	db := fs.String("db", "", "the store golem serve --db wrote: sqlite:FILE or a postgres:// URL (required)")
	kind := fs.String("kind", "", "sft (demonstrations), rankings, preferences (every ranked pair), or image_preferences (generated images compared in the web app, for an image model's DPO) (required for jsonl)")
	format := fs.String("format", "jsonl", "jsonl (TRL's shapes), llava (demonstrations of prompts with an image as LLaVA's conversation JSON), or gguf (a model; golem export --format gguf --help)")
	out := fs.String("out", "", "output file; the images its records name are written beside it as images/SHA256.EXT (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := required(fs, "db", "out"); err != nil {
		return err
	}
	if *format != "jsonl" && *format != "llava" {
		return usageError{fmt.Errorf("export: --format %q is not jsonl, llava or gguf", *format)}
	}
	ctx := context.Background()
	if *format == "llava" {
		if *kind != "" && *kind != string(store.ExportSFT) {
			return usageError{fmt.Errorf("export: --format llava writes demonstrations (--kind sft), not %s", *kind)}
		}
		n, left, err := store.ExportLLaVAFile(ctx, *db, *out)
		if err != nil {
			return err
		}
		fmt.Printf("export: %d LLaVA records to %s (%d demonstrations left out: no image, or a system message or turns LLaVA's format cannot hold)\n", n, *out, left)
		return nil
	}
	if err := required(fs, "kind"); err != nil {
		return err
	}
	n, err := store.ExportFile(ctx, *db, store.ExportKind(*kind), *out)
	if err != nil {
		return err
	}
	fmt.Printf("export: %d %s lines to %s\n", n, *kind, *out)
	return nil
}

// storeFiles replaces each store (sqlite:FILE or a postgres:// URL) among
// paths with a temporary JSONL export of kind (in a folder of its own, with
// the images it names), so that a stage reading files reads the store:
// golem sft --data sqlite:labels.db. A store that does not exist is an
// error (store.OpenExisting). cleanup removes the exports.
func storeFiles(paths []string, kind store.ExportKind) (files []string, cleanup func(), err error) {
	var tmp []string
	cleanup = func() {
		for _, d := range tmp {
			os.RemoveAll(d)
		}
	}
	for _, p := range paths {
		if !store.IsDSN(p) {
			files = append(files, p)
			continue
		}
		dir, err := os.MkdirTemp("", "golem-store-*")
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		tmp = append(tmp, dir)
		f := filepath.Join(dir, string(kind)+".jsonl")
		if _, err := store.ExportFile(context.Background(), p, kind, f); err != nil {
			cleanup()
			return nil, nil, err
		}
		files = append(files, f)
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
