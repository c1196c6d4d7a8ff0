package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golem-ml/golem/store"
)

// startChild starts a server process on dsn and returns it with its URL.
func startChild(t *testing.T, dsn string) (*exec.Cmd, string) {
	t.Helper()
	return spawnChild(t, tinyDir(t, "llama"), dsn, os.Stderr)
}

// Nothing acknowledged is lost: kill -9 the server during a burst of
// annotation writes; after a restart every write a client saw acknowledged
// is in the store, with the content it sent.
func TestKill9DuringWrites(t *testing.T) {
	clockBound(t)
	t.Run("sqlite", func(t *testing.T) { clockBound(t); kill9(t, "sqlite:"+filepath.Join(t.TempDir(), "labels.db")) })
	t.Run("postgres", func(t *testing.T) { clockBound(t); kill9(t, postgresDSN(t)) })
}

func kill9(t *testing.T, dsn string) {
	cmd, url := startChild(t, dsn)
	admin := login(t, url, "admin", "admin-password")
	var lines strings.Builder
	for i := 0; i < 400; i++ {
		fmt.Fprintf(&lines, "{\"prompt\": \"Question number %d?\"}\n", i)
	}
	status, body := admin.call("POST", "/app/api/admin/prompts?name=burst.jsonl", lines.String())
	mustStatus(t, "import", 200, status, body)
	const writers = 6
	clients := make([]*webClient, writers)
	for i := range clients {
		name := fmt.Sprintf("writer%d", i)
		status, body := admin.call("POST", "/app/api/admin/users", map[string]string{"username": name, "password": name + "-password"})
		mustStatus(t, "create "+name, 201, status, body)
		clients[i] = login(t, url, name, name+"-password")
	}

	type ack struct {
		id        int64
		annotator int
		response  string
	}
	var (
		mu    sync.Mutex
		acked []ack
		wg    sync.WaitGroup
	)
	for w, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := 1; p <= 400; p++ {
				resp := fmt.Sprintf("writer %d answers prompt %d", w, p)
				b, _ := json.Marshal(map[string]any{"prompt_id": p, "response": resp})
				status, out, err := tryCall(c, "POST", "/app/api/demonstrations", b)
				if err != nil {
					return // the server is gone
				}
				if status != 201 {
					t.Errorf("writer %d prompt %d: %d %s", w, p, status, out)
					return
				}
				var d demonstrationJSON
				json.Unmarshal(out, &d)
				mu.Lock()
				acked = append(acked, ack{d.ID, w, resp})
				mu.Unlock()
			}
		}()
	}
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 60 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Kill() // SIGKILL: no shutdown, no flush
	cmd.Wait()
	wg.Wait()
	if len(acked) >= writers*400 {
		t.Fatal("every write finished before the kill; the test proved nothing")
	}

	_, url = startChild(t, dsn)
	status, body = do(t, nil, "GET", url+"/v1/models", nil, nil)
	if status != 200 {
		t.Fatalf("after restart: %d %s", status, body)
	}
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, a := range acked {
		d, err := st.Demonstration(context.Background(), a.id)
		if err != nil || d.Response != a.response {
			t.Errorf("acknowledged demonstration %d (%q): %+v, %v", a.id, a.response, d, err)
		}
	}
	t.Logf("%d writes acknowledged before kill -9, all found after restart", len(acked))
}

// tryCall is webClient.call that reports a dead connection instead of
// failing the test.
func tryCall(c *webClient, method, path string, body []byte) (int, []byte, error) {
	req, err := newJSONRequest(method, c.base+path, body)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-CSRF-Token", c.csrf)
	resp, err := c.c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := readAll(resp)
	return resp.StatusCode, out, err
}
