"""Next-token cross-entropy of int32 windows [B, T+1], with or without the
float32 [B, T, V] logits.

Plain path (`chunk=None`): `model.apply`'s float32 logits, then the
integer-label cross-entropy. At vocab 32,000 those logits and their gradient
are 2 x 4 B T V bytes, the largest activation of a small model.

Chunked path (`chunk=c`): the model runs to its final hidden states x [B, T, D]
(`model.apply(..., return_hidden=True)`); the unembedding, logsumexp and label
logit are computed c positions at a time (`lax.map`), so at most [B, c, V]
logits exist at once. The same numbers as the plain path: each chunk's logits
come from `model.project`, the plain path's definition.

- `cross_entropy` (the training loss) has a custom VJP, as fused linear
  cross-entropy kernels do: when it is differentiated, each chunk's
  softmax - one_hot gives dx and adds into dW in the forward pass itself, so the
  backward pass neither keeps nor recomputes logits and the unembedding costs
  its 6 D V FLOPs per token, as on the plain path. dW accumulates in float32.
- `per_window` (evaluation: per-window losses for standard errors) has
  checkpointed chunks instead: right for any cotangent, at one more
  unembedding matmul per token in a backward pass.

The chunks run along T so a batch sharded over (data, fsdp) stays sharded; dW
is then reduced across the batch's devices once per chunk, not once per step:
pick chunks of a few hundred positions or more on a mesh.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax

from growjax import checks
from growjax import constraints
from growjax import model
from growjax.config import ModelConfig


def _split(batch_BT1):
  batch_BT1 = jnp.asarray(batch_BT1, jnp.int32)
  if batch_BT1.ndim != 2 or batch_BT1.shape[1] < 2:
    raise ValueError(
        f"batch: shape {batch_BT1.shape} is not [B, T+1] windows with T >= 1")
  return batch_BT1[:, :-1], batch_BT1[:, 1:]


def _chunked(x_BTD, labels_BT, chunk: int):
  """[N, B, c, D] hidden states, [N, B, c] labels and [N, 1, c] validity:
  T is padded up to N * c and the padding is marked invalid."""
  b, t, d = x_BTD.shape
  n = -(-t // chunk)
  pad = n * chunk - t
  x_BTD = jnp.pad(x_BTD, ((0, 0), (0, pad), (0, 0)))
  labels_BT = jnp.pad(labels_BT, ((0, 0), (0, pad)))
  valid_NC = (jnp.arange(n * chunk) < t).reshape(n, 1, chunk)
  return (x_BTD.reshape(b, n, chunk, d).swapaxes(0, 1),
          labels_BT.reshape(b, n, chunk).swapaxes(0, 1), valid_NC)


def _unchunked(y_NBc, t: int):
  n, b, c = y_NBc.shape[:3]
  return y_NBc.swapaxes(0, 1).reshape(b, n * c, *y_NBc.shape[3:])[:, :t]


def _logits_and_losses(x_BcD, w_DV, labels_Bc, cfg: ModelConfig):
  """Logits [B, c, V], the label one-hot and per-token losses [B, c]."""
  logits_BcV = model.project(x_BcD, w_DV, cfg)
  lse_Bc = jax.nn.logsumexp(logits_BcV, axis=-1)
  # a compare-and-sum, not a gather: stays local when V is sharded
  one_hot_BcV = labels_Bc[..., None] == jnp.arange(logits_BcV.shape[-1])
  label_Bc = jnp.sum(jnp.where(one_hot_BcV, logits_BcV, 0.0), axis=-1)
  return logits_BcV, lse_Bc, one_hot_BcV, lse_Bc - label_Bc


def _whole_compute_weight(w_DV, cfg: ModelConfig):
  """The unembedding in the compute dtype, cast on its shard and (under a
  step's constraints, growjax.constraints) gathered whole along `embed` once,
  before the chunk loop, not once per chunk."""
  w_lp_DV = constraints.constrain(w_DV.astype(cfg.dtype), ("embed", "vocab"))
  return constraints.constrain(w_lp_DV, (None, "vocab"))


def token_losses(x_BTD, w_DV, labels_BT, cfg: ModelConfig, chunk: int):
  """Per-token losses float32 [B, T] from final hidden states, `chunk`
  positions at a time; each chunk is checkpointed (its logits are recomputed,
  not kept, in a backward pass)."""
  t = labels_BT.shape[1]
  w_DV = _whole_compute_weight(w_DV, cfg)  # cast once, not once per chunk

  @jax.checkpoint
  def one(args):
    x_BcD, labels_Bc = args
    return _logits_and_losses(x_BcD, w_DV, labels_Bc, cfg)[-1]

  x_NBcD, labels_NBc, _ = _chunked(x_BTD, labels_BT, min(chunk, t))
  return _unchunked(jax.lax.map(one, (x_NBcD, labels_NBc)), t)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def _mean_loss(x_BTD, w_DV, labels_BT, cfg: ModelConfig, chunk: int):
  """Mean per-token loss; differentiated, dx and dW come from one pass."""
  return token_losses(x_BTD, w_DV, labels_BT, cfg, chunk).mean()


def _mean_loss_fwd(x_BTD, w_DV, labels_BT, cfg, chunk):
  b, t, _ = x_BTD.shape
  dtype = jnp.dtype(cfg.dtype)
  w_lp_DV = _whole_compute_weight(w_DV, cfg)
  x_NBcD, labels_NBc, valid_N1c = _chunked(x_BTD, labels_BT, min(chunk, t))

  def one(carry, args):
    loss_sum, dw_DV = carry
    x_BcD, labels_Bc, valid_1c = args
    logits_BcV, lse_Bc, one_hot_BcV, loss_Bc = _logits_and_losses(
        x_BcD, w_lp_DV, labels_Bc, cfg)
    # d(mean)/d(logits) = (softmax - one_hot) / (B T), zero on padding
    weight_Bc = jnp.where(valid_1c, 1.0 / (b * t), 0.0)
    dlogits_BcV = ((jnp.exp(logits_BcV - lse_Bc[..., None]) - one_hot_BcV)
                   * weight_Bc[..., None]).astype(dtype)
    dx_BcD = jnp.einsum("BcV,DV->BcD", dlogits_BcV, w_lp_DV)
    dw_DV = dw_DV + jnp.einsum("BcD,BcV->DV", x_BcD.astype(dtype), dlogits_BcV,
                               preferred_element_type=jnp.float32)
    loss_sum = loss_sum + jnp.sum(jnp.where(valid_1c, loss_Bc, 0.0))
    return (loss_sum, dw_DV), dx_BcD

  zeros = (jnp.zeros((), jnp.float32), jnp.zeros(w_DV.shape, jnp.float32))
  (loss_sum, dw_DV), dx_NBcD = jax.lax.scan(
      one, zeros, (x_NBcD, labels_NBc, valid_N1c))
  dx_BTD = _unchunked(dx_NBcD, t).astype(x_BTD.dtype)
  return loss_sum / (b * t), (dx_BTD, dw_DV.astype(w_DV.dtype), labels_BT)


def _mean_loss_bwd(cfg, chunk, residuals, g):
  del cfg, chunk
  dx_BTD, dw_DV, labels_BT = residuals
  # integer labels take a float0 cotangent
  zero_labels = jnp.zeros(labels_BT.shape, jax.dtypes.float0)
  return dx_BTD * g, dw_DV * g, zero_labels


_mean_loss.defvjp(_mean_loss_fwd, _mean_loss_bwd)


def _check_chunk(chunk):
  return None if chunk is None else checks.positive_int("chunk", chunk)


def cross_entropy(params, cfg: ModelConfig, batch_BT1, *, masks=None,
                  remat: str = "none",
                  chunk: int | None = None) -> jax.Array:
  """Mean next-token cross-entropy of int32 windows [B, T+1] (float32 scalar).

  masks, remat: as in `model.apply`. chunk: None for the plain path (float32
  [B, T, V] logits), else positions per chunk of the unembedding (see the
  module docstring); a T that `chunk` does not divide is padded.
  """
  chunk = _check_chunk(chunk)
  tokens_BT, labels_BT = _split(batch_BT1)
  if chunk is None:
    logits_BTV = model.apply(params, cfg, tokens_BT, masks=masks, remat=remat)
    return optax.softmax_cross_entropy_with_integer_labels(
        logits_BTV, labels_BT).mean()
  x_BTD = model.apply(params, cfg, tokens_BT, masks=masks, remat=remat,
                      return_hidden=True)
  return _mean_loss(x_BTD, model.unembedding(params, cfg), labels_BT, cfg,
                    chunk)


def per_window(params, cfg: ModelConfig, batch_BT1, *, masks=None,
               remat: str = "none",
               chunk: int | None = None) -> jax.Array:
  """Mean next-token cross-entropy of each window: float32 [B]. Arguments as
  in `cross_entropy`; the chunked path is differentiable too (checkpointed
  chunks)."""
  chunk = _check_chunk(chunk)
  tokens_BT, labels_BT = _split(batch_BT1)
  if chunk is None:
    logits_BTV = model.apply(params, cfg, tokens_BT, masks=masks, remat=remat)
    losses_BT = optax.softmax_cross_entropy_with_integer_labels(
        logits_BTV, labels_BT)
  else:
    x_BTD = model.apply(params, cfg, tokens_BT, masks=masks, remat=remat,
                        return_hidden=True)
    losses_BT = token_losses(x_BTD, model.unembedding(params, cfg), labels_BT,
                             cfg, chunk)
  return losses_BT.mean(axis=1)
