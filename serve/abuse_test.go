package serve

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golem-ml/golem/backend/cpu"
)

// A client that sends headers and a few bytes of its body and stalls gets
// a 408 and is disconnected after BodyTimeout, an idle keep-alive
// connection is closed after IdleTimeout, and a stream that lasts many
// times WriteTimeout completes.
func TestTimeouts(t *testing.T) {
	const writeTimeout = 250 * time.Millisecond
	ts := newTestServer(t, Options{BodyTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond, WriteTimeout: writeTimeout}, EngineOptions{})
	addr := strings.TrimPrefix(ts.URL, "http://")
	// closedWithin reads c until the server closes it and returns what it
	// read; it fails the test if that takes longer than d.
	closedWithin := func(what string, c net.Conn, d time.Duration) string {
		t.Helper()
		start := time.Now()
		c.SetReadDeadline(start.Add(d))
		b, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("%s: the connection is still open after %v (%v); read %q", what, d, err, b)
		}
		t.Logf("%s: closed after %v", what, time.Since(start).Round(time.Millisecond))
		return string(b)
	}

	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"model\":", addr)
	if got := closedWithin("slow body", slow, 3*time.Second); !strings.HasPrefix(got, "HTTP/1.1 408") || !strings.Contains(got, "did not arrive in time") {
		t.Errorf("slow body: got %q, want a 408", got)
	}

	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	fmt.Fprintf(idle, "GET /api/version HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	br := bufio.NewReader(idle)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("version: %d close=%v", resp.StatusCode, resp.Close)
	}
	closedWithin("idle keep-alive", idle, 3*time.Second)

	// A stream (1000 tokens, 16 choices, read as it comes; 500 tokens
	// under -short, still more than twice the write timeout: 1 s of CPU
	// for the 1000) outlives the write timeout by far: each write has its
	// own deadline.
	tokens := 1000
	if testing.Short() {
		tokens = 500
	}
	start := time.Now()
	resp, err = http.Post(ts.URL+"/v1/completions", "application/json", strings.NewReader(fmt.Sprintf(
		`{"model":"tiny-llama","prompt":"hi","max_tokens":%d,"min_tokens":%[1]d,"n":16,"stream":true}`, tokens)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err != nil || resp.StatusCode != 200 || !strings.HasSuffix(string(b), "data: [DONE]\n\n") || strings.Count(string(b), `"finish_reason":"length"`) != 16 {
		t.Fatalf("stream: %d %v, %d bytes ending %q", resp.StatusCode, err, len(b), b[max(0, len(b)-200):])
	}
	if took < 2*writeTimeout {
		t.Logf("the stream took only %v; it does not show much about the write timeout", took)
	}
	t.Logf("a stream of %v with a write timeout of %v", took.Round(time.Millisecond), writeTimeout)
}

// heapPeak samples the heap's live and unswept objects until stop is
// closed and returns the most it saw.
func heapPeak(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak uint64
		for {
			metrics.Read(s)
			peak = max(peak, s[0].Value.Uint64())
			select {
			case <-stop:
				out <- peak
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return out
}

// bigBody is a chat request of about n bytes, made as it is sent.
func bigBody(n int) (io.Reader, int64) {
	head := `{"model":"tiny-llama","messages":[{"role":"user","content":"`
	tail := `"}]}`
	fill := n - len(head) - len(tail)
	return io.MultiReader(strings.NewReader(head), io.LimitReader(repeatReader('a'), int64(fill)), strings.NewReader(tail)), int64(n)
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// Sixteen concurrent 6.6 MB chat bodies: the bodies admitted at once are
// bounded by BodyMemory (the default, 64 MiB), the others are told to
// come back (429 with Retry-After) before they are read, every answer is
// well formed, and the heap stays far below the 1 GB this took when
// every body was read and parsed at once. The short run scales the
// bodies, MaxBody and so the budget (8 x MaxBody by default) and the
// heap's bound by a quarter: parsing the admitted bodies was a sixth of
// the package's CPU.
func TestConcurrentBigBodies(t *testing.T) {
	maxBody, size := int64(8<<20), 6_600_000 // MaxBody's default
	if testing.Short() {
		maxBody, size = 2<<20, 1_650_000
	}
	ts := newTestServer(t, Options{MaxBody: maxBody}, EngineOptions{})
	const clients = 16
	stop := make(chan struct{})
	var before [1]metrics.Sample
	before[0].Name = "/memory/classes/heap/objects:bytes"
	metrics.Read(before[:])
	peak := heapPeak(stop)
	var wg sync.WaitGroup
	statuses := make([]int, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, n := bigBody(size)
			req, _ := http.NewRequest("POST", ts.URL+"/v1/chat/completions", body)
			req.ContentLength = n
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("client %d: %v", i, err)
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			statuses[i] = resp.StatusCode
			msg := errorMessage(b)
			switch {
			case resp.StatusCode == 400 && strings.Contains(msg, "context length"):
			case resp.StatusCode == 429 && resp.Header.Get("Retry-After") != "" && strings.Contains(msg, "too many request bodies"):
			default:
				t.Errorf("client %d: %d %.200s", i, resp.StatusCode, b)
			}
		}()
	}
	wg.Wait()
	close(stop)
	growth := int64(<-peak) - int64(before[0].Value.Uint64())
	t.Logf("statuses %v; heap growth at most %d MB", statuses, growth>>20)
	if !slices.Contains(statuses, 429) {
		t.Errorf("all %d bodies of %d bytes were admitted at once; the budget is %d bytes", clients, size, ts.srv.opts.BodyMemory)
	}
	if limit := int64(384<<20) * maxBody / (8 << 20); growth > limit {
		t.Errorf("the heap grew by %d MB, more than %d MB", growth>>20, limit>>20)
	}
	// Nothing is left taken from the budget.
	if ts.srv.bodies.used != 0 {
		t.Errorf("%d bytes of the body budget still taken", ts.srv.bodies.used)
	}
	status, body := do(t, nil, "POST", ts.URL+"/v1/chat/completions", []byte(`{"model":"tiny-llama","messages":[{"role":"user","content":"hi"}],"max_tokens":2}`), nil)
	if status != 200 {
		t.Fatalf("after: %d %s", status, body)
	}
}

// A keyless loopback server answers only its loopback names (against DNS
// rebinding), and the APIs take only JSON POSTs (a web page may send any
// site a text/plain or form POST without asking).
func TestHostCheckAndJSONOnly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Models: []string{tinyDir(t, "gpt2")}, Addr: "127.0.0.1:0", DB: "none", Watch: -1, Backend: cpu.New(),
			Ready: func(a string) { ready <- a }})
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	chat := `{"model":"tiny-gpt2","messages":[{"role":"user","content":"hi"}],"max_tokens":2}`
	post := func(host, contentType string) (int, string) {
		req, _ := http.NewRequest("POST", "http://"+addr+"/v1/chat/completions", strings.NewReader(chat))
		req.Host = host
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, errorMessage(b)
	}
	_, port, _ := net.SplitHostPort(addr)
	for _, c := range []struct {
		host, contentType string
		status            int
		want              string
	}{
		{"rebound.example.com:" + port, "application/json", 403, "DNS rebinding"},
		{"evil.example", "application/json", 403, "not this server's"},
		{addr, "application/json", 200, ""},
		{"localhost:" + port, "application/json; charset=utf-8", 200, ""},
		{"LOCALHOST", "application/json", 200, ""},
		{"[::1]:" + port, "application/json", 200, ""},
		{addr, "text/plain", 415, "application/json"},
		{addr, "application/x-www-form-urlencoded", 415, "application/json"},
		{addr, "", 415, "application/json"},
	} {
		if status, msg := post(c.host, c.contentType); status != c.status || !strings.Contains(msg, c.want) {
			t.Errorf("Host %q, Content-Type %q: %d %q, want %d with %q", c.host, c.contentType, status, msg, c.status, c.want)
		}
	}
	// The Ollama API too.
	req, _ := http.NewRequest("POST", "http://"+addr+"/api/generate", strings.NewReader(`{"model":"tiny-gpt2","prompt":"hi"}`))
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 415 {
		t.Errorf("ollama text/plain: %d", resp.StatusCode)
	}
}

// A client that asks for a stream and stops reading is cut off after
// WriteTimeout: when it reads again, the stream is cut short and the
// connection closed. (Small socket buffers on both sides make the
// server's writes block soon.)
func TestStalledReaderIsCut(t *testing.T) {
	clockBound(t)
	ts := newTestServer(t, Options{WriteTimeout: 200 * time.Millisecond}, EngineOptions{})
	hs := ts.srv.HTTPServer()
	hs.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		c.(*net.TCPConn).SetWriteBuffer(4096)
		return ctx
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := `{"model":"tiny-llama","prompt":"hi","max_tokens":1000,"min_tokens":1000,"n":16,"stream":true}`
	fmt.Fprintf(c, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	time.Sleep(2 * time.Second) // not reading
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection is still open: read %d bytes", len(b))
	}
	t.Logf("read %d bytes, then %v", len(b), err)
	if strings.Contains(string(b), "[DONE]") {
		t.Fatalf("the stalled client got the whole stream (%d bytes)", len(b))
	}
}
