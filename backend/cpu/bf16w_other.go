//go:build !amd64 || purego

package cpu

func convertPairs(dst, src []float32, n int) { convertPairsGo(dst, src, n) }

func bdotRows(out, x []float32, w []uint16, k int) { bdotRowsGo(out, x, w, k) }
