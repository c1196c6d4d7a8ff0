package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// A migration moves the schema from version-1 to version. Its statements are
// written once for both databases; {{id}} and {{time}} stand for the
// dialect's auto-increment key and timestamp types, {{blob}} for its
// binary type.
type migration struct {
	version    int
	name       string
	statements []string
}

// migrations are applied in order, each once, in one transaction at Open.
// Never edit one that has shipped: add a new one.
var migrations = []migration{
	{1, "initial schema", []string{
		`CREATE TABLE users (
			id {{id}},
			username TEXT NOT NULL UNIQUE,
			name TEXT NOT NULL,
			password_hash TEXT NOT NULL,
			role TEXT NOT NULL CHECK (role IN ('admin', 'annotator')),
			created_at {{time}} NOT NULL
		)`,
		`CREATE TABLE sessions (
			token_hash TEXT PRIMARY KEY,
			user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
			csrf_token TEXT NOT NULL,
			created_at {{time}} NOT NULL,
			expires_at {{time}} NOT NULL
		)`,
		`CREATE INDEX sessions_user ON sessions(user_id)`,
		`CREATE TABLE import_batches (
			id {{id}},
			source TEXT NOT NULL,
			imported_by BIGINT REFERENCES users(id),
			added INTEGER NOT NULL,
			skipped INTEGER NOT NULL,
			created_at {{time}} NOT NULL
		)`,
		`CREATE TABLE prompts (
			id {{id}},
			conversation TEXT NOT NULL,
			conversation_sha256 TEXT NOT NULL UNIQUE,
			source TEXT NOT NULL,
			batch_id BIGINT REFERENCES import_batches(id),
			created_at {{time}} NOT NULL
		)`,
		`CREATE TABLE demonstrations (
			id {{id}},
			prompt_id BIGINT NOT NULL REFERENCES prompts(id),
			annotator_id BIGINT NOT NULL REFERENCES users(id),
			response TEXT NOT NULL,
			created_at {{time}} NOT NULL,
			updated_at {{time}} NOT NULL,
			UNIQUE (prompt_id, annotator_id)
		)`,
		`CREATE INDEX demonstrations_annotator ON demonstrations(annotator_id)`,
		`CREATE TABLE rankings (
			id {{id}},
			prompt_id BIGINT NOT NULL REFERENCES prompts(id),
			annotator_id BIGINT NOT NULL REFERENCES users(id),
			k INTEGER NOT NULL CHECK (k >= 2),
			created_at {{time}} NOT NULL,
			updated_at {{time}} NOT NULL,
			UNIQUE (prompt_id, annotator_id)
		)`,
		`CREATE INDEX rankings_annotator ON rankings(annotator_id)`,
		// One row per response, in the order the annotator saw them
		// (position); rank is its place in the ranking, 0 for the best.
		`CREATE TABLE ranking_responses (
			ranking_id BIGINT NOT NULL REFERENCES rankings(id) ON DELETE CASCADE,
			position INTEGER NOT NULL CHECK (position >= 0),
			rank INTEGER NOT NULL CHECK (rank >= 0),
			model TEXT NOT NULL,
			content TEXT NOT NULL,
			flags TEXT NOT NULL,
			PRIMARY KEY (ranking_id, position),
			UNIQUE (ranking_id, rank)
		)`,
	}},
	{2, "skipped prompts", []string{
		// An annotator's skip of a prompt in one queue: "demonstrate", or
		// "rank", which comparisons share. NextPrompt does not offer it to
		// them again in that queue.
		`CREATE TABLE skips (
			annotator_id BIGINT NOT NULL REFERENCES users(id),
			queue TEXT NOT NULL CHECK (queue IN ('demonstrate', 'rank')),
			prompt_id BIGINT NOT NULL REFERENCES prompts(id),
			reason TEXT NOT NULL,
			created_at {{time}} NOT NULL,
			PRIMARY KEY (annotator_id, queue, prompt_id)
		)`,
	}},
	{3, "disabled users", []string{
		`ALTER TABLE users ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE`,
	}},
	{4, "verdicts, ratings and guidelines", []string{
		// A comparison's verdict when neither answer wins: "tie" or
		// "both_bad" ('' for a ranking with a winner).
		`ALTER TABLE rankings ADD COLUMN verdict TEXT NOT NULL DEFAULT ''`,
		// An answer's overall quality on InstructGPT's 1-7 scale, 0 unrated.
		`ALTER TABLE ranking_responses ADD COLUMN rating INTEGER NOT NULL DEFAULT 0`,
		// The admin's instructions for each task, shown beside it.
		`CREATE TABLE guidelines (
			task TEXT PRIMARY KEY,
			text TEXT NOT NULL,
			updated_by BIGINT REFERENCES users(id),
			updated_at {{time}} NOT NULL
		)`,
	}},
	{5, "images", []string{
		// Prompts' images, each once: the key is the SHA-256 of the bytes,
		// kept as imported (store/images.go says why in the database).
		`CREATE TABLE images (
			sha256 TEXT PRIMARY KEY,
			format TEXT NOT NULL CHECK (format IN ('png', 'jpeg', 'gif', 'webp')),
			width INTEGER NOT NULL,
			height INTEGER NOT NULL,
			data {{blob}} NOT NULL,
			created_at {{time}} NOT NULL
		)`,
		// A prompt's image; its conversation_sha256 then covers the image's
		// key too (promptKey), so one question about two images is two
		// prompts.
		`ALTER TABLE prompts ADD COLUMN image_sha256 TEXT REFERENCES images(sha256)`,
	}},
	{6, "generated images and their comparisons", []string{
		// An image a served text-to-image model drew for a prompt (typed,
		// or an imported prompt's text: prompt_id), kept in images.
		`CREATE TABLE generations (
			id {{id}},
			prompt TEXT NOT NULL,
			prompt_id BIGINT REFERENCES prompts(id),
			model TEXT NOT NULL,
			seed BIGINT NOT NULL,
			image_sha256 TEXT NOT NULL REFERENCES images(sha256),
			created_by BIGINT NOT NULL REFERENCES users(id),
			created_at {{time}} NOT NULL
		)`,
		`CREATE INDEX generations_prompt ON generations(prompt)`,
		`CREATE INDEX generations_prompt_id ON generations(prompt_id)`,
		// An annotator's judgement of two images of one prompt, the older
		// generation first: the chosen one, or a verdict that chooses none.
		`CREATE TABLE image_comparisons (
			id {{id}},
			annotator_id BIGINT NOT NULL REFERENCES users(id),
			generation_a BIGINT NOT NULL REFERENCES generations(id),
			generation_b BIGINT NOT NULL REFERENCES generations(id),
			chosen BIGINT REFERENCES generations(id),
			verdict TEXT NOT NULL CHECK (verdict IN ('', 'tie', 'both_bad', 'skip')),
			created_at {{time}} NOT NULL,
			CHECK (generation_a < generation_b),
			CHECK ((verdict = '' AND chosen IN (generation_a, generation_b)) OR (verdict <> '' AND chosen IS NULL)),
			UNIQUE (annotator_id, generation_a, generation_b)
		)`,
		`CREATE INDEX image_comparisons_annotator ON image_comparisons(annotator_id)`,
	}},
	{7, "generated images' tokens", []string{
		// The image tokens a generation was decoded from, a JSON array
		// row by row (NULL: not known): preference tuning trains on what
		// the model drew, not on the PNG encoded again.
		`ALTER TABLE generations ADD COLUMN tokens TEXT`,
	}},
}

