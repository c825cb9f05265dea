"""`batches`: the training and evaluation input, one process's share of it.

Global batch j is windows `j*B .. (j+1)*B - 1` of the packed stream (see
packing.py), B the global batch size; process k of n takes its rows
`k*B/n .. (k+1)*B/n - 1`, consecutive windows. So the processes' shards are
disjoint and together are the whole stream, and each process computes only
its own rows.

The iterator is a `grain.DatasetIterator`, so grain's checkpoint handler
saves it; its state is JSON:

  {"window": first window of the next batch,
   "split", "seq_len", "seed", "shuffle": what the windows are cut from}

It is the same on every process and does not depend on the batch size: a
later stage with another batch size (or process count) resumes the stream
exactly where the last one stopped with `set_state(previous.get_state())`.
A state from another split, seq_len, seed or shuffle is refused.

A finite stream (`num_epochs`) yields ceil(tokens / (B * (seq_len + 1)))
batches, the last completed by wrapping to the stream's start (packing.py),
then StopIteration.
"""

from __future__ import annotations

from typing import Any

import grain
import numpy as np

from growjax.data.corpus import Corpus
from growjax.data.packing import PackedStream


class BatchIterator(grain.DatasetIterator):
  """Yields int32 [batch_size // shard_count, seq_len + 1] token windows."""

  def __init__(self, stream: PackedStream, *, split: str, seq_len: int,
               batch_size: int, shard_index: int, shard_count: int):
    super().__init__()
    self._stream = stream
    self._batch_size = batch_size
    self._rows = batch_size // shard_count
    self._first_row = shard_index * self._rows
    self._identity = dict(split=split, seq_len=seq_len, seed=stream.seed,
                          shuffle=stream.shuffle)
    self._window = 0

  def __next__(self) -> np.ndarray:
    if self._stream.ends_before(self._window):
      raise StopIteration
    batch = self._stream.windows(self._window + self._first_row, self._rows)
    self._window += self._batch_size
    return batch

  def get_state(self) -> dict[str, Any]:
    return dict(window=self._window, **self._identity)

  def set_state(self, state: dict[str, Any]) -> None:
    for key, value in self._identity.items():
      if state.get(key) != value:
        raise ValueError(
            f"iterator state is for {key}={state.get(key)!r}, this iterator "
            f"has {key}={value!r}: {state}")
    window = state.get("window")
    if isinstance(window, bool) or not isinstance(window, int) or window < 0:
      raise ValueError(f"iterator state has no valid 'window': {state}")
    self._window = window


def _check_int(name: str, value, low: int) -> None:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or (
      value < low):
    raise ValueError(f"batches: {name}={value!r} is not an integer >= {low}")


def batches(corpus: Corpus, split: str, *, batch_size: int,
            seq_len: int | None = None, seed: int = 0,
            shard_index: int | None = None, shard_count: int | None = None,
            num_epochs: int | None = None,
            shuffle: bool | None = None) -> BatchIterator:
  """Packed token windows of `split`, this process's rows of each batch.

  Args:
    corpus: from `prepare`.
    split: "train" or "validation".
    batch_size: global batch size, rows over all processes; each process
      gets batch_size // shard_count of them.
    seq_len: tokens a model reads per row (rows hold seq_len + 1, so inputs
      are b[:, :-1] and targets b[:, 1:]); None: the corpus config's.
    seed: the document order of every epoch (when shuffled).
    shard_index, shard_count: this process and how many there are; None:
      jax.process_index() and jax.process_count().
    num_epochs: None for an endless stream, else where it stops.
    shuffle: reshuffle documents every epoch; None: only for "train".
  """
  if shard_index is None or shard_count is None:
    import jax  # pylint: disable=g-import-not-at-top
    shard_index = jax.process_index() if shard_index is None else shard_index
    shard_count = jax.process_count() if shard_count is None else shard_count
  seq_len = corpus.config.seq_len if seq_len is None else seq_len
  for name, value, low in (
      ("batch_size", batch_size, 1), ("seq_len", seq_len, 1), ("seed", seed, 0),
      ("shard_count", shard_count, 1), ("shard_index", shard_index, 0)):
    _check_int(name, value, low)
  if num_epochs is not None:
    _check_int("num_epochs", num_epochs, 1)
  if shard_index >= shard_count:
    raise ValueError(
        f"batches: shard_index={shard_index} is not below "
        f"shard_count={shard_count}")
  if batch_size % shard_count:
    raise ValueError(
        f"batches: batch_size={batch_size} does not divide into "
        f"shard_count={shard_count} equal shards")
  shuffle = split == "train" if shuffle is None else shuffle
  stream = PackedStream(corpus.split(split), window=seq_len + 1,
                        shuffle=shuffle, seed=int(seed), num_epochs=num_epochs)
  return BatchIterator(stream, split=split, seq_len=seq_len,
                       batch_size=batch_size, shard_index=int(shard_index),
                       shard_count=int(shard_count))
