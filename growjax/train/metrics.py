"""Where training reports: metrics.jsonl, TensorBoard events, a summary table.

metrics.jsonl has one JSON object per line. Training lines carry step, stage,
loss (the step's batch), lr, grad_norm, tokens and train_flops (cumulative,
model FLOPs of growjax.cost), tokens_per_s and tflops (steady-state, since the
previous line; absent when that window held only a compiling step), and
cumulative seconds: time (wall-clock of the whole run, every restart,
compile, growth, evaluation and checkpoint included), train_time (inside
steady-state train steps), compile_time (the first step of each compiled
program) and eval_time. Evaluation lines add val_loss (mean over the fixed
validation set, `growjax.data.validation_windows`), val_loss_se (its standard
error over windows) and val_chunks (means of 20 equal chunks of windows, the
same chunks in every run on that set: what `growjax.compare` bootstraps).
Growth events carry event="growth", method, the loss of a fixed validation
batch before and after the growth, and seconds (the growth, compile
included).
"""

from __future__ import annotations

import json
import pathlib

import tensorboardX


class Writer:

  def __init__(self, workdir: str | pathlib.Path, *, enabled: bool = True):
    self.path = pathlib.Path(workdir) / "metrics.jsonl"
    self.enabled = enabled
    self._tb = tensorboardX.SummaryWriter(str(pathlib.Path(workdir) / "tb")) if enabled else None

  def write(self, row: dict):
    if not self.enabled:
      return
    row = {k: (float(v) if hasattr(v, "dtype") else v) for k, v in row.items()}
    with self.path.open("a") as f:
      f.write(json.dumps(row) + "\n")
    if "event" not in row:
      for key, value in row.items():
        if key not in ("step", "stage") and isinstance(value, (int, float)):
          self._tb.add_scalar(key, value, row["step"])

  def close(self):
    if self._tb is not None:
      self._tb.close()


def read(workdir: str | pathlib.Path) -> list[dict]:
  path = pathlib.Path(workdir) / "metrics.jsonl"
  if not path.exists():
    return []
  return [json.loads(line) for line in path.read_text().splitlines() if line]


def drop_after(workdir: str | pathlib.Path, step: int):
  """Forgets lines logged after `step` (a resumed run logs them again)."""
  path = pathlib.Path(workdir) / "metrics.jsonl"
  rows = [r for r in read(workdir) if r["step"] <= step]
  if path.exists():
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def summary_table(rows: list[dict]) -> str:
  """One line per stage: steps, tokens, last loss and val loss, throughput."""
  stages: dict[int, dict] = {}
  for r in rows:
    if "event" in r:
      continue
    s = stages.setdefault(r["stage"], {"first": r["step"], "rows": []})
    s["rows"].append(r)
  lines = [f"{'stage':>5} {'steps':>12} {'tokens':>12} {'loss':>8} "
           f"{'val_loss':>8} {'tok/s':>10} {'TFLOP/s':>8}"]
  for stage, s in sorted(stages.items()):
    last = s["rows"][-1]
    vals = [r["val_loss"] for r in s["rows"] if "val_loss" in r]
    rates = [r["tokens_per_s"] for r in s["rows"] if "tokens_per_s" in r]
    tflops = [r["tflops"] for r in s["rows"] if "tflops" in r]
    lines.append(
        f"{stage:>5} {s['first']:>5}-{last['step']:<6} {last['tokens']:>12,} "
        f"{last['loss']:>8.4f} {(vals[-1] if vals else float('nan')):>8.4f} "
        f"{(sum(rates) / len(rates) if rates else 0):>10,.0f} "
        f"{(sum(tflops) / len(tflops) if tflops else 0):>8.3f}")
  return "\n".join(lines)
