"""One fixed validation set, and its losses read with their uncertainty.

    windows = data.validation_windows(corpus, seq_len=256, tokens=1_000_000)
    losses = ...  # the model's mean loss on each window, float [N]
    data.loss_stats(losses)  # {"loss", "se", "windows", "chunk_means"}

`validation_windows` depends on the corpus and `seq_len` only: not on the
seed, the batch size or the process count. So every run of a comparison (and
the evaluation afterwards) scores exactly the same text. The validation split
(its documents in stored order, each followed by EOS) is cut into its
`n = tokens // (seq_len + 1)` whole, disjoint windows; the set takes `N` of them
evenly spaced over the whole split, window `floor(i * n / N)` for
i = 0 .. N-1, so it samples every part of the split rather than its first
files. N is `ceil(tokens / seq_len)`, so the set scores at least the `tokens`
asked for, or all `n` windows when the split holds fewer (a warning says so).

Every window scores seq_len predictions, so the set's loss is the mean of the
per-window losses. `loss_stats` gives that mean with its standard error (the
windows' standard deviation / sqrt(N), treating windows as independent draws:
windows far apart in the split nearly are), and the means of K equal chunks of
consecutive windows, over which a report can bootstrap (a block bootstrap:
the windows of one chunk share files, chunks hardly do).
"""

from __future__ import annotations

import logging
import math

import numpy as np

from growjax import checks
from growjax.data.corpus import Corpus

log = logging.getLogger(__name__)

SPLIT = "validation"
CHUNKS = 20  # chunk means for a bootstrap


_WARNED: set[tuple] = set()  # validation sets already warned of as short


def validation_windows(corpus: Corpus, seq_len: int,
                       tokens: int) -> np.ndarray:
  """The fixed validation set: int32 [N, seq_len + 1] windows.

  Args:
    corpus: from `prepare`.
    seq_len: tokens a model reads per window (windows hold seq_len + 1).
    tokens: predicted tokens wanted (N * seq_len >= tokens), unless the split
      holds fewer.
  """
  seq_len = checks.positive_int("validation_windows: seq_len", seq_len)
  tokens = checks.positive_int("validation_windows: tokens", tokens)
  split = corpus.split(SPLIT)
  window = seq_len + 1
  available = split.num_tokens // window
  if available == 0:
    raise ValueError(
        f"validation_windows: the validation split of {corpus.name} "
        f"({split.num_tokens} tokens) holds no window of {window} tokens")
  wanted = -(-tokens // seq_len)
  count = min(wanted, available)
  seen = (corpus.name, split.num_tokens, seq_len, tokens)
  if count < wanted and seen not in _WARNED:
    _WARNED.add(seen)  # once per process, not once per reader
    log.warning(
        "validation set: the validation split of %s holds %d windows of %d "
        "tokens (%s predicted tokens), fewer than the %s asked; using all",
        corpus.name, available, window, f"{available * seq_len:,}",
        f"{tokens:,}")
  starts = (np.arange(count, dtype=np.int64) * available // count) * window
  return np.asarray(split.tokens[starts[:, None] + np.arange(window)],
                    np.int32)


def loss_stats(losses, chunks: int = CHUNKS) -> dict:
  """Per-window losses [N] -> {"loss": mean, "se": its standard error,
  "windows": N, "chunk_means": [K] means of K equal chunks of consecutive
  windows (sizes differ by at most one; K = min(chunks, N))}."""
  losses = np.asarray(losses, np.float64).reshape(-1)
  if losses.size == 0 or not np.isfinite(losses).all():
    raise ValueError(
        f"loss_stats: losses must be a non-empty array of finite numbers, "
        f"got {losses.size} values")
  chunks = checks.positive_int("loss_stats: chunks", chunks)
  n = losses.size
  se = float(losses.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
  parts = np.array_split(losses, min(chunks, n))
  return {"loss": float(losses.mean()), "se": se, "windows": n,
          "chunk_means": [float(p.mean()) for p in parts]}
