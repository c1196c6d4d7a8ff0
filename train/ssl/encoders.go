package ssl

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/internal/atomicfile"
	"github.com/golem-ml/golem/model/resnet"
	"github.com/golem-ml/golem/model/vit"
	"github.com/golem-ml/golem/model/weights"
	"github.com/golem-ml/golem/nn"
)

// The encoders: model/resnet's presets ("tiny", "small"), the conv
// encoder for the methods designed on one (SimCLR, BYOL, colorization,
// inpainting), and "vit-tiny", a ViT (model/vit) for MAE and MoCo v3,
// which were designed on ViTs.

// vitTiny is the ViT "vit-tiny" builds for c-channel s×s images: 4×4
// patches, width 64, 4 blocks of 4 heads, MLP 256 (0.2M parameters); for
// MAE, transformers' ViTMAE layout with a decoder of 2 blocks at width 64,
// mask ratio 0.75 and the normalised-pixel loss.
func vitTiny(c, s int, mae bool) vit.Config {
	cfg := vit.Config{Arch: vit.ViT, Image: s, Patch: 4, Channels: c, Hidden: 64, Layers: 4, Heads: 4,
		Intermediate: 256, Activation: "gelu", Eps: 1e-6, QKVBias: true}
	if mae {
		cfg.Arch = vit.MAE
		cfg.DecoderHidden, cfg.DecoderLayers, cfg.DecoderHeads, cfg.DecoderIntermediate = 64, 2, 4, 256
		cfg.MaskRatio, cfg.NormPixLoss = 0.75, true
	}
	return cfg
}

// Configs lists the encoder names NewEncoder takes.
func Configs() []string {
	n := append(resnet.PresetNames(), "vit-tiny")
	sort.Strings(n)
	return n
}

// NewEncoder returns a freshly initialised encoder named config (Configs)
// for c-channel h×w images, as method trains it (MAE gets the ViT with its
// decoder).
func NewEncoder(be backend.Backend, config, method string, c, h, w int, seed uint64) (Encoder, error) {
	if config == "vit-tiny" {
		if h != w || h%4 != 0 {
			return nil, fmt.Errorf("ssl: vit-tiny takes square images whose side is a multiple of its 4-pixel patch (these are %dx%d; add a resize or crop)", w, h)
		}
		m, err := vit.New(be, vitTiny(c, h, method == "mae"), seed)
		if err != nil {
			return nil, err
		}
		return &vitEncoder{Model: m, seed: seed, seeded: true}, nil
	}
	rc, ok := resnet.Presets()[config]
	if !ok {
		return nil, fmt.Errorf("ssl: unknown encoder --config %q (have %s)", config, strings.Join(Configs(), ", "))
	}
	rc.Channels, rc.ImageSize = c, h
	return resnet.New(be, rc, seed)
}

// vitEncoder is a model/vit ViT as an Encoder: its features are the class
// token after the final norm.
type vitEncoder struct {
	*vit.Model
	seed   uint64 // its initialisation's seed (pretrainFile), if seeded
	seeded bool
}

func (v *vitEncoder) Dim() int            { return v.Config.Hidden }
func (v *vitEncoder) InputChannels() int  { return v.Config.Channels }
func (v *vitEncoder) SetTraining(on bool) {} // no dropout or BatchNorm

// pretrainFile records, beside the encoder, how Pretrain made it: the
// random-init baseline needs the seed of its initialisation.
const pretrainFile = "pretrain.json"

type pretrainRecord struct {
	Method   string `json:"method"`
	Config   string `json:"config"`
	Data     string `json:"data"`
	Steps    int    `json:"steps"`
	InitSeed uint64 `json:"init_seed"`
}

func writeRecord(dir string, r pretrainRecord) error {
	b, _ := json.MarshalIndent(r, "", "  ")
	return atomicfile.WriteFile(filepath.Join(dir, pretrainFile), append(b, '\n'))
}

