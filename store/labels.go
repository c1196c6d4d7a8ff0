package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Demonstration is an assistant answer written by an annotator for a prompt.
type Demonstration struct {
	ID          int64
	PromptID    int64
	AnnotatorID int64
	Response    string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Response is one of the answers an annotator ranks.
type Response struct {
	Model   string   // the model that produced it
	Content string   // the answer's text
	Flags   []string // problems the annotator marked: see Flags
	// Rating is the answer's overall quality on InstructGPT's Likert scale,
	// 1 (worst) to MaxRating (best); 0 when the annotator gave none.
	Rating int
}

// MaxRating is the top of the rating scale (InstructGPT's 1-7).
const MaxRating = 7

// The verdicts of a comparison (a ranking of two) that has no winner. Order
// is then stored as shown, [0, 1], and means nothing: such a comparison
// gives no preference pair (Pairs is empty) and the rankings export carries
// the verdict.
const (
	VerdictTie     = "tie"      // both answers are as good
	VerdictBothBad = "both_bad" // neither answer is acceptable
)

// Ranking is an annotator's ordering of K >= 2 answers to one prompt, best
// first; ties are not allowed, except that a pairwise comparison (a ranking
// with K = 2) may have the Verdict VerdictTie or VerdictBothBad.
type Ranking struct {
	ID          int64
	PromptID    int64
	AnnotatorID int64
	Responses   []Response // in the order the annotator saw them
	// Order lists the indices of Responses from best to worst: a
	// permutation of 0..K-1. Order[0] is the best answer.
	Order []int
	// Verdict is "" when Order ranks the answers, or, for a comparison
	// without a winner, VerdictTie or VerdictBothBad.
	Verdict   string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// K returns the number of ranked answers.
func (r Ranking) K() int { return len(r.Responses) }

// Pairs returns every pair of answers the ranking orders, C(K, 2) of them,
// as indices into Responses: the first of each pair is the better one. A
// tie or a both-bad comparison orders none: it has no pair.
func (r Ranking) Pairs() [][2]int {
	if r.Verdict != "" {
		return nil
	}
	var pairs [][2]int
	for i := range r.Order {
		for j := i + 1; j < len(r.Order); j++ {
			pairs = append(pairs, [2]int{r.Order[i], r.Order[j]})
		}
	}
	return pairs
}

// Flags are the problems an annotator can mark on a ranked answer, after
// InstructGPT's labelling instructions.
var Flags = []string{
	"incorrect",           // states something false
	"harmful",             // could cause harm to people or things
	"hallucination",       // makes up facts, sources or details
	"ignores_instruction", // does not do what the prompt asked
	"inappropriate",       // not fit for a customer-facing assistant
	"sexual",              // sexual content
	"violent",             // violent content or encourages violence
	"moral_judgment",      // lectures or moralizes
}

// Limits on labels.
const (
	maxResponseBytes = 1 << 20
	maxModelBytes    = 256
	// MaxK is the most answers one ranking can hold.
	MaxK = 16
)

func validText(what, text string) error {
	if strings.TrimSpace(text) == "" {
		return invalidf("%s is empty", what)
	}
	if len(text) > maxResponseBytes {
		return invalidf("%s has %d bytes, more than %d", what, len(text), maxResponseBytes)
	}
	if !utf8.ValidString(text) {
		return invalidf("%s is not valid UTF-8", what)
	}
	if strings.IndexByte(text, 0) >= 0 {
		return invalidf("%s contains a NUL character (U+0000), which the database cannot store", what)
	}
	return nil
}

// mustExist checks that the prompt and the annotator a new label names exist.
func (s *Store) mustExist(ctx context.Context, tx *sql.Tx, promptID, annotatorID int64) error {
	var n int
	err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM prompts WHERE id = ?`), promptID).Scan(&n)
	if err == nil && n == 0 {
		return fmt.Errorf("store: prompt %d: %w", promptID, ErrNotFound)
	}
	if err == nil {
		err = tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM users WHERE id = ?`), annotatorID).Scan(&n)
	}
	if err == nil && n == 0 {
		return fmt.Errorf("store: annotator %d: %w", annotatorID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// owned checks, in tx, that the label id in table exists and is annotatorID's.
func (s *Store) owned(ctx context.Context, tx *sql.Tx, table, what string, id, annotatorID int64) error {
	var owner int64
	err := tx.QueryRowContext(ctx, s.q(`SELECT annotator_id FROM `+table+` WHERE id = ?`), id).Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: %s %d: %w", what, id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: %s %d: %w", what, id, err)
	}
	if owner != annotatorID {
		return fmt.Errorf("store: %s %d belongs to another annotator: %w", what, id, ErrForbidden)
	}
	return nil
}

