package vision

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
)

// Batch is BatchSize images stacked as float32 NCHW in X.
type Batch struct {
	Index      int   // batch number within the epoch
	Samples    []int // dataset indices
	N, C, H, W int
	X          []float32 // N*C*H*W
	Labels     []int
	Captions   []string
}

// LoaderConfig configures a Loader. The zero value of a field picks its
// default.
type LoaderConfig struct {
	BatchSize  int         // default 32
	Workers    int         // decoding goroutines; default GOMAXPROCS
	Prefetch   int         // batches ready ahead of the consumer; default 2*Workers
	Transforms []Transform // applied in order to every sample
	Shuffle    bool        // a new order every epoch, from Seed and the epoch
	Seed       uint64
	DropLast   bool // drop a final partial batch
}

// Loader decodes and augments a Dataset on worker goroutines.
type Loader struct {
	ds  Dataset
	cfg LoaderConfig
}

// NewLoader returns a loader over ds.
func NewLoader(ds Dataset, cfg LoaderConfig) *Loader {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 32
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Prefetch <= 0 {
		cfg.Prefetch = 2 * cfg.Workers
	}
	return &Loader{ds: ds, cfg: cfg}
}

// NumBatches returns the number of batches in an epoch.
func (l *Loader) NumBatches() int {
	n, b := l.ds.Len(), l.cfg.BatchSize
	if l.cfg.DropLast {
		return n / b
	}
	return (n + b - 1) / b
}

// order returns the sample order of an epoch.
func (l *Loader) order(epoch int) []int {
	n := l.ds.Len()
	if !l.cfg.Shuffle {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	return rand.New(rand.NewPCG(l.cfg.Seed, 0x5eed0000+uint64(epoch))).Perm(n)
}

// sample loads and augments one sample with its own generator, seeded by
// (seed, epoch, index) so results do not depend on which worker runs it.
func (l *Loader) sample(epoch, i int) (*Image, error) {
	m, err := l.ds.Load(i)
	if err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(l.cfg.Seed, uint64(epoch)<<40^uint64(i)))
	for _, t := range l.cfg.Transforms {
		if m, err = t.Apply(m, r); err != nil {
			return nil, fmt.Errorf("%s: %w", l.ds.Name(i), err)
		}
	}
	return m, nil
}

func (l *Loader) batch(epoch, b int, idx []int) (*Batch, error) {
	out := &Batch{Index: b, Samples: idx, N: len(idx)}
	for k, i := range idx {
		m, err := l.sample(epoch, i)
		if err != nil {
			return nil, err
		}
		if k == 0 {
			out.C, out.H, out.W = m.C, m.H, m.W
			out.X = make([]float32, 0, len(idx)*len(m.Pix))
		} else if m.C != out.C || m.H != out.H || m.W != out.W {
			return nil, fmt.Errorf("%s: image is %s but %s in the same batch is %dx%dx%d (add a Resize or crop)",
				l.ds.Name(i), m.Shape(), l.ds.Name(idx[0]), out.C, out.H, out.W)
		}
		out.X = append(out.X, m.Pix...)
		out.Labels = append(out.Labels, m.Label)
		out.Captions = append(out.Captions, m.Caption)
	}
	return out, nil
}

type result struct {
	b   *Batch
	err error
}

// Epoch streams the batches of one epoch in order. The channel closes after
// the last batch, on the first error, or when ctx is done; then the
// returned func gives the error (nil after a full epoch, ctx.Err() after a
// cancellation). At most Prefetch batches are decoded ahead of the consumer.
// Read the channel until it closes, or cancel ctx to stop early (a consumer
// that just stops reading leaves the goroutines waiting); call the func
// after that.
func (l *Loader) Epoch(ctx context.Context, epoch int) (<-chan *Batch, func() error) {
	ctx, cancel := context.WithCancel(ctx)
	out := make(chan *Batch)
	order := l.order(epoch)
	nb := l.NumBatches()
	type job struct {
		b   int
		res chan result
	}
	jobs := make(chan job)
	pending := make(chan chan result, l.cfg.Prefetch)
	var wg sync.WaitGroup
	for w := 0; w < l.cfg.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				lo := j.b * l.cfg.BatchSize
				hi := min(lo+l.cfg.BatchSize, len(order))
				bt, err := l.batch(epoch, j.b, order[lo:hi])
				j.res <- result{bt, err}
			}
		}()
	}
	go func() { // dispatcher: bounded by pending's capacity
		defer close(jobs)
		defer close(pending)
		for b := 0; b < nb; b++ {
			res := make(chan result, 1)
			select {
			case pending <- res:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- job{b, res}:
			case <-ctx.Done():
				return
			}
		}
	}()
	var err error
	done := make(chan struct{})
	go func() { // emitter: in order
		defer close(done)
		defer close(out)
		defer cancel()
		for res := range pending {
			var r result
			select {
			case r = <-res:
			case <-ctx.Done():
				err = ctx.Err()
				return
			}
			if r.err != nil {
				err = r.err
				return
			}
			select {
			case out <- r.b:
			case <-ctx.Done():
				err = ctx.Err()
				return
			}
		}
		if e := ctx.Err(); e != nil && err == nil {
			err = e
		}
	}()
	return out, func() error {
		<-done
		return err
	}
}
