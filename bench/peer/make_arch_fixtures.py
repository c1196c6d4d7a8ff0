"""Make transformers goldens for the architectures golem added after the first
fixtures: Llama 3.1's rope scaling and Mistral's sliding window.

Modelled on ../shared/peer/make_hf_fixtures.py and writing the same files (see
../shared/fixtures/hf/README.md): for each model <out>/<name>/ holds what
save_pretrained writes, the GPT-2 tokenizer files, and golden.safetensors with
input_ids [2,10], logits, loss, the gradients (norms for the vocabulary-sized
ones) and a greedy continuation of 12 tokens. Random-initialised, seeded,
float32, eager attention (the sliding window as transformers' mask applies it).

  llama3-tiny   Llama, rope_theta 500000, rope_scaling {rope_type: llama3,
                factor 8, low_freq_factor 1, high_freq_factor 4,
                original_max_position_embeddings 256}; head size 16, so of its
                8 frequencies 2 are kept, 1 blended and 5 divided by 8
  mistral-tiny  Mistral, sliding_window 4 (the 10-token inputs and the
                18-token greedy output outgrow it)

Run where torch and transformers are installed (the GPU machine), then copy the
folders into ../shared/fixtures/hf: model/gpt's TestMatchesTransformers and
TestSaveLoadRoundTrip pick them up by name.

  python3 make_arch_fixtures.py OUTDIR TOKDIR    # TOKDIR: ../shared/data/tokenizer/gpt2
"""
import os
import sys

import torch
import transformers as tf
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

out, tokdir = sys.argv[1], sys.argv[2]
_bpe = Tokenizer(models.BPE.from_file(f"{tokdir}/encoder.json", f"{tokdir}/vocab.bpe"))
_bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
_bpe.decoder = decoders.ByteLevel()
tok = tf.PreTrainedTokenizerFast(tokenizer_object=_bpe, eos_token="<|endoftext|>", bos_token="<|endoftext|>", unk_token="<|endoftext|>")
assert tok.encode("Hello world") == [15496, 995], tok.encode("Hello world")
texts = ["To be, or not to be: that is the question.", "Hello world! 床前明月光，疑是地上霜。"]
T = 10
ids = torch.tensor([tok.encode(t)[:T] for t in texts], dtype=torch.long)
assert ids.shape == (2, T), ids.shape


def dump(name, model, big=("wte", "lm_head", "embed_tokens")):
    d = f"{out}/{name}"
    os.makedirs(d, exist_ok=True)
    model.save_pretrained(d, safe_serialization=True)
    tok.save_pretrained(d)
    model.train(False)
    res = model(input_ids=ids, labels=ids)
    res.loss.backward()
    g = {"input_ids": ids.clone(), "logits": res.logits.detach().contiguous(), "loss": res.loss.detach().reshape(1)}
    for pn, p in model.named_parameters():
        if p.grad is None:
            continue
        if any(b in pn for b in big):
            g["gradnorm." + pn] = p.grad.norm().reshape(1)
        else:
            g["grad." + pn] = p.grad.detach().contiguous()
    with torch.no_grad():
        gen = model.generate(ids[:1, :6], max_new_tokens=12, do_sample=False, pad_token_id=0)
    g["greedy_prompt"] = ids[:1, :6].clone()
    g["greedy_output"] = gen.contiguous()
    save_file(g, f"{d}/golden.safetensors")
    print(name, "params", sum(p.numel() for p in model.parameters()), "loss", float(res.loss))


def eager(cfg):
    cfg._attn_implementation = "eager"
    return cfg


torch.manual_seed(3)
llama3 = tf.LlamaForCausalLM(eager(tf.LlamaConfig(vocab_size=50257, hidden_size=32, intermediate_size=64,
    num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
    rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
    rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                  "original_max_position_embeddings": 256})))
# The scaling must have been applied (a transformers that ignored the
# argument would make a golden of the unscaled model): frequencies 3..7 are
# the default's divided by 8.
inv = llama3.model.rotary_emb.inv_freq
default = 1.0 / (500000.0 ** (torch.arange(0, 16, 2, dtype=torch.int64).float() / 16))
assert torch.allclose(inv[:2], default[:2]) and torch.allclose(inv[3:], default[3:] / 8), inv
dump("llama3-tiny", llama3)
torch.manual_seed(4)
mistral = tf.MistralForCausalLM(eager(tf.MistralConfig(vocab_size=50257, hidden_size=32, intermediate_size=64,
    num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
    rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False, sliding_window=4)))
assert mistral.config.sliding_window == 4
dump("mistral-tiny", mistral)
