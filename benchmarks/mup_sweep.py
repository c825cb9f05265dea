"""Shared by the muP benchmarks (`mup_lr_transfer.py`, `mup_growth.py`): the
real data as device arrays, and many training runs of one shape that differ
only in their learning rate, vmapped into one compiled program.

Each run is the trainer's optimizer (`growjax.train.optimizer.make`: global
norm clipping, Adam, muP's multipliers, decoupled weight decay) on the
trainer's loss (`growjax.loss.cross_entropy`), its updates scaled by its own
peak rate times a shared unit schedule (linear warmup, then cosine to 10% or
constant), so every rate trains on exactly the same batches in the same order.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from growjax import loss as loss_lib
from growjax import model, mup
from growjax.config import ModelConfig
from growjax.experiment import Optimizer
from growjax.train import optimizer as opt_lib


def shape(d_model: int, head_dim: int) -> dict:
  """Width d_model with n_heads = d_model / head_dim, d_ff = 4 d_model."""
  return dict(d_model=d_model, n_heads=d_model // head_dim, d_ff=4 * d_model)


def config(width: int, param: str, *, base: int, head_dim: int, layers: int,
           vocab: int, seq_len: int, dtype: str) -> ModelConfig:
  return ModelConfig(vocab_size=vocab, n_layers=layers, head_dim=head_dim,
                     max_len=seq_len, pos="rope", param=param, dtype=dtype,
                     mup_base=shape(base, head_dim), **shape(width, head_dim))


def data(*, seq_len: int, batch_size: int, steps: int, eval_batches: int,
         vocab: int, tokenizer_chars: int, val_fraction: float):
  """(train [steps, B, T+1], validation [eval_batches, B, T+1]) int32 device
  arrays of the embedded python_source corpus, as experiments read it."""
  from growjax.data import DataConfig, corpus, pipeline  # noqa: PLC0415
  c = corpus.prepare(DataConfig(
      name="python_source", seq_len=seq_len, vocab_size=vocab,
      tokenizer_chars=tokenizer_chars, val_fraction=val_fraction))

  def take(split, n):
    it = pipeline.batches(c, split, batch_size=batch_size, seq_len=seq_len,
                          seed=0, shard_index=0, shard_count=1)
    return jnp.asarray(np.stack([next(it) for _ in range(n)]), jnp.int32)

  return take("train", steps), take("validation", eval_batches)


def unit_schedule(steps: int, warmup: int, decay: bool) -> optax.Schedule:
  """Peak 1: linear warmup, then cosine to 0.1 (decay) or constant."""
  if decay:
    return optax.warmup_cosine_decay_schedule(
        0.0, 1.0, warmup, max(steps, warmup + 1), end_value=0.1)
  return optax.join_schedules(
      [optax.linear_schedule(0.0, 1.0, max(warmup, 1)),
       optax.constant_schedule(1.0)], [max(warmup, 1)])


def optimizer(cfg: ModelConfig, schedule: optax.Schedule, mults=None):
  """The trainer's chain with muP's multipliers of `cfg` (times `mults`,
  e.g. hyperclone's) and a unit learning rate."""
  total = mup.lr_multipliers(cfg)
  if mults is not None:
    total = jax.tree.map(lambda a, b: a * b, total, mults)
  return opt_lib.make(Optimizer(), schedule, total)


def train_fn(cfg: ModelConfig, opt, *, ramp=None):
  """A jitted (params [N, ...], opt_state [N, ...], rates [N], batches
  [S, B, T+1], masks0, start) -> (params, opt_state, losses [S, N]): S
  steps of N runs at once. `ramp` (a `grow.Ramp`'s length): MSG masks
  rise from masks0 over that many steps from the first."""
  from growjax import grow  # noqa: PLC0415

  def one(params, state, rate, batch, masks):
    value, grads = jax.value_and_grad(
        lambda p: loss_lib.cross_entropy(p, cfg, batch, masks=masks))(params)
    updates, state = opt.update(grads, state, params)
    updates = jax.tree.map(lambda u: rate * u, updates)
    return optax.apply_updates(params, updates), state, value

  @functools.partial(jax.jit, donate_argnums=(0, 1))
  def run(params, state, rates, batches, masks0):
    def step(carry, xs):
      params, state = carry
      i, batch = xs
      # the trainer's Ramp: masks0 at the first step after growth
      masks = None if ramp is None else grow.ramp(masks0, i / ramp)
      params, state, values = jax.vmap(one, in_axes=(0, 0, 0, None, None))(
          params, state, rates, batch, masks)
      return (params, state), values

    steps = jnp.arange(batches.shape[0])
    (params, state), losses = jax.lax.scan(step, (params, state),
                                           (steps, batches))
    return params, state, losses

  return run


def eval_fn(cfg: ModelConfig):
  """A jitted (params [N, ...], batches [E, B, T+1]) -> mean loss [N]."""
  @jax.jit
  def evaluate(params, batches):
    per_batch = jax.vmap(lambda b: jax.vmap(
        lambda p: loss_lib.cross_entropy(p, cfg, b))(params))(batches)
    return per_batch.mean(0)
  return evaluate


def init_runs(cfg: ModelConfig, opt, seeds):
  """One init per seed (an int: that seed's init, for each of `n` runs
  given as seeds=(seed, n)), stacked, and their optimizer states."""
  if isinstance(seeds, tuple):
    seed, n = seeds
    params = model.init(cfg, jax.random.key(seed))
    params = jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + x.shape),
                          params)
  else:
    params = jax.vmap(lambda k: model.init(cfg, k))(
        jax.vmap(jax.random.key)(jnp.asarray(seeds)))
  return params, jax.vmap(opt.init)(params)


def smooth(losses: np.ndarray, window: int) -> np.ndarray:
  """Running mean over `window` steps along axis 0 (valid part)."""
  kernel = np.ones(window) / window
  return np.apply_along_axis(
      lambda x: np.convolve(x, kernel, mode="valid"), 0, losses)


def write(result: dict, out: str, plot) -> None:
  """OUT (the result as JSON) and OUT with .png (`plot(result, path)`)."""
  import json  # pylint: disable=g-import-not-at-top
  import pathlib  # pylint: disable=g-import-not-at-top
  out = pathlib.Path(out)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(result, indent=1))
  plot(result, out.with_suffix(".png"))
  print(f"wrote {out} and {out.with_suffix('.png')} in {result['seconds']} s")
