"""Where a study stands: which runs are done, the learning rate each sweep
chose, and the loss its grown runs may stop at."""

from __future__ import annotations

import json
import pathlib

from growjax import compare
from growjax.study.spec import Study
from growjax.train import metrics as metrics_lib

def is_done(run_dir: pathlib.Path) -> dict | None:
  path = run_dir / "done.json"
  return json.loads(path.read_text()) if path.exists() else None


def best_lrs(study: Study, workdir: pathlib.Path) -> dict[str, float]:
  """For each swept arm whose sweep has finished, the learning rate with the
  lowest smoothed final validation loss."""
  out = {}
  for arm in study.arms:
    if "lrs" not in arm:
      continue
    if len(arm["lrs"]) == 1:
      out[arm["name"]] = arm["lrs"][0]
      continue
    sweep = [r for r in study.runs() if r.arm == arm["name"] and r.sweep]
    if not all(is_done(workdir / "runs" / r.name) for r in sweep):
      continue
    finals = {r.lr: smoothed_final(metrics_lib.read(workdir / "runs" / r.name))
              for r in sweep}
    out[arm["name"]] = min(finals, key=lambda lr: finals[lr])
  return out


def target_loss(study: Study, workdir: pathlib.Path) -> float | None:
  """The best scratch sweep run's smoothed final validation loss, once the
  sweep is done: where grown runs may stop."""
  best = best_lrs(study, workdir)
  losses = [smoothed_final(metrics_lib.read(workdir / "runs" / r.name))
            for r in study.runs(best) if r.kind == "scratch" and r.sweep
            and r.lr == best.get(r.arm) and is_done(workdir / "runs" / r.name)]
  return min(losses) if losses else None


def smoothed_final(rows: list, half_life: float = 0.5) -> float:
  """A run's final validation loss on the smoothed curve that growjax.compare
  reads every run on."""
  curve = compare.eval_curve(compare.Run("run", "scratch", None, None, rows))
  return float(compare.monotone_curve(curve.loss_E, curve.flops_E, half_life)[-1])
