package serve

import (
	"path/filepath"
	"strings"
	"sync"
	"weak"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/gguf"
	"github.com/golem-ml/golem/model/load"
)

// Several adapters over one base: the base model folders loaded on each
// backend, shared by the served models that run on them (the base itself,
// and every LoRA or prompt-tuning adapter over it: model/load's
// Options.Bases), so that their weights are in memory once. An adapter's
// model is its own layers over the base's tensors with its LoRA attached,
// unmerged, and runs in an engine of its own: adapters over one base are
// batched each on its own, not together. A base stays while a served
// model's weights hold it (Weights.base) and goes with the last; a base
// folder whose files changed is another base (its stamp is part of the
// key), so reloading an adapter folder whose base did not change reads
// the adapter alone.

// baseKey names a loaded base: the backend, the folder, its files, and
// whether its matrices are bfloat16 (serve --dtype bf16: a bf16 base is
// shared by the bf16 adapters over it, a float32 one by the others).
type baseKey struct {
	be    backend.Backend
	dir   string
	stamp string
	bf16  bool
}

// baseSlot is a base being loaded (done open) or loaded.
type baseSlot struct {
	done chan struct{}
	l    weak.Pointer[load.Loaded]
	err  error
}

var bases struct {
	mu sync.Mutex
	m  map[baseKey]*baseSlot
}

// sharedBase returns the model folder dir loaded on be (its matrices
// bfloat16 with bf16), from the models already loaded when one of them is
// it and is still held.
func sharedBase(be backend.Backend, dir string, bf16 bool) (*load.Loaded, error) {
	key := dir
	if !strings.HasPrefix(dir, gguf.OllamaPrefix) {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, err
		}
		key = abs
	}
	st, err := folderStamp(dir)
	if err != nil {
		return nil, err
	}
	k := baseKey{be, key, st.key, bf16}
	for {
		bases.mu.Lock()
		if bases.m == nil {
			bases.m = map[baseKey]*baseSlot{}
		}
		// Forget the bases no model holds any more.
		for key, s := range bases.m {
			select {
			case <-s.done:
				if s.err != nil || s.l.Value() == nil {
					delete(bases.m, key)
				}
			default:
			}
		}
		s, ok := bases.m[k]
		if !ok {
			s = &baseSlot{done: make(chan struct{})}
			bases.m[k] = s
			bases.mu.Unlock()
			l, err := load.Model(be, dir, load.Options{BF16: bf16})
			if err == nil {
				// Frozen before anyone runs it: the adapters attached to
				// its shared layers freeze it again without a write.
				l.Model.Freeze()
				s.l = weak.Make(l)
			}
			s.err = err
			close(s.done)
			return l, err
		}
		bases.mu.Unlock()
		<-s.done
		if s.err != nil {
			return nil, s.err
		}
		if l := s.l.Value(); l != nil {
			return l, nil
		}
		// Collected between its load and now: load it again.
	}
}
