"""AdamW with global-norm clipping, a per-stage warmup + cosine schedule, and
per-parameter update multipliers (muP's, and HyperCloning's after a hyperclone
growth)."""

from __future__ import annotations

import jax
import optax

from growjax import grow
from growjax import mup
from growjax.experiment import Experiment, Optimizer, Stage


def decay_mask(params):
  """Weight decay on matrices and embeddings, not on LayerNorm scales/biases."""
  def decays(path, _):
    return not any(str(getattr(k, "key", k)).startswith("ln") for k in path)
  return jax.tree_util.tree_map_with_path(decays, params)


def schedule(stage: Stage, start_step: int, steps: int) -> optax.Schedule:
  """Linear warmup from 0 to `peak`, cosine to `final` at the stage's end.

  Counted from `start_step`, the global step at which the stage begins: the
  optimizer's step count carries over growth, the schedule is rewound. With
  no warmup the stage starts at `peak` (a growth that continues the previous
  stage's rate).
  """
  lr = stage.lr
  base = optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=lr.peak, warmup_steps=lr.warmup_steps,
      decay_steps=max(steps, lr.warmup_steps + 1), end_value=lr.final)
  return lambda count: base(count - start_step)


def multipliers(exp: Experiment, stage: Stage):
  """The update multiplier of every parameter of `stage`: muP's for the
  stage's shape (`mup.lr_multipliers`: base fan-in / fan-in of each hidden
  matrix; all 1 under sp) times, unless `optimizer.clone_lr_multipliers` is
  off, the product over the growths up to it of `grow.lr_multipliers`
  (under sp 1/n along the input axes a hyperclone growth tiled n times; 1
  for every other method, and under muP, whose own multipliers already hold
  hyperclone's). None when all are 1."""
  total = mup.lr_multipliers(stage.model)
  if exp.optimizer.clone_lr_multipliers:
    for prev, s in zip(exp.stages[:stage.index],
                       exp.stages[1:stage.index + 1]):
      m = grow.lr_multipliers(prev.model, s.model, method=s.grow.method,
                              **s.grow.grow_options())
      total = jax.tree.map(lambda a, b: a * b, total, m)
  if all(float(v) == 1.0 for v in jax.tree.leaves(total)):
    return None
  return total


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
