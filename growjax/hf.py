"""Hugging Face (transformers) checkpoints <-> growjax parameters.

    config, tensors = hf.to_hf(params, cfg)           # numpy, PyTorch layout
    fields, params = hf.from_hf(config, tensors)       # ModelConfig(**fields)
    hf.save_pretrained("out", params, cfg, tokenizer_model_path=...)
    fields, params = hf.load_pretrained("out")
    fields = hf.check_pretrained("out")                # no tensor data read

Architectures: `LlamaForCausalLM` for norm="rmsnorm", mlp="swiglu" (with
grouped-query attention, num_key_value_heads, and any rope_theta);
`GPTNeoXForCausalLM` for norm="layernorm", mlp="gelu" (sequential residual,
zero biases). Both need pos="rope".

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
    transformers' `rotate_half` rotates pairs (i, i + K/2); both at angle
    position * theta^(-2i/K). So every q and k head's channels are permuted,
    HF channel j = growjax channel HALF_SPLIT[j] = (0, 2, 4, ..., 1, 3, 5, ...),
    and q.k, hence attention, is unchanged (v and o are not permuted).
  - growjax has no linear biases: GPT-NeoX's four biases are written as zeros
    and must be zero on import.
  - flax's `nn.gelu` is the tanh approximation, transformers' "gelu_new"
    (not "gelu", the erf form).
  - Llama's k_proj and v_proj hold num_key_value_heads heads, and query head
    h reads key/value head h // (H / G) (repeat_kv), as growjax's k and v
    [L, D, G, K] do; gate_proj is growjax's wg, up_proj wi, down_proj wo.

Files are what transformers writes: config.json, model.safetensors (or
model-0000k-of-0000n.safetensors shards with model.safetensors.index.json),
written and read with `safetensors.numpy` (no PyTorch), and the tokenizer:
the sentencepiece model as tokenizer.model plus a tokenizer.json that
transformers' fast tokenizer reproduces it with exactly (see `tokenizer_json`).

Anything growjax cannot represent exactly (xPos, biases, parallel residual,
rope scaling, partial rotary, another activation or norm epsilon, unknown
architectures, shapes that disagree with the config) is a `ConversionError`:
one line naming the file and the field.
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
from growjax.config import ModelConfig

Params = dict[str, Any]

SINGLE = "model.safetensors"  # or shards listed in INDEX
INDEX = "model.safetensors.index.json"
MAX_SHARD_BYTES = 5_000_000_000  # transformers' default shard size, "5GB"
ROPE_THETA = 10000.0  # transformers' default rotary base
NORM_EPS = 1e-5  # growjax.model's LayerNorm and RMSNorm epsilon
INIT_FROM = "hf:"  # an experiment's init_from: "hf:DIR"
TANH_GELU = ("gelu_new", "gelu_pytorch_tanh")  # transformers' names for it


class ConversionError(ValueError):
  """A checkpoint or model growjax cannot convert exactly; names the file
  and the field."""


def half_split(head_dim: int) -> np.ndarray:
  """HF channel j of a rotary head holds growjax channel half_split(K)[j]."""
  return np.concatenate([np.arange(0, head_dim, 2), np.arange(1, head_dim, 2)])


# --- Layouts: growjax arrays (one layer) <-> one HF tensor ------------------


@dataclasses.dataclass(frozen=True)
class Layout:
  """to_hf(arrays, head_dim) -> tensor; from_hf(tensor, head_dim) -> arrays."""
  to_hf: Callable[[list[np.ndarray], int], np.ndarray]
  from_hf: Callable[[np.ndarray, int], list[np.ndarray]]


def _heads_in(rope: bool) -> Layout:
  """q/k/v [D, H, K] <-> torch Linear [H*K, D]; rotary heads half-split."""
  def to_hf(arrays, k):
    (w_DHK,) = arrays
    if rope:
      w_DHK = w_DHK[..., half_split(k)]
    return w_DHK.reshape(w_DHK.shape[0], -1).T

  def from_hf(t, k):
    w_DHK = t.T.reshape(t.shape[1], -1, k)
    return [w_DHK[..., np.argsort(half_split(k))] if rope else w_DHK]
  return Layout(to_hf, from_hf)


def _qkv_fused_to_hf(arrays, k):
  q_DHK, k_DHK, v_DHK = arrays
  perm = half_split(k)
  w_DH3K = np.stack([q_DHK[..., perm], k_DHK[..., perm], v_DHK], axis=2)
  return w_DH3K.reshape(w_DH3K.shape[0], -1).T


def _qkv_fused_from_hf(t, k):
  w_DH3K = t.T.reshape(t.shape[1], -1, 3, k)
  inv = np.argsort(half_split(k))
  return [w_DH3K[:, :, 0][..., inv], w_DH3K[:, :, 1][..., inv],
          w_DH3K[:, :, 2]]


LAYOUTS: dict[str, Layout] = {
    "copy": Layout(lambda a, k: a[0], lambda t, k: [t]),
    "transpose": Layout(lambda a, k: a[0].T, lambda t, k: [t.T]),
    "heads_in_rope": _heads_in(rope=True),
    "heads_in": _heads_in(rope=False),
    # o [H, K, D] <-> torch Linear [D, H*K]
    "heads_out": Layout(lambda a, k: a[0].reshape(-1, a[0].shape[-1]).T,
                        lambda t, k: [t.T.reshape(-1, k, t.shape[0])]),
    # GPT-NeoX's query_key_value: output rows [H, 3, K]
    "qkv_fused": Layout(_qkv_fused_to_hf, _qkv_fused_from_hf),
    # a bias growjax does not have: written as zeros, must be zero on import
    "zero": Layout(None, lambda t, k: []),
}


@dataclasses.dataclass(frozen=True)
class Row:
  """One HF tensor: its name ("{i}" is the layer index), the growjax params
  it holds (stacked over layers when the name has "{i}"), the layout, and its
  shape as products of growjax size names ("3*heads*head_dim")."""
  hf: str
  paths: tuple[str, ...]
  layout: str
  shape: tuple[str, ...]

  @property
  def per_layer(self) -> bool:
    return "{i}" in self.hf


@dataclasses.dataclass(frozen=True)
class Architecture:
  """A transformers architecture as a table of rows plus its config keys."""
  name: str  # config.json's architectures[0]
  model_type: str
  norm: str  # the growjax options it stands for
  mlp: str
  rows: tuple[Row, ...]
  keys: Mapping[str, str]  # growjax size name -> the config key that sets it
  to_config: Callable[[dict], dict]  # growjax fields -> config.json
  to_fields: Callable[[dict, str], dict]  # config.json -> growjax fields
  ignored: tuple[str, ...] = ()  # regexes of non-parameter buffers

  def rows_for(self, fields: Mapping[str, Any]) -> tuple[Row, ...]:
    """The rows of a model with these fields: tied embeddings have no
    unembedding tensor."""
    if fields["tie_embeddings"]:
      return tuple(r for r in self.rows if P.UNEMBED.path not in r.paths)
    return self.rows


def _sizes(fields: Mapping[str, Any]) -> dict[str, int]:
  return {"vocab": fields["vocab_size"], "embed": fields["d_model"],
          "mlp": fields["d_ff"], "heads": fields["n_heads"],
          "kv_heads": fields.get("n_kv_heads") or fields["n_heads"],
          "head_dim": fields["head_dim"], "layers": fields["n_layers"]}


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


def _rope_theta(config: Mapping[str, Any], where: str, *,
                theta_key: str, partial_key: str | None,
                partial_default: float) -> float:
  """The rotary base; refuses rope scaling and partial rotary. transformers 5
  keeps them in rope_parameters, earlier versions in top-level keys."""
  params = config.get("rope_parameters") or {}
  scaling = config.get("rope_scaling") or {}
  for key, spec in (("rope_scaling", scaling), ("rope_parameters", params)):
    kind = spec.get("rope_type", spec.get("type", "default"))
    if kind != "default":
      raise ConversionError(
          f"{where}: {key}.rope_type={kind!r}: growjax's rope has no "
          "scaling (only 'default')")
  theta = params.get("rope_theta", config.get(
      theta_key, config.get("rope_theta", ROPE_THETA)))
  if not checks.is_number(theta) or not theta > 0:
    raise ConversionError(
        f"{where}: {theta_key}={theta!r} is not a positive rotary base")
  partial = params.get("partial_rotary_factor", partial_default
                       if partial_key is None else
                       config.get(partial_key, partial_default))
  if float(partial) != 1.0:
    raise ConversionError(
        f"{where}: {partial_key or 'partial_rotary_factor'}={partial}: "
        "partial rotary is not supported; growjax rotates every channel of a "
        "head (1.0)")
  return float(theta)


def _check_value(config, key, allowed, default, where, why) -> Any:
  value = _get(config, key, default, where=where)
  if value not in allowed:
    raise ConversionError(f"{where}: {key}={value!r}: {why}")
  return value


def _rope_config(theta: float) -> dict:
  return {"rope_type": "default", "rope_theta": theta,
          "partial_rotary_factor": 1.0}


def _common_config(f: Mapping[str, Any], arch: Architecture) -> dict:
  return {
      "architectures": [arch.name], "model_type": arch.model_type,
      "vocab_size": f["vocab_size"], "hidden_size": f["d_model"],
      "num_hidden_layers": f["n_layers"],
      "num_attention_heads": f["n_heads"], "intermediate_size": f["d_ff"],
      "max_position_embeddings": f["max_len"],
      "tie_word_embeddings": f["tie_embeddings"],
      "initializer_range": f["init_std"],
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
      "tie_embeddings": bool(_get(c, "tie_word_embeddings", False,
                                  where=where)),
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
      "hidden_act": "gelu_new", "layer_norm_eps": NORM_EPS,
      "use_parallel_residual": False, "attention_bias": True,
      # both spellings: transformers 5 reads rope_parameters, and some of its
      # versions still default a missing rotary_pct to 0.25
      "rotary_pct": 1.0, "rotary_emb_base": f["rope_theta"],
      "rope_parameters": _rope_config(f["rope_theta"]),
      "attention_dropout": 0.0, "hidden_dropout": 0.0,
  }


def _neox_fields(c: Mapping[str, Any], where: str) -> dict:
  fields = _common_fields(c, where)
  if _get(c, "use_parallel_residual", True, where=where):  # HF's default
    raise ConversionError(
        f"{where}: use_parallel_residual=true: parallel residual is not "
        "supported; growjax's blocks are sequential")
  theta = _rope_theta(c, where, theta_key="rotary_emb_base",
                      partial_key="rotary_pct", partial_default=0.25)
  _check_value(c, "hidden_act", TANH_GELU, "gelu", where,
               "growjax's MLP uses the tanh GeLU (gelu_new)")
  _check_value(c, "layer_norm_eps", (NORM_EPS,), NORM_EPS, where,
               f"growjax's LayerNorm epsilon is {NORM_EPS:g}")
  d, h = fields["d_model"], fields["n_heads"]
  if d % h:
    raise ConversionError(
        f"{where}: hidden_size={d} is not a multiple of "
        f"num_attention_heads={h}")
  return {**fields, "head_dim": d // h, "norm": "layernorm", "mlp": "gelu",
          "n_kv_heads": None, "rope_theta": theta}


def _llama_config(f: Mapping[str, Any]) -> dict:
  return {
      **_common_config(f, LLAMA),
      "num_key_value_heads": _sizes(f)["kv_heads"], "head_dim": f["head_dim"],
      "hidden_act": "silu", "rms_norm_eps": NORM_EPS,
      "rope_theta": f["rope_theta"],
      "rope_parameters": _rope_config(f["rope_theta"]),
      "attention_bias": False, "mlp_bias": False, "attention_dropout": 0.0,
  }


def _llama_fields(c: Mapping[str, Any], where: str) -> dict:
  fields = _common_fields(c, where)
  theta = _rope_theta(c, where, theta_key="rope_theta", partial_key=None,
                      partial_default=1.0)
  _check_value(c, "hidden_act", ("silu",), "silu", where,
               "growjax's SwiGLU gates with silu")
  _check_value(c, "rms_norm_eps", (NORM_EPS,), 1e-6, where,
               f"growjax's norm epsilon is {NORM_EPS:g}")
  for key in ("attention_bias", "mlp_bias"):
    _check_value(c, key, (False,), False, where,
                 "growjax's layers have no biases")
  d, h = fields["d_model"], fields["n_heads"]
  kv = _get(c, "num_key_value_heads", h, where=where)
  if not isinstance(kv, int) or kv < 1 or h % kv:
    raise ConversionError(
        f"{where}: num_key_value_heads={kv!r} does not divide "
        f"num_attention_heads={h}")
  head_dim = _get(c, "head_dim", d // h, where=where)
  return {**fields, "head_dim": head_dim, "norm": "rmsnorm", "mlp": "swiglu",
          # None: one key/value head per query head, growing with n_heads
          "n_kv_heads": None if kv == h else kv, "rope_theta": theta}


_BLOCK = "gpt_neox.layers.{i}."
GPT_NEOX = Architecture(
    name="GPTNeoXForCausalLM", model_type="gpt_neox",
    norm="layernorm", mlp="gelu",
    rows=(
        Row("gpt_neox.embed_in.weight", (P.EMBED.path,), "copy",
            ("vocab", "embed")),
        Row(_BLOCK + "input_layernorm.weight", (P.LN1_SCALE.path,), "copy",
            ("embed",)),
        Row(_BLOCK + "input_layernorm.bias", (P.LN1_BIAS.path,), "copy",
            ("embed",)),
        Row(_BLOCK + "attention.query_key_value.weight",
            (P.Q.path, P.K.path, P.V.path), "qkv_fused",
            ("3*heads*head_dim", "embed")),
        Row(_BLOCK + "attention.query_key_value.bias", (), "zero",
            ("3*heads*head_dim",)),
        Row(_BLOCK + "attention.dense.weight", (P.O.path,),
            "heads_out", ("embed", "heads*head_dim")),
        Row(_BLOCK + "attention.dense.bias", (), "zero", ("embed",)),
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

# Llama: RMSNorm (scale only), SwiGLU (gate, up, down), grouped-query
# attention: k, v [L, D, G, K]; gate "wg" and up "wi" [L, D, F].
_LAYER = "model.layers.{i}."
LLAMA = Architecture(
    name="LlamaForCausalLM", model_type="llama", norm="rmsnorm", mlp="swiglu",
    rows=(
        Row("model.embed_tokens.weight", (P.EMBED.path,), "copy",
            ("vocab", "embed")),
        Row(_LAYER + "input_layernorm.weight", (P.LN1_SCALE.path,), "copy",
            ("embed",)),
        Row(_LAYER + "self_attn.q_proj.weight", (P.Q.path,),
            "heads_in_rope", ("heads*head_dim", "embed")),
        Row(_LAYER + "self_attn.k_proj.weight", (P.K.path,),
            "heads_in_rope", ("kv_heads*head_dim", "embed")),
        Row(_LAYER + "self_attn.v_proj.weight", (P.V.path,),
            "heads_in", ("kv_heads*head_dim", "embed")),
        Row(_LAYER + "self_attn.o_proj.weight", (P.O.path,),
            "heads_out", ("embed", "heads*head_dim")),
        Row(_LAYER + "post_attention_layernorm.weight", (P.LN2_SCALE.path,),
            "copy", ("embed",)),
        Row(_LAYER + "mlp.gate_proj.weight", (P.WG.path,), "transpose",
            ("mlp", "embed")),
        Row(_LAYER + "mlp.up_proj.weight", (P.WI.path,), "transpose",
            ("mlp", "embed")),
        Row(_LAYER + "mlp.down_proj.weight", (P.WO.path,), "transpose",
            ("embed", "mlp")),
        Row("model.norm.weight", (P.LN_F_SCALE.path,), "copy", ("embed",)),
        Row("lm_head.weight", (P.UNEMBED.path,), "transpose", ("vocab", "embed")),
    ),
    keys={"vocab": "vocab_size", "embed": "hidden_size",
          "mlp": "intermediate_size", "heads": "num_attention_heads",
          "kv_heads": "num_key_value_heads", "head_dim": "head_dim",
          "layers": "num_hidden_layers"},
    to_config=_llama_config, to_fields=_llama_fields,
    ignored=(r"\.rotary_emb\.inv_freq$",),
)

ARCHITECTURES: dict[str, Architecture] = {
    a.name: a for a in (GPT_NEOX, LLAMA)}


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


def architecture_for(fields: Mapping[str, Any]) -> Architecture:
  """The table that represents a growjax model with these fields."""
  if fields["pos"] == "xpos":
    raise ConversionError(
        "model.pos='xpos': no standard architecture has xPos; only rope "
        "models export to Hugging Face")
  for arch in ARCHITECTURES.values():
    if (fields["norm"], fields["mlp"]) == (arch.norm, arch.mlp):
      return arch
  raise ConversionError(
      f"model: norm={fields['norm']!r} with mlp={fields['mlp']!r} has no "
      "standard architecture (layernorm+gelu: GPT-NeoX, rmsnorm+swiglu: "
      "Llama)")


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
  sizes = _sizes(fields)
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
      tensor = LAYOUTS[row.layout].to_hf(arrays, sizes["head_dim"])
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


def check_tensors(arch: Architecture, fields: Mapping[str, Any],
                  shapes: Mapping[str, tuple[int, ...]], *,
                  config_file: str = "config.json",
                  tensor_files: str | Mapping[str, str] = SINGLE) -> None:
  """ConversionError naming the first tensor (by name and shape alone) that
  the config does not describe: unknown, missing or of another shape."""
  def file_of(name):
    if isinstance(tensor_files, str):
      return tensor_files
    return tensor_files.get(name, SINGLE)

  sizes = _sizes(fields)
  rows = arch.rows_for(fields)
  expected = {row.hf.format(i=i): row for row in rows
              for i in (range(sizes["layers"]) if row.per_layer else (None,))}
  tied_unembed = [r.hf for r in arch.rows if r not in rows]
  for name in shapes:
    if name not in expected and name not in tied_unembed and not any(
        re.search(p, name) for p in arch.ignored):
      raise ConversionError(
          f"{file_of(name)}: {name} is not a tensor of {arch.name} with "
          f"{_describe(arch, sizes, ('layers',))} ({config_file}); growjax "
          "cannot place it")
  for name, row in expected.items():
    if name not in shapes:
      if row.layout == "zero":
        continue  # absent bias (attention_bias=false): zero
      raise ConversionError(
          f"{file_of(name)}: {name} is missing ({config_file} describes "
          f"{arch.name} with {_describe(arch, sizes, ('layers',))})")
    want = _shape(row.shape, sizes)
    if tuple(shapes[name]) != want:
      raise ConversionError(
          f"{file_of(name)}: {name} has shape {tuple(shapes[name])}, but "
          f"{config_file} gives {want} "
          f"({_describe(arch, sizes, _names(row.shape))})")


def tensors_to_params(arch: Architecture, fields: Mapping[str, Any],
                      tensors: Mapping[str, np.ndarray], *,
                      config_file: str = "config.json",
                      tensor_files: str | Mapping[str, str] = SINGLE) -> Params:
  """growjax params (float32 numpy, stacked over layers) from HF tensors;
  every tensor is checked against the config's shapes."""
  check_tensors(arch, fields, {n: np.shape(t) for n, t in tensors.items()},
                config_file=config_file, tensor_files=tensor_files)
  sizes = _sizes(fields)
  rows = arch.rows_for(fields)
  per_path: dict[str, list[np.ndarray]] = {}
  for row, i in _ordered(rows, sizes["layers"]):
    name = row.hf.format(i=i)
    if name not in tensors:
      continue  # an absent bias
    tensor = np.asarray(tensors[name]).astype(np.float32)
    if row.layout == "zero":
      if np.any(tensor != 0):
        where = (tensor_files if isinstance(tensor_files, str)
                 else tensor_files.get(name, SINGLE))
        raise ConversionError(
            f"{where}: {name} is not zero (max |b| "
            f"{float(np.abs(tensor).max()):.3g}); growjax's layers have no "
            "biases")
      continue
    for path, array in zip(row.paths, LAYOUTS[row.layout].from_hf(
        tensor, sizes["head_dim"])):
      per_path.setdefault(path, []).append(array)
  flat = {}
  for row in rows:
    for path in row.paths:
      arrays = per_path[path]
      flat[path] = np.stack(arrays) if row.per_layer else arrays[0]
  return _nest(flat)


