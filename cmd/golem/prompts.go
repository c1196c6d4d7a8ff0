package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/golem-ml/golem/store"
)

func init() {
	register("prompts import", "add prompts to label to the store: JSONL (with \"images\") or LLaVA conversation JSON, their images checked and stored", runPromptsImport)
}

// runPromptsImport is golem prompts import: each file one import (one
// transaction), as the web app's admin import, with its images read from
// the file's folder or --image-folder.
func runPromptsImport(args []string) error {
	fs := newFlags("prompts import", `golem prompts import --db sqlite:labels.db prompts.jsonl   # {"prompt": "...", "images": ["pics/1.png"]} a line
golem prompts import --db sqlite:labels.db --image-folder coco/train2017 llava_instruct.json`)
	db := fs.String("db", "sqlite:golem.db", "store: sqlite:FILE or a postgres:// URL (created when missing, as golem serve does)")
	imageFolder := fs.String("image-folder", "", "resolve relative image paths against this folder (LLaVA's --image-folder; default: the file's folder)")
	source := fs.String("source", "", "the prompts' source, shown to the admin (default: the file's name; a JSONL line's \"source\" wins)")
	var files []string
	for {
		if err := parseWithArgs(fs, args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		files, args = append(files, fs.Arg(0)), fs.Args()[1:]
	}
	if len(files) == 0 {
		return usageError{fmt.Errorf("prompts import: give one or more files (golem prompts import --db DSN FILE...)")}
	}
	ctx := context.Background()
	st, err := store.Open(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, path := range files {
		dir := *imageFolder
		if dir == "" {
			dir = filepath.Dir(path)
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		b, err := st.ImportPrompts(ctx, f, store.ImportOptions{Name: path, Source: *source, ReadImage: store.ImageFolder(dir)})
		f.Close()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "prompts import: %s: %d prompts added, %d already there, %d new images\n", path, b.Added, b.Skipped, b.Images)
	}
	return nil
}
