"""A split's token stream, shuffled per epoch and cut into windows.

One epoch of a split is all its documents, each followed by EOS, back to back:
in stored order, or, when shuffled, in a new order each epoch drawn from
`(seed, epoch)`. Epochs follow one another in one stream, endless or
`num_epochs` long, and the stream is cut into consecutive windows of
`seq_len + 1` tokens, with no padding (a window may span documents and
epochs): window w is `stream[w * (seq_len + 1) : (w + 1) * (seq_len + 1)]`.

A window is a pure function of its index, and a run of windows is one
contiguous piece of the stream, gathered with a handful of vectorised numpy
operations whatever the documents' sizes. That is what makes the pipeline
fast (no per-document Python) and its state one integer.

A finite stream wraps: windows past its end continue from its start, so the
last batch can be completed without padding and no token is ever dropped.
"""

from __future__ import annotations

import numpy as np

from growjax.data.tokens import TokenSplit


class PackedStream:
  """Windows of `window` tokens from a split's (shuffled) epochs."""

  def __init__(self, split: TokenSplit, *, window: int, shuffle: bool,
               seed: int, num_epochs: int | None):
    self.window = window
    self.shuffle = shuffle
    self.seed = seed
    self.epoch_tokens = split.num_tokens
    # None: endless. Else the stream's length, where it wraps.
    self.total = None if num_epochs is None else num_epochs * split.num_tokens
    self._tokens = np.asarray(split.tokens)  # memory-mapped, not loaded
    self._offsets = split.offsets
    self._lengths = np.diff(split.offsets)
    self._epochs = {}  # epoch -> (shift, starts); the last two are kept

  def _epoch(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """Where each document of `epoch`'s order starts in the epoch's stream
    (`starts`, one past the end last), and how far its tokens lie from there
    in the unshuffled split (`shift`)."""
    if epoch not in self._epochs:
      order = np.random.default_rng([self.seed, epoch]).permutation(
          len(self._lengths))
      starts = np.zeros(len(order) + 1, np.int64)
      np.cumsum(self._lengths[order], out=starts[1:])
      if len(self._epochs) >= 2:
        del self._epochs[min(self._epochs)]
      self._epochs[epoch] = (self._offsets[order] - starts[:-1], starts)
    return self._epochs[epoch]

  def _epoch_slice(self, epoch: int, start: int, stop: int) -> np.ndarray:
    """Tokens `start:stop` of epoch `epoch`'s stream."""
    if not self.shuffle:
      return self._tokens[start:stop]
    shift, starts = self._epoch(epoch)
    first = np.searchsorted(starts, start, side="right") - 1
    last = np.searchsorted(starts, stop - 1, side="right") - 1
    counts = np.diff(np.clip(starts[first:last + 2], start, stop))
    source = np.arange(start, stop) + np.repeat(shift[first:last + 1], counts)
    return self._tokens[source]

  def windows(self, first: int, count: int) -> np.ndarray:
    """Windows `first .. first + count - 1`, int32 [count, window]."""
    size = count * self.window
    out = np.empty(size, np.int32)
    position = first * self.window
    done = 0
    while done < size:
      p = position + done
      if self.total is not None:
        p %= self.total
      epoch, start = divmod(p, self.epoch_tokens)
      take = min(size - done, self.epoch_tokens - start)
      out[done:done + take] = self._epoch_slice(epoch, start, start + take)
      done += take
    return out.reshape(count, self.window)

  def ends_before(self, window: int) -> bool:
    """Whether a finite stream has no token left at `window`."""
    return self.total is not None and window * self.window >= self.total
