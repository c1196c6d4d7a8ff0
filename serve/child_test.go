package serve

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golem-ml/golem/internal/shared"

	"github.com/golem-ml/golem/backend/cpu"
)

// childEnv, when set, makes the test binary run `golem serve` instead of
// the tests (see runChild): the kill -9 test starts and kills real server
// processes this way, without needing cmd/golem to build.
const childEnv = "GOLEM_SERVE_TEST_CHILD"

// runChild serves the model GOLEM_SERVE_TEST_MODEL with the store
// GOLEM_SERVE_TEST_DB on a free loopback port, written to the file
// GOLEM_SERVE_TEST_ADDR once it listens; GOLEM_SERVE_TEST_WATCH, when set,
// is its --watch interval, and SIGHUP reloads the model, as in the CLI.
func runChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	addrFile := os.Getenv("GOLEM_SERVE_TEST_ADDR")
	watch := time.Duration(-1)
	if w := os.Getenv("GOLEM_SERVE_TEST_WATCH"); w != "" {
		watch, _ = time.ParseDuration(w)
	}
	reload, stopHUP := ReloadOnHUP()
	defer stopHUP()
	err := Run(ctx, Config{
		Models: []string{os.Getenv("GOLEM_SERVE_TEST_MODEL")}, Addr: "127.0.0.1:0", Backend: cpu.New(),
		DB: os.Getenv("GOLEM_SERVE_TEST_DB"), AdminPassword: "admin-password", Watch: watch, Reload: reload, Out: os.Stderr,
		Ready: func(addr string) {
			os.WriteFile(addrFile+".tmp", []byte(addr), 0o644)
			os.Rename(addrFile+".tmp", addrFile)
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// spawnChild starts a server process serving model on the store dsn, with
// extra environment (GOLEM_SERVE_TEST_WATCH=...) and its output to stderr,
// and returns it with its URL once it listens. It is killed when the test
// ends.
func spawnChild(t *testing.T, model, dsn string, stderr io.Writer, env ...string) (*exec.Cmd, string) {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	cmd := exec.Command(os.Args[0], "-test.run=^$", fmt.Sprintf("-test.short=%t", testing.Short()))
	cmd.Env = append(os.Environ(), childEnv+"=1", "GOLEM_SERVE_TEST_DB="+dsn,
		"GOLEM_SERVE_TEST_MODEL="+model, "GOLEM_SERVE_TEST_ADDR="+addrFile)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; i < 600; i++ {
		if b, err := os.ReadFile(addrFile); err == nil {
			return cmd, "http://" + string(b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the server process did not start in 30 s")
	return nil, ""
}

// postgresDSN returns a DSN for an empty schema of the PostgreSQL database
// GOLEM_TEST_POSTGRES names (dropped when the test ends); without it the
// test is skipped, or fails under CI=true.
func postgresDSN(t *testing.T) string {
	t.Helper()
	base := os.Getenv("GOLEM_TEST_POSTGRES")
	if base == "" {
		msg := "GOLEM_TEST_POSTGRES is not set: `source .ci/postgres.sh` starts a PostgreSQL server and sets it"
		shared.Missing(t, msg)
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	b := make([]byte, 6)
	rand.Read(b)
	schema := "golem_serve_test_" + hex.EncodeToString(b)
	if _, err := db.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() { db.Exec(`DROP SCHEMA ` + schema + ` CASCADE`) })
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}
