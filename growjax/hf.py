"""Hugging Face (transformers) checkpoints <-> growjax parameters.

    config, tensors = hf.to_hf(params, cfg)           # numpy, PyTorch layout
    fields, params = hf.from_hf(config, tensors)       # ModelConfig(**fields)
    hf.save_pretrained("out", params, cfg, tokenizer_model_path=...)
    fields, params = hf.load_pretrained("out")
    fields = hf.check_pretrained("out")                # no tensor data read

Architectures (each needs pos="rope"), and the ModelConfig options they
carry (`norm_eps`, `rope_theta`, `rope_scaling` linear or llama3, tied or
untied embeddings everywhere):

  GPTNeoXForCausalLM  norm="layernorm", mlp="gelu" (gelu_new) or "gelu_erf"
                      (gelu); parallel_residual, rotary_fraction (rotary_pct),
                      qkv_bias (attention_bias; dense's bias must be zero, as
                      must the MLP's); heads * head_dim == d_model, no GQA.
  LlamaForCausalLM    norm="rmsnorm", mlp="swiglu"; grouped-query attention
                      (num_key_value_heads), any head_dim; qkv_bias
                      (attention_bias, with a zero o_proj bias).
  Qwen2ForCausalLM    as Llama, always with q/k/v biases (qkv_bias=True); no
                      sliding-window layer.
  MistralForCausalLM  as Llama, no biases; sliding_window must be null.

Export picks GPT-NeoX for LayerNorm + GeLU, Qwen2 for RMSNorm + SwiGLU with
q/k/v biases, Llama without; `architecture=` names another (Mistral).

One table per architecture (`ARCHITECTURES`) says, for every tensor of a
transformers checkpoint, which growjax parameter(s) it holds, its shape in
the model's sizes, and the layout that turns one into the other. A new
architecture option of the model is a new table, not new code. What the
tables encode, read off transformers' modeling code:

  - torch Linear weights are [out, in]; growjax's matrices are [in, out]
    (`w_DF`, `q_DHK`), so every matrix is transposed and heads are flattened
    head-major (h * K + k).
  - GPT-NeoX fuses q, k and v into `query_key_value`, whose output rows are
    [heads, 3, head_dim]: per head its q, then k, then v.
  - RoPE: growjax rotates channel pairs (2i, 2i+1) (`growjax.positions`),
    transformers' `rotate_half` rotates pairs (i, i + R/2); both at angle
    position * theta^(-2i/R) over the first R rotary channels (R = K, or
    rotary_fraction * K). So every q and k head's channels (and q/k biases)
    are permuted, HF channel j = growjax channel `rotary_order(K, R)[j]` =
    (0, 2, ..., R-2, 1, 3, ..., R-1, R, R+1, ..., K-1), and q.k, hence
    attention, is unchanged (v and o are not permuted).
  - growjax's only linear biases are q/k/v's: GPT-NeoX's dense and MLP biases
    (and Llama's o_proj bias) are written as zeros and must be zero on import
    (`check_pretrained` reads them too).
  - flax's `nn.gelu` is the tanh approximation, transformers' "gelu_new";
    mlp="gelu_erf" is the erf form, transformers' "gelu" (Pythia's).
  - Llama's k_proj and v_proj hold num_key_value_heads heads, and query head
    h reads key/value head h // (H / G) (repeat_kv), as growjax's k and v
    [L, D, G, K] do; gate_proj is growjax's wg, up_proj wi, down_proj wo.

Files are what transformers writes: config.json, model.safetensors (or
model-0000k-of-0000n.safetensors shards with model.safetensors.index.json),
written and read with `safetensors.numpy` (no PyTorch), and the tokenizer:
the sentencepiece model as tokenizer.model plus a tokenizer.json that
transformers' fast tokenizer reproduces it with exactly (see `tokenizer_json`).

Anything growjax cannot represent exactly (xPos, non-zero biases other than
q/k/v's, rope scaling other than linear and llama3, partial rotary outside
GPT-NeoX, sliding-window attention, another activation, unknown
architectures, shapes that disagree with the config, MSG masks mid-ramp) is
a `ConversionError`: one line naming the file (with its directory) and the
field as the file spells it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import re
import shutil
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from growjax import checks
from growjax import mup
from growjax import params as P  # the parameter table: P.Q.path, ...
from growjax.config import ROPE_SCALINGS, ModelConfig

Params = dict[str, Any]

SINGLE = "model.safetensors"  # or shards listed in INDEX
INDEX = "model.safetensors.index.json"
MAX_SHARD_BYTES = 5_000_000_000  # transformers' default shard size, "5GB"
ROPE_THETA = 10000.0  # transformers' default rotary base
INIT_FROM = "hf:"  # an experiment's init_from: "hf:DIR"


class ConversionError(ValueError):
  """A checkpoint or model growjax cannot convert exactly; names the file
  and the field."""


def half_split(head_dim: int) -> np.ndarray:
  """HF channel j of a rotary head holds growjax channel half_split(K)[j]."""
  return np.concatenate([np.arange(0, head_dim, 2), np.arange(1, head_dim, 2)])


def rotary_order(head_dim: int, rotary_dims: int | None = None) -> np.ndarray:
  """HF channel j of a head holds growjax channel rotary_order(K, R)[j]: the
  first R (rotary) channels half-split, the others in place (partial
  rotary: transformers rotates q[..., :R] with rotate_half, growjax the
  pairs (2i, 2i+1) of the same R channels)."""
  r = head_dim if rotary_dims is None else rotary_dims
  return np.concatenate([half_split(r), np.arange(r, head_dim)])


# --- Layouts: growjax arrays (one layer) <-> one HF tensor ------------------


def _order(head) -> np.ndarray:
  """A head's channel order (`rotary_order`); an int K means all rotary."""
  return rotary_order(head) if isinstance(head, (int, np.integer)) else head


@dataclasses.dataclass(frozen=True)
class Layout:
  """to_hf(arrays, order) -> tensor; from_hf(tensor, order) -> arrays.
  `order` is `rotary_order(K, R)` (K = its length); an int K stands for
  rotary_order(K)."""
  to_hf: Callable[[list[np.ndarray], Any], np.ndarray]
  from_hf: Callable[[np.ndarray, Any], list[np.ndarray]]


def _heads_in(rope: bool) -> Layout:
  """q/k/v [D, H, K] <-> torch Linear [H*K, D]; rotary heads reordered."""
  def to_hf(arrays, head):
    (w_DHK,) = arrays
    if rope:
      w_DHK = w_DHK[..., _order(head)]
    return w_DHK.reshape(w_DHK.shape[0], -1).T

  def from_hf(t, head):
    order = _order(head)
    w_DHK = t.T.reshape(t.shape[1], -1, order.size)
    return [w_DHK[..., np.argsort(order)] if rope else w_DHK]
  return Layout(to_hf, from_hf)


def _bias_heads(rope: bool) -> Layout:
  """q/k/v biases [H, K] <-> torch Linear bias [H*K]."""
  def to_hf(arrays, head):
    (b_HK,) = arrays
    return (b_HK[..., _order(head)] if rope else b_HK).reshape(-1)

  def from_hf(t, head):
    order = _order(head)
    b_HK = t.reshape(-1, order.size)
    return [b_HK[..., np.argsort(order)] if rope else b_HK]
  return Layout(to_hf, from_hf)