def _names(spec: tuple[str, ...]) -> tuple[str, ...]:
  return tuple(dict.fromkeys(t for dim in spec for t in dim.split("*")
                             if not t.isdigit()))


def _describe(arch: Architecture, sizes: Mapping[str, int],
              names: Sequence[str]) -> str:
  return ", ".join(f"{arch.keys[n]}={sizes[n]}" for n in names)


# --- Whole models ------------------------------------------------------------


def to_hf(params: Params, cfg: ModelConfig) -> tuple[dict, dict]:
  """(config.json as a dict, {tensor name: float32 numpy array}) for a
  growjax model; a ConversionError for one no architecture represents. A
  muP model is exported as the sp model computing the same function (its
  multipliers folded into the weights: `mup.to_standard`)."""
  params, cfg = mup.to_standard(params, cfg)
  fields = growjax_fields(cfg)
  arch = architecture_for(fields)
  config = arch.to_config(fields)
  return config, params_to_tensors(arch, fields, params)


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
                    tokenizer_model_path=None,
                    max_shard_bytes: int = MAX_SHARD_BYTES
                    ) -> list[pathlib.Path]:
  """Writes a transformers checkpoint of the model (and the tokenizer, given
  its sentencepiece model) into `directory`; returns the files written.
  Older model files there are replaced."""
  from safetensors import numpy as st  # pylint: disable=g-import-not-at-top
  checks.positive_int("max_shard_bytes", max_shard_bytes)
  config, tensors = to_hf(params, cfg)
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
  compute. (That linear biases are zero needs their values: load_pretrained
  checks it.)"""
  config_file, arch, fields = _read_config(directory)
  shapes, where = read_shapes(config_file.parent)
  check_tensors(arch, fields, shapes, config_file=str(config_file),
                tensor_files={n: str(config_file.parent / f)
                              for n, f in where.items()})
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
