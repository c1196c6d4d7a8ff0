package nn

import "github.com/golem-ml/golem/backend"

// MaxFrozenBytes is the bound the inference commands give FreezeBuffers:
// a frozen weight's packed copy is about as large as the weight (the CPU
// backend's, made on the first product with several rows that reads it),
// so freezing up to 2 GiB of float32 weights (a 0.5B model: 494M
// parameters, 1.98 GB) costs up to 2 GiB more; a larger model is left
// unfrozen, as before. Serve freezes without bound (no limit).
const MaxFrozenBytes = 2 << 30

// FreezeBuffers declares that the values of params stay fixed from now
// until thaw is called, on a backend with backend.Freezer (the CPU keeps
// each weight packed the way its matrix products read it, instead of
// packing it again at every product). This is not Freeze, which only
// stops gradients: a frozen buffer must not be written (an optimizer
// step, a merge, a load into it) before thaw. When the parameters' float32
// bytes pass limit (limit > 0), nothing is frozen. thaw drops the packed
// copies; it is never nil and may be called more than once.
func FreezeBuffers(params []Named, limit int64) (thaw func(), frozen bool) {
	if len(params) == 0 {
		return func() {}, false
	}
	fz, ok := params[0].Tensor.Backend().(backend.Freezer)
	if !ok {
		return func() {}, false
	}
	var bytes int64
	for _, p := range params {
		bytes += 4 * int64(p.Tensor.Len())
	}
	if limit > 0 && bytes > limit {
		return func() {}, false
	}
	bufs := make([]backend.Buffer, 0, len(params))
	for _, p := range params {
		if p.Tensor.Backend() != params[0].Tensor.Backend() {
			continue // a parameter on another backend keeps its own form
		}
		b := p.Tensor.Buffer()
		fz.Freeze(b)
		bufs = append(bufs, b)
	}
	return func() {
		for _, b := range bufs {
			fz.Thaw(b)
		}
		bufs = nil
	}, true
}