// AddDemonstration stores d (its PromptID, AnnotatorID and Response) and
// returns it with its ID and times. An annotator writes at most one
// demonstration per prompt: a second is ErrConflict.
func (s *Store) AddDemonstration(ctx context.Context, d Demonstration) (Demonstration, error) {
	if err := validText("response", d.Response); err != nil {
		return Demonstration{}, fmt.Errorf("store: demonstration for prompt %d: %w", d.PromptID, err)
	}
	d.CreatedAt = now()
	d.UpdatedAt = d.CreatedAt
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.mustExist(ctx, tx, d.PromptID, d.AnnotatorID); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, s.q(`INSERT INTO demonstrations (prompt_id, annotator_id, response, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?) RETURNING id`), d.PromptID, d.AnnotatorID, d.Response, d.CreatedAt, d.UpdatedAt).Scan(&d.ID)
		if isUnique(err) {
			return fmt.Errorf("store: annotator %d already wrote a demonstration for prompt %d: %w", d.AnnotatorID, d.PromptID, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("store: add demonstration: %w", err)
		}
		return nil
	})
	if err != nil {
		return Demonstration{}, err
	}
	return d, nil
}

const demonstrationColumns = `d.id, d.prompt_id, d.annotator_id, d.response, d.created_at, d.updated_at`

func scanDemonstration(row interface{ Scan(...any) error }, d *Demonstration, extra ...any) error {
	err := row.Scan(append([]any{&d.ID, &d.PromptID, &d.AnnotatorID, &d.Response, &d.CreatedAt, &d.UpdatedAt}, extra...)...)
	d.CreatedAt, d.UpdatedAt = d.CreatedAt.UTC(), d.UpdatedAt.UTC()
	return err
}

// Demonstration returns the demonstration with the given id.
func (s *Store) Demonstration(ctx context.Context, id int64) (Demonstration, error) {
	var d Demonstration
	err := scanDemonstration(s.db.QueryRowContext(ctx, s.q(`SELECT `+demonstrationColumns+` FROM demonstrations d WHERE d.id = ?`), id), &d)
	if errors.Is(err, sql.ErrNoRows) {
		return Demonstration{}, fmt.Errorf("store: demonstration %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Demonstration{}, fmt.Errorf("store: demonstration %d: %w", id, err)
	}
	return d, nil
}

// UpdateDemonstration replaces the response of demonstration id, which must
// be annotatorID's (ErrForbidden otherwise).
func (s *Store) UpdateDemonstration(ctx context.Context, annotatorID, id int64, response string) (Demonstration, error) {
	if err := validText("response", response); err != nil {
		return Demonstration{}, fmt.Errorf("store: demonstration %d: %w", id, err)
	}
	var d Demonstration
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.owned(ctx, tx, "demonstrations", "demonstration", id, annotatorID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE demonstrations SET response = ?, updated_at = ? WHERE id = ?`), response, now(), id); err != nil {
			return fmt.Errorf("store: update demonstration %d: %w", id, err)
		}
		err := scanDemonstration(tx.QueryRowContext(ctx, s.q(`SELECT `+demonstrationColumns+` FROM demonstrations d WHERE d.id = ?`), id), &d)
		if err != nil {
			return fmt.Errorf("store: demonstration %d: %w", id, err)
		}
		return nil
	})
	return d, err
}

// DeleteDemonstration removes demonstration id, which must be annotatorID's.
func (s *Store) DeleteDemonstration(ctx context.Context, annotatorID, id int64) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.owned(ctx, tx, "demonstrations", "demonstration", id, annotatorID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM demonstrations WHERE id = ?`), id); err != nil {
			return fmt.Errorf("store: delete demonstration %d: %w", id, err)
		}
		return nil
	})
}

