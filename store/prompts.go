package store

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golem-ml/golem/tokenizer"
)

// Prompt is a conversation waiting for the assistant's next turn: one or
// more messages, the last from the user.
type Prompt struct {
	ID       int64
	Messages []tokenizer.Message
	Source   string // where it came from: a file name, a data set
	BatchID  int64  // the import that added it
	// Image is the key (hex SHA-256) of the image the prompt shows, ""
	// for none; Store.Image reads it. The text holds ImageToken where it
	// goes, or the image comes before the first user text.
	Image     string
	CreatedAt time.Time
}

// Batch is one ImportPrompts call.
type Batch struct {
	ID         int64
	Source     string
	ImportedBy int64 // 0 when not recorded
	Added      int   // new prompts
	Skipped    int   // prompts already in the store (or twice in the input)
	Images     int   // images new to the store (each is stored once)
	CreatedAt  time.Time
}

// ImportOptions describe an import.
type ImportOptions struct {
	// Name is the input's name in error messages, such as the file name;
	// "input" when empty.
	Name string
	// Source is recorded with every prompt whose line has no "source";
	// Name when empty.
	Source string
	// By is the id of the user importing; 0 for none.
	By int64
	// ReadImage reads an image a prompt names, by its path as written
	// (ImageFolder(dir) reads it from a folder); nil refuses prompts with
	// images.
	ReadImage func(path string) ([]byte, error)
}

// Limits on imported prompts.
const (
	maxLineBytes   = 4 << 20
	maxLLaVABytes  = 256 << 20
	maxMessages    = 256
	maxSourceBytes = 1024
)

// promptLine is one line of an import: a TRL-style prompt, either
// {"prompt": "text"}, {"prompt": [messages]} or {"messages": [messages]},
// with an optional "source" and "images" (one path, for now).
type promptLine struct {
	Prompt   json.RawMessage     `json:"prompt"`
	Messages []tokenizer.Message `json:"messages"`
	Source   *string             `json:"source"`
	Images   []string            `json:"images"`
}

// parsedPrompt is one prompt of an import, before it is stored.
type parsedPrompt struct {
	messages []tokenizer.Message
	source   string
	image    string // its path as written, "" for none
	key      string // the image's SHA-256
	line     int
	where    string // "line N" (and the record, in LLaVA JSON)
}

