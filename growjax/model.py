"""A pre-norm decoder in Flax linen: growjax's GPT (LayerNorm, GeLU MLP) or,
by `ModelConfig` options, a Llama-family model (norm="rmsnorm", mlp="swiglu",
grouped-query attention with n_kv_heads), Qwen2's q/k/v biases (qkv_bias) or
GPT-NeoX's parallel residual blocks (parallel_residual). No other linear
layer has a bias.

Layers are scanned, so every layer parameter is stacked on a leading `layers`
axis. Every parameter is a row of the one parameter table, `growjax.params`
(its path, logical axes, fan-in, init, muP role, the option that requires
it): the sharding rules (`growjax.parallel`), the growth operators
(`growjax.grow`) and muP (`growjax.mup`) all read it, so they cannot disagree.
`AXES` is its axes column; `param_axes(cfg)` the rows of one config's model.
Under `param="mup"` the init stds, the attention scale and the logits'
multiplier come from `growjax.mup`.

Shape letters: B batch, T query time, S key time, D d_model, F d_ff, H heads,
G key/value heads, K head_dim, L layers, V vocab.

  norm  layernorm  (x - mean) / std * scale + bias
        rmsnorm    x / rms * scale (no bias)
  mlp   gelu       wo(gelu(x wi)), the tanh GeLU (gelu_erf: the exact one)
        swiglu     wo(silu(x wg) * x wi): gate wg, up wi, down wo
  attention        q [D, H, K]; k, v [D, G, K] (qkv_bias: plus q_bias
                   [H, K], k_bias, v_bias [G, K]); query head h reads
                   key/value head h // (H / G) (transformers' repeat_kv)
  block            h + attn(ln1(h)) = h1, then h1 + mlp(ln2(h1));
                   parallel_residual: h + attn(ln1(h)) + mlp(ln2(h))

Masks (masked structural growth, MSG) are an optional dict with any of
  hidden [D]     new residual channels: embedding, attention and MLP outputs
                 and every norm's output are multiplied by it, and norm
                 statistics (mean and variance, or mean square) are
                 mask-weighted;
  heads  [L, H]  each head's output before the output projection (a new
                 key/value head is read only by new query heads, so it needs
                 no mask of its own);
  mlp    [L, F]  each MLP hidden unit (SwiGLU: after the gate product);
  layers [L]     a block computes h + m * (block(h) - h).
At 0 a masked structure contributes nothing, so a grown model computes the
old function whatever its new weights are; `masks=None` is a fully grown
model with no mask arithmetic on the hot path.

Rematerialisation (`apply(..., remat=...)`, one of `REMAT`) decides what each
scanned block keeps for the backward pass:
  none     everything XLA would keep (fastest, most memory);
  dots     the tensors tagged with `checkpoint_name` below (`SAVED`: q, k, v
           after positions, the attention output, the output projection,
           the MLP pre-activations: SwiGLU's gate and up), or on the cuDNN
           path the attention kernel's outputs (its output and softmax
           statistics) instead of the tagged attention output; norms,
           positions, the MLP activation and XLA attention's softmax are
           recomputed, no projection's matmul is;
  full     only each block's input (the scan carry): the block's forward runs
           again in the backward pass;
  offload  what `dots` keeps, the tagged tensors in host memory (pinned_host):
           the device keeps what `full` keeps plus the attention kernel's
           outputs, and PCIe carries the rest. On CPU host and device memory
           are the same RAM, so it computes what `dots` computes.
The block's input is always kept (the scan carries it in float32).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.ad_checkpoint import checkpoint_name

from growjax import checks
from growjax import constraints
from growjax import mup
from growjax import params as params_lib
from growjax import positions as positions_lib
from growjax.config import ModelConfig

Params = dict[str, Any]

# Logical axes of every parameter, keyed by its path in the params dict (read
# from the one parameter table, `growjax.params`).
AXES: dict[str, tuple[str, ...]] = {
    path: p.axes for path, p in params_lib.TABLE.items()}


def param_axes(cfg: ModelConfig) -> dict[str, tuple[str, ...]]:
  """The rows of `AXES` whose parameters `init(cfg, key)` creates."""
  return {path: p.axes for path, p in params_lib.of(cfg).items()}


# Logical axes of the growth masks (see the module docstring).
MASK_AXES: dict[str, tuple[str, ...]] = {
    "hidden": ("embed",),
    "heads": ("layers", "heads"),
    "mlp": ("layers", "mlp"),
    "layers": ("layers",),
}

# Size of each logical axis in a config.
axis_sizes = params_lib.axis_sizes


# Remat policies (see the module docstring), fastest first: the one list
# every layer above reads (the experiment's field, the memory model), and
# the tensors `dots` keeps.
REMAT = ("none", "dots", "offload", "full")
SAVED = ("q", "k", "v", "context", "attn_out", "mlp_in")


def _is_attention_kernel(prim) -> bool:
  # cuDNN flash attention's forward (jax._src.cudnn.fused_attention_stablehlo):
  # its outputs (attention output and softmax statistics) are the backward
  # kernel's inputs, so keeping them spares a second forward kernel.
  return prim.name.startswith("dot_product_attention_fwd")


_save_names = jax.checkpoint_policies.save_only_these_names(*SAVED)
_offload_names = jax.checkpoint_policies.save_and_offload_only_these_names(
    names_which_can_be_saved=(), names_which_can_be_offloaded=SAVED,
    offload_src="device", offload_dst="pinned_host")


def _dots_policy(prim, *args, **params):
  return _is_attention_kernel(prim) or _save_names(prim, *args, **params)


def _offload_policy(prim, *args, **params):
  if _is_attention_kernel(prim):
    return True
  return _offload_names(prim, *args, **params)


def _checkpoint_policy(remat: str):
  """(whether blocks are rematerialised, the jax.checkpoint policy) of a
  policy `apply` has checked."""
  return remat != "none", {"none": None, "full": None, "dots": _dots_policy,
                           "offload": _offload_policy}[remat]


def logical_axes(params: Params) -> Params:
  """The tree of logical-axis tuples matching `params` (or masks)."""
  table = {**AXES, **MASK_AXES}
  return jax.tree_util.tree_map_with_path(
      lambda p, _: table[params_lib.path_of(p)], params)


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


def rms_norm(x: jax.Array, scale: jax.Array,
             hidden_mask: jax.Array | None = None,
             eps: float = 1e-5) -> jax.Array:
  """RMSNorm in float32; with a mask, the mean square is mask-weighted
  (sum(x^2 m)/sum(m), over the live channels only) and the output's masked
  channels are scaled by m."""
  x = x.astype(jnp.float32)
  if hidden_mask is None:
    mean_square = jnp.square(x).mean(-1, keepdims=True)
    return x * jax.lax.rsqrt(mean_square + eps) * scale
  weight = hidden_mask / hidden_mask.sum()
  mean_square = (jnp.square(x) * weight).sum(-1, keepdims=True)
  return x * jax.lax.rsqrt(mean_square + eps) * scale * hidden_mask


def _init(cfg: ModelConfig, p: params_lib.Param):
  """normal(std) of a parameter's role (`mup.init_std`: init_std under sp)."""
  return nn.initializers.normal(mup.init_std(p, cfg))


