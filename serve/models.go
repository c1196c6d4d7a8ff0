package serve

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/golem-ml/golem/gguf"
	"github.com/golem-ml/golem/model/clip"
	"github.com/golem-ml/golem/model/dalle"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/llava"
	"github.com/golem-ml/golem/model/load"
	"github.com/golem-ml/golem/safetensors"
)

// Several models: the server knows every model it serves (New's engines,
// loaded, and Options.Models, not yet), loads one on its first request
// (each with its own Engine), and unloads it once no request has used it
// for its keep-alive: the last request's Ollama "keep_alive" (0 unloads it
// as soon as that request is answered, negative never), or the server's
// (Options.KeepAlive, Ollama's 5 minutes by default) when it has none. A request holds its model
// until it is answered, so a model is never unloaded under one; a request
// that comes while it is being unloaded loads it again.

// DefaultKeepAlive is how long a model stays loaded after its last request
// unless told otherwise (Ollama's default).
const DefaultKeepAlive = 5 * time.Minute

// ModelSpec is a model folder served under a name.
type ModelSpec struct {
	Name, Dir string
}

// model is one served model and its state.
type model struct {
	name, dir string

	mu      sync.Mutex
	e       *Engine       // nil while unloaded
	loading chan struct{} // closed when the load under way ends; nil when none
	loadErr error         // the last load's failure
	users   int           // requests holding e
	keep    time.Duration // how long e stays loaded after its last request; negative: for ever
	expires time.Time     // when an idle e unloads (zero while in use, or kept for ever)
	gen     int           // counts loads and unloads: a timer of an earlier one does nothing
	unwatch context.CancelFunc
	info    modelInfo // for the lists, of the last weights loaded (or the folder's config.json)
}

// modelInfo is what the model lists say of a model, loaded or not.
type modelInfo struct {
	config  gpt.Config
	params  int64
	modTime time.Time
	digest  string // "" until the model has been loaded once
	gguf    bool   // read from a GGUF file
	level   string // with gguf: the type most matrices are kept in (quantLevel)
}

// infoOf describes loaded weights; their digest is computed once, the
// first time (seconds for a model of gigabytes), unless hash is false.
func (s *Server) infoOf(w *Weights, hash bool) modelInfo {
	info := modelInfo{config: w.config(), params: paramCount(w), modTime: w.ModTime, gguf: w.GGUF, level: quantLevel(w)}
	if hash {
		info.digest = s.digests.of(w)
	}
	return info
}

// folderInfo describes a model folder (or an adapter folder's base)
// without loading it: its config.json, the parameters its weights' headers
// list, and its files' time.
func folderInfo(dir string) (modelInfo, error) {
	dir, err := load.BaseDir(dir)
	if err != nil {
		return modelInfo{}, err
	}
	if file, ok, err := gguf.Locate(dir); ok || err != nil {
		if err != nil {
			return modelInfo{}, err
		}
		c, params, level, err := gpt.GGUFSummary(file)
		if err != nil {
			return modelInfo{}, err
		}
		st, err := folderStamp(dir)
		if err != nil {
			return modelInfo{}, err
		}
		return modelInfo{config: *c, params: params, modTime: st.mod, gguf: true, level: level}, nil
	}
	var c *gpt.Config
	if clip.IsCLIP(dir) {
		cc, err := clip.LoadConfig(dir)
		if err != nil {
			return modelInfo{}, err
		}
		cfg := clipConfig(cc)
		c = &cfg
	} else if dalle.IsDalle(dir) {
		dc, err := dalle.LoadConfig(dir)
		if err != nil {
			return modelInfo{}, err
		}
		cfg := dalleConfig(&dc)
		c = &cfg
	} else if llava.IsLLaVA(dir) { // its language model's
		lc, err := llava.LoadConfig(dir)
		if err != nil {
			return modelInfo{}, err
		}
		c = &lc.Text
	} else if c, err = gpt.LoadConfig(filepath.Join(dir, "config.json")); err != nil {
		return modelInfo{}, err
	}
	st, err := folderStamp(dir)
	if err != nil {
		return modelInfo{}, err
	}
	info := modelInfo{config: *c, modTime: st.mod, params: headerParams(dir)}
	if c.Arch == dalle.ModelType { // its VQ-VAE is part of the model (Weights.params)
		info.params += headerParams(filepath.Join(dir, dalle.VQFolder))
	}
	return info, nil
}

// headerParams counts the parameters dir's safetensors headers list (0
// when it has none).
func headerParams(dir string) int64 {
	sm, err := safetensors.OpenModel(dir)
	if err != nil {
		return 0
	}
	defer sm.Close()
	var params int64
	for _, n := range sm.Names() {
		if ti, ok := sm.Info(n); ok {
			k := int64(1)
			for _, d := range ti.Shape {
				k *= int64(d)
			}
			params += k
		}
	}
	return params
}

