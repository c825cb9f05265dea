"""Decay branches: a run of its own, started from its trunk's checkpoint.

A branch (`growjax.schedule.branches`) lives in its own workdir, which
`seed` prepares once from the trunk's (read, never written):

    BRANCH/checkpoints/stage_K/START/   a copy of the trunk's checkpoint at the branch step
    BRANCH/metrics.jsonl               the trunk's lines up to that checkpoint
    BRANCH/experiment.json, config.json  the branch's own experiment
    BRANCH/branch.json                 trunk, decay_at, start, end (written last)

Then `growjax.train.loop.run(branch_experiment, BRANCH)` simply resumes from
that checkpoint: its meta carries the data position and the totals (tokens,
train_flops), so the branch is charged the trunk's FLOPs up to the branch
point plus its own, its metrics continue the trunk's, and an interrupted
branch resumes exactly like any run. The training loop knows nothing of
branches, except that a trunk saves and keeps the steps they start from.
"""

from __future__ import annotations

import json
import logging
import pathlib
import shutil

from growjax import atomic
from growjax import checkpoint as ckpt_lib
from growjax.experiment import Experiment, ExperimentError
from growjax import schedule as schedule_lib
from growjax.schedule import Branch
from growjax.train import loop

log = logging.getLogger("growjax")


def find(exp: Experiment, at: float) -> Branch:
  """The branch of `exp` that ends at fraction `at` of its steps."""
  for b in schedule_lib.branches(exp):
    if b.at == at:
      return b
  raise ExperimentError(f"branches.decay_at: {exp.name} has no branch at {at:g}")


def trunk_checkpoint(trunk_dir: pathlib.Path, step: int) -> tuple[int, int] | None:
  """(stage, step) of the trunk's finished checkpoint at `step` (the later
  stage's where a stage boundary holds two), or None."""
  for stage, s in ckpt_lib.candidates(trunk_dir):
    if s == step and (ckpt_lib.stage_dir(trunk_dir, stage) / str(s) / "meta").exists():
      return stage, s
  return None


def is_seeded(branch_dir: pathlib.Path) -> bool:
  return (pathlib.Path(branch_dir) / "branch.json").exists()


def seed(trunk_dir, branch: Branch, branch_dir) -> None:
  """Prepares `branch_dir` from the trunk's checkpoint at `branch.start`
  (once: a seeded branch is left as it is, so it resumes from its own
  checkpoints). A half-seeded one (no branch.json) is seeded again. Raises
  ExperimentError when the trunk has no checkpoint there yet."""
  trunk_dir, branch_dir = pathlib.Path(trunk_dir), pathlib.Path(branch_dir)
  if is_seeded(branch_dir):
    return
  found = trunk_checkpoint(trunk_dir, branch.start)
  if found is None:
    raise ExperimentError(
        f"branch {branch.label}: the trunk {trunk_dir} has no checkpoint at step "
        f"{branch.start} (train the trunk past it first)")
  stage, step = found
  with ckpt_lib.Checkpointer(trunk_dir, keep=1, read_only=True) as trunk:
    meta = trunk.read_meta(stage, step)
  exp = Experiment.from_config(branch.config)
  branch_dir.mkdir(parents=True, exist_ok=True)
  for stale in ("checkpoints", "checkpoints.seeding", "metrics.jsonl",
                "experiment.json", "config.json"):
    path = branch_dir / stale
    if path.is_dir():
      shutil.rmtree(path)
    elif path.exists():
      path.unlink()
  # The checkpoint first, under a temporary name: experiment.json must never
  # stand beside a half-copied checkpoint.
  tmp = branch_dir / "checkpoints.seeding"
  shutil.copytree(ckpt_lib.stage_dir(trunk_dir, stage) / str(step),
                  tmp / f"stage_{stage}" / str(step))
  lines = (trunk_dir / "metrics.jsonl").read_text().split("\n")[:-1]
  atomic.write_text(branch_dir / "metrics.jsonl",
                    "".join(l + "\n" for l in lines[:meta["metrics_rows"]]))
  atomic.write_text(branch_dir / "experiment.json",
                    json.dumps(exp.fingerprint(), indent=1))
  atomic.write_text(branch_dir / "config.json", json.dumps(exp.config, indent=1))
  tmp.rename(branch_dir / "checkpoints")
  atomic.write_text(branch_dir / "branch.json", json.dumps({
      "trunk": str(trunk_dir.resolve()), "decay_at": branch.at,
      "start": branch.start, "end": branch.end, "trunk_stage": stage},
      indent=1) + "\n")
  log.info("branch %s: seeded %s from %s at step %d", branch.label, branch_dir,
           trunk_dir, step)


def run(trunk_exp: Experiment, trunk_dir, at: float, branch_dir, **kwargs) -> dict:
  """Seeds (once) and trains the branch of `trunk_exp` at `at` in
  `branch_dir`; `kwargs` go to `loop.run` (stop_at_step, ...)."""
  b = find(trunk_exp, at)
  seed(trunk_dir, b, branch_dir)
  return loop.run(Experiment.from_config(b.config, n_devices=kwargs.pop(
      "n_devices", None)), branch_dir, **kwargs)
