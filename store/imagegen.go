package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Generated images and their comparisons. A person asks a served
// text-to-image model for images of a prompt (the web app's Generate
// view); each image is kept once, content-addressed in the images table as
// a prompt's image is, and a Generation row says which prompt and model
// drew it with which seed. Annotators then compare two images of the same
// prompt ("which fits the prompt better"): an ImageComparison, exported
// as ExportImagePreferences for preference tuning of the image model.

// Generation is one image a text-to-image model drew for a prompt.
type Generation struct {
	ID       int64
	Prompt   string // the text the model was given
	PromptID int64  // the imported prompt it came from, 0 when typed
	Model    string // the served model that drew it
	// Seed draws the image again: sample 0 of this seed, with the
	// temperature and top-p the web app draws with (1 and 1).
	Seed  uint64
	Image string // the image's key (hex SHA-256); Store.Image reads it
	// Tokens are the image tokens, row by row, the model's VQ-VAE decoded
	// the image from (nil: not known).
	Tokens    []int32
	CreatedBy int64 // the user who asked for it
	CreatedAt time.Time
}

// ImageComparison is an annotator's judgement of which of two images of
// the same prompt fits it better.
type ImageComparison struct {
	ID          int64
	AnnotatorID int64
	// A and B are the two generations, A the older (the smaller id),
	// whatever order they were shown in.
	A, B int64
	// Chosen is A or B, the better one; 0 with a Verdict.
	Chosen int64
	// Verdict is "" when Chosen says which is better, else VerdictTie,
	// VerdictBothBad or VerdictSkip (the annotator passed on the pair).
	Verdict   string
	CreatedAt time.Time
}

// VerdictSkip is an image comparison the annotator skipped: it is not
// offered to them again and gives no preference.
const VerdictSkip = "skip"

// Limits on generations.
const (
	// MaxImagePromptBytes bounds a generation's prompt (a text-to-image
	// model's text context is far shorter).
	MaxImagePromptBytes = 4096
	// MaxGenerations is the most images one AddGenerations stores.
	MaxGenerations = 64
)

// AddGenerations stores images a model drew for one prompt, each with its
// own seed: g's Prompt, PromptID (0 for none), Model and CreatedBy, and
// for image i seeds[i], the PNG bytes pngs[i] and the image tokens it was
// decoded from, tokens[i] (tokens nil: not known). The images go in the
// images table (one already there is kept as it is) and the rows in one
// transaction. It returns the generations with their IDs and keys.
func (s *Store) AddGenerations(ctx context.Context, g Generation, seeds []uint64, pngs [][]byte, tokens [][]int32) ([]Generation, error) {
	if err := validText("prompt", g.Prompt); err != nil {
		return nil, fmt.Errorf("store: generations: %w", err)
	}
	switch {
	case len(g.Prompt) > MaxImagePromptBytes:
		return nil, invalidf("store: generations: the prompt has %d bytes, more than %d", len(g.Prompt), MaxImagePromptBytes)
	case g.Model == "" || len(g.Model) > maxModelBytes || !utf8.ValidString(g.Model):
		return nil, invalidf("store: generations: model must be a name of 1 to %d bytes", maxModelBytes)
	case len(pngs) == 0 || len(pngs) > MaxGenerations:
		return nil, invalidf("store: generations: %d images, want 1 to %d", len(pngs), MaxGenerations)
	case len(seeds) != len(pngs):
		return nil, invalidf("store: generations: %d seeds for %d images", len(seeds), len(pngs))
	case tokens != nil && len(tokens) != len(pngs):
		return nil, invalidf("store: generations: %d token grids for %d images", len(tokens), len(pngs))
	}
	toks := make([]any, len(pngs)) // NULL where not known
	for i := range tokens {
		if tokens[i] != nil {
			b, _ := json.Marshal(tokens[i])
			toks[i] = string(b)
		}
	}
	ims := make([]Image, len(pngs))
	for i, b := range pngs {
		im, err := checkImage(fmt.Sprintf("generated image %d", i), b)
		if err != nil {
			return nil, fmt.Errorf("store: generations: %w", err)
		}
		ims[i] = im
	}
	var prompt any // NULL for a typed prompt
	if g.PromptID != 0 {
		prompt = g.PromptID
	}
	out := make([]Generation, len(pngs))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if g.PromptID != 0 {
			if err := s.mustExist(ctx, tx, g.PromptID, g.CreatedBy); err != nil {
				return err
			}
		} else if err := s.userExists(ctx, tx, g.CreatedBy); err != nil {
			return err
		}
		at := now()
		for i, im := range ims {
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO images (sha256, format, width, height, data, created_at) VALUES (?, ?, ?, ?, ?, ?)
				ON CONFLICT (sha256) DO NOTHING`), im.SHA256, im.Format, im.Width, im.Height, im.Data, at); err != nil {
				return fmt.Errorf("store: generations: image %.16s: %w", im.SHA256, err)
			}
			r := g
			r.Seed, r.Image, r.CreatedAt = seeds[i], im.SHA256, at
			if tokens != nil {
				r.Tokens = tokens[i]
			}
			err := tx.QueryRowContext(ctx, s.q(`INSERT INTO generations (prompt, prompt_id, model, seed, image_sha256, tokens, created_by, created_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`), r.Prompt, prompt, r.Model, int64(r.Seed), r.Image, toks[i], r.CreatedBy, at).Scan(&r.ID)
			if err != nil {
				return fmt.Errorf("store: add generation: %w", err)
			}
			out[i] = r
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// userExists checks, in tx, that user id exists.
func (s *Store) userExists(ctx context.Context, tx *sql.Tx, id int64) error {
	var n int
	if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM users WHERE id = ?`), id).Scan(&n); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("store: user %d: %w", id, ErrNotFound)
	}
	return nil
}

