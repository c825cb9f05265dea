"""Sharding constraints inside the model, by logical axis names.

`jax.jit`'s in/out shardings fix where the state and the batch live; between
them GSPMD's partitioner chooses every layout, and on an fsdp mesh it chose
badly: the embedding lookup of a table split along `embed` came out split
along `embed`, so every activation after it was split the tensor-parallel way
(an all-reduce of activations per norm and per matmul, all-to-alls around the
final norm) over the whole batch on every device, and no weight was gathered:
41 GB sent per device per step at 1.3B, against 2.8 GB for data=2
(benchmarks/fsdp_collectives.py counts it). So the model names the logical
axes of the tensors that decide the layout, and the same rule walk that
shards the parameters (`growjax.logical.spec`) lays them out:

  activations   ("batch", "time", "embed"): rows over (data, fsdp), so `embed`
                finds fsdp taken and stays whole; each device computes on its
                own rows, as FSDP means;
  cast weights  a parameter after its cast to the compute dtype, with the
                parameter's own axes: the cast runs on the shard, and the
                all-gather before the matmul moves bfloat16, not float32;
  logits        ("batch", "time", "vocab"): rows stay where they were computed.

`constrain` is the identity unless `active(mesh, rules)` is open while the
model is traced: the train and eval steps open it on their mesh
(growjax.train.step). `model.apply` called on its own, decoding, growth and
one-device code trace no constraint at all.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Sequence
from typing import Any

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from growjax import logical

# The (mesh, rules) of the step being traced, or None.
_ACTIVE: contextvars.ContextVar[tuple[Mesh, Any] | None] = (
    contextvars.ContextVar("growjax_constraints", default=None))

# The residual stream and every [B, T, D] activation.
ACTIVATION = ("batch", "time", "embed")


@contextlib.contextmanager
def active(mesh: Mesh | None, rules: Any = None):
  """Makes `constrain` lay tensors out on `mesh` by `rules` (None: the
  default `logical.RULES`) while open; `mesh=None` leaves it the identity."""
  if mesh is None:
    yield
    return
  token = _ACTIVE.set((mesh, logical.normalize(rules)))
  try:
    yield
  finally:
    _ACTIVE.reset(token)


def constrain(x: jax.Array, axes: Sequence[str | None]) -> jax.Array:
  """`x` with its layout fixed by its logical `axes` (one per dimension),
  inside `active`; `x` itself outside."""
  got = _ACTIVE.get()
  if got is None:
    return x
  mesh, rules = got
  spec = logical.spec(axes, x.shape, dict(mesh.shape), rules)
  return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, P(*spec)))
