"""Preemption: SIGTERM or SIGINT asks the trainer to save and stop.

Clusters and TPU VMs announce a preemption with SIGTERM and a grace period;
a user stops a run with Ctrl-C (SIGINT). Either one makes `requested(step)`
true at the next step boundary, where the loop saves a checkpoint, waits for
it to be written and stops; the command exits 0 saying how to resume. A
second signal of the same kind is not polite any more: SIGINT raises
KeyboardInterrupt and SIGTERM terminates, at once.

On several hosts the processes must stop at the same step, though the signal
may reach one of them only: there SIGTERM is left to JAX's preemption
service (started by `jax.distributed.initialize`), which agrees on a step
among all hosts (`multihost_utils.reached_preemption_sync_point`); a Python
handler would replace its own.

A study's scheduler (growjax.study.runner) uses the same handlers with
`forward`: each signal is passed on to its workers, which save and stop (or,
at the second, stop at once) as above, and it starts no more runs.
"""

from __future__ import annotations

from collections.abc import Callable
import logging
import signal
import threading

import jax
from jax.experimental import multihost_utils

from growjax import pause

log = logging.getLogger("growjax")


class Preemption:
  """Signal handlers for the length of a run (a context manager)."""

  def __init__(self, forward: Callable[[int], None] | None = None,
               hosts: int | None = None):
    """`forward(signum)`: called first at each signal (a scheduler passes it
    to its workers); `hosts`: 1 where JAX's process count must not be read
    (it starts a backend, which a scheduler of GPU workers must not hold)."""
    self.signal: str | None = None  # the name of the first signal received
    self._previous: dict = {}
    self._forward = forward
    self._hosts = jax.process_count() if hosts is None else hosts

  def __enter__(self):
    if threading.current_thread() is not threading.main_thread():
      return self  # handlers can only be set from the main thread
    wanted = (signal.SIGTERM, signal.SIGINT) if self._hosts == 1 else ()
    for sig in wanted:
      self._previous[sig] = signal.signal(sig, self._handle)
      # Nested handlers (a study's around its in-process runs') share what
      # they heard: a signal the outer heard before this run's handlers were
      # set (its setup) stops this run at its first step boundary, instead
      # of training to its end past the caller's limit ...
      outer = _owner(self._previous[sig])
      if outer and outer.signal and not self.signal:
        self.signal = outer.signal
    return self

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
      outer = _owner(handler)  # ... and one this heard is the outer's: the
      if outer and self.signal and not outer.signal:  # next is the second
        outer.signal = self.signal
    self._previous.clear()

  def _handle(self, signum, frame):
    name = signal.Signals(signum).name
    if self._forward is not None:
      self._forward(signum)
    if self.signal == name:  # the second one: stop now
      previous = self._previous.get(signum, signal.SIG_DFL)
      if previous in (signal.SIG_IGN, None):  # e.g. a background job's SIGINT:
        # ignoring it again would leave the insisting signal unheard
        previous = (signal.default_int_handler if signum == signal.SIGINT
                    else signal.SIG_DFL)
      signal.signal(signum, previous)
      signal.raise_signal(signum)
      return
    self.signal = name
    pause.wake()  # a test hook's pause, if one waits, goes on to the save
    log.warning("%s received: saving at the next step boundary, then "
                "stopping (send it again to stop at once)", name)

  def requested(self, step: int) -> str | None:
    """The signal's name when the run must save and stop at `step`."""
    if self.signal is None and self._hosts > 1:
      try:
        if multihost_utils.reached_preemption_sync_point(step):
          self.signal = "SIGTERM"
      except RuntimeError:  # no preemption service: nothing to agree on
        self._hosts = 1
    return self.signal


def _owner(handler) -> Preemption | None:
  """The Preemption whose handler `handler` is, if any."""
  owner = getattr(handler, "__self__", None)
  return owner if isinstance(owner, Preemption) else None
