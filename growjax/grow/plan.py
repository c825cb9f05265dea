"""plan(old_cfg, new_cfg, method): the ordered operators between two configs.

Every problem is found here, before any compute, and named: the axis (and its
config field), the sizes, what was expected.
"""

from __future__ import annotations

from growjax import model
from growjax.config import ModelConfig
from growjax.grow import axes as axes_lib
from growjax.grow import methods as methods_lib
from growjax.grow.operators import GrowthOp


def plan(old_cfg: ModelConfig, new_cfg: ModelConfig, *,
         method: str) -> list[GrowthOp]:
  """The growth operators, in application order (embed, heads, mlp, layers),
  that take `old_cfg` to `new_cfg` with `method`; axes that keep their size
  are left out. ValueError for a shrink, a change of a kept field (vocab,
  head_dim, max_len, positions, tied embeddings), an axis the method cannot
  grow, or (hyperclone) a non-integer factor."""
  m = methods_lib.get(method)
  for name, cfg in (("old_cfg", old_cfg), ("new_cfg", new_cfg)):
    if not isinstance(cfg, ModelConfig):
      raise ValueError(f"{name}: {cfg!r} is not a ModelConfig")
  for field in axes_lib.FROZEN_FIELDS:
    a, b = getattr(old_cfg, field), getattr(new_cfg, field)
    if a != b:
      why = ("heads grow in number at a fixed head_dim" if field == "head_dim"
             else "growth keeps it")
      raise ValueError(f"{field}: {a!r} -> {b!r}, cannot change it ({why})")
  old_sizes, new_sizes = model.axis_sizes(old_cfg), model.axis_sizes(new_cfg)
  ops = []
  for axis in axes_lib.GROWABLE:
    op = GrowthOp(axis, old_sizes[axis], new_sizes[axis])
    if op.new < op.old:
      raise ValueError(
          f"{axis} ({op.field}): {op.new} < {op.old}, a stage cannot shrink")
    if op.new == op.old:
      continue
    if axis not in m.axes:
      if method == "zero" and axis == "embed":
        raise ValueError(
            f"{op}: method 'zero' cannot grow the hidden width exactly: plain "
            "LayerNorm takes its mean and variance over the new channels too, "
            "so zero (or any) new channels change every normalised "
            "activation; use method 'msg' (masked LayerNorm statistics) or "
            "'hyperclone' (integer multiples)")
      raise ValueError(
          f"{op}: method {method!r} cannot grow {axis} (it grows "
          f"{', '.join(m.axes)})")
    if method == "hyperclone":
      if op.new % op.old:
        raise ValueError(
            f"{op}: not an integer multiple; hyperclone grows a width by "
            "whole copies")
      if axis == "embed" and old_cfg.tie_embeddings:
        raise ValueError(
            f"{op}: hyperclone cannot grow the hidden width of a model with "
            "tie_embeddings: the shared table would have to be repeated as "
            "the input lookup and divided by n as the output projection")
    ops.append(op)
  return ops