def _fused_to_hf(arrays, head):
  """q, k, v [..., H, K] -> [..., H, 3, K] (GPT-NeoX's query_key_value rows
  per head: its q, then k, then v), q and k reordered."""
  q, k, v = arrays
  order = _order(head)
  return np.stack([q[..., order], k[..., order], v], axis=-2)


def _fused_from_hf(w_H3K, head):
  inv = np.argsort(_order(head))
  return [w_H3K[..., 0, :][..., inv], w_H3K[..., 1, :][..., inv],
          w_H3K[..., 2, :]]


LAYOUTS: dict[str, Layout] = {
    "copy": Layout(lambda a, h: a[0], lambda t, h: [t]),
    "transpose": Layout(lambda a, h: a[0].T, lambda t, h: [t.T]),
    "heads_in_rope": _heads_in(rope=True),
    "heads_in": _heads_in(rope=False),
    # o [H, K, D] <-> torch Linear [D, H*K]
    "heads_out": Layout(
        lambda a, h: a[0].reshape(-1, a[0].shape[-1]).T,
        lambda t, h: [t.T.reshape(-1, _order(h).size, t.shape[0])]),
    "bias_heads_rope": _bias_heads(rope=True),
    "bias_heads": _bias_heads(rope=False),
    # GPT-NeoX's query_key_value: output rows [H, 3, K]
    "qkv_fused": Layout(
        lambda a, h: _fused_to_hf(a, h).reshape(a[0].shape[0], -1).T,
        lambda t, h: _fused_from_hf(
            t.T.reshape(t.shape[1], -1, 3, _order(h).size), h)),
    "qkv_bias_fused": Layout(
        lambda a, h: _fused_to_hf(a, h).reshape(-1),
        lambda t, h: _fused_from_hf(t.reshape(-1, 3, _order(h).size), h)),
    # a bias growjax does not have: written as zeros, must be zero on import
    "zero": Layout(None, lambda t, h: []),
}


@dataclasses.dataclass(frozen=True)
class Row:
  """One HF tensor: its name ("{i}" is the layer index), the growjax params
  it holds (stacked over layers when the name has "{i}"), the layout, and its
  shape as products of growjax size names ("3*heads*head_dim"). `when`
  (field, value): the tensor exists only in models with that field value."""
  hf: str
  paths: tuple[str, ...]
  layout: str
  shape: tuple[str, ...]
  when: tuple[str, Any] | None = None

  @property
  def per_layer(self) -> bool:
    return "{i}" in self.hf


@dataclasses.dataclass(frozen=True)
class Architecture:
  """A transformers architecture as a table of rows plus its config keys."""
  name: str  # config.json's architectures[0]
  model_type: str
  norm: str  # the growjax options it stands for
  mlps: tuple[str, ...]
  rows: tuple[Row, ...]
  keys: Mapping[str, str]  # growjax size name -> the config key that sets it
  # growjax fields -> config.json; a ConversionError for fields it cannot hold
  to_config: Callable[[dict], dict]
  to_fields: Callable[[dict, str], dict]  # config.json -> growjax fields
  ignored: tuple[str, ...] = ()  # regexes of non-parameter buffers

  def rows_for(self, fields: Mapping[str, Any]) -> tuple[Row, ...]:
    """The rows of a model with these fields: tied embeddings have no
    unembedding tensor; a row with `when` needs that field value."""
    return tuple(
        r for r in self.rows
        if not (fields["tie_embeddings"] and P.UNEMBED.path in r.paths)
        and (r.when is None or fields.get(r.when[0]) == r.when[1]))


def _sizes(fields: Mapping[str, Any]) -> dict[str, int]:
  return {"vocab": fields["vocab_size"], "embed": fields["d_model"],
          "mlp": fields["d_ff"], "heads": fields["n_heads"],
          "kv_heads": fields.get("n_kv_heads") or fields["n_heads"],
          "head_dim": fields["head_dim"], "layers": fields["n_layers"]}


def _head_order(fields: Mapping[str, Any]) -> np.ndarray:
  k = fields["head_dim"]
  return rotary_order(k, int(fields.get("rotary_fraction", 1.0) * k))


def _shape(spec: tuple[str, ...], sizes: Mapping[str, int]) -> tuple[int, ...]:
  return tuple(math.prod(int(t) if t.isdigit() else sizes[t]
                         for t in dim.split("*")) for dim in spec)


# --- Configs -----------------------------------------------------------------


def _get(config: Mapping[str, Any], key: str, default: Any = None, *,
         where: str, required: bool = False) -> Any:
  if key not in config or config[key] is None:
    if required:
      raise ConversionError(f"{where}: {key} is missing")
    return default
  return config[key]


def _positive(value: Any, name: str, where: str) -> float:
  if not checks.is_number(value) or not value > 0:
    raise ConversionError(f"{where}: {name}={value!r} is not a positive "
                          "number")
  return float(value)


def _rope(config: Mapping[str, Any], where: str, *, head_dim: int,
          theta_key: str, partial_key: str | None, partial_default: float,
          partial: bool) -> dict:
  """growjax's rope_theta, rotary_fraction and rope_scaling fields of a
  config, each refusal naming the key as the file spells it. transformers 5
  keeps them in rope_parameters; earlier versions in top-level keys and
  rope_scaling, which transformers 5 still prefers when present."""
  scaling = config.get("rope_scaling") or {}
  spec_key, spec = (("rope_scaling", scaling) if scaling else
                    ("rope_parameters", config.get("rope_parameters") or {}))
  if not isinstance(spec, Mapping):
    raise ConversionError(f"{where}: {spec_key}={spec!r} is not an object")

  def value(key, top_key, default):
    """(value, its name in the file) of a rope parameter."""
    if spec.get(key) is not None:
      return spec[key], f"{spec_key}.{key}"
    if top_key is not None and config.get(top_key) is not None:
      return config[top_key], top_key
    return default, f"{top_key or spec_key + '.' + key} (default)"

  theta, name = value("rope_theta", theta_key, config.get("rope_theta",
                                                          ROPE_THETA))
  fields = {"rope_theta": _positive(theta, name, where)}
  fraction, name = value("partial_rotary_factor", partial_key,
                         partial_default)
  fraction = _positive(fraction, name, where)
  dims = int(head_dim * fraction)  # transformers' rotary_ndims
  if fraction != 1.0 and not partial:
    raise ConversionError(
        f"{where}: {name}={fraction:g}: this architecture rotates every "
        "channel of a head (growjax converts partial rotary only for "
        "GPTNeoXForCausalLM)")
  if fraction > 1.0 or dims < 2 or dims % 2:
    raise ConversionError(
        f"{where}: {name}={fraction:g} of head_dim {head_dim} rotates {dims} "
        "channels, not a positive even number within the head")
  fields["rotary_fraction"] = dims / head_dim
  kind = spec.get("rope_type", spec.get("type", "default"))
  name = f"{spec_key}.{'rope_type' if 'rope_type' in spec else 'type'}"
  if kind not in ("default",) + ROPE_SCALINGS:
    raise ConversionError(
        f"{where}: {name}={kind!r}: growjax's rope converts only 'default', "
        f"{', '.join(repr(k) for k in ROPE_SCALINGS)}")
  if kind == "default":
    return {**fields, "rope_scaling": None}
  factor, fname = value("factor", None, None)
  if factor is None:
    raise ConversionError(f"{where}: {spec_key}.factor is missing "
                          f"(rope_type {kind!r} needs it)")
  scale = {"kind": kind, "factor": _positive(factor, fname, where)}
  if kind == "llama3":
    for key, ours in (("low_freq_factor", "low_freq_factor"),
                      ("high_freq_factor", "high_freq_factor")):
      v, vname = value(key, None, None)
      if v is None:
        raise ConversionError(f"{where}: {spec_key}.{key} is missing "
                              "(rope_type 'llama3' needs it)")
      scale[ours] = _positive(v, vname, where)
    old, oname = value("original_max_position_embeddings",
                       "original_max_position_embeddings",
                       config.get("max_position_embeddings"))
    if not checks.is_int(old) or old < 1:
      raise ConversionError(f"{where}: {oname}={old!r} is not a positive "
                            "integer")
    scale["original_max_len"] = int(old)
    if scale["high_freq_factor"] <= scale["low_freq_factor"]:
      raise ConversionError(
          f"{where}: {spec_key}.high_freq_factor={scale['high_freq_factor']:g}"
          f" <= low_freq_factor={scale['low_freq_factor']:g}")
  return {**fields, "rope_scaling": scale}


