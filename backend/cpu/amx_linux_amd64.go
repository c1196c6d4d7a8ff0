package cpu

import (
	"syscall"
	"unsafe"
)

// Linux's arch_prctl codes for the dynamically enabled XSAVE state (AMX's
// tile data is off until a process asks for it).
const (
	archGetXcompSupp = 0x1021
	archReqXcompPerm = 0x1023
	xfeatureTileData = 18
)

// requestAMX asks Linux for this process's permission to use the AMX
// tile data (arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)); the
// error is the kernel's refusal (EINVAL where the kernel or the CPU has
// no AMX, EPERM where a policy forbids it).
func requestAMX() error {
	if _, _, e := syscall.RawSyscall(syscall.SYS_ARCH_PRCTL, archReqXcompPerm, xfeatureTileData, 0); e != 0 {
		return e
	}
	return nil
}

// xcompSupported returns the XSAVE features the kernel can enable for a
// process (arch_prctl(ARCH_GET_XCOMP_SUPP)).
func xcompSupported() (uint64, error) {
	var mask uint64
	if _, _, e := syscall.RawSyscall(syscall.SYS_ARCH_PRCTL, archGetXcompSupp, uintptr(unsafe.Pointer(&mask)), 0); e != 0 {
		return 0, e
	}
	return mask, nil
}
