"""What growjax.main does once flags are parsed: validate, train, report.

Kept apart from main.py so notebooks and tests call the same path.
"""

from __future__ import annotations

import logging
import pathlib
import sys
import traceback

from growjax import checkpoint as ckpt_lib
from growjax.experiment import Experiment, ExperimentError

log = logging.getLogger("growjax")

# Mistakes a user makes, reported in one line; anything else is a bug.
USER_ERRORS = (ExperimentError, ckpt_lib.CheckpointError, FileNotFoundError,
               ValueError)


def setup_logging():
  """growjax's progress lines on stderr, without absl's and JAX's chatter."""
  logging.basicConfig(level=logging.INFO, format="%(message)s",
                      stream=sys.stderr, force=True)
  logging.getLogger("absl").setLevel(logging.ERROR)
  logging.getLogger("jax").setLevel(logging.WARNING)  # backend probing


def run(config, workdir: str, *, dry_run: bool = False,
        stop_at_step: int | None = None, verbose: bool = False) -> int:
  """Exit status: 0 done, 2 a user error (printed in one line)."""
  try:
    import jax  # pylint: disable=g-import-not-at-top
    from growjax import parallel  # pylint: disable=g-import-not-at-top
    parallel.initialize_distributed()
    if dry_run:  # plans for the configured mesh, whatever devices are here
      from growjax import plan  # pylint: disable=g-import-not-at-top
      exp = Experiment.from_config(config)
      n = exp.mesh.devices_needed() or jax.device_count()
      exp = Experiment.from_config(config, n_devices=n)
      print(plan.report(exp, workdir, n_devices=n))
      return 0
    exp = Experiment.from_config(config, n_devices=jax.device_count())
    from growjax.train import loop  # pylint: disable=g-import-not-at-top
    summary = loop.run(exp, workdir, stop_at_step=stop_at_step)
  except USER_ERRORS as e:
    if verbose:
      traceback.print_exc()
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(summary["table"])
  if jax.process_index() == 0 and not summary["stopped"]:
    from growjax import report  # pylint: disable=g-import-not-at-top
    png = report.plot([summary["workdir"]], pathlib.Path(workdir) / "loss.png")
    print(f"plot: {png}")
  where = summary["workdir"]
  print(f"metrics: {where}/metrics.jsonl  (TensorBoard: {where}/tb)")
  print(f"checkpoints: {where}/checkpoints")
  return 0
