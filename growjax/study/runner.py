"""Training a study's runs: one in this process (`run_one`), or all of them,
several at once in their own processes on their own devices (`run_all`).
Runs are claimed by a file, so several schedulers can share a workdir."""

from __future__ import annotations

import json
import logging
import os
import pathlib
import socket
import subprocess
import sys
import time

import jax

from growjax import atomic, data, progress
from growjax.experiment import Experiment
from growjax.train import loop
from growjax.train import metrics as metrics_lib
from growjax.train import preempt
from growjax.study.progress import best_lrs, is_done, smoothed_final, target_loss
from growjax.study.spec import Run, Study

log = logging.getLogger("growjax")

def run_one(study: Study, run: Run, workdir: pathlib.Path,
            target: float | None = None) -> dict:
  """Trains one run in WORKDIR/runs/NAME (resuming it if it was cut short)
  and marks it done. Grown and small-only runs stop once their smoothed
  validation loss is `target_margin` below `target`, grown runs only in
  their last stage (a target reached before the growth would read the small
  model, which is the small-only control's job)."""
  run_dir = workdir / "runs" / run.name
  done = is_done(run_dir)
  if done:
    return done
  exp = Experiment.from_config(run.config, n_devices=jax.device_count())
  if run.branch:  # a decay branch starts from a copy of its trunk's checkpoint
    from growjax.schedule import Branch  # pylint: disable=g-import-not-at-top
    from growjax.train import branch as branch_lib  # pylint: disable=g-import-not-at-top
    b = run.branch
    branch_lib.seed(workdir / "runs" / b["trunk"],
                    Branch(b["at"], b["start"], b["end"], run.config), run_dir)
  stop_when = None
  # A run-level schedule decays at its end only: stopped early, it would be
  # read undecayed, and its branches need its stable phase. It runs out.
  if (target is not None and study.stop_at_target and run.kind != "scratch"
      and exp.schedule.kind == "per_stage"):
    level = target - study.target_margin

    last_stage = len(exp.stages) - 1

    def stop_when(row):  # called after `row` is written to metrics.jsonl
      if "val_loss" not in row or row["stage"] != last_stage:
        return None  # a grown arm is read once it has grown
      evals = [r for r in metrics_lib.read(run_dir) if "val_loss" in r]
      if len(evals) >= 3 and smoothed_final(evals) <= level:
        return (f"smoothed validation loss reached {level:.4f} (the best "
                f"scratch run's final {target:.4f} - {study.target_margin})")
      return None
  summary = loop.run(exp, run_dir, stop_when=stop_when)
  schedule = run_dir / "schedule.json"  # run_all's, when it started this run
  at_once = json.loads(schedule.read_text())["runs_at_once"] if schedule.exists() else 1
  record = {"name": run.name, "arm": run.arm, "kind": run.kind, "seed": run.seed,
            "lr": run.lr, "branch": run.branch, "stopped": summary.get("stop_reason"),
            "target": target, "preempted": summary.get("preempted"),
            # what its seconds are a fact about (results.seconds_rows)
            "device": device_name(), "runs_at_once": at_once}
  # Done: trained to its end, or stopped at its target; a preempted run is
  # not (re-running the study resumes it from its checkpoint).
  if not summary.get("preempted") and (not summary.get("stopped")
                                       or summary.get("stop_reason")):
    (run_dir / "done.json").write_text(json.dumps(record, indent=1) + "\n")
  return record


def device_name() -> str:
  """The devices a run trains on, as its seconds depend on them:
  "1 x NVIDIA H100 80GB HBM3"."""
  return f"{jax.device_count()} x {jax.devices()[0].device_kind}"


def _claim(run_dir: pathlib.Path) -> bool:
  """Takes a run for this process (several schedulers may share a study's
  workdir, e.g. one per GPU): a `claim` file made exclusively, holding host
  and pid. A claim whose process is gone (same host) is taken over."""
  run_dir.mkdir(parents=True, exist_ok=True)
  path = run_dir / "claim"
  me = f"{socket.gethostname()} {os.getpid()}"
  for _ in range(2):
    try:
      fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
      host, _, pid = path.read_text().partition(" ")
      if host != socket.gethostname() or _alive(int(pid or 0)):
        return False
      path.unlink(missing_ok=True)  # its owner died: take it over
      continue
    with os.fdopen(fd, "w") as f:
      f.write(me)
    return True
  return False


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return pid > 0


def _release(run_dir: pathlib.Path) -> None:
  (run_dir / "claim").unlink(missing_ok=True)


def _worker_command(worker_args: list[str], name: str,
                    target: float | None) -> list[str]:
  """A worker's command line: the study's flags, training run NAME alone."""
  cmd = [sys.executable, "-m", "growjax.study", *worker_args, "--only", name,
         "--claimed"]
  return cmd + (["--target", repr(target)] if target is not None else [])


