"""A GPT-style decoder (pre-LayerNorm, GeLU MLP, no linear biases) in Flax linen.

Layers are scanned, so every layer parameter is stacked on a leading `layers`
axis. `AXES` below is the single table of each parameter's logical axes: the
sharding rules (`growjax.parallel`) and the growth operators (`growjax.grow`)
both read it, so they cannot disagree.

Shape letters: B batch, T query time, S key time, D d_model, F d_ff, H heads,
K head_dim, L layers, V vocab.

Masks (masked structural growth, MSG) are an optional dict with any of
  hidden [D]     new residual channels: embedding, attention and MLP outputs
                 and every LayerNorm output are multiplied by it, and
                 LayerNorm statistics are mask-weighted;
  heads  [L, H]  each head's output before the output projection;
  mlp    [L, F]  each MLP hidden unit;
  layers [L]     a block computes h + m * (block(h) - h).
At 0 a masked structure contributes nothing, so a grown model computes the
old function whatever its new weights are; `masks=None` is a fully grown
model with no mask arithmetic on the hot path.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from growjax import positions as positions_lib
from growjax.config import ModelConfig

Params = dict[str, Any]

# Logical axes of every parameter, keyed by its path in the params dict.
AXES: dict[str, tuple[str, ...]] = {
    "embed": ("vocab", "embed"),
    "blocks/ln1/scale": ("layers", "embed"),
    "blocks/ln1/bias": ("layers", "embed"),
    "blocks/attn/q": ("layers", "embed", "heads", "head_dim"),
    "blocks/attn/k": ("layers", "embed", "heads", "head_dim"),
    "blocks/attn/v": ("layers", "embed", "heads", "head_dim"),
    "blocks/attn/o": ("layers", "heads", "head_dim", "embed"),
    "blocks/ln2/scale": ("layers", "embed"),
    "blocks/ln2/bias": ("layers", "embed"),
    "blocks/mlp/wi": ("layers", "embed", "mlp"),
    "blocks/mlp/wo": ("layers", "mlp", "embed"),
    "ln_f/scale": ("embed",),
    "ln_f/bias": ("embed",),
    "unembed": ("embed", "vocab"),
}

# Logical axes of the growth masks (see the module docstring).
MASK_AXES: dict[str, tuple[str, ...]] = {
    "hidden": ("embed",),
    "heads": ("layers", "heads"),
    "mlp": ("layers", "mlp"),
    "layers": ("layers",),
}

# Size of each logical axis in a config.
def axis_sizes(cfg: ModelConfig) -> dict[str, int]:
  return {"vocab": cfg.vocab_size, "embed": cfg.d_model, "layers": cfg.n_layers,
          "heads": cfg.n_heads, "head_dim": cfg.head_dim, "mlp": cfg.d_ff}


def _path(keys) -> str:
  return "/".join(str(getattr(k, "key", k)) for k in keys)


def logical_axes(params: Params) -> Params:
  """The tree of logical-axis tuples matching `params` (or masks)."""
  table = {**AXES, **MASK_AXES}
  return jax.tree_util.tree_map_with_path(lambda p, _: table[_path(p)], params)


def layer_norm(x: jax.Array, scale: jax.Array, bias: jax.Array,
               hidden_mask: jax.Array | None = None,
               eps: float = 1e-5) -> jax.Array:
  """LayerNorm in float32; with a mask, mean and variance are mask-weighted
  (sum(x*m)/sum(m)) and the output's masked channels are scaled by m."""
  x = x.astype(jnp.float32)
  if hidden_mask is None:
    mean = x.mean(-1, keepdims=True)
    var = jnp.square(x - mean).mean(-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + eps) * scale + bias
  weight = hidden_mask / hidden_mask.sum()
  mean = (x * weight).sum(-1, keepdims=True)
  var = (jnp.square(x - mean) * weight).sum(-1, keepdims=True)
  return ((x - mean) * jax.lax.rsqrt(var + eps) * scale + bias) * hidden_mask


class LayerNorm(nn.Module):

  @nn.compact
  def __call__(self, x, hidden_mask=None):
    d = x.shape[-1]
    scale = self.param("scale", nn.initializers.ones, (d,))
    bias = self.param("bias", nn.initializers.zeros, (d,))
    return layer_norm(x, scale, bias, hidden_mask)


def _attention_implementation(cfg: ModelConfig, mask) -> str | None:
  """cuDNN flash attention where it applies (GPU, bf16, causal, K <= 128):
  it never materialises the [B, H, T, T] scores. Elsewhere XLA's."""
  if (jax.default_backend() == "gpu" and cfg.dtype == "bfloat16"
      and mask is None and cfg.head_dim <= 128 and cfg.head_dim % 8 == 0):
    return "cudnn"
  return None


