"""The jitted train and eval steps.

The train state is a plain dict:
  params     float32 parameters (growjax.model)
  opt_state  optax state of `optimizer.make`
  step       int32 global optimizer step (it carries over growth)
  masks0     (during a growth's mask ramp only) the masks at the stage's
             first step; the step ramps them to 1 (`grow.Ramp`)
The model has no stochastic layers, so the state carries no RNG; growth keys
derive from (seed, stage), so a re-run grows identically. Outside a ramp the
state has no masks, and the compiled step has no mask arithmetic at all.

A step whose loss or gradient norm is not finite changes neither the
parameters nor the optimizer state (its step count and its learning-rate
schedule's included): it only advances `step` and reports `skipped`
(growjax.train.guard decides what the run does about it).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from growjax import constraints, grow, loss
from growjax.config import ModelConfig


def current_masks(state, ramp: grow.Ramp | None):
  if ramp is None or "masks0" not in state:
    return None
  return ramp.masks(state["masks0"], state["step"])


def make_train_step(cfg: ModelConfig, optimizer: optax.GradientTransformation,
                    lr: Callable, *, microbatches: int = 1,
                    ramp: grow.Ramp | None = None, remat: str | bool = "none",
                    loss_chunk: int | None = None, mesh=None, rules=None):
  """(state, batch [B, T+1]) -> (state, metrics); gradients are averaged over
  `microbatches` slices of the batch before one optimizer update. `remat` and
  `loss_chunk` as in `growjax.loss.cross_entropy`. `mesh` (and `rules`,
  default `growjax.logical.RULES`): the mesh the step is jitted for; the
  model's activations and cast weights are then laid out by the rules
  (growjax.constraints), so fsdp computes on its own rows."""

  def loss_fn(params, batch, masks):
    with constraints.active(mesh, rules):
      return loss.cross_entropy(params, cfg, batch, masks=masks, remat=remat,
                                chunk=loss_chunk)

  def train_step(state, batch):
    masks = current_masks(state, ramp)
    grad_fn = jax.value_and_grad(loss_fn)
    if microbatches == 1:
      value, grads = grad_fn(state["params"], batch, masks)
    else:
      micro = batch.reshape(microbatches, -1, batch.shape[-1])

      def accumulate(carry, mb):
        value, grads = grad_fn(state["params"], mb, masks)
        return jax.tree.map(jnp.add, carry, (value, grads)), None

      zeros = (jnp.zeros((), jnp.float32),
               jax.tree.map(jnp.zeros_like, state["params"]))
      (value, grads), _ = jax.lax.scan(accumulate, zeros, micro)
      value, grads = jax.tree.map(lambda x: x / microbatches, (value, grads))
    grad_norm = optax.tree.norm(grads)
    finite = jnp.isfinite(value) & jnp.isfinite(grad_norm)
    updates, opt_state = optimizer.update(grads, state["opt_state"],
                                          state["params"])
    params = optax.apply_updates(state["params"], updates)

    def keep(new, old):  # a select, fused into the update
      return jnp.where(finite, new, old)

    new_state = dict(state, params=jax.tree.map(keep, params, state["params"]),
                     opt_state=jax.tree.map(keep, opt_state, state["opt_state"]),
                     step=state["step"] + 1)
    metrics = {"loss": value, "grad_norm": grad_norm, "lr": lr(state["step"]),
               "skipped": ~finite}
    return new_state, metrics

  return train_step


def make_eval_step(cfg: ModelConfig, ramp: grow.Ramp | None = None, *,
                   loss_chunk: int | None = None, mesh=None, rules=None):
  """(state, windows [B, T+1]) -> float32 [B]: each window's mean loss, with
  the masks of the state's step; `mesh`, `rules` as in `make_train_step`."""

  def eval_step(state, batch):
    with constraints.active(mesh, rules):
      return loss.per_window(state["params"], cfg, batch,
                             masks=current_masks(state, ramp), chunk=loss_chunk)

  return eval_step
