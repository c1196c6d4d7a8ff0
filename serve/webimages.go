package serve

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/golem-ml/golem/store"
	"github.com/golem-ml/golem/tokenizer"
)

// Images in the annotation app: a prompt's image is served by its key
// (GET /app/api/images/{sha256}) to logged-in users, shown beside the
// prompt in every task, uploaded by the admin with the prompts that name
// it, and given to the served models through annotationPrompt.

// imageURL is where the app reads a stored image ("" for none).
func imageURL(key string) string {
	if key == "" {
		return ""
	}
	return "/app/api/images/" + key
}

// isKey reports whether v is a hex SHA-256 as the store writes it.
func isKey(v string) bool {
	if len(v) != 64 {
		return false
	}
	for _, c := range v {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// webImage serves a stored image with its media type. Its URL names its
// bytes (their SHA-256), so it never changes: the browser may keep it for
// a year without asking again (immutable), in its own cache only
// (private: it is served to logged-in users).
func (s *Server) webImage(w http.ResponseWriter, r *http.Request, _ store.Session) {
	key := r.PathValue("sha256")
	if !isKey(key) {
		web.fail(w, http.StatusBadRequest, "", "image %q: not a SHA-256 (64 lower-case hex digits)", key)
		return
	}
	etag := `"` + key + `"`
	if match := r.Header.Get("If-None-Match"); match != "" && strings.Contains(match, etag) {
		w.Header().Set("Cache-Control", "private, max-age=31536000, immutable")
		w.Header().Set("ETag", etag)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	im, err := s.store.Image(r.Context(), key)
	if err != nil {
		s.storeFail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", im.ContentType())
	h.Set("Cache-Control", "private, max-age=31536000, immutable")
	h.Set("ETag", etag)
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(im.Data))
}

// errImagesNotServed: a prompt has an image and no served model reads
// images.
var errImagesNotServed = errors.New("the served models do not read images")

// annotationPrompt is the one place the annotation app turns a stored
// prompt into a served model's input (the candidate answers to rank and
// compare): its tokens, and for a prompt with an image the image before
// them (the prompt's image from the store, at the first user turn, as
// golem's LLaVA data puts it), for a vision-language model. sampleRound
// gives an image prompt only to such models; with none served it is
// errImagesNotServed, which webSamples answers with no answers and
// "images_not_served": the app still shows the image and lets annotators
// write the answers to rank by hand.
func (s *Server) annotationPrompt(ctx context.Context, wts *Weights, p store.Prompt) ([]int, *ImagePrompt, error) {
	if p.Image == "" {
		ids, err := chatPrompt(wts, append([]tokenizer.Message(nil), p.Messages...))
		return ids, nil, err
	}
	if wts.VLM == nil {
		return nil, nil, errImagesNotServed
	}
	im, err := s.store.Image(ctx, p.Image)
	if err != nil {
		return nil, nil, err
	}
	pixels, err := imagePrompt(wts, "", []reqImage{{path: fmt.Sprintf("prompt %d's image", p.ID), data: im.Data}})
	if err != nil {
		return nil, nil, err
	}
	msgs := make([]tokenizer.Message, len(p.Messages))
	placed := false
	for i, m := range p.Messages {
		first := !placed && m.Role == "user"
		placed = placed || first
		msgs[i] = tokenizer.Message{Role: m.Role, Content: imageText(m.Content, first)}
	}
	return vlmPrompt(wts, msgs, pixels)
}

// importUpload reads an admin's import: a JSONL (or LLaVA JSON) body, or
// multipart/form-data with the file as the part "prompts" and the images
// it names as parts "images" (each named by its path or file name). It
// returns the prompts' text, their name and the ImportOptions.ReadImage of
// the upload (nil for a plain body); on failure it has answered.
func (s *Server) importUpload(w http.ResponseWriter, r *http.Request) (text []byte, name string, read func(string) ([]byte, error), ok bool) {
	name = r.URL.Query().Get("name")
	if name == "" {
		name = "upload"
	}
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		body, ok := readBody(web, w, r, s.bodyLimit(r))
		return body, name, nil, ok
	}
	body, ok := readBytes(web, w, r, s.bodyLimit(r))
	if !ok {
		return nil, "", nil, false
	}
	files := map[string][]byte{} // by the name the browser gave
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			web.fail(w, http.StatusBadRequest, "", "the upload: %v", err)
			return nil, "", nil, false
		}
		b, err := io.ReadAll(part)
		if err != nil {
			web.fail(w, http.StatusBadRequest, "", "the upload: %v", err)
			return nil, "", nil, false
		}
		switch part.FormName() {
		case "prompts":
			if text != nil {
				web.fail(w, http.StatusBadRequest, "", `the upload has two "prompts" files; import one at a time`)
				return nil, "", nil, false
			}
			text = b
			if fn := part.FileName(); fn != "" && r.URL.Query().Get("name") == "" {
				name = fn
			}
		case "images":
			files[path.Clean(strings.ReplaceAll(part.FileName(), `\`, "/"))] = b
		default:
			web.fail(w, http.StatusBadRequest, "", "the upload has a part %q; want \"prompts\" and \"images\"", part.FormName())
			return nil, "", nil, false
		}
	}
	if text == nil {
		web.fail(w, http.StatusBadRequest, "", `the upload has no "prompts" file`)
		return nil, "", nil, false
	}
	return text, name, uploadedImages(files), true
}

// uploadedImages resolves a prompt's image path among uploaded files: the
// file of that path, else the one file of its base name (a browser sends
// file names without their folders).
func uploadedImages(files map[string][]byte) func(string) ([]byte, error) {
	return func(p string) ([]byte, error) {
		p = path.Clean(strings.ReplaceAll(p, `\`, "/"))
		if b, ok := files[p]; ok {
			return b, nil
		}
		var found []string
		for name := range files {
			if path.Base(name) == path.Base(p) {
				found = append(found, name)
			}
		}
		switch len(found) {
		case 1:
			return files[found[0]], nil
		case 0:
			return nil, fmt.Errorf("not among the %d images uploaded with the file (select the file and its images together)", len(files))
		}
		return nil, fmt.Errorf("%d images uploaded are named %s; upload them with their folders", len(found), path.Base(p))
	}
}

// webExportZip downloads an export with its images, as golem export
// writes them: golem-KIND.jsonl and images/SHA256.EXT beside it, in a zip.
func (s *Server) webExportZip(w http.ResponseWriter, r *http.Request, kind store.ExportKind) {
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="golem-%s.zip"`, kind))
	zw := zip.NewWriter(w)
	err := func() error {
		f, err := zw.Create("golem-" + string(kind) + ".jsonl")
		if err != nil {
			return err
		}
		_, images, err := s.store.ExportJSONLImages(r.Context(), f, kind)
		if err != nil {
			return err
		}
		keys := slices.Sorted(maps.Keys(images))
		for _, key := range keys {
			im, err := s.store.Image(r.Context(), key)
			if err != nil {
				return err
			}
			f, err := zw.CreateHeader(&zip.FileHeader{Name: images[key], Method: zip.Store}) // already compressed
			if err != nil {
				return err
			}
			if _, err := f.Write(im.Data); err != nil {
				return err
			}
		}
		return zw.Close()
	}()
	if err != nil {
		// The answer has begun: a zip without its end is what the client
		// gets, and the log says why.
		s.opts.Logf("serve: export %s (zip): %v", kind, err)
	}
}
