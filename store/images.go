package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/internal/atomicfile"
	"github.com/golem-ml/golem/internal/regfile"
	"github.com/golem-ml/golem/tokenizer"
)

// Images. A prompt may show one image (Prompt.Image). The store keeps each
// image once, content-addressed: its key is the SHA-256 of its bytes, which
// are kept as they were imported (PNG, JPEG, GIF or WebP) in the images
// table of the database itself, for both SQLite and PostgreSQL: an import
// adds its images and its prompts in one transaction (all or nothing), a
// backup of the database is a backup of everything, and a team's
// PostgreSQL server needs no shared folder beside it.

// Limits on imported images.
const (
	// MaxImageBytes caps one imported image file.
	MaxImageBytes = 32 << 20
	// MaxImagePixels caps an imported image's width*height, read from its
	// header before any pixel is decoded (data/vision's bound).
	MaxImagePixels = vision.DefaultMaxPixels
)

// ImageToken marks where a prompt's image goes in its text, as LLaVA
// writes it. A prompt without it has its image before its first user text.
const ImageToken = "<image>"

// Image is a stored image.
type Image struct {
	SHA256        string // hex SHA-256 of Data: the image's key
	Format        string // "png", "jpeg", "gif" or "webp"
	Width, Height int
	Data          []byte // the file's bytes as imported
}

// imageFormats maps a stored format to its file extension and media type.
var imageFormats = map[string][2]string{
	"png":  {".png", "image/png"},
	"jpeg": {".jpg", "image/jpeg"},
	"gif":  {".gif", "image/gif"},
	"webp": {".webp", "image/webp"},
}

// ContentType is the image's media type (image/png, ...).
func (im Image) ContentType() string { return imageFormats[im.Format][1] }

// ExportPath is where exports write an image, relative to the exported
// file: images/SHA256.EXT.
func ExportPath(sha, format string) string {
	return "images/" + sha + imageFormats[format][0]
}

// checkImage validates an image's bytes (a supported format, within the
// pixel bound, decodable) and returns it with its key. name is used in
// errors.
func checkImage(name string, data []byte) (Image, error) {
	if len(data) > MaxImageBytes {
		return Image{}, invalidf("%s: %d bytes, more than the limit of %d", name, len(data), MaxImageBytes)
	}
	info, err := vision.Check(name, data, vision.Limits{MaxPixels: MaxImagePixels})
	if err != nil {
		return Image{}, invalidf("%v", err)
	}
	if _, ok := imageFormats[info.Format]; !ok {
		return Image{}, invalidf("%s: %s is not a supported format (PNG, JPEG, GIF or WebP)", name, info.Format)
	}
	sum := sha256.Sum256(data)
	return Image{SHA256: hex.EncodeToString(sum[:]), Format: info.Format, Width: info.Width, Height: info.Height, Data: data}, nil
}

// ImageFolder returns an ImportOptions.ReadImage that reads paths relative
// to dir (absolute paths as they are), as LLaVA's scripts resolve "image"
// against their --image-folder: regular files of at most MaxImageBytes.
func ImageFolder(dir string) func(path string) ([]byte, error) {
	return func(path string) ([]byte, error) {
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, filepath.FromSlash(path))
		}
		return regfile.ReadFile(path, MaxImageBytes)
	}
}

// Image returns the stored image with key sha (hex SHA-256).
func (s *Store) Image(ctx context.Context, sha string) (Image, error) {
	im := Image{SHA256: sha}
	err := s.db.QueryRowContext(ctx, s.q(`SELECT format, width, height, data FROM images WHERE sha256 = ?`), sha).
		Scan(&im.Format, &im.Width, &im.Height, &im.Data)
	if errors.Is(err, sql.ErrNoRows) {
		return Image{}, notFoundf("store: image %.16s: not in the store", sha)
	}
	if err != nil {
		return Image{}, fmt.Errorf("store: image %.16s: %w", sha, err)
	}
	return im, nil
}

// CountImages returns the number of images in the store.
func (s *Store) CountImages(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM images`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count images: %w", err)
	}
	return n, nil
}

// imageReader reads and checks an import's images, each path once.
type imageReader struct {
	read   func(string) ([]byte, error)
	byPath map[string]Image
	order  []string // keys, in first use
	byKey  map[string]Image
}

func newImageReader(read func(string) ([]byte, error)) *imageReader {
	return &imageReader{read: read, byPath: map[string]Image{}, byKey: map[string]Image{}}
}

// get returns the key of the image at path, reading and checking it the
// first time.
func (r *imageReader) get(path string) (string, error) {
	if im, ok := r.byPath[path]; ok {
		return im.SHA256, nil
	}
	if r.read == nil {
		return "", invalidf("image %q: this import has no folder to read images from (golem prompts import FILE reads them beside FILE; the web app's import takes them uploaded with the file)", path)
	}
	data, err := r.read(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", invalidf("image %q: no such file", path)
		}
		return "", invalidf("image %q: %v", path, err)
	}
	im, err := checkImage(fmt.Sprintf("image %q", path), data)
	if err != nil {
		return "", err
	}
	r.byPath[path] = im
	if _, ok := r.byKey[im.SHA256]; !ok {
		r.byKey[im.SHA256] = im
		r.order = append(r.order, im.SHA256)
	}
	return im.SHA256, nil
}

// insert adds the images read to the store (those already there stay as
// they are) and returns how many were new.
func (r *imageReader) insert(ctx context.Context, s *Store, tx *sql.Tx, name string) (int, error) {
	added := 0
	for _, key := range r.order {
		im := r.byKey[key]
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO images (sha256, format, width, height, data, created_at) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (sha256) DO NOTHING`), im.SHA256, im.Format, im.Width, im.Height, im.Data, now())
		if err != nil {
			return 0, fmt.Errorf("store: %s: image %.16s: %w", name, key, err)
		}
		if n, err := res.RowsAffected(); err == nil {
			added += int(n)
		}
	}
	return added, nil
}

