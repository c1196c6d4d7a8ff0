// Package tokens turns text corpora into memory-mapped files of token ids,
// built once and reused: pretraining reads random windows from them.
package tokens

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/golem-ml/golem/internal/atomicfile"
	"github.com/golem-ml/golem/internal/textfiles"
)

// Source is one document source: a text file, or the "text" fields of a
// JSONL file.
type Source struct {
	Path  string
	Size  int64
	MTime int64
}

// Resolve expands paths (files, folders read recursively, globs) into
// sources, sorted. Folders contribute .txt, .md and .jsonl files; hidden
// files are skipped.
func Resolve(paths []string) ([]Source, error) {
	files, err := textfiles.Expand(paths, func(p string) bool {
		switch filepath.Ext(p) {
		case ".txt", ".md", ".jsonl":
			return true
		}
		return false
	})
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	seen := map[string]bool{}
	var out []Source
	for _, p := range files {
		if seen[p] {
			continue
		}
		seen[p] = true
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("tokens: %w", err)
		}
		out = append(out, Source{Path: p, Size: fi.Size(), MTime: fi.ModTime().UnixNano()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	if len(out) == 0 {
		return nil, errors.New("tokens: no text files found")
	}
	return out, nil
}

// Documents calls fn with each document of the sources: a whole text file,
// or each "text" field of a JSONL file. An invalid JSONL line is an error
// naming the file and line.
func Documents(srcs []Source, fn func(doc string) error) error {
	for _, s := range srcs {
		if filepath.Ext(s.Path) != ".jsonl" {
			b, err := os.ReadFile(s.Path)
			if err != nil {
				return fmt.Errorf("tokens: %w", err)
			}
			if !utf8.Valid(b) {
				return fmt.Errorf("tokens: %s: not valid UTF-8 text", s.Path)
			}
			if err := fn(string(b)); err != nil {
				return err
			}
			continue
		}
		f, err := os.Open(s.Path)
		if err != nil {
			return fmt.Errorf("tokens: %w", err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 256<<20)
		line := 0
		for sc.Scan() {
			line++
			if len(strings.TrimSpace(sc.Text())) == 0 {
				continue
			}
			var rec struct {
				Text *string `json:"text"`
			}
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				f.Close()
				return fmt.Errorf("tokens: %s line %d: %v", s.Path, line, err)
			}
			if rec.Text == nil {
				f.Close()
				return fmt.Errorf("tokens: %s line %d: \"text\" missing", s.Path, line)
			}
			if err := fn(*rec.Text); err != nil {
				f.Close()
				return err
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return fmt.Errorf("tokens: %s line %d: %w", s.Path, line+1, err)
		}
	}
	return nil
}

// File is a memory-mapped file of token ids.
type File struct {
	data  []byte
	width int // bytes per id: 2 or 4
	n     int
}

const magic = "GOLEMTK1"

// Write stores ids as a token file (uint16 when the vocabulary fits,
// else uint32), atomically.
func Write(path string, ids []int32, vocab int) error {
	width := 4
	if vocab <= 1<<16 {
		width = 2
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		var hdr [16]byte
		copy(hdr[:8], magic)
		binary.LittleEndian.PutUint32(hdr[8:], uint32(width))
		binary.LittleEndian.PutUint32(hdr[12:], uint32(len(ids)))
		if _, err := w.Write(hdr[:]); err != nil {
			return err
		}
		var b [4]byte
		for _, id := range ids {
			if width == 2 {
				binary.LittleEndian.PutUint16(b[:], uint16(id))
			} else {
				binary.LittleEndian.PutUint32(b[:], uint32(id))
			}
			if _, err := w.Write(b[:width]); err != nil {
				return err
			}
		}
		return nil
	})
}

// Open maps a token file.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() < 16 {
		return nil, fmt.Errorf("tokens: %s: too short for a token file", path)
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(fi.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		// Fall back to reading it.
		data, err = io.ReadAll(f)
		if err != nil {
			return nil, err
		}
	}
	if string(data[:8]) != magic {
		return nil, fmt.Errorf("tokens: %s: not a golem token file", path)
	}
	width := int(binary.LittleEndian.Uint32(data[8:]))
	n := int(binary.LittleEndian.Uint32(data[12:]))
	if (width != 2 && width != 4) || int64(16+n*width) != fi.Size() {
		return nil, fmt.Errorf("tokens: %s: corrupt header (width %d, %d ids, %d bytes)", path, width, n, fi.Size())
	}
	return &File{data: data[16:], width: width, n: n}, nil
}

// Len returns the number of ids.
func (f *File) Len() int { return f.n }

// Read copies ids [start, start+len(dst)) into dst.
func (f *File) Read(dst []int32, start int) {
	if f.width == 2 {
		for i := range dst {
			dst[i] = int32(binary.LittleEndian.Uint16(f.data[2*(start+i):]))
		}
		return
	}
	for i := range dst {
		dst[i] = int32(binary.LittleEndian.Uint32(f.data[4*(start+i):]))
	}
}

// Key returns a cache key for sources tokenized with a tokenizer whose
// saved form is tokJSON: a change to any file or to the tokenizer gives a
// new key.
func Key(srcs []Source, tokJSON []byte) string {
	h := sha256.New()
	for _, s := range srcs {
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00", s.Path, s.Size, s.MTime)
	}
	h.Write(tokJSON)
	return hex.EncodeToString(h.Sum(nil))[:16]
}
