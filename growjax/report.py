r"""Compares runs: python -m growjax.report RUN_DIR [RUN_DIR ...] [--out FILE.png]

Draws validation loss against cumulative training FLOPs and against wall-clock
time for every run in one PNG, growth points marked, and prints for each grown
run the FLOPs and time it needed to reach the from-scratch run's final
validation loss (the speedup). The from-scratch run is the one without growth
events (or --baseline).
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np

from growjax.train import metrics as metrics_lib


def _curves(workdir) -> dict:
  rows = metrics_lib.read(workdir)
  val = [r for r in rows if "val_loss" in r]
  train = [r for r in rows if "event" not in r]
  return {
      "name": pathlib.Path(workdir).name,
      "val_flops": np.array([r["train_flops"] for r in val]),
      "val_time": np.array([r["time"] for r in val]),
      "val_loss": np.array([r["val_loss"] for r in val]),
      "train_flops": np.array([r["train_flops"] for r in train]),
      "train_time": np.array([r["time"] for r in train]),
      "train_loss": np.array([r["loss"] for r in train]),
      "growth_steps": [r["step"] for r in rows if r.get("event") == "growth"],
      "step_flops": {r["step"]: (r["train_flops"], r["time"]) for r in train},
  }


def _growth_points(c):
  """(flops, time) of each growth, from the logged row at or before it."""
  points = []
  for g in c["growth_steps"]:
    before = [s for s in c["step_flops"] if s <= g]
    if before:
      points.append(c["step_flops"][max(before)])
  return points


def plot(workdirs, out) -> pathlib.Path:
  """One PNG: loss vs. training FLOPs and vs. wall-clock, growth marked."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
  for i, workdir in enumerate(workdirs):
    c = _curves(workdir)
    color = f"C{i}"
    for ax, x_train, x_val, k in ((axes[0], c["train_flops"], c["val_flops"], 0),
                                  (axes[1], c["train_time"], c["val_time"], 1)):
      ax.plot(x_train, c["train_loss"], color=color, alpha=0.3, lw=1)
      if len(c["val_loss"]):
        ax.plot(x_val, c["val_loss"], "o-", color=color, ms=3,
                label=f"{c['name']} (validation)")
      for point in _growth_points(c):
        ax.axvline(point[k], color=color, ls=":", lw=1)
  axes[0].set_xlabel("training FLOPs")
  axes[1].set_xlabel("wall-clock seconds of training")
  for ax in axes:
    ax.set_ylabel("loss (nats/token)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  axes[0].set_title("loss vs. compute (dotted: growth)")
  axes[1].set_title("loss vs. time (dotted: growth)")
  fig.tight_layout()
  out = pathlib.Path(out)
  out.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(out, dpi=110)
  plt.close(fig)
  return out


def _first_reach(x, loss, target):
  """Interpolated x at which `loss` first falls to `target`, or None."""
  for i in range(len(loss)):
    if loss[i] <= target:
      if i == 0:
        return float(x[0])
      frac = (loss[i - 1] - target) / (loss[i - 1] - loss[i])
      return float(x[i - 1] + frac * (x[i] - x[i - 1]))
  return None


def compare(workdirs, baseline=None) -> dict:
  """Speedups of grown runs over the from-scratch baseline."""
  curves = [_curves(w) for w in workdirs]
  if baseline is None:
    scratch = [c for c in curves if not c["growth_steps"]]
    if len(scratch) != 1:
      raise ValueError("report: pass --baseline; found "
                       f"{len(scratch)} runs without growth among {workdirs}")
    base = scratch[0]
  else:
    base = _curves(baseline)
    if base["name"] not in [c["name"] for c in curves]:
      curves.append(base)
  if not len(base["val_loss"]):
    raise ValueError(f"report: baseline {base['name']} has no validation loss")
  target = float(base["val_loss"][-1])
  out = {"baseline": base["name"], "target_val_loss": target,
         "baseline_flops": float(base["val_flops"][-1]),
         "baseline_time": float(base["val_time"][-1]), "runs": {}}
  for c in curves:
    if c is base:
      continue
    flops = _first_reach(c["val_flops"], c["val_loss"], target)
    seconds = _first_reach(c["val_time"], c["val_loss"], target)
    out["runs"][c["name"]] = {
        "final_val_loss": float(c["val_loss"][-1]) if len(c["val_loss"]) else None,
        "total_flops": float(c["val_flops"][-1]) if len(c["val_flops"]) else None,
        "flops_to_target": flops, "time_to_target": seconds,
        "flops_speedup": out["baseline_flops"] / flops if flops else None,
        "time_speedup": out["baseline_time"] / seconds if seconds else None}
  return out


def format_comparison(result: dict) -> str:
  lines = [f"baseline {result['baseline']}: final val loss "
           f"{result['target_val_loss']:.4f} after {result['baseline_flops']:.3e} "
           f"FLOPs, {result['baseline_time']:.1f} s"]
  for name, r in result["runs"].items():
    if r["flops_to_target"] is None:
      lines.append(f"{name}: never reached {result['target_val_loss']:.4f} "
                   f"(final val loss {r['final_val_loss']:.4f})")
    else:
      lines.append(
          f"{name}: reached it after {r['flops_to_target']:.3e} FLOPs "
          f"({r['flops_speedup']:.2f}x fewer), {r['time_to_target']:.1f} s "
          f"({r['time_speedup']:.2f}x faster)")
  return "\n".join(lines)


def main(argv=None):
  import argparse  # pylint: disable=g-import-not-at-top
  parser = argparse.ArgumentParser(prog="python -m growjax.report",
                                   description=__doc__.splitlines()[2])
  parser.add_argument("runs", nargs="+", help="run workdirs")
  parser.add_argument("--baseline", help="the from-scratch run's workdir")
  parser.add_argument("--out", default=None,
                      help="PNG path (default: FIRST_RUN/../report.png)")
  args = parser.parse_args(argv)
  for w in args.runs + ([args.baseline] if args.baseline else []):
    if not (pathlib.Path(w) / "metrics.jsonl").exists():
      print(f"error: {w}: no metrics.jsonl (not a growjax run directory)",
            file=sys.stderr)
      return 2
  runs = list(dict.fromkeys(args.runs + ([args.baseline] if args.baseline else [])))
  out = args.out or pathlib.Path(args.runs[0]).parent / "report.png"
  png = plot(runs, out)
  print(f"plot: {png}")
  try:
    result = compare(args.runs, args.baseline)
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(format_comparison(result))
  pathlib.Path(out).with_suffix(".json").write_text(json.dumps(result, indent=1))
  return 0


if __name__ == "__main__":
  sys.exit(main())
