// Package store is the database of golem's human-feedback flywheel: the
// annotators and their sessions, the prompts to label, the demonstrations
// people write, the rankings of K model answers they make (a pairwise
// comparison is a ranking with K = 2), and the prompts each skipped. The reward, DPO and PPO stages read
// it directly, and ExportJSONL writes the TRL-style files they read.
//
// A store is a single SQLite file by default (a pure-Go driver, no cgo) or a
// PostgreSQL database for a team:
//
//	s, err := store.Open(ctx, "sqlite:labels.db")          // or "labels.db"
//	s, err := store.Open(ctx, "postgres://user:pw@host/db")
//
// Every method that returns without error has committed its write: SQLite
// runs in WAL mode with synchronous=FULL, PostgreSQL commits synchronously.
// Errors wrap ErrNotFound, ErrForbidden, ErrConflict, ErrInvalid or
// ErrUnauthorized, so callers test them with errors.Is.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// The errors a store's methods wrap. Test for them with errors.Is.
var (
	// ErrNotFound: the user, session, prompt or label does not exist, or
	// the queue has no prompt left for the annotator.
	ErrNotFound = errors.New("not found")
	// ErrForbidden: the label belongs to another annotator.
	ErrForbidden = errors.New("forbidden")
	// ErrConflict: the row already exists (a taken username, a second
	// label by the same annotator for the same prompt and task).
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the input breaks a rule (an empty response, a ranking
	// that is not a permutation, a malformed import line).
	ErrInvalid = errors.New("invalid")
	// ErrUnauthorized: the username or password is wrong.
	ErrUnauthorized = errors.New("wrong username or password")
)

// Store is a handle on one database. It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	dialect dialect
}

type dialect int

const (
	dialectSQLite dialect = iota
	dialectPostgres
)

func (d dialect) String() string {
	if d == dialectPostgres {
		return "postgres"
	}
	return "sqlite"
}

// sqliteParams configure every SQLite connection: WAL with synchronous=FULL
// makes every committed transaction durable (against a crash of the process
// and of the machine), foreign keys are enforced, writers wait for each other
// for up to 10 s instead of failing, and transactions take the write lock
// when they begin so that a read-then-write never deadlocks.
const sqliteParams = "_busy_timeout=10000&_foreign_keys=1&_journal_mode=WAL&_synchronous=FULL&_txlock=immediate&_time_format=sqlite"

// Open opens the store named by dsn and brings its schema up to date.
//
// dsn is "postgres://..." or "postgresql://..." for PostgreSQL (any
// parameter libpq accepts, such as sslmode or search_path), or for SQLite
// "sqlite:PATH" or a plain file path; the file is created when missing.
// Open is for the store's owner, golem serve; readers use OpenExisting.
func Open(ctx context.Context, dsn string) (*Store, error) {
	return openStore(ctx, dsn, false, migrations)
}

// OpenExisting opens a store that must already exist, for reading it: a
// missing SQLite file is an error naming it (it is not created), and so is
// a database without golem's tables (none are created). An existing
// store whose schema is older than this golem's is brought up to date, as
// Open does.
func OpenExisting(ctx context.Context, dsn string) (*Store, error) {
	return openStore(ctx, dsn, true, migrations)
}

