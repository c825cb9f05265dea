"""What growth needs to know about the model beyond `model.AXES`.

Growth is driven by logical axis names: an operator that grows `mlp` grows every
array (parameter, mask, optimizer moment) along every axis named `mlp`. The
axis table (`growjax.model.AXES`, `growjax.model.MASK_AXES`) says where those
axes are. Two more facts per parameter are needed by some methods, and they
live in the one small table below:

  inputs  the axes contracted with the parameter's incoming activation
          (fan-in). HyperCloning divides a parameter by n along a grown input
          axis; the `zero` method zeroes the new entries along a grown input
          axis (the new structure's outgoing weights).
  init    how `model.init` initialises a fresh entry: "normal"
          (normal(cfg.init_std)), "ones" (a norm's scale), "zeros" (LayerNorm's
          bias). New entries start like a fresh model's.

`tests/test_grow.py` checks this table against `model.AXES` and `model.init`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax

from growjax import model
from growjax.config import ModelConfig


@dataclasses.dataclass(frozen=True)
class Role:
  inputs: tuple[str, ...]  # axes contracted with the incoming activation
  init: str  # "normal" | "ones" | "zeros": a fresh entry, as model.init makes it


_MATRIX_IN_EMBED = Role(inputs=("embed",), init="normal")
_SCALE = Role(inputs=(), init="ones")
_BIAS = Role(inputs=(), init="zeros")

ROLES: dict[str, Role] = {
    "embed": Role(inputs=(), init="normal"),  # a lookup: the token picks a row
    "blocks/ln1/scale": _SCALE,
    "blocks/ln1/bias": _BIAS,
    "blocks/attn/q": _MATRIX_IN_EMBED,
    "blocks/attn/k": _MATRIX_IN_EMBED,
    "blocks/attn/v": _MATRIX_IN_EMBED,
    "blocks/attn/o": Role(inputs=("heads", "head_dim"), init="normal"),
    # added to a head's projection: a new head's bias starts at zero
    "blocks/attn/q_bias": _BIAS,
    "blocks/attn/k_bias": _BIAS,
    "blocks/attn/v_bias": _BIAS,
    "blocks/ln2/scale": _SCALE,
    "blocks/ln2/bias": _BIAS,
    "blocks/mlp/wg": _MATRIX_IN_EMBED,
    "blocks/mlp/wi": _MATRIX_IN_EMBED,
    "blocks/mlp/wo": Role(inputs=("mlp",), init="normal"),
    "ln_f/scale": _SCALE,
    "ln_f/bias": _BIAS,
    "unembed": _MATRIX_IN_EMBED,
}

# The config field that sets each logical axis's size (see model.axis_sizes).
AXIS_FIELDS: dict[str, str] = {
    "vocab": "vocab_size", "embed": "d_model", "heads": "n_heads",
    "kv_heads": "n_kv_heads", "head_dim": "head_dim", "mlp": "d_ff",
    "layers": "n_layers",
}

# Axes a growth may change, in the order `plan` applies them (widths, then depth).
GROWABLE: tuple[str, ...] = ("embed", "heads", "kv_heads", "mlp", "layers")

# Config fields growth keeps; changing one is an error (dtype and init_std may
# change: the first is a compute setting, the second only seeds new entries;
# tie_embeddings may go from True to False: `untie`).
FROZEN_FIELDS: tuple[str, ...] = (
    "vocab_size", "head_dim", "max_len", "pos", "xpos_scale_base", "xpos_gamma",
    "norm", "mlp", "rope_theta", "norm_eps", "parallel_residual",
    "rotary_fraction", "qkv_bias", "rope_scaling")


def unties(old_cfg: ModelConfig, new_cfg: ModelConfig) -> bool:
  """The growth unties the embeddings: the output layer becomes a parameter
  of its own, starting as the embedding's transpose (the same function)."""
  return old_cfg.tie_embeddings and not new_cfg.tie_embeddings


def untie(tree: dict, transpose=None) -> dict:
  """A params-like tree of a tied model with `unembed` added:
  `transpose(embed)` (default embed.T)."""
  embed = tree["embed"]
  return {**tree, "unembed": embed.T if transpose is None
          else transpose(embed)}


def gating_mask(axis: str) -> str | None:
  """The MSG mask that gates the structures of `axis` (hidden for embed, ...):
  the mask whose last logical axis is `axis`. None for `kv_heads`: a new
  key/value head is read only by new query heads, which the heads mask
  gates."""
  for name, axes in model.MASK_AXES.items():
    if axes[-1] == axis:
      return name
  if axis == "kv_heads":
    return None
  raise KeyError(f"no mask gates axis {axis!r}")


def path_str(keys) -> str:
  return "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in keys)


def writes_residual(path: str) -> bool:
  """A layer matrix whose output is added to the residual stream (attention
  out, MLP out): `embed` is one of its axes but not an input axis. A new layer
  whose such matrices are zero is the identity (the `zero` method)."""
  axes, role = model.AXES[path], ROLES[path]
  return ("layers" in axes and "embed" in axes and "embed" not in role.inputs
          and role.init == "normal")


@functools.lru_cache(maxsize=64)
def param_shapes(cfg: ModelConfig) -> Any:
  """The params tree of `cfg` as ShapeDtypeStructs (no compute)."""
  return jax.eval_shape(lambda k: model.init(cfg, k), jax.random.key(0))


def mask_shape(name: str, cfg: ModelConfig) -> tuple[int, ...]:
  sizes = model.axis_sizes(cfg)
  return tuple(sizes[a] for a in model.MASK_AXES[name])
