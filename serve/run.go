package serve

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/gguf"
	"github.com/golem-ml/golem/store"
)

// Config is what `golem serve` runs.
type Config struct {
	// Models are model folders; "NAME=DIR" names one, otherwise its id is
	// the folder's name.
	Models []string
	// ModelsDir serves every model folder inside it (one with a
	// config.json), each named by its folder's name.
	ModelsDir string
	// KeepAlive is how long a model stays loaded after its last request
	// (see Options.KeepAlive): models are loaded on their first request.
	KeepAlive time.Duration
	// Addr is the address to listen on (default 127.0.0.1:8080).
	Addr string
	// DB is the store: "sqlite:FILE" or a postgres:// URL (default
	// sqlite:golem.db); "none" serves the APIs without the web app's
	// accounts and labels.
	DB string
	// APIKey is required on the APIs when set. On an address other than
	// loopback a key is generated (and printed) unless NoAPIKey is set.
	APIKey   string
	NoAPIKey bool
	// AdminPassword is the first admin's password; generated and printed
	// when empty and the store has no user yet.
	AdminPassword string
	// Watch is how often model folders are checked for a new checkpoint
	// (default 2 s; negative: never).
	Watch time.Duration
	// Reload, when it receives, reloads every model (SIGHUP).
	Reload <-chan struct{}
	// Engine sizes the batches.
	Engine EngineOptions
	// Backend runs the models (required): cmd/golem opens it by name
	// (--device) with backend.Open.
	Backend backend.Backend
	// BF16 keeps the language models' matrices as bfloat16 (golem serve
	// --dtype bf16; LoadWeightsAs).
	BF16 bool
	// Server has the server's timeouts, limits and cookie settings; Run
	// sets its APIKey, Logf, HostCheck and ListenAddr.
	Server Options
	// Ready is called with the address once the server listens.
	Ready func(addr string)
	// Out receives what the server prints (stderr by default in the CLI).
	Out io.Writer
	// LogFormat is how Out's lines are written: "text" (the default) or
	// "json", one object a line: {"time", "msg"} for events, RequestLog's
	// JSON for requests.
	LogFormat string

	load func(dir string) (*Weights, error) // LoadWeights; tests replace it
}

// ReloadOnHUP returns a channel that receives when the process gets SIGHUP
// (for Config.Reload), and a function that stops listening.
func ReloadOnHUP() (<-chan struct{}, func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reload := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-hup:
				select {
				case reload <- struct{}{}:
				default:
				}
			}
		}
	}()
	return reload, func() { signal.Stop(hup); close(done) }
}