class Norm(nn.Module):
  """LayerNorm (scale and bias) or RMSNorm (scale), by `kind`."""
  kind: str = "layernorm"
  eps: float = 1e-5

  @nn.compact
  def __call__(self, x, hidden_mask=None):
    d = x.shape[-1]
    scale = self.param("scale", nn.initializers.ones, (d,))
    if self.kind == "rmsnorm":
      return rms_norm(x, scale, hidden_mask, eps=self.eps)
    bias = self.param("bias", nn.initializers.zeros, (d,))
    return layer_norm(x, scale, bias, hidden_mask, eps=self.eps)


def _attention_implementation(cfg: ModelConfig, mask) -> str | None:
  """cuDNN flash attention where it applies (GPU, bf16, causal, K <= 128):
  it never materialises the [B, H, T, T] scores. Elsewhere XLA's."""
  if (jax.default_backend() == "gpu" and cfg.dtype == "bfloat16"
      and mask is None and cfg.head_dim <= 128 and cfg.head_dim % 8 == 0):
    return "cudnn"
  return None


def _cast(w: jax.Array, dtype, axes: tuple[str, ...]) -> jax.Array:
  """A weight in the compute dtype, laid out like its parameter (logical
  `axes`) under a step's sharding constraints: the cast runs on the shard,
  so an fsdp all-gather moves the cast weight (growjax.constraints)."""
  return constraints.constrain(w.astype(dtype), axes)


