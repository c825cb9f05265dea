"""What `python -m growjax.main` does once its flags are parsed: validate,
then train (or plan), then report. Kept apart from main.py so notebooks,
tests and benchmarks call the same path (`train`).
"""

from __future__ import annotations

import pathlib

import jax

from growjax import command, dry_run, lock, parallel, report
from growjax.experiment import Experiment
from growjax.train import loop


def setup_logging():
  """`command.setup_logging`, for a command with its own flags (export)."""
  command.setup_logging()


def train(config, workdir, *, stop_at_step: int | None = None) -> dict:
  """Validates the experiment `config` for the devices here and trains it in
  `workdir` (resuming); returns the loop's summary."""
  parallel.initialize_distributed()
  exp = Experiment.from_config(config, n_devices=jax.device_count())
  return loop.run(exp, workdir, stop_at_step=stop_at_step)


def plan_report(config, workdir) -> str:
  """The plan of `config` for its configured mesh, whatever devices are here;
  writes WORKDIR/plan.json and returns the table."""
  parallel.initialize_distributed()
  exp = Experiment.from_config(config)
  lock.check_usable(workdir)
  n = exp.mesh.devices_needed() or jax.device_count()
  exp = Experiment.from_config(config, n_devices=n)
  return dry_run.report(exp, workdir, n_devices=n)


def main(config, workdir: str, *, dry_run: bool = False,
         stop_at_step: int | None = None) -> int:
  """Trains (or plans) and prints where everything went."""
  if dry_run:
    print(plan_report(config, workdir))
    return 0
  summary = train(config, workdir, stop_at_step=stop_at_step)
  print(summary["table"])
  if summary["preempted"] or (summary["stopped"] and not summary["stop_reason"]):
    why = summary["preempted"] or "--stop_at_step"
    again = command.invocation(without=("--stop_at_step",))
    print(f"stopped at step {summary['step']} by {why}, checkpoint saved; "
          f"to resume, run: {again}")
  if jax.process_index() == 0 and not summary["stopped"]:
    png = report.plot_run(summary["workdir"], pathlib.Path(workdir) / "loss.png")
    print(f"plot: {png}")
  where = summary["workdir"]
  print(f"metrics: {where}/metrics.jsonl  (TensorBoard: {where}/tb)")
  print(f"checkpoints: {where}/checkpoints")
  return 0