// checkOrder checks that order is a permutation of 0..k-1.
func checkOrder(order []int, k int) error {
	if len(order) != k {
		return invalidf("the ranking orders %d answers but there are %d", len(order), k)
	}
	seen := make([]bool, k)
	for place, i := range order {
		if i < 0 || i >= k {
			return invalidf("ranking place %d names answer %d; answers are numbered 0 to %d", place+1, i, k-1)
		}
		if seen[i] {
			return invalidf("answer %d is ranked twice; ties are not allowed", i)
		}
		seen[i] = true
	}
	return nil
}

// checkFlags checks that flags holds known flags, each once.
func checkFlags(answer int, flags []string) error {
	for i, f := range flags {
		if !slices.Contains(Flags, f) {
			return invalidf("answer %d: unknown flag %q (known: %s)", answer, f, strings.Join(Flags, ", "))
		}
		if slices.Contains(flags[:i], f) {
			return invalidf("answer %d: flag %q given twice", answer, f)
		}
	}
	return nil
}

func checkRanking(r Ranking) error {
	k := len(r.Responses)
	if k < 2 || k > MaxK {
		return invalidf("a ranking needs 2 to %d answers, got %d", MaxK, k)
	}
	for i, resp := range r.Responses {
		if err := validText(fmt.Sprintf("answer %d", i), resp.Content); err != nil {
			return err
		}
		if resp.Model == "" || len(resp.Model) > maxModelBytes || !utf8.ValidString(resp.Model) {
			return invalidf("answer %d: model must be a name of 1 to %d bytes", i, maxModelBytes)
		}
		for j := range i {
			if r.Responses[j].Content == resp.Content {
				return invalidf("answers %d and %d are identical; ties are not allowed", j, i)
			}
		}
		if err := checkFlags(i, resp.Flags); err != nil {
			return err
		}
		if resp.Rating < 0 || resp.Rating > MaxRating {
			return invalidf("answer %d: rating %d is not between 1 and %d (0 for none)", i, resp.Rating, MaxRating)
		}
	}
	switch r.Verdict {
	case "":
	case VerdictTie, VerdictBothBad:
		if k != 2 {
			return invalidf("verdict %q is for a comparison of 2 answers; this ranking has %d", r.Verdict, k)
		}
	default:
		return invalidf("verdict %q is not %q, %q or empty", r.Verdict, VerdictTie, VerdictBothBad)
	}
	return checkOrder(r.Order, k)
}

