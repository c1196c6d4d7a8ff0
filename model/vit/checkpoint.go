package vit

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/model/weights"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/safetensors"
)

// Load reads a Hugging Face model folder of one of the layouts
// (config.json and model.safetensors, or a sharded index): ViTModel
// (with its pooler if the checkpoint has one), ViTMAEForPreTraining or
// CLIPVisionModel. As model/gpt's Load: every parameter must be present
// with its shape and no other tensor may be; config.json's sizes are
// checked against the checkpoint's header before anything is allocated;
// NaN or infinite weights are refused; a checkpoint rewritten while it
// was read is an error.
func Load(be backend.Backend, dir string) (*Model, error) {
	c, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	st, err := safetensors.OpenModel(dir)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if c.Arch == ViT {
		_, c.Pooler = st.Info("pooler.dense.weight")
	}
	if err := CheckHeader(c, st, st.Name(), ""); err != nil {
		return nil, fmt.Errorf("vit: %s: %w", filepath.Join(dir, "config.json"), err)
	}
	in := nn.NewInit(be, 0)
	in.Zero = true
	m, err := Build(be, *c, in, 0)
	if err != nil {
		return nil, err
	}
	if err := weights.Fill(st, m.Params(), dir, nil); err != nil {
		return nil, fmt.Errorf("vit: %w", err)
	}
	return m, st.Changed()
}

// CheckHeader checks c's sizes against the shapes of the checkpoint's
// header (file names it in errors), the tensors' names starting with
// prefix (CLIPModel's vision tower is the CLIP layout's names): every
// size that scales the model's memory is seen in a tensor (or bounded by
// Validate through one that is), so a config that passes allocates no
// more than the weights file holds.
func CheckHeader(c *Config, st weights.Source, file, prefix string) error {
	H, N := c.Hidden, c.Patches()
	patch := []int{H, c.Channels, c.Patch, c.Patch}
	const pf = "\"hidden_size\", \"num_channels\" and \"patch_size\""
	const posf = "\"hidden_size\", \"image_size\" and \"patch_size\""
	const mlpf = "\"hidden_size\" and \"intermediate_size\""
	var layerPrefix string
	var want []weights.Expect
	switch c.Arch {
	case CLIP:
		p := prefix + "vision_model."
		layerPrefix = p + "encoder.layers."
		want = []weights.Expect{
			{Name: p + "embeddings.patch_embedding.weight", Shape: patch, Fields: pf},
			{Name: p + "embeddings.position_embedding.weight", Shape: []int{N + 1, H}, Fields: posf},
			{Name: layerPrefix + "0.mlp.fc1.weight", Shape: []int{c.Intermediate, H}, Fields: mlpf},
		}
	case ViT, MAE:
		p := prefix
		if c.Arch == MAE {
			p += "vit."
		}
		layerPrefix = p + "encoder.layer."
		want = []weights.Expect{
			{Name: p + "embeddings.patch_embeddings.projection.weight", Shape: patch, Fields: pf},
			{Name: p + "embeddings.position_embeddings", Shape: []int{1, N + 1, H}, Fields: posf},
			{Name: layerPrefix + "0.intermediate.dense.weight", Shape: []int{c.Intermediate, H}, Fields: mlpf},
		}
	}
	if n := weights.Layers(st, layerPrefix, maxLayers); n != c.Layers {
		return fmt.Errorf("\"num_hidden_layers\" is %d, but %s has %d layers", c.Layers, file, n)
	}
	if c.Arch == MAE {
		D := c.DecoderHidden
		p := prefix + "decoder."
		if n := weights.Layers(st, p+"decoder_layers.", maxLayers); n != c.DecoderLayers {
			return fmt.Errorf("\"decoder_num_hidden_layers\" is %d, but %s has %d decoder layers", c.DecoderLayers, file, n)
		}
		want = append(want,
			weights.Expect{Name: p + "decoder_embed.weight", Shape: []int{D, H}, Fields: "\"hidden_size\" and \"decoder_hidden_size\""},
			weights.Expect{Name: p + "decoder_layers.0.intermediate.dense.weight", Shape: []int{c.DecoderIntermediate, D}, Fields: "\"decoder_hidden_size\" and \"decoder_intermediate_size\""},
			weights.Expect{Name: p + "decoder_pred.weight", Shape: []int{c.PatchDim(), D}, Fields: "\"decoder_hidden_size\", \"num_channels\" and \"patch_size\""},
		)
	}
	return weights.CheckHeader(st, file, want)
}

// Save writes config.json and model.safetensors into dir (created if
// needed), each atomically: a folder transformers loads as ViTModel,
// ViTMAEForPreTraining or CLIPVisionModel.
func (m *Model) Save(dir string) error {
	cj, err := m.Config.JSON()
	if err != nil {
		return err
	}
	return weights.SaveFolder(dir, json.RawMessage(cj), m.Params())
}
