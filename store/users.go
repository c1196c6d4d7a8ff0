package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Role is what a user may do: an admin imports prompts, manages users and
// exports data; an annotator labels.
type Role string

// The roles.
const (
	RoleAdmin     Role = "admin"
	RoleAnnotator Role = "annotator"
)

// User is an account. The password hash never leaves the store.
type User struct {
	ID        int64
	Username  string // lower case, unique
	Name      string // shown in the app
	Role      Role
	CreatedAt time.Time
	Disabled  bool // may not log in; has no session
}

// NewUser is what CreateUser needs.
type NewUser struct {
	Username string // 1-64 letters, digits, '.', '_' or '-'; case-insensitive
	Name     string // display name; the username when empty
	Password string // 8-1024 bytes, not a weak one (see WeakPassword)
	Role     Role   // RoleAnnotator when empty
}

// Limits on user input.
const (
	minPassword = 8
	maxPassword = 1024
	maxUsername = 64
	maxName     = 200
)

// CreateUser adds an account. A taken username is ErrConflict.
func (s *Store) CreateUser(ctx context.Context, nu NewUser) (User, error) {
	u := User{Username: strings.ToLower(nu.Username), Name: strings.TrimSpace(nu.Name), Role: nu.Role}
	if err := validUsername(u.Username); err != nil {
		return User{}, err
	}
	if u.Name == "" {
		u.Name = u.Username
	}
	if !utf8.ValidString(u.Name) || len(u.Name) > maxName {
		return User{}, invalidf("store: user %q: name must be valid UTF-8 of at most %d bytes", u.Username, maxName)
	}
	if u.Role == "" {
		u.Role = RoleAnnotator
	}
	if u.Role != RoleAdmin && u.Role != RoleAnnotator {
		return User{}, invalidf("store: user %q: role %q is not %q or %q", u.Username, u.Role, RoleAdmin, RoleAnnotator)
	}
	if err := WeakPassword(nu.Password); err != nil {
		return User{}, invalidf("store: user %q: %v", u.Username, err)
	}
	hash, err := hashPassword(ctx, nu.Password)
	if err != nil {
		return User{}, fmt.Errorf("store: user %q: %w", u.Username, err)
	}
	u.CreatedAt = now()
	err = s.db.QueryRowContext(ctx, s.q(`INSERT INTO users (username, name, password_hash, role, created_at)
		VALUES (?, ?, ?, ?, ?) RETURNING id`), u.Username, u.Name, hash, string(u.Role), u.CreatedAt).Scan(&u.ID)
	if isUnique(err) {
		return User{}, fmt.Errorf("store: user %q: %w: username taken", u.Username, ErrConflict)
	}
	if err != nil {
		return User{}, fmt.Errorf("store: create user %q: %w", u.Username, err)
	}
	return u, nil
}

func validUsername(name string) error {
	if name == "" || len(name) > maxUsername {
		return invalidf("store: username must have 1 to %d characters", maxUsername)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return invalidf("store: username %q: only letters, digits, '.', '_' and '-' are allowed", name)
		}
	}
	return nil
}

const userColumns = `id, username, name, role, created_at, disabled`

func scanUser(row interface{ Scan(...any) error }, u *User, extra ...any) error {
	var role string
	if err := row.Scan(append([]any{&u.ID, &u.Username, &u.Name, &role, &u.CreatedAt, &u.Disabled}, extra...)...); err != nil {
		return err
	}
	u.Role = Role(role)
	u.CreatedAt = u.CreatedAt.UTC()
	return nil
}

// User returns the user with the given id.
func (s *Store) User(ctx context.Context, id int64) (User, error) {
	var u User
	err := scanUser(s.db.QueryRowContext(ctx, s.q(`SELECT `+userColumns+` FROM users WHERE id = ?`), id), &u)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("store: user %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("store: user %d: %w", id, err)
	}
	return u, nil
}

// UserByName returns the user with the given username (in any case).
func (s *Store) UserByName(ctx context.Context, username string) (User, error) {
	var u User
	err := scanUser(s.db.QueryRowContext(ctx, s.q(`SELECT `+userColumns+` FROM users WHERE username = ?`), strings.ToLower(username)), &u)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("store: user %q: %w", username, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("store: user %q: %w", username, err)
	}
	return u, nil
}

// Users lists every user, oldest first.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: users: %w", err)
	}
	defer rows.Close()
	var users []User
	for rows.Next() {
		var u User
		if err := scanUser(rows, &u); err != nil {
			return nil, fmt.Errorf("store: users: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: users: %w", err)
	}
	return users, nil
}

