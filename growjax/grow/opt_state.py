"""Growing the optimizer state with the parameters, so training continues.

Every sub-pytree of an optax state that has the parameters' structure (Adam's
mu and nu, MultiSteps' accumulated gradients, the moments inside
`optax.masked`, where masked-out leaves are `optax.MaskedNode`) is grown along
the same axis maps as the parameters; everything else (step counts, schedule
states, clipping's empty state) is kept as is.

Per method:
  msg, zero   new entries 0 (no gradient history). Old entries are kept, so one
              step on the grown model moves the old entries exactly as one step
              of the small model would (msg at mask 0; zero too, unless
              global-norm clipping sees the new gradients). The step count is
              kept, so Adam's bias correction is ~1 and a new entry's first
              step is (1 - b1) / sqrt(1 - b2) lr in size (0.45 lr at b2=0.95,
              3.2 lr at b2=0.999): rewind the learning-rate warmup, as MSG
              and FLM-101B do at each growth.
  stack       moments copied with the layers they belong to (each copy resumes
              its source layer's Adam state; zero moments with a kept count
              would give the copies full-size first steps of
              (1 - b1) / sqrt(1 - b2) in units of lr).
  hyperclone  moments tiled and scaled like the gradient of the grown model:
              a parameter's gradient is 1/n of the copied old gradient per
              tiled NON-input axis (`operators.grad_scale`), so first moments
              are scaled by s and second moments (nu, nu_max, sum_of_squares)
              by s**2.
  muP         (any method) the unembedding's values grow by D1 / D0 as the
              logits' multiplier falls, so its gradient shrinks by D0 / D1:
              its moments are scaled by that (squared for second moments)
              too, and its Adam direction carries on unchanged. Then the moments after one step of the grown model equal
              the grown moments after one step of the small model, for any
              Adam-family optimizer (hyperparameters included).
  untying     (a tied model grown into an untied one) the new output layer's
              moments start at zero.

  Parameters are a different matter: Adam's update is invariant to the
  gradient's scale, but hyperclone divides parameters by n along input axes,
  so with one global learning rate the grown model's step on those parameters
  is n times too large relative to the weights. One step of the grown model
  equals the grown step of the small model exactly when each parameter's
  Adam direction is multiplied by `lr_multipliers(...)` (1/n per tiled input
  axis: muP's fan-in rule), weight decay is applied outside that multiplier
  (optax.chain(scale_by_adam(), <multiply>, add_decayed_weights(wd),
  scale(-lr))), and eps is negligible (eps would need scaling by the gradient
  scale; with eps=1e-8 the relative difference is about eps / sqrt(nu)).
  Global-norm clipping sees a different norm after hyperclone (the copies add
  up), so clipping, when active, also breaks the equality.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import optax

from growjax import model
from growjax import mup
from growjax import params as params_lib
from growjax.config import ModelConfig
from growjax.grow import axes as axes_lib
from growjax.grow import methods as methods_lib
from growjax.grow import operators as ops_lib
from growjax.grow.plan import plan

# optax state fields that accumulate squared gradients (scaled by s**2).
SECOND_MOMENTS: tuple[str, ...] = ("nu", "nu_max", "sum_of_squares")


def grow_opt_state(opt_state: Any, old_cfg: ModelConfig, new_cfg: ModelConfig,
                   *, method: str, **options) -> Any:
  """The optimizer state of the model grown by
  `grow(params, old_cfg, new_cfg, key, method=method, **options)`.

  Takes the same options as `grow` (they must match: `new_layers` places the
  moments' new layers where the params' went). Pure and jit-able; no key:
  new moments are zeros or copies.
  """
  opts = methods_lib.check_options(method, options)
  maps = ops_lib.axis_maps(plan(old_cfg, new_cfg, method=method), method, opts)
  shapes = axes_lib.param_shapes(old_cfg)
  untie = axes_lib.unties(old_cfg, new_cfg)

  def params_like(node):
    return _matches(node, shapes)

  found = []

  def grow_moments(keys, node):
    if not params_like(node):
      return node  # a count, a schedule state, ...
    found.append(keys)
    degree = 2 if _field(keys) in SECOND_MOMENTS else 1
    if untie:  # the untied output layer starts without gradient history
      node = axes_lib.untie(node, lambda e: e if isinstance(
          e, optax.MaskedNode) else jax.numpy.zeros(e.shape[::-1], e.dtype))

    def grow_leaf(path_keys, x):
      if isinstance(x, optax.MaskedNode):
        return x
      path = params_lib.path_of(path_keys)
      compensation = mup.growth_compensation(
          params_lib.TABLE[path], old_cfg, new_cfg)
      scale = ops_lib.grad_scale(path, maps, compensation) ** degree
      return ops_lib.grow_array(x, model.AXES[path], maps, scale=scale)

    return jax.tree_util.tree_map_with_path(
        grow_leaf, node, is_leaf=lambda x: isinstance(x, optax.MaskedNode))

  out = jax.tree_util.tree_map_with_path(grow_moments, opt_state,
                                         is_leaf=params_like)
  if not found and any(np.ndim(x) > 0 for x in jax.tree.leaves(opt_state)):
    raise ValueError(
        "opt_state: no part of it has the structure and shapes of old_cfg's "
        "parameters (is old_cfg the config the state was built for?)")
  return out


def lr_multipliers(old_cfg: ModelConfig, new_cfg: ModelConfig, *, method: str,
                   **options) -> dict:
  """Per-parameter multipliers (a params-shaped tree of floats) of the Adam
  direction, on top of muP's own (`mup.lr_multipliers`, recomputed for each
  shape), that make one step of the grown model equal the grown step of the
  small model (`operators.lr_scale`): under sp 1/n per tiled input axis for
  hyperclone (the factor its values were divided by); 1 under mup (muP's
  fan-in multipliers already are hyperclone's) and for every other method.
  They compose over stages by multiplication."""
  opts = methods_lib.check_options(method, options)
  maps = ops_lib.axis_maps(plan(old_cfg, new_cfg, method=method), method, opts)

  def one(p):
    return ops_lib.lr_scale(
        p.path, maps, mup.growth_compensation(p, old_cfg, new_cfg),
        mup.lr_multiplier(p, new_cfg) / mup.lr_multiplier(p, old_cfg))

  return params_lib.tree(new_cfg, one)


def _field(keys) -> str | None:
  """The name of the state field a params-like subtree sits in (nu, mu, ...)."""
  for k in reversed(keys):
    name = getattr(k, "name", None)
    if name is not None:
      return name
  return None


def _matches(node: Any, shapes: Any) -> bool:
  if isinstance(shapes, dict):
    return (isinstance(node, dict) and node.keys() == shapes.keys()
            and all(_matches(node[k], shapes[k]) for k in shapes))
  if isinstance(node, optax.MaskedNode):
    return True
  return hasattr(node, "shape") and tuple(np.shape(node)) == tuple(shapes.shape)
