package gpt

import (
	"encoding/binary"
	"fmt"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/gguf"
	"github.com/golem-ml/golem/model/weights"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/safetensors"
	"github.com/golem-ml/golem/tensor"
)

// bfloat16 inference (generate and serve's --dtype bf16): the weights of
// the linear layers and of an untied head as backend.BF16 buffers, half
// their float32 bytes, multiplied by the bf16 kernel (the activations
// rounded to bfloat16, float32 sums). Embeddings, norms and biases stay
// float32. LoadBF16 reads them so from a model folder, a BF16 checkpoint's
// bytes as they are and a float32 or float16 one's matrices rounded one
// at a time; KeepBF16 turns a loaded model's float32 matrices into them.

// LoadBF16 is Load for bfloat16 inference: the matrices of the linear
// layers (and of an untied head) go straight into bfloat16 buffers as
// they are read, one tensor at a time, so the model is never in float32
// whole (loading holds the bfloat16 model and one matrix being read); the
// result is KeepBF16's after Load, bit for bit. A GGUF model keeps its
// quantized matrices as Load does, and its F32 ones are rounded.
func LoadBF16(be backend.Backend, dir string) (*Model, error) { return loadModel(be, dir, true) }

// KeepBF16 replaces the float32 weights of the model's linear layers (and
// of an untied head) by bfloat16 buffers on the backend, for inference: a
// BF16 checkpoint's matrices as it holds them, a float32 one's rounded to
// nearest even. The model can then no longer be trained, only adapted
// through LoRA (Quantized lists the matrices). It returns how many
// matrices it replaced.
func (m *Model) KeepBF16() (int, error) {
	qb, err := bf16Backend(m.Embed.Weight.Backend())
	if err != nil {
		return 0, err
	}
	n := 0
	for _, l := range m.matrices() {
		if _, q := qb.QuantOf(l.Linear.Weight.Buffer()); q {
			continue
		}
		if err := setBF16(qb, l, outIn(l.Linear, l.Linear.Weight.Host())); err != nil {
			return n, fmt.Errorf("gpt: %w", err)
		}
		n++
	}
	return n, nil
}

// matrices returns the linear layers whose weights bfloat16 inference
// keeps as bfloat16: the body's and an untied head.
func (m *Model) matrices() []nn.NamedLinear {
	ls := nn.Linears(m.Body)
	if m.Head != nil {
		ls = append(ls, nn.NamedLinear{Name: "lm_head", Linear: m.Head})
	}
	return ls
}

func bf16Backend(be backend.Backend) (backend.Quantized, error) {
	qb, ok := be.(backend.Quantized)
	if !ok {
		return nil, fmt.Errorf("gpt: backend %s cannot keep bfloat16 weights", be.Name())
	}
	return qb, nil
}

// outIn returns vals, values of l's weight as it stores them, as [out,
// in] (a Conv1D's [in, out] transposed).
func outIn[T any](l *nn.Linear, vals []T) []T {
	if l.InOut {
		return gguf.Transpose(vals, l.InFeatures(), l.OutFeatures())
	}
	return vals
}

// setBF16 replaces l's weight by vals, its [out, in] values, rounded to
// bfloat16.
func setBF16(qb backend.Quantized, l nn.NamedLinear, vals []float32) error {
	raw, err := gguf.Quantize(gguf.BF16, vals)
	if err != nil {
		return fmt.Errorf("%s.weight: %w", l.Name, err)
	}
	return putBF16(qb, l, raw)
}

// putBF16 replaces l's weight by raw, its [out, in] values as bfloat16
// (little-endian, a BF16 tensor's bytes).
func putBF16(qb backend.Quantized, l nn.NamedLinear, raw []byte) error {
	rows, cols := l.Linear.OutFeatures(), l.Linear.InFeatures()
	buf, err := qb.UploadQuant(backend.BF16, rows, cols, raw)
	if err != nil {
		return fmt.Errorf("%s.weight: %w", l.Name, err)
	}
	nn.Replace(&l.Linear.Weight, tensor.FromBuffer(l.Linear.Weight.Backend(), buf, rows, cols))
	l.Linear.InOut = false
	return nil
}

// readBF16 reads the model's matrices from st into bfloat16 buffers, one
// at a time: a BF16 tensor's bytes as they are, another dtype's values
// rounded (NaN and infinite values refused). It returns their names.
func (m *Model) readBF16(st *safetensors.Model, where string) (map[string]bool, error) {
	qb, err := bf16Backend(m.Embed.Weight.Backend())
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, l := range m.matrices() {
		name := l.Name + ".weight"
		names[name] = true
		if err := weights.Check(st, name, l.Linear.Weight.Shape(), where); err != nil {
			return nil, fmt.Errorf("gpt: %w", err)
		}
		if info, _ := st.Info(name); info.DType == safetensors.BF16 {
			var raw []byte
			if raw, _, err = st.Raw(name); err != nil {
				return nil, fmt.Errorf("gpt: %w", err)
			}
			if l.Linear.InOut {
				raw = transposeBF16(raw, l.Linear)
			}
			err = putBF16(qb, l, raw)
		} else {
			var vals []float32
			if vals, _, err = st.Float32(name); err != nil {
				return nil, fmt.Errorf("gpt: %w", err)
			}
			if err := weights.Finite(vals, where, name); err != nil {
				return nil, fmt.Errorf("gpt: %w", err)
			}
			err = setBF16(qb, l, outIn(l.Linear, vals))
		}
		if err != nil {
			return nil, fmt.Errorf("gpt: %s: %w", where, err)
		}
	}
	return names, nil
}

// transposeBF16 returns raw, a Conv1D's [in, out] weight as bfloat16
// bytes, as [out, in].
func transposeBF16(raw []byte, l *nn.Linear) []byte {
	h := make([]uint16, len(raw)/2)
	for i := range h {
		h[i] = binary.LittleEndian.Uint16(raw[2*i:])
	}
	h = outIn(l, h)
	out := make([]byte, len(raw))
	for i, v := range h {
		binary.LittleEndian.PutUint16(out[2*i:], v)
	}
	return out
}
