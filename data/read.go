package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"unicode/utf8"
)

// DefaultMaxLineBytes is the longest JSON line read when
// ReadOptions.MaxLineBytes is zero.
const DefaultMaxLineBytes = 64 << 20

// ReadOptions control reading. The zero value detects the format.
type ReadOptions struct {
	// Format forces the format of every record; "" detects it from the
	// first record's keys.
	Format Format
	// MaxLineBytes is the longest line of a JSON lines file; a longer line
	// is an error. Zero means DefaultMaxLineBytes.
	MaxLineBytes int
}

// Summary says what was read from one file.
type Summary struct {
	File     string       // the file as it was named
	Format   Format       // the format detected or forced
	Shape    string       // the records' shape within the format, such as "conversational"
	Records  int          // JSON records read
	Examples int          // examples made from them (self-instruct makes one per instance)
	Kinds    map[Kind]int // examples by kind
}

// Dataset is the examples read from one or more files.
type Dataset struct {
	Examples []Example
	Files    []Summary // one per file, in the order read
}

// Records returns the number of records read over all files.
func (d *Dataset) Records() int {
	n := 0
	for _, s := range d.Files {
		n += s.Records
	}
	return n
}

// Read reads every record of the file at path. Any record that does not
// fit the format is an error; nothing is skipped. An empty file is an
// error too.
func Read(path string, opts ReadOptions) (*Dataset, error) {
	return ReadAll([]string{path}, opts)
}

// ReadAll reads the files in order into one dataset. Each file's format
// is detected separately unless opts.Format forces one.
func ReadAll(paths []string, opts ReadOptions) (*Dataset, error) {
	d := new(Dataset)
	for _, path := range paths {
		r, err := Open(path, opts)
		if err != nil {
			return nil, err
		}
		for {
			ex, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				r.Close()
				return nil, err
			}
			d.Examples = append(d.Examples, ex)
		}
		r.Close()
		s := r.Summary()
		if s.Records == 0 {
			return nil, fmt.Errorf("data: %s: no records", path)
		}
		d.Files = append(d.Files, s)
	}
	return d, nil
}

// Reader reads examples one at a time, so that a large JSON lines file
// never has to be in memory at once. A JSON array is read whole.
type Reader struct {
	name   string
	opts   ReadOptions
	closer io.Closer    // the file, when Open opened it
	gz     *gzip.Reader // when the input is compressed
	err    error        // the first error, returned from then on

	// JSON lines
	lines *bufio.Scanner
	line  int // in a JSON array: the line of byte off

	// JSON array, read whole
	array   bool
	data    []byte
	dec     *json.Decoder
	off     int // bytes of data counted into line
	index   int // records read
	started bool

	format    Format
	detected  bool   // the format was detected, not forced
	shape     string // the first record's shape
	shapeLine int    // the first record's line
	pending   []Example
	sum       Summary
}

// Open opens the file at path for reading. Gzip-compressed files are
// recognised by their content, whatever their name.
func Open(path string, opts ReadOptions) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	r, err := NewReader(f, path, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.closer = f
	return r, nil
}

// NewReader reads records from rd, a JSON array or JSON lines, optionally
// gzip-compressed. name is the file name used in errors.
func NewReader(rd io.Reader, name string, opts ReadOptions) (*Reader, error) {
	r := &Reader{name: name, opts: opts, format: opts.Format}
	if opts.Format != "" {
		if _, ok := parsers[opts.Format]; !ok {
			return nil, fmt.Errorf("data: unknown format %q (want one of: %s)", opts.Format, formatList())
		}
	}
	if r.opts.MaxLineBytes <= 0 {
		r.opts.MaxLineBytes = DefaultMaxLineBytes
	}
	r.sum = Summary{File: name, Format: opts.Format, Kinds: map[Kind]int{}}
	br := bufio.NewReaderSize(rd, 1<<16)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("data: %s: %v", name, err)
		}
		r.gz = zr
		br = bufio.NewReaderSize(zr, 1<<16)
	}
	first, err := firstByte(br)
	if err != nil {
		return nil, fmt.Errorf("data: %s: %v", name, err)
	}
	if first == '[' {
		r.array = true
		if r.data, err = io.ReadAll(br); err != nil {
			return nil, fmt.Errorf("data: %s: %v", name, err)
		}
		r.data = bytes.TrimPrefix(r.data, []byte("\xef\xbb\xbf"))
		r.dec = json.NewDecoder(bytes.NewReader(r.data))
		r.line = 1
		return r, nil
	}
	r.lines = bufio.NewScanner(br)
	r.lines.Buffer(make([]byte, 0, min(64<<10, r.opts.MaxLineBytes)), r.opts.MaxLineBytes)
	return r, nil
}

