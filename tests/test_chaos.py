"""Chaos: the toy run, killed at its worst moments, ends as an uninterrupted one.

`python -m growjax.main --config experiments/toy.py:runlocal` (12 steps in
three stages, a checkpoint every 2 steps) runs as a subprocess. The
GROWJAX_TEST_PAUSE_AT hook (growjax/pause.py) stops it at a named moment;
there it is SIGKILLed, then started again with the same command. After five
kills (mid-step, mid-checkpoint-write, a half-written metrics line,
mid-growth, between stages) and one SIGTERM (which must save and exit 0),
its metrics and final parameters must equal those of an uninterrupted run,
bit for bit on CPU, with every step logged exactly once.
"""

import json
import os
import pathlib
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading

import jax
import numpy as np
import pytest

from growjax import checkpoint, lock, trained
from growjax.train import metrics as metrics_lib

REPO = pathlib.Path(__file__).resolve().parents[1]
TOY = ["-m", "growjax.main", "--config", "experiments/toy.py:runlocal",
       "--config.train.progress=False"]
# What a run computes; the rest of a metrics line is timing.
COMPUTED = ("step", "stage", "event", "loss", "lr", "grad_norm", "tokens",
            "train_flops", "skipped_steps", "val_loss", "val_loss_se",
            "val_chunks", "method", "loss_before", "loss_after")

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def session_data_cache(data_dir, monkeypatch):
  monkeypatch.setenv("GROWJAX_DATA_DIR", str(data_dir))


