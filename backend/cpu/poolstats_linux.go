package cpu

import (
	"syscall"
	"unsafe"
)

const haveThreadCPU = true

// threadCPU reads the calling thread's CPU clock (CLOCK_THREAD_CPUTIME_ID)
// in nanoseconds.
func threadCPU() int64 {
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 3, uintptr(unsafe.Pointer(&ts)), 0)
	return ts.Nano()
}
