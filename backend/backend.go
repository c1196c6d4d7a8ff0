// Package backend defines the small interface between golem's tensors and the
// hardware they run on. A Backend owns memory (Buffers) and the primitive
// kernels every op lowers to. Code above this package never touches a
// Buffer's memory except through Upload and Download.
//
// The whole contract is in this file: Backend, which every backend
// implements, and the optional abilities beside it (PackedAttention,
// InPlaceCrossEntropy, MultiAdamW, Freezer, RowAttention, RowStore,
// HalfCache, Im2Col, ConvGemm, Winograd, WinogradS2, BatchNorm, Quantized), each a faster or leaner way to do what
// Backend's methods can already do. Callers type-assert a backend to an ability and fall back to
// Backend's methods where it is missing, with the same results up to
// float32 rounding (and, for HalfCache, float16's). The CPU backend has
// every ability. Backends register themselves by name and commands open
// them with Open.
//
// Conventions, shared by every kernel:
//   - Buffers are dense, row-major float32 arrays (float16 where an ability
//     says so: HalfCache; ggml's Q8_0/Q4_0 blocks: Quantized). Shapes are
//     given as sizes.
//   - "Last dim" kernels treat x as rows x cols with cols the last dimension.
//   - Backward kernels ACCUMULATE into their gradient outputs (dx += ...), so
//     a tensor used twice gets the sum of its gradients without extra adds.
//   - Host-side integer inputs (token ids, targets, masks) are passed as Go
//     slices; a device backend copies them over.
//   - For the same inputs and thread count, results are bit-identical.
package backend

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Buffer is memory owned by a backend, holding Len() values: float32, as
// Alloc makes them, unless it was made by HalfCache.AllocHalf (float16) or
// Quantized.UploadQuant (Q8_0 or Q4_0 blocks).
// Backend's methods take float32 buffers only, except Free, which takes
// either; an ability's doc says which of its arguments may be float16.
type Buffer interface {
	Len() int
}

// Unary names an elementwise function y = f(x) (with an optional scalar
// parameter a, used by some of them).
type Unary int

// The elementwise functions.
const (
	Neg       Unary = iota
	Exp             // e^x
	Log             // ln x
	Tanh            // tanh x
	Sigmoid         // 1/(1+e^-x)
	ReLU            // max(x,0)
	GELUTanh        // GPT-2's tanh approximation ("gelu_new")
	GELU            // exact, with erf
	SiLU            // x*sigmoid(x)
	Sqrt            // sqrt x
	Square          // x*x
	Abs             // |x|
	Scale           // a*x
	AddScalar       // x+a
	ClampMin        // max(x,a)
	ClampMax        // min(x,a)
	PowScalar       // x^a
	Recip           // 1/x
)

// Binary names an elementwise function of two tensors.
type Binary int

// The binary functions.
const (
	Add Binary = iota
	Sub
	Mul
	Div
	Max // elementwise maximum (gradient to the larger; ties to a)
	Min // elementwise minimum (gradient to the smaller; ties to a)
)

// Bcast describes a broadcast binary op over an output of shape Shape (at
// most MaxDims dims): element i of the output reads a and b through the
// strides AStride and BStride (0 on broadcast dimensions).
type Bcast struct {
	Shape            []int
	AStride, BStride []int
}

// MaxDims is the most dimensions a strided kernel takes.
const MaxDims = 6

// Gemm describes a batched matrix product C[i] = Alpha*op(A[i])*op(B[i]) +
// Beta*C[i] for i < Batch, with op(A) M x K and op(B) K x N. Each operand of
// batch i starts at i*Stride (0 shares one matrix over the batch). Leading
// dimensions are the row lengths as stored.
type Gemm struct {
	TransA, TransB            bool
	M, N, K                   int
	Alpha, Beta               float32
	Batch                     int
	LDA, LDB, LDC             int
	StrideA, StrideB, StrideC int
	OffA, OffB, OffC          int
}