// firstByte returns the first byte that is not white space or a byte
// order mark, without consuming it; 0 for an empty input.
func firstByte(br *bufio.Reader) (byte, error) {
	for n := 1; ; n++ {
		b, err := br.Peek(n)
		if len(b) < n {
			if err == io.EOF || err == bufio.ErrBufferFull {
				return 0, nil
			}
			return 0, err
		}
		switch c := b[n-1]; c {
		case ' ', '\t', '\r', '\n', 0xef, 0xbb, 0xbf:
		default:
			return c, nil
		}
	}
}

// Close closes the file opened by Open.
func (r *Reader) Close() error {
	if r.gz != nil {
		r.gz.Close()
	}
	if r.closer != nil {
		return r.closer.Close()
	}
	return nil
}

// Format returns the format forced or detected so far ("" before the first
// record is read).
func (r *Reader) Format() Format { return r.format }

// Summary returns what was read so far.
func (r *Reader) Summary() Summary { return r.sum }

// Next returns the next example, or io.EOF after the last. After any other
// error, it keeps returning that error.
func (r *Reader) Next() (Example, error) {
	for len(r.pending) == 0 {
		if r.err != nil {
			return Example{}, r.err
		}
		rec, err := r.nextRecord()
		if err != nil {
			r.err = err
			return Example{}, err
		}
		exs, err := r.parse(rec)
		if err != nil {
			r.err = err
			return Example{}, err
		}
		r.sum.Records++
		r.sum.Examples += len(exs)
		for _, ex := range exs {
			r.sum.Kinds[ex.Kind]++
		}
		r.pending = exs
	}
	ex := r.pending[0]
	r.pending = r.pending[1:]
	return ex, nil
}

// nextRecord returns the next JSON object with its place in the file.
func (r *Reader) nextRecord() (*record, error) {
	if r.array {
		return r.nextElement()
	}
	for r.lines.Scan() {
		r.line++
		b := r.lines.Bytes()
		if r.line == 1 {
			b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
		}
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			continue
		}
		rec := &record{file: r.name, line: r.line, raw: b}
		if err := rec.decode(rec.line); err != nil {
			return nil, err
		}
		return rec, nil
	}
	switch err := r.lines.Err(); {
	case errors.Is(err, bufio.ErrTooLong):
		return nil, &Error{File: r.name, Line: r.line + 1, Msg: fmt.Sprintf("line is longer than %d bytes (raise the maximum line size to read it)", r.opts.MaxLineBytes)}
	case err != nil:
		return nil, fmt.Errorf("data: %s line %d: %v", r.name, r.line+1, err)
	}
	return nil, io.EOF
}

// nextElement returns the next object of a JSON array.
func (r *Reader) nextElement() (*record, error) {
	if !r.started {
		r.started = true
		if _, err := r.dec.Token(); err != nil { // the '['
			return nil, r.syntaxError(err)
		}
	}
	if !r.dec.More() {
		if _, err := r.dec.Token(); err != nil { // the ']'
			return nil, r.syntaxError(err)
		}
		if _, err := r.dec.Token(); err != io.EOF {
			return nil, &Error{File: r.name, Line: r.lineAt(r.skipSpace(int(r.dec.InputOffset()))), Msg: "data after the end of the JSON array"}
		}
		return nil, io.EOF
	}
	start := r.skipSpace(int(r.dec.InputOffset()))
	var raw json.RawMessage
	if err := r.dec.Decode(&raw); err != nil {
		return nil, r.elementError(err, start)
	}
	r.index++
	rec := &record{file: r.name, line: r.lineAt(start), index: r.index, raw: raw}
	if err := rec.decode(rec.line); err != nil {
		return nil, err
	}
	return rec, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// lineAt returns the 1-based line of byte offset off of a JSON array;
// offsets must not decrease from call to call.
func (r *Reader) lineAt(off int) int {
	off = min(off, len(r.data))
	if off > r.off {
		r.line += bytes.Count(r.data[r.off:off], []byte("\n"))
		r.off = off
	}
	return r.line
}

// syntaxError places an error of the JSON array's structure (around its
// elements) at the first byte the decoder has not taken.
func (r *Reader) syntaxError(err error) error {
	off := r.skipSpace(int(r.dec.InputOffset()))
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return &Error{File: r.name, Line: r.lineAt(len(r.data)), Msg: "invalid JSON: the array is not closed"}
	}
	return &Error{File: r.name, Line: r.lineAt(off), Msg: "invalid JSON: " + err.Error()}
}

