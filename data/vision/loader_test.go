package vision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// idxSet37 writes 37 random 8x8 images with labels i%10 as an idx pair.
func idxSet37(t testing.TB) Dataset {
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(9, 9))
	pix := make([]byte, 37*64)
	for i := range pix {
		pix[i] = byte(r.IntN(256))
	}
	lab := make([]byte, 37)
	for i := range lab {
		lab[i] = byte(i % 10)
	}
	p := writeFile(t, filepath.Join(dir, "train-images-idx3-ubyte"), idxBytes([]uint32{37, 8, 8}, pix))
	writeFile(t, filepath.Join(dir, "train-labels-idx1-ubyte"), idxBytes([]uint32{37}, lab))
	ds, err := Open(p, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func collect(t *testing.T, l *Loader, epoch int) []*Batch {
	t.Helper()
	ch, errf := l.Epoch(context.Background(), epoch)
	var bs []*Batch
	for b := range ch {
		bs = append(bs, b)
	}
	if err := errf(); err != nil {
		t.Fatal(err)
	}
	return bs
}

func sameBatches(a, b []*Batch) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if fmt.Sprint(a[i].Samples, a[i].Labels, a[i].N, a[i].C, a[i].H, a[i].W) != fmt.Sprint(b[i].Samples, b[i].Labels, b[i].N, b[i].C, b[i].H, b[i].W) ||
			len(a[i].X) != len(b[i].X) {
			return false
		}
		for j := range a[i].X {
			if a[i].X[j] != b[i].X[j] {
				return false
			}
		}
	}
	return true
}

var augs = []Transform{
	RandomResizedCrop{H: 6, W: 6},
	HFlip{P: 0.5},
	ColorJitter{Brightness: 0.4, Contrast: 0.4},
	GaussianBlur{Kernel: 3, Sigma: [2]float64{0.1, 2}},
	Solarize{Threshold: 0.5, P: 0.3},
	Normalize{Mean: []float32{0.5}, Std: []float32{0.25}},
}

func TestLoaderDeterministicAcrossWorkers(t *testing.T) {
	ds := idxSet37(t)
	run := func(workers int, seed uint64, epoch int) []*Batch {
		return collect(t, NewLoader(ds, LoaderConfig{BatchSize: 5, Workers: workers, Transforms: augs, Shuffle: true, Seed: seed}), epoch)
	}
	one, four := run(1, 7, 0), run(4, 7, 0)
	if len(one) != 8 || one[7].N != 2 || len(one[0].X) != 5*36 {
		t.Fatalf("%d batches, last of %d, first X %d", len(one), one[7].N, len(one[0].X))
	}
	if !sameBatches(one, four) {
		t.Fatal("seed 7 gave different batches with 1 and 4 workers")
	}
	if sameBatches(one, run(4, 8, 0)) {
		t.Fatal("seeds 7 and 8 gave the same batches")
	}
	if sameBatches(one, run(4, 7, 1)) {
		t.Fatal("epochs 0 and 1 gave the same batches")
	}
	// Every sample appears once per epoch, labels follow the samples.
	seen := map[int]bool{}
	for _, b := range four {
		for k, i := range b.Samples {
			if seen[i] || b.Labels[k] != i%10 {
				t.Fatalf("sample %d twice or label %d", i, b.Labels[k])
			}
			seen[i] = true
		}
	}
	if len(seen) != 37 {
		t.Fatalf("%d distinct samples", len(seen))
	}
}

func TestLoaderOrderAndDropLast(t *testing.T) {
	ds := idxSet37(t)
	bs := collect(t, NewLoader(ds, LoaderConfig{BatchSize: 10, Workers: 3}), 0)
	if len(bs) != 4 || bs[3].N != 7 || bs[2].Samples[0] != 20 || bs[2].Index != 2 {
		t.Fatalf("%d batches, last %d", len(bs), bs[len(bs)-1].N)
	}
	m, _ := ds.Load(20)
	if bs[2].X[0] != m.Pix[0] || bs[2].X[63] != m.Pix[63] {
		t.Fatal("batch 2 does not start with sample 20's pixels")
	}
	if n := len(collect(t, NewLoader(ds, LoaderConfig{BatchSize: 10, Workers: 3, DropLast: true}), 0)); n != 3 {
		t.Fatalf("DropLast: %d batches", n)
	}
}