// Attention describes fused causal multi-head attention with grouped-query
// heads. Q is [B, T, HQ*D], K and V are [B, S, HKV*D], O is [B, T, HQ*D];
// HQ is a multiple of HKV. With Causal, query t (at absolute position
// S-T+t) sees keys 0..S-T+t. KeyMask, if not nil, has B*S entries and key s
// of batch b is hidden where KeyMask[b*S+s] is false. P, the saved
// probabilities, is [B, HQ, T, S].
type Attention struct {
	B, T, S, HQ, HKV, D int
	Scale               float32
	Causal              bool
	KeyMask             []bool
	// Window, if positive, is a sliding window (Mistral's): query t
	// sees only the last Window positions up to its own, keys
	// S-T+t-Window+1 .. S-T+t.
	Window int
	// KVRows, if above S, is the number of positions each batch row of k
	// and v (and of their gradients) holds: row b's keys start at
	// b*KVRows positions, the first S of them attended (a cache with room
	// to grow). 0 means S.
	KVRows int
	// BF16 asks a backend with the BF16Products ability to run the two products
	// (Q K^T and P V, and those of the backward pass) as MatMulBF16 does;
	// the softmax stays float32. Others ignore it.
	BF16 bool
}

// RoPE describes rotary position embeddings applied to x = [B, T, H*D], the
// rotate-half form Llama and Qwen use: pairs (i, i+D/2). Token t of batch b
// is at position Pos[b*T+t] if Pos is set, else Start+t.
type RoPE struct {
	B, T, H, D int
	Theta      float64
	Start      int
	Pos        []int32
	// InvFreq, if not nil, are the D/2 inverse frequencies (scaled RoPE,
	// such as Llama 3's); nil means theta^(-2i/D).
	InvFreq []float32
}

// AdamW holds the hyperparameters of one decoupled-weight-decay Adam step.
// Step counts from 1.
type AdamW struct {
	LR, Beta1, Beta2, Eps, WeightDecay float32
	Step                               int
}