class Attention(nn.Module):
  cfg: ModelConfig
  block_len: int | None = None

  @nn.compact
  def __call__(self, x_BTD, q_pos_BT, k_pos_BS, heads_mask_H, cache):
    cfg, dtype = self.cfg, jnp.dtype(self.cfg.dtype)
    init = _init(cfg, params_lib.Q)  # q, k, v: fan-in d_model
    w_q_DHK, w_k_DGK, w_v_DGK = (
        _cast(self.param(n, init, (cfg.d_model, heads, cfg.head_dim)), dtype,
              p.axes[1:])
        for n, heads, p in zip("qkv", (cfg.n_heads, cfg.kv_heads, cfg.kv_heads),
                               (params_lib.Q, params_lib.K, params_lib.V)))
    w_o_HKD = _cast(self.param(
        "o", _init(cfg, params_lib.O),
        (cfg.n_heads, cfg.head_dim, cfg.d_model)), dtype, params_lib.O.axes[1:])
    x_BTD = x_BTD.astype(dtype)
    q_BTHK = jnp.einsum("BTD,DHK->BTHK", x_BTD, w_q_DHK)
    k_BTGK = jnp.einsum("BTD,DGK->BTGK", x_BTD, w_k_DGK)
    v_BTGK = jnp.einsum("BTD,DGK->BTGK", x_BTD, w_v_DGK)
    if cfg.qkv_bias:  # a new head's bias starts at zero (grow.ROLES)
      b_q_HK, b_k_GK, b_v_GK = (
          self.param(f"{n}_bias", nn.initializers.zeros,
                     (heads, cfg.head_dim)).astype(dtype)
          for n, heads in zip("qkv", (cfg.n_heads, cfg.kv_heads, cfg.kv_heads)))
      q_BTHK, k_BTGK, v_BTGK = q_BTHK + b_q_HK, k_BTGK + b_k_GK, v_BTGK + b_v_GK
    new_cache = None
    if cache is not None:  # keys are cached before positions are applied
      index = cache["index"]
      k_BSGK = jax.lax.dynamic_update_slice_in_dim(
          cache["k"], k_BTGK.astype(cache["k"].dtype), index, axis=1)
      v_BSGK = jax.lax.dynamic_update_slice_in_dim(
          cache["v"], v_BTGK.astype(cache["v"].dtype), index, axis=1)
      new_cache = {"k": k_BSGK, "v": v_BSGK}
      k_BSGK, v_BSGK = k_BSGK.astype(dtype), v_BSGK.astype(dtype)
    else:
      k_BSGK, v_BSGK = k_BTGK, v_BTGK
    q_BTHK, k_BSGK = positions_lib.encode(
        q_BTHK, k_BSGK, q_pos_BT, k_pos_BS, kind=cfg.pos,
        scale_base=cfg.xpos_scale_base, gamma=cfg.xpos_gamma,
        theta=cfg.rope_theta, rotary_dims=cfg.rotary_dims,
        scaling=cfg.rope_scaling)
    q_BTHK = checkpoint_name(q_BTHK.astype(dtype), "q")
    k_BSGK = checkpoint_name(k_BSGK.astype(dtype), "k")
    v_BSGK = checkpoint_name(v_BSGK, "v")
    if cache is None and self.block_len is None:
      mask, is_causal = None, True  # positions increase along T
    else:
      mask = positions_lib.causal_mask(q_pos_BT, k_pos_BS, self.block_len)
      is_causal = False
    implementation = _attention_implementation(cfg, mask)
    # G < H: grouped-query attention, query head h reading key/value head
    # h // (H / G) (jax.nn.dot_product_attention groups consecutive heads).
    out_BTHK = jax.nn.dot_product_attention(
        q_BTHK, k_BSGK, v_BSGK, mask=mask,
        is_causal=is_causal, scale=mup.attention_scale(cfg),
        implementation=implementation)
    if implementation is None:  # cuDNN's output is kept with its kernel's
      out_BTHK = checkpoint_name(out_BTHK, "context")
    if heads_mask_H is not None:
      out_BTHK = out_BTHK * heads_mask_H[:, None].astype(dtype)
    out_BTD = jnp.einsum("BTHK,HKD->BTD", out_BTHK, w_o_HKD)
    return checkpoint_name(out_BTD, "attn_out"), new_cache