func TestLoaderErrors(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 12; i++ {
		writeFile(t, filepath.Join(dir, "a", fmt.Sprintf("%02d.png", i)), grayPNG(t, 4, 4, byte(i)))
	}
	full := grayPNG(t, 4, 4, 1)
	bad := writeFile(t, filepath.Join(dir, "a", "06.png"), full[:len(full)-20])
	ds, err := Open(dir, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	ch, errf := NewLoader(ds, LoaderConfig{BatchSize: 2, Workers: 4}).Epoch(context.Background(), 0)
	n := 0
	for range ch {
		n++
	}
	wantErr(t, errf(), bad)
	if n != 3 {
		t.Fatalf("%d batches before the bad one (batch 3), want 3", n)
	}
	// Images of different sizes in one batch: an error naming both.
	writeFile(t, filepath.Join(dir, "a", "06.png"), grayPNG(t, 5, 4, 1))
	ds, _ = Open(dir, Limits{})
	ch, errf = NewLoader(ds, LoaderConfig{BatchSize: 2, Workers: 2}).Epoch(context.Background(), 0)
	for range ch {
	}
	wantErr(t, errf(), filepath.Join(dir, "a", "07.png"), "1x4x4", filepath.Join(dir, "a", "06.png"), "1x4x5", "Resize")
	// A transform's error names the sample.
	ch, errf = NewLoader(ds, LoaderConfig{BatchSize: 2, Transforms: []Transform{Normalize{Mean: []float32{0, 0, 0}, Std: []float32{1, 1, 1}}}}).Epoch(context.Background(), 0)
	for range ch {
	}
	wantErr(t, errf(), filepath.Join(dir, "a", "00.png"), "3 means")
}

func TestLoaderCancel(t *testing.T) {
	ds := idxSet37(t)
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	ch, errf := NewLoader(ds, LoaderConfig{BatchSize: 1, Workers: 4, Transforms: augs}).Epoch(ctx, 0)
	<-ch
	cancel()
	for range ch {
	}
	if err := errf(); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Fatalf("%d goroutines left running after cancel (was %d)", g, before)
	}
}

// BenchmarkLoader reports loader images/s: MNIST (28x28 gray idx, flip and
// normalise) and 224-px photos (256x256 JPEGs in a folder, random-resized
// crop to 224, flip, colour jitter, normalise).
func BenchmarkLoader(b *testing.B) {
	dir := b.TempDir()
	pix := make([]byte, 1024*28*28)
	for i := range pix {
		pix[i] = byte(i * 31)
	}
	p := writeFile(b, filepath.Join(dir, "train-images-idx3-ubyte"), idxBytes([]uint32{1024, 28, 28}, pix))
	mnist, err := Open(p, Limits{})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 64; i++ {
		m := image.NewRGBA(image.Rect(0, 0, 256, 256))
		for j := range m.Pix {
			m.Pix[j] = byte(j*i + j/1024)
		}
		var jb bytes.Buffer
		jpeg.Encode(&jb, m, nil)
		writeFile(b, filepath.Join(dir, "photos", fmt.Sprint(i%4), fmt.Sprintf("%d.jpg", i)), jb.Bytes())
	}
	photos, err := Open(filepath.Join(dir, "photos"), Limits{})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		ds   Dataset
		tr   []Transform
	}{
		{"mnist28", mnist, []Transform{HFlip{P: 0.5}, Normalize{Mean: []float32{0.1307}, Std: []float32{0.3081}}}},
		{"photo224", photos, []Transform{RandomResizedCrop{H: 224, W: 224}, HFlip{P: 0.5}, ColorJitter{Brightness: 0.4, Contrast: 0.4, Saturation: 0.4, Hue: 0.1},
			Normalize{Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			l := NewLoader(c.ds, LoaderConfig{BatchSize: 32, Transforms: c.tr, Shuffle: true})
			images := 0
			start := time.Now()
			for i := 0; i < b.N; i++ {
				ch, errf := l.Epoch(context.Background(), i)
				for bt := range ch {
					images += bt.N
				}
				if err := errf(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(images)/time.Since(start).Seconds(), "images/s")
		})
	}
}

// countLoads counts the loads of a real dataset.
type countLoads struct {
	Dataset
	n atomic.Int64
}

func (c *countLoads) Load(i int) (*Image, error) {
	c.n.Add(1)
	return c.Dataset.Load(i)
}

// TestLoaderBounded: a consumer that stops reading holds the loader at
// Prefetch batches ahead (+1 waiting to be handed over), not the epoch.
func TestLoaderBounded(t *testing.T) {
	ds := &countLoads{Dataset: idxSet37(t)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, errf := NewLoader(ds, LoaderConfig{BatchSize: 2, Workers: 4, Prefetch: 2}).Epoch(ctx, 0)
	time.Sleep(300 * time.Millisecond)
	if n := ds.n.Load(); n > 6 || n < 2 {
		t.Fatalf("%d samples loaded ahead of a stalled consumer, want 2-6 (Prefetch 2 + 1 batches of 2)", n)
	}
	got := 0
	for b := range ch {
		got += b.N
	}
	if err := errf(); err != nil || got != 37 {
		t.Fatalf("%d samples, err %v", got, err)
	}
}
