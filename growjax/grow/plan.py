"""plan(old_cfg, new_cfg, method): the ordered operators between two configs.

Every problem is found here, before any compute, and named: the axis (and its
config field), the sizes, what was expected. A problem with the new shape
itself (a shrink, a change of a kept field) is a `PlanError` that names the
config field, so the experiment layer can point at `stages[i].model.<field>`.
The plan of two configs is computed once and remembered: validation, the
parameters' growth and the optimizer state's growth all ask for it.
"""

from __future__ import annotations

import functools

from growjax import model
from growjax.config import ModelConfig
from growjax.grow import axes as axes_lib
from growjax.grow import methods as methods_lib
from growjax.grow.operators import GrowthOp


class PlanError(ValueError):
  """A growth that cannot be planned. `field` is the ModelConfig field whose
  new value is wrong (None when the method, not the shape, is at fault) and
  `detail` the message without its axis prefix."""

  def __init__(self, message: str, *, field: str | None = None,
               detail: str | None = None):
    super().__init__(message)
    self.field = field
    self.detail = detail or message


def plan(old_cfg: ModelConfig, new_cfg: ModelConfig, *,
         method: str) -> list[GrowthOp]:
  """The growth operators, in application order (embed, heads, kv_heads, mlp,
  layers), that take `old_cfg` to `new_cfg` with `method`; axes that keep
  their size are left out. ValueError for a shrink (of an axis, or of the
  query heads per key/value head), a change of a kept field (vocab, head_dim,
  max_len, positions, norm, mlp, rope options, biases, residual kind), tying
  an untied model (untying is allowed: `axes.untie`), an axis the
  method cannot grow, or (hyperclone) a non-integer factor."""
  methods_lib.get(method)
  for name, cfg in (("old_cfg", old_cfg), ("new_cfg", new_cfg)):
    if not isinstance(cfg, ModelConfig):
      raise ValueError(f"{name}: {cfg!r} is not a ModelConfig")
  return list(_plan(old_cfg, new_cfg, method))


@functools.lru_cache(maxsize=256)
def _plan(old_cfg: ModelConfig, new_cfg: ModelConfig,
          method: str) -> tuple[GrowthOp, ...]:
  m = methods_lib.get(method)
  for field in axes_lib.FROZEN_FIELDS:
    a, b = getattr(old_cfg, field), getattr(new_cfg, field)
    if a != b:
      why = ("heads grow in number at a fixed head_dim" if field == "head_dim"
             else "growth keeps it")
      detail = f"{a!r} -> {b!r}, cannot change it ({why})"
      raise PlanError(f"{field}: {detail}", field=field, detail=detail)
  if new_cfg.tie_embeddings and not old_cfg.tie_embeddings:
    detail = ("False -> True, cannot tie an untied model (its output layer "
              "is not the embedding's transpose); untying is allowed")
    raise PlanError(f"tie_embeddings: {detail}", field="tie_embeddings",
                    detail=detail)
  old_sizes, new_sizes = model.axis_sizes(old_cfg), model.axis_sizes(new_cfg)
  kv = (old_cfg.kv_heads, new_cfg.kv_heads)
  group = (old_cfg.n_heads // kv[0], new_cfg.n_heads // kv[1])
  ops = []
  for axis in axes_lib.GROWABLE:
    op = GrowthOp(axis, old_sizes[axis], new_sizes[axis],
                  groups=kv if axis == "heads" else None)
    if op.new < op.old:
      detail = f"{op.new} < {op.old}, a stage cannot shrink"
      raise PlanError(f"{axis} ({op.field}): {detail}", field=op.field,
                      detail=detail)
    if op.new == op.old:
      continue
    if axis == "kv_heads" and group[1] < group[0]:
      detail = (
          f"{op.old} -> {op.new} with n_heads {old_cfg.n_heads} -> "
          f"{new_cfg.n_heads} leaves {group[1]} query heads per key/value "
          f"head, fewer than {group[0]}: growth keeps every query head with "
          "its key/value head, so a group cannot shrink (grow n_heads by at "
          "least n_kv_heads' factor)")
      raise PlanError(f"{axis} ({op.field}): {detail}", field=op.field,
                      detail=detail)
    if axis not in m.axes:
      if method == "zero" and axis == "embed":
        stats = ("plain LayerNorm takes its mean and variance"
                 if old_cfg.norm == "layernorm" else
                 "RMSNorm takes its mean square")
        raise PlanError(
            f"{op}: method 'zero' cannot grow the hidden width exactly: "
            f"{stats} over the new channels too, so zero (or any) new "
            "channels change every normalised activation; use method 'msg' "
            "(masked norm statistics) or 'hyperclone' (integer multiples)")
      raise PlanError(
          f"{op}: method {method!r} cannot grow {axis} (it grows "
          f"{', '.join(m.axes)})")
    if method == "hyperclone":
      if op.new % op.old:
        raise PlanError(
            f"{op}: not an integer multiple; hyperclone grows a width by "
            "whole copies")
      if axis == "embed" and new_cfg.tie_embeddings:
        detail = (
            f"True: hyperclone grows d_model {op.old} -> {op.new} by copies, "
            "which a shared table cannot be (repeated as the input lookup, "
            "divided by n as the output projection); set tie_embeddings=False "
            "in the grown model: the output layer is untied and the growth "
            "stays exact")
        raise PlanError(f"tie_embeddings: {detail}", field="tie_embeddings",
                        detail=detail)
    ops.append(op)
  if method == "hyperclone" and group[1] % group[0]:
    heads = next(op for op in ops if op.axis == "heads")
    raise PlanError(
        f"{heads}: {group[0]} -> {group[1]} query heads per key/value head "
        f"(n_kv_heads {kv[0]} -> {kv[1]}) is not an integer multiple; "
        "hyperclone copies whole groups and whole heads within a group")
  return tuple(ops)
