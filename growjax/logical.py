"""Logical axis names -> mesh axes: the rule walk, on axis sizes alone.

Layers name logical axes only (`growjax.params`: `("layers", "embed",
"mlp")`); a table of rules maps each name to axes of one mesh,

    data    pure data parallelism (replicas; spans hosts first),
    fsdp    data parallelism whose replicas also split the parameters and
            optimizer state along `embed` (ZeRO-3 / FSDP),
    tensor  tensor (model) parallelism: `mlp`, `heads`, `kv_heads`, `vocab`.

This module decides which mesh axes split each dimension of an array. It
needs only the mesh's axis sizes (a dict), never devices, so one walk serves
both `growjax.parallel` (NamedShardings on the mesh that is here) and
`growjax.cost` (bytes per device of a mesh that is not). Nothing here
imports JAX.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from growjax import checks

MESH_AXES = ("data", "fsdp", "tensor")

MeshAxes = tuple[str, ...] | None
Rules = tuple[tuple[str, MeshAxes], ...]
# One spec entry per dimension, as jax.sharding.PartitionSpec takes them.
Entry = str | tuple[str, ...] | None

# Default rules: (logical name, mesh axes). A name may appear more than once:
# the first rule that can shard the dimension wins (see `spec`), so later
# rules are fallbacks. Names without a rule, and rules to None, replicate.
RULES: Rules = (
    ("batch", ("data", "fsdp")),
    ("embed", ("fsdp",)),
    ("mlp", ("tensor",)),
    ("heads", ("tensor",)),
    ("kv_heads", ("tensor",)),  # key/value heads (grouped-query attention)
    ("vocab", ("tensor",)),
    ("layers", None),
    ("head_dim", None),
    ("time", None),
)


# ---------------------------------------------------------------- rules ---

def _mesh_axes(value: Any, where: str) -> MeshAxes:
  """None, "fsdp" or ("data", "fsdp") -> None or a tuple of names."""
  if value is None:
    return None
  names = (value,) if isinstance(value, str) else value
  if not isinstance(names, Sequence) or not all(
      isinstance(a, str) for a in names):
    raise ValueError(
        f"{where}: {value!r} is not None, a mesh axis name or a sequence of "
        "them")
  return tuple(names) or None


def _pair(item: Any, where: str) -> tuple[str, MeshAxes]:
  if (isinstance(item, str) or not isinstance(item, Sequence)
      or len(item) != 2 or not isinstance(item[0], str)):
    raise ValueError(
        f"{where}: {item!r} is not a (logical name, mesh axes) pair")
  return item[0], _mesh_axes(item[1], where)


def normalize(rules: Any, field: str = "rules") -> Rules:
  """A whole rule table (None: `RULES`) as a tuple of (name, mesh axes)."""
  if rules is None or rules is RULES:
    return RULES
  return tuple(_pair(item, f"{field}[{i}]") for i, item in enumerate(rules))


def rules_from_config(overrides: Any = None, *, base: Rules = RULES,
                      field: str = "mesh.rules") -> Rules:
  """`base` with the rules of an experiment config applied.

  `overrides` (e.g. `c.mesh.rules`) is None, a sequence of (logical name,
  mesh axes) pairs, or a mapping name -> mesh axes; mesh axes are None
  (replicate), a name of `MESH_AXES`, or a sequence of them. A logical name
  given in `overrides` replaces all of its rules in `base`; other names keep
  theirs. Errors name `field`, the entry and the value.
  """
  if overrides is None:
    return normalize(base)
  items = list(overrides.items()) if hasattr(overrides, "items") else overrides
  if isinstance(items, str) or not isinstance(items, Sequence):
    raise ValueError(
        f"{field}: {overrides!r} is not a list of (logical name, mesh axes) "
        "pairs or a mapping")
  new = []
  for i, item in enumerate(items):
    name, axes = _pair(item, f"{field}[{i}]")
    for a in axes or ():
      if a not in MESH_AXES:
        raise ValueError(
            f"{field}[{i}]: mesh axis {a!r} of {name!r} is not one of "
            f"{MESH_AXES}")
    new.append((name, axes))
  named = {name for name, _ in new}
  return tuple(new) + tuple(r for r in normalize(base) if r[0] not in named)


# ---------------------------------------------------------------- sizes ---

def mesh_sizes(mesh: Mapping[str, int], field: str = "mesh") -> dict[str, int]:
  """Every axis of `MESH_AXES` -> its size, from a dict that may leave axes
  out (size 1). Unknown axes and sizes that are not positive ints raise."""
  if not isinstance(mesh, Mapping):
    raise ValueError(f"{field}: {mesh!r} is not a dict of {MESH_AXES}")
  unknown = sorted(set(mesh) - set(MESH_AXES))
  if unknown:
    raise ValueError(
        f"{field}: unknown axes {unknown}; expected {MESH_AXES}")
  return {a: checks.positive_int(f"{field}[{a!r}]", mesh.get(a, 1))
          for a in MESH_AXES}


# ----------------------------------------------------------------- walk ---

def spec(axes: Sequence[str | None], shape: Sequence[int],
         sizes: Mapping[str, int], rules: Any = RULES) -> tuple[Entry, ...]:
  """The PartitionSpec entries of an array of `shape` whose dimensions have
  logical names `axes`, on a mesh of these axis `sizes`.

  Dimensions are taken left to right. For each, the rules for its name are
  tried in order; a rule's mesh axes lose those of size 1 and those an
  earlier dimension already took (one mesh axis never appears twice in a
  spec), then trailing axes are dropped until their product divides the
  dimension. The first rule left with any axis shards the dimension; a rule
  to None, or no rule left, replicates it. So a dimension not divisible by
  its mesh axes is replicated (or, for a multi-axis rule like batch -> (data,
  fsdp), sharded over the longest prefix that divides it), never padded.
  """
  if len(axes) != len(shape):
    raise ValueError(
        f"logical axes {tuple(axes)} do not match shape {tuple(shape)}")
  rules = normalize(rules)
  used: set[str] = set()
  out = []
  for name, dim in zip(axes, shape):
    chosen: tuple[str, ...] = ()
    for rule_name, mesh_axes in rules if name is not None else ():
      if rule_name != name:
        continue
      if mesh_axes is None:
        break
      missing = [a for a in mesh_axes if a not in sizes]
      if missing:
        raise ValueError(
            f"rule {name!r} -> {mesh_axes}: the mesh has no axis "
            f"{missing[0]!r} (its axes: {tuple(sizes)})")
      free = [a for a in mesh_axes if a not in used and sizes[a] > 1]
      while free and dim % math.prod(sizes[a] for a in free):
        free.pop()
      if free:
        chosen = tuple(free)
        break
    used.update(chosen)
    out.append(None if not chosen else
               chosen[0] if len(chosen) == 1 else chosen)
  return tuple(out)


def shard_counts(axes: Sequence[str | None], shape: Sequence[int],
                 sizes: Mapping[str, int], rules: Any = RULES
                 ) -> tuple[int, ...]:
  """How many ways `spec` splits each dimension (1: replicated)."""
  return tuple(
      math.prod(sizes[a] for a in
                (() if entry is None else
                 (entry,) if isinstance(entry, str) else entry))
      for entry in spec(axes, shape, sizes, rules))


def batch_axes(sizes: Mapping[str, int], rules: Any = RULES
               ) -> tuple[str, ...]:
  """The mesh axes that split a batch's rows: the first `batch` rule with an
  axis of size > 1 (default: data x fsdp). Divisibility is the caller's
  question: rows that do not divide cannot be laid out, not replicated."""
  for name, mesh_axes in normalize(rules):
    if name != "batch":
      continue
    if mesh_axes is None:
      return ()
    axes = tuple(a for a in mesh_axes if sizes.get(a, 1) > 1)
    if axes:
      return axes
  return ()
