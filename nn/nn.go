// Package nn holds the layers models are built from, and the walk that names
// their parameters. A layer is a plain struct whose *tensor.Tensor fields are
// its parameters; the `nn:"name"` tag gives each field its checkpoint name,
// so a model's parameter names are the ones Hugging Face checkpoints use
// (transformer.h.0.attn.c_attn.weight).
package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/tensor"
)

// Named is a parameter and its full dotted name.
type Named struct {
	Name   string
	Tensor *tensor.Tensor
}

// Params walks a module (a pointer to a struct) and returns its parameters
// in field order. Fields tagged `nn:"name"` are visited: tensors are
// parameters (nil ones are skipped), structs and pointers recurse with
// "name." as prefix, slices with "name.i.". A tag "-" or no tag skips.
func Params(module any) []Named {
	var out []Named
	walk(reflect.ValueOf(module), "", func(name string, v reflect.Value) bool {
		t, ok := v.Interface().(*tensor.Tensor)
		if ok {
			out = append(out, Named{Name: name, Tensor: t})
		}
		return ok
	})
	return out
}

// NamedLinear is a linear layer and its full dotted module name.
type NamedLinear struct {
	Name   string
	Linear *Linear
}

// Linears walks a module as Params does and returns its linear layers
// under their module names ("model.layers.0.self_attn.q_proj"), in field
// order: the modules LoRA can target.
func Linears(module any) []NamedLinear {
	var out []NamedLinear
	walk(reflect.ValueOf(module), "", func(name string, v reflect.Value) bool {
		l, ok := v.Interface().(*Linear)
		if ok {
			out = append(out, NamedLinear{Name: name, Linear: l})
		}
		return ok
	})
	return out
}

// walk visits the non-nil pointers of a module's tagged fields; visit
// returns true for a leaf (not walked into).
func walk(v reflect.Value, prefix string, visit func(name string, v reflect.Value) bool) {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return
		}
		if v.Kind() == reflect.Pointer && visit(trimDot(prefix), v) {
			return
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			tag, ok := t.Field(i).Tag.Lookup("nn")
			if !ok || tag == "-" || !t.Field(i).IsExported() {
				continue
			}
			p := prefix + tag + "."
			if tag == "" {
				p = prefix
			}
			walk(v.Field(i), p, visit)
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			walk(v.Index(i), prefix+strconv.Itoa(i)+".", visit)
		}
	}
}

func trimDot(s string) string {
	if len(s) > 0 && s[len(s)-1] == '.' {
		return s[:len(s)-1]
	}
	return s
}

// Trainable returns the parameters that require gradients.
func Trainable(ps []Named) []Named {
	var out []Named
	for _, p := range ps {
		if p.Tensor.RequiresGrad() {
			out = append(out, p)
		}
	}
	return out
}

// Count returns the number of values in ps.
func Count(ps []Named) int {
	n := 0
	for _, p := range ps {
		n += p.Tensor.Len()
	}
	return n
}

// Freeze marks every parameter of module as not trainable.
func Freeze(module any) {
	for _, p := range Params(module) {
		p.Tensor.SetRequiresGrad(false)
	}
}

// Replace makes w the parameter *p and gives the one it held back to the
// backend: a layer whose weight changes form (a vocabulary grown, a matrix
// read quantized) after it was made.
func Replace(p **tensor.Tensor, w *tensor.Tensor) {
	old := *p
	*p = w
	if old != nil && old != w {
		old.Free()
	}
}

// Init creates parameters with a seeded generator.
type Init struct {
	Backend backend.Backend
	Rand    *rand.Rand
	Zero    bool // make every tensor zero (for models about to be loaded)
	// Placeholders makes every tensor a tensor.Placeholder, which holds
	// no memory until it is set: a model about to be loaded one tensor at
	// a time (a matrix may be replaced by a bfloat16 one without ever
	// being float32).
	Placeholders bool
}