// elementError places an error decoding the element that starts at byte
// start. The decoder's offsets are not relative to anything fixed, so the
// element is decoded again on its own to find where it breaks.
func (r *Reader) elementError(err error, start int) error {
	var raw json.RawMessage
	var se *json.SyntaxError
	switch e := json.NewDecoder(bytes.NewReader(r.data[start:])).Decode(&raw); {
	case errors.As(e, &se):
		return &Error{File: r.name, Line: r.lineAt(start + int(se.Offset)), Msg: "invalid JSON: " + se.Error()}
	case e == io.EOF || errors.Is(e, io.ErrUnexpectedEOF):
		return &Error{File: r.name, Line: r.lineAt(len(r.data)), Msg: "invalid JSON: the array is not closed"}
	}
	return &Error{File: r.name, Line: r.lineAt(start), Msg: "invalid JSON: " + err.Error()}
}

// skipSpace returns the offset of the first byte at or after off that is
// not white space or a comma.
func (r *Reader) skipSpace(off int) int {
	for off < len(r.data) && (r.data[off] == ',' || isSpace(r.data[off])) {
		off++
	}
	return off
}

// decode checks the record's bytes and decodes its top-level fields.
// line is the line of the record's first byte, to place an invalid byte.
func (rec *record) decode(line int) error {
	if !utf8.Valid(rec.raw) {
		i := 0
		for i < len(rec.raw) {
			c, size := utf8.DecodeRune(rec.raw[i:])
			if c == utf8.RuneError && size <= 1 {
				break
			}
			i += size
		}
		before := rec.raw[:i]
		col := i - bytes.LastIndexByte(before, '\n')
		return &Error{File: rec.file, Line: line + bytes.Count(before, []byte("\n")), Record: rec.index,
			Msg: fmt.Sprintf("invalid UTF-8 at column %d", col)}
	}
	if rec.raw[0] != '{' {
		msg := "invalid JSON: want one JSON object per line (JSON lines) or a JSON array of objects"
		if json.Valid(rec.raw) {
			msg = fmt.Sprintf("record is %s, want a JSON object", jsonType(rec.raw))
		}
		return &Error{File: rec.file, Line: rec.line, Record: rec.index, Msg: msg}
	}
	if err := json.Unmarshal(rec.raw, &rec.fields); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return &Error{File: rec.file, Line: line + bytes.Count(rec.raw[:min(int(se.Offset), len(rec.raw))], []byte("\n")), Record: rec.index, Msg: "invalid JSON: " + se.Error()}
		}
		return &Error{File: rec.file, Line: rec.line, Record: rec.index, Msg: "invalid JSON: " + err.Error()}
	}
	return nil
}

// parse turns a record into examples in the file's format, detecting the
// format from the first record unless it was forced, and checks that every
// record has the same shape as the first.
func (r *Reader) parse(rec *record) ([]Example, error) {
	got := detect(rec)
	if r.format == "" {
		if got == "" {
			return nil, &Error{File: r.name, Line: rec.line, Record: rec.index,
				Msg: fmt.Sprintf("cannot tell the format from the keys (%s); force one of: %s", rec.keys(), formatList())}
		}
		r.format, r.detected = got, true
		r.sum.Format = got
	} else if r.detected && got != r.format {
		what := "fits no format"
		if got != "" {
			what = fmt.Sprintf("looks like %q", got)
		}
		return nil, &Error{File: r.name, Line: rec.line, Record: rec.index,
			Msg: fmt.Sprintf("record %s (keys: %s), but the file is %q (from its first record, line %d)", what, rec.keys(), r.format, r.shapeLine)}
	}
	exs, shape, err := parsers[r.format](rec)
	if err != nil {
		var e *Error
		if !r.detected && got != "" && got != r.format && errors.As(err, &e) {
			e.Msg += fmt.Sprintf(" (the record looks like %q, not the %q forced)", got, r.format)
		}
		return nil, err
	}
	if r.shape == "" {
		r.shape, r.shapeLine = shape, rec.line
		r.sum.Shape = shape
	} else if shape != r.shape {
		return nil, &Error{File: r.name, Line: rec.line, Record: rec.index,
			Msg: fmt.Sprintf("record is %s %s, but the file began as %s %s (line %d); one file holds one shape", r.format, shape, r.format, r.shape, r.shapeLine)}
	}
	src := fmt.Sprintf("%s:%d", r.name, rec.line)
	imgs, err := rec.images(filepath.Dir(r.name))
	if err != nil {
		return nil, err
	}
	for i := range exs {
		exs[i].Source, exs[i].Images = src, imgs
	}
	return exs, nil
}