// ModelDirs lists the model folders inside dir (golem serve --models): each
// folder with a config.json or a model.gguf, named by its folder's name, in
// name order.
func ModelDirs(dir string) ([]ModelSpec, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("serve: --models: %w", err)
	}
	var specs []ModelSpec
	for _, e := range ents {
		d := filepath.Join(dir, e.Name())
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "config.json")); err != nil {
			if _, ok, _ := gguf.Locate(d); !ok { // nor a folder holding model.gguf
				continue
			}
		}
		specs = append(specs, ModelSpec{e.Name(), d})
	}
	if len(specs) == 0 {
		return nil, fmt.Errorf("serve: --models %s: no model folder (a folder with a config.json or a model.gguf) inside", dir)
	}
	sort.Slice(specs, func(i, j int) bool { return specs[i].Name < specs[j].Name })
	return specs, nil
}

// addModel registers a model, loaded (e) or not.
func (s *Server) addModel(name, dir string, e *Engine, info modelInfo) {
	m := &model{name: name, dir: dir, e: e, keep: s.opts.KeepAlive, info: info}
	if e != nil {
		// Loaded before it was asked for: watched, and it expires like
		// any other.
		m.mu.Lock()
		s.watch(m)
		s.idle(m)
		m.mu.Unlock()
	}
	s.models[name] = m
	s.names = append(s.names, name)
}

// model finds a model by id; Ollama's ":latest" tag is ignored.
func (s *Server) model(id string) (*model, bool) {
	m, ok := s.models[id]
	if !ok {
		m, ok = s.models[strings.TrimSuffix(id, ":latest")]
	}
	return m, ok
}

// acquire returns m's engine, loading it first if it is not loaded, and
// holds it (it is not unloaded) until release.
func (s *Server) acquire(ctx context.Context, m *model) (*Engine, error) {
	select {
	case <-s.closing:
		return nil, &apiError{http.StatusServiceUnavailable, "", ErrClosed.Error()}
	default:
	}
	m.mu.Lock()
	for m.e == nil {
		if s.opts.Load == nil {
			m.mu.Unlock()
			return nil, &apiError{http.StatusServiceUnavailable, "", fmt.Sprintf("serve: model %s is not loaded and this server cannot load models", m.name)}
		}
		if m.loading == nil {
			m.loading, m.loadErr = make(chan struct{}), nil
			go s.load(m, m.loading)
		}
		ch := m.loading
		m.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.closing:
			return nil, &apiError{http.StatusServiceUnavailable, "", fmt.Sprintf("serve: stopped while loading %s", m.dir)}
		}
		m.mu.Lock()
		if m.e == nil && m.loading == nil && m.loadErr != nil {
			err := m.loadErr
			m.mu.Unlock()
			return nil, &apiError{http.StatusInternalServerError, "", fmt.Sprintf("serve: loading model %s: %v", m.name, err)}
		}
	}
	m.users++
	m.expires = time.Time{}
	m.gen++ // the idle timer, if any, is stale
	e := m.e
	m.mu.Unlock()
	return e, nil
}

// load loads m's folder and makes it m's engine; done is closed after.
func (s *Server) load(m *model, done chan struct{}) {
	w, err := s.loadSettled(m.dir)
	m.mu.Lock()
	defer func() {
		m.loading = nil
		m.mu.Unlock()
		close(done)
	}()
	select {
	case <-s.closing:
		if err == nil {
			err = ErrClosed
		}
	default:
	}
	if err != nil {
		m.loadErr = err
		s.opts.Logf("serve: loading model %s from %s: %v", m.name, m.dir, err)
		return
	}
	m.e = NewEngine(m.name, m.dir, w, s.opts.Engine)
	m.info = s.infoOf(w, false)
	go s.digests.of(w) // ahead of the first listing
	m.gen++
	s.watch(m)
	c := w.config()
	s.opts.Logf("serve: loaded model %s from %s (%s, %d layers, context %d)", m.name, m.dir, c.Arch, c.Layers, c.Context)
}

// loadSettled loads dir once its files have been left alone for a moment
// (as a reload does), and again when they changed while being read (a
// checkpoint written meanwhile), for up to forceWait.
func (s *Server) loadSettled(dir string) (*Weights, error) {
	deadline := time.Now().Add(forceWait)
	for {
		st, err := folderStamp(dir)
		if err != nil {
			return nil, err
		}
		if wait := settle - time.Since(st.mod); wait > 0 && time.Now().Before(deadline) {
			select {
			case <-time.After(wait):
			case <-s.closing:
				return nil, ErrClosed
			}
			continue
		}
		w, err := s.opts.Load(dir)
		if err != nil && time.Now().Before(deadline) {
			if now, serr := folderStamp(dir); serr == nil && now.key != st.key {
				continue // rewritten while it was read: read the new files
			}
		}
		return w, err
	}
}

