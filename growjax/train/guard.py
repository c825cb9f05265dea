"""The numerical guard: what the trainer does about non-finite and spiking losses.

The jitted step (growjax.train.step) already refuses a non-finite loss or
gradient norm: it leaves the parameters and the optimizer state as they were
and reports `skipped`. The host reads each step's loss and flag at the next
log line or checkpoint and books them here:

  - a skipped step is logged and counted (`skipped`: the metrics'
    skipped_steps); `train.max_skipped_in_a_row` of them in a row raise
    `Diverged`: the run stops with one line, its last checkpoint intact
    (every checkpoint holds finite parameters, as skipped steps change none);
  - with `train.spike_factor`, a finite loss above spike_factor x the
    exponential mean of the losses before it (decay EMA_DECAY, once WARMUP
    losses are in) asks for a rollback: the loop restores the last
    checkpoint and goes on with the batches after the spike, skipping those
    in between, as large runs do.

The guard's state is saved in each checkpoint's meta, so a resumed run judges
every step exactly as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import logging

from growjax.experiment import ExperimentError

log = logging.getLogger("growjax")

EMA_DECAY = 0.9  # of the reference loss a spike is measured against
WARMUP = 10  # finite losses before a spike can be called


class Diverged(ExperimentError):
  """Too many skipped updates in a row, or spikes again and again: the
  experiment's settings (its learning rate, its data) need a change. An
  ExperimentError, so every command reports it in one line."""


@dataclasses.dataclass
class Guard:
  max_in_a_row: int  # train.max_skipped_in_a_row
  spike_factor: float | None  # train.spike_factor; None: no rollbacks
  skipped: int = 0  # updates skipped in the whole run
  in_a_row: int = 0  # updates skipped since the last applied one
  ema: float | None = None  # exponential mean of finite losses
  seen: int = 0  # finite losses in `ema`

  def state(self) -> dict:
    """What a checkpoint's meta keeps (`restore` reads it back)."""
    return {"skipped": self.skipped, "in_a_row": self.in_a_row,
            "ema": self.ema, "seen": self.seen}

  def restore(self, state: dict | None):
    for key, value in (state or {}).items():
      setattr(self, key, value)

  def observe(self, step: int, loss: float, grad_norm: float,
              skipped: bool) -> str | None:
    """Books global step `step`; returns a message when it is a loss spike
    to roll back from, None otherwise. Raises Diverged."""
    if skipped:
      self.skipped += 1
      self.in_a_row += 1
      log.warning("step %d: loss %s, gradient norm %s: not finite; update "
                  "skipped (%d in a row, %d in all)", step, loss, grad_norm,
                  self.in_a_row, self.skipped)
      if self.in_a_row >= self.max_in_a_row:
        raise Diverged(
            f"step {step}: {self.in_a_row} updates in a row skipped for a "
            f"non-finite loss or gradient norm (train.max_skipped_in_a_row="
            f"{self.max_in_a_row}); stopped without saving, the last "
            "checkpoint is intact: lower the learning rate or check the data, "
            "then run again")
      return None
    self.in_a_row = 0
    if (self.spike_factor is not None and self.seen >= WARMUP
        and loss > self.spike_factor * self.ema):
      return (f"step {step}: loss {loss:.4f} > {self.spike_factor} x its "
              f"recent mean {self.ema:.4f}")
    self.ema = loss if self.ema is None else (
        EMA_DECAY * self.ema + (1 - EMA_DECAY) * loss)
    self.seen += 1
    return None
