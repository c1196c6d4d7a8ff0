package vision

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Dataset is a source of images, loaded lazily by index. Load is safe for
// concurrent use.
type Dataset interface {
	Len() int
	// Load decodes sample i; errors name the file.
	Load(i int) (*Image, error)
	// Name names sample i for messages (a path, path:line, shard:key or
	// file[index]).
	Name(i int) string
	// Close releases the source's files (a tar shard stays open between
	// loads); the dataset is unusable after it.
	Close() error
}

// Open opens a source by its spec: an idx images file, a folder of class
// subfolders, a .jsonl file, a COCO captions or LLaVA .json file or a
// .tar webdataset shard (see the package doc).
func Open(spec string, lim Limits) (Dataset, error) {
	if m := shardRange.FindStringSubmatchIndex(spec); m != nil && strings.HasSuffix(strings.ToLower(spec), ".tar") {
		return openShards(spec, m, lim)
	}
	fi, err := os.Stat(spec)
	if err != nil {
		return nil, err
	}
	base := strings.ToLower(filepath.Base(spec))
	switch {
	case fi.IsDir():
		return openFolder(spec, lim)
	case strings.HasSuffix(base, ".jsonl"):
		return openJSONL(spec, lim)
	case strings.HasSuffix(base, ".json"):
		return openJSON(spec, lim)
	case strings.HasSuffix(base, ".tar"):
		return openTar(spec, lim)
	case strings.Contains(base, "idx3-ubyte"):
		return openIdx(spec, lim)
	}
	return nil, fmt.Errorf("%s: unknown image source (want an idx images file, a folder of class subfolders, a .jsonl, COCO captions or LLaVA .json, or a .tar shard)", spec)
}

// ---- idx (MNIST) ----

type idxSet struct {
	path    string
	n, h, w int
	pix     []byte
	labels  []byte // nil: no labels file
}

func (d *idxSet) Close() error      { d.n, d.pix, d.labels = 0, nil, nil; return nil }
func (d *idxSet) Len() int          { return d.n }
func (d *idxSet) Name(i int) string { return fmt.Sprintf("%s[%d]", d.path, i) }
func (d *idxSet) Load(i int) (*Image, error) {
	if i < 0 || i >= d.n {
		return nil, fmt.Errorf("%s: index %d out of range [0,%d)", d.path, i, d.n)
	}
	m := NewImage(1, d.h, d.w)
	for j, v := range d.pix[i*d.h*d.w : (i+1)*d.h*d.w] {
		m.Pix[j] = float32(v) / 255
	}
	if d.labels != nil {
		m.Label = int(d.labels[i])
	}
	return m, nil
}

// readIdx reads an idx ubyte file of ndim dimensions. It checks the magic
// and that the data is exactly the size the header promises, reading no
// more than that (the buffer grows with the data present, not with the
// header's claim).
func readIdx(path string, ndim int, maxElems int64) (dims []int, data []byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var r io.Reader = bufio.NewReader(f)
	if strings.HasSuffix(strings.ToLower(path), ".gz") {
		gz, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: not a gzip file: %v", path, err)
		}
		defer gz.Close()
		r = gz
	}
	hdr := make([]byte, 4+4*ndim)
	if _, err := io.ReadFull(r, hdr[:4]); err != nil {
		return nil, nil, fmt.Errorf("%s: idx header cut short: %v", path, err)
	}
	want := []byte{0, 0, 0x08, byte(ndim)}
	if !bytes.Equal(hdr[:4], want) {
		return nil, nil, fmt.Errorf("%s: wrong idx magic %#08x (want %#08x: unsigned bytes, %d dimensions)",
			path, binary.BigEndian.Uint32(hdr[:4]), binary.BigEndian.Uint32(want), ndim)
	}
	if _, err := io.ReadFull(r, hdr[4:]); err != nil {
		return nil, nil, fmt.Errorf("%s: idx header cut short (want %d bytes): %v", path, len(hdr), err)
	}
	total := int64(1)
	for i := 0; i < ndim; i++ {
		d := int64(binary.BigEndian.Uint32(hdr[4+4*i:]))
		if d <= 0 || d > maxElems/total {
			return nil, nil, fmt.Errorf("%s: idx dimensions %v are out of bounds", path, idxDims(hdr, ndim))
		}
		total *= d
		dims = append(dims, int(d))
	}
	data, err = io.ReadAll(io.LimitReader(r, total+1))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %v", path, err)
	}
	if int64(len(data)) != total {
		if int64(len(data)) > total {
			return nil, nil, fmt.Errorf("%s: idx file has more data than its header's %v promises", path, dims)
		}
		return nil, nil, fmt.Errorf("%s: idx file truncated: header %v promises %d bytes of data, found %d", path, dims, total, len(data))
	}
	return dims, data, nil
}