const generationColumns = `id, prompt, prompt_id, model, seed, image_sha256, created_by, created_at`

func scanGeneration(row interface{ Scan(...any) error }, g *Generation, extra ...any) error {
	var prompt sql.NullInt64
	var seed int64
	err := row.Scan(append([]any{&g.ID, &g.Prompt, &prompt, &g.Model, &seed, &g.Image, &g.CreatedBy, &g.CreatedAt}, extra...)...)
	g.PromptID, g.Seed, g.CreatedAt = prompt.Int64, uint64(seed), g.CreatedAt.UTC()
	return err
}

// Generation returns the generation with the given id.
func (s *Store) Generation(ctx context.Context, id int64) (Generation, error) {
	return s.generation(ctx, s.db, id)
}

func (s *Store) generation(ctx context.Context, q queryer, id int64) (Generation, error) {
	var g Generation
	err := scanGeneration(q.QueryRowContext(ctx, s.q(`SELECT `+generationColumns+` FROM generations WHERE id = ?`), id), &g)
	if errors.Is(err, sql.ErrNoRows) {
		return Generation{}, notFoundf("store: generation %d: not in the store", id)
	}
	if err != nil {
		return Generation{}, fmt.Errorf("store: generation %d: %w", id, err)
	}
	return g, nil
}

// NextImagePrompt returns the oldest imported prompt without an image that
// no model has drawn yet (no generation names it), for the Generate view
// to offer; its text is ImagePromptText's. None left is ErrNotFound.
func (s *Store) NextImagePrompt(ctx context.Context) (Prompt, error) {
	var p Prompt
	err := scanPrompt(s.db.QueryRowContext(ctx, `SELECT `+promptColumns+` FROM prompts p
		WHERE p.image_sha256 IS NULL AND NOT EXISTS (SELECT 1 FROM generations g WHERE g.prompt_id = p.id)
		ORDER BY p.id LIMIT 1`), &p)
	if errors.Is(err, sql.ErrNoRows) {
		return Prompt{}, notFoundf("store: every imported prompt without an image has been drawn")
	}
	if err != nil {
		return Prompt{}, fmt.Errorf("store: next image prompt: %w", err)
	}
	return p, nil
}

// ImagePromptText is the text a text-to-image model is given for an
// imported prompt: its last user message.
func ImagePromptText(p Prompt) string {
	for i := len(p.Messages) - 1; i >= 0; i-- {
		if p.Messages[i].Role == "user" {
			return p.Messages[i].Content
		}
	}
	return ""
}

// ImagePair is two images of one prompt to compare.
type ImagePair struct {
	Prompt string
	A, B   Generation // A the older
}

// imagePairsLeft joins the pairs of generations (a, b) an annotator (one
// ? placeholder) has neither judged nor skipped: the same prompt,
// different images, a the older.
const imagePairsLeft = `generations a
	JOIN generations b ON b.prompt = a.prompt AND b.id > a.id AND b.image_sha256 <> a.image_sha256
	WHERE NOT EXISTS (SELECT 1 FROM image_comparisons c WHERE c.annotator_id = ? AND c.generation_a = a.id AND c.generation_b = b.id)`

