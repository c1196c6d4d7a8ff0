package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/golem-ml/golem/store"
)

func init() {
	register("export", "write the store's labels as the JSONL the training stages read", runExport)
}

func runExport(args []string) error {
	fs := flag.NewFlagSet("export", flag.ExitOnError)
	db := fs.String("db", "sqlite:golem.db", "store: sqlite:FILE or a postgres:// URL")
	kind := fs.String("kind", "", "sft (demonstrations), rankings, or preferences (every ranked pair)")
	out := fs.String("out", "", "output file (required)")
	fs.Parse(args)
	if *kind == "" || *out == "" {
		return fmt.Errorf("export: --kind and --out are required (kinds: %v)", store.ExportKinds)
	}
	n, err := store.ExportFile(context.Background(), *db, store.ExportKind(*kind), *out)
	if err != nil {
		return err
	}
	fmt.Printf("export: %d %s lines to %s\n", n, *kind, *out)
	return nil
}