class Attention(nn.Module):
  cfg: ModelConfig
  block_len: int | None = None

  @nn.compact
  def __call__(self, x_BTD, q_pos_BT, k_pos_BS, heads_mask_H, cache):
    cfg, dtype = self.cfg, jnp.dtype(self.cfg.dtype)
    init = nn.initializers.normal(cfg.init_std)
    qkv_shape = (cfg.d_model, cfg.n_heads, cfg.head_dim)
    w_q_DHK, w_k_DHK, w_v_DHK = (
        self.param(n, init, qkv_shape).astype(dtype) for n in "qkv")
    w_o_HKD = self.param(
        "o", init, (cfg.n_heads, cfg.head_dim, cfg.d_model)).astype(dtype)
    x_BTD = x_BTD.astype(dtype)
    q_BTHK = jnp.einsum("BTD,DHK->BTHK", x_BTD, w_q_DHK)
    k_BTHK = jnp.einsum("BTD,DHK->BTHK", x_BTD, w_k_DHK)
    v_BTHK = jnp.einsum("BTD,DHK->BTHK", x_BTD, w_v_DHK)
    new_cache = None
    if cache is not None:  # keys are cached before positions are applied
      index = cache["index"]
      k_BSHK = jax.lax.dynamic_update_slice_in_dim(
          cache["k"], k_BTHK.astype(cache["k"].dtype), index, axis=1)
      v_BSHK = jax.lax.dynamic_update_slice_in_dim(
          cache["v"], v_BTHK.astype(cache["v"].dtype), index, axis=1)
      new_cache = {"k": k_BSHK, "v": v_BSHK}
      k_BSHK, v_BSHK = k_BSHK.astype(dtype), v_BSHK.astype(dtype)
    else:
      k_BSHK, v_BSHK = k_BTHK, v_BTHK
    q_BTHK, k_BSHK = positions_lib.encode(
        q_BTHK, k_BSHK, q_pos_BT, k_pos_BS, kind=cfg.pos,
        scale_base=cfg.xpos_scale_base, gamma=cfg.xpos_gamma)
    if cache is None and self.block_len is None:
      mask, is_causal = None, True  # positions increase along T
    else:
      mask = positions_lib.causal_mask(q_pos_BT, k_pos_BS, self.block_len)
      is_causal = False
    out_BTHK = jax.nn.dot_product_attention(
        q_BTHK.astype(dtype), k_BSHK.astype(dtype), v_BSHK, mask=mask,
        is_causal=is_causal, scale=1.0 / math.sqrt(cfg.head_dim),
        implementation=_attention_implementation(cfg, mask))
    if heads_mask_H is not None:
      out_BTHK = out_BTHK * heads_mask_H[:, None].astype(dtype)
    return jnp.einsum("BTHK,HKD->BTD", out_BTHK, w_o_HKD), new_cache


class Mlp(nn.Module):
  cfg: ModelConfig

  @nn.compact
  def __call__(self, x_BTD, mlp_mask_F):
    cfg, dtype = self.cfg, jnp.dtype(self.cfg.dtype)
    init = nn.initializers.normal(cfg.init_std)
    w_i_DF = self.param("wi", init, (cfg.d_model, cfg.d_ff)).astype(dtype)
    w_o_FD = self.param("wo", init, (cfg.d_ff, cfg.d_model)).astype(dtype)
    h_BTF = nn.gelu(jnp.einsum("BTD,DF->BTF", x_BTD.astype(dtype), w_i_DF))
    if mlp_mask_F is not None:
      h_BTF = h_BTF * mlp_mask_F.astype(dtype)
    return jnp.einsum("BTF,FD->BTD", h_BTF, w_o_FD)


class Block(nn.Module):
  """One pre-LN block; scanned over layers. Carry: the residual stream h."""
  cfg: ModelConfig
  block_len: int | None = None

  @nn.compact
  def __call__(self, h_BTD, per_layer, shared):
    hidden = shared["hidden_mask"]
    masks = per_layer["masks"]
    attn, new_cache = Attention(self.cfg, self.block_len, name="attn")(
        LayerNorm(name="ln1")(h_BTD, hidden), shared["q_pos"],
        shared["k_pos"], masks.get("heads"), per_layer["cache"])
    if hidden is not None:  # masks in the compute dtype: no float32 promotion
      attn = attn * hidden.astype(attn.dtype)
    h1_BTD = h_BTD + attn
    mlp = Mlp(self.cfg, name="mlp")(LayerNorm(name="ln2")(h1_BTD, hidden),
                                    masks.get("mlp"))
    if hidden is not None:
      mlp = mlp * hidden.astype(mlp.dtype)
    if "layers" in masks:  # h + m * (block(h) - h)
      return h_BTD + masks["layers"].astype(mlp.dtype) * (attn + mlp), new_cache
    return h1_BTD + mlp, new_cache