// sql returns the statement written for d.
func (d dialect) sql(stmt string) string {
	if d == dialectPostgres {
		return strings.NewReplacer(
			"{{id}}", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
			"{{time}}", "TIMESTAMPTZ",
			"{{blob}}", "BYTEA",
		).Replace(stmt)
	}
	return strings.NewReplacer(
		// AUTOINCREMENT: the id of a deleted label is never given again.
		"{{id}}", "INTEGER PRIMARY KEY AUTOINCREMENT",
		"{{time}}", "TIMESTAMP",
		"{{blob}}", "BLOB",
	).Replace(stmt)
}

// migrate applies the migrations the database lacks, all in one transaction,
// and records each in schema_migrations. Two processes opening the same new
// database at once are serialized (SQLite's write lock, PostgreSQL's advisory
// lock), so each migration runs exactly once.
func (s *Store) migrate(ctx context.Context, migrations []migration) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if s.dialect == dialectPostgres {
			// Any constant: it names golem's migration lock.
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(4651427337)`); err != nil {
				return fmt.Errorf("store: migrate: lock: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, s.dialect.sql(`CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY,
			name TEXT NOT NULL,
			applied_at {{time}} NOT NULL
		)`)); err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
		var current int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return fmt.Errorf("store: migrate: read version: %w", err)
		}
		latest := migrations[len(migrations)-1].version
		if current > latest {
			return fmt.Errorf("store: database schema is at version %d, newer than this golem knows (%d): upgrade golem", current, latest)
		}
		for _, m := range migrations {
			if m.version <= current {
				continue
			}
			for _, stmt := range m.statements {
				if _, err := tx.ExecContext(ctx, s.dialect.sql(stmt)); err != nil {
					return fmt.Errorf("store: migration %d (%s): %w", m.version, m.name, err)
				}
			}
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
				m.version, m.name, now()); err != nil {
				return fmt.Errorf("store: migration %d (%s): record: %w", m.version, m.name, err)
			}
		}
		return nil
	})
}

// SchemaVersion returns the version of the newest migration applied.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("store: schema version: %w", err)
	}
	return v, nil
}