// Backend allocates memory and runs kernels. All methods are safe for use by
// one goroutine at a time per buffer; kernels may use many threads inside.
type Backend interface {
	Name() string

	// Alloc returns a buffer of n float32 values, zeroed if zero is true
	// (else its contents are undefined). Free gives back any buffer the
	// backend made (float16 ones too) for reuse.
	Alloc(n int, zero bool) Buffer
	Free(b Buffer)
	Upload(dst Buffer, off int, src []float32)
	Download(dst []float32, src Buffer, off int)
	Fill(dst Buffer, v float32)

	// Copy2D copies (or with acc adds) a rows x cols block: dst[dOff+r*dStride+c]
	// (+)= src[sOff+r*sStride+c]. Slicing and concatenation lower to it.
	Copy2D(dst Buffer, dOff, dStride int, src Buffer, sOff, sStride int, rows, cols int, acc bool)
	// Permute writes (or adds) x of the given shape into dst with its
	// dimensions reordered: output dim i is input dim perm[i].
	Permute(dst, x Buffer, shape, perm []int, acc bool)

	MatMul(g Gemm, a, b, c Buffer)

	Map(op Unary, a float32, dst, x Buffer)
	// MapGrad: dx += f'(x)*dy, or with acc false dx = f'(x)*dy (dx's
	// contents are not read: a new gradient need not be zeroed first).
	// y = f(x) is passed for functions whose derivative is cheaper from it.
	MapGrad(op Unary, a float32, dx, x, y, dy Buffer, acc bool)
	Binary(op Binary, bc Bcast, dst, a, b Buffer)
	// BinaryGrad adds the gradients of op into da and db (either may be nil),
	// summing over broadcast dimensions.
	BinaryGrad(op Binary, bc Bcast, da, db, a, b, dy Buffer)
	// Where: dst = cond ? a : b, elementwise, with cond on the host.
	Where(cond []bool, dst, a, b Buffer)
	WhereGrad(cond []bool, da, db, dy Buffer)

	// Reductions over the last dim of a rows x cols array: dst[r] = sum_c x[r,c].
	SumRows(dst, x Buffer, rows, cols int)
	// SumRowsGrad: dx[r,c] += dy[r].
	SumRowsGrad(dx, dy Buffer, rows, cols int)
	// SumSquares returns the sum of x*x in float64 (for norms).
	SumSquares(x Buffer) float64

	Softmax(dst, x Buffer, rows, cols int, log bool)
	// SoftmaxGrad: dx += for softmax y*(dy - sum(dy*y)), for log-softmax
	// dy - exp(y)*sum(dy).
	SoftmaxGrad(dx, y, dy Buffer, rows, cols int, log bool)

	// LayerNorm over the last dim: y = (x-mean)*rstd*w + b (w or b may be
	// nil); mean and rstd (rows each) are saved for the backward pass.
	LayerNorm(y, mean, rstd, x, w, b Buffer, rows, cols int, eps float32)
	LayerNormGrad(dx, dw, db, x, w, mean, rstd, dy Buffer, rows, cols int)
	// RMSNorm: y = x*rstd*w; rstd saved.
	RMSNorm(y, rstd, x, w Buffer, rows, cols int, eps float32)
	RMSNormGrad(dx, dw, x, w, rstd, dy Buffer, rows, cols int)
	// L2Norm: y = x / max(||x||, eps) over the last dim; norm saved.
	L2Norm(y, norm, x Buffer, rows, cols int, eps float32)
	L2NormGrad(dx, y, norm, dy Buffer, rows, cols int)

	Attention(a Attention, o, p, q, k, v Buffer)
	AttentionGrad(a Attention, dq, dk, dv, q, k, v, p, do Buffer)
	// RoPE writes y = rotate(x); with grad it instead adds the inverse
	// rotation of x into y (the backward pass: dx += R^T dy).
	RoPE(r RoPE, y, x Buffer, grad bool)

	// Embedding: y[i] = table[ids[i]] (rows of width cols).
	Embedding(y, table Buffer, ids []int32, cols int)
	// EmbeddingGrad: dtable[ids[i]] += dy[i].
	EmbeddingGrad(dtable, dy Buffer, ids []int32, cols int)

	// CrossEntropy over logits [rows, cols]: loss[r] = weight[r]*(lse[r] -
	// logits[r, target[r]]) with lse saved; rows whose target is negative
	// (the ignore index) get 0. weight nil means 1.
	CrossEntropy(loss, lse, logits Buffer, target []int32, weight []float32, rows, cols int)
	// CrossEntropyGrad: dlogits[r] += dloss[r]*weight[r]*(softmax(logits[r]) - onehot).
	CrossEntropyGrad(dlogits, logits, lse, dloss Buffer, target []int32, weight []float32, rows, cols int)

	// Dropout: dst = x*mask/(1-p), mask drawn from seed; mask saved as 0/1.
	Dropout(dst, mask, x Buffer, p float32, seed uint64)

	// AdamWStep updates param in place from grad, with moments m and v.
	AdamWStep(h AdamW, param, grad, m, v Buffer)
}

// The optional abilities. Each is implemented by a backend that can do the
// work in fewer passes, or in less memory, than through Backend's methods;
// callers assert a Backend to it and fall back where it is missing.

// PackedAttention is Attention with q, k and v read in place from one
// packed buffer qkv [B, T, (HQ+2*HKV)*D], side by side in its last dim as
// a fused QKV projection (GPT-2's c_attn) writes them, so S = T; nothing
// is sliced out. AttentionPackedGrad accumulates the gradients into dqkv,
// laid out like qkv, or with acc false writes them there (dqkv's contents
// are not read: a new gradient need not be zeroed first). Called by
// tensor.AttentionQKV. Buffers: float32.
type PackedAttention interface {
	AttentionPacked(a Attention, o, p, qkv Buffer)
	AttentionPackedGrad(a Attention, dqkv, qkv, p, do Buffer, acc bool)
}

// InPlaceCrossEntropy computes CrossEntropy's per-row losses (without
// saving lse) and overwrites each row of logits with the gradient of
// scale*sum(loss): scale*weight[r]*(softmax(logits[r]) - onehot(target[r])),
// zero for ignored rows, in one pass over each row. Called by
// tensor.LinearCrossEntropy (a language model's training loss), which then
// needs no separate gradient buffer. Buffers: float32.
type InPlaceCrossEntropy interface {
	CrossEntropyInPlace(loss, logits Buffer, target []int32, weight []float32, rows, cols int, scale float32)
}

