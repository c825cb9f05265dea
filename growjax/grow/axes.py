"""What growth needs to know about the model beyond its parameter table.

Growth is driven by logical axis names: an operator that grows `mlp` grows every
array (parameter, mask, optimizer moment) along every axis named `mlp`. The
parameter table (`growjax.params`: each parameter's axes, its input axes and
how a fresh entry starts) and the mask table (`growjax.model.MASK_AXES`) say
where those axes are; this module adds which axes may grow and which config
fields may not change.
"""

from __future__ import annotations

import functools
from typing import Any

import jax

from growjax import model
from growjax import params as params_lib
from growjax.config import ModelConfig

# Axes a growth may change, in the order `plan` applies them (widths, then depth).
GROWABLE: tuple[str, ...] = ("embed", "heads", "kv_heads", "mlp", "layers")

# Config fields growth keeps; changing one is an error (dtype and init_std may
# change: the first is a compute setting, the second only seeds new entries;
# tie_embeddings may go from True to False: `untie`).
FROZEN_FIELDS: tuple[str, ...] = (
    "vocab_size", "head_dim", "max_len", "pos", "xpos_scale_base", "xpos_gamma",
    "norm", "mlp", "rope_theta", "param", "mup_base", "norm_eps",
    "parallel_residual", "rotary_fraction", "qkv_bias", "rope_scaling")


def unties(old_cfg: ModelConfig, new_cfg: ModelConfig) -> bool:
  """The growth unties the embeddings: the output layer becomes a parameter
  of its own, starting as the embedding's transpose (the same function)."""
  return old_cfg.tie_embeddings and not new_cfg.tie_embeddings


def untie(tree: dict, transpose=None) -> dict:
  """A params-like tree of a tied model with the output layer added:
  `transpose(embedding)` (default its .T)."""
  embed = tree[params_lib.EMBED.path]
  return {**tree, params_lib.UNEMBED.path: embed.T if transpose is None
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


def writes_residual(path: str) -> bool:
  """A layer matrix whose output is added to the residual stream (attention
  out, MLP out): `embed` is one of its axes but not an input axis. A new layer
  whose such matrices are zero is the identity (the `zero` method)."""
  p = params_lib.TABLE[path]
  return ("layers" in p.axes and "embed" in p.axes
          and "embed" not in p.inputs and p.init == "normal")


@functools.lru_cache(maxsize=64)
def param_shapes(cfg: ModelConfig) -> Any:
  """The params tree of `cfg` as ShapeDtypeStructs (no compute)."""
  return jax.eval_shape(lambda k: model.init(cfg, k), jax.random.key(0))


def mask_shape(name: str, cfg: ModelConfig) -> tuple[int, ...]:
  sizes = params_lib.axis_sizes(cfg)
  return tuple(sizes[a] for a in model.MASK_AXES[name])