// NextImagePair returns the next pair of images annotatorID has not
// compared (nor skipped): two generations of the same prompt with
// different images, the oldest prompt's first. None left is ErrNotFound.
func (s *Store) NextImagePair(ctx context.Context, annotatorID int64) (ImagePair, error) {
	var a, b int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT a.id, b.id FROM `+imagePairsLeft+` ORDER BY a.id, b.id LIMIT 1`), annotatorID).Scan(&a, &b)
	if errors.Is(err, sql.ErrNoRows) {
		return ImagePair{}, notFoundf("store: no pair of images left to compare for annotator %d", annotatorID)
	}
	if err != nil {
		return ImagePair{}, fmt.Errorf("store: next image pair: %w", err)
	}
	var p ImagePair
	if p.A, err = s.Generation(ctx, a); err != nil {
		return ImagePair{}, err
	}
	if p.B, err = s.Generation(ctx, b); err != nil {
		return ImagePair{}, err
	}
	p.Prompt = p.A.Prompt
	return p, nil
}

// AddImageComparison stores c (AnnotatorID, A and B in either order, and
// Chosen or Verdict) and returns it with its ID, A the older generation.
// The two must be images of the same prompt, and different images; an
// annotator judges a pair once: a second time is ErrConflict.
func (s *Store) AddImageComparison(ctx context.Context, c ImageComparison) (ImageComparison, error) {
	if c.A > c.B {
		c.A, c.B = c.B, c.A
	}
	switch c.Verdict {
	case "":
		if c.Chosen != c.A && c.Chosen != c.B || c.Chosen == 0 {
			return ImageComparison{}, invalidf("store: image comparison: chosen %d is neither generation %d nor %d", c.Chosen, c.A, c.B)
		}
	case VerdictTie, VerdictBothBad, VerdictSkip:
		if c.Chosen != 0 {
			return ImageComparison{}, invalidf("store: image comparison: verdict %q chooses no image, but chosen is %d", c.Verdict, c.Chosen)
		}
	default:
		return ImageComparison{}, invalidf("store: image comparison: verdict %q is not %q, %q, %q or empty", c.Verdict, VerdictTie, VerdictBothBad, VerdictSkip)
	}
	if c.A == c.B {
		return ImageComparison{}, invalidf("store: image comparison: generation %d compared with itself", c.A)
	}
	c.CreatedAt = now()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.userExists(ctx, tx, c.AnnotatorID); err != nil {
			return err
		}
		a, err := s.generation(ctx, tx, c.A)
		if err != nil {
			return err
		}
		b, err := s.generation(ctx, tx, c.B)
		if err != nil {
			return err
		}
		if a.Prompt != b.Prompt {
			return invalidf("store: image comparison: generations %d and %d are images of different prompts", c.A, c.B)
		}
		if a.Image == b.Image {
			return invalidf("store: image comparison: generations %d and %d are the same image", c.A, c.B)
		}
		var chosen any
		if c.Chosen != 0 {
			chosen = c.Chosen
		}
		err = tx.QueryRowContext(ctx, s.q(`INSERT INTO image_comparisons (annotator_id, generation_a, generation_b, chosen, verdict, created_at)
			VALUES (?, ?, ?, ?, ?, ?) RETURNING id`), c.AnnotatorID, c.A, c.B, chosen, c.Verdict, c.CreatedAt).Scan(&c.ID)
		if isUnique(err) {
			return fmt.Errorf("store: annotator %d already compared generations %d and %d: %w", c.AnnotatorID, c.A, c.B, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("store: add image comparison: %w", err)
		}
		return nil
	})
	if err != nil {
		return ImageComparison{}, err
	}
	return c, nil
}

// ImagePreference is an image comparison that prefers one image: the
// prompt, the keys of the chosen and the rejected image, and the image
// tokens each was decoded from (nil: not known).
type ImagePreference struct {
	Prompt, Chosen, Rejected     string
	ChosenTokens, RejectedTokens []int32
}

// ImagePreferences calls fn with every image comparison that prefers one
// image (neither a tie, both bad nor a skip), oldest first.
func (s *Store) ImagePreferences(ctx context.Context, fn func(ImagePreference) error) error {
	rows, err := s.db.QueryContext(ctx, `SELECT a.prompt, a.id, a.image_sha256, b.image_sha256, a.tokens, b.tokens, c.chosen
		FROM image_comparisons c
		JOIN generations a ON a.id = c.generation_a
		JOIN generations b ON b.id = c.generation_b
		WHERE c.verdict = '' ORDER BY c.id`)
	if err != nil {
		return fmt.Errorf("store: image preferences: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p ImagePreference
		var ta, tb sql.NullString
		var a, chosen int64
		if err := rows.Scan(&p.Prompt, &a, &p.Chosen, &p.Rejected, &ta, &tb, &chosen); err != nil {
			return fmt.Errorf("store: image preferences: %w", err)
		}
		for _, t := range []struct {
			s   sql.NullString
			dst *[]int32
		}{{ta, &p.ChosenTokens}, {tb, &p.RejectedTokens}} {
			if t.s.Valid {
				if err := json.Unmarshal([]byte(t.s.String), t.dst); err != nil {
					return fmt.Errorf("store: image preferences: comparison of generation %d: tokens: %w", a, err)
				}
			}
		}
		if chosen != a {
			p.Chosen, p.Rejected = p.Rejected, p.Chosen
			p.ChosenTokens, p.RejectedTokens = p.RejectedTokens, p.ChosenTokens
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: image preferences: %w", err)
	}
	return nil
}