func idxDims(hdr []byte, ndim int) []uint32 {
	var d []uint32
	for i := 0; i < ndim; i++ {
		d = append(d, binary.BigEndian.Uint32(hdr[4+4*i:]))
	}
	return d
}

// labelsBeside returns the labels file for an idx images file, "" if none:
// the name with "images" → "labels" and "idx3" → "idx1"
// (train-images-idx3-ubyte.gz → train-labels-idx1-ubyte.gz, also
// train-images.idx3-ubyte → train-labels.idx1-ubyte), gzipped or not.
func labelsBeside(path string) string {
	dir, base := filepath.Split(path)
	if !strings.Contains(base, "images") || !strings.Contains(base, "idx3") {
		return ""
	}
	stem := strings.Replace(strings.Replace(base, "images", "labels", 1), "idx3", "idx1", 1)
	plain := strings.TrimSuffix(stem, ".gz")
	for _, c := range []string{stem, plain, plain + ".gz"} {
		if _, err := os.Stat(filepath.Join(dir, c)); err == nil {
			return filepath.Join(dir, c)
		}
	}
	return ""
}

func openIdx(path string, lim Limits) (Dataset, error) {
	dims, pix, err := readIdx(path, 3, 1<<36)
	if err != nil {
		return nil, err
	}
	if dims[1]*dims[2] > lim.maxPixels() {
		return nil, fmt.Errorf("%s: idx images of %dx%d exceed the limit of %d pixels", path, dims[2], dims[1], lim.maxPixels())
	}
	d := &idxSet{path: path, n: dims[0], h: dims[1], w: dims[2], pix: pix}
	if lp := labelsBeside(path); lp != "" {
		ld, labels, err := readIdx(lp, 1, 1<<32)
		if err != nil {
			return nil, err
		}
		if ld[0] != d.n {
			return nil, fmt.Errorf("%s has %d labels but %s has %d images", lp, ld[0], path, d.n)
		}
		d.labels = labels
	}
	return d, nil
}

// ---- files on disk: folders and JSONL ----

type fileItem struct {
	path, name string // name: path or file:line for messages
	label      int
	caption    string
	captions   []string // COCO: every caption of the image
	conv       []Turn   // LLaVA: the conversation
}

type fileSet struct {
	items   []fileItem
	lim     Limits
	classes []string // a class folder's subfolders, by label
}

// Classes returns the class names of a folder of class subfolders (the
// subfolders' names, label 0 first), or nil for any other source.
func Classes(ds Dataset) []string {
	if f, ok := ds.(*fileSet); ok {
		return f.classes
	}
	return nil
}

func (d *fileSet) Close() error      { return nil }
func (d *fileSet) Len() int          { return len(d.items) }
func (d *fileSet) Name(i int) string { return d.items[i].name }
func (d *fileSet) Load(i int) (*Image, error) {
	it := d.items[i]
	m, err := ReadFile(it.path, d.lim)
	if err != nil {
		if it.name != it.path {
			return nil, fmt.Errorf("%s: %w", it.name, err)
		}
		return nil, err
	}
	m.Label, m.Caption, m.Captions, m.Conversation = it.label, it.caption, it.captions, it.conv
	return m, nil
}

func openFolder(dir string, lim Limits) (Dataset, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var classes []string
	for _, e := range ents {
		if e.IsDir() {
			classes = append(classes, e.Name())
		}
	}
	sort.Strings(classes)
	if len(classes) == 0 {
		return nil, fmt.Errorf("%s: no class subfolders (want one subfolder of images per class)", dir)
	}
	d := &fileSet{lim: lim, classes: classes}
	for label, c := range classes {
		sub := filepath.Join(dir, c)
		files, err := os.ReadDir(sub)
		if err != nil {
			return nil, err
		}
		var names []string
		for _, f := range files {
			if !f.IsDir() && isImageName(f.Name()) {
				names = append(names, f.Name())
			}
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("%s: class folder %q has no images (.png, .jpg, .jpeg, .gif, .webp)", sub, c)
		}
		sort.Strings(names)
		for _, n := range names {
			p := filepath.Join(sub, n)
			d.items = append(d.items, fileItem{path: p, name: p, label: label})
		}
	}
	return d, nil
}

