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
included). Every training line carries skipped_steps, the updates skipped so
far for a non-finite loss or gradient norm (growjax.train.guard); a rollback
after a loss spike is an event="rollback" line.

Each checkpoint records how many lines the file held when it was saved
(`Writer.rows`); a resumed run cuts the file back to that many (`truncate`),
then logs the rest again, so after any number of restarts every step is
there exactly once. A line half-written by a killed process is dropped.
"""

from __future__ import annotations

import json
import pathlib

import tensorboardX

from growjax import atomic, pause


class Writer:
  """Appends lines to WORKDIR/metrics.jsonl (process 0 only: `enabled`) and
  their scalars to TensorBoard; `rows` counts the file's lines."""

  def __init__(self, workdir: str | pathlib.Path, *, enabled: bool = True):
    self.path = pathlib.Path(workdir) / "metrics.jsonl"
    self.enabled = enabled
    self.rows = len(_lines(self.path)) if enabled else 0
    self._tb = tensorboardX.SummaryWriter(str(pathlib.Path(workdir) / "tb")) if enabled else None

  def truncate(self, rows: int):
    """Keeps the first `rows` lines: those of the checkpoint resumed from."""
    if not self.enabled:
      return
    lines, partial = _lines(self.path, partial=True)
    if len(lines) != rows or partial:
      atomic.write_text(self.path, "".join(l + "\n" for l in lines[:rows]))
    self.rows = min(rows, len(lines))

  def write(self, row: dict):
    if not self.enabled:
      return
    row = {k: (float(v) if hasattr(v, "dtype") else v) for k, v in row.items()}
    line = json.dumps(row) + "\n"
    with self.path.open("a") as f:
      if pause.wanted("metrics_line", row.get("step", -1)):  # a test's kill
        f.write(line[:len(line) // 2])
        f.flush()
        pause.at("metrics_line", row["step"])
      f.write(line)
    self.rows += 1
    if "event" not in row:
      for key, value in row.items():
        if key not in ("step", "stage") and isinstance(value, (int, float)):
          self._tb.add_scalar(key, value, row["step"])

  def close(self):
    if self._tb is not None:
      self._tb.close()
      self._tb = None

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


def _lines(path: pathlib.Path, *, partial: bool = False):
  """The complete lines of `path`, without a last line that a killed process
  left half-written (no newline at its end); with `partial`, also whether
  there was one."""
  lines = path.read_text().split("\n") if path.exists() else [""]
  complete = [l for l in lines[:-1] if l]  # lines[-1]: "" or a partial line
  return (complete, bool(lines[-1])) if partial else complete


def read(workdir: str | pathlib.Path) -> list[dict]:
  """Every complete line of WORKDIR/metrics.jsonl."""
  return [json.loads(line) for line in _lines(pathlib.Path(workdir) / "metrics.jsonl")]


def drop_after(workdir: str | pathlib.Path, step: int):
  """Forgets lines logged after `step`: how a checkpoint that predates
  `Writer.rows` is resumed."""
  path = pathlib.Path(workdir) / "metrics.jsonl"
  rows = [r for r in read(workdir) if r["step"] <= step]
  if path.exists():
    atomic.write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


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
