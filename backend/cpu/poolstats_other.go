//go:build !linux

package cpu

const haveThreadCPU = false

func threadCPU() int64 { return 0 }