type jsonlRecord struct {
	Image   *string          `json:"image"`
	Label   *json.RawMessage `json:"label"`
	Caption *string          `json:"caption"`
}

func openJSONL(path string, lim Limits) (Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dir := filepath.Dir(path)
	d := &fileSet{lim: lim}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var rec jsonlRecord
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rec); err != nil {
			return nil, fmt.Errorf("%s:%d: %v (want {\"image\": path, \"label\": int} or {\"image\": path, \"caption\": text})", path, line, err)
		}
		if rec.Image == nil || *rec.Image == "" {
			return nil, fmt.Errorf("%s:%d: field \"image\" (a path) is missing", path, line)
		}
		it := fileItem{path: *rec.Image, name: fmt.Sprintf("%s:%d", path, line), label: -1}
		if !filepath.IsAbs(it.path) {
			it.path = filepath.Join(dir, it.path)
		}
		if rec.Label != nil {
			var l int
			if err := json.Unmarshal(*rec.Label, &l); err != nil || l < 0 {
				return nil, fmt.Errorf("%s:%d: field \"label\" must be an integer >= 0, got %s", path, line, *rec.Label)
			}
			it.label = l
		}
		if rec.Caption != nil {
			it.caption = *rec.Caption
		}
		d.items = append(d.items, it)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s:%d: line longer than 1 MiB", path, line+1)
		}
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(d.items) == 0 {
		return nil, fmt.Errorf("%s: no records", path)
	}
	return d, nil
}

// ---- webdataset tar shards ----

// MaxShards caps the shards one brace range names (each stays open).
const MaxShards = 1024

// shardRange is webdataset's brace notation for a run of shards:
// train-{000000..000009}.tar.
var shardRange = regexp.MustCompile(`\{(\d+)\.\.(\d+)\}`)

// openShards opens the shards spec's range m names (zero-padded to the
// width of the range's first number), in order, as one dataset.
func openShards(spec string, m []int, lim Limits) (Dataset, error) {
	lo, hi := spec[m[2]:m[3]], spec[m[4]:m[5]]
	a, errA := strconv.Atoi(lo)
	b, errB := strconv.Atoi(hi)
	switch {
	case errA != nil || errB != nil || b < a:
		return nil, fmt.Errorf("%s: shard range {%s..%s}: want {FIRST..LAST} with FIRST <= LAST", spec, lo, hi)
	case b-a >= MaxShards:
		return nil, fmt.Errorf("%s: %d shards exceed the limit of %d", spec, b-a+1, MaxShards)
	}
	if strings.Contains(spec[m[1]:], "{") {
		return nil, fmt.Errorf("%s: one shard range only", spec)
	}
	c := &concatSet{}
	for i := a; i <= b; i++ {
		d, err := openTar(spec[:m[0]]+fmt.Sprintf("%0*d", len(lo), i)+spec[m[1]:], lim)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.sets = append(c.sets, d)
		c.ends = append(c.ends, c.Len()+d.Len())
	}
	return c, nil
}

// concatSet is datasets read one after another.
type concatSet struct {
	sets []Dataset
	ends []int // ends[k]: the samples of sets[:k+1]
}

func (c *concatSet) Len() int {
	if len(c.ends) == 0 {
		return 0
	}
	return c.ends[len(c.ends)-1]
}

// at returns the dataset sample i is in and its index there.
func (c *concatSet) at(i int) (Dataset, int) {
	k := sort.SearchInts(c.ends, i+1)
	if k > 0 {
		i -= c.ends[k-1]
	}
	return c.sets[k], i
}

func (c *concatSet) Load(i int) (*Image, error) { d, j := c.at(i); return d.Load(j) }
func (c *concatSet) Name(i int) string          { d, j := c.at(i); return d.Name(j) }

// Close closes every shard.
func (c *concatSet) Close() error {
	var errs []error
	for _, d := range c.sets {
		errs = append(errs, d.Close())
	}
	return errors.Join(errs...)
}

// maxMetaBytes caps a .cls, .txt or .json entry.
const maxMetaBytes = 1 << 20

type tarSample struct {
	key       string
	imgName   string
	off, size int64
	label     int
	caption   string
}

