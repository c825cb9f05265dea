"""The loss, and the jitted train and eval steps.

The train state is a plain dict:
  params     float32 parameters (growjax.model)
  opt_state  optax state of `optimizer.make`
  step       int32 global optimizer step (it carries over growth)
  masks0     (during a growth's mask ramp only) the masks at the stage's
             first step; the step ramps them to 1 (`grow.Ramp`)
The model has no stochastic layers, so the state carries no RNG; growth keys
derive from (seed, stage), so a re-run grows identically.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from growjax import grow, model
from growjax.config import ModelConfig


def loss_fn(params, cfg: ModelConfig, batch_BT1, masks=None, remat=False):
  """Mean next-token cross-entropy of int32 windows [B, T+1]."""
  logits_BTV = model.apply(params, cfg, batch_BT1[:, :-1], masks=masks,
                           remat=remat)
  return optax.softmax_cross_entropy_with_integer_labels(
      logits_BTV, batch_BT1[:, 1:]).mean()


def current_masks(state, ramp: grow.Ramp | None):
  if ramp is None or "masks0" not in state:
    return None
  return ramp.masks(state["masks0"], state["step"])


def make_train_step(cfg: ModelConfig, optimizer: optax.GradientTransformation,
                    lr: Callable, *, microbatches: int = 1,
                    ramp: grow.Ramp | None = None, remat: bool = False):
  """(state, batch [B, T+1]) -> (state, metrics); gradients are averaged over
  `microbatches` slices of the batch before one optimizer update."""

  def train_step(state, batch):
    masks = current_masks(state, ramp)
    grad_fn = jax.value_and_grad(loss_fn)
    if microbatches == 1:
      loss, grads = grad_fn(state["params"], cfg, batch, masks, remat)
    else:
      micro = batch.reshape(microbatches, -1, batch.shape[-1])

      def accumulate(carry, mb):
        loss, grads = grad_fn(state["params"], cfg, mb, masks, remat)
        return jax.tree.map(jnp.add, carry, (loss, grads)), None

      zeros = (jnp.zeros((), jnp.float32),
               jax.tree.map(jnp.zeros_like, state["params"]))
      (loss, grads), _ = jax.lax.scan(accumulate, zeros, micro)
      loss, grads = jax.tree.map(lambda x: x / microbatches, (loss, grads))
    updates, opt_state = optimizer.update(grads, state["opt_state"],
                                          state["params"])
    new_state = dict(state, params=optax.apply_updates(state["params"], updates),
                     opt_state=opt_state, step=state["step"] + 1)
    metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads),
               "lr": lr(state["step"])}
    return new_state, metrics

  return train_step


def make_eval_step(cfg: ModelConfig, ramp: grow.Ramp | None = None):
  """(state, batch) -> mean loss, with the masks of the state's step."""

  def eval_step(state, batch):
    return loss_fn(state["params"], cfg, batch, current_masks(state, ramp))

  return eval_step
