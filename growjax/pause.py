"""A test hook: stop the trainer at a named moment, so a test can kill it there.

    GROWJAX_TEST_PAUSE_AT=growth@6 python -m growjax.main ...

With the variable set to POINT@STEP, the process prints
`GROWJAX_PAUSED POINT@STEP` on stderr when it reaches that point at that
global step, and waits there: SIGKILL ends it at exactly that moment, and
SIGTERM or SIGINT (handled by `growjax.train.preempt`) let it go on to its
preemption save. Without the variable every call is one dictionary lookup.

Points (tests/test_chaos.py kills at each):
  step          a train step dispatched; its results not yet read or logged
  metrics_line  half of the step's metrics line written to metrics.jsonl
  checkpoint    a checkpoint's files written, not yet renamed into place (in
                orbax's background thread)
  growth        the state grown into the stage, not yet logged or saved
  stage_end     a stage's last checkpoint written, the next stage not begun
"""

from __future__ import annotations

import os
import sys
import threading
import time

ENV = "GROWJAX_TEST_PAUSE_AT"


# Set by growjax.train.preempt's handler. A signal that lands between the
# GROWJAX_PAUSED line and the wait would leave signal.pause() waiting for a
# second one (a race seen under load); the event keeps it.
_woken = threading.Event()


def wake() -> None:
  _woken.set()


def wanted(point: str, step: int) -> bool:
  return os.environ.get(ENV) == f"{point}@{step}"


def at(point: str, step: int) -> None:
  """Waits here when GROWJAX_TEST_PAUSE_AT names this point and step."""
  if not wanted(point, step):
    return
  print(f"GROWJAX_PAUSED {point}@{step}", file=sys.stderr, flush=True)
  if threading.current_thread() is threading.main_thread():
    while not _woken.wait(0.05):  # until a handled signal (SIGTERM, SIGINT)
      pass
    _woken.clear()
  else:
    while True:  # signals reach the main thread only: wait for SIGKILL
      time.sleep(3600)