def env(pause_at=None):
  out = dict(os.environ, XLA_FLAGS="", JAX_PLATFORMS="cpu",
             JAX_COMPILATION_CACHE_DIR=jax.config.jax_compilation_cache_dir,
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
  out.pop("GROWJAX_TEST_PAUSE_AT", None)
  if pause_at:
    out["GROWJAX_TEST_PAUSE_AT"] = pause_at
  return out


class Toy:
  """The toy run as a subprocess whose stderr is read line by line."""

  def __init__(self, workdir, pause_at=None):
    self.proc = subprocess.Popen(
        [sys.executable, *TOY, "--workdir", str(workdir)], cwd=REPO,
        env=env(pause_at), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    self.lines = queue.Queue()
    self.stderr = []
    threading.Thread(target=self._read, daemon=True).start()

  def _read(self):
    for line in self.proc.stderr:
      self.lines.put(line)
    self.lines.put(None)

  def wait_for(self, marker, timeout=400):
    """Reads stderr until a line holds `marker`."""
    while True:
      line = self.lines.get(timeout=timeout)
      if line is None:
        raise AssertionError(f"ended before {marker!r}:\n" + "".join(self.stderr[-30:]))
      self.stderr.append(line)
      if marker in line:
        return

  def finish(self, timeout=400) -> tuple[int, str, str]:
    out = self.proc.stdout.read()
    rc = self.proc.wait(timeout=timeout)
    while (line := self.lines.get(timeout=60)) is not None:
      self.stderr.append(line)
    return rc, out, "".join(self.stderr)

  def kill(self, sig=signal.SIGKILL):
    self.proc.send_signal(sig)


def computed(workdir):
  return [{k: r[k] for k in COMPUTED if k in r} for r in metrics_lib.read(workdir)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """An uninterrupted toy run."""
  workdir = tmp_path_factory.mktemp("chaos") / "reference"
  rc, out, err = Toy(workdir).finish()
  assert rc == 0, err[-3000:]
  return workdir, out, err


def test_uninterrupted_toy_run_trains_every_stage_and_reports(reference, tmp_path):
  """The README's main command, shrunk by `runlocal`: checkpoints, metrics
  (each step once), TensorBoard events, a plot, no lock left; then the same
  command resumes with nothing to do, another experiment is refused, and the
  report command reads the run."""
  ref_dir, out, _ = reference
  for name in ("metrics.jsonl", "loss.png", "config.json", "experiment.json"):
    assert (ref_dir / name).exists(), name
  assert any((ref_dir / "tb").iterdir())
  assert not (ref_dir / lock.NAME).exists()
  assert sorted(p.name for p in (ref_dir / "checkpoints").iterdir()) == [
      "stage_0", "stage_1", "stage_2"]
  assert "checkpoints:" in out and "stage" in out
  rows = metrics_lib.read(ref_dir)
  assert [r["step"] for r in rows if "event" not in r] == list(range(1, 13))
  assert [r["stage"] for r in rows if r.get("event") == "growth"] == [1, 2]
  assert all(r["skipped_steps"] == 0 for r in rows if "event" not in r)

  workdir = tmp_path / "toy"
  shutil.copytree(ref_dir, workdir)
  rc, _, err = Toy(workdir).finish()
  assert rc == 0, err[-3000:]
  assert "resuming from stage 2 step 12" in err
  assert computed(workdir) == computed(ref_dir)
  before = (workdir / "metrics.jsonl").read_text()
  other = subprocess.run(
      [sys.executable, "-m", "growjax.main", "--config",
       "experiments/toy.py:runlocal,baseline", "--workdir", str(workdir)],
      cwd=REPO, env=env(), capture_output=True, text=True, timeout=300)
  assert other.returncode == 2
  assert other.stderr.splitlines() == [
      f"error: workdir {workdir}: holds a different experiment (stages: 3 "
      "entries there, 1 here); use a new --workdir"], other.stderr
  assert (workdir / "metrics.jsonl").read_text() == before
  rep = subprocess.run(
      [sys.executable, "-m", "growjax.report", str(workdir), "--out",
       str(tmp_path / "r.png"), "--baseline", str(workdir)],
      cwd=REPO, env=env(), capture_output=True, text=True, timeout=300)
  assert (tmp_path / "r.png").exists(), rep.stderr


# (pause point, the moment it stands for); each run resumes from the last.
KILLS = [
    ("step@3", "mid-step in stage 0"),
    ("checkpoint@4", "mid-checkpoint-write: files written, not renamed"),
    ("growth@4", "mid-growth: stage 1 grown, not yet logged or saved"),
    ("metrics_line@5", "half of a metrics line written"),
    ("stage_end@8", "between stages: stage 1 saved, stage 2 not grown"),
]


def test_killed_five_times_and_preempted_once_the_run_ends_as_an_uninterrupted_one(
    reference, tmp_path):
  ref_dir, _, _ = reference
  workdir = tmp_path / "chaos"
  survived = []
  for i, (point, moment) in enumerate(KILLS):
    toy = Toy(workdir, pause_at=point)
    toy.wait_for(f"GROWJAX_PAUSED {point}")
    if i == 0:  # a second run on the workdir meanwhile is refused at once
      second = subprocess.run([sys.executable, *TOY, "--workdir", str(workdir)],
                              cwd=REPO, env=env(), capture_output=True, text=True,
                              timeout=300)
      assert second.returncode == 2
      assert second.stderr.splitlines() == [
          f"error: workdir {workdir}: in use by another run (pid {toy.proc.pid} "
          f"on host {socket.gethostname()}, started "
          f"{lock.holder(workdir)['started']}); wait for it to end, or use "
          "another --workdir"], second.stderr
    toy.kill()
    toy.finish()
    survived.append(moment)
    rows = metrics_lib.read(workdir)  # readable whatever was cut short
    steps = [r["step"] for r in rows if "event" not in r]
    assert steps == list(range(1, len(steps) + 1)), (point, steps)

  # A run killed holds the lock no longer: the next takes it over, warning.
  killed_pid = lock.holder(workdir)["pid"]
  # SIGTERM (a preemption): save at the next step boundary and exit 0.
  toy = Toy(workdir, pause_at="step@10")
  toy.wait_for("GROWJAX_PAUSED step@10")
  toy.kill(signal.SIGTERM)
  rc, out, err = toy.finish()
  assert rc == 0, err[-3000:]
  assert f"taking over the lock of a run that is gone (pid {killed_pid}" in err
  assert "stopped at step 10 by SIGTERM, checkpoint saved; to resume, run: " \
         "python -m growjax.main --config experiments/toy.py:runlocal" in out
  assert checkpoint.latest(workdir) == (2, 10)
  assert not (workdir / lock.NAME).exists()

  rc, out, err = Toy(workdir).finish()
  assert rc == 0, err[-3000:]
  assert "resuming from stage 2 step 10" in err
  assert computed(workdir) == computed(ref_dir)
  got, want = trained.load_latest(workdir), trained.load_latest(ref_dir)
  assert (got.stage, got.step) == (want.stage, want.step) == (2, 12)
  for a, b in zip(jax.tree.leaves(got.params), jax.tree.leaves(want.params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert len(survived) == 5
  corrupt = workdir / "checkpoints" / "corrupt"
  assert not corrupt.exists()  # a killed save leaves nothing to move aside
  print(json.dumps({"kills_survived": survived, "preempted_at": 10}))
