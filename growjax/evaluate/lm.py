"""Language-model losses on a corpus's validation split: perplexity on the
fixed validation set, and loss against context length (length extrapolation).

    val = lm.perplexity(params, cfg, corpus, seq_len=256, tokens=131_072)
    curve = lm.length_curve(params, cfg, corpus, train_len=64,
                            multiples=(1, 2, 4, 8), tokens=131_072,
                            block_len=32)

`perplexity` reads `data.validation_windows(corpus, seq_len, tokens)`: the one
fixed validation set the trainer scores (it depends on the corpus, seq_len
and tokens only), so its loss is the trainer's. Losses are next-token
cross-entropy in nats; every window scores the same number of tokens, so a
set's loss is the mean of its windows' losses, and `data.loss_stats` gives
its standard error over windows.

`length_curve` reads windows of the longest length and cuts each into pieces
of every shorter length, so every length scores exactly the same predicted
tokens and differs only in how much context each prediction sees. Its
windows are `data.validation_windows` at the longest length: spread over the
whole split, as the validation set is.
"""

from __future__ import annotations

import functools
import hashlib
import math
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from growjax import data, model
from growjax.config import ModelConfig


class NotEnoughText(ValueError):
  """The validation split holds no window as long as the one asked for."""


# Largest logits tensor one forward pass may hold, in float32 elements
# (rows x length x vocab): longer windows are read in fewer rows per call.
LOGITS_BUDGET = 1 << 24
# Points per training length of the per-position curve `length_curve` keeps.
CURVE_POINTS = 8


@functools.partial(jax.jit, static_argnames=("cfg", "block_len"))
def token_losses(params, masks, windows_BT1, *, cfg: ModelConfig,
                 block_len: int | None = None):
  """Cross-entropy of every next-token prediction: float32 [B, T]."""
  logits_BTV = model.apply(params, cfg, windows_BT1[:, :-1], masks=masks,
                           block_len=block_len)
  return optax.softmax_cross_entropy_with_integer_labels(
      logits_BTV.astype(jnp.float32), windows_BT1[:, 1:])