// checkImageToken checks where a prompt with an image places it: ImageToken
// at most once, in its first user message.
func checkImageToken(msgs []tokenizer.Message) error {
	first := true
	for i, m := range msgs {
		n := strings.Count(m.Content, ImageToken)
		if n > 1 || n == 1 && (m.Role != "user" || !first) {
			return invalidf(`message %d: %q may appear once, in the first user message (a prompt has one image)`, i+1, ImageToken)
		}
		if m.Role == "user" {
			first = false
		}
	}
	return nil
}

// promptKey is a prompt's conversation_sha256, which makes it unique: the
// SHA-256 of its conversation's JSON, and for a prompt with an image, of
// that and the image's key (the same question about two images is two
// prompts; a text prompt's key is what it always was).
func promptKey(conv, image string) string {
	h := sha256.New()
	h.Write([]byte(conv))
	if image != "" {
		h.Write([]byte("\x00image:" + image))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// parseLLaVA reads LLaVA's conversation JSON ([{"id", "image",
// "conversations": [{"from": "human", "value": "<image>\n..."}, ...]}]) as
// prompts: each record's first human turn, with its image ("" for a
// text-only record). Errors name the line of the record.
func parseLLaVA(b []byte) ([]parsedPrompt, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	line := func(off int64) int { return 1 + bytes.Count(b[:min(int64(len(b)), max(off, 0))], []byte("\n")) }
	if _, err := dec.Token(); err != nil { // the '[' (the caller saw it)
		return nil, invalidf("line 1: %s", jsonError(err))
	}
	var out []parsedPrompt
	for i := 0; dec.More(); i++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			var se *json.SyntaxError
			if errors.As(err, &se) {
				return nil, invalidf("line %d: %s", line(se.Offset), jsonError(err))
			}
			return nil, invalidf("record %d: %s", i, jsonError(err))
		}
		at := line(dec.InputOffset() - int64(len(raw)))
		var rec vision.LLaVA
		if err := strictJSON(raw, &rec); err != nil {
			return nil, invalidf("line %d: record %d: %s (LLaVA: {\"id\", \"image\", \"conversations\": [{\"from\": \"human\", \"value\": ...}, ...]})", at, i, jsonError(err))
		}
		where := fmt.Sprintf("line %d: record %d (id %q)", at, i, rec.ID)
		if len(rec.Conversations) == 0 || rec.Conversations[0].From != "human" {
			return nil, invalidf("%s: \"conversations\" must start with a turn from \"human\" (the prompt)", where)
		}
		text := rec.Conversations[0].Value
		if n := strings.Count(text, ImageToken); n > 1 || n == 1 && rec.Image == "" {
			return nil, invalidf("%s: the first human turn holds %q %d times; want it once with an \"image\", or not at all", where, ImageToken, n)
		}
		msgs := []tokenizer.Message{{Role: "user", Content: text}}
		if err := validConversation(msgs); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		out = append(out, parsedPrompt{messages: msgs, image: rec.Image, line: at, where: where})
	}
	if _, err := dec.Token(); err != nil { // the ']'
		return nil, invalidf("line %d: %s", line(dec.InputOffset()), jsonError(err))
	}
	if dec.More() {
		return nil, invalidf("line %d: more than one JSON value", line(dec.InputOffset()))
	}
	return out, nil
}

// strictJSON decodes b into v, refusing unknown fields and trailing data.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// writeImages writes the images keyed in paths (key -> path relative to
// dir) into dir, each atomically; a file already there with the right
// bytes is kept.
func (s *Store) writeImages(ctx context.Context, dir string, paths map[string]string) error {
	for key, rel := range paths {
		path := filepath.Join(dir, filepath.FromSlash(rel))
		if b, err := os.ReadFile(path); err == nil {
			if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) == key {
				continue
			}
		}
		im, err := s.Image(ctx, key)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("store: export: %w", err)
		}
		if err := atomicfile.WriteFile(path, im.Data); err != nil {
			return fmt.Errorf("store: export: image %s: %w", path, err)
		}
	}
	return nil
}