def run_all(study: Study, worker_args: list[str], workdir: pathlib.Path, *,
            parallel: int = 1, devices: list[str] | None = None,
            deadline: float | None = None,
            arms: list[str] | None = None) -> list[str]:
  """Every run of the study, `parallel` at a time as subprocesses (slot i on
  device `devices[i % len(devices)]` via CUDA_VISIBLE_DEVICES), or in this
  process when parallel == 1; a worker runs `python -m growjax.study
  WORKER_ARGS --only NAME` (the study's own flags, so overrides carry over).
  Every arm's rate sweep goes before any arm's other seeds
  (scratch's first, in each); an arm's other seeds at its best rate are
  queued once its sweep is done. A finished trunk's decay
  branches go before any new trunk, since they start from its checkpoints
  (which a study split over machines does not carry). Several schedulers
  may share one workdir (runs are claimed). Starts no trunk after `deadline`
  (time.time()); the branches of a finished trunk still run. `arms`: train
  only these arms' runs. SIGTERM or SIGINT stops it as it stops one run:
  the run in flight (each worker's, passed on) saves and stops, and nothing
  more starts (a caller's own handlers, around it, hear of the signal:
  `preempt`). Returns the names of runs that failed."""
  workdir.mkdir(parents=True, exist_ok=True)
  # One corpus for every run, prepared before any of them starts.
  data.prepare(Experiment.from_config(study.runs()[0].config).data)

  def todo() -> list[Run]:
    """Runs not done, a decay branch once its trunk is."""
    runs = study.runs(best_lrs(study, workdir))
    runs.sort(key=lambda r: (r.branch is None, not r.sweep, r.kind != "scratch"))
    return [r for r in runs if not is_done(workdir / "runs" / r.name) and not (
        r.branch and not is_done(workdir / "runs" / r.branch["trunk"]))
            and (arms is None or r.arm in arms)
            and not (r.branch is None and late())]

  def late() -> bool:
    return deadline is not None and time.time() > deadline

  def planned() -> tuple[int, int]:  # (runs done, runs planned)
    runs = study.runs(best_lrs(study, workdir))
    return sum(1 for r in runs if is_done(workdir / "runs" / r.name)), len(runs)

  def advance(bar) -> str:  # the bar brought up to date
    done, total = planned()
    bar.total = total  # grows once the sweep picks its rate
    bar.update(done - bar.n)
    return f"{done} of {total} done"

  # Which run and its ETA: each stage's bar (train/loop.py); the study's
  # ETA: this bar over runs, whose rate starts after the first run.
  done, total = planned()
  bar = progress.bar(total=total, initial=done, desc="study", unit="run",
                     warmup=1)

  failures: list[str] = []
  if parallel == 1:
    # Each run's trainer handles a signal while it trains (saves and stops);
    # this one, one that lands between runs (a run's setup, its last save):
    # the run finishes, and nothing more starts.
    with preempt.Preemption(hosts=1) as stop:
      while not stop.signal:
        run = next((r for r in todo() if r.name not in failures
                    and _claim(workdir / "runs" / r.name)), None)
        if run is None:
          break
        log.info("study: run %s (%s); %s", run.name, run.label(), advance(bar))
        try:
          record = run_one(study, run, workdir, target_loss(study, workdir))
        finally:
          _release(workdir / "runs" / run.name)
        if record.get("preempted"):  # also where JAX's service heard it
          stop.signal = record["preempted"]
    if stop.signal:
      log.info("study: stopped by %s; run the same command to resume", stop.signal)
    advance(bar)
    bar.close()
    return failures
  slots: dict[int, tuple | None] = {i: None for i in range(parallel)}
  devices = devices or []

  def forward(signum: int) -> None:  # to every worker still running
    for job in slots.values():
      if job is not None and job[0].poll() is None:
        job[0].send_signal(signum)

  # Workers run in their own sessions, so a terminal's Ctrl-C reaches them
  # once, through `forward`, not twice (the second would stop them unsaved).
  with preempt.Preemption(forward=forward, hosts=1) as stop:
    while True:
      for i, job in slots.items():
        if job is not None and job[0].poll() is not None:
          proc, run = job
          _release(workdir / "runs" / run.name)
          if proc.returncode != 0:
            failures.append(run.name)
            log.error("study: run %s failed (exit %d); see %s", run.name,
                      proc.returncode, workdir / "runs" / run.name / "log.txt")
          slots[i] = None
          advance(bar)
      free = [i for i, job in slots.items() if job is None]
      # after a signal: nothing new, only the workers' saves awaited
      waiting = [] if stop.signal else [r for r in todo() if r.name not in failures]
      for i in free:
        run = next((r for r in waiting if _claim(workdir / "runs" / r.name)), None)
        if run is None:
          break
        waiting.remove(run)
        env = dict(os.environ)
        if devices:
          env["CUDA_VISIBLE_DEVICES"] = devices[i % len(devices)]
        # Runs that share a device (or, with no devices named, the host)
        # share its time: the results say so beside their wall-clock.
        mine = devices[i % len(devices)] if devices else None
        at_once = sum(1 for j in range(parallel)
                      if not devices or devices[j % len(devices)] == mine)
        atomic.write_text(workdir / "runs" / run.name / "schedule.json",
                          json.dumps({"device": mine, "runs_at_once": at_once}) + "\n")
        log.info("study: slot %d runs %s%s; %s", i, run.name,
                 f" on device {env['CUDA_VISIBLE_DEVICES']}" if devices else "",
                 advance(bar))
        with open(workdir / "runs" / run.name / "log.txt", "a") as f:
          slots[i] = (subprocess.Popen(
              _worker_command(worker_args, run.name, target_loss(study, workdir)),
              env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True), run)
      if all(job is None for job in slots.values()):
        break  # nothing runs here and nothing left to start (others hold the rest)
      time.sleep(1)
  if stop.signal:
    log.info("study: stopped by %s; run the same command to resume", stop.signal)
  advance(bar)
  bar.close()
  return failures
