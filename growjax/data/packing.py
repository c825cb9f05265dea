"""A split's rows: windows of its token stream, each epoch in a shuffled order.

One epoch of a split is all its documents, each followed by EOS, back to back:
in stored order, or, when shuffled, in a new order each epoch drawn from
`(seed, epoch)`. The epoch's stream is cut into `epoch_rows =
ceil(tokens / window)` windows of `window = seq_len + 1` tokens, with no
padding: a window may span documents, and the epoch's last window is completed
from the epoch's own start.

Row r of the stream (r = 0, 1, ... through all epochs) is window
`order[r % epoch_rows]` of epoch `r // epoch_rows`, where `order` is a
permutation of the epoch's windows drawn from `(seed, epoch)` when shuffled
(the identity otherwise). So the B consecutive rows of a batch come from all
over the epoch, not from one or two neighbouring files (consecutive windows
made the toy's training loss swing by more than a nat between log lines), and
an epoch still holds every window exactly once.

A row is a pure function of its index: the stream's position is one integer,
and any run of rows is gathered with a handful of vectorised numpy operations
(no per-document or per-token Python), whatever the documents' sizes.

A finite stream (`num_epochs`) wraps: rows past its end continue from row 0,
so the last batch can be completed without padding.
"""

from __future__ import annotations

import numpy as np

from growjax.data.tokens import TokenSplit

# Epochs whose orders are kept; a batch touches at most two.
CACHED_EPOCHS = 2


class PackedStream:
  """Rows of `window` tokens from a split's (shuffled) epochs."""

  def __init__(self, split: TokenSplit, *, window: int, shuffle: bool,
               seed: int, num_epochs: int | None):
    self.window = window
    self.shuffle = shuffle
    self.seed = seed
    self.epoch_tokens = split.num_tokens
    self.epoch_rows = -(-split.num_tokens // window)
    # None: endless. Else the stream's length in rows, where it wraps.
    self.total_rows = (None if num_epochs is None
                       else num_epochs * self.epoch_rows)
    self._tokens = np.asarray(split.tokens)  # memory-mapped, not loaded
    self._offsets = split.offsets
    self._lengths = np.diff(split.offsets)
    self._epochs = {}  # epoch -> (order, shift, starts)

  def _epoch(self, epoch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A shuffled epoch: its window `order`; where each document of its
    document order starts in the epoch's stream (`starts`, one past the end
    last); and how far its tokens lie from there in the split (`shift`)."""
    if epoch not in self._epochs:
      rng = np.random.default_rng([self.seed, epoch])
      docs = rng.permutation(len(self._lengths))
      order = rng.permutation(self.epoch_rows)
      starts = np.zeros(len(docs) + 1, np.int64)
      np.cumsum(self._lengths[docs], out=starts[1:])
      if len(self._epochs) >= CACHED_EPOCHS:
        del self._epochs[min(self._epochs)]
      self._epochs[epoch] = (order, self._offsets[docs] - starts[:-1], starts)
    return self._epochs[epoch]

  def locate(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(epoch, window of that epoch) of each row index."""
    rows = np.asarray(rows, np.int64)
    if self.total_rows is not None:
      rows = rows % self.total_rows
    epoch, window = np.divmod(rows, self.epoch_rows)
    if self.shuffle:
      for e in np.unique(epoch):
        here = epoch == e
        window[here] = self._epoch(int(e))[0][window[here]]
    return epoch, window

  def _gather(self, epoch: int, windows: np.ndarray) -> np.ndarray:
    """Windows `windows` of epoch `epoch`'s stream, [len(windows), window]."""
    start = windows * self.window % self.epoch_tokens
    p = start[:, None] + np.arange(self.window)  # positions in the epoch
    if not self.shuffle:
      return self._tokens[p % self.epoch_tokens]
    # Epoch position -> split position: add the shift of its document. Most
    # windows lie in one document and need one lookup; the few that cross a
    # document (or the epoch's end) look up each token.
    _, shift, starts = self._epoch(epoch)
    doc = np.searchsorted(starts, start, side="right") - 1
    whole = p[:, -1] < starts[doc + 1]
    p[whole] += shift[doc[whole], None]
    if not whole.all():
      q = p[~whole] % self.epoch_tokens
      p[~whole] = q + shift[np.searchsorted(starts, q, side="right") - 1]
    return self._tokens[p]

  def rows(self, first: int, count: int) -> np.ndarray:
    """Rows `first .. first + count - 1`, int32 [count, window]."""
    epoch, window = self.locate(np.arange(first, first + count))
    out = np.empty((count, self.window), np.int32)
    for e in np.unique(epoch):
      here = epoch == e
      out[here] = self._gather(int(e), window[here])
    return out

  def ends_before(self, row: int) -> bool:
    """Whether a finite stream has no row left at `row`."""
    return self.total_rows is not None and row >= self.total_rows