// insertResponses writes a ranking's answers.
func (s *Store) insertResponses(ctx context.Context, tx *sql.Tx, r Ranking) error {
	rank := make([]int, len(r.Order))
	for place, i := range r.Order {
		rank[i] = place
	}
	for i, resp := range r.Responses {
		flags := resp.Flags
		if flags == nil {
			flags = []string{}
		}
		fj, _ := json.Marshal(flags)
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO ranking_responses (ranking_id, position, rank, model, content, flags, rating)
			VALUES (?, ?, ?, ?, ?, ?, ?)`), r.ID, i, rank[i], resp.Model, resp.Content, string(fj), resp.Rating); err != nil {
			return fmt.Errorf("store: ranking %d: answer %d: %w", r.ID, i, err)
		}
	}
	return nil
}

// AddRanking stores r (its PromptID, AnnotatorID, Responses and Order) and
// returns it with its ID and times. It checks that there are 2 to MaxK
// distinct answers, each with its model, that Order is a permutation (no
// ties) and that flags are known. An annotator ranks a prompt at most once:
// a second ranking is ErrConflict.
func (s *Store) AddRanking(ctx context.Context, r Ranking) (Ranking, error) {
	if err := checkRanking(r); err != nil {
		return Ranking{}, fmt.Errorf("store: ranking for prompt %d: %w", r.PromptID, err)
	}
	r.Responses = slices.Clone(r.Responses)
	for i := range r.Responses {
		r.Responses[i].Flags = slices.Clone(r.Responses[i].Flags)
	}
	r.Order = slices.Clone(r.Order)
	r.CreatedAt = now()
	r.UpdatedAt = r.CreatedAt
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.mustExist(ctx, tx, r.PromptID, r.AnnotatorID); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, s.q(`INSERT INTO rankings (prompt_id, annotator_id, k, verdict, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?) RETURNING id`), r.PromptID, r.AnnotatorID, len(r.Responses), r.Verdict, r.CreatedAt, r.UpdatedAt).Scan(&r.ID)
		if isUnique(err) {
			return fmt.Errorf("store: annotator %d already ranked prompt %d: %w", r.AnnotatorID, r.PromptID, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("store: add ranking: %w", err)
		}
		return s.insertResponses(ctx, tx, r)
	})
	if err != nil {
		return Ranking{}, err
	}
	return r, nil
}

// UpdateRanking replaces the order and the flags of ranking id, which must
// be annotatorID's (ErrForbidden otherwise). flags holds one list per answer,
// in the order the answers were shown; nil clears every flag. The answers
// themselves do not change; their ratings and the verdict are cleared (see
// EditRanking).
func (s *Store) UpdateRanking(ctx context.Context, annotatorID, id int64, order []int, flags [][]string) (Ranking, error) {
	return s.EditRanking(ctx, annotatorID, id, RankingEdit{Order: order, Flags: flags})
}

// RankingEdit is what an annotator may change in their ranking: everything
// but the answers.
type RankingEdit struct {
	Order   []int
	Flags   [][]string // one list per answer as shown; nil clears every flag
	Ratings []int      // one rating per answer as shown (0 for none); nil clears them
	Verdict string     // "", VerdictTie or VerdictBothBad
}

// EditRanking replaces the order, flags, ratings and verdict of ranking id,
// which must be annotatorID's (ErrForbidden otherwise), checked as
// AddRanking checks a new one.
func (s *Store) EditRanking(ctx context.Context, annotatorID, id int64, e RankingEdit) (Ranking, error) {
	order, flags := e.Order, e.Flags
	var r Ranking
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.owned(ctx, tx, "rankings", "ranking", id, annotatorID); err != nil {
			return err
		}
		var err error
		r, err = s.ranking(ctx, tx, id)
		if err != nil {
			return err
		}
		if flags != nil && len(flags) != len(r.Responses) {
			return invalidf("store: ranking %d: %d flag lists for %d answers", id, len(flags), len(r.Responses))
		}
		if e.Ratings != nil && len(e.Ratings) != len(r.Responses) {
			return invalidf("store: ranking %d: %d ratings for %d answers", id, len(e.Ratings), len(r.Responses))
		}
		for i := range r.Responses {
			r.Responses[i].Flags, r.Responses[i].Rating = nil, 0
			if flags != nil {
				r.Responses[i].Flags = slices.Clone(flags[i])
			}
			if e.Ratings != nil {
				r.Responses[i].Rating = e.Ratings[i]
			}
		}
		r.Order = slices.Clone(order)
		r.Verdict = e.Verdict
		if err := checkRanking(r); err != nil {
			return fmt.Errorf("store: ranking %d: %w", id, err)
		}
		r.UpdatedAt = now()
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE rankings SET updated_at = ?, verdict = ? WHERE id = ?`), r.UpdatedAt, r.Verdict, id); err != nil {
			return fmt.Errorf("store: update ranking %d: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM ranking_responses WHERE ranking_id = ?`), id); err != nil {
			return fmt.Errorf("store: update ranking %d: %w", id, err)
		}
		return s.insertResponses(ctx, tx, r)
	})
	if err != nil {
		return Ranking{}, err
	}
	return r, nil
}

