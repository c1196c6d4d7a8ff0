//go:build !amd64 || purego

package cpu

func archKernels() []*gemmKernel { return nil }

func archBF16Kernels() []*gemmKernel { return nil }
