"""AdamW with global-norm clipping, the run's learning-rate schedule
(growjax.schedule: per-stage warmup + cosine, or warmup-stable-decay across
stages), and per-parameter update multipliers (muP's, and HyperCloning's
after a hyperclone growth)."""

from __future__ import annotations

import jax
import optax

from growjax import schedule as schedule_lib
from growjax.experiment import Experiment, Optimizer, Stage, lr_multipliers


def decay_mask(params):
  """Weight decay on matrices and embeddings, not on LayerNorm scales/biases."""
  def decays(path, _):
    return not any(str(getattr(k, "key", k)).startswith("ln") for k in path)
  return jax.tree_util.tree_map_with_path(decays, params)


def schedule(stage: Stage, start_step: int, steps: int) -> optax.Schedule:
  """A stage's own warmup + cosine (`growjax.schedule.per_stage`)."""
  return schedule_lib.per_stage(stage, start_step, steps)


def stage_schedule(exp: Experiment, stage: Stage) -> optax.Schedule:
  """The rate of `stage` against the global step, by the run's schedule
  (`growjax.schedule.stage_rate`: per-stage cosine, or warmup-stable-decay
  across stages with re-warms and the stage's multiplier)."""
  return schedule_lib.stage_rate(exp, stage)


def multipliers(exp: Experiment, stage: Stage):
  """The update multiplier of every parameter of `stage`
  (`growjax.experiment.lr_multipliers`: muP's times hyperclone's), or None
  when all are 1."""
  return lr_multipliers(exp, stage)


def scale_by_multipliers(mults) -> optax.GradientTransformation:
  """Each update times its parameter's multiplier (`mults`: a params-shaped
  tree of floats, or None for 1). Stateless."""

  def update(updates, state, params=None):
    del params
    if mults is None:
      return updates, state
    return jax.tree.map(lambda u, m: u if m == 1 else u * m, updates, mults), state

  return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def make(opt: Optimizer, lr: optax.Schedule, mults=None) -> optax.GradientTransformation:
  """Global-norm clipping, then AdamW spelled out as optax.adamw builds it
  (Adam direction, decoupled weight decay, learning rate), with the
  multipliers on the Adam direction only: weight decay stays proportional to
  the weights, as HyperCloning's one-step equivalence needs. The chain is the
  same whatever the multipliers, so the optimizer state keeps one structure
  across stages."""
  return optax.chain(
      optax.clip_by_global_norm(opt.clip_norm),
      optax.scale_by_adam(b1=opt.b1, b2=opt.b2, eps=opt.eps),
      scale_by_multipliers(mults),
      optax.add_decayed_weights(opt.weight_decay, mask=decay_mask),
      optax.scale_by_learning_rate(lr))