// LoadEncoder reads the encoder in the model folder dir: a model/resnet
// folder, or a model/vit one (ViT or ViTMAE).
func LoadEncoder(be backend.Backend, dir string) (Encoder, error) {
	modelType, err := weights.ModelType(filepath.Join(dir, weights.ConfigFile))
	if err != nil {
		return nil, fmt.Errorf("ssl: %w", err)
	}
	switch modelType {
	case resnet.ModelType:
		return resnet.Load(be, dir)
	case vit.ViT, vit.MAE:
		m, err := vit.Load(be, dir)
		if err != nil {
			return nil, err
		}
		v := &vitEncoder{Model: m}
		if rb, err := os.ReadFile(filepath.Join(dir, pretrainFile)); err == nil {
			var r pretrainRecord
			if err := json.Unmarshal(rb, &r); err != nil {
				return nil, fmt.Errorf("ssl: %s: %w", filepath.Join(dir, pretrainFile), err)
			}
			v.seed, v.seeded = r.InitSeed, true
		}
		return v, nil
	}
	return nil, fmt.Errorf("ssl: %s: model_type %q is not an image encoder golem trains (%s, %s or %s)", filepath.Join(dir, weights.ConfigFile), modelType, resnet.ModelType, vit.ViT, vit.MAE)
}

// RandomInit returns enc's architecture freshly initialised with the seed
// enc was initialised with: the random-initialisation baseline a probe
// reports beside a trained encoder.
func RandomInit(enc Encoder) (Encoder, error) {
	switch m := enc.(type) {
	case *resnet.Model:
		return resnet.New(m.Params()[0].Tensor.Backend(), m.Config, m.Config.Seed)
	case *vitEncoder:
		if !m.seeded {
			return nil, fmt.Errorf("ssl: the ViT has no %s saying its initialisation's seed (it was not written by golem vision pretrain): no random-init baseline", pretrainFile)
		}
		v, err := vit.New(m.Params()[0].Tensor.Backend(), m.Config, m.seed)
		return &vitEncoder{Model: v, seed: m.seed, seeded: true}, err
	}
	return nil, fmt.Errorf("ssl: no random initialisation for %T", enc)
}

// cloneEncoder returns a copy of enc with its own parameters (a momentum or
// EMA target).
func cloneEncoder(enc Encoder) Encoder {
	switch m := enc.(type) {
	case *resnet.Model:
		return m.Clone()
	case *vitEncoder:
		in := nn.NewInit(m.Params()[0].Tensor.Backend(), 0)
		in.Zero = true
		c, err := vit.Build(m.Params()[0].Tensor.Backend(), m.Config, in, m.seed)
		if err != nil {
			panic(err) // the config built enc
		}
		copyParams(c.Params(), m.Params())
		return &vitEncoder{Model: c, seed: m.seed, seeded: m.seeded}
	}
	panic(fmt.Sprintf("ssl: cannot copy a %T", enc))
}

// describe names an encoder's architecture for the report.
func describe(enc Encoder) string {
	switch m := enc.(type) {
	case *resnet.Model:
		c := m.Config
		return fmt.Sprintf("ResNet, stages %v wide of %v basic blocks, %s norm, %d input channels", c.Widths, c.Depths, c.Norm, c.Channels)
	case *vitEncoder:
		c := m.Config
		return fmt.Sprintf("ViT (%s), %d wide, %d blocks of %d heads, %dx%d patches, %d input channels", c.Arch, c.Hidden, c.Layers, c.Heads, c.Patch, c.Patch, c.Channels)
	}
	return fmt.Sprintf("%T", enc)
}

// copyParams copies src's values into dst (the same module's layout).
func copyParams(dst, src []nn.Named) {
	for i, p := range src {
		dst[i].Tensor.CopyFrom(p.Tensor)
		dst[i].Tensor.SetRequiresGrad(p.Tensor.RequiresGrad())
	}
}