class Transformer(nn.Module):
  cfg: ModelConfig
  block_len: int | None = None
  remat: bool = False

  @nn.compact
  def __call__(self, tokens_BT, q_pos_BT, k_pos_BS, masks, cache):
    cfg = self.cfg
    init = nn.initializers.normal(cfg.init_std)
    embed_VD = self.param("embed", init, (cfg.vocab_size, cfg.d_model))
    hidden = masks.get("hidden")
    h_BTD = jnp.take(embed_VD, tokens_BT, axis=0)
    if hidden is not None:
      h_BTD = h_BTD * hidden
    block = nn.remat(Block, prevent_cse=False) if self.remat else Block
    blocks = nn.scan(
        block, variable_axes={"params": 0}, split_rngs={"params": True},
        in_axes=(0, nn.broadcast), length=cfg.n_layers)
    per_layer = {
        "masks": {k: v for k, v in masks.items() if k != "hidden"},
        "cache": None if cache is None else {"k": cache["k"], "v": cache["v"]},
    }
    if cache is not None:  # the cache index is shared by all layers
      per_layer["cache"]["index"] = jnp.broadcast_to(
          cache["index"], (cfg.n_layers,))
    shared = {"hidden_mask": hidden, "q_pos": q_pos_BT, "k_pos": k_pos_BS}
    h_BTD, new_kv = blocks(cfg, self.block_len, name="blocks")(
        h_BTD, per_layer, shared)
    x_BTD = LayerNorm(name="ln_f")(h_BTD, hidden)
    dtype = jnp.dtype(cfg.dtype)
    if cfg.tie_embeddings:
      unembed_DV = embed_VD.T
    else:
      unembed_DV = self.param("unembed", init, (cfg.d_model, cfg.vocab_size))
    logits_BTV = jnp.einsum("BTD,DV->BTV", x_BTD.astype(dtype),
                            unembed_DV.astype(dtype))
    return logits_BTV.astype(jnp.float32), new_kv


def init(cfg: ModelConfig, key: jax.Array) -> Params:
  """Fresh float32 parameters: a plain nested dict (see `AXES`)."""
  tokens = jnp.zeros((1, 1), jnp.int32)
  pos = jnp.zeros((1, 1), jnp.int32)
  variables = Transformer(cfg).init(key, tokens, pos, pos, {}, None)
  return variables["params"]


def apply(params: Params, cfg: ModelConfig, tokens: jax.Array, *,
          masks: dict | None = None, positions: jax.Array | None = None,
          block_len: int | None = None, cache: dict | None = None,
          remat: bool = False):
  """Logits float32 [B, T, V] for int32 tokens [B, T].

  positions: int32 [B, T], increasing along T (default 0..T-1, or the cache's
    next slots when decoding).
  block_len: blockwise causal attention (each block sees itself and the
    previous one), for inputs longer than the training length.
  cache: from `init_cache`; when given, returns (logits, new_cache) and each
    call appends its T tokens.
  remat: recompute each block's activations in the backward pass.
  """
  tokens = jnp.asarray(tokens, jnp.int32)
  b, t = tokens.shape
  if positions is None:
    start = 0 if cache is None else cache["index"]
    positions = jnp.broadcast_to(start + jnp.arange(t, dtype=jnp.int32), (b, t))
  positions = jnp.asarray(positions, jnp.int32)
  masks = {} if masks is None else masks
  model = Transformer(cfg, block_len=block_len, remat=remat)
  if cache is None:
    logits, _ = model.apply({"params": params}, tokens, positions, positions,
                            masks, None)
    return logits
  k_pos = jax.lax.dynamic_update_slice_in_dim(
      cache["pos"], positions, cache["index"], axis=1)
  logits, new_kv = model.apply({"params": params}, tokens, positions, k_pos,
                               masks, cache)
  return logits, {"k": new_kv["k"], "v": new_kv["v"], "pos": k_pos,
                  "index": cache["index"] + t}


def init_cache(cfg: ModelConfig, batch: int, length: int,
               dtype: str | None = None) -> dict:
  """An empty KV cache of `length` slots: raw (pre-position) keys and values
  [L, B, S, H, K], key positions [B, S] (-1 marks an empty slot) and the next
  slot's index."""
  dtype = jnp.dtype(dtype or cfg.dtype)
  shape = (cfg.n_layers, batch, length, cfg.n_heads, cfg.head_dim)
  return {"k": jnp.zeros(shape, dtype), "v": jnp.zeros(shape, dtype),
          "pos": jnp.full((batch, length), -1, jnp.int32),
          "index": jnp.zeros((), jnp.int32)}


def param_count(cfg: ModelConfig) -> int:
  """Number of parameters `init(cfg, key)` creates."""
  d, f, hk = cfg.d_model, cfg.d_ff, cfg.n_heads * cfg.head_dim
  per_layer = 4 * d + 4 * d * hk + 2 * d * f
  unembed = 0 if cfg.tie_embeddings else d * cfg.vocab_size
  return cfg.vocab_size * d + cfg.n_layers * per_layer + 2 * d + unembed


def non_embedding_param_count(cfg: ModelConfig) -> int:
  """Parameters outside the embedding and unembedding tables."""
  d, f, hk = cfg.d_model, cfg.d_ff, cfg.n_heads * cfg.head_dim
  return cfg.n_layers * (4 * d + 4 * d * hk + 2 * d * f) + 2 * d