class Mlp(nn.Module):
  cfg: ModelConfig

  @nn.compact
  def __call__(self, x_BTD, mlp_mask_F):
    cfg, dtype = self.cfg, jnp.dtype(self.cfg.dtype)
    init = _init(cfg, params_lib.WI)  # wi, wg: fan-in d_model
    x_BTD = x_BTD.astype(dtype)
    if cfg.mlp == "swiglu":
      w_g_DF = _cast(self.param("wg", init, (cfg.d_model, cfg.d_ff)), dtype,
                     params_lib.WG.axes[1:])
    w_i_DF = _cast(self.param("wi", init, (cfg.d_model, cfg.d_ff)), dtype,
                   params_lib.WI.axes[1:])
    w_o_FD = _cast(self.param("wo", _init(cfg, params_lib.WO),
                              (cfg.d_ff, cfg.d_model)), dtype,
                   params_lib.WO.axes[1:])
    up_BTF = checkpoint_name(jnp.einsum("BTD,DF->BTF", x_BTD, w_i_DF),
                             "mlp_in")
    if cfg.mlp == "swiglu":
      gate_BTF = checkpoint_name(jnp.einsum("BTD,DF->BTF", x_BTD, w_g_DF),
                                 "mlp_in")
      h_BTF = nn.silu(gate_BTF) * up_BTF
    else:
      h_BTF = nn.gelu(up_BTF, approximate=cfg.mlp == "gelu")
    if mlp_mask_F is not None:  # after the gate product: a unit at 0 is off
      h_BTF = h_BTF * mlp_mask_F.astype(dtype)
    return jnp.einsum("BTF,FD->BTD", h_BTF, w_o_FD)


class Block(nn.Module):
  """One pre-LN block; scanned over layers. Carry: the residual stream h."""
  cfg: ModelConfig
  block_len: int | None = None

  @nn.compact
  def __call__(self, h_BTD, per_layer, shared):
    cfg = self.cfg
    hidden = shared["hidden_mask"]
    masks = per_layer["masks"]
    attn, new_cache = Attention(cfg, self.block_len, name="attn")(
        Norm(cfg.norm, cfg.norm_eps, name="ln1")(h_BTD, hidden),
        shared["q_pos"], shared["k_pos"], masks.get("heads"),
        per_layer["cache"])
    if hidden is not None:  # masks in the compute dtype: no float32 promotion
      attn = attn * hidden.astype(attn.dtype)
    h1_BTD = h_BTD + attn
    # parallel residual: the MLP reads the block's input, not h1
    mlp = Mlp(cfg, name="mlp")(
        Norm(cfg.norm, cfg.norm_eps, name="ln2")(
            h_BTD if cfg.parallel_residual else h1_BTD, hidden),
        masks.get("mlp"))
    if hidden is not None:
      mlp = mlp * hidden.astype(mlp.dtype)
    if "layers" in masks:  # h + m * (block(h) - h)
      return h_BTD + masks["layers"].astype(mlp.dtype) * (attn + mlp), new_cache
    return h1_BTD + mlp, new_cache


class Transformer(nn.Module):
  """Tokens -> float32 logits, or (`return_hidden`) the final norm's
  float32 output [B, T, D], the unembedding's input."""
  cfg: ModelConfig
  block_len: int | None = None
  remat: str = "none"  # one of REMAT, checked by `apply`
  return_hidden: bool = False

  @nn.compact
  def __call__(self, tokens_BT, q_pos_BT, k_pos_BS, masks, cache):
    cfg = self.cfg
    embed_VD = self.param("embed", _init(cfg, params_lib.EMBED),
                          (cfg.vocab_size, cfg.d_model))
    hidden = masks.get("hidden")
    # fsdp: rows stay split over the batch's axes, not the table's `embed`
    h_BTD = constraints.constrain(jnp.take(embed_VD, tokens_BT, axis=0),
                                  constraints.ACTIVATION)
    if hidden is not None:
      h_BTD = h_BTD * hidden
    rematerialise, policy = _checkpoint_policy(self.remat)
    # prevent_cse=False: inside scan the recomputation cannot be CSE'd away.
    block = (nn.remat(Block, prevent_cse=False, policy=policy)
             if rematerialise else Block)
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
    x_BTD = Norm(cfg.norm, cfg.norm_eps, name="ln_f")(h_BTD, hidden)
    if self.return_hidden:
      return x_BTD, new_kv
    if cfg.tie_embeddings:
      unembed_DV = embed_VD.T
    else:
      unembed_DV = self.param("unembed", _init(cfg, params_lib.UNEMBED),
                              (cfg.d_model, cfg.vocab_size))
    unembed_DV = _cast(unembed_DV, jnp.dtype(cfg.dtype), params_lib.UNEMBED.axes)
    return project(x_BTD, unembed_DV, cfg), new_kv