// MultiAdamW is AdamWStep over many parameters in one pass: parameter i
// with hyperparameters hs[i], its gradient grads[i] and moments ms[i],
// vs[i]. Called by optim.AdamW.Update when every parameter is on one
// backend. Buffers: float32.
type MultiAdamW interface {
	AdamWSteps(hs []AdamW, params, grads, ms, vs []Buffer)
}

// Freezer lets a backend keep a buffer in the form its kernels read
// fastest (the CPU keeps a frozen GEMM operand packed). Freeze declares
// that b's values do not change until Thaw (or Free); writing a frozen
// buffer without thawing it first is undefined. Called through
// nn.FreezeBuffers: by serve on the weights it serves, by the inference
// commands on theirs, by PPO and GRPO on the policy while a rollout
// samples. Buffers: float32.
type Freezer interface {
	Freeze(b Buffer)
	Thaw(b Buffer)
}

// RowAttention is attention for one new query per row, as a continuously
// batched decoder runs it over its KV cache: q and o are [a.B, HQ*D]; k
// and v hold slots of a.S positions each, head-major [slots, HKV, S, D];
// row b attends to the first n[b] positions of slot slot[b]. a.T must be
// 1; a.Causal and a.KeyMask are ignored; a positive a.Window keeps only the
// last a.Window of a row's n[b] positions. Each row's arithmetic is that of
// Attention over the same keys, so a sequence decoded in a batch gets the
// values it gets alone. Called by kvcache.Rows (a decode step of a batch cache). Buffers: q and o
// float32; k and v both float32, or both float16 on a backend with
// HalfCache (AllocHalf), converted to float32 as they are read.
type RowAttention interface {
	AttentionRows(a Attention, slot, n []int32, o, q, k, v Buffer)
}

// RowStore writes keys (or values) into a slot cache in one call: row r
// of src [rows, H*D] goes, head by head, to position pos[r] of slot
// slot[r] of dst [slots, H, S, D]; rows whose slot is negative are
// skipped. Called by kvcache.Batch (a decode step stores one row per
// sequence, a prefill all its rows). Buffers: src float32; dst float32,
// or float16 on a backend with HalfCache (rounded as CopyHalf rounds).
type RowStore interface {
	StoreRows(dst Buffer, S, H, D int, slot, pos []int32, src Buffer)
}

// HalfCache is a KV cache in float16: half the memory and half the
// reading per decoded token, at float16's rounding of the keys and values
// (about 3 significant digits; beyond +-65504 saturated), with attention
// still computed in float32 (RowAttention reads the float16 buffers).
// AllocHalf returns n zeroed float16 values. CopyHalf copies rows x cols
// values into the float16 buffer dst (at dOff, rows dStride apart) from
// src (at sOff, rows sStride apart), float32 (rounded to nearest, ties to
// even) or float16. Called by kvcache.Batch for serve's default
// --kv-cache f16. Buffers: as said; Free takes the float16 ones.
type HalfCache interface {
	RowAttention
	AllocHalf(n int) Buffer
	CopyHalf(dst Buffer, dOff, dStride int, src Buffer, sOff, sStride, rows, cols int)
}

// Conv2D describes a 2-D convolution (cross-correlation) of an input
// [N, C, H, W] with a KH x KW kernel to K channels in Groups groups, with
// stride (SH, SW), zero padding (PH, PW) and dilation (DH, DW); the output
// is OH x OW. Its column matrix is [Groups, C/Groups*KH*KW, N*OH*OW]: row
// (c, i, j) of group g, column (n, oh, ow) holds input channel
// g*C/Groups+c at (oh*SH-PH+i*DH, ow*SW-PW+j*DW), or 0 outside the input.
type Conv2D struct {
	N, C, H, W, K, KH, KW  int
	SH, SW, PH, PW, DH, DW int
	Groups, OH, OW         int
	// Phased says that x is already split into its stride phases by
	// ConvGemm.SplitPhases (ConvGemm's methods only).
	Phased bool
}

