package gguf

// Layout changes between Hugging Face checkpoints and llama.cpp's tensors,
// as convert_hf_to_gguf.py makes them and golem undoes them.

// PermuteRoPE is convert_hf_to_gguf.py's LlamaModel.permute for a weight
// of heads*hd rows of row elements each (a bias: 1; a quantized row: its
// bytes), from transformers' rotate-half RoPE layout to llama.cpp's
// adjacent pairs:
//
//	w.reshape(heads, 2, hd/2, cols).swapaxes(1, 2).reshape(w.shape)
//
// so that row h*hd + 2i + j is the old row h*hd + j*hd/2 + i. With inverse
// it undoes that.
func PermuteRoPE[T any](x []T, heads, hd, row int, inverse bool) []T {
	y := make([]T, len(x))
	for h := range heads {
		for i := range hd / 2 {
			for j := range 2 {
				dst, src := (h*hd+2*i+j)*row, (h*hd+j*hd/2+i)*row
				if inverse {
					dst, src = src, dst
				}
				copy(y[dst:dst+row], x[src:src+row])
			}
		}
	}
	return y
}

// Transpose returns a row-major [rows, cols] matrix as [cols, rows]
// (GPT-2's Conv1D [in, out] weights and llama.cpp's [out, in] ones).
func Transpose[T any](x []T, rows, cols int) []T {
	y := make([]T, len(x))
	for i := range rows {
		for j := range cols {
			y[j*rows+i] = x[i*cols+j]
		}
	}
	return y
}
