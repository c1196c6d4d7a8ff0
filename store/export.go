package store

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/tokenizer"
)

// Demonstrations calls fn with every demonstration and its prompt, oldest
// first. An error from fn stops the walk and is returned.
func (s *Store) Demonstrations(ctx context.Context, fn func(Prompt, Demonstration) error) error {
	rows, err := s.db.QueryContext(ctx, `SELECT `+promptColumns+`, `+demonstrationColumns+`
		FROM demonstrations d JOIN prompts p ON p.id = d.prompt_id ORDER BY d.id`)
	if err != nil {
		return fmt.Errorf("store: demonstrations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p Prompt
		var d Demonstration
		if err := scanPrompt(rows, &p, &d.ID, &d.PromptID, &d.AnnotatorID, &d.Response, &d.CreatedAt, &d.UpdatedAt); err != nil {
			return fmt.Errorf("store: demonstrations: %w", err)
		}
		d.CreatedAt, d.UpdatedAt = d.CreatedAt.UTC(), d.UpdatedAt.UTC()
		if err := fn(p, d); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: demonstrations: %w", err)
	}
	return nil
}

// Rankings calls fn with every ranking (comparisons included) and its
// prompt, oldest first. An error from fn stops the walk and is returned.
func (s *Store) Rankings(ctx context.Context, fn func(Prompt, Ranking) error) error {
	return s.eachRanking(ctx, s.db, `1 = 1`, nil, fn)
}

// ExportKind names a JSONL format ExportJSONL writes.
type ExportKind string

// The export formats, in TRL's conversational shapes. A prompt's image goes
// with each of its records as "images": ["images/SHA256.EXT"] (TRL's
// vision datasets' field; ExportPath), the path relative to the exported
// file, which ExportFile writes the images beside; a record without an
// image has no "images". Its text holds ImageToken where the image goes,
// or the image comes before the first user text.
const (
	// ExportSFT writes one line per demonstration: the prompt's messages
	// followed by the demonstration as the assistant's turn,
	//	{"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}
	ExportSFT ExportKind = "sft"
	// ExportRankings writes one line per ranking: the prompt, the K answers
	// as the assistant's turn each (in the order shown), and the ranking as
	// indices into completions, best first,
	//	{"prompt": [...], "completions": [[{"role": "assistant", ...}], ...], "ranking": [2, 0, 1]}
	// with "ratings" (1-7 per completion, 0 unrated) when the annotator
	// rated any, and "verdict": "tie" or "both_bad" for a comparison
	// without a winner (its "ranking" is then [0, 1], the order shown, and
	// means nothing).
	ExportRankings ExportKind = "rankings"
	// ExportPreferences writes every pair a ranking orders, C(K, 2) lines per
	// ranking, for reward models and DPO; a tie or a both-bad comparison
	// prefers neither answer and gives no line,
	//	{"prompt": [...], "chosen": [{"role": "assistant", ...}], "rejected": [{"role": "assistant", ...}]}
	ExportPreferences ExportKind = "preferences"
	// ExportImagePreferences writes one line per comparison of two
	// generated images that prefers one (ties, both-bad and skipped pairs
	// give none), for preference tuning (DPO) of a text-to-image model;
	// the images are files beside the JSONL (ExportPath),
	//	{"prompt": "a red circle ...", "chosen": "images/SHA256.png", "rejected": "images/SHA256.png"}
	ExportImagePreferences ExportKind = "image_preferences"
)

// ExportKinds lists the formats ExportJSONL knows.
var ExportKinds = []ExportKind{ExportSFT, ExportRankings, ExportPreferences, ExportImagePreferences}

type sftRecord struct {
	Messages []tokenizer.Message `json:"messages"`
	Images   []string            `json:"images,omitempty"`
}

type rankingRecord struct {
	Prompt      []tokenizer.Message   `json:"prompt"`
	Completions [][]tokenizer.Message `json:"completions"`
	Ranking     []int                 `json:"ranking"`
	Ratings     []int                 `json:"ratings,omitempty"`
	Verdict     string                `json:"verdict,omitempty"`
	Images      []string              `json:"images,omitempty"`
}

type preferenceRecord struct {
	Prompt   []tokenizer.Message `json:"prompt"`
	Chosen   []tokenizer.Message `json:"chosen"`
	Rejected []tokenizer.Message `json:"rejected"`
	Images   []string            `json:"images,omitempty"`
}

type imagePreferenceRecord struct {
	Prompt   string `json:"prompt"`
	Chosen   string `json:"chosen"`
	Rejected string `json:"rejected"`
	// The image tokens each image was decoded from, where the store has
	// them (golem imagine dpo trains on these, not the PNG encoded again).
	ChosenTokens   []int32 `json:"chosen_tokens,omitempty"`
	RejectedTokens []int32 `json:"rejected_tokens,omitempty"`
}

func assistant(content string) []tokenizer.Message {
	return []tokenizer.Message{{Role: "assistant", Content: content}}
}

// ExportJSONL writes the store's labels to w as JSONL in the given format and
// returns the number of lines written.
// Records with images name them (ExportPath); ExportFile writes the files.
func (s *Store) ExportJSONL(ctx context.Context, w io.Writer, kind ExportKind) (int, error) {
	return s.exportJSONL(ctx, w, kind, false, exportImages{})
}

// ExportJSONLImages is ExportJSONL that also returns the images its records
// name: each image's key and its path relative to the written file
// (ExportPath), for a caller that packs them with it (the web app's zip).
func (s *Store) ExportJSONLImages(ctx context.Context, w io.Writer, kind ExportKind) (int, map[string]string, error) {
	images := exportImages{}
	n, err := s.exportJSONL(ctx, w, kind, false, images)
	return n, images, err
}

// exportImages maps the key of each image an export names to its path
// relative to the exported file.
type exportImages map[string]string

// paths returns the "images" of p's records (nil without an image).
func (ei exportImages) paths(ctx context.Context, s *Store, p Prompt) ([]string, error) {
	if p.Image == "" {
		return nil, nil
	}
	rel, err := ei.path(ctx, s, p.Image)
	if err != nil {
		return nil, fmt.Errorf("store: prompt %d: %w", p.ID, err)
	}
	return []string{rel}, nil
}

// path returns where the image with key goes, relative to the exported
// file, and adds it to the images to write.
func (ei exportImages) path(ctx context.Context, s *Store, key string) (string, error) {
	if rel, ok := ei[key]; ok {
		return rel, nil
	}
	var format string
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT format FROM images WHERE sha256 = ?`), key).Scan(&format); err != nil {
		return "", fmt.Errorf("image %.16s: %w", key, err)
	}
	rel := ExportPath(key, format)
	ei[key] = rel
	return rel, nil
}

// exportJSONL is ExportJSONL; for training it leaves out the rankings
// lines of comparisons without a winner (data's reader refuses them). It
// adds the images the records name to images.
func (s *Store) exportJSONL(ctx context.Context, w io.Writer, kind ExportKind, training bool, images exportImages) (int, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	n := 0
	write := func(v any) error {
		if err := enc.Encode(v); err != nil {
			return &writeError{err}
		}
		n++
		return nil
	}
	var err error
	switch kind {
	case ExportSFT:
		err = s.Demonstrations(ctx, func(p Prompt, d Demonstration) error {
			im, err := images.paths(ctx, s, p)
			if err != nil {
				return err
			}
			msgs := append(p.Messages[:len(p.Messages):len(p.Messages)], tokenizer.Message{Role: "assistant", Content: d.Response})
			return write(sftRecord{Messages: msgs, Images: im})
		})
	case ExportRankings:
		err = s.Rankings(ctx, func(p Prompt, r Ranking) error {
			if training && r.Verdict != "" {
				return nil
			}
			im, err := images.paths(ctx, s, p)
			if err != nil {
				return err
			}
			rec := rankingRecord{Prompt: p.Messages, Ranking: r.Order, Verdict: r.Verdict, Images: im}
			rated := false
			for _, resp := range r.Responses {
				rec.Completions = append(rec.Completions, assistant(resp.Content))
				rec.Ratings = append(rec.Ratings, resp.Rating)
				rated = rated || resp.Rating != 0
			}
			if !rated {
				rec.Ratings = nil
			}
			return write(rec)
		})
	case ExportPreferences:
		err = s.Rankings(ctx, func(p Prompt, r Ranking) error {
			im, err := images.paths(ctx, s, p)
			if err != nil {
				return err
			}
			for _, pair := range r.Pairs() {
				rec := preferenceRecord{Prompt: p.Messages, Chosen: assistant(r.Responses[pair[0]].Content), Rejected: assistant(r.Responses[pair[1]].Content), Images: im}
				if err := write(rec); err != nil {
					return err
				}
			}
			return nil
		})
	case ExportImagePreferences:
		err = s.ImagePreferences(ctx, func(p ImagePreference) error {
			c, err := images.path(ctx, s, p.Chosen)
			if err != nil {
				return fmt.Errorf("store: image preferences: %w", err)
			}
			r, err := images.path(ctx, s, p.Rejected)
			if err != nil {
				return fmt.Errorf("store: image preferences: %w", err)
			}
			return write(imagePreferenceRecord{Prompt: p.Prompt, Chosen: c, Rejected: r, ChosenTokens: p.ChosenTokens, RejectedTokens: p.RejectedTokens})
		})
	default:
		return 0, invalidf("store: export: unknown format %q (known: %q, %q, %q, %q)", kind, ExportSFT, ExportRankings, ExportPreferences, ExportImagePreferences)
	}
	if err == nil {
		if ferr := bw.Flush(); ferr != nil {
			err = &writeError{ferr}
		}
	}
	var we *writeError
	if errors.As(err, &we) {
		return n, fmt.Errorf("store: export %s: write: %w", kind, we.err)
	}
	return n, err
}

// writeError marks an error of the export's writer, as opposed to the store's.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// ExportLLaVA writes the demonstrations of prompts with an image to w as
// LLaVA's conversation JSON, what golem vlm --stage instruct reads:
//
//	[{"id": "demonstration-7", "image": "images/SHA256.png", "conversations": [
//	  {"from": "human", "value": "<image>\n..."}, {"from": "gpt", "value": "..."}]}]
//
// user turns are "human", assistant turns (the demonstration last) "gpt";
// the first human turn holds ImageToken (put first when the prompt has
// none). It returns the records written and the demonstrations left out:
// those without an image, and those LLaVA's format cannot hold (a system
// message, or turns that do not alternate user and assistant).
func (s *Store) ExportLLaVA(ctx context.Context, w io.Writer) (n, left int, err error) {
	return s.exportLLaVA(ctx, w, exportImages{})
}

func (s *Store) exportLLaVA(ctx context.Context, w io.Writer, images exportImages) (n, left int, err error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	sep := "[\n"
	err = s.Demonstrations(ctx, func(p Prompt, d Demonstration) error {
		rec, ok := toLLaVA(p, d)
		if !ok {
			left++
			return nil
		}
		im, err := images.paths(ctx, s, p)
		if err != nil {
			return err
		}
		rec.Image = im[0]
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		bw.WriteString(sep)
		if _, err := bw.Write(b); err != nil {
			return &writeError{err}
		}
		sep = ",\n"
		n++
		return nil
	})
	if err == nil {
		if n == 0 {
			bw.WriteString("[")
		}
		bw.WriteString("\n]\n")
		if ferr := bw.Flush(); ferr != nil {
			err = &writeError{ferr}
		}
	}
	var we *writeError
	if errors.As(err, &we) {
		return n, left, fmt.Errorf("store: export llava: write: %w", we.err)
	}
	return n, left, err
}

// toLLaVA returns d as a LLaVA record, or false when LLaVA's format cannot
// hold it.
func toLLaVA(p Prompt, d Demonstration) (vision.LLaVA, bool) {
	if p.Image == "" {
		return vision.LLaVA{}, false
	}
	rec := vision.LLaVA{ID: fmt.Sprintf("demonstration-%d", d.ID)}
	for i, m := range append(p.Messages[:len(p.Messages):len(p.Messages)], tokenizer.Message{Role: "assistant", Content: d.Response}) {
		want, from := "user", "human"
		if i%2 == 1 {
			want, from = "assistant", "gpt"
		}
		if m.Role != want {
			return vision.LLaVA{}, false
		}
		v := m.Content
		if i == 0 && !strings.Contains(v, ImageToken) {
			v = ImageToken + "\n" + v
		}
		rec.Conversations = append(rec.Conversations, vision.Turn{From: from, Value: v})
	}
	return rec, true
}
