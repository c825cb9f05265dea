"""Growth operators: one per growable axis kind, all driven by axis names.

An operator grows one logical axis (`embed`, `heads`, `kv_heads`, `mlp`,
`layers`) from `old` to `new` entries. What it does is fully described by an
`AxisMap`: entry j of the grown axis copies old entry `source[j]`, or is fresh
(`source[j] == -1`). The method decides the map (fresh entries appended for
msg/zero widths, tiled copies for hyperclone, placed new layers for msg/zero
depth, cyclic copies for stack; query heads are placed by key/value group,
`grouped`); `grow_array` applies a set of maps to ONE
array whose logical axes are known, growing it along every axis that has a
map. Callers map `grow_array` over params, masks and optimizer moments with
the axes from `growjax.params` / `model.MASK_AXES`: no per-parameter code.

Operators on different axes commute, so a plan's operators are applied to
each array together, in one pass: a pad or a constant-index gather per grown
axis and one `where` for the fresh entries, which XLA fuses into a single loop
writing the grown array (no intermediate arrays between operators). A single
operator is the same call with one map.

Everything here is static (numpy index maps, Python shapes) except the arrays
and the PRNG key, so a growth jits into one program whose output shapes follow
from the configs alone, and works under `jax.jit(..., out_shardings=...)`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from growjax import params as params_lib
from growjax.grow import axes as axes_lib


@dataclasses.dataclass(frozen=True)
class GrowthOp:
  """One step of a plan: grow logical axis `axis` from `old` to `new` entries.
  `groups`: for `heads`, the (old, new) number of key/value heads, whose
  groups the query heads are grown within (None: one head per group)."""
  axis: str
  old: int
  new: int
  groups: tuple[int, int] | None = None

  @property
  def field(self) -> str:
    return params_lib.AXIS_FIELDS[self.axis]

  def __str__(self):
    return f"{self.axis} ({self.field}): {self.old} -> {self.new}"


@dataclasses.dataclass(frozen=True, eq=False)
class AxisMap:
  """How one axis grows: grown entry j copies old entry `source[j]`, or is
  fresh where `source[j] == -1`. `copies` is hyperclone's integer factor
  (parameters are divided by it along input axes); 1 for every other method."""
  axis: str
  source: np.ndarray
  copies: int = 1

  @property
  def fresh(self) -> np.ndarray:
    return self.source < 0

  @property
  def old_positions(self) -> np.ndarray:
    """Grown index of each old entry (its first copy)."""
    old = int(self.source.max()) + 1
    return np.array([int(np.flatnonzero(self.source == i)[0]) for i in range(old)])


def appended(op: GrowthOp) -> AxisMap:
  """Old entries keep their indices; fresh ones follow them."""
  return AxisMap(op.axis, np.concatenate(
      [np.arange(op.old), np.full(op.new - op.old, -1)]).astype(np.int64))


def tiled(op: GrowthOp) -> AxisMap:
  """n = new / old whole copies, one after the other: j copies j % old."""
  return AxisMap(op.axis, np.arange(op.new) % op.old, copies=op.new // op.old)


def grouped(op: GrowthOp, *, tile: bool) -> AxisMap:
  """Query heads by key/value group (grouped-query attention).

  Grown head j is slot j % r' of group j // r' (r = H / G heads per group
  before, r' = H' / G' after; r' >= r, checked by `plan`). Old group g's r
  heads keep slots 0..r-1 of group g, so each still reads its key/value head;
  the other slots, and the new groups, are fresh (msg, zero) or, with `tile`
  (hyperclone), copy slot j % r' % r of group (j // r') % G: every copy reads
  a copy of its original's key/value head. With one head per group (G = H)
  this is `appended` or `tiled`.
  """
  g_old, g_new = op.groups or (op.old, op.new)
  r_old, r_new = op.old // g_old, op.new // g_new
  group, slot = np.divmod(np.arange(op.new, dtype=np.int64), r_new)
  if tile:
    return AxisMap(op.axis, (group % g_old) * r_old + slot % r_old,
                   copies=op.new // op.old)
  old = (group < g_old) & (slot < r_old)
  return AxisMap(op.axis, np.where(old, group * r_old + slot, -1))


def cyclic(op: GrowthOp) -> AxisMap:
  """Cyclic copies of the whole stack (any new >= old): j copies j % old."""
  return AxisMap(op.axis, np.arange(op.new) % op.old)


def placed(op: GrowthOp, new_layers: Any) -> AxisMap:
  """Old layers in order with fresh layers at the top, the bottom, spread
  evenly ("interleave": fresh layer k follows old layer floor(k * old / extra)),
  or at the given indices of the grown stack."""
  old, new, extra = op.old, op.new, op.new - op.old
  if new_layers == "top":
    fresh = set(range(old, new))
  elif new_layers == "bottom":
    fresh = set(range(extra))
  elif new_layers == "interleave":
    after = [k * old // extra for k in range(extra)]
    source = []
    for i in range(old):
      source += [i] + [-1] * after.count(i)
    return AxisMap(op.axis, np.array(source, np.int64))
  else:
    fresh = set(int(i) for i in new_layers)
    if (len(fresh) != extra or len(list(new_layers)) != extra
        or not all(0 <= i < new for i in fresh)):
      raise ValueError(
          f"new_layers: {list(new_layers)} must be {extra} distinct indices in "
          f"[0, {new}), the positions of the new layers for {op}")
  olds = iter(range(old))
  return AxisMap(op.axis, np.array(
      [-1 if j in fresh else next(olds) for j in range(new)], np.int64))


@dataclasses.dataclass(frozen=True)
class Operator:
  """The operator of one axis kind: its gating MSG mask and which parameters'
  new entries are the new structure's *outgoing* weights (zero under the
  `zero` method)."""
  axis: str
  outgoing: Callable[[str], bool]

  @property
  def mask(self) -> str | None:
    """The MSG mask of this axis (None: gated through another, kv_heads)."""
    return axes_lib.gating_mask(self.axis)

  def axis_map(self, op: GrowthOp, method: str, options: Mapping[str, Any]) -> AxisMap:
    if method in ("msg", "zero"):
      if self.axis == "layers":
        return placed(op, options["new_layers"])
      return grouped(op, tile=False) if self.axis == "heads" else appended(op)
    if method == "hyperclone":
      return grouped(op, tile=True) if self.axis == "heads" else tiled(op)
    if method == "stack":
      return cyclic(op)
    raise ValueError(f"method: {method!r} has no operator for {self.axis}")


def _width(axis: str) -> Operator:
  # A new unit's outgoing weights are the entries that read it: the grown axis
  # is an input axis of the parameter (mlp -> wo rows, heads -> o slices).
  return Operator(axis, lambda path: axis in params_lib.TABLE[path].inputs)


OPERATORS: dict[str, Operator] = {
    "embed": _width("embed"),
    "heads": _width("heads"),
    # No parameter reads a key/value head's output directly (query heads do,
    # through attention): new ones have no outgoing weights to zero.
    "kv_heads": _width("kv_heads"),
    "mlp": _width("mlp"),
    # A new layer's outgoing weights write the residual stream (attn o, mlp wo).
    "layers": Operator("layers", axes_lib.writes_residual),
}


# A fill makes the values of fresh entries:
#   fill(key, shape, dtype, fresh_by_axis) -> array of `shape`
# fresh_by_axis[a] is a bool array (numpy, or traced inside a row loop)
# broadcastable to `shape`, marking the entries fresh along axis a.
Fill = Callable[[jax.Array, tuple[int, ...], Any, Mapping[str, Any]], jax.Array]

# Arrays with a random fill larger than this many entries are grown in blocks
# of leading-axis rows (a loop), each row drawn from fold_in(key, row), so the
# PRNG's temporaries (on CPU the threefry loop holds two uint32 arrays the size
# of its output) stay small. Smaller arrays share one draw (`draw_normals`):
# XLA compiles each PRNG call separately, slowly on CPU.
CHUNK = 1 << 22


def draw_normals(key: jax.Array, shapes, dtype=jnp.float32) -> list[jax.Array]:
  """normal(0, 1) arrays of `shapes`, cut from ONE draw."""
  sizes = [int(np.prod(s)) for s in shapes]
  flat = jax.random.normal(key, (sum(sizes),), dtype)
  offsets = np.cumsum([0] + sizes)
  return [flat[a:b].reshape(s) for a, b, s in zip(offsets[:-1], offsets[1:], shapes)]


def _along(values: np.ndarray, i: int, ndim: int) -> np.ndarray:
  shape = [1] * ndim
  shape[i] = values.size
  return values.reshape(shape)


def _gather(x: jax.Array, source: np.ndarray, i: int) -> jax.Array:
  """x indexed by `source` along axis i (fresh entries zero). Shapes that are
  one slice plus fresh entries become a pad, anything else (tiles,
  interleaved layers) a gather with constant indices: both fuse with the
  `where` that follows into one pass writing the grown array (a concatenation
  of many pieces would not)."""
  old = x.shape[i]
  fresh = source < 0
  kept = source[~fresh]
  if kept.size == old and np.array_equal(kept, np.arange(old)):
    first = int(np.flatnonzero(~fresh)[0])
    if not fresh[first:first + old].any():  # old block in one piece
      pad = [(0, 0, 0)] * x.ndim
      pad[i] = (first, source.size - first - old, 0)
      return jax.lax.pad(x, jnp.zeros((), x.dtype), pad)
  return jnp.take(x, np.maximum(source, 0), axis=i, mode="clip")


def grown_shape(shape: tuple[int, ...], names: tuple[str, ...],
                maps: Mapping[str, AxisMap]) -> tuple[int, ...]:
  return tuple(maps[n].source.size if n in maps else s
               for s, n in zip(shape, names))


def grow_array(x: jax.Array, names: tuple[str, ...], maps: Mapping[str, AxisMap],
               *, fill: Fill | None = None, key: jax.Array | None = None,
               scale: float = 1.0, chunk: int | None = None) -> jax.Array:
  """Grows `x` (logical axes `names`) along every axis that has a map.

  Old entries are copied (times `scale`); fresh entries come from
  `fill(key, ...)` (default zeros). With `chunk`, an array of more entries is
  grown one block of leading-axis rows at a time, row r's fill drawn with
  fold_in(key, r).
  """
  for i, name in enumerate(names):
    if name in maps and x.shape[i] != int(maps[name].source.max()) + 1:
      raise ValueError(
          f"{name}: array of shape {x.shape} has {x.shape[i]} entries on axis "
          f"{i}, the growth expects {int(maps[name].source.max()) + 1}")
  if chunk and chunks(grown_shape(x.shape, names, maps), names, chunk):
    return _grow_rows(x, names, maps, fill, key, scale, chunk)
  return _grow_whole(x, names, maps, fill, key, scale)


def chunks(shape: tuple[int, ...], names: tuple[str, ...],
           chunk: int | None = None) -> bool:
  """Whether an array of this grown shape is grown in blocks of rows."""
  chunk = CHUNK if chunk is None else chunk
  return (int(np.prod(shape)) > chunk and len(names) > 1
          and names[0] not in names[1:])


def _grow_whole(x, names, maps, fill, key, scale, *, row_fresh=None):
  fresh_by_axis = {}
  for i, name in enumerate(names):
    if name in maps:
      amap = maps[name]
      x = _gather(x, amap.source, i)
      if amap.fresh.any():
        fresh_by_axis[name] = _along(amap.fresh, i, x.ndim)
  if scale != 1.0:
    x = x * jnp.asarray(scale, x.dtype)
  any_fresh = None
  if fresh_by_axis:
    any_fresh = np.logical_or.reduce(
        np.broadcast_arrays(*fresh_by_axis.values()))
  if row_fresh is not None:  # (traced) this row is fresh along the leading axis
    fresh_by_axis = {**fresh_by_axis, **row_fresh}
    flag = next(iter(row_fresh.values()))
    any_fresh = flag if any_fresh is None else jnp.logical_or(any_fresh, flag)
  if any_fresh is None:
    return x
  if fill is None:
    values = jnp.zeros(x.shape, x.dtype)
  else:
    values = fill(key, x.shape, x.dtype, fresh_by_axis)
  return jnp.where(any_fresh, values, x)


def _grow_rows(x, names, maps, fill, key, scale, chunk):
  """`_grow_whole`, one leading-axis row at a time (vmapped in blocks), so
  temporaries are the size of a block, not of the array."""
  lead = names[0]
  source = maps[lead].source if lead in maps else np.arange(x.shape[0])
  out_shape = grown_shape(x.shape, names, maps)
  row_size = int(np.prod(out_shape[1:]))
  source_j = jnp.asarray(source, jnp.int32)

  def row(r):
    s = source_j[r]
    x_r = jax.lax.dynamic_index_in_dim(x, jnp.maximum(s, 0), 0, keepdims=False)
    row_fresh = {lead: s < 0} if lead in maps else None
    row_key = None if key is None else jax.random.fold_in(key, r)
    return _grow_whole(x_r, names[1:], maps, fill, row_key, scale,
                       row_fresh=row_fresh)

  # The block must divide the rows: a remainder block would be concatenated to
  # the loop's result, a copy of the whole array.
  n = source.size
  block = max(d for d in range(1, min(n, max(1, chunk // row_size)) + 1)
              if n % d == 0)
  return jax.lax.map(row, jnp.arange(n), batch_size=block)


def axis_maps(ops, method: str, options: Mapping[str, Any]) -> dict[str, AxisMap]:
  """The AxisMap of every operator of a plan."""
  return {op.axis: OPERATORS[op.axis].axis_map(op, method, options) for op in ops}


def _tiled(path: str, maps: Mapping[str, AxisMap], inputs: bool) -> float:
  """The product of the copy factors of the parameter's tiled input (or
  non-input) axes."""
  p = params_lib.TABLE[path]
  return float(np.prod([maps[n].copies for n in p.axes
                        if n in maps and (n in p.inputs) == inputs]))


def value_scale(path: str, maps: Mapping[str, AxisMap],
                compensation: float = 1.0) -> float:
  """Factor on a grown parameter's copied values: 1/n per tiled input axis
  (hyperclone keeps each output y = sum_i x_i w_i over n equal copies of x_i),
  times `compensation` (`mup.growth_compensation`: under muP the unembedding
  takes D1 / D0 for the logits' multiplier going from base/D0 to base/D1)."""
  return compensation / _tiled(path, maps, inputs=True)


def grad_scale(path: str, maps: Mapping[str, AxisMap],
               compensation: float = 1.0) -> float:
  """Factor on a grown parameter's gradient, relative to the copied old
  gradient, right after growth: 1/n per tiled non-input axis, over
  `compensation`. (Each copy of an activation gets 1/n of the old cotangent,
  because every reader sums the copies with weights divided by n; a weight
  copied along an input axis sees the same input and the old cotangent. A
  parameter whose forward multiplier fell by c, its values raised by c,
  sees a gradient 1/c as large.)"""
  return 1.0 / (_tiled(path, maps, inputs=False) * compensation)


def lr_scale(path: str, maps: Mapping[str, AxisMap], compensation: float = 1.0,
             mup_ratio: float = 1.0) -> float:
  """Factor on a grown parameter's Adam step, beyond muP's recomputed
  multipliers, that makes one step of a hypercloned model equal the cloned
  step of the small model: the factor its values were multiplied by
  (`value_scale`), over the change muP's own multiplier already makes
  (`mup_ratio`, new / old). sp: 1/n per tiled input axis. mup: 1 (a hidden
  matrix's 1/n is muP's fan-in rule; the unembedding is not divided, muP's
  output multiplier absorbs the n). 1 for every method that copies nothing."""
  if all(m.copies == 1 for m in maps.values()):
    return 1.0
  return value_scale(path, maps, compensation) / mup_ratio


def zero_sum(z: jax.Array, axis: int, source: np.ndarray) -> jax.Array:
  """`z` centred over each set of copies along `axis` (the entries with the
  same `source`, equally many per old entry), so each set sums to zero."""
  old = int(source.max()) + 1
  order = np.argsort(source, kind="stable")  # each old entry's copies together
  shape = z.shape
  split = shape[:axis] + (old, source.size // old) + shape[axis + 1:]
  z = jnp.take(z, order, axis=axis).reshape(split)
  z = z - z.mean(axis=axis + 1, keepdims=True)
  return jnp.take(z.reshape(shape), np.argsort(order), axis=axis)
