"""transformers' forward passes in numpy (float64), to check `growjax.hf`
without PyTorch: the logits a transformers model computes from a config.json
and its tensors, written from transformers' modeling code (5.x):

  GPTNeoXForCausalLM   modeling_gpt_neox: LayerNorm, fused query_key_value
                       viewed as [heads, 3 * K], partial rotary (the first
                       rotary_ndims channels), parallel or sequential
                       residual, the erf ("gelu") or tanh ("gelu_new") GeLU;
  LlamaForCausalLM,    modeling_llama / _qwen2 / _mistral: RMSNorm, SwiGLU,
  Qwen2ForCausalLM,    repeat_kv grouped-query attention, q/k/v biases where
  MistralForCausalLM   the file has them (and o_proj's); no sliding window;
  rope                 modeling_rope_utils: rotate_half pairs (i, i + R/2),
                       inverse frequencies of type default, linear, llama3.

Every tensor that exists is used (a bias absent from the file is zero), so
a mistake in a conversion shows in the logits.

    logits_BTV = hf_reference.logits(config, tensors, tokens_BT)
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np


def rotate_half(x: np.ndarray) -> np.ndarray:
  half = x.shape[-1] // 2
  return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def rope_parameters(config: Mapping[str, Any]) -> dict:
  """The rope parameters transformers 5 standardises a config to: an old
  rope_scaling wins over rope_parameters; GPT-NeoX's rotary_emb_base and
  rotary_pct (default 0.25) fill what rope_parameters leaves out."""
  params = dict(config.get("rope_scaling") or config.get("rope_parameters")
                or {})
  neox = config.get("model_type") == "gpt_neox"
  params.setdefault("rope_type", params.get("type", "default"))
  params.setdefault("rope_theta", config.get(
      "rotary_emb_base" if neox else "rope_theta", 10000.0) or 10000.0)
  params.setdefault("partial_rotary_factor",
                    config.get("rotary_pct", 0.25) if neox else 1.0)
  if params["rope_type"] == "llama3":
    params.setdefault("original_max_position_embeddings",
                      config["max_position_embeddings"])
  return params


def inv_freq(params: Mapping[str, Any], head_dim: int) -> np.ndarray:
  """The inverse frequencies [R/2] of R = int(head_dim * partial) rotary
  channels: _compute_default_rope_parameters, then linear's or llama3's."""
  dim = int(head_dim * params.get("partial_rotary_factor", 1.0))
  inv = 1.0 / params["rope_theta"] ** (np.arange(0, dim, 2) / dim)
  kind = params["rope_type"]
  if kind == "linear":
    return inv / params["factor"]
  if kind == "llama3":
    factor, low, high = (params["factor"], params["low_freq_factor"],
                         params["high_freq_factor"])
    old = params["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv
    scaled = np.where(wavelen > old / low, inv / factor, inv)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < old / high) & ~(wavelen > old / low)
    return np.where(medium, smoothed, scaled)
  if kind != "default":
    raise NotImplementedError(f"rope_type {kind!r}")
  return inv


def rope(x_BHTK: np.ndarray, pos_T: np.ndarray,
         inv: np.ndarray) -> np.ndarray:
  """apply_rotary_pos_emb: the first 2 * len(inv) channels rotated in
  rotate_half pairs, the rest passed through."""
  r = 2 * inv.size
  angles = np.concatenate([np.outer(pos_T, inv)] * 2, axis=-1)  # [T, R]
  rot, rest = x_BHTK[..., :r], x_BHTK[..., r:]
  rot = rot * np.cos(angles) + rotate_half(rot) * np.sin(angles)
  return np.concatenate([rot, rest], axis=-1)


def causal_attention(q_BHTK, k_BHTK, v_BHTK) -> np.ndarray:
  """Softmax attention over earlier positions, scaled by 1/sqrt(K);
  [B, T, H * K] out."""
  b, h, n, k = q_BHTK.shape
  causal = np.tril(np.ones((n, n), bool))
  scores = np.where(causal, q_BHTK @ k_BHTK.transpose(0, 1, 3, 2)
                    / math.sqrt(k), -np.inf)
  probs = np.exp(scores - scores.max(-1, keepdims=True))
  probs /= probs.sum(-1, keepdims=True)
  return (probs @ v_BHTK).transpose(0, 2, 1, 3).reshape(b, n, h * k)


def _erf(x):
  return np.vectorize(math.erf)(x)


ACTIVATIONS = {
    "gelu": lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))),
    "gelu_new": lambda x: 0.5 * x * (1 + np.tanh(
        math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))),
    "silu": lambda x: x / (1 + np.exp(-x)),
}
ACTIVATIONS["gelu_pytorch_tanh"] = ACTIVATIONS["gelu_new"]


class _Tensors:
  """float64 tensors; linear(x, name) adds the bias when the file has one."""

  def __init__(self, tensors: Mapping[str, np.ndarray]):
    self.t = {n: np.asarray(v, np.float64) for n, v in tensors.items()}

  def __getitem__(self, name):
    return self.t[name]

  def linear(self, x, name):
    return x @ self.t[name + ".weight"].T + self.t.get(name + ".bias", 0.0)


def neox_logits(config: Mapping[str, Any], tensors, tokens_BT) -> np.ndarray:
  """GPTNeoXForCausalLM's logits [B, T, V]."""
  t = _Tensors(tensors)
  d, h = config["hidden_size"], config["num_attention_heads"]
  k, eps = d // h, config.get("layer_norm_eps", 1e-5)
  inv = inv_freq(rope_parameters(config), k)
  act = ACTIVATIONS[config.get("hidden_act", "gelu")]
  parallel = config.get("use_parallel_residual", True)

  def norm(x, name):
    mean = x.mean(-1, keepdims=True)
    var = np.square(x - mean).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * t[name + ".weight"] + t[
        name + ".bias"]

  b, n = tokens_BT.shape
  pos = np.arange(n)
  x = t["gpt_neox.embed_in.weight"][tokens_BT]
  for i in range(config["num_hidden_layers"]):
    p = f"gpt_neox.layers.{i}."
    qkv = t.linear(norm(x, p + "input_layernorm"),
                   p + "attention.query_key_value")
    qkv = qkv.reshape(b, n, h, 3 * k).transpose(0, 2, 1, 3)  # [B, H, T, 3K]
    q, kk, v = (qkv[..., j * k:(j + 1) * k] for j in range(3))
    out = causal_attention(rope(q, pos, inv), rope(kk, pos, inv), v)
    attn = t.linear(out, p + "attention.dense")
    mlp_in = x if parallel else x + attn
    mlp = t.linear(act(t.linear(norm(mlp_in, p + "post_attention_layernorm"),
                                p + "mlp.dense_h_to_4h")),
                   p + "mlp.dense_4h_to_h")
    x = x + attn + mlp
  x = norm(x, "gpt_neox.final_layer_norm")
  unembed = t["gpt_neox.embed_in.weight" if config.get("tie_word_embeddings")
              else "embed_out.weight"]
  return x @ unembed.T


