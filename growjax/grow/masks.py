"""MSG masks after a growth: the linear ramp to 1 and the fold to `None`.

A growth returns the masks at growth time, m0 (1 for old entries, 0 for new
ones, or the values they had mid-ramp when an already masked model grows
again). The trainer then uses

    masks = ramp(m0, step_since_growth / ramp_steps)

m = m0 + (1 - m0) * clip(progress, 0, 1), elementwise: at progress 0 it is
exactly m0 (so the grown model computes the old function), at progress >= 1 it
is exactly 1, and a growth that happens mid-ramp composes (its m0 already holds
the partial values). Once every mask is 1, `fold` drops them (`masks=None`,
the model's fast path) without changing the function.

`Ramp` is that schedule in global optimizer steps, the one definition the
train step, the trainer's fold and loading a checkpoint for evaluation share.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Masks = dict[str, jax.Array]


def ramp(masks_at_growth: Masks | None, progress: Any) -> Masks | None:
  """m0 + (1 - m0) * clip(progress, 0, 1), exactly 1 at progress >= 1.
  Jit-able; `progress` may be traced."""
  if masks_at_growth is None:
    return None
  p = jnp.clip(jnp.asarray(progress, jnp.float32), 0.0, 1.0)
  return {k: jnp.where(p >= 1.0, jnp.ones_like(m), m + (1 - m) * p.astype(m.dtype))
          for k, m in masks_at_growth.items()}


@dataclasses.dataclass(frozen=True)
class Ramp:
  """Masks rise from their growth values m0 to 1 over `steps` optimizer
  steps from global step `start` (the growth's step, where they are m0)."""
  start: int
  steps: int

  def masks(self, masks0: Masks | None, step: Any) -> Masks | None:
    """The masks at global `step` (an int or a traced int32)."""
    progress = (step - self.start) / max(self.steps, 1)
    return ramp(masks0, jnp.clip(progress, 0.0, 1.0))

  def done(self, step: int) -> bool:
    """Every mask is exactly 1 from this step on: they may fold."""
    return step >= self.start + self.steps


def foldable(masks: Masks | None) -> bool:
  """True when every mask entry is exactly 1 (host check)."""
  return masks is None or all(
      bool(np.all(np.asarray(m) == 1)) for m in masks.values())


def fold(masks: Masks | None) -> None:
  """`None` for masks that are all ones (the model then skips mask
  arithmetic, same function); ValueError naming a mask that is not."""
  for name, m in (masks or {}).items():
    m = np.asarray(m)
    if not np.all(m == 1):
      raise ValueError(
          f"masks.{name}: {int(np.sum(m != 1))} of {m.size} entries are not 1 "
          f"(min {float(m.min()):.4g}); ramp them to 1 before folding")
  return None
