"""Make golden fixtures for model/vit with Hugging Face transformers (random-init tiny models).

The ViTModel and ViTMAEForPreTraining goldens that ../shared/peer/make_hf_fixtures.py does
not make (it has CLIP's vision tower only). Run where torch and transformers are installed
(a GPU is not needed; transformers is what this machine lacks), then copy the folders into
../shared/fixtures/hf/, where model/vit's tests find them:
  python3 bench/peer/make_vit_fixtures.py OUTDIR

Each folder holds what save_pretrained writes (config.json, model.safetensors) and
golden.safetensors:

vit-tiny (ViTModel with its pooler, 32x32x3 images, patch 8, width 32, 2 layers, 4 heads):
  pixel_values [2,3,32,32], last_hidden_state [2,17,32], pooler_output [2,32],
  loss [1] = mean(last_hidden_state^2) + sum(pooler_output * w) with w = arange(32)/32,
  grad.NAME for every parameter.
vit-mae-tiny (ViTMAEForPreTraining, the same encoder, decoder width 16, 1 layer, 4 heads,
  mask ratio 0.75, norm_pix_loss): pixel_values, noise [2,16] (the masking's noise),
  logits [2,16,192], mask [2,16], loss [1], grad.NAME for every parameter that has one
  (the sin-cos position tables are not trained).
"""
import os
import sys

import torch
from safetensors.torch import save_file
import transformers as tf

out = sys.argv[1]


def dump(name, model, gold, loss):
    d = f"{out}/{name}"
    os.makedirs(d, exist_ok=True)
    model.save_pretrained(d, safe_serialization=True)
    loss.backward()
    gold["loss"] = loss.detach().reshape(1)
    for pn, p in model.named_parameters():
        if p.grad is not None:
            gold["grad." + pn] = p.grad.detach().contiguous()
    save_file({k: v.contiguous() for k, v in gold.items()}, f"{d}/golden.safetensors")
    print(name, "params", sum(p.numel() for p in model.parameters()), "loss", float(loss))


common = dict(image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2,
              num_attention_heads=4, intermediate_size=64, hidden_dropout_prob=0.0,
              attention_probs_dropout_prob=0.0)
g = torch.Generator().manual_seed(5)
pix = torch.randn(2, 3, 32, 32, generator=g)

torch.manual_seed(6)
vit = tf.ViTModel(tf.ViTConfig(**common), add_pooling_layer=True)
vit.train(False)
r = vit(pixel_values=pix)
w = torch.arange(32, dtype=torch.float32) / 32
loss = r.last_hidden_state.pow(2).mean() + (r.pooler_output * w).sum()
dump("vit-tiny", vit, {"pixel_values": pix.clone(), "last_hidden_state": r.last_hidden_state.detach(),
                       "pooler_output": r.pooler_output.detach()}, loss)

torch.manual_seed(7)
mae = tf.ViTMAEForPreTraining(tf.ViTMAEConfig(**common, decoder_hidden_size=16, decoder_num_hidden_layers=1,
                                              decoder_num_attention_heads=4, decoder_intermediate_size=32,
                                              mask_ratio=0.75, norm_pix_loss=True))
mae.train(False)
noise = torch.rand(2, 16, generator=g)
r = mae(pixel_values=pix, noise=noise)
dump("vit-mae-tiny", mae, {"pixel_values": pix.clone(), "noise": noise.clone(), "logits": r.logits.detach(),
                           "mask": r.mask.detach()}, r.loss)
print("transformers", tf.__version__, "torch", torch.__version__)