def _rope_config(f: Mapping[str, Any]) -> dict:
  """transformers 5's rope_parameters of growjax fields."""
  out = {"rope_type": "default", "rope_theta": f["rope_theta"],
         "partial_rotary_factor": f.get("rotary_fraction", 1.0)}
  scaling = f.get("rope_scaling")
  if scaling:
    out.update(rope_type=scaling["kind"], factor=scaling["factor"])
    if scaling["kind"] == "llama3":
      out.update(low_freq_factor=scaling["low_freq_factor"],
                 high_freq_factor=scaling["high_freq_factor"],
                 original_max_position_embeddings=scaling["original_max_len"])
  return out


def _check_value(config, key, allowed, default, where, why) -> Any:
  value = _get(config, key, default, where=where)
  if value not in allowed:
    raise ConversionError(f"{where}: {key}={value!r}: {why}")
  return value


def _boolean(config, key, default, where) -> bool:
  value = _get(config, key, default, where=where)
  if not isinstance(value, bool):
    raise ConversionError(f"{where}: {key}={value!r} is not true or false")
  return value


def _refuse(f: Mapping[str, Any], arch: str, **unsupported) -> None:
  """A ConversionError for the first field whose value `arch` cannot hold:
  unsupported = {field: (the value it must have, why)}."""
  for field, (want, why) in unsupported.items():
    if f.get(field, want) != want:
      raise ConversionError(f"model: {field}={f[field]!r}: {arch} {why}")


def _common_config(f: Mapping[str, Any], arch: Architecture) -> dict:
  return {
      "architectures": [arch.name], "model_type": arch.model_type,
      "vocab_size": f["vocab_size"], "hidden_size": f["d_model"],
      "num_hidden_layers": f["n_layers"],
      "num_attention_heads": f["n_heads"], "intermediate_size": f["d_ff"],
      "max_position_embeddings": f["max_len"],
      "tie_word_embeddings": f["tie_embeddings"],
      "initializer_range": f["init_std"],
      "rope_parameters": _rope_config(f),
      "dtype": "float32", "use_cache": True,
  }


