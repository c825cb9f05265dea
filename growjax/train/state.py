"""The train state: its shapes and shardings, a fresh one, one around given
(pretrained) parameters, and a grown one.

The state is a plain dict: params, opt_state, step and, during an MSG mask
ramp, masks0 (see growjax.train.step). Every function here builds arrays on
their devices (jit with out_shardings), never on the host first.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from growjax import grow, model, parallel
from growjax.experiment import Stage


def abstract_state(cfg, optimizer, mask_names, mesh, rules):
  """Shapes and shardings of a stage's train state, built without compute;
  `mask_names` names the growth masks it carries (MSG, during the ramp)."""
  sizes = model.axis_sizes(cfg)

  def build():
    params = model.init(cfg, jax.random.key(0))
    state = {"params": params, "opt_state": optimizer.init(params),
             "step": jnp.zeros((), jnp.int32)}
    if mask_names:
      state["masks0"] = {k: jnp.ones([sizes[a] for a in model.MASK_AXES[k]])
                         for k in mask_names}
    return state
  shapes = jax.eval_shape(build)
  params_sh = parallel.shardings(shapes["params"], mesh, rules)
  shardings = parallel.state_shardings(shapes, params_sh, mesh)
  return jax.tree.map(
      lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
      shapes, shardings), shardings


def init_state(cfg, optimizer, key, shardings):
  def build(key):
    params = model.init(cfg, key)
    return {"params": params, "opt_state": optimizer.init(params),
            "step": jnp.zeros((), jnp.int32)}
  return jax.jit(build, out_shardings=shardings)(key)


def state_from_params(cfg, optimizer, params, shardings):
  """Stage 0's state around given parameters (a pretrained model's, e.g.
  `hf.load_pretrained(...)[1]`, host arrays): each array is laid out straight
  into its sharding, every process contributing only its own devices'
  slices, and a fresh optimizer state is built on the devices."""
  grow.growth.check_params(params, cfg, what="init_from")
  params = jax.tree.map(
      lambda x, sh: jax.make_array_from_callback(
          x.shape, sh, lambda index, x=x: jnp.asarray(x[index], jnp.float32)),
      params, shardings["params"])

  def build(params):
    return {"params": params, "opt_state": optimizer.init(params),
            "step": jnp.zeros((), jnp.int32)}
  return jax.jit(build, out_shardings=shardings, donate_argnums=0)(params)


def grow_state(state, old: Stage, new: Stage, key, optimizer, mesh, rules, *,
               start: int):
  """The previous stage's final state grown into `new`'s shape, on its
  devices, and the ramp of its growth masks (None when the method has none).

  The previous stage ended with its masks folded (a ramp fits in its stage),
  so the model grows unmasked. The grown state's layout is known before
  anything grows (`grow.mask_names`), so the growth runs once, jitted
  straight into its shardings.
  """
  if "masks0" in state:
    raise ValueError("state: still carries growth masks; fold them first")
  method, options = new.grow.method, new.grow.grow_options()
  names = grow.mask_names(old.model, new.model, method=method)
  _, shardings = abstract_state(new.model, optimizer, names, mesh, rules)

  def grow_fn(state, key):
    grown = grow.grow(state["params"], old.model, new.model, key,
                      method=method, **options)
    opt_state = grow.grow_opt_state(state["opt_state"], old.model, new.model,
                                    method=method, **options)
    out = {"params": grown.params, "opt_state": opt_state, "step": state["step"]}
    if grown.masks is not None:
      out["masks0"] = grown.masks
    return out

  return jax.jit(grow_fn, out_shardings=shardings)(state, key), new.ramp(start)