def project(x_BTD: jax.Array, unembed_DV: jax.Array,
            cfg: ModelConfig) -> jax.Array:
  """Logits float32 [..., V] of final hidden states [..., D]: the matmul in
  the compute dtype, then float32 (the one definition of the logits'
  numerics; `growjax.loss` applies it chunk by chunk). Under muP the
  float32 logits are multiplied by `mup.output_multiplier`."""
  dtype = jnp.dtype(cfg.dtype)
  logits = jnp.einsum("...D,DV->...V", x_BTD.astype(dtype),
                      unembed_DV.astype(dtype))
  if logits.ndim == 3:  # [B, T, V]: rows stay on their devices
    logits = constraints.constrain(logits, ("batch", "time", "vocab"))
  logits = logits.astype(jnp.float32)
  multiplier = mup.output_multiplier(cfg)
  return logits if multiplier == 1.0 else logits * multiplier


def unembedding(params: Params, cfg: ModelConfig) -> jax.Array:
  """The float32 [D, V] unembedding matrix (the embedding's transpose when
  tied)."""
  return (params_lib.EMBED.get(params).T if cfg.tie_embeddings
          else params_lib.UNEMBED.get(params))


def init(cfg: ModelConfig, key: jax.Array) -> Params:
  """Fresh float32 parameters: a plain nested dict (see `AXES`)."""
  tokens = jnp.zeros((1, 1), jnp.int32)
  pos = jnp.zeros((1, 1), jnp.int32)
  variables = Transformer(cfg).init(key, tokens, pos, pos, {}, None)
  return variables["params"]


def apply(params: Params, cfg: ModelConfig, tokens: jax.Array, *,
          masks: dict | None = None, positions: jax.Array | None = None,
          block_len: int | None = None, cache: dict | None = None,
          remat: str = "none", return_hidden: bool = False):
  """Logits float32 [B, T, V] for int32 tokens [B, T].

  positions: int32 [B, T], increasing along T (default 0..T-1, or the cache's
    next slots when decoding).
  block_len: blockwise causal attention (each block sees itself and the
    previous one), for inputs longer than the training length.
  cache: from `init_cache`; when given, returns (logits, new_cache) and each
    call appends its T tokens.
  remat: what each block keeps for the backward pass, one of `REMAT` (see
    the module docstring).
  return_hidden: the final norm's float32 output [B, T, D] instead of
    the logits (`project(x, unembedding(params, cfg), cfg)` makes them).
  masks: None or {} is a fully grown model: no mask arithmetic at all.
  """
  tokens = jnp.asarray(tokens, jnp.int32)
  b, t = tokens.shape
  if positions is None:
    start = 0 if cache is None else cache["index"]
    positions = jnp.broadcast_to(start + jnp.arange(t, dtype=jnp.int32), (b, t))
  positions = jnp.asarray(positions, jnp.int32)
  masks = {} if masks is None else masks
  model = Transformer(cfg, block_len=block_len,
                      remat=checks.one_of("remat", remat, REMAT),
                      return_hidden=return_hidden)
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
  [L, B, S, G, K], key positions [B, S] (-1 marks an empty slot) and the next
  slot's index."""
  dtype = jnp.dtype(dtype or cfg.dtype)
  shape = (cfg.n_layers, batch, length, cfg.kv_heads, cfg.head_dim)
  return {"k": jnp.zeros(shape, dtype), "v": jnp.zeros(shape, dtype),
          "pos": jnp.full((batch, length), -1, jnp.int32),
          "index": jnp.zeros((), jnp.int32)}


def param_count(cfg: ModelConfig) -> int:
  """Number of parameters `init(cfg, key)` creates."""
  unembed = 0 if cfg.tie_embeddings else cfg.d_model * cfg.vocab_size
  return (cfg.vocab_size * cfg.d_model + non_embedding_param_count(cfg)
          + unembed)


def norm_param_count(cfg: ModelConfig) -> int:
  """Scales (and LayerNorm biases) of the 2 L + 1 norms: elementwise
  parameters, not matmul weights."""
  per_norm = cfg.d_model * (2 if cfg.norm == "layernorm" else 1)
  return (2 * cfg.n_layers + 1) * per_norm


def non_embedding_param_count(cfg: ModelConfig) -> int:
  """Parameters outside the embedding and unembedding tables."""
  d, f, k = cfg.d_model, cfg.d_ff, cfg.head_dim
  attention = 2 * d * k * (cfg.n_heads + cfg.kv_heads)  # q, o; k, v
  if cfg.qkv_bias:
    attention += k * (cfg.n_heads + 2 * cfg.kv_heads)
  mlp = (3 if cfg.mlp == "swiglu" else 2) * d * f
  return cfg.n_layers * (attention + mlp) + norm_param_count(cfg)
