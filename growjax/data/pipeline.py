"""`batches`: the training input, one process's share of each global batch.

Global batch j is rows `j*B .. (j+1)*B - 1` of the split's row stream (see
packing.py: each row a window from anywhere in its epoch), B the global batch
size; process k of n takes its rows `k*B/n .. (k+1)*B/n - 1` of that batch. So
the processes' shards are disjoint and together are the whole batch, and each
process gathers only its own rows.

The iterator's state is one position and what the rows are cut from, as JSON:

  {"row": rows of the stream consumed so far (by all processes),
   "split", "seq_len", "seed", "shuffle"}

The training loop stores `get_state()` in its checkpoint's JSON metadata and
resumes with `set_state(...)`. The state is the same on every process and
does not depend on the batch size: a later stage with another batch size (or
process count) continues the same row stream exactly where the last one
stopped. A state from another split, seq_len, seed or shuffle is refused, and
so is one without "row" (growjax before the shuffled row order counted
consecutive windows, a different stream).

A finite stream (`num_epochs`) yields ceil(rows / B) batches, the last
completed by wrapping to the stream's first rows (packing.py), then
StopIteration. For validation, `validation.validation_windows` gives one fixed
set instead.
"""

from __future__ import annotations

from typing import Any

import grain
import jax
import numpy as np

from growjax import checks
from growjax.data.corpus import Corpus
from growjax.data.packing import PackedStream


class BatchIterator(grain.DatasetIterator):
  """Yields int32 [batch_size // shard_count, seq_len + 1] token windows."""

  def __init__(self, stream: PackedStream, *, split: str, seq_len: int,
               batch_size: int, shard_index: int, shard_count: int):
    super().__init__()
    self.stream = stream
    self._batch_size = batch_size
    self._rows = batch_size // shard_count
    self._first_row = shard_index * self._rows
    self._identity = dict(split=split, seq_len=seq_len, seed=stream.seed,
                          shuffle=stream.shuffle)
    self._row = 0

  def __next__(self) -> np.ndarray:
    if self.stream.ends_before(self._row):
      raise StopIteration
    batch = self.stream.rows(self._row + self._first_row, self._rows)
    self._row += self._batch_size
    return batch

  def get_state(self) -> dict[str, Any]:
    return dict(row=self._row, **self._identity)

  def set_state(self, state: dict[str, Any]) -> None:
    for key, value in self._identity.items():
      if state.get(key) != value:
        raise ValueError(
            f"iterator state is for {key}={state.get(key)!r}, this iterator "
            f"has {key}={value!r}: {state}")
    row = state.get("row")
    if not checks.is_int(row) or row < 0:
      raise ValueError(
          f"iterator state has no valid 'row' (a state from before the "
          f"shuffled row order cannot resume this stream): {state}")
    self._row = int(row)


def batches(corpus: Corpus, split: str, *, batch_size: int,
            seq_len: int | None = None, seed: int = 0,
            shard_index: int | None = None, shard_count: int | None = None,
            num_epochs: int | None = None,
            shuffle: bool | None = None) -> BatchIterator:
  """Token windows of `split`, this process's rows of each global batch.

  Args:
    corpus: from `prepare`.
    split: "train" or "validation".
    batch_size: global batch size, rows over all processes; each process
      gets batch_size // shard_count of them.
    seq_len: tokens a model reads per row (rows hold seq_len + 1, so inputs
      are b[:, :-1] and targets b[:, 1:]); None: the corpus config's.
    seed: the document and window order of every epoch (when shuffled).
    shard_index, shard_count: this process and how many there are; None:
      jax.process_index() and jax.process_count().
    num_epochs: None for an endless stream, else where it stops.
    shuffle: shuffle documents and windows every epoch; None: only for
      "train" (unshuffled, rows are the split's consecutive windows).
  """
  if shard_index is None or shard_count is None:
    shard_index = jax.process_index() if shard_index is None else shard_index
    shard_count = jax.process_count() if shard_count is None else shard_count
  seq_len = corpus.config.seq_len if seq_len is None else seq_len
  batch_size = checks.positive_int("batches: batch_size", batch_size)
  seq_len = checks.positive_int("batches: seq_len", seq_len)
  seed = checks.integer("batches: seed", seed, low=0)
  shard_count = checks.positive_int("batches: shard_count", shard_count)
  shard_index = checks.integer("batches: shard_index", shard_index, low=0,
                               high=shard_count - 1)
  if num_epochs is not None:
    num_epochs = checks.positive_int("batches: num_epochs", num_epochs)
  if shuffle is not None:
    shuffle = checks.boolean("batches: shuffle", shuffle)
  if batch_size % shard_count:
    raise ValueError(
        f"batches: batch_size={batch_size} does not divide into "
        f"shard_count={shard_count} equal shards")
  shuffle = split == "train" if shuffle is None else shuffle
  stream = PackedStream(corpus.split(split), window=seq_len + 1,
                        shuffle=shuffle, seed=seed, num_epochs=num_epochs)
  return BatchIterator(stream, split=split, seq_len=seq_len,
                       batch_size=batch_size, shard_index=shard_index,
                       shard_count=shard_count)