// SetPassword replaces a user's password and ends all of the user's
// sessions. A weak password (WeakPassword) is ErrInvalid.
func (s *Store) SetPassword(ctx context.Context, userID int64, password string) error {
	if err := WeakPassword(password); err != nil {
		return invalidf("store: user %d: %v", userID, err)
	}
	hash, err := hashPassword(ctx, password)
	if err != nil {
		return fmt.Errorf("store: user %d: %w", userID, err)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE users SET password_hash = ? WHERE id = ?`), hash, userID)
		if err != nil {
			return fmt.Errorf("store: set password of user %d: %w", userID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("store: user %d: %w", userID, ErrNotFound)
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE user_id = ?`), userID); err != nil {
			return fmt.Errorf("store: set password of user %d: end sessions: %w", userID, err)
		}
		return nil
	})
}

// SetDisabled disables a user (who may no longer log in, and whose
// sessions end) or enables it again. Disabling the last enabled admin is
// ErrConflict: nobody could manage the users any more.
func (s *Store) SetDisabled(ctx context.Context, userID int64, disabled bool) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var role string
		err := tx.QueryRowContext(ctx, s.q(`SELECT role FROM users WHERE id = ?`), userID).Scan(&role)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: user %d: %w", userID, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: user %d: %w", userID, err)
		}
		if disabled && Role(role) == RoleAdmin {
			var others int
			if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM users WHERE role = ? AND NOT disabled AND id <> ?`),
				string(RoleAdmin), userID).Scan(&others); err != nil {
				return fmt.Errorf("store: user %d: %w", userID, err)
			}
			if others == 0 {
				return fmt.Errorf("store: user %d is the last enabled admin: %w: enable or create another admin first", userID, ErrConflict)
			}
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE users SET disabled = ? WHERE id = ?`), disabled, userID); err != nil {
			return fmt.Errorf("store: disable user %d: %w", userID, err)
		}
		if disabled {
			if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE user_id = ?`), userID); err != nil {
				return fmt.Errorf("store: disable user %d: end sessions: %w", userID, err)
			}
		}
		return nil
	})
}

// ErrDisabled: the username and password are right, but the account is
// disabled. It matches ErrForbidden.
var ErrDisabled = fmt.Errorf("account disabled: %w", ErrForbidden)

// Authenticate returns the user whose username and password these are, or
// ErrUnauthorized (ErrDisabled for a disabled account's right password).
// It takes the same time whether or not the user exists.
func (s *Store) Authenticate(ctx context.Context, username, password string) (User, error) {
	var u User
	var hash string
	err := scanUser(s.db.QueryRowContext(ctx, s.q(`SELECT `+userColumns+`, password_hash FROM users WHERE username = ?`),
		strings.ToLower(username)), &u, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		checkPassword(ctx, dummyHash(), password)
		return User{}, fmt.Errorf("store: %w", ErrUnauthorized)
	}
	if err != nil {
		return User{}, fmt.Errorf("store: authenticate: %w", err)
	}
	ok, err := checkPassword(ctx, hash, password)
	if err != nil {
		return User{}, fmt.Errorf("store: user %d: %w", u.ID, err)
	}
	if !ok {
		return User{}, fmt.Errorf("store: %w", ErrUnauthorized)
	}
	if u.Disabled {
		return User{}, fmt.Errorf("store: user %q: %w", u.Username, ErrDisabled)
	}
	return u, nil
}

// argonSlots bounds the Argon2 computations running at once: each takes
// argonMemory (19 MiB), so 16 concurrent logins took 300 MB.
var argonSlots = make(chan struct{}, max(1, min(4, runtime.GOMAXPROCS(0))))

// argon2Key is argon2.IDKey in one of the argonSlots.
func argon2Key(ctx context.Context, password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) ([]byte, error) {
	select {
	case argonSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-argonSlots }()
	return argon2.IDKey(password, salt, time, memory, threads, keyLen), nil
}

// Argon2id parameters: the OWASP recommendation (19 MiB, 2 passes, 1 lane).
const (
	owaspTime    = 2
	owaspMemory  = 19 * 1024 // KiB
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// argonTime and argonMemory are the cost of new hashes: OWASP's, which
// the short tests of store and serve lower (CheapPasswordsForTests; a hash
// records its cost, so any verifies).
var argonTime, argonMemory uint32 = owaspTime, owaspMemory

// CheapPasswordsForTests makes new password hashes Argon2id at 64 KiB and 1
// pass instead of OWASP's 19 MiB and 2, about 200 times cheaper, until
// the returned func restores OWASP's cost. It is for tests' short tiers
// only (the TestMain of store and serve call it under -short: OWASP's cost
// was two thirds of store's CPU and a third of serve's): hashes made
// under it are cheap to guess. A hash records its cost, so hashes of
// either cost verify under the other. Not safe to call while passwords
// are being hashed.
//
// Outside a test binary (testing.Testing is false) it panics and leaves
// the cost as it is: production can never weaken hashing, and a program
// that calls it fails where it calls it, at its start, instead of
// running on with a call that silently did nothing.
func CheapPasswordsForTests() (restore func()) { return cheapPasswords(testing.Testing()) }

// cheapPasswords is CheapPasswordsForTests, inTest telling whether the
// program is a test binary.
func cheapPasswords(inTest bool) (restore func()) {
	if !inTest {
		panic("store: CheapPasswordsForTests called outside a test binary; password hashes keep OWASP's cost")
	}
	t, m := argonTime, argonMemory
	argonTime, argonMemory = 1, 64
	return func() { argonTime, argonMemory = t, m }
}

// dummyHash is checked against when a username is unknown, so that a wrong
// username takes as long as a wrong password.
var dummyHash = sync.OnceValue(func() string {
	h, _ := hashPassword(context.Background(), "not a password of anyone")
	return h
})

// hashPassword returns password's argon2id hash in the PHC string format
// $argon2id$v=19$m=19456,t=2,p=1$SALT$HASH.
func hashPassword(ctx context.Context, password string) (string, error) {
	if len(password) < minPassword || len(password) > maxPassword {
		return "", invalidf("password must have %d to %d bytes", minPassword, maxPassword)
	}
	salt := make([]byte, argonSaltLen)
	rand.Read(salt)
	key, err := argon2Key(ctx, []byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	if err != nil {
		return "", err
	}
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// checkPassword reports whether password matches the PHC-format hash.
func checkPassword(ctx context.Context, hash, password string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errors.New("password hash is not argon2id")
	}
	var version int
	var memory, time uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, fmt.Errorf("password hash: unsupported argon2 version %q", parts[2])
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &memory, &time, &threads); err != nil || memory == 0 || time == 0 || threads == 0 {
		return false, fmt.Errorf("password hash: bad parameters %q", parts[3])
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false, errors.New("password hash: bad encoding")
	}
	if len(password) > maxPassword {
		return false, nil
	}
	got, err := argon2Key(ctx, []byte(password), salt, time, memory, threads, uint32(len(want)))
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// Session is a logged-in user. Token is the secret the client holds (in a
// cookie); the store keeps only its SHA-256. CSRFToken is the value forms
// must echo back.
type Session struct {
	Token     string
	CSRFToken string
	User      User
	CreatedAt time.Time
	ExpiresAt time.Time
}

// CreateSession logs userID in for ttl and returns the new session with its
// token, which is shown only here.
func (s *Store) CreateSession(ctx context.Context, userID int64, ttl time.Duration) (Session, error) {
	if ttl <= 0 {
		return Session{}, invalidf("store: session: ttl %v is not positive", ttl)
	}
	u, err := s.User(ctx, userID)
	if err != nil {
		return Session{}, err
	}
	sess := Session{Token: randomToken(), CSRFToken: randomToken(), User: u, CreatedAt: now()}
	sess.ExpiresAt = sess.CreatedAt.Add(ttl)
	_, err = s.db.ExecContext(ctx, s.q(`INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?)`), tokenHash(sess.Token), userID, sess.CSRFToken, sess.CreatedAt, sess.ExpiresAt)
	if isForeignKey(err) {
		return Session{}, fmt.Errorf("store: user %d: %w", userID, ErrNotFound)
	}
	if err != nil {
		return Session{}, fmt.Errorf("store: create session: %w", err)
	}
	return sess, nil
}

// LookupSession returns the live session whose token this is; an unknown or
// expired token is ErrNotFound (and an expired session is deleted).
func (s *Store) LookupSession(ctx context.Context, token string) (Session, error) {
	sess := Session{Token: token}
	h := tokenHash(token)
	err := scanUser(s.db.QueryRowContext(ctx, s.q(`SELECT u.id, u.username, u.name, u.role, u.created_at, u.disabled,
			s.csrf_token, s.created_at, s.expires_at
		FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ? AND NOT u.disabled`), h),
		&sess.User, &sess.CSRFToken, &sess.CreatedAt, &sess.ExpiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, fmt.Errorf("store: session: %w", ErrNotFound)
	}
	if err != nil {
		return Session{}, fmt.Errorf("store: session: %w", err)
	}
	sess.CreatedAt, sess.ExpiresAt = sess.CreatedAt.UTC(), sess.ExpiresAt.UTC()
	if !time.Now().Before(sess.ExpiresAt) {
		s.db.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE token_hash = ?`), h)
		return Session{}, fmt.Errorf("store: session: %w (expired)", ErrNotFound)
	}
	return sess, nil
}

// DeleteSession logs a session out. Deleting an unknown token is not an error.
func (s *Store) DeleteSession(ctx context.Context, token string) error {
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE token_hash = ?`), tokenHash(token)); err != nil {
		return fmt.Errorf("store: delete session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions removes every expired session and says how many.
func (s *Store) DeleteExpiredSessions(ctx context.Context) (int, error) {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE expires_at <= ?`), now())
	if err != nil {
		return 0, fmt.Errorf("store: delete expired sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// randomToken returns 256 random bits, base64url-encoded.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func tokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}
