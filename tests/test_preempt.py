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


def test_a_signal_heard_by_the_scheduler_before_a_run_began_is_the_runs_too():
  # A study running its runs in-process holds handlers of its own; a signal
  # that reached them during a run's setup stops that run at its first step.
  before = signal.getsignal(signal.SIGTERM)
  with preempt.Preemption(hosts=1) as study:
    os.kill(os.getpid(), signal.SIGTERM)
    with preempt.Preemption(hosts=1) as run:
      assert run.requested(0) == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) == study._handle  # pylint: disable=protected-access
  with preempt.Preemption(hosts=1) as study:  # none heard: none inherited
    with preempt.Preemption(hosts=1) as run:
      assert run.requested(0) is None
      os.kill(os.getpid(), signal.SIGTERM)  # heard by the run ...
    assert study.signal == "SIGTERM"  # ... is the study's once the run ends
  assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize("before", [signal.default_int_handler, signal.SIG_IGN],
                         ids=["default", "ignored"])
def test_a_second_sigint_interrupts_at_once(before):
  # even when SIGINT was ignored before (a background job; a test worker)
  previous = signal.signal(signal.SIGINT, before)
  try:
    _second_sigint_interrupts()
  finally:
    signal.signal(signal.SIGINT, previous)


def _second_sigint_interrupts():
  with preempt.Preemption() as p:
    os.kill(os.getpid(), signal.SIGINT)
    assert p.requested(1) == "SIGINT"
    with pytest.raises(KeyboardInterrupt):
      os.kill(os.getpid(), signal.SIGINT)
      signal.pause()  # the interrupt arrives here at the latest
