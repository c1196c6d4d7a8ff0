//go:build !linux && !purego

package cpu

import "errors"

// requestAMX: only Linux's tile permission is known here.
func requestAMX() error { return errors.New("no arch_prctl on this OS") }