type tarSet struct {
	path    string
	f       *os.File
	samples []tarSample
	lim     Limits
}

func (d *tarSet) Len() int          { return len(d.samples) }
func (d *tarSet) Name(i int) string { return d.path + ":" + d.samples[i].imgName }
func (d *tarSet) Load(i int) (*Image, error) {
	s := d.samples[i]
	buf := make([]byte, s.size)
	if _, err := d.f.ReadAt(buf, s.off); err != nil {
		return nil, fmt.Errorf("%s: %v", d.Name(i), err)
	}
	m, err := Decode(d.Name(i), buf, d.lim)
	if err != nil {
		return nil, err
	}
	m.Label, m.Caption = s.label, s.caption
	return m, nil
}

// Close closes the shard file.
func (d *tarSet) Close() error { return d.f.Close() }

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func tarKey(name string) (key, ext string) {
	dir, base := filepath.Split(name)
	i := strings.IndexByte(base, '.')
	if i < 0 {
		return name, ""
	}
	return dir + base[:i], strings.ToLower(base[i:])
}

func openTar(path string, lim Limits) (Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	d := &tarSet{path: path, f: f, lim: lim}
	if err := d.index(); err != nil {
		f.Close()
		return nil, err
	}
	return d, nil
}

func (d *tarSet) index() error {
	cr := &countReader{r: d.f}
	tr := tar.NewReader(cr)
	var order []string
	type acc struct {
		tarSample
		hasLabel bool
	}
	accs := map[string]*acc{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: corrupt or truncated tar after %d samples: %v", d.path, len(order), err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		key, ext := tarKey(h.Name)
		if strings.HasPrefix(filepath.Base(h.Name), ".") || ext == "" {
			continue
		}
		a := accs[key]
		if a == nil {
			a = &acc{tarSample: tarSample{key: key, label: -1}}
			accs[key] = a
			order = append(order, key)
		}
		where := d.path + ":" + h.Name
		switch ext {
		case ".png", ".jpg", ".jpeg", ".webp", ".gif":
			if a.imgName != "" {
				return fmt.Errorf("%s: sample %q has two images (%s)", where, key, a.imgName)
			}
			if h.Size > d.lim.maxFileBytes() {
				return fmt.Errorf("%s: entry of %d bytes exceeds the limit of %d (Limits.MaxFileBytes)", where, h.Size, d.lim.maxFileBytes())
			}
			a.imgName, a.off, a.size = h.Name, cr.n, h.Size
		case ".cls", ".txt", ".json":
			if h.Size > maxMetaBytes {
				return fmt.Errorf("%s: entry of %d bytes exceeds the limit of %d for %s", where, h.Size, maxMetaBytes, ext)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				return fmt.Errorf("%s: truncated entry: %v", where, err)
			}
			switch ext {
			case ".cls":
				l, err := strconv.Atoi(strings.TrimSpace(string(b)))
				if err != nil || l < 0 {
					return fmt.Errorf("%s: label must be an integer >= 0, got %q", where, strings.TrimSpace(string(b)))
				}
				a.label = l
			case ".txt":
				a.caption = strings.TrimRight(string(b), "\r\n")
			case ".json":
				var meta struct {
					Label   *int    `json:"label"`
					Caption *string `json:"caption"`
				}
				if err := json.Unmarshal(b, &meta); err != nil {
					return fmt.Errorf("%s: %v", where, err)
				}
				if meta.Label != nil {
					if *meta.Label < 0 {
						return fmt.Errorf("%s: field \"label\" must be >= 0, got %d", where, *meta.Label)
					}
					a.label = *meta.Label
				}
				if meta.Caption != nil {
					a.caption = *meta.Caption
				}
			}
		}
	}
	for _, k := range order {
		a := accs[k]
		if a.imgName == "" {
			return fmt.Errorf("%s: sample %q has no image (.png, .jpg, .jpeg, .webp, .gif)", d.path, k)
		}
		d.samples = append(d.samples, a.tarSample)
	}
	if len(d.samples) == 0 {
		return fmt.Errorf("%s: no samples in the shard", d.path)
	}
	// The image data must be wholly inside the file (a truncated last entry).
	if fi, err := d.f.Stat(); err == nil {
		for _, s := range d.samples {
			if s.off+s.size > fi.Size() {
				return fmt.Errorf("%s:%s: entry truncated", d.path, s.imgName)
			}
		}
	}
	return nil
}
