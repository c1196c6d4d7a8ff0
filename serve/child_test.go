package serve

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
)

// childEnv, when set, makes the test binary run `golem serve` instead of
// the tests (see runChild): the kill -9 test starts and kills real server
// processes this way, without needing cmd/golem to build.
const childEnv = "GOLEM_SERVE_TEST_CHILD"

// runChild serves the model GOLEM_SERVE_TEST_MODEL with the store
// GOLEM_SERVE_TEST_DB on a free loopback port, written to the file
// GOLEM_SERVE_TEST_ADDR once it listens.
func runChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	addrFile := os.Getenv("GOLEM_SERVE_TEST_ADDR")
	err := Run(ctx, Config{
		Models: []string{os.Getenv("GOLEM_SERVE_TEST_MODEL")}, Addr: "127.0.0.1:0", Backend: cpu.New(),
		DB: os.Getenv("GOLEM_SERVE_TEST_DB"), AdminPassword: "admin-password", Watch: -1, Out: os.Stderr,
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

// postgresDSN returns a DSN for an empty schema of the PostgreSQL database
// GOLEM_TEST_POSTGRES names (dropped when the test ends); without it the
// test is skipped, or fails under CI=true.
func postgresDSN(t *testing.T) string {
	t.Helper()
	base := os.Getenv("GOLEM_TEST_POSTGRES")
	if base == "" {
		msg := "GOLEM_TEST_POSTGRES is not set: `source .ci/postgres.sh` starts a PostgreSQL server and sets it"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
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
