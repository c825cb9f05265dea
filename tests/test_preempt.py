"""Preemption signals: the first asks for a save, a second one insists."""

import os
import signal

import pytest

from growjax.train import preempt


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT],
                         ids=["SIGTERM", "SIGINT"])
def test_a_signal_is_recorded_for_the_next_step_boundary(sig):
  before = signal.getsignal(sig)
  with preempt.Preemption() as p:
    assert p.requested(5) is None
    os.kill(os.getpid(), sig)
    assert p.requested(6) == sig.name
  assert signal.getsignal(sig) is before  # given back


def test_a_second_sigint_interrupts_at_once():
  with preempt.Preemption() as p:
    os.kill(os.getpid(), signal.SIGINT)
    assert p.requested(1) == "SIGINT"
    with pytest.raises(KeyboardInterrupt):
      os.kill(os.getpid(), signal.SIGINT)
      signal.pause()  # the interrupt arrives here at the latest
