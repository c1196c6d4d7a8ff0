package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/golem-ml/golem/internal/atomicfile"
	"github.com/golem-ml/golem/internal/regfile"
)

// File names of a Hugging Face model folder.
const (
	ModelFile = "model.safetensors"            // a checkpoint in one file
	IndexFile = "model.safetensors.index.json" // the index of a sharded checkpoint
)

// shardName matches the shard files transformers writes.
var shardName = regexp.MustCompile(`^model-\d{5}-of-\d{5}\.safetensors$`)

// Model is the checkpoint of a model folder: model.safetensors, or the shards
// listed by model.safetensors.index.json, behind one lookup API.
type Model struct {
	dir   string
	files []*File          // sorted by path
	where map[string]*File // tensor name -> file holding it
	names []string
}

// OpenModel opens the checkpoint in dir. Like transformers, it prefers
// model.safetensors and otherwise reads model.safetensors.index.json, whose
// weight_map maps each tensor name to the shard file holding it.
func OpenModel(dir string) (*Model, error) {
	single := filepath.Join(dir, ModelFile)
	if _, err := os.Stat(single); err == nil {
		f, err := Open(single)
		if err != nil {
			return nil, err
		}
		m := &Model{dir: dir, files: []*File{f}, where: map[string]*File{}, names: f.Names()}
		for _, n := range m.names {
			m.where[n] = f
		}
		return m, nil
	}
	indexPath := filepath.Join(dir, IndexFile)
	weightMap, err := readIndex(indexPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("safetensors: %s: neither %s nor %s found", dir, ModelFile, IndexFile)
	}
	if err != nil {
		return nil, err
	}
	m := &Model{dir: dir, where: map[string]*File{}}
	open := map[string]*File{}
	for _, name := range sortedKeys(weightMap) {
		shard := weightMap[name]
		f := open[shard]
		if f == nil {
			f, err = Open(filepath.Join(dir, shard))
			if err != nil {
				m.Close()
				return nil, err
			}
			open[shard] = f
			m.files = append(m.files, f)
		}
		if _, ok := f.tensors[name]; !ok {
			m.Close()
			return nil, fmt.Errorf("safetensors: %s: weight_map[%q] names %s, which has no such tensor", indexPath, name, shard)
		}
		m.where[name] = f
		m.names = append(m.names, name)
	}
	slices.SortFunc(m.files, func(a, b *File) int { return strings.Compare(a.path, b.path) })
	return m, nil
}