def rows_per_call(cfg: ModelConfig, length: int, most: int) -> int:
  """Rows of `length` tokens a call reads within LOGITS_BUDGET (>= 1)."""
  return max(1, min(most, LOGITS_BUDGET // (length * cfg.vocab_size)))


def window_token_losses(params, cfg: ModelConfig, windows: np.ndarray, *,
                        masks=None, block_len: int | None = None,
                        rows: int | None = None,
                        on_tokens: Callable[[int], None] | None = None
                        ) -> np.ndarray:
  """The loss of every prediction of int32 windows [W, T+1]: float64 [W, T].

  Reads `rows` windows per call (default: `rows_per_call`); the last call is
  padded with copies of the first window, so one shape compiles. After each
  call, `on_tokens(predicted tokens read)` (a progress bar's update).
  """
  w, t1 = windows.shape
  rows = rows or rows_per_call(cfg, t1 - 1, w)
  out = np.empty((w, t1 - 1))
  for start in range(0, w, rows):
    chunk = windows[start:start + rows]
    n = len(chunk)
    if n < rows:
      chunk = np.concatenate([chunk, np.repeat(windows[:1], rows - n, 0)])
    out[start:start + n] = np.asarray(token_losses(
        params, masks, jnp.asarray(chunk, jnp.int32), cfg=cfg,
        block_len=block_len), np.float64)[:n]
    if on_tokens is not None:
      on_tokens(n * (t1 - 1))
  return out


def _stats(window_losses: np.ndarray) -> dict:
  """Mean loss, its standard error over windows and the perplexity."""
  s = data.loss_stats(window_losses)
  se = s["se"] if math.isfinite(s["se"]) else None  # one window: no s.e.
  return {"loss": s["loss"], "se": se,
          "perplexity": math.exp(min(s["loss"], 700.0)),
          "windows": s["windows"]}


def text_hash(windows: np.ndarray) -> str:
  """A short hash of the token windows read: equal hashes, same text."""
  return hashlib.sha1(np.ascontiguousarray(windows, np.int32).tobytes()
                      ).hexdigest()[:16]


def require_text(corpus, window: int, what: str) -> None:
  """NotEnoughText unless the validation split holds a `window`."""
  available = corpus.num_tokens("validation")
  if available < window:
    raise NotEnoughText(f"the validation split ({available:,} tokens) holds "
                        f"no window of {window:,} tokens ({what})")


def scored_tokens(corpus, seq_len: int, tokens: int) -> int:
  """Predicted tokens the fixed validation set of `seq_len` windows scores
  (`tokens`, rounded up to whole windows, or all the split holds)."""
  return data.validation_windows(corpus, seq_len, tokens).shape[0] * seq_len


def perplexity(params, cfg: ModelConfig, corpus, *, seq_len: int,
               tokens: int, masks=None,
               on_tokens: Callable[[int], None] | None = None) -> dict:
  """Loss on the fixed validation set `data.validation_windows(corpus,
  seq_len, tokens)`, with plain causal attention; `on_tokens` as in
  `window_token_losses`.

  Returns {"loss", "se" (standard error over windows), "perplexity",
           "windows", "tokens" (predicted tokens scored), "seq_len",
           "chunk_means" (`data.loss_stats`'s), "text": `text_hash` of the
           windows, "window_losses": [windows]}.
  """
  require_text(corpus, seq_len + 1, f"seq_len {seq_len} + 1")
  windows = data.validation_windows(corpus, seq_len, tokens)
  per_window = window_token_losses(params, cfg, windows, masks=masks,
                                   on_tokens=on_tokens).mean(1)
  stats = data.loss_stats(per_window)
  return {**_stats(per_window), "tokens": windows.shape[0] * seq_len,
          "seq_len": seq_len, "chunk_means": stats["chunk_means"],
          "text": text_hash(windows), "window_losses": per_window.tolist()}


def check_multiples(multiples: Sequence[int]) -> tuple[int, ...]:
  """Sorted distinct multiples, each a positive integer dividing the
  largest (so the longest windows cut into whole pieces of every length)."""
  values = sorted({int(m) for m in multiples})
  if not values or values[0] < 1:
    raise ValueError(f"multiples: {list(multiples)!r} are not positive "
                     "integers")
  longest = values[-1]
  odd = [m for m in values if longest % m]
  if odd:
    raise ValueError(
        f"multiples: {', '.join(map(str, odd))} do not divide the largest, "
        f"{longest} (each length reads whole pieces of the longest windows, "
        "so that every length scores the same tokens)")
  return tuple(values)


def check_block(block_len: int | None, contexts: Sequence[int]) -> None:
  """A block length must be a positive divisor of every read length (so
  every block is whole); None is plain causal attention."""
  if block_len is None:
    return
  if isinstance(block_len, bool) or not isinstance(block_len, int) or (
      block_len < 1):
    raise ValueError(f"block {block_len!r}: not a positive integer")
  for context in contexts:
    if context % block_len:
      raise ValueError(f"block {block_len}: not a positive divisor of the "
                       f"read length {context}")


def pieces(windows: np.ndarray, length: int) -> np.ndarray:
  """Windows [N, M+1] cut into [N * M // length, length + 1]: consecutive
  pieces of `length` predictions each (a piece's last token is the next
  one's first), so the pieces predict exactly the windows' tokens."""
  n, m1 = windows.shape
  count = (m1 - 1) // length
  starts = np.arange(count) * length
  cut = windows[:, starts[:, None] + np.arange(length + 1)]
  return cut.reshape(n * count, length + 1)


def length_curve(params, cfg: ModelConfig, corpus, *, train_len: int,
                 multiples: Sequence[int] = (1, 2, 4, 8), tokens: int,
                 masks=None, block_len: int | None = None,
                 on_tokens: Callable[[int], None] | None = None) -> dict:
  """Validation loss at context lengths `m * train_len` for m in `multiples`.

  Windows: `data.validation_windows(corpus, longest, tokens)`, N windows of
  the longest length; each length reads them cut into pieces of its own
  length (`pieces`), so every length scores the same N x longest predicted
  tokens and a difference between lengths is context alone. A length's
  `window_losses` are per long window (the mean over its pieces), so two
  lengths or two models compare pairwise, window by window.

  block_len: blockwise causal attention (each block sees itself and the
  previous one: no query-key distance reaches 2 x block_len); None: plain
  causal attention. It must divide every read length (`check_block`).
  on_tokens: as in `window_token_losses` (each length reads N x longest).

  Returns {"train_len", "block_len", "windows": N, "tokens": N x longest,
           "lengths": {"1x": {"context", "pieces", "loss", "se",
                              "perplexity", "text" (`text_hash`),
                              "window_losses": [N],
                              "buckets": [loss per training length of
                                          position],
                              "curve": [loss per curve_bin positions]}, ...},
           "curve_bin": positions per curve point}
  """
  multiples = check_multiples(multiples)
  contexts = [m * train_len for m in multiples]
  check_block(block_len, contexts)
  longest = contexts[-1]
  require_text(corpus, longest + 1,
           f"{multiples[-1]}x the training length {train_len}, plus one; "
           "lower the multiples")
  windows = data.validation_windows(corpus, longest, tokens)
  n, text = windows.shape[0], text_hash(windows)
  curve_bin = max(1, train_len // CURVE_POINTS)
  lengths = {}
  for m, context in zip(multiples, contexts):
    loss_PT = window_token_losses(params, cfg, pieces(windows, context),
                                  masks=masks, block_len=block_len,
                                  on_tokens=on_tokens)
    per_window = loss_PT.reshape(n, -1).mean(1)
    per_position = loss_PT.mean(0)
    usable = context // curve_bin * curve_bin
    lengths[f"{m}x"] = {
        "context": context, "pieces": loss_PT.shape[0],
        **_stats(per_window), "text": text,
        "window_losses": per_window.tolist(),
        "buckets": per_position.reshape(m, train_len).mean(1).tolist(),
        "curve": per_position[:usable].reshape(-1, curve_bin).mean(1).tolist(),
    }
  return {"train_len": train_len, "block_len": block_len, "windows": n,
          "tokens": n * longest, "curve_bin": curve_bin, "lengths": lengths}


def pm(loss: float, se: float | None) -> str:
  """'loss ± se' (just the loss when there is no s.e.)."""
  return f"{loss:.4f}" + ("" if se is None else f" ± {se:.4f}")


def format_length_table(curve: dict) -> str:
  """One row per context length: its loss ± s.e., and each bucket's loss."""
  lengths = curve["lengths"]
  most = max(len(e["buckets"]) for e in lengths.values())
  l = curve["train_len"]
  header = ["length", "context", "pieces", "loss ± s.e.", "ppl"] + [
      f"[{i * l},{(i + 1) * l})" for i in range(most)]
  rows = [header]
  for name, e in lengths.items():
    rows.append([name, str(e["context"]), str(e["pieces"]),
                 pm(e['loss'], e['se']), f"{e['perplexity']:.2f}"]
                + [f"{b:.3f}" for b in e["buckets"]]
                + [""] * (most - len(e["buckets"])))
  widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
  return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)).rstrip()
                   for r in rows)
