// Package layers holds the test that golem's packages import downward only,
// as docs/architecture.md lays them out.
package layers

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/golem-ml/golem/"

// forbidden lists, for a package (and the packages under it), the
// packages (and those under them) it must not depend on, directly or not:
// docs/architecture.md's "knows nothing of" column.
var forbidden = map[string][]string{
	"backend":   {"tensor", "kvcache", "nn", "model", "tokenizer", "data", "train", "generate", "eval", "demo", "store", "serve"},
	"tensor":    {"kvcache", "nn", "model", "tokenizer", "data", "train", "generate", "eval", "demo", "store", "serve"},
	"kvcache":   {"nn", "model", "tokenizer", "data", "train", "generate", "eval", "demo", "store", "serve"},
	"nn":        {"model", "tokenizer", "data", "train", "generate", "eval", "demo", "store", "serve"},
	"tokenizer": {"model", "data", "train", "generate", "eval", "demo", "store", "serve"},
	"model":     {"data", "train", "generate", "eval", "demo", "store", "serve"},
	"data":      {"model", "train", "generate", "eval", "demo", "store", "serve"},
	"train":     {"eval", "data/synth", "generate/constrain", "demo", "store", "serve"},
	"generate":  {"train", "eval", "demo", "store", "serve"},
	"eval":      {"train", "demo", "store", "serve"},
	"store":     {"model", "train", "generate", "eval", "demo", "serve"},
	"serve":     {"train", "demo"},
}

// TestImportsGoDownward fails when a package depends on one its layer must
// not know (a cycle in the making, or a stage reaching into evaluation).
func TestImportsGoDownward(t *testing.T) {
	// The import graph from the source files themselves (not `go list`: the
	// test cache then sees every file the result depends on).
	root := filepath.Join("..", "..")
	imports := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "node_modules" || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		pkg := filepath.ToSlash(rel)
		for _, s := range f.Imports {
			if imp, _ := strconv.Unquote(s.Path.Value); strings.HasPrefix(imp, module) {
				imports[pkg] = append(imports[pkg], strings.TrimPrefix(imp, module))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(imports) < 20 {
		t.Fatalf("go list found only %d golem packages with golem imports", len(imports))
	}
	// internal/testmodels is the tests' (it may import any layer): no
	// package's own code may import it.
	for pkg, imps := range imports {
		if slices.Contains(imps, "internal/testmodels") {
			t.Errorf("%s imports internal/testmodels outside its tests", pkg)
		}
	}
	under := func(pkg, layer string) bool { return pkg == layer || strings.HasPrefix(pkg, layer+"/") }
	for pkg := range imports {
		for layer, banned := range forbidden {
			if !under(pkg, layer) {
				continue
			}
			// Walk pkg's dependencies, keeping one path to each for the message.
			path := map[string]string{pkg: pkg}
			queue := []string{pkg}
			for len(queue) > 0 {
				p := queue[0]
				queue = queue[1:]
				for _, d := range imports[p] {
					if _, seen := path[d]; !seen {
						path[d] = path[p] + " -> " + d
						queue = append(queue, d)
					}
				}
			}
			for d, via := range path {
				if d == pkg || under(d, layer) && !slices.ContainsFunc(banned, func(b string) bool { return under(d, b) }) {
					continue
				}
				for _, b := range banned {
					if under(d, b) && !under(pkg, b) {
						t.Errorf("%s must not depend on %s (%s layer): %s", pkg, d, layer, via)
					}
				}
			}
		}
	}
}
