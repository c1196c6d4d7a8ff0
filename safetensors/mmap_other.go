//go:build !linux

package safetensors

import (
	"fmt"
	"io"
	"math"
	"os"
)

// mapFile reads size bytes of f into memory (no memory mapping on this platform).
func mapFile(f *os.File, size int64) ([]byte, func() error, error) {
	if size > math.MaxInt {
		return nil, nil, fmt.Errorf("file of %d bytes is too large to read", size)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, nil, err
	}
	return b, func() error { return nil }, nil
}