// Im2Col writes the column matrix of x into col, with pad (0 for a
// convolution, -inf for max pooling) where it reads outside x (Im2Col), and adds a
// column matrix back into the image it came from (Col2Im: dx += the
// adjoint, so a pixel gets the sum of every entry that read it). Called by
// tensor.Conv2d, ConvTranspose2d and the pooling ops; without it tensor
// gathers through Embedding with an index of the same size. Buffers:
// float32.
type Im2Col interface {
	Im2Col(g Conv2D, col, x Buffer, pad float32)
	Col2Im(g Conv2D, dx, col Buffer)
}

// ConvGemm runs a GEMM whose B operand is the column matrix of x under g
// (Conv2D's layout, one group, 0 outside x) without writing it: an
// implicit GEMM, whose packing reads the image. op(B) is the column
// matrix [C*KH*KW, N*OH*OW], or with p.TransB its transpose, so p.K (p.N
// with TransB) is C*KH*KW and p.N (p.K) is N*OH*OW; p's B fields (OffB,
// LDB, StrideB) are unused and p.Batch is 1. The result is MatMul's on
// Im2Col's matrix, bit for bit. Called by tensor.Conv2d, ConvTranspose2d
// and their gradients on one group, in place of Im2Col and MatMul.
// Buffers: float32.
//
// ConvWeightGrad is the weight gradient on that matrix with the output
// gradient read in place: dw [K, C*KH*KW] = dy' col^T (beta 0) or dw +
// dy' col^T (beta 1), dy' = dy [N, K, OH, OW] as [K, N*OH*OW], with no
// channel-major copy of dy; MatMul's result on the copy, bit for bit.
//
// ConvPhases reports whether those GEMMs read x split into its stride
// phases (a strided convolution whose output is as wide as its input
// over the stride: vqvae-32's 4x4 stride-2 layers, patch embeddings),
// which each of them would otherwise make again from x; SplitPhases
// writes that split into sp (x's size), to pass as x with g.Phased set,
// so that a layer's forward GEMM and weight gradient share one split.
type ConvGemm interface {
	ConvMatMul(p Gemm, g Conv2D, a, x, c Buffer)
	ConvWeightGrad(g Conv2D, dw, dy, x Buffer, beta float32)
	ConvPhases(g Conv2D) bool
	SplitPhases(g Conv2D, sp, x Buffer)
}

// Winograd is the transforms of Winograd's minimal filtering F(2x2, 3x3)
// (Lavin and Gray, 2015) for a 3x3 stride-1 convolution of one group and
// no dilation (g, any padding): the output is cut into 2x2 tiles, T =
// N*ceil(OH/2)*ceil(OW/2) of them, each the product of a 4x4 input tile
// and the kernel in a 16-point transformed space, so the convolution is
// 16 GEMMs M[e] = V[e] U[e]^T (e the transformed point; [T, C] x [C, K])
// of C*K*T multiply-adds each: 16*C*K*T against 36*C*K*T for the
// direct convolution, 2.25x fewer. The transforms and their adjoints
// (the backward pass), in the layouts those GEMMs read (a tile's values
// channel-last, so that a transform works on runs of channels):
//
//   - WinogradWeight writes u [16, K, C] = G w G^T of w [K, C, 3, 3];
//     WinogradWeightGrad adds dw += G^T du G.
//   - WinogradInput writes v [16, T, C] = B^T d B of each input tile d (0
//     outside x); WinogradInputGrad adds dx += the adjoint of dv.
//   - WinogradOutput writes y [N, K, OH, OW] = A^T m A of each tile of
//     m [16, T, K], plus bias [K] (nil: none); WinogradOutputGrad writes
//     dm [16, T, K] = A dy A^T (the tiles' values past OH or OW read 0).
//
// Each [16, R, S] above is 16 matrices [R, S], point e's at e*
// WinogradStride(R*S): a few cache lines past R*S, so that the 16 values
// of a tile, which lie in 16 matrices, do not fall into the same cache
// set when R*S is a multiple of the page (4K aliasing).
//
// Tile t = (n*ceil(OH/2) + ty)*ceil(OW/2) + tx covers output rows 2ty,
// 2ty+1 and columns 2tx, 2tx+1 and reads input rows 2ty-PH .. 2ty-PH+3
// and columns 2tx-PW .. 2tx-PW+3. The result is the convolution's up to
// the transforms' float32 rounding (a few units in the last place of the
// sum of |w|*|x| the output is made of), not Im2Col and MatMul's bit for
// bit. Called by tensor.Conv2d where the shape fits, in place of the
// implicit GEMM (backend.ConvGemm). Buffers: float32.
type Winograd interface {
	WinogradWeight(K, C int, u, w Buffer)
	WinogradWeightGrad(K, C int, dw, du Buffer)
	WinogradInput(g Conv2D, v, x Buffer)
	WinogradInputGrad(g Conv2D, dx, dv Buffer)
	WinogradOutput(g Conv2D, y, m, bias Buffer)
	WinogradOutputGrad(g Conv2D, dm, dy Buffer)
}