// DeleteRanking removes ranking id, which must be annotatorID's.
func (s *Store) DeleteRanking(ctx context.Context, annotatorID, id int64) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.owned(ctx, tx, "rankings", "ranking", id, annotatorID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM rankings WHERE id = ?`), id); err != nil {
			return fmt.Errorf("store: delete ranking %d: %w", id, err)
		}
		return nil
	})
}

// Ranking returns the ranking with the given id.
func (s *Store) Ranking(ctx context.Context, id int64) (Ranking, error) {
	return s.ranking(ctx, s.db, id)
}

func (s *Store) ranking(ctx context.Context, q queryer, id int64) (Ranking, error) {
	var found *Ranking
	err := s.eachRanking(ctx, q, `r.id = ?`, []any{id}, func(_ Prompt, r Ranking) error {
		found = &r
		return nil
	})
	if err != nil {
		return Ranking{}, err
	}
	if found == nil {
		return Ranking{}, fmt.Errorf("store: ranking %d: %w", id, ErrNotFound)
	}
	return *found, nil
}

// eachRanking calls fn with each ranking matching where (a condition on r,
// the rankings table, with ? placeholders), oldest first, and its prompt.
func (s *Store) eachRanking(ctx context.Context, q queryer, where string, args []any, fn func(Prompt, Ranking) error) error {
	rows, err := q.QueryContext(ctx, s.q(`SELECT `+promptColumns+`,
			r.id, r.annotator_id, r.verdict, r.created_at, r.updated_at,
			rr.position, rr.rank, rr.model, rr.content, rr.flags, rr.rating
		FROM rankings r
		JOIN prompts p ON p.id = r.prompt_id
		JOIN ranking_responses rr ON rr.ranking_id = r.id
		WHERE `+where+`
		ORDER BY r.id, rr.position`), args...)
	if err != nil {
		return fmt.Errorf("store: rankings: %w", err)
	}
	defer rows.Close()
	var p Prompt
	var r Ranking
	var ranks []int
	flush := func() error {
		if r.ID == 0 {
			return nil
		}
		r.Order = make([]int, len(ranks))
		for i, place := range ranks {
			if place < 0 || place >= len(ranks) {
				return fmt.Errorf("store: ranking %d: stored rank %d out of range", r.ID, place)
			}
			r.Order[place] = i
		}
		r.PromptID = p.ID
		return fn(p, r)
	}
	for rows.Next() {
		var (
			row                 Prompt
			id, annotator       int64
			verdict             string
			created, updated    time.Time
			position, place     int
			model, content, fjs string
			rating              int
		)
		if err := scanPrompt(rows, &row, &id, &annotator, &verdict, &created, &updated, &position, &place, &model, &content, &fjs, &rating); err != nil {
			return fmt.Errorf("store: rankings: %w", err)
		}
		if id != r.ID {
			if err := flush(); err != nil {
				return err
			}
			p = row
			r = Ranking{ID: id, AnnotatorID: annotator, Verdict: verdict, CreatedAt: created.UTC(), UpdatedAt: updated.UTC()}
			ranks = ranks[:0]
		}
		if position != len(r.Responses) {
			return fmt.Errorf("store: ranking %d: stored answers out of order", id)
		}
		var flags []string
		if err := json.Unmarshal([]byte(fjs), &flags); err != nil {
			return fmt.Errorf("store: ranking %d: answer %d: stored flags: %w", id, position, err)
		}
		if len(flags) == 0 {
			flags = nil
		}
		r.Responses = append(r.Responses, Response{Model: model, Content: content, Flags: flags, Rating: rating})
		ranks = append(ranks, place)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: rankings: %w", err)
	}
	return flush()
}

// Labels are one annotator's demonstrations and rankings.
type Labels struct {
	Demonstrations []Demonstration
	Rankings       []Ranking
}

// ListByAnnotator returns every label annotatorID made, oldest first.
func (s *Store) ListByAnnotator(ctx context.Context, annotatorID int64) (Labels, error) {
	var l Labels
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+demonstrationColumns+` FROM demonstrations d WHERE d.annotator_id = ? ORDER BY d.id`), annotatorID)
	if err != nil {
		return Labels{}, fmt.Errorf("store: demonstrations of annotator %d: %w", annotatorID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var d Demonstration
		if err := scanDemonstration(rows, &d); err != nil {
			return Labels{}, fmt.Errorf("store: demonstrations of annotator %d: %w", annotatorID, err)
		}
		l.Demonstrations = append(l.Demonstrations, d)
	}
	if err := rows.Err(); err != nil {
		return Labels{}, fmt.Errorf("store: demonstrations of annotator %d: %w", annotatorID, err)
	}
	err = s.eachRanking(ctx, s.db, `r.annotator_id = ?`, []any{annotatorID}, func(_ Prompt, r Ranking) error {
		l.Rankings = append(l.Rankings, r)
		return nil
	})
	if err != nil {
		return Labels{}, err
	}
	return l, nil
}

// Progress counts one annotator's labels.
type Progress struct {
	AnnotatorID    int64
	Prompts        int // prompts in the store
	Demonstrations int // demonstrations written
	Rankings       int // rankings made, comparisons included
	Comparisons    int // rankings of two answers
	Skipped        int // prompts skipped, in either queue (SkipPrompt), and image pairs skipped
	// The prompts left to the annotator in each queue: neither labelled
	// nor skipped by them (what NextPrompt can still offer).
	LeftDemonstrate int
	LeftRank        int // rankings and comparisons share this queue
	// ImageComparisons counts the pairs of generated images judged (a
	// choice, a tie or both bad; not the skipped), LeftImageCompare the
	// pairs NextImagePair can still offer.
	ImageComparisons int
	LeftImageCompare int
}

// Progress returns annotatorID's counts.
func (s *Store) Progress(ctx context.Context, annotatorID int64) (Progress, error) {
	p := Progress{AnnotatorID: annotatorID}
	err := s.db.QueryRowContext(ctx, s.q(`SELECT
			(SELECT COUNT(*) FROM prompts),
			(SELECT COUNT(*) FROM demonstrations WHERE annotator_id = ?),
			(SELECT COUNT(*) FROM rankings WHERE annotator_id = ?),
			(SELECT COUNT(*) FROM rankings WHERE annotator_id = ? AND k = 2),
			(SELECT COUNT(*) FROM skips WHERE annotator_id = ?) + (SELECT COUNT(*) FROM image_comparisons WHERE annotator_id = ? AND verdict = 'skip'),
			`+leftIn("demonstrations", "demonstrate")+`,
			`+leftIn("rankings", "rank")+`,
			(SELECT COUNT(*) FROM image_comparisons WHERE annotator_id = ? AND verdict <> 'skip'),
			(SELECT COUNT(*) FROM `+imagePairsLeft+`)`),
		annotatorID, annotatorID, annotatorID, annotatorID, annotatorID, annotatorID, annotatorID, annotatorID, annotatorID, annotatorID, annotatorID).Scan(
		&p.Prompts, &p.Demonstrations, &p.Rankings, &p.Comparisons, &p.Skipped, &p.LeftDemonstrate, &p.LeftRank, &p.ImageComparisons, &p.LeftImageCompare)
	if err != nil {
		return Progress{}, fmt.Errorf("store: progress of annotator %d: %w", annotatorID, err)
	}
	return p, nil
}

// leftIn counts the prompts an annotator (two ? placeholders) has neither
// labelled in table nor skipped in queue.
func leftIn(table, queue string) string {
	return `(SELECT COUNT(*) FROM prompts p
		WHERE NOT EXISTS (SELECT 1 FROM ` + table + ` l WHERE l.prompt_id = p.id AND l.annotator_id = ?)
		AND NOT EXISTS (SELECT 1 FROM skips k WHERE k.annotator_id = ? AND k.queue = '` + queue + `' AND k.prompt_id = p.id))`
}