// watch checks m's folder for new checkpoints every Options.Watch while
// its engine is loaded (m.mu held).
func (s *Server) watch(m *model) {
	if s.opts.Watch > 0 && m.dir != "" {
		ctx, cancel := context.WithCancel(context.Background())
		m.unwatch = cancel
		go m.e.Watch(ctx, s.opts.Watch, s.opts.Logf)
	}
}

// release lets go of a model acquired. Its keep-alive is from now on the
// request's "keep_alive" (keep), or the server's when the request has
// none, as Ollama does. The last user starts the wait after which it
// unloads.
func (s *Server) release(m *model, keep *time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.users--
	m.keep = s.opts.KeepAlive
	if keep != nil {
		m.keep = *keep
	}
	if m.users == 0 {
		s.idle(m)
	}
}

// idle starts m's keep-alive (m.mu held, no users).
func (s *Server) idle(m *model) {
	m.gen++
	gen := m.gen
	switch {
	case m.keep < 0 || s.opts.Load == nil:
		m.expires = time.Time{} // for ever
	case m.keep == 0:
		s.unload(m)
	default:
		m.expires = time.Now().Add(m.keep)
		time.AfterFunc(m.keep, func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			if m.gen == gen && m.users == 0 {
				s.unload(m)
			}
		})
	}
}

// unload closes m's engine (m.mu held, no users). Nothing waits on it:
// no request holds it, and the next one loads the model again.
func (s *Server) unload(m *model) {
	if m.e == nil {
		return
	}
	e := m.e
	m.info = s.infoOf(e.Weights(), true) // what the lists show until it is loaded again
	m.e, m.expires = nil, time.Time{}
	m.gen++
	if m.unwatch != nil {
		m.unwatch()
		m.unwatch = nil
	}
	e.Close()
	s.opts.Logf("serve: unloaded model %s", m.name)
}

// held is what a request holds: the models it acquired, released when it
// has been answered, and the keep-alive it asks for.
type held struct {
	mu     sync.Mutex
	models []*model
	keep   *time.Duration
}

// use acquires the model named id for the request r (released once it has
// been answered).
func (s *Server) use(ctx context.Context, m *model) (*Engine, error) {
	e, err := s.acquire(ctx, m)
	if err != nil {
		return nil, err
	}
	rec := recordOf(ctx)
	rec.held.mu.Lock()
	rec.held.models = append(rec.held.models, m)
	rec.held.mu.Unlock()
	return e, nil
}

// releaseHeld lets go of what the request held.
func (s *Server) releaseHeld(rec *reqRecord) {
	rec.held.mu.Lock()
	ms, keep := rec.held.models, rec.held.keep
	rec.held.models = nil
	rec.held.mu.Unlock()
	for _, m := range ms {
		s.release(m, keep)
	}
}

// setKeepAlive records a request's Ollama keep_alive.
func setKeepAlive(ctx context.Context, k keepAlive) {
	if !k.set {
		return
	}
	d := k.d
	rec := recordOf(ctx)
	rec.held.mu.Lock()
	rec.held.keep = &d
	rec.held.mu.Unlock()
}

// loaded lists the loaded models in name order with their state.
func (s *Server) loaded() []loadedModel {
	var out []loadedModel
	for _, name := range s.names {
		m := s.models[name]
		m.mu.Lock()
		if m.e != nil {
			exp := m.expires
			if m.users > 0 && m.keep >= 0 {
				exp = time.Now().Add(m.keep) // in use: from now, at the earliest
			}
			out = append(out, loadedModel{e: m.e, expires: exp})
		}
		m.mu.Unlock()
	}
	return out
}

type loadedModel struct {
	e       *Engine
	expires time.Time // zero: for ever
}

// expiresAt is when a loaded model unloads, as Ollama writes it; never is
// now plus the longest duration (the year 2318), as Ollama's.
func expiresAt(t time.Time) string {
	if t.IsZero() {
		t = time.Now().Add(time.Duration(math.MaxInt64))
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// infoFor is what the lists say of a model: its loaded weights', or what
// is known from its last load or its folder.
func (s *Server) infoFor(name string) modelInfo {
	m := s.models[name]
	m.mu.Lock()
	e := m.e
	info := m.info
	m.mu.Unlock()
	if e != nil {
		return s.infoOf(e.Weights(), true)
	}
	return info
}

// Close unloads every model; requests waiting for a load get a 503.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
	for _, name := range s.names {
		m := s.models[name]
		m.mu.Lock()
		s.unload(m)
		m.mu.Unlock()
	}
}

// Reload reloads every loaded model from its folder now (SIGHUP; see
// Engine.Reload); a model not loaded reads its folder when it loads.
func (s *Server) Reload() {
	for _, l := range s.loaded() {
		// Reload recovers its own panics: nothing in a model folder
		// takes the server down.
		if _, err := l.e.Reload(true); err != nil {
			s.opts.Logf("%v", err)
		} else {
			s.opts.Logf("serve: %s: reloaded %s", l.e.Name, l.e.Dir)
		}
	}
}