// openStore opens dsn and applies the migrations of list not yet applied
// (Open's: all of them; tests pass a prefix to make an older store).
func openStore(ctx context.Context, dsn string, existing bool, list []migration) (*Store, error) {
	s := &Store{}
	var err error
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		s.dialect = dialectPostgres
		s.db, err = sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("store: open postgres: %w", err)
		}
	default:
		path := strings.TrimPrefix(dsn, "sqlite:")
		if strings.HasPrefix(path, "//") { // sqlite:///abs/path
			path = path[2:]
		}
		switch {
		case path == "":
			return nil, invalidf("store: empty database path")
		case path == ":memory:" || strings.HasPrefix(path, "file:"):
			return nil, invalidf("store: %q: give a file path (in-memory and URI databases are not supported)", path)
		case strings.Contains(path, "?"):
			return nil, invalidf("store: %q: a database path may not contain '?'", path)
		}
		if existing {
			if err := sqliteExisting(ctx, dsn, path); err != nil {
				return nil, err
			}
		}
		s.dialect = dialectSQLite
		if err := createPrivate(path); err != nil {
			return nil, err
		}
		s.db, err = sql.Open("sqlite", path+"?"+sqliteParams)
		if err != nil {
			return nil, fmt.Errorf("store: open %s: %w", path, err)
		}
	}
	if err := s.ping(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("store: connect to %s: %w", redact(dsn), err)
	}
	if existing && s.dialect == dialectPostgres {
		if err := hasSchema(ctx, s.db, s.dialect, dsn); err != nil {
			s.db.Close()
			return nil, err
		}
	}
	if err := s.migrate(ctx, list); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

// sqliteExisting checks that path is a SQLite database with golem's
// tables, on a read-only connection of its own: it creates no file and
// changes none (the store's own connections switch a database to WAL).
func sqliteExisting(ctx context.Context, dsn, path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return notFoundf("store: %s: no such database (golem serve creates one; check the path)", dsn)
	case err != nil:
		return fmt.Errorf("store: %s: %w", dsn, err)
	case !fi.Mode().IsRegular():
		return invalidf("store: %s: %s is not a file", dsn, path)
	}
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro")
	if err != nil {
		return fmt.Errorf("store: %s: %w", dsn, err)
	}
	defer db.Close()
	return hasSchema(ctx, db, dialectSQLite, dsn)
}

// hasSchema checks that the database has golem's tables (schema_migrations
// is made with the first migration).
func hasSchema(ctx context.Context, db *sql.DB, d dialect, dsn string) error {
	query := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`
	check := "path"
	if d == dialectPostgres {
		// The table as the connection's search_path finds it.
		query = `SELECT COUNT(*) FROM (SELECT to_regclass('schema_migrations') AS t) r WHERE t IS NOT NULL`
		check = "database name and search_path"
	}
	var n int
	if err := db.QueryRowContext(ctx, query).Scan(&n); err != nil {
		return fmt.Errorf("store: %s: %w", redact(dsn), err)
	}
	if n == 0 {
		return notFoundf("store: %s: not a golem store, it has no golem tables (golem serve creates them; check the %s)", redact(dsn), check)
	}
	return nil
}

// redact hides the password of a PostgreSQL URL.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	return dsn
}

// ping makes the first connection. Switching a new SQLite file to WAL needs
// the file to itself, and SQLite reports a concurrent switch as busy without
// waiting, so that is retried for up to 10 s.
func (s *Store) ping(ctx context.Context) error {
	deadline := time.Now().Add(10 * time.Second)
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		err := s.db.PingContext(ctx)
		if err == nil || s.dialect != dialectSQLite || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// isBusy reports whether err is SQLite's "database is locked".
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Dialect reports "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect.String() }

// q rewrites a query written with ? placeholders for the store's dialect.
func (s *Store) q(query string) string {
	if s.dialect != dialectPostgres || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// queryer is what *sql.DB and *sql.Tx have in common.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// inTx runs fn in a transaction and commits it when fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// isUnique reports whether err is a violated unique or primary-key constraint.
func isUnique(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// isForeignKey reports whether err is a violated foreign-key constraint.
func isForeignKey(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23503"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}

// now is the time stamped on new rows: UTC, to the microsecond, the
// precision both databases keep.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// kindError is a message that matches one of the package's errors (kind)
// without repeating its text.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }

// invalidf formats an error about bad input; it matches ErrInvalid.
func invalidf(format string, args ...any) error {
	return &kindError{fmt.Sprintf(format, args...), ErrInvalid}
}

// notFoundf formats an error that matches ErrNotFound.
func notFoundf(format string, args ...any) error {
	return &kindError{fmt.Sprintf(format, args...), ErrNotFound}
}