// Run serves until ctx ends, then shuts down gracefully.
func Run(ctx context.Context, c Config) error {
	if len(c.Models) == 0 && c.ModelsDir == "" {
		return errors.New("serve: give at least one --model DIR (or --models DIR)")
	}
	if c.Backend == nil {
		return errors.New("serve: Config.Backend is nil: open one with backend.Open")
	}
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if err := CheckPool(c.Server.EmbedPool); err != nil {
		return fmt.Errorf("%w (--embed-pool)", err)
	}
	for _, o := range c.Server.CORSOrigins {
		if err := CheckOrigin(o); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
	}
	if c.DB == "" {
		c.DB = "sqlite:golem.db"
	}
	if c.Watch == 0 {
		c.Watch = 2 * time.Second
	}
	out := c.Out
	if out == nil {
		out = io.Discard
	}
	var outMu sync.Mutex
	line := func(b []byte) {
		outMu.Lock()
		defer outMu.Unlock()
		out.Write(append(b, '\n'))
	}
	logf := func(format string, args ...any) { line(fmt.Appendf(nil, format, args...)) }
	logRequest := func(l RequestLog) { line([]byte(l.Text())) }
	switch c.LogFormat {
	case "", "text":
	case "json":
		logf = func(format string, args ...any) {
			b, _ := json.Marshal(map[string]string{"time": time.Now().UTC().Format(time.RFC3339Nano), "msg": fmt.Sprintf(format, args...)})
			line(b)
		}
		logRequest = func(l RequestLog) { line(l.JSON()) }
	default:
		return fmt.Errorf("serve: --log-format %q: want text or json", c.LogFormat)
	}
	load := c.load
	if load == nil {
		load = func(dir string) (*Weights, error) { return LoadWeightsAs(c.Backend, dir, c.BF16) }
	}

	// Each model is checked now (its config.json, its weights files) and
	// loaded on its first request.
	var specs []ModelSpec
	for _, spec := range c.Models {
		name, dir, ok := strings.Cut(spec, "=")
		if !ok {
			dir = spec
			name = filepath.Base(filepath.Clean(dir))
			if ref, ok := strings.CutPrefix(dir, gguf.OllamaPrefix); ok {
				name = ref // ollama:NAME:TAG is served as NAME:TAG
			} else if n, ok := strings.CutSuffix(name, ".gguf"); ok && n != "" {
				name = n
			}
		}
		specs = append(specs, ModelSpec{name, dir})
	}
	if c.ModelsDir != "" {
		more, err := ModelDirs(c.ModelsDir)
		if err != nil {
			return err
		}
		specs = append(specs, more...)
	}
	seen := map[string]bool{}
	for _, m := range specs {
		if m.Name == "" || seen[m.Name] {
			return fmt.Errorf("serve: model %q (%s): give each model a distinct name (NAME=DIR)", m.Name, m.Dir)
		}
		seen[m.Name] = true
		info, err := folderInfo(m.Dir)
		if err != nil {
			return fmt.Errorf("serve: model %s: %w", m.Dir, err)
		}
		logf("serve: model %s from %s (%s, %d layers, context %d), loaded on its first request", m.Name, m.Dir, info.config.Arch, info.config.Layers, info.config.Context)
	}

	var st *store.Store
	if c.DB != "none" {
		var err error
		st, err = store.Open(ctx, c.DB)
		if err != nil {
			return err
		}
		defer st.Close()
		pw, err := EnsureAdmin(ctx, st, c.AdminPassword)
		if err != nil {
			return fmt.Errorf("serve: create the admin: %w", err)
		}
		if pw != "" && c.AdminPassword == "" {
			logf("serve: created user \"admin\" with password %s (shown once; change it or keep it safe)", pw)
		} else if pw != "" {
			logf("serve: created user \"admin\"")
		}
	}

	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	key := c.APIKey
	if key == "" && !c.NoAPIKey && !isLoopback(ln.Addr()) {
		b := make([]byte, 24)
		rand.Read(b)
		key = "golem-" + base64.RawURLEncoding.EncodeToString(b)
		logf("serve: listening beyond loopback: API key %s (shown once; --api-key to choose one, --no-api-key for none)", key)
	}
	o := c.Server
	o.APIKey, o.Logf, o.LogRequest = key, logf, logRequest
	// Without a key, a loopback server answers only its loopback names:
	// a web page cannot reach it through a DNS name rebound to 127.0.0.1.
	o.HostCheck, o.ListenAddr = key == "" && isLoopback(ln.Addr()), ln.Addr().String()
	o.Models, o.Load, o.Engine, o.KeepAlive = specs, load, c.Engine, c.KeepAlive
	if c.Watch > 0 {
		o.Watch = c.Watch
	}
	srv := New(nil, st, o)
	defer srv.Close()
	hs := srv.HTTPServer()
	pctx, stopPurge := context.WithCancel(ctx)
	defer stopPurge()
	go srv.PurgeSessions(pctx, 10*time.Minute)

	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if c.Reload != nil {
		go func() {
			for {
				select {
				case <-wctx.Done():
					return
				case <-c.Reload:
					srv.Reload()
				}
			}
		}()
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	logf("serve: listening on http://%s", ln.Addr())
	if c.Ready != nil {
		c.Ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Requests waiting for a model to load are answered 503 at once.
	srv.closeOnce.Do(func() { close(srv.closing) })
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return hs.Shutdown(sctx)
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
