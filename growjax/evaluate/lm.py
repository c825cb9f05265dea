"""Language-model losses on a corpus's validation split: perplexity, and loss
against context length (length extrapolation).

    val = lm.perplexity(params, cfg, corpus, seq_len=256, batch_size=32,
                        batches=8, seed=0)
    curve = lm.length_curve(params, cfg, corpus, train_len=64,
                            multiples=(1, 2, 4, 8), windows=256)

Windows come from `data.batches(corpus, "validation", ...)` (consecutive
pieces of the unshuffled validation stream), so `perplexity` with a run's
batch size, seed and eval batches reads exactly the windows the trainer
validated on. Losses are next-token cross-entropy in nats, averaged over
every predicted token; sums are kept in float64.
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from growjax import data, model
from growjax.config import ModelConfig

class NotEnoughText(ValueError):
  """The validation split holds fewer tokens than the windows asked for."""


# Largest logits tensor one forward pass may hold, in float32 elements
# (rows x length x vocab): longer windows are read in fewer rows per call.
LOGITS_BUDGET = 1 << 24


@functools.partial(jax.jit, static_argnames=("cfg", "block_len"))
def position_loss_sums(params, masks, windows_BT1, weights_B, *,
                       cfg: ModelConfig, block_len: int | None = None):
  """sum_b weights[b] * cross-entropy at each position: float32 [T]."""
  logits_BTV = model.apply(params, cfg, windows_BT1[:, :-1], masks=masks,
                           block_len=block_len)
  loss_BT = optax.softmax_cross_entropy_with_integer_labels(
      logits_BTV, windows_BT1[:, 1:])
  return (loss_BT * weights_B[:, None]).sum(0)


def rows_per_call(cfg: ModelConfig, length: int, most: int) -> int:
  """Rows of `length` tokens a call reads within LOGITS_BUDGET (>= 1)."""
  return max(1, min(most, LOGITS_BUDGET // (length * cfg.vocab_size)))


def position_losses(params, cfg: ModelConfig, windows: np.ndarray, *,
                    masks=None, block_len: int | None = None,
                    rows: int | None = None) -> np.ndarray:
  """Mean loss at each position of int32 windows [W, T+1]: float64 [T].

  Read `rows` windows per call (default: `rows_per_call`); the last call is
  padded with zero-weight rows, so one shape compiles.
  """
  w, t1 = windows.shape
  rows = rows or rows_per_call(cfg, t1 - 1, w)
  total = np.zeros(t1 - 1)
  for start in range(0, w, rows):
    chunk = windows[start:start + rows]
    weights = np.zeros(rows, np.float32)
    weights[:len(chunk)] = 1.0
    if len(chunk) < rows:
      chunk = np.concatenate(
          [chunk, np.zeros((rows - len(chunk), t1), chunk.dtype)])
    total += np.asarray(position_loss_sums(
        params, masks, jnp.asarray(chunk, jnp.int32), jnp.asarray(weights),
        cfg=cfg, block_len=block_len), np.float64)
  return total / w


def _summary(per_position: np.ndarray, windows: int) -> dict:
  loss = float(per_position.mean())
  return {"loss": loss, "perplexity": math.exp(min(loss, 700.0)),
          "windows": windows, "tokens": windows * len(per_position)}


def perplexity(params, cfg: ModelConfig, corpus, *, seq_len: int,
               batch_size: int, batches: int, seed: int = 0, masks=None,
               block_len: int | None = None) -> dict:
  """Validation loss over the first `batches` batches of `batch_size`
  windows of `seq_len` tokens.

  Returns {"loss", "perplexity", "windows", "tokens", "seq_len"}.
  """
  it = data.batches(corpus, "validation", seq_len=seq_len,
                    batch_size=batch_size, seed=seed, num_epochs=1,
                    shard_index=0, shard_count=1)
  got = [b for _, b in zip(range(batches), it)]
  if not got:
    raise NotEnoughText(f"the validation split ({corpus.num_tokens('validation')}"
                     f" tokens) holds no window of {seq_len + 1} tokens")
  windows = np.concatenate(got)
  per_position = position_losses(params, cfg, windows, masks=masks,
                                 block_len=block_len,
                                 rows=rows_per_call(cfg, seq_len, batch_size))
  return {**_summary(per_position, len(windows)), "seq_len": seq_len}


def validation_windows(corpus, length: int, count: int,
                       seed: int = 0) -> np.ndarray:
  """The first `count` windows of `length` + 1 tokens of the validation
  stream, int32 [count, length + 1]."""
  it = data.batches(corpus, "validation", seq_len=length, batch_size=count,
                    seed=seed, num_epochs=1, shard_index=0, shard_count=1)
  return next(it)


def length_curve(params, cfg: ModelConfig, corpus, *, train_len: int,
                 multiples: Sequence[int] = (1, 2, 4, 8), windows: int = 256,
                 seed: int = 0, masks=None,
                 block_len: int | None = None) -> dict:
  """Validation loss at context lengths `m * train_len` for m in `multiples`.

  Every length reads the same text: the first `windows` windows of the
  longest length (fewer when the validation split holds fewer), cut into
  windows of each shorter length, so a difference between lengths is the
  model's, not the text's. At each length the loss is also given per
  position bucket [i*train_len, (i+1)*train_len): does the model still
  predict well far from the start of its window?

  block_len: attention blocks for every length (xPos: the training length;
  None: plain causal attention).

  Returns {"train_len", "block_len", "tokens": the stretch of text read,
           "lengths": {"1x": {"context", "loss", "perplexity", "windows",
                              "tokens", "buckets": [loss per bucket]}, ...}}
  """
  multiples = sorted(set(int(m) for m in multiples))
  if not multiples or multiples[0] < 1:
    raise ValueError(f"multiples: {multiples!r} are not positive integers")
  available = corpus.num_tokens("validation")
  longest = multiples[-1] * train_len
  fit = available // (longest + 1)
  if fit < 1:
    raise NotEnoughText(
        f"the validation split ({available} tokens) holds no window of "
        f"{longest + 1} tokens ({multiples[-1]}x the training length "
        f"{train_len}); lower the multiples")
  stretch = min(windows, fit) * (longest + 1)
  lengths = {}
  for m in multiples:
    context = m * train_len
    count = stretch // (context + 1)
    per_position = position_losses(
        params, cfg, validation_windows(corpus, context, count, seed),
        masks=masks, block_len=block_len)
    buckets = per_position.reshape(m, train_len).mean(-1)
    lengths[f"{m}x"] = {"context": context, **_summary(per_position, count),
                        "buckets": [float(b) for b in buckets]}
  return {"train_len": train_len, "block_len": block_len, "tokens": stretch,
          "lengths": lengths}


def format_length_table(curve: dict) -> str:
  """One row per context length: its loss, and the loss of each bucket."""
  lengths = curve["lengths"]
  most = max(len(e["buckets"]) for e in lengths.values())
  l = curve["train_len"]
  header = ["length", "context", "windows", "loss", "ppl"] + [
      f"[{i * l},{(i + 1) * l})" for i in range(most)]
  rows = [header]
  for name, e in lengths.items():
    rows.append([name, str(e["context"]), str(e["windows"]),
                 f"{e['loss']:.4f}",
                 f"{e['perplexity']:.2f}"]
                + [f"{b:.3f}" for b in e["buckets"]]
                + [""] * (most - len(e["buckets"])))
  widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
  return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)).rstrip()
                   for r in rows)
