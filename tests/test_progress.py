"""growjax.progress: off a terminal, a bar is plain whole lines that log lines
never share; the rate and ETA leave the compiling step out."""

import io
import logging

import pytest
import tqdm

from growjax import progress


class _Clock:
  def __init__(self):
    self.now = 1000.0

  def __call__(self):
    return self.now


@pytest.fixture
def clock(monkeypatch):
  c = _Clock()
  monkeypatch.setattr(tqdm.std, "time", c)
  return c


def test_off_a_terminal_bar_and_log_lines_are_whole_lines(clock):
  out = io.StringIO()
  log = logging.getLogger("growjax.test_progress")
  handler = progress.LogHandler(out)
  log.addHandler(handler)
  try:
    with progress.bar(total=4, desc="stage 1", unit="step", file=out,
                      every=0) as bar:
      for i in range(4):
        clock.now += 1
        bar.update()
        log.warning("masks folded at step %d", i + 1)
  finally:
    log.removeHandler(handler)
  text = out.getvalue()
  assert "\r" not in text
  lines = text.splitlines()
  assert all(line for line in lines)  # no blank lines from tqdm's clears
  bar_lines = [l for l in lines if l.startswith("stage 1: ")]
  log_lines = [l for l in lines if l.startswith("masks folded")]
  assert len(bar_lines) + len(log_lines) == len(lines)
  assert log_lines == [f"masks folded at step {i}" for i in range(1, 5)]
  assert bar_lines[0].startswith("stage 1: 0/4 step (0%)")
  assert bar_lines[-1].startswith("stage 1: 4/4 step (100%)")
  assert len(bar_lines) == 5  # the start and each update; not the close again


def test_off_a_terminal_lines_come_at_most_every_few_seconds(clock):
  out = io.StringIO()
  with progress.bar(total=100, desc="ppl", unit="window", file=out,
                    every=10) as bar:
    for _ in range(100):
      clock.now += 1
      bar.update()
  counts = [l.split()[1] for l in out.getvalue().splitlines()]
  assert counts == ["0/100"] + [f"{n}/100" for n in range(10, 101, 10)]


def test_eta_starts_after_the_compiling_step(clock):
  out = io.StringIO()
  bar = progress.bar(total=11, desc="stage 0", unit="step", warmup=1,
                     file=out, every=0)
  clock.now += 600  # the first step compiles for ten minutes
  bar.update()
  for _ in range(5):
    clock.now += 2
    bar.update()
  state = bar.format_dict
  bar.close()
  assert state["initial"] == 1
  assert state["elapsed"] == pytest.approx(10)
  assert state["rate"] == pytest.approx(0.5)  # 2 s a step, not 120
  assert "00:10<00:10" in out.getvalue().splitlines()[-1]


def test_a_disabled_bar_writes_nothing(clock):
  out = io.StringIO()
  with progress.bar(total=3, file=out, disable=True) as bar:
    bar.update(3)
  assert out.getvalue() == ""
