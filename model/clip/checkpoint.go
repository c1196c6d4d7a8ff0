package clip

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/model/vit"
	"github.com/golem-ml/golem/model/weights"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/safetensors"
)

// Load reads a Hugging Face CLIPModel folder (config.json and
// model.safetensors, or a sharded index). As model/vit's Load: every
// parameter present with its shape and no other tensor; config.json's
// sizes checked against the checkpoint's header before anything is
// allocated; NaN or infinite weights refused; a checkpoint rewritten
// while it was read is an error.
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
	if err := checkHeader(c, st, st.Name()); err != nil {
		return nil, fmt.Errorf("clip: %s: %w", filepath.Join(dir, "config.json"), err)
	}
	in := nn.NewInit(be, 0)
	in.Zero = true
	m, err := build(be, *c, in, 0)
	if err != nil {
		return nil, err
	}
	// transformers before 4.31 kept position_ids buffers in checkpoints.
	buffer := func(n string) bool { return filepath.Ext(n) == ".position_ids" }
	if err := weights.Fill(st, m.Params(), dir, buffer); err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	return m, st.Changed()
}

// checkHeader checks c's sizes against the checkpoint's header, as
// model/vit's CheckHeader does for the vision tower.
func checkHeader(c *Config, st weights.Source, file string) error {
	if err := vit.CheckHeader(&c.Vision, st, file, ""); err != nil {
		return fmt.Errorf("vision_config: %w", err)
	}
	t := &c.Text
	if n := weights.Layers(st, "text_model.encoder.layers.", maxLayers); n != t.Layers {
		return fmt.Errorf("text_config \"num_hidden_layers\" is %d, but %s has %d text layers", t.Layers, file, n)
	}
	return weights.CheckHeader(st, file, []weights.Expect{
		{Name: "text_model.embeddings.token_embedding.weight", Shape: []int{t.Vocab, t.Hidden}, Fields: "text_config \"vocab_size\" and \"hidden_size\""},
		{Name: "text_model.embeddings.position_embedding.weight", Shape: []int{t.Context, t.Hidden}, Fields: "text_config \"max_position_embeddings\" and \"hidden_size\""},
		{Name: "text_model.encoder.layers.0.mlp.fc1.weight", Shape: []int{t.Intermediate, t.Hidden}, Fields: "text_config \"intermediate_size\" and \"hidden_size\""},
		{Name: "text_projection.weight", Shape: []int{c.Projection, t.Hidden}, Fields: "\"projection_dim\" and text_config \"hidden_size\""},
		{Name: "visual_projection.weight", Shape: []int{c.Projection, c.Vision.Hidden}, Fields: "\"projection_dim\" and vision_config \"hidden_size\""},
	})
}

// Save writes config.json and model.safetensors into dir (created if
// needed), each atomically: a folder transformers loads as CLIPModel.
func (m *Model) Save(dir string) error {
	cj, err := m.Config.JSON()
	if err != nil {
		return err
	}
	return weights.SaveFolder(dir, json.RawMessage(cj), m.Params())
}