// WinogradStride is the distance between the 16 matrices of n values
// each that backend.Winograd's transforms read and write: n plus 2 cache
// lines of float32 (32 values).
func WinogradStride(n int) int { return n + 32 }

// WinogradLen is the length of a buffer of 16 such matrices.
func WinogradLen(n int) int { return 15*WinogradStride(n) + n }

// WinogradS2 is the transforms of Winograd's F(2x2, 2x2) and F(4x4, 2x2)
// for a 4x4 stride-2 convolution of one group and no dilation (g, any
// padding; vqvae-32's downsampling convolutions, and through the adjoint
// its upsampling transposed ones). Such a convolution is a 2x2 stride-1
// convolution over the input's four stride phases taken as 4C channels
// (phase p = 2r+s holds x's rows r, r+2, ... and columns s, s+2, ... of
// the padded input; the kernel's taps (2a+r, 2b+s) are phase p's tap
// (a, b)). Each method takes the tile m, the outputs a side of a tile:
//
//   - m = 2, F(2x2, 2x2), points {0, 1, inf}, with the integer transforms
//
//     B^T = [1 -1 0; 0 1 0; 0 -1 1]
//     G   = [1 0; 1 1; 0 1]
//     A^T = [1 1 0; 0 1 1]
//
//   - m = 4, F(4x4, 2x2), points {0, 1, -1, 2, inf}, with
//
//     B^T = [2 -1 -2 1 0; 0 2 1 -1 0; 0 -2 3 -1 0; 0 1 0 -1 0; 0 2 -1 -2 1]
//     G   = [1/2 0; 1/2 1/2; 1/6 -1/6; -1/6 -1/3; 0 1]
//     A^T = [1 1 1 1 0; 0 1 -1 2 0; 0 1 1 4 0; 0 1 -1 8 1]
//
// cutting the output into m x m tiles, T = N*ceil(OH/m)*ceil(OW/m) of them,
// each the product of an (m+1) x (m+1) tile of every phase (a (2m+2) x
// (2m+2) tile of the padded input at stride 2m) and the kernel in a
// P = (m+1)^2-point transformed space, so the convolution is P GEMMs M[e]
// = V[e] U[e]^T ([T, 4C] x [4C, K]): 9*4*C*K*T multiply-adds for m = 2
// (1.78x fewer than the direct convolution's 64*C*K a tile of 4
// outputs), 25*4*C*K*T for m = 4 (16 outputs a tile: 2.56x fewer, 1.44x
// fewer than m = 2). The methods mirror Winograd's, with P points and the
// phases' 4C channels (channel p*C+c):
//
//   - WinogradS2Weight writes u [P, K, 4C] = G w_p G^T of w [K, C, 4, 4];
//     WinogradS2WeightGrad adds dw += G^T du_p G.
//   - WinogradS2Input writes v [P, T, 4C] = B^T d_p B of each phase's
//     tile d_p (0 outside x); WinogradS2InputGrad adds dx += the adjoint
//     of dv.
//   - WinogradS2Output writes y [N, K, OH, OW] = beta*y + A^T m A of each
//     tile of m [P, T, K], plus bias [K] (nil: none), beta 0 or 1;
//     WinogradS2OutputGrad writes dm [P, T, K] = A dy A^T (the tiles'
//     values past OH or OW read 0).
//
// Each [P, R, S] is P matrices [R, S], point e = (m+1)*i + j (i from the
// rows' transform, j from the columns') at e*WinogradStride(R*S) (length
// WinogradS2Len(m, R*S)). Tile t = (n*ceil(OH/m) + ty)*ceil(OW/m) + tx
// covers output rows m*ty .. m*ty+m-1 and columns m*tx .. m*tx+m-1 and
// reads input rows 2m*ty-PH .. 2m*ty-PH+2m+1 and the columns alike. The
// result is the convolution's up to float32's rounding in the transforms
// (m = 2 adds and subtracts only, each value the sum of at most 4; m =
// 4's values are larger sums, with G's thirds rounded), not Im2Col and
// MatMul's bit for bit. A transposed 4x4 stride-2 convolution is the
// input gradient of the convolution it inverts, so it runs on the same
// six transforms: OutputGrad, the GEMMs dV = dM U, InputGrad. Called by
// tensor.Conv2d and ConvTranspose2d where the shape fits, in place of the
// implicit GEMM. Buffers: float32.
type WinogradS2 interface {
	WinogradS2Weight(m, K, C int, u, w Buffer)
	WinogradS2WeightGrad(m, K, C int, dw, du Buffer)
	WinogradS2Input(g Conv2D, m int, v, x Buffer)
	WinogradS2InputGrad(g Conv2D, m int, dx, dv Buffer)
	WinogradS2Output(g Conv2D, m int, y, mt, bias Buffer, beta float32)
	WinogradS2OutputGrad(g Conv2D, m int, dm, dy Buffer)
}