def llama_logits(config: Mapping[str, Any], tensors,
                 tokens_BT) -> np.ndarray:
  """LlamaForCausalLM's (and Qwen2's, Mistral's without a sliding window)
  logits [B, T, V]."""
  if config.get("model_type") == "mistral" and config.get(
      "sliding_window") is not None:
    raise NotImplementedError("sliding-window attention")
  t = _Tensors(tensors)
  d, h = config["hidden_size"], config["num_attention_heads"]
  g = config.get("num_key_value_heads") or h
  k = config.get("head_dim") or d // h
  eps = config.get("rms_norm_eps", 1e-6)
  inv = inv_freq(rope_parameters(config), k)
  act = ACTIVATIONS[config.get("hidden_act", "silu")]

  def norm(x, name):
    return t[name + ".weight"] * (x / np.sqrt(np.square(x).mean(
        -1, keepdims=True) + eps))

  b, n = tokens_BT.shape
  pos = np.arange(n)
  x = t["model.embed_tokens.weight"][tokens_BT]
  for i in range(config["num_hidden_layers"]):
    p = f"model.layers.{i}."
    y = norm(x, p + "input_layernorm")
    q, kk, v = (t.linear(y, p + f"self_attn.{name}_proj").reshape(b, n, -1, k)
                .transpose(0, 2, 1, 3) for name in "qkv")  # [B, heads, T, K]
    q, kk = rope(q, pos, inv), rope(kk, pos, inv)
    kk, v = np.repeat(kk, h // g, axis=1), np.repeat(v, h // g, axis=1)
    x = x + t.linear(causal_attention(q, kk, v), p + "self_attn.o_proj")
    y = norm(x, p + "post_attention_layernorm")
    x = x + t.linear(act(t.linear(y, p + "mlp.gate_proj"))
                     * t.linear(y, p + "mlp.up_proj"), p + "mlp.down_proj")
  x = norm(x, "model.norm")
  unembed = t["model.embed_tokens.weight" if config.get("tie_word_embeddings")
              else "lm_head.weight"]
  return x @ unembed.T


def logits(config: Mapping[str, Any], tensors, tokens_BT) -> np.ndarray:
  """float64 logits [B, T, V] of the architecture config.json names."""
  arch = (config.get("architectures") or [""])[0]
  if arch == "GPTNeoXForCausalLM":
    return neox_logits(config, tensors, np.asarray(tokens_BT))
  if arch in ("LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM"):
    return llama_logits(config, tensors, np.asarray(tokens_BT))
  raise NotImplementedError(f"architecture {arch!r}")
