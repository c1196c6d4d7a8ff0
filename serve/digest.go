package serve

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"sync"
	"unsafe"
	"weak"
)

// digests caches the digest of the weights each model serves, computed
// once per loaded checkpoint (a reload gives new Weights) and without
// keeping replaced weights alive.
type digests struct {
	mu sync.Mutex
	m  []digestEntry
}

type digestEntry struct {
	w      weak.Pointer[Weights]
	digest string
}

// of returns the weights' digest: the SHA-256 of every parameter's name,
// shape and float32 values in order, in hex (64 digits, as Ollama's). Two
// folders with the same weights have the same digest; any changed weight
// changes it.
func (d *digests) of(w *Weights) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	live := d.m[:0]
	found := ""
	for _, e := range d.m {
		switch v := e.w.Value(); {
		case v == nil:
			continue // replaced and collected
		case v == w:
			found = e.digest
		}
		live = append(live, e)
	}
	d.m = live
	if found != "" {
		return found
	}
	found = weightsDigest(w)
	d.m = append(d.m, digestEntry{weak.Make(w), found})
	return found
}

var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

func weightsDigest(w *Weights) string {
	h := sha256.New()
	var buf []float32
	var b []byte
	for _, p := range w.params() {
		h.Write([]byte(p.Name))
		for _, n := range p.Tensor.Shape() {
			h.Write(binary.LittleEndian.AppendUint64(nil, uint64(n)))
		}
		buf = p.Tensor.HostInto(buf[:0])
		if len(buf) == 0 {
			continue
		}
		if littleEndian {
			// The values' bytes as they are, without a copy: this runs
			// over every weight of a model of gigabytes.
			h.Write(unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), 4*len(buf)))
			continue
		}
		b = b[:0]
		for _, f := range buf {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}
