"""AdamW with global-norm clipping and a per-stage warmup + cosine schedule."""

from __future__ import annotations

import jax
import optax

from growjax.experiment import Optimizer, Stage


def decay_mask(params):
  """Weight decay on matrices and embeddings, not on LayerNorm scales/biases."""
  def decays(path, _):
    return not any(str(getattr(k, "key", k)).startswith("ln") for k in path)
  return jax.tree_util.tree_map_with_path(decays, params)


def schedule(stage: Stage, start_step: int, steps: int) -> optax.Schedule:
  """Linear warmup from 0 to `peak`, cosine to `final` at the stage's end.

  Counted from `start_step`, the global step at which the stage begins: the
  optimizer's step count carries over growth, the schedule is rewound.
  """
  lr = stage.lr
  base = optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=lr.peak, warmup_steps=lr.warmup_steps,
      decay_steps=max(steps, lr.warmup_steps + 1), end_value=lr.final)
  return lambda count: base(count - start_step)


def make(opt: Optimizer, lr: optax.Schedule) -> optax.GradientTransformation:
  return optax.chain(
      optax.clip_by_global_norm(opt.clip_norm),
      optax.adamw(lr, b1=opt.b1, b2=opt.b2, eps=opt.eps,
                  weight_decay=opt.weight_decay, mask=decay_mask))
