"""Maximal-update parametrization (muP), relative to a base shape.

`ModelConfig.param = "mup"` with `mup_base` (d_model, n_heads, d_ff, head_dim)
follows Tensor Programs V (Yang et al. 2022, arXiv 2203.03466), Table 3 for
Adam, in the `mup` package's MuReadout form (the output layer's multiplier
on its forward pass rather than on its init and rate). growjax's standard
parametrization ("sp") draws every matrix from normal(init_std) whatever its
width, so muP is written as width ratios against the base: at the base shape
every factor below is 1 and muP *is* sp (same init, same function, same
rates); only a model wider than its base differs. With r = fan_in / base
fan_in of a parameter (the product of its `inputs` axes, `growjax.params`):

  role      parameters                 init std            Adam rate  forward
  vector    embedding, norms, biases   init_std (or 1, 0)  x 1        -
  hidden    q, k, v, o, wi, wg, wo     init_std / sqrt(r)  x 1 / r    -
  output    unembed                    init_std            x 1        logits x base_D / D
  attention scores                                                    x sqrt(base_K) / K

(1/K attention instead of 1/sqrt(K), normalised to sp's 1/sqrt(K) at the base
head_dim.) Growth keeps head_dim, so only the output multiplier changes when a
model grows: `growth_compensation` is the factor the grown unembedding absorbs
so the function is kept.
"""

from __future__ import annotations

import math
from typing import Any

from growjax import params as params_lib
from growjax.config import ModelConfig
from growjax.params import Param


def base_sizes(cfg: ModelConfig) -> dict[str, int]:
  """Axis sizes of the base shape (the model's own for "sp")."""
  sizes = params_lib.axis_sizes(cfg)
  if cfg.param != "mup":
    return sizes
  b = cfg.mup_base
  return {**sizes, "embed": b.d_model, "heads": b.n_heads, "mlp": b.d_ff,
          "head_dim": b.head_dim}


def width_ratio(p: Param, cfg: ModelConfig) -> float:
  """fan_in / base fan_in of a hidden matrix; 1 for every other role and
  under sp."""
  if cfg.param != "mup" or p.mup != "hidden":
    return 1.0
  return p.fan_in(params_lib.axis_sizes(cfg)) / p.fan_in(base_sizes(cfg))


def init_std(p: Param, cfg: ModelConfig) -> float:
  """The std of a "normal" parameter's fresh entries."""
  return cfg.init_std / math.sqrt(width_ratio(p, cfg))


def lr_multiplier(p: Param, cfg: ModelConfig) -> float:
  """muP's factor on the parameter's Adam step (1 / r for hidden matrices)."""
  return 1.0 / width_ratio(p, cfg)


def output_multiplier(cfg: ModelConfig) -> float:
  """The logits' factor: base d_model / d_model under mup, 1 under sp."""
  return cfg.mup_base.d_model / cfg.d_model if cfg.param == "mup" else 1.0


def forward_multiplier(p: Param, cfg: ModelConfig) -> float:
  """The factor on the parameter's output in the forward pass."""
  return output_multiplier(cfg) if p.mup == "output" else 1.0


def attention_scale(cfg: ModelConfig) -> float:
  """The attention logits' scale: 1/sqrt(K) under sp, sqrt(base K)/K under
  mup."""
  if cfg.param == "mup":
    return math.sqrt(cfg.mup_base.head_dim) / cfg.head_dim
  return 1.0 / math.sqrt(cfg.head_dim)


def growth_compensation(p: Param, old_cfg: ModelConfig,
                        new_cfg: ModelConfig) -> float:
  """The factor on a parameter's copied values that keeps its contribution
  when growth changes its forward multiplier (the unembedding's D1 / D0)."""
  return forward_multiplier(p, old_cfg) / forward_multiplier(p, new_cfg)


def lr_multipliers(cfg: ModelConfig) -> dict:
  """muP's Adam multiplier of every parameter of `cfg` (a params-shaped
  tree of floats; all 1 under sp)."""
  return params_lib.tree(cfg, lambda p: lr_multiplier(p, cfg))


def groups(cfg: ModelConfig) -> dict[str, dict[str, float]]:
  """What muP does, per parameter: {path: {init_std, lr, forward}} (for the
  dry run and experiment summaries)."""
  return {path: {"init_std": init_std(p, cfg) if p.init == "normal" else None,
                 "lr": lr_multiplier(p, cfg),
                 "forward": forward_multiplier(p, cfg)}
          for path, p in params_lib.of(cfg).items()}


def to_standard(params: Any, cfg: ModelConfig) -> tuple[Any, ModelConfig]:
  """(params, cfg) of an sp model computing the same function as a mup one:
  the output multiplier folded into the unembedding and the attention scale's
  difference into q (positions rotate q linearly, so the factor commutes with
  them). The identity under sp. Used by the Hugging Face export."""
  if cfg.param != "mup":
    return params, cfg
  sp = cfg.replace(param="sp")
  factors = {params_lib.UNEMBED.path: output_multiplier(cfg),
             params_lib.Q.path: attention_scale(cfg) / attention_scale(sp)}

  def fold(path, node):
    if isinstance(node, dict):
      return {k: fold(f"{path}/{k}" if path else k, v) for k, v in node.items()}
    return node * factors[path] if path in factors else node

  return fold("", params), sp