def _common_fields(c: Mapping[str, Any], where: str) -> dict:
  fields = {
      "vocab_size": _get(c, "vocab_size", where=where, required=True),
      "d_model": _get(c, "hidden_size", where=where, required=True),
      "n_layers": _get(c, "num_hidden_layers", where=where, required=True),
      "n_heads": _get(c, "num_attention_heads", where=where, required=True),
      "d_ff": _get(c, "intermediate_size", where=where, required=True),
      "max_len": _get(c, "max_position_embeddings", 2048, where=where),
      "pos": "rope",
      "tie_embeddings": _boolean(c, "tie_word_embeddings", False, where),
  }
  for key, name in (("vocab_size", "vocab_size"), ("d_model", "hidden_size"),
                    ("n_layers", "num_hidden_layers"),
                    ("n_heads", "num_attention_heads"),
                    ("d_ff", "intermediate_size"),
                    ("max_len", "max_position_embeddings")):
    value = fields[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
      raise ConversionError(f"{where}: {name}={value!r} is not a positive "
                            "integer")
  std = c.get("initializer_range")
  if isinstance(std, (int, float)) and not isinstance(std, bool) and std > 0:
    fields["init_std"] = float(std)
  return fields


def _neox_config(f: Mapping[str, Any]) -> dict:
  if f["n_heads"] * f["head_dim"] != f["d_model"]:
    raise ConversionError(
        f"model: GPTNeoXForCausalLM needs n_heads * head_dim == d_model "
        f"({f['n_heads']} * {f['head_dim']} != {f['d_model']})")
  if _sizes(f)["kv_heads"] != f["n_heads"]:
    raise ConversionError(
        f"model: n_kv_heads={f['n_kv_heads']}: GPTNeoXForCausalLM has no "
        "grouped-query attention (norm='rmsnorm', mlp='swiglu' export as "
        "LlamaForCausalLM, which has)")
  return {
      **_common_config(f, GPT_NEOX),
      "hidden_act": "gelu_new" if f["mlp"] == "gelu" else "gelu",
      "layer_norm_eps": f["norm_eps"],
      "use_parallel_residual": f["parallel_residual"],
      # query_key_value's and dense's biases (dense's written as zeros)
      "attention_bias": f["qkv_bias"],
      # both spellings: transformers 5 reads rope_parameters, and some of its
      # versions still default a missing rotary_pct to 0.25
      "rotary_pct": f["rotary_fraction"], "rotary_emb_base": f["rope_theta"],
      "attention_dropout": 0.0, "hidden_dropout": 0.0,
  }


NEOX_ACTIVATIONS = {"gelu": "gelu_erf", "gelu_new": "gelu",
                    "gelu_pytorch_tanh": "gelu"}


def _neox_fields(c: Mapping[str, Any], where: str) -> dict:
  fields = _common_fields(c, where)
  d, h = fields["d_model"], fields["n_heads"]
  if d % h:
    raise ConversionError(
        f"{where}: hidden_size={d} is not a multiple of "
        f"num_attention_heads={h}")
  act = _check_value(c, "hidden_act", tuple(NEOX_ACTIVATIONS), "gelu", where,
                     "growjax's MLP has the erf GeLU (gelu) and the tanh "
                     "GeLU (gelu_new, gelu_pytorch_tanh)")
  rope = _rope(c, where, head_dim=d // h, theta_key="rotary_emb_base",
               partial_key="rotary_pct", partial_default=0.25, partial=True)
  return {**fields, **rope, "head_dim": d // h, "norm": "layernorm",
          "mlp": NEOX_ACTIVATIONS[act], "n_kv_heads": None,
          "norm_eps": _positive(_get(c, "layer_norm_eps", 1e-5, where=where),
                                "layer_norm_eps", where),
          "parallel_residual": _boolean(c, "use_parallel_residual", True,
                                        where),
          "qkv_bias": _boolean(c, "attention_bias", True, where)}


def _llama_like_config(arch_name: str) -> Callable[[dict], dict]:
  def to_config(f: Mapping[str, Any]) -> dict:
    arch = ARCHITECTURES[arch_name]
    bias = {"LlamaForCausalLM": (f["qkv_bias"], "has q/k/v biases only with "
                                 "attention_bias (and a zero o_proj bias)"),
            "Qwen2ForCausalLM": (True, "always has q/k/v biases"),
            "MistralForCausalLM": (False, "has no biases")}[arch_name]
    _refuse(f, arch_name,
            qkv_bias=bias,
            parallel_residual=(False, "has sequential blocks "
                               "(GPTNeoXForCausalLM has parallel ones)"),
            rotary_fraction=(1.0, "rotates every channel of a head "
                             "(GPTNeoXForCausalLM has partial rotary)"))
    config = {
        **_common_config(f, arch),
        "num_key_value_heads": _sizes(f)["kv_heads"],
        "head_dim": f["head_dim"], "hidden_act": "silu",
        "rms_norm_eps": f["norm_eps"], "rope_theta": f["rope_theta"],
        "attention_dropout": 0.0,
    }
    if arch_name == "LlamaForCausalLM":
      config.update(attention_bias=f["qkv_bias"], mlp_bias=False)
    else:  # no sliding-window attention anywhere
      config.update(sliding_window=None)
    if arch_name == "Qwen2ForCausalLM":
      config.update(use_sliding_window=False, max_window_layers=f["n_layers"],
                    layer_types=["full_attention"] * f["n_layers"])
    return config
  return to_config


def _llama_like_fields(arch_name: str) -> Callable[[dict, str], dict]:
  def to_fields(c: Mapping[str, Any], where: str) -> dict:
    fields = _common_fields(c, where)
    d, h = fields["d_model"], fields["n_heads"]
    _check_value(c, "hidden_act", ("silu",), "silu", where,
                 "growjax's SwiGLU gates with silu")
    if arch_name == "LlamaForCausalLM":
      _check_value(c, "mlp_bias", (False,), False, where,
                   "growjax's MLP has no biases")
      qkv_bias = _boolean(c, "attention_bias", False, where)
    else:
      qkv_bias = arch_name == "Qwen2ForCausalLM"
    if arch_name == "MistralForCausalLM":  # transformers' default: 4096
      window = c.get("sliding_window", 4096)
      if window is not None:
        raise ConversionError(
            f"{where}: sliding_window={window!r}: sliding-window attention "
            "is not supported; growjax attends to the whole context (null)")
    if arch_name == "Qwen2ForCausalLM":
      types = c.get("layer_types") or []
      sliding = [i for i, t in enumerate(types) if t != "full_attention"]
      if not types and _boolean(c, "use_sliding_window", False, where) and (
          c.get("sliding_window") is not None
          and c.get("max_window_layers", 28) < fields["n_layers"]):
        sliding = [c.get("max_window_layers", 28)]
      if sliding:
        raise ConversionError(
            f"{where}: use_sliding_window / layer_types: layer {sliding[0]} "
            "has sliding-window attention, which is not supported; growjax "
            "attends to the whole context")
    kv = _get(c, "num_key_value_heads", h, where=where)
    if not isinstance(kv, int) or kv < 1 or h % kv:
      raise ConversionError(
          f"{where}: num_key_value_heads={kv!r} does not divide "
          f"num_attention_heads={h}")
    head_dim = _get(c, "head_dim", d // h, where=where)
    if not isinstance(head_dim, int) or head_dim < 2 or head_dim % 2:
      raise ConversionError(f"{where}: head_dim={head_dim!r} is not a "
                            "positive even integer")
    rope = _rope(c, where, head_dim=head_dim, theta_key="rope_theta",
                 partial_key=None, partial_default=1.0, partial=False)
    return {**fields, **rope, "head_dim": head_dim, "norm": "rmsnorm",
            "mlp": "swiglu", "qkv_bias": qkv_bias, "parallel_residual": False,
            "norm_eps": _positive(_get(c, "rms_norm_eps", 1e-6, where=where),
                                  "rms_norm_eps", where),
            # None: one key/value head per query head, growing with n_heads
            "n_kv_heads": None if kv == h else kv}
  return to_fields


_BLOCK = "gpt_neox.layers.{i}."
_QKV = (P.Q.path, P.K.path, P.V.path)
GPT_NEOX = Architecture(
    name="GPTNeoXForCausalLM", model_type="gpt_neox",
    norm="layernorm", mlps=("gelu", "gelu_erf"),
    rows=(
        Row("gpt_neox.embed_in.weight", (P.EMBED.path,), "copy",
            ("vocab", "embed")),
        Row(_BLOCK + "input_layernorm.weight", (P.LN1_SCALE.path,), "copy",
            ("embed",)),
        Row(_BLOCK + "input_layernorm.bias", (P.LN1_BIAS.path,), "copy",
            ("embed",)),
        Row(_BLOCK + "attention.query_key_value.weight", _QKV, "qkv_fused",
            ("3*heads*head_dim", "embed")),
        Row(_BLOCK + "attention.query_key_value.bias",
            (P.Q_BIAS.path, P.K_BIAS.path, P.V_BIAS.path), "qkv_bias_fused",
            ("3*heads*head_dim",), when=("qkv_bias", True)),
        Row(_BLOCK + "attention.dense.weight", (P.O.path,),
            "heads_out", ("embed", "heads*head_dim")),
        Row(_BLOCK + "attention.dense.bias", (), "zero", ("embed",),
            when=("qkv_bias", True)),
        Row(_BLOCK + "post_attention_layernorm.weight", (P.LN2_SCALE.path,),
            "copy", ("embed",)),
        Row(_BLOCK + "post_attention_layernorm.bias", (P.LN2_BIAS.path,),
            "copy", ("embed",)),
        Row(_BLOCK + "mlp.dense_h_to_4h.weight", (P.WI.path,),
            "transpose", ("mlp", "embed")),
        Row(_BLOCK + "mlp.dense_h_to_4h.bias", (), "zero", ("mlp",)),
        Row(_BLOCK + "mlp.dense_4h_to_h.weight", (P.WO.path,),
            "transpose", ("embed", "mlp")),
        Row(_BLOCK + "mlp.dense_4h_to_h.bias", (), "zero", ("embed",)),
        Row("gpt_neox.final_layer_norm.weight", (P.LN_F_SCALE.path,), "copy",
            ("embed",)),
        Row("gpt_neox.final_layer_norm.bias", (P.LN_F_BIAS.path,), "copy",
            ("embed",)),
        Row("embed_out.weight", (P.UNEMBED.path,), "transpose",
            ("vocab", "embed")),
    ),
    keys={"vocab": "vocab_size", "embed": "hidden_size",
          "mlp": "intermediate_size", "heads": "num_attention_heads",
          "kv_heads": "num_attention_heads",
          "head_dim": "hidden_size/num_attention_heads",
          "layers": "num_hidden_layers"},
    to_config=_neox_config, to_fields=_neox_fields,
    # buffers that older transformers versions saved with the weights
    ignored=(r"\.attention\.(masked_)?bias$", r"\.rotary_emb\.inv_freq$"),
)


def _llama_like(name: str, model_type: str, o_bias: bool) -> Architecture:
  """Llama and its relatives: RMSNorm (scale only), SwiGLU (gate "wg", up
  "wi", down "wo"), grouped-query attention (k, v [L, D, G, K]); q/k/v biases
  where the model has them (Qwen2 always, Llama with attention_bias, which
  also gives o_proj a bias: zero)."""
  layer = "model.layers.{i}."
  bias = ("qkv_bias", True)
  return Architecture(
      name=name, model_type=model_type, norm="rmsnorm", mlps=("swiglu",),
      rows=(
          Row("model.embed_tokens.weight", (P.EMBED.path,), "copy",
              ("vocab", "embed")),
          Row(layer + "input_layernorm.weight", (P.LN1_SCALE.path,), "copy",
              ("embed",)),
          Row(layer + "self_attn.q_proj.weight", (P.Q.path,),
              "heads_in_rope", ("heads*head_dim", "embed")),
          Row(layer + "self_attn.q_proj.bias", (P.Q_BIAS.path,),
              "bias_heads_rope", ("heads*head_dim",), when=bias),
          Row(layer + "self_attn.k_proj.weight", (P.K.path,),
              "heads_in_rope", ("kv_heads*head_dim", "embed")),
          Row(layer + "self_attn.k_proj.bias", (P.K_BIAS.path,),
              "bias_heads_rope", ("kv_heads*head_dim",), when=bias),
          Row(layer + "self_attn.v_proj.weight", (P.V.path,),
              "heads_in", ("kv_heads*head_dim", "embed")),
          Row(layer + "self_attn.v_proj.bias", (P.V_BIAS.path,),
              "bias_heads", ("kv_heads*head_dim",), when=bias),
          Row(layer + "self_attn.o_proj.weight", (P.O.path,),
              "heads_out", ("embed", "heads*head_dim")),
          *((Row(layer + "self_attn.o_proj.bias", (), "zero", ("embed",),
                 when=bias),) if o_bias else ()),
          Row(layer + "post_attention_layernorm.weight",
              (P.LN2_SCALE.path,), "copy", ("embed",)),
          Row(layer + "mlp.gate_proj.weight", (P.WG.path,), "transpose",
              ("mlp", "embed")),
          Row(layer + "mlp.up_proj.weight", (P.WI.path,), "transpose",
              ("mlp", "embed")),
          Row(layer + "mlp.down_proj.weight", (P.WO.path,), "transpose",
              ("embed", "mlp")),
          Row("model.norm.weight", (P.LN_F_SCALE.path,), "copy", ("embed",)),
          Row("lm_head.weight", (P.UNEMBED.path,), "transpose", ("vocab", "embed")),
      ),
      keys={"vocab": "vocab_size", "embed": "hidden_size",
            "mlp": "intermediate_size", "heads": "num_attention_heads",
            "kv_heads": "num_key_value_heads", "head_dim": "head_dim",
            "layers": "num_hidden_layers"},
      to_config=_llama_like_config(name), to_fields=_llama_like_fields(name),
      ignored=(r"\.rotary_emb\.inv_freq$",),
  )


LLAMA = _llama_like("LlamaForCausalLM", "llama", o_bias=True)
QWEN2 = _llama_like("Qwen2ForCausalLM", "qwen2", o_bias=False)
MISTRAL = _llama_like("MistralForCausalLM", "mistral", o_bias=False)

ARCHITECTURES: dict[str, Architecture] = {
    a.name: a for a in (GPT_NEOX, LLAMA, QWEN2, MISTRAL)}


def architecture_of(config: Mapping[str, Any],
                    where: str = "config.json") -> Architecture:
  """The table for a config.json (by `architectures`, else `model_type`)."""
  names = config.get("architectures") or []
  if names:
    if len(names) == 1 and names[0] in ARCHITECTURES:
      return ARCHITECTURES[names[0]]
    found = names
  else:
    by_type = {a.model_type: a for a in ARCHITECTURES.values()}
    if config.get("model_type") in by_type:
      return by_type[config["model_type"]]
    found = config.get("model_type")
  raise ConversionError(
      f"{where}: architectures={found!r}: growjax converts only "
      f"{', '.join(ARCHITECTURES)}")


def architecture_for(fields: Mapping[str, Any],
                     name: str | None = None) -> Architecture:
  """The table that represents a growjax model with these fields: `name`
  (an ARCHITECTURES key) if given, else GPT-NeoX for LayerNorm + GeLU, and
  for RMSNorm + SwiGLU Qwen2 with q/k/v biases, Llama without. Whether the
  table holds every field is checked by its `to_config`."""
  if fields["pos"] == "xpos":
    raise ConversionError(
        "model.pos='xpos': no standard architecture has xPos; only rope "
        "models export to Hugging Face")
  if name is not None:
    if name not in ARCHITECTURES:
      raise ConversionError(f"architecture: {name!r} is not one of "
                            f"{', '.join(ARCHITECTURES)}")
    arch = ARCHITECTURES[name]
    if fields["norm"] != arch.norm or fields["mlp"] not in arch.mlps:
      raise ConversionError(
          f"architecture: {name} has norm={arch.norm!r} and mlp in "
          f"{arch.mlps}, not the model's norm={fields['norm']!r}, "
          f"mlp={fields['mlp']!r}")
    return arch
  if fields["norm"] == "layernorm" and fields["mlp"] in GPT_NEOX.mlps:
    return GPT_NEOX
  if (fields["norm"], fields["mlp"]) == ("rmsnorm", "swiglu"):
    return QWEN2 if fields.get("qkv_bias") else LLAMA
  raise ConversionError(
      f"model: norm={fields['norm']!r} with mlp={fields['mlp']!r} has no "
      "standard architecture (layernorm+gelu: GPT-NeoX, rmsnorm+swiglu: "
      "Llama, Qwen2, Mistral)")


def growjax_fields(cfg: ModelConfig | Mapping[str, Any]) -> dict:
  """A config's fields (ModelConfig keyword arguments) as a dict."""
  return dict(cfg.to_dict() if isinstance(cfg, ModelConfig) else cfg)


def model_config(fields: Mapping[str, Any],
                 where: str = "config.json") -> ModelConfig:
  """ModelConfig(**fields); a value it refuses is a ConversionError naming
  the file."""
  try:
    return ModelConfig(**fields)
  except ValueError as e:
    raise ConversionError(f"{where}: {e}") from None


# --- Tensors -----------------------------------------------------------------


def _flatten(params: Mapping[str, Any], prefix: str = "") -> dict:
  flat = {}
  for key, value in params.items():
    path = f"{prefix}{key}"
    if isinstance(value, Mapping):
      flat.update(_flatten(value, path + "/"))
    else:
      flat[path] = value
  return flat


def _nest(flat: Mapping[str, np.ndarray]) -> Params:
  params: Params = {}
  for path, value in flat.items():
    *parents, leaf = path.split("/")
    node = params
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = value
  return params


def params_to_tensors(arch: Architecture, fields: Mapping[str, Any],
                      params: Params) -> dict[str, np.ndarray]:
  """Every HF tensor of `arch` from growjax params (float32, contiguous)."""
  flat = {p: np.asarray(v, np.float32) for p, v in _flatten(params).items()}
  sizes, order = _sizes(fields), _head_order(fields)
  rows = arch.rows_for(fields)
  unplaced = sorted(set(flat) - {p for r in rows for p in r.paths})
  if unplaced:
    raise ConversionError(
        f"params: {', '.join(unplaced)} has no place in {arch.name}'s table")
  for row in rows:
    missing = [p for p in row.paths if p not in flat]
    if missing:
      raise ConversionError(f"params: {missing[0]} is missing ({arch.name} "
                            f"needs it for {row.hf})")
  tensors = {}
  for row, i in _ordered(rows, sizes["layers"]):
    name = row.hf.format(i=i)
    shape = _shape(row.shape, sizes)
    if row.layout == "zero":
      tensors[name] = np.zeros(shape, np.float32)
      continue
    arrays = [flat[p] if i is None else flat[p][i] for p in row.paths]
    try:
      tensor = LAYOUTS[row.layout].to_hf(arrays, order)
    except ValueError as e:
      raise ConversionError(
          f"params: {', '.join(row.paths)} cannot form {name}: {e}") from None
    if tensor.shape != shape:
      raise ConversionError(
          f"params: {', '.join(row.paths)} give {name} the shape "
          f"{tensor.shape}, but the config gives {shape}")
    tensors[name] = np.ascontiguousarray(tensor)
  return tensors


def _ordered(rows: Sequence[Row], n_layers: int):
  """(row, layer) in transformers' order: rows before the layers, then
  layer by layer, then the rest (so a shard holds whole layers)."""
  first = next(k for k, r in enumerate(rows) if r.per_layer)
  for row in rows[:first]:
    yield row, None
  for i in range(n_layers):
    yield from ((row, i) for row in rows if row.per_layer)
  for row in rows[first:]:
    if not row.per_layer:
      yield row, None


def file_of(tensor_files: str | Mapping[str, str], name: str) -> str:
  """The file (with its directory, as the caller gave it) holding `name`."""
  if isinstance(tensor_files, str):
    return tensor_files
  return tensor_files.get(name) or missing_in(tensor_files)


def missing_in(tensor_files: str | Mapping[str, str]) -> str:
  """Where a tensor that no file holds should have been: the one file, or
  the shards' index beside them."""
  if isinstance(tensor_files, str):
    return tensor_files
  files = sorted(set(tensor_files.values()))
  if len(files) == 1:
    return files[0]
  return str(pathlib.Path(files[0]).parent / INDEX) if files else SINGLE


def check_tensors(arch: Architecture, fields: Mapping[str, Any],
                  shapes: Mapping[str, tuple[int, ...]], *,
                  config_file: str = "config.json",
                  tensor_files: str | Mapping[str, str] = SINGLE) -> None:
  """ConversionError naming the first tensor (by name and shape alone) that
  the config does not describe: unknown, missing or of another shape."""
  sizes = _sizes(fields)
  rows = arch.rows_for(fields)
  expected = {row.hf.format(i=i): row for row in rows
              for i in (range(sizes["layers"]) if row.per_layer else (None,))}
  tied_unembed = [r.hf for r in arch.rows
                  if P.UNEMBED.path in r.paths and fields["tie_embeddings"]]
  for name in shapes:
    if name not in expected and name not in tied_unembed and not any(
        re.search(p, name) for p in arch.ignored):
      raise ConversionError(
          f"{file_of(tensor_files, name)}: {name} is not a tensor of "
          f"{arch.name} with {_describe(arch, sizes, ('layers',))} "
          f"({config_file}); growjax cannot place it")
  for name, row in expected.items():
    if name not in shapes:
      if row.layout == "zero":
        continue  # absent bias (attention_bias=false): zero
      raise ConversionError(
          f"{missing_in(tensor_files)}: {name} is missing ({config_file} "
          f"describes {arch.name} with "
          f"{_describe(arch, sizes, ('layers',))})")
    want = _shape(row.shape, sizes)
    if tuple(shapes[name]) != want:
      raise ConversionError(
          f"{file_of(tensor_files, name)}: {name} has shape "
          f"{tuple(shapes[name])}, but {config_file} gives {want} "
          f"({_describe(arch, sizes, _names(row.shape))})")


def tensors_to_params(arch: Architecture, fields: Mapping[str, Any],
                      tensors: Mapping[str, np.ndarray], *,
                      config_file: str = "config.json",
                      tensor_files: str | Mapping[str, str] = SINGLE) -> Params:
  """growjax params (float32 numpy, stacked over layers) from HF tensors;
  every tensor is checked against the config's shapes."""
  check_tensors(arch, fields, {n: np.shape(t) for n, t in tensors.items()},
                config_file=config_file, tensor_files=tensor_files)
  sizes, order = _sizes(fields), _head_order(fields)
  rows = arch.rows_for(fields)
  per_path: dict[str, list[np.ndarray]] = {}
  for row, i in _ordered(rows, sizes["layers"]):
    name = row.hf.format(i=i)
    if name not in tensors:
      continue  # an absent bias
    tensor = np.asarray(tensors[name]).astype(np.float32)
    if row.layout == "zero":
      check_zero(name, tensor, tensor_files)
      continue
    for path, array in zip(row.paths, LAYOUTS[row.layout].from_hf(
        tensor, order)):
      per_path.setdefault(path, []).append(array)
  flat = {}
  for row in rows:
    for path in row.paths:
      arrays = per_path[path]
      flat[path] = np.stack(arrays) if row.per_layer else arrays[0]
  return _nest(flat)


def zero_tensors(arch: Architecture, fields: Mapping[str, Any]) -> list[str]:
  """The tensors growjax has no parameter for, which must be zero (biases
  other than q/k/v's): small, so a dry run reads and checks them too."""
  layers = _sizes(fields)["layers"]
  return [row.hf.format(i=i) for row, i in _ordered(arch.rows_for(fields),
                                                    layers)
          if row.layout == "zero"]


def check_zero(name: str, tensor: np.ndarray,
               tensor_files: str | Mapping[str, str] = SINGLE) -> None:
  if np.any(tensor != 0):
    raise ConversionError(
        f"{file_of(tensor_files, name)}: {name} is not zero (max |b| "
        f"{float(np.abs(tensor).max()):.3g}); growjax has no such bias (its "
        "only linear biases are q/k/v's, qkv_bias)")


def _names(spec: tuple[str, ...]) -> tuple[str, ...]:
  return tuple(dict.fromkeys(t for dim in spec for t in dim.split("*")
                             if not t.isdigit()))


def _describe(arch: Architecture, sizes: Mapping[str, int],
              names: Sequence[str]) -> str:
  return ", ".join(f"{arch.keys[n]}={sizes[n]}" for n in names)


# --- Whole models ------------------------------------------------------------


def to_hf(params: Params, cfg: ModelConfig, *, masks=None,
          architecture: str | None = None,
          max_position_embeddings: int | None = None) -> tuple[dict, dict]:
  """(config.json as a dict, {tensor name: float32 numpy array}) for a
  growjax model; a ConversionError for one no architecture represents.

  masks: MSG masks; all ones (or None) is the plain model, anything else is
    refused (a masked model has no transformers equivalent).
  architecture: an ARCHITECTURES name (default: `architecture_for`'s).
  max_position_embeddings: the config's (default cfg.max_len), e.g. the
    imported checkpoint's when the run trained shorter.
  """
  check_masks_folded(masks)
  params, cfg = mup.to_standard(params, cfg)
  fields = growjax_fields(cfg)
  arch = architecture_for(fields, architecture)
  config = arch.to_config(fields)
  if max_position_embeddings is not None:
    config["max_position_embeddings"] = checks.positive_int(
        "max_position_embeddings", max_position_embeddings)
  return config, params_to_tensors(arch, fields, params)


def check_masks_folded(masks) -> None:
  """ConversionError unless every MSG mask entry is 1 (the model is then
  the plain one, whatever the masks)."""
  for name, m in (masks or {}).items():
    m = np.asarray(m)
    if not np.all(m == 1):
      raise ConversionError(
          f"masks.{name}: {int(np.sum(m != 1))} of {m.size} entries are not "
          f"1 (min {float(m.min()):.4g}); a masked model has no Hugging Face "
          "equivalent: ramp the masks to 1 (grow.ramp) before exporting")


def from_hf(config: Mapping[str, Any], tensors: Mapping[str, np.ndarray], *,
            config_file: str = "config.json",
            tensor_files: str | Mapping[str, str] = SINGLE
            ) -> tuple[dict, Params]:
  """(ModelConfig keyword arguments, params) from a transformers config and
  its tensors. Everything is checked before any tensor is converted."""
  arch = architecture_of(config, config_file)
  fields = arch.to_fields(config, config_file)
  model_config(fields, config_file)
  params = tensors_to_params(arch, fields, tensors, config_file=config_file,
                             tensor_files=tensor_files)
  return fields, params


# --- Files -------------------------------------------------------------------

_SHARD = re.compile(r"model-\d{5}-of-\d{5}\.safetensors")


def shards(tensors: Mapping[str, np.ndarray],
           max_shard_bytes: int) -> list[list[str]]:
  """Tensor names in shards of at most `max_shard_bytes` (a larger tensor
  gets a shard of its own), in order, as transformers splits them."""
  out, size = [[]], 0
  for name, t in tensors.items():
    if out[-1] and size + t.nbytes > max_shard_bytes:
      out.append([])
      size = 0
    out[-1].append(name)
    size += t.nbytes
  return out


def save_pretrained(directory, params: Params, cfg: ModelConfig, *,
                    masks=None, tokenizer_model_path=None,
                    max_shard_bytes: int = MAX_SHARD_BYTES,
                    architecture: str | None = None,
                    max_position_embeddings: int | None = None,
                    notes: Mapping[str, str] | None = None
                    ) -> list[pathlib.Path]:
  """Writes a transformers checkpoint of the model (and the tokenizer, given
  its sentencepiece model) into `directory`; returns the files written.
  Older model files there are replaced. `masks`, `architecture` and
  `max_position_embeddings` as in `to_hf` (masks mid-ramp are refused before
  anything is written); `notes` go into config.json under "growjax"."""
  from safetensors import numpy as st  # pylint: disable=g-import-not-at-top
  checks.positive_int("max_shard_bytes", max_shard_bytes)
  config, tensors = to_hf(params, cfg, masks=masks, architecture=architecture,
                          max_position_embeddings=max_position_embeddings)
  if notes:
    config["growjax"] = dict(notes)
  if tokenizer_model_path is not None:  # the ids generation stops at
    config.update(_special_ids(tokenizer_model_path))
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  for old in directory.iterdir():  # a stale shard or index would be read
    if old.name in (SINGLE, INDEX) or _SHARD.fullmatch(old.name):
      old.unlink()
  written = [directory / "config.json"]
  written[0].write_text(json.dumps(config, indent=2) + "\n")
  groups = shards(tensors, max_shard_bytes)
  metadata = {"format": "pt"}  # the layout transformers' loader expects
  if len(groups) == 1:
    st.save_file(tensors, directory / SINGLE, metadata=metadata)
    written.append(directory / SINGLE)
  else:
    weight_map = {}
    for k, names in enumerate(groups):
      file = f"model-{k + 1:05d}-of-{len(groups):05d}.safetensors"
      st.save_file({n: tensors[n] for n in names}, directory / file,
                   metadata=metadata)
      weight_map.update({n: file for n in names})
      written.append(directory / file)
    index = {"metadata": {"total_size": sum(t.nbytes
                                            for t in tensors.values())},
             "weight_map": weight_map}
    (directory / INDEX).write_text(json.dumps(index, indent=2) + "\n")
    written.append(directory / INDEX)
  if tokenizer_model_path is not None:
    written += save_tokenizer(directory, tokenizer_model_path,
                              max_len=cfg.max_len)
  return written


def _tensor_files(directory: pathlib.Path) -> dict[str, set[str] | None]:
  """The safetensors files of a checkpoint, each with the tensor names the
  index gives it (None: the single unindexed file)."""
  index = directory / INDEX
  if (directory / SINGLE).exists():
    return {SINGLE: None}
  if not index.exists():
    raise ConversionError(
        f"{directory}: holds no {SINGLE} or {INDEX} (only safetensors "
        "checkpoints are read)")
  try:
    weight_map = json.loads(index.read_text())["weight_map"]
  except (ValueError, KeyError, TypeError):
    raise ConversionError(f"{index}: not a safetensors index (no "
                          "weight_map)") from None
  files = {}
  for name, file in weight_map.items():
    files.setdefault(file, set()).add(name)
  for file in files:
    if not (directory / file).exists():
      raise ConversionError(f"{index}: weight_map names {file}, which does "
                            "not exist")
  return files


def _read(directory: pathlib.Path, read) -> tuple[dict, dict[str, str]]:
  """({name: read(file handle, name)}, {name: file}) over every safetensors
  file, checked against the index."""
  from safetensors import safe_open  # pylint: disable=g-import-not-at-top
  out, where = {}, {}
  for file, names in _tensor_files(directory).items():
    path = directory / file
    try:
      with safe_open(path, framework="np") as f:
        found = {n: read(f, n) for n in f.keys()}
    except Exception as e:  # pylint: disable=broad-except
      raise ConversionError(f"{path}: not a safetensors file ({e})") from None
    if names is not None and set(found) != names:
      odd = sorted(set(found) ^ names)[0]
      raise ConversionError(
          f"{directory / INDEX}: weight_map and {file} disagree about "
          f"tensor {odd}")
    out.update(found)
    where.update({n: file for n in found})
  return out, where


def read_tensors(directory) -> tuple[dict[str, np.ndarray], dict[str, str]]:
  """({name: array}, {name: file}) of a checkpoint's safetensors files."""
  return _read(pathlib.Path(directory), lambda f, n: f.get_tensor(n))


def read_shapes(directory) -> tuple[dict[str, tuple[int, ...]],
                                    dict[str, str]]:
  """({name: shape}, {name: file}) from the safetensors headers alone."""
  return _read(pathlib.Path(directory),
               lambda f, n: tuple(f.get_slice(n).get_shape()))


def _read_config(directory) -> tuple[pathlib.Path, Architecture, dict]:
  """(config.json's path, its architecture, ModelConfig keyword arguments),
  every field checked."""
  directory = pathlib.Path(directory)
  if not directory.is_dir():
    raise FileNotFoundError(f"{directory}: no such directory")
  config_file = directory / "config.json"
  if not config_file.exists():
    raise FileNotFoundError(f"{config_file}: no such file (not a Hugging "
                            "Face checkpoint)")
  try:
    config = json.loads(config_file.read_text())
  except ValueError as e:
    raise ConversionError(f"{config_file}: not JSON ({e})") from None
  if not isinstance(config, dict):
    raise ConversionError(f"{config_file}: not a JSON object")
  arch = architecture_of(config, str(config_file))
  fields = arch.to_fields(config, str(config_file))
  model_config(fields, str(config_file))
  return config_file, arch, fields


def check_pretrained(directory) -> dict:
  """ModelConfig keyword arguments of a transformers checkpoint directory,
  after every check `load_pretrained` makes that needs no tensor data:
  config.json's fields and each tensor's name and shape (the safetensors
  headers). Nothing is loaded, so a run refuses a checkpoint before any
  compute. The biases growjax has no parameter for are read too (they are
  small), so a non-zero one is refused here, as load_pretrained would."""
  config_file, arch, fields = _read_config(directory)
  shapes, where = read_shapes(config_file.parent)
  files = {n: str(config_file.parent / f) for n, f in where.items()}
  check_tensors(arch, fields, shapes, config_file=str(config_file),
                tensor_files=files)
  wanted = set(zero_tensors(arch, fields)) & set(shapes)
  for name, tensor in _read(config_file.parent, lambda f, n: (
      f.get_tensor(n) if n in wanted else None))[0].items():
    if tensor is not None:
      check_zero(name, tensor, files)
  return fields


def load_pretrained(directory) -> tuple[dict, Params]:
  """(ModelConfig keyword arguments, params) of a transformers checkpoint
  directory (config.json + safetensors)."""
  config_file, _, _ = _read_config(directory)  # refuse before reading
  config = json.loads(config_file.read_text())
  tensors, where = read_tensors(config_file.parent)
  return from_hf(config, tensors, config_file=str(config_file),
                 tensor_files={n: str(config_file.parent / f)
                               for n, f in where.items()})


def init_from_dir(value: Any, field: str = "init_from") -> pathlib.Path:
  """The directory of an experiment's `init_from = "hf:DIR"` (DIR may start
  with ~); a ValueError naming `field` for anything else."""
  if not isinstance(value, str) or not value.startswith(INIT_FROM):
    raise ValueError(
        f"{field}: {value!r} is not \"{INIT_FROM}DIR\" (a directory holding a "
        "Hugging Face checkpoint: config.json and safetensors)")
  path = value[len(INIT_FROM):]
  if not path:
    raise ValueError(f"{field}: {value!r} names no directory after "
                     f"{INIT_FROM!r}")
  return pathlib.Path(path).expanduser()


# --- Tokenizer ---------------------------------------------------------------


def tokenizer_json(model: bytes) -> dict:
  """A tokenizers (transformers' fast tokenizer) JSON that encodes and
  decodes exactly as a growjax sentencepiece model does.

  The sentencepiece model is BPE with byte fallback and no normalisation
  (growjax.data.tokenizer), so it maps onto tokenizers' BPE with
  byte_fallback, no normalizer and no pre-tokenizer. Sentencepiece merges
  the adjacent pair whose merged piece scores highest; BPE applies merges by
  rank, so the merges are every split (a, b) of each piece into two pieces,
  ranked by the piece's score (how transformers' own converter derives them).
  Control pieces (<unk>, <s>, </s>) are special added tokens; the text
  "</s>" stays three pieces, as in sentencepiece, because tokenizer_config
  sets split_special_tokens (see `save_tokenizer`).
  """
  from sentencepiece import sentencepiece_model_pb2 as pb  # pylint: disable=g-import-not-at-top
  proto = pb.ModelProto.FromString(model)
  norm = proto.normalizer_spec
  kind = pb.ModelProto.SentencePiece
  if (proto.trainer_spec.model_type != pb.TrainerSpec.BPE
      or not proto.trainer_spec.byte_fallback or norm.add_dummy_prefix
      or norm.escape_whitespaces or norm.remove_extra_whitespaces
      or norm.precompiled_charsmap):
    raise ConversionError(
        "tokenizer: not a growjax sentencepiece model (BPE, byte fallback, "
        "identity normalisation, no dummy prefix or whitespace escaping); "
        "only those are exported")
  vocab = {p.piece: i for i, p in enumerate(proto.pieces)}
  merges = []
  for p in proto.pieces:
    if p.type != kind.NORMAL:
      continue
    splits = [(p.piece[:k], p.piece[k:]) for k in range(1, len(p.piece))
              if p.piece[:k] in vocab and p.piece[k:] in vocab]
    splits.sort(key=lambda ab: (vocab[ab[0]], vocab[ab[1]]))
    merges += [(a, b, p.score) for a, b in splits]
  merges.sort(key=lambda m: (m[2], len(m[0]), len(m[1])), reverse=True)
  special = [{"id": i, "content": p.piece, "single_word": False,
              "lstrip": False, "rstrip": False, "normalized": False,
              "special": True}
             for i, p in enumerate(proto.pieces)
             if p.type in (kind.CONTROL, kind.UNKNOWN)]
  unk = proto.pieces[proto.trainer_spec.unk_id].piece
  return {
      "version": "1.0", "truncation": None, "padding": None,
      "added_tokens": special, "normalizer": None, "pre_tokenizer": None,
      "post_processor": None,
      "decoder": {"type": "Sequence", "decoders": [{"type": "ByteFallback"},
                                                   {"type": "Fuse"}]},
      "model": {"type": "BPE", "dropout": None, "unk_token": unk,
                "continuing_subword_prefix": None, "end_of_word_suffix": None,
                "fuse_unk": True, "byte_fallback": True,
                "ignore_merges": False, "vocab": vocab,
                "merges": [[a, b] for a, b, _ in merges]},
  }


def _processor(model_path):
  import sentencepiece as spm  # pylint: disable=g-import-not-at-top
  model_path = pathlib.Path(model_path)
  if not model_path.is_file():
    raise FileNotFoundError(f"{model_path}: no such tokenizer file")
  return spm.SentencePieceProcessor(model_proto=model_path.read_bytes())


def _special_ids(model_path) -> dict:
  """config.json's token ids, read from the tokenizer itself."""
  sp = _processor(model_path)
  return {"bos_token_id": sp.bos_id(), "eos_token_id": sp.eos_id()}


def save_tokenizer(directory, model_path, *,
                   max_len: int) -> list[pathlib.Path]:
  """tokenizer.model (the sentencepiece file), tokenizer.json,
  tokenizer_config.json and special_tokens_map.json in `directory`.

  tokenizer_config names PreTrainedTokenizerFast, which reads tokenizer.json:
  transformers 5's LlamaTokenizer rebuilds a tokenizer from tokenizer.model
  with spaces rewritten as "▁", which growjax's model does not use. growjax
  ends each document with </s> and adds no <s>, so neither is added, and it
  reads "</s>" in a text as characters, so split_special_tokens is set.
  """
  sp = _processor(model_path)
  model_path, directory = pathlib.Path(model_path), pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  model = model_path.read_bytes()
  tokens = {"bos_token": sp.id_to_piece(sp.bos_id()),
            "eos_token": sp.id_to_piece(sp.eos_id()),
            "unk_token": sp.id_to_piece(sp.unk_id())}
  files = {
      "tokenizer.json": tokenizer_json(model),
      "tokenizer_config.json": {
          "tokenizer_class": "PreTrainedTokenizerFast", **tokens,
          "add_bos_token": False, "add_eos_token": False,
          "split_special_tokens": True, "clean_up_tokenization_spaces": False,
          "model_max_length": max_len},
      "special_tokens_map.json": tokens,
  }
  written = [directory / "tokenizer.model"]
  shutil.copyfile(model_path, written[0])
  for name, content in files.items():
    path = directory / name
    path.write_text(json.dumps(content, indent=1, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    written.append(path)
  return written
