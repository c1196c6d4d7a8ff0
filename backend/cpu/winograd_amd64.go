//go:build !purego

package cpu

// wgin writes the F(2x2, 3x3) input transform of one tile, n channels a
// tap: tap (i, j) at src[i*ld+j*n:], point e at dst[e*ds:]
// (winograd_amd64.s; AVX-512, haveVec).
//
//go:noescape
func wgin(src *float32, ld int, dst *float32, ds int, n int)

// wgingrad adds the adjoint of wgin: dst's taps += B src B^T, point e of
// src at src[e*ss:].
//
//go:noescape
func wgingrad(dst *float32, ld int, src *float32, ss int, n int)

// wgout writes the F(2x2, 3x3) output transform of one tile plus bias, n
// channels a point: point e at src[e*ss:], the 2x2 outputs at dst,
// dst[n:], dst[ld:], dst[ld+n:].
//
//go:noescape
func wgout(src *float32, ss int, dst *float32, ld int, bias *float32, n int)

// wgoutgrad writes wgout's adjoint: the 16 points of A dy A^T at
// dst[e*ds:] from dy's 2x2 tile at src, src[n:], src[ld:], src[ld+n:].
//
//go:noescape
func wgoutgrad(src *float32, ld int, dst *float32, ds int, n int)

// wgin256, wgingrad256, wgout256 and wgoutgrad256 are wgin, wgingrad,
// wgout and wgoutgrad in AVX2, 8 channels a vector
// (conv256_amd64.s; haveVec256).
//
//go:noescape
func wgin256(src *float32, ld int, dst *float32, ds int, n int)

//go:noescape
func wgingrad256(dst *float32, ld int, src *float32, ss int, n int)

//go:noescape
func wgout256(src *float32, ss int, dst *float32, ld int, bias *float32, n int)

//go:noescape
func wgoutgrad256(src *float32, ld int, dst *float32, ds int, n int)

// deinterleave256 splits a row into its two stride-2 phases for n a
// multiple of 8 (conv256_amd64.s; haveVec256).
//
//go:noescape
func deinterleave256(a, b, src *float32, n int)

// wg2in256, wg2ingrad256, wg2out256 and wg2outgrad256 are winograds2.go's
// wg2inGo, wg2ingradGo, wg2outGo and wg2outgradGo in AVX2, 8 channels a
// vector (conv256_amd64.s; haveAVX2FMA, so AVX-512 machines run them
// too).
//
//go:noescape
func wg2in256(src *float32, ld, cs int, dst *float32, ds int, n int)

//go:noescape
func wg2ingrad256(dst *float32, ld, cs int, src *float32, ss int, n int)

//go:noescape
func wg2out256(src *float32, ss int, dst *float32, ld int, bias *float32, n int)

//go:noescape
func wg2outgrad256(src *float32, ld int, dst *float32, ds int, n int)

// wg4in256, wg4ingrad256, wg4out256 and wg4outgrad256 are winograds2.go's
// wg4inGo, wg4ingradGo, wg4outGo and wg4outgradGo (F(4x4, 2x2)) in AVX2,
// 8 channels a vector (conv256_amd64.s; haveAVX2FMA, so AVX-512 machines
// run them too).
//
//go:noescape
func wg4in256(src *float32, ld, cs int, dst *float32, ds int, n int)

//go:noescape
func wg4ingrad256(dst *float32, ld, cs int, src *float32, ss int, n int)

//go:noescape
func wg4out256(src *float32, ss int, dst *float32, ld int, bias *float32, n int)

//go:noescape
func wg4outgrad256(src *float32, ld int, dst *float32, ds int, n int)