// WinogradS2Points is the number of points of backend.WinogradS2's tile
// m: (m+1)^2, 9 for F(2x2, 2x2), 25 for F(4x4, 2x2).
func WinogradS2Points(m int) int { return (m + 1) * (m + 1) }

// WinogradS2Len is the length of a buffer of tile m's points matrices of
// n values each, WinogradStride(n) apart: backend.WinogradS2's layout.
func WinogradS2Len(m, n int) int { return (WinogradS2Points(m)-1)*WinogradStride(n) + n }

// BF16Products runs matrix products in bfloat16 with float32 accumulation, the
// products of mixed-precision training (train's --dtype bf16): MatMulBF16
// is MatMul with the values of op(A) and op(B) rounded to bfloat16
// (nearest, ties to even: 8 significant bits, float32's range) and their
// products summed in float32 into C, which stays float32, as do alpha and
// beta. Attention, AttentionPacked and their gradients do the same with
// Attention.BF16 set. Called by tensor's matrix products (MatMul, Linear,
// LinearCrossEntropy, Attention) in a scope with BF16 products
// (tensor.Scope.SetBF16). Buffers: float32.
type BF16Products interface {
	MatMulBF16(g Gemm, a, b, c Buffer)
}

// BatchNorm is BatchNorm2d's training pass in one kernel on x [N, C, L]
// (NCHW with L = H*W), in place of permuting to [C, N*L], a LayerNorm
// and an affine broadcast. BatchNorm writes each channel's mean and 1/std
// (biased variance, over N and L) to mean and rstd [C] and y = (x-mean)*
// rstd*w + b (w or b may be nil: 1 and 0). BatchNormGrad accumulates dx,
// dw and db (any may be nil) from dy. ChannelAffine is the evaluation
// pass without gradients: y = x*scale + shift, scale and shift [C].
// Called by tensor.BatchNorm2d. Buffers: float32.
type BatchNorm interface {
	BatchNorm(y, mean, rstd, x, w, b Buffer, N, C, L int, eps float32)
	BatchNormGrad(dx, dw, db, x, w, mean, rstd, dy Buffer, N, C, L int)
	ChannelAffine(y, x, scale, shift Buffer, N, C, L int)
}