// readIndex reads and checks the weight_map of a sharded checkpoint index.
func readIndex(path string) (map[string]string, error) {
	raw, err := regfile.ReadFile(path, maxHeaderSize)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("safetensors: %s: %v", path, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("safetensors: %s: weight_map missing or empty", path)
	}
	for name, shard := range idx.WeightMap {
		if shard == "" || shard == "." || shard == ".." || strings.ContainsAny(shard, `/\`) || filepath.IsAbs(shard) {
			return nil, fmt.Errorf("safetensors: %s: weight_map[%q] = %q is not a file name in the folder", path, name, shard)
		}
	}
	return idx.WeightMap, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (m *Model) file(name string) (*File, error) {
	f, ok := m.where[name]
	if !ok {
		return nil, fmt.Errorf("safetensors: %s: no tensor %q", m.dir, name)
	}
	return f, nil
}

// Files returns the paths of the checkpoint's files, sorted.
func (m *Model) Files() []string {
	var paths []string
	for _, f := range m.files {
		paths = append(paths, f.path)
	}
	return paths
}

// Name is the checkpoint's file name for errors: IndexFile when it is
// sharded, else ModelFile.
func (m *Model) Name() string {
	if len(m.files) > 1 {
		return IndexFile
	}
	return ModelFile
}

// Names returns the names of all tensors, sorted.
func (m *Model) Names() []string { return slices.Clone(m.names) }

// Info returns the dtype and shape of the named tensor.
func (m *Model) Info(name string) (TensorInfo, bool) {
	f, ok := m.where[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Info(name)
}

// Metadata returns the __metadata__ of the first file (transformers writes
// the same {"format":"pt"} into every shard).
func (m *Model) Metadata() map[string]string {
	if len(m.files) == 0 {
		return nil
	}
	return m.files[0].Metadata()
}

// Raw is File.Raw across the checkpoint's files.
func (m *Model) Raw(name string) ([]byte, TensorInfo, error) {
	f, err := m.file(name)
	if err != nil {
		return nil, TensorInfo{}, err
	}
	return f.Raw(name)
}

// Float32 is File.Float32 across the checkpoint's files.
func (m *Model) Float32(name string) ([]float32, []int, error) {
	f, err := m.file(name)
	if err != nil {
		return nil, nil, err
	}
	return f.Float32(name)
}

// Float32Into is File.Float32Into across the checkpoint's files.
func (m *Model) Float32Into(name string, dst []float32) error {
	f, err := m.file(name)
	if err != nil {
		return err
	}
	return f.Float32Into(name, dst)
}

// Int64 is File.Int64 across the checkpoint's files.
func (m *Model) Int64(name string) ([]int64, []int, error) {
	f, err := m.file(name)
	if err != nil {
		return nil, nil, err
	}
	return f.Int64(name)
}

// Changed is File.Changed for each of the checkpoint's files: nil when
// none was replaced or rewritten since OpenModel opened it.
func (m *Model) Changed() error {
	for _, f := range m.files {
		if err := f.Changed(); err != nil {
			return err
		}
	}
	return nil
}

// Close closes all the checkpoint's files.
func (m *Model) Close() error {
	var errs []error
	for _, f := range m.files {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}

// WriteSharded writes tensors as the checkpoint of the model folder dir, the
// way transformers' save_pretrained does: tensors are taken in order and a new
// shard starts when the next tensor would take the current one past
// maxShardBytes (a larger tensor gets a shard of its own). One shard is
// written as model.safetensors; more as model-00001-of-0000N.safetensors plus
// model.safetensors.index.json. Every file carries {"format":"pt"}.
//
// Files are written atomically, the index after its shards, and only then are
// the files of an older checkpoint in dir removed, so that OpenModel sees the
// old or the new checkpoint after a crash. (An older sharded checkpoint with
// the same number of shards is overwritten shard by shard.)
func WriteSharded(dir string, tensors []Tensor, maxShardBytes int64) error {
	fail := func(err error) error { return fmt.Errorf("safetensors: write %s: %w", dir, err) }
	if maxShardBytes <= 0 {
		return fail(fmt.Errorf("maxShardBytes %d must be positive", maxShardBytes))
	}
	if _, err := plan(tensors); err != nil {
		return fail(err)
	}
	var shards [][]Tensor
	var size, total int64
	for _, t := range tensors {
		n := t.Bytes()
		if len(shards) == 0 || size+n > maxShardBytes && size > 0 {
			shards = append(shards, nil)
			size = 0
		}
		shards[len(shards)-1] = append(shards[len(shards)-1], t)
		size += n
		total += n
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	meta := map[string]string{"format": "pt"}
	if len(shards) <= 1 {
		if err := Write(filepath.Join(dir, ModelFile), tensors, meta); err != nil {
			return err
		}
		return removeStale(dir, IndexFile, nil)
	}
	weightMap := map[string]string{}
	keep := map[string]bool{}
	for i, shard := range shards {
		name := fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, len(shards))
		if err := Write(filepath.Join(dir, name), shard, meta); err != nil {
			return err
		}
		for _, t := range shard {
			weightMap[t.Name] = name
		}
		keep[name] = true
	}
	var index struct {
		Metadata struct {
			TotalSize int64 `json:"total_size"`
		} `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}
	index.Metadata.TotalSize = total
	index.WeightMap = weightMap
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(index); err != nil {
		return fail(err)
	}
	err := atomicfile.Write(filepath.Join(dir, IndexFile), func(w io.Writer) error {
		_, err := w.Write(asciiJSON(buf.Bytes()))
		return err
	})
	if err != nil {
		return fail(err)
	}
	return removeStale(dir, ModelFile, keep)
}

// removeStale removes the file named other and every shard file in dir not in keep.
func removeStale(dir, other string, keep map[string]bool) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	for _, e := range entries {
		n := e.Name()
		if n == other || shardName.MatchString(n) && !keep[n] {
			if err := os.Remove(filepath.Join(dir, n)); err != nil {
				return fmt.Errorf("safetensors: removing stale checkpoint file: %w", err)
			}
		}
	}
	return nil
}

// asciiJSON escapes non-ASCII characters as \uXXXX, as Python's json.dumps
// does by default, so index files match those transformers writes.
func asciiJSON(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r < utf8.RuneSelf {
			out = append(out, b[0])
		} else {
			if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
				out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
			} else {
				out = fmt.Appendf(out, `\u%04x`, r)
			}
		}
		b = b[n:]
	}
	return out
}