// NewInit returns an initialiser seeded with seed.
func NewInit(be backend.Backend, seed uint64) *Init {
	return &Init{Backend: be, Rand: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Normal returns a trainable tensor drawn from N(0, std^2).
func (in *Init) Normal(std float64, shape ...int) *tensor.Tensor {
	n := 1
	for _, s := range shape {
		n *= s
	}
	if in.Placeholders {
		return tensor.Placeholder(in.Backend, shape...).SetRequiresGrad(true)
	}
	if in.Zero {
		return tensor.New(in.Backend, shape...).SetRequiresGrad(true)
	}
	d := make([]float32, n)
	for i := range d {
		d[i] = float32(in.Rand.NormFloat64() * std)
	}
	return tensor.FromHost(in.Backend, d, shape...).SetRequiresGrad(true)
}

// Const returns a trainable tensor filled with v.
func (in *Init) Const(v float32, shape ...int) *tensor.Tensor {
	if in.Placeholders {
		return tensor.Placeholder(in.Backend, shape...).SetRequiresGrad(true)
	}
	t := tensor.New(in.Backend, shape...)
	if v != 0 {
		in.Backend.Fill(t.Buffer(), v)
	}
	return t.SetRequiresGrad(true)
}

// Linear is y = x W^T + b with W [out, in], PyTorch's layout. With InOut
// the weight is stored [in, out] (GPT-2's Conv1D), so checkpoints load
// without a transpose. LoRA, if set, adds its low-rank update.
type Linear struct {
	Weight *tensor.Tensor `nn:"weight"`
	Bias   *tensor.Tensor `nn:"bias"`
	InOut  bool
	LoRA   *LoRA `nn:"-"`
}

// NewLinear makes a Linear with N(0, std) weights and zero bias (if bias).
func NewLinear(in *Init, inF, outF int, bias bool, std float64) *Linear {
	l := &Linear{Weight: in.Normal(std, outF, inF)}
	if bias {
		l.Bias = in.Const(0, outF)
	}
	return l
}

// Forward applies the layer to x [..., in].
func (l *Linear) Forward(x *tensor.Tensor) *tensor.Tensor {
	var y *tensor.Tensor
	if l.InOut {
		y = tensor.LinearInOut(x, l.Weight, l.Bias)
	} else {
		y = tensor.Linear(x, l.Weight, l.Bias)
	}
	if l.LoRA != nil && !l.LoRA.Off {
		y = tensor.Add(y, l.LoRA.Forward(x))
	}
	return y
}

// OutFeatures returns the output width.
func (l *Linear) OutFeatures() int {
	if l.InOut {
		return l.Weight.Dim(1)
	}
	return l.Weight.Dim(0)
}

// InFeatures returns the input width.
func (l *Linear) InFeatures() int {
	if l.InOut {
		return l.Weight.Dim(0)
	}
	return l.Weight.Dim(1)
}

// LoRA is a low-rank update (alpha/r) * B A x with A [r, in], B [out, r]
// (PEFT's lora_A / lora_B), B starting at zero so training starts from the
// base model.
type LoRA struct {
	A       *tensor.Tensor `nn:"lora_A.weight"`
	B       *tensor.Tensor `nn:"lora_B.weight"`
	Scale   float32
	Dropout float32
	Seed    uint64 // advanced by the trainer for fresh dropout masks
	// Off leaves the update out: the layer computes its base function
	// (a LoRA stage's frozen reference is its policy with the adapters off).
	Off bool
}

// NewLoRA makes a LoRA of rank r for a layer of the given widths, with A
// drawn like PEFT's default (Kaiming-uniform, a=sqrt 5) and B zero.
func NewLoRA(in *Init, inF, outF, r int, alpha float64, dropout float32) *LoRA {
	bound := 1 / math.Sqrt(float64(inF))
	d := make([]float32, r*inF)
	for i := range d {
		d[i] = float32((in.Rand.Float64()*2 - 1) * bound)
	}
	return &LoRA{
		A:       tensor.FromHost(in.Backend, d, r, inF).SetRequiresGrad(true),
		B:       in.Const(0, outF, r),
		Scale:   float32(alpha / float64(r)),
		Dropout: dropout,
	}
}

// Forward returns the update for x.
func (l *LoRA) Forward(x *tensor.Tensor) *tensor.Tensor {
	if l.Dropout > 0 && tensor.GradEnabled() {
		x = tensor.Dropout(x, l.Dropout, l.Seed)
	}
	return tensor.Scale(tensor.Linear(tensor.Linear(x, l.A, nil), l.B, nil), l.Scale)
}

// Embedding maps ids to rows of Weight [V, C].
type Embedding struct {
	Weight *tensor.Tensor `nn:"weight"`
}

// Forward returns [B, T, C] for ids of B rows of T.
func (e *Embedding) Forward(ids []int32, B, T int) *tensor.Tensor {
	if len(ids) != B*T {
		panic(fmt.Sprintf("nn: embedding of %d ids as %dx%d", len(ids), B, T))
	}
	return tensor.Reshape(tensor.Embedding(e.Weight, ids), B, T, -1)
}

// LayerNorm normalises the last dim, with optional bias.
type LayerNorm struct {
	Weight *tensor.Tensor `nn:"weight"`
	Bias   *tensor.Tensor `nn:"bias"`
	Eps    float32
}

// NewLayerNorm makes a LayerNorm with weight 1 and, if bias, bias 0.
func NewLayerNorm(in *Init, c int, bias bool, eps float32) *LayerNorm {
	l := &LayerNorm{Weight: in.Const(1, c), Eps: eps}
	if bias {
		l.Bias = in.Const(0, c)
	}
	return l
}

// Forward normalises x.
func (l *LayerNorm) Forward(x *tensor.Tensor) *tensor.Tensor {
	return tensor.LayerNorm(x, l.Weight, l.Bias, l.Eps)
}

// RMSNorm normalises the last dim by its root mean square.
type RMSNorm struct {
	Weight *tensor.Tensor `nn:"weight"`
	Eps    float32
}

// NewRMSNorm makes an RMSNorm with weight 1.
func NewRMSNorm(in *Init, c int, eps float32) *RMSNorm {
	return &RMSNorm{Weight: in.Const(1, c), Eps: eps}
}

// Forward normalises x.
func (l *RMSNorm) Forward(x *tensor.Tensor) *tensor.Tensor {
	return tensor.RMSNorm(x, l.Weight, l.Eps)
}

// SoftPrompt is prompt tuning: N trainable virtual token embeddings put
// before the input embeddings of a frozen model.
type SoftPrompt struct {
	Weight *tensor.Tensor `nn:"prompt_embeddings"`
}

// NewSoftPrompt makes n virtual tokens of width c, initialised from rows of
// a vocabulary embedding (as the prompt-tuning paper does) when vocab is not
// nil, else N(0, 0.02).
func NewSoftPrompt(in *Init, n, c int, vocab *tensor.Tensor) *SoftPrompt {
	if vocab == nil {
		return &SoftPrompt{Weight: in.Normal(0.02, n, c)}
	}
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(in.Rand.IntN(vocab.Dim(0)))
	}
	var w *tensor.Tensor
	tensor.NoGrad(func() { w = tensor.Embedding(vocab, ids).Detach() })
	return &SoftPrompt{Weight: w.SetRequiresGrad(true)}
}

// Batch returns the virtual tokens repeated for B rows, [B, N, C]: the
// embeddings a model puts before its token embeddings (gpt.Options.Embeds).
func (s *SoftPrompt) Batch(B int) *tensor.Tensor {
	p := tensor.Reshape(s.Weight, 1, s.Weight.Dim(0), s.Weight.Dim(1))
	if B == 1 {
		return p
	}
	parts := make([]*tensor.Tensor, B)
	for i := range parts {
		parts[i] = p
	}
	return tensor.Concat(0, parts...)
}

// Prepend puts the virtual tokens before x [B, T, C], giving [B, N+T, C].
func (s *SoftPrompt) Prepend(x *tensor.Tensor) *tensor.Tensor {
	B := x.Dim(0)
	n, c := s.Weight.Dim(0), s.Weight.Dim(1)
	p := tensor.Reshape(s.Weight, 1, n, c)
	parts := make([]*tensor.Tensor, 0, B)
	for b := 0; b < B; b++ {
		parts = append(parts, tensor.Concat(1, p, tensor.Slice(x, 0, b, b+1)))
	}
	if B == 1 {
		return parts[0]
	}
	return tensor.Concat(0, parts...)
}

// Share returns a copy of module (a pointer to a struct of layers, or any
// value holding them) whose layers are new values holding the same
// parameter tensors: what is set on a copy's layer (a LoRA on a Linear) is
// not the original's, and the weights are in memory once. seen maps each
// original pointer to its copy, so that a layer two fields point to is one
// layer in the copy too; pass the same map for every part of one model.
// Unexported fields are copied as they are.
func Share[T any](module T, seen map[any]any) T {
	return shareValue(reflect.ValueOf(&module).Elem(), seen).Interface().(T)
}

var tensorType = reflect.TypeFor[*tensor.Tensor]()

func shareValue(v reflect.Value, seen map[any]any) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() || v.Type() == tensorType {
			return v
		}
		key := v.Interface()
		if c, ok := seen[key]; ok {
			return reflect.ValueOf(c)
		}
		c := reflect.New(v.Type().Elem())
		seen[key] = c.Interface()
		c.Elem().Set(shareValue(v.Elem(), seen))
		return c
	case reflect.Interface:
		if v.IsNil() {
			return v
		}
		c := reflect.New(v.Type()).Elem()
		c.Set(shareValue(v.Elem(), seen))
		return c
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			c.Index(i).Set(shareValue(v.Index(i), seen))
		}
		return c
	case reflect.Struct:
		c := reflect.New(v.Type()).Elem()
		c.Set(v)
		for i := range v.NumField() {
			if f := c.Field(i); f.CanSet() {
				f.Set(shareValue(v.Field(i), seen))
			}
		}
		return c
	}
	return v
}