// QuantType is the block format of a quantized buffer: ggml's, so that a
// GGUF tensor's bytes are a buffer's contents as they are.
type QuantType uint8

// The quantized formats. Both hold blocks of QuantBlock values along a
// row, each block a float16 scale d and then its values' codes.
const (
	// Q8_0: 32 int8 codes q; value = d*q (34 bytes a block).
	Q8_0 QuantType = iota + 1
	// Q4_0: 16 bytes of 4-bit codes q, byte j holding value j in its low
	// nibble and value j+16 in its high one; value = d*(q-8) (18 bytes).
	Q4_0
	// F16: IEEE float16 values, a "block" of one (2 bytes).
	F16
	// BF16: bfloat16 values, a block of one (2 bytes), as a BF16
	// safetensors or GGUF checkpoint holds them. A product with it rounds
	// the activations to bfloat16 and sums pairs in float32, as
	// BF16Products does.
	BF16
)

// QuantBlock is the number of values in a Q8_0 or Q4_0 block.
const QuantBlock = 32

// BlockSize returns the number of values in one block of t.
func (t QuantType) BlockSize() int {
	if t == F16 || t == BF16 {
		return 1
	}
	return QuantBlock
}

// BlockBytes returns the size in bytes of one block of t.
func (t QuantType) BlockBytes() int {
	switch t {
	case Q8_0:
		return 2 + QuantBlock
	case Q4_0:
		return 2 + QuantBlock/2
	case F16, BF16:
		return 2
	}
	return 0
}

func (t QuantType) String() string {
	switch t {
	case Q8_0:
		return "Q8_0"
	case Q4_0:
		return "Q4_0"
	case F16:
		return "F16"
	case BF16:
		return "BF16"
	}
	return fmt.Sprintf("QuantType(%d)", uint8(t))
}

// Quantized keeps a frozen weight matrix as Q8_0 or Q4_0 blocks (a quarter
// or an eighth of its float32 size) or float16 or bfloat16 values (half),
// a GGUF file's tensors as they are, and multiplies float32 activations by it
// with float32 accumulation. UploadQuant returns a read-only buffer of
// rows x cols values (cols a multiple of t's BlockSize) from blocks,
// rows*cols/BlockSize blocks of t in row order; it refuses a wrong length
// or a non-finite scale or value. QuantOf
// reports a buffer's format (false for a float one). A quantized buffer
// may be passed where a float32 one is read, in these places only: B of
// MatMul with Batch 1 (op(B) = B^T, a linear layer's forward pass, runs the
// quantized kernel, which may round the activations to 8 bits per block as
// llama.cpp does, Q8_0's and Q4_0's, or to bfloat16, BF16's; the other
// way, a backward pass, reads B dequantized),
// Embedding's table, Download (dequantized values) and Free. Called by
// model/gpt when it loads a GGUF file's quantized tensors, and by its
// KeepBF16 (generate and serve's --dtype bf16).
type Quantized interface {
	UploadQuant(t QuantType, rows, cols int, blocks []byte) (Buffer, error)
	QuantOf(b Buffer) (QuantType, bool)
}

var (
	mu       sync.Mutex
	registry = map[string]func() (Backend, error){}
)

// Register makes a backend available by name. Backends call it from init.
func Register(name string, open func() (Backend, error)) {
	mu.Lock()
	defer mu.Unlock()
	registry[name] = open
}

// Open returns a new backend of the named device ("cpu"; "cuda" once it is
// written). A backend registers itself when its package is imported:
// cmd/golem imports backend/cpu. Open's errors start with the name, for a
// caller to put its flag before: an unknown name is "NAME: unknown device
// (have: cpu)", listing the registered ones.
func Open(name string) (Backend, error) {
	mu.Lock()
	open, ok := registry[name]
	mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%s: unknown device (have: %s)", name, strings.Join(Names(), ", "))
	}
	be, err := open()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return be, nil
}

// Names lists the registered backends.
func Names() []string {
	mu.Lock()
	defer mu.Unlock()
	var n []string
	for k := range registry {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}
