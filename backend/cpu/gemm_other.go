//go:build !amd64 || purego

package cpu

func archKernels() []*gemmKernel { return nil }