// ImportPrompts reads prompts from r and adds them all in one transaction:
// a bad line adds nothing and the error names the line. r is JSONL, one
// prompt a line: {"prompt": "text"} (one user message), {"prompt":
// [messages]} or {"messages": [messages]}, where messages are {"role",
// "content"} objects (roles system, user, assistant; system only first;
// the last from the user), with an optional "source" string and an optional
// "images": [path] (one image; ImportOptions.ReadImage reads it). Blank
// lines are skipped. Or r is LLaVA's conversation JSON (it starts with
// '['): each record's first human turn is a prompt, with its "image" when
// it has one. Every image is checked (PNG, JPEG, GIF or WebP, at most
// MaxImagePixels by its header, decodable) and stored once, by the SHA-256
// of its bytes. A prompt already in the store (the same messages and
// image) is skipped and counted in Batch.Skipped, so importing a file
// twice adds nothing the second time.
func (s *Store) ImportPrompts(ctx context.Context, r io.Reader, opts ImportOptions) (Batch, error) {
	name := opts.Name
	if name == "" {
		name = "input"
	}
	b := Batch{Source: opts.Source, ImportedBy: opts.By, CreatedAt: now()}
	if b.Source == "" {
		b.Source = name
	}
	if err := validSource(b.Source); err != nil {
		return Batch{}, fmt.Errorf("store: %s: %w", name, err)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	var prompts []parsedPrompt
	var err error
	if firstByte(br) == '[' {
		prompts, err = readLLaVA(br)
	} else {
		prompts, err = readPromptLines(br)
	}
	if err != nil {
		return Batch{}, fmt.Errorf("store: %s %w", name, err)
	}
	if len(prompts) == 0 {
		return Batch{}, invalidf("store: %s: no prompts", name)
	}
	images := newImageReader(opts.ReadImage)
	for i, p := range prompts {
		if p.source == "" {
			prompts[i].source = b.Source
		}
		if p.image == "" {
			continue
		}
		if err := checkImageToken(p.messages); err != nil {
			return Batch{}, fmt.Errorf("store: %s %s: %w", name, p.where, err)
		}
		if prompts[i].key, err = images.get(p.image); err != nil {
			return Batch{}, fmt.Errorf("store: %s %s: %w", name, p.where, err)
		}
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var by any
		if opts.By != 0 {
			by = opts.By
		}
		err := tx.QueryRowContext(ctx, s.q(`INSERT INTO import_batches (source, imported_by, added, skipped, created_at)
			VALUES (?, ?, 0, 0, ?) RETURNING id`), b.Source, by, b.CreatedAt).Scan(&b.ID)
		if isForeignKey(err) {
			return fmt.Errorf("store: %s: importing user %d: %w", name, opts.By, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: %s: %w", name, err)
		}
		if b.Images, err = images.insert(ctx, s, tx, name); err != nil {
			return err
		}
		// Many rows per INSERT: one round trip per 100 prompts.
		const chunk = 100
		for start := 0; start < len(prompts); start += chunk {
			rows := prompts[start:min(start+chunk, len(prompts))]
			// image_sha256 only where a prompt has an image: a text-only
			// import writes the columns it always wrote.
			withImages := slices.ContainsFunc(rows, func(p parsedPrompt) bool { return p.key != "" })
			cols, marks := "", "(?, ?, ?, ?, ?)"
			if withImages {
				cols, marks = ", image_sha256", "(?, ?, ?, ?, ?, ?)"
			}
			var q strings.Builder
			q.WriteString(`INSERT INTO prompts (conversation, conversation_sha256, source, batch_id, created_at` + cols + `) VALUES `)
			args := make([]any, 0, 6*len(rows))
			for i, p := range rows {
				if i > 0 {
					q.WriteString(", ")
				}
				q.WriteString(marks)
				conv := encodeConversation(p.messages)
				args = append(args, conv, promptKey(conv, p.key), p.source, b.ID, b.CreatedAt)
				if withImages {
					var image any
					if p.key != "" {
						image = p.key
					}
					args = append(args, image)
				}
			}
			q.WriteString(` ON CONFLICT (conversation_sha256) DO NOTHING`)
			res, err := tx.ExecContext(ctx, s.q(q.String()), args...)
			if err != nil {
				return fmt.Errorf("store: %s lines %d-%d: %w", name, rows[0].line, rows[len(rows)-1].line, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("store: %s: %w", name, err)
			}
			b.Added += int(n)
			b.Skipped += len(rows) - int(n)
		}
		_, err = tx.ExecContext(ctx, s.q(`UPDATE import_batches SET added = ?, skipped = ? WHERE id = ?`), b.Added, b.Skipped, b.ID)
		if err != nil {
			return fmt.Errorf("store: %s: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return Batch{}, err
	}
	return b, nil
}

// firstByte returns the first byte of br that is not white space or a
// leading byte-order mark (0 for none in its buffer), leaving br unread.
func firstByte(br *bufio.Reader) byte {
	if b, _ := br.Peek(3); bytes.Equal(b, []byte("\ufeff")) {
		br.Discard(3) // readPromptLines and readLLaVA drop it anyway
	}
	for i := 0; i < br.Size(); i++ {
		b, _ := br.Peek(i + 1)
		if len(b) <= i {
			return 0
		}
		if c := b[i]; c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return c
		}
	}
	return 0
}

// readPromptLines reads an import's JSONL; errors start with "line N: ".
func readPromptLines(br *bufio.Reader) ([]parsedPrompt, error) {
	var prompts []parsedPrompt
	for lineNo := 1; ; lineNo++ {
		line, err := readLine(br)
		if err == io.EOF && line == nil {
			break
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("line %d: %w", lineNo, err)
		}
		if lineNo == 1 {
			line = bytes.TrimPrefix(line, []byte("\ufeff")) // a byte-order mark
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		msgs, source, image, perr := parsePromptLine(line)
		if perr != nil {
			return nil, fmt.Errorf("line %d: %w", lineNo, perr)
		}
		prompts = append(prompts, parsedPrompt{messages: msgs, source: source, image: image, line: lineNo, where: fmt.Sprintf("line %d", lineNo)})
	}
	return prompts, nil
}

// readLLaVA reads an import's LLaVA conversation JSON.
func readLLaVA(br *bufio.Reader) ([]parsedPrompt, error) {
	b, err := io.ReadAll(io.LimitReader(br, maxLLaVABytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxLLaVABytes {
		return nil, invalidf("LLaVA JSON larger than %d bytes", maxLLaVABytes)
	}
	b = bytes.TrimPrefix(b, []byte("\ufeff"))
	if !utf8.Valid(b) {
		return nil, invalidf("not valid UTF-8")
	}
	return parseLLaVA(b)
}

// readLine returns the next line without its newline, or an error for a line
// longer than maxLineBytes.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxLineBytes {
			return nil, invalidf("line longer than %d bytes", maxLineBytes)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF && len(line) == 0 {
			return nil, io.EOF
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		return bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r")), nil
	}
}

// parsePromptLine decodes and checks one import line: its messages,
// source and image path ("" for none).
func parsePromptLine(line []byte) ([]tokenizer.Message, string, string, error) {
	if !utf8.Valid(line) {
		return nil, "", "", invalidf("not valid UTF-8")
	}
	var pl promptLine
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pl); err != nil {
		return nil, "", "", invalidf("%s", jsonError(err))
	}
	if dec.More() {
		return nil, "", "", invalidf("more than one JSON value on the line")
	}
	source := ""
	if pl.Source != nil {
		source = *pl.Source
		if err := validSource(source); err != nil {
			return nil, "", "", err
		}
	}
	hasPrompt := len(pl.Prompt) > 0 && string(pl.Prompt) != "null"
	var msgs []tokenizer.Message
	switch {
	case hasPrompt && pl.Messages != nil:
		return nil, "", "", invalidf(`both "prompt" and "messages"; give one`)
	case hasPrompt && pl.Prompt[0] == '"':
		var text string
		if err := json.Unmarshal(pl.Prompt, &text); err != nil {
			return nil, "", "", invalidf(`"prompt": %s`, jsonError(err))
		}
		msgs = []tokenizer.Message{{Role: "user", Content: text}}
	case hasPrompt && pl.Prompt[0] == '[':
		dec := json.NewDecoder(bytes.NewReader(pl.Prompt))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&msgs); err != nil {
			return nil, "", "", invalidf(`"prompt": %s`, jsonError(err))
		}
	case hasPrompt:
		return nil, "", "", invalidf(`"prompt" must be a string or a list of messages`)
	case pl.Messages != nil:
		msgs = pl.Messages
	default:
		return nil, "", "", invalidf(`"prompt" or "messages" missing`)
	}
	if err := validConversation(msgs); err != nil {
		return nil, "", "", err
	}
	switch {
	case len(pl.Images) > 1:
		return nil, "", "", invalidf(`"images" has %d paths; a prompt has one image for now`, len(pl.Images))
	case len(pl.Images) == 1 && strings.TrimSpace(pl.Images[0]) == "":
		return nil, "", "", invalidf(`"images": an empty path`)
	case len(pl.Images) == 1:
		return msgs, source, pl.Images[0], nil
	}
	return msgs, source, "", nil
}

// validConversation checks a prompt's messages.
func validConversation(msgs []tokenizer.Message) error {
	if len(msgs) == 0 {
		return invalidf("no messages")
	}
	if len(msgs) > maxMessages {
		return invalidf("%d messages, more than %d", len(msgs), maxMessages)
	}
	for i, m := range msgs {
		switch m.Role {
		case "system":
			if i != 0 {
				return invalidf(`message %d: "system" is allowed only as the first message`, i+1)
			}
		case "user", "assistant":
		case "":
			return invalidf(`message %d: "role" missing`, i+1)
		default:
			return invalidf(`message %d: role %q is not "system", "user" or "assistant"`, i+1, m.Role)
		}
		if strings.TrimSpace(m.Content) == "" {
			return invalidf(`message %d: "content" empty`, i+1)
		}
		if !utf8.ValidString(m.Content) {
			return invalidf(`message %d: "content" is not valid UTF-8`, i+1)
		}
		if strings.IndexByte(m.Content, 0) >= 0 {
			return invalidf(`message %d: "content" contains a NUL character (U+0000), which the database cannot store`, i+1)
		}
	}
	if last := msgs[len(msgs)-1].Role; last != "user" {
		return invalidf(`the last message is from %q; a prompt ends with the user's turn`, last)
	}
	return nil
}

func validSource(source string) error {
	if len(source) > maxSourceBytes || !utf8.ValidString(source) || strings.IndexByte(source, 0) >= 0 {
		return invalidf(`"source" must be valid UTF-8 without NUL characters, of at most %d bytes`, maxSourceBytes)
	}
	return nil
}

// jsonError rewords encoding/json's errors for people.
func jsonError(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te) && te.Field != "":
		return fmt.Sprintf("field %q: got a JSON %s, want %s", te.Field, te.Value, jsonKind(te.Type.Kind().String()))
	case errors.As(err, &te):
		return fmt.Sprintf("got a JSON %s, want %s", te.Value, jsonKind(te.Type.Kind().String()))
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: unexpected end of line"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "a list"
	case "string":
		return "a string"
	}
	return goKind
}

// encodeConversation returns the stored JSON of a conversation.
func encodeConversation(msgs []tokenizer.Message) string {
	b, _ := json.Marshal(msgs)
	return string(b)
}

func decodeConversation(promptID int64, conv string) ([]tokenizer.Message, error) {
	var msgs []tokenizer.Message
	if err := json.Unmarshal([]byte(conv), &msgs); err != nil {
		return nil, fmt.Errorf("store: prompt %d: stored conversation: %w", promptID, err)
	}
	return msgs, nil
}

const promptColumns = `p.id, p.conversation, p.source, p.batch_id, p.created_at, p.image_sha256`

// scanPrompt scans promptColumns (and extra) from row.
func scanPrompt(row interface{ Scan(...any) error }, p *Prompt, extra ...any) error {
	var conv string
	var batch sql.NullInt64
	var image sql.NullString
	if err := row.Scan(append([]any{&p.ID, &conv, &p.Source, &batch, &p.CreatedAt, &image}, extra...)...); err != nil {
		return err
	}
	p.BatchID, p.Image = batch.Int64, image.String
	p.CreatedAt = p.CreatedAt.UTC()
	var err error
	p.Messages, err = decodeConversation(p.ID, conv)
	return err
}

// Prompt returns the prompt with the given id.
func (s *Store) Prompt(ctx context.Context, id int64) (Prompt, error) {
	var p Prompt
	err := scanPrompt(s.db.QueryRowContext(ctx, s.q(`SELECT `+promptColumns+` FROM prompts p WHERE p.id = ?`), id), &p)
	if errors.Is(err, sql.ErrNoRows) {
		return Prompt{}, fmt.Errorf("store: prompt %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Prompt{}, fmt.Errorf("store: prompt %d: %w", id, err)
	}
	return p, nil
}

// CountPrompts returns the number of prompts in the store.
func (s *Store) CountPrompts(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM prompts`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count prompts: %w", err)
	}
	return n, nil
}

// Task is a kind of labelling work.
type Task string

// The tasks. TaskRank and TaskCompare share one queue: an annotator makes at
// most one ranking per prompt, and a comparison is a ranking of two.
const (
	TaskDemonstrate Task = "demonstrate" // write the assistant's answer
	TaskRank        Task = "rank"        // order K model answers best to worst
	TaskCompare     Task = "compare"     // pick the better of two answers
)

// queue returns the table of task's labels and the name of its queue.
func (t Task) queue() (table, queue string, err error) {
	switch t {
	case TaskDemonstrate:
		return "demonstrations", "demonstrate", nil
	case TaskRank, TaskCompare:
		return "rankings", "rank", nil
	}
	return "", "", invalidf("store: task %q is not %q, %q or %q", t, TaskDemonstrate, TaskRank, TaskCompare)
}

// NextPrompt returns the next prompt in annotatorID's queue for task: one the
// annotator has neither labelled nor skipped for it, preferring the prompts
// with the fewest labels of that kind from anyone, then the oldest. An empty
// queue is ErrNotFound.
func (s *Store) NextPrompt(ctx context.Context, annotatorID int64, task Task) (Prompt, error) {
	table, queue, err := task.queue()
	if err != nil {
		return Prompt{}, err
	}
	const notSkipped = ` AND NOT EXISTS (SELECT 1 FROM skips k WHERE k.annotator_id = ? AND k.queue = ? AND k.prompt_id = p.id)`
	// The common case first: the oldest prompt nobody has labelled yet.
	var p Prompt
	err = scanPrompt(s.db.QueryRowContext(ctx, s.q(`SELECT `+promptColumns+` FROM prompts p
		WHERE NOT EXISTS (SELECT 1 FROM `+table+` l WHERE l.prompt_id = p.id)`+notSkipped+`
		ORDER BY p.id LIMIT 1`), annotatorID, queue), &p)
	if err == nil {
		return p, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return Prompt{}, fmt.Errorf("store: next prompt: %w", err)
	}
	err = scanPrompt(s.db.QueryRowContext(ctx, s.q(`SELECT `+promptColumns+` FROM prompts p
		LEFT JOIN (SELECT prompt_id, COUNT(*) AS n FROM `+table+` GROUP BY prompt_id) c ON c.prompt_id = p.id
		WHERE NOT EXISTS (SELECT 1 FROM `+table+` l WHERE l.prompt_id = p.id AND l.annotator_id = ?)`+notSkipped+`
		ORDER BY COALESCE(c.n, 0), p.id
		LIMIT 1`), annotatorID, annotatorID, queue), &p)
	if errors.Is(err, sql.ErrNoRows) {
		return Prompt{}, fmt.Errorf("store: no prompt left to %s for annotator %d: %w", task, annotatorID, ErrNotFound)
	}
	if err != nil {
		return Prompt{}, fmt.Errorf("store: next prompt: %w", err)
	}
	return p, nil
}

// maxReasonBytes bounds a skip's reason.
const maxReasonBytes = 1024

// SkipPrompt records that annotatorID skips promptID for task (a
// comparison's skip is a ranking's: they share a queue), so that
// NextPrompt no longer offers it to them there; others still get it. reason
// says why, for the admin ("" for none). Skipping twice is not an error.
func (s *Store) SkipPrompt(ctx context.Context, annotatorID, promptID int64, task Task, reason string) error {
	_, queue, err := task.queue()
	if err != nil {
		return err
	}
	if len(reason) > maxReasonBytes || !utf8.ValidString(reason) || strings.IndexByte(reason, 0) >= 0 {
		return invalidf("store: a skip's reason must be valid UTF-8 without NUL characters, of at most %d bytes", maxReasonBytes)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.mustExist(ctx, tx, promptID, annotatorID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO skips (annotator_id, queue, prompt_id, reason, created_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (annotator_id, queue, prompt_id) DO NOTHING`), annotatorID, queue, promptID, reason, now())
		if err != nil {
			return fmt.Errorf("store: skip prompt %d: %w", promptID, err)
		}
		return nil
	})
}
