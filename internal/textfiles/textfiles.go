// Package textfiles expands the file arguments golem's commands take for
// text corpora: files, folders (walked recursively, hidden entries skipped)
// and glob patterns.
package textfiles

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Expand turns files, folders and globs into a list of files: each argument
// in order, a folder's files sorted. accept, if not nil, chooses which files
// of a folder to take (files named directly are always taken). A glob that
// matches nothing is an error.
func Expand(args []string, accept func(path string) bool) ([]string, error) {
	var out []string
	for _, a := range args {
		matches := []string{a}
		if strings.ContainsAny(a, "*?[") {
			m, err := filepath.Glob(a)
			if err != nil {
				return nil, fmt.Errorf("bad pattern %q: %w", a, err)
			}
			if len(m) == 0 {
				return nil, fmt.Errorf("%s: no files match", a)
			}
			matches = m
		}
		for _, p := range matches {
			fi, err := os.Stat(p)
			if err != nil {
				return nil, err
			}
			if !fi.IsDir() {
				out = append(out, p)
				continue
			}
			var found []string
			err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if path != p && strings.HasPrefix(d.Name(), ".") {
					if d.IsDir() {
						return filepath.SkipDir
					}
					return nil
				}
				if d.Type().IsRegular() && (accept == nil || accept(path)) {
					found = append(found, path)
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
			sort.Strings(found)
			out = append(out, found...)
		}
	}
	return out, nil
}
