"""A study's results: study.json (the corpus, every run, the speedups with
their intervals, read by growjax.compare), the table, study.png, and the copy
into benchmarks/results."""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib
import re
import shutil

from growjax import compare, data, frontier, model, report
from growjax.experiment import Experiment
from growjax.study import rates
from growjax.study.progress import best_lrs, is_done, smoothed_final
from growjax.study.spec import Run, Study
from growjax.train import metrics as metrics_lib

log = logging.getLogger("growjax")

def _arm_name(run: Run, study: Study) -> str:
  """The name `growjax.compare` groups seeds by: swept arms by their rate."""
  arm = next(a for a in study.arms if a["name"] == run.arm)
  return f"{run.arm}_lr{run.lr:g}" if len(arm.get("lrs", ())) > 1 else run.arm


def _common_prefix(runs: list) -> list:
  """Seeds of one arm cut to the evaluations they all made (a run that
  stopped at its target evaluates fewer times than its sibling)."""
  by_arm: dict[str, list] = {}
  for r in runs:
    by_arm.setdefault(r.name, []).append(r)
  out = []
  for members in by_arm.values():
    n = min(len(compare.eval_curve(r).flops_E) for r in members)
    for r in members:
      evals = [row for row in r.rows if "val_loss" in row and "event" not in row]
      last_step = evals[n - 1]["step"]
      out.append(dataclasses.replace(
          r, rows=[row for row in r.rows if row["step"] <= last_step]))
  return out


def seconds_rows(rows: list[dict]) -> tuple[set[str] | None, str | None]:
  """The runs whose seconds compare with each other, and a note naming the
  others: the runs that had their device to itself, on the kind most trained
  on. A run that shared its device (`--parallel` above the device count) is
  left out: its wall-clock is a fact about the schedule, not the arm; so is
  one on another kind (seconds on an H200 and an H100 are different facts),
  and a branch whose trunk is left out. None when what is kept has no
  scratch trunk. Rows from before the study recorded devices have none, and
  compare with each other."""
  if not rows:
    return None, None
  alone = [r for r in rows if (r.get("runs_at_once") or 1) == 1]
  shared = [r["name"] for r in rows if (r.get("runs_at_once") or 1) > 1]
  by_kind: dict[str, list[dict]] = {}
  for r in alone:
    by_kind.setdefault(str(r.get("device")), []).append(r)
  if not shared and len(by_kind) == 1:
    return {r["name"] for r in rows}, None
  kind, kept = max(by_kind.items(), key=lambda kv: len(kv[1]), default=(None, []))
  names = {r["name"] for r in kept}
  names -= {r["name"] for r in kept if r.get("trunk") and r["trunk"] not in names}
  others = sorted(r["name"] for r in rows if r["name"] not in names)
  reasons = []
  if shared:
    reasons.append(f"{len(shared)} of {len(rows)} runs shared their device with other "
               "runs of the study (--parallel above the device count: their "
               "wall-clock is a fact about the schedule, not the arm)")
  if len(by_kind) > 1:
    reasons.append(f"the runs trained on different devices ({'; '.join(sorted(by_kind))})")
  why = " and ".join(reasons)
  if not any(r["kind"] == "scratch" and not r.get("branch")
             for r in kept if r["name"] in names):
    return None, (f"{why}: no scratch trunk had a device of the kind most trained "
                  "on to itself, so wall-clock seconds are not comparable across "
                  f"arms; compare FLOPs. Left out: {', '.join(others)}")
  return names, (
      f"{why}: the time frontier reads only the {len(names)} runs that had "
      f"{kind} to themselves; the {len(others)} others are left out of it (the "
      f"compute frontier has every run): {', '.join(others)}")


def seconds_frontier(runs: list, rows: list[dict], n_boot: int) -> dict | None:
  """The time frontier (`frontier.frontier(cost="seconds")`) of the runs
  whose seconds compare (`seconds_rows`; `rows[i]` is `runs[i]`'s row), with
  the note of any left out; None where none compare or a run logged no
  steady-state seconds."""
  timed, note = seconds_rows(rows)
  kept = [r for r, row in zip(runs, rows) if timed and row["name"] in timed]
  if not kept or frontier.untimed(kept):
    return None
  out = frontier.frontier(kept, n_boot=n_boot, cost="seconds")
  out["notes"] += [note] if note else []
  return out


def pending_runs(study: Study, workdir: pathlib.Path,
                 best: dict | None = None) -> tuple[str, ...]:
  """The runs the study plans now (its sweeps, the other seeds of each best
  rate found so far, their branches) that WORKDIR has not finished; `best`:
  `best_lrs(study, workdir)` when the caller has it."""
  best = best_lrs(study, workdir) if best is None else best
  return tuple(r.name for r in study.runs(best)
               if not is_done(workdir / "runs" / r.name))


def finish(study: Study, workdir: pathlib.Path, *, n_boot: int = 1000) -> dict:
  """study.json and study.png from every finished run's metrics."""
  best = best_lrs(study, workdir)
  corpus = data.prepare(Experiment.from_config(study.runs(best)[0].config).data)
  corpus_tokens = corpus.num_tokens("train")
  runs, rows_out = [], []
  for run in study.every_run(best):
    run_dir = workdir / "runs" / run.name
    done = is_done(run_dir)
    if not done and not run.sweep and run not in study.runs(best):
      continue  # a seed of a rate that was not the best: never planned
    if not done:
      log.warning("study: run %s is not finished; left out", run.name)
      continue
    rows = metrics_lib.read(run_dir)
    exp = Experiment.from_config(run.config)
    final = exp.stages[-1].model
    params = model.param_count(final)
    tokens = max(r["tokens"] for r in rows if "tokens" in r)
    curve = compare.eval_curve(compare.Run(run.name, run.kind, run.seed, run.lr, rows))
    label = f"decay_at {run.branch['at']:g}" if run.branch else None
    runs.append(compare.Run(_arm_name(run, study), run.kind, run.seed, run.lr, rows,
                            branch=label))
    rows_out.append({
        "name": run.name, "arm": _arm_name(run, study), "kind": run.kind,
        "seed": run.seed, "lr": run.lr, "param": final.param, "final_params": params,
        "stages": [{k: getattr(s.model, k) for k in ("d_model", "n_layers", "n_heads", "d_ff")}
                   | {"tokens": s.steps(exp.seq_len) * s.batch_size * exp.seq_len,
                      "method": s.grow.method if s.grow else None} for s in exp.stages],
        "tokens": tokens, "tokens_per_param": tokens / params,
        "epochs": tokens / corpus_tokens,
        "metrics": f"benchmarks/results/metrics/{study.name}/{run.name}.jsonl",
        "final_val_loss": float(curve.loss_E[-1]),
        "final_val_loss_se": compare.final_se(curve),
        "smoothed_final_val_loss": smoothed_final(rows),
        "train_flops": float(curve.flops_E[-1]),
        "budget_flops": study.budget_flops(),
        "stopped": done.get("stopped"),
        "device": done.get("device"), "runs_at_once": done.get("runs_at_once", 1),
        "branch": label, "trunk": run.branch["trunk"] if run.branch else None,
        "decay_at": run.branch["at"] if run.branch else None})
  trunks = [r for r in runs if r.branch is None]
  compared = any(r.kind == "scratch" for r in trunks)
  summary = (compare.summarize(_common_prefix(trunks), n_boot=n_boot) if compared
             else _uncompared())  # still exported: a later call resumes from it
  time_note = seconds_rows(rows_out)[1]
  if time_note:
    summary["notes"].append(time_note)
  result = {
      "name": study.name, "corpus": corpus.fingerprint(),
      "budget_tokens": study.budget_tokens, "budget_flops": study.budget_flops(),
      "flop_convention": "PaLM: 6N + 6DV + 12LHKs per token (growjax.cost)",
      "arms": rows_out, "rates": rates.sweeps(rows_out),
      "speedups": summary["speedups"], "loss_deltas": summary["loss_deltas"],
      "levels": summary["levels"], "baseline": summary["baseline"],
      "wall_clock": summary["wall_clock"], "notes": summary["notes"],
      "comparison": {k: summary[k] for k in ("reading", "smoothing", "ci", "ci_over",
                                              "n_boot", "arm_stats", "level_fractions")},
  }
  if compared and frontier.has_branches(runs):  # decayed points: the speedups to read
    result["frontier"] = frontier.frontier(runs, n_boot=n_boot,
                                           pending=pending_runs(study, workdir, best))
    seconds = seconds_frontier(runs, rows_out, n_boot)  # the runs alone, one kind
    if seconds:
      result["frontier_seconds"] = seconds
    early = sorted(r["name"] for r in rows_out if r["stopped"])
    if early:  # a cosine run stopped at its target has not decayed there
      result["frontier"]["notes"].append(
          f"{', '.join(early)} stopped at the target before their end: their "
          "finals are not decayed, so they stand on the frontier above where "
          "a decayed run would (against the arm)")
  (workdir / "study.json").write_text(json.dumps(result, indent=1) + "\n")
  report.plot_study(runs, workdir / "study.png", levels=summary["levels"],
                    frontier=result.get("frontier"),
                    frontier_seconds=result.get("frontier_seconds"),
                    best={e["best_arm"] for e in result["rates"]})
  return result


def _uncompared() -> dict:
  """compare.summarize's fields when no scratch trunk has finished: nothing
  to read against yet, but the finished runs are exported all the same."""
  return {"arms": [], "speedups": [], "loss_deltas": [], "levels": [], "baseline": None,
          "wall_clock": None, "reading": None, "smoothing": None, "ci": None,
          "ci_over": [], "n_boot": 0, "arm_stats": [], "level_fractions": None,
          "notes": ["no scratch trunk has finished: no comparison yet (the "
                    "finished runs are exported, and a later call resumes)"]}


def format_result(result: dict) -> str:
  """The speedup tables: the single-curve reading, one line per (level,
  arm), each arm's rate sweep (`rates`), then the compute frontier's when
  the runs have decay branches, and the time frontier's when every run had
  its device to itself. A bound the bootstrap could not give is "-"; a ratio
  that no resampling varies (one seed per arm and no validation chunks) gets
  no interval."""
  comparison = result.get("comparison", {})
  seeds = {a["arm"]: len(a["seeds"]) for a in comparison.get("arm_stats", [])}
  by_chunks = "validation chunks" in comparison.get("ci_over", [])

  def bound(x):
    return "-" if x is None else f"{x:.2f}"

  def interval(s):
    if s["ci_low"] is None and s["ci_high"] is None:
      return ""
    if not by_chunks and seeds.get(s["arm"], 1) < 2 and seeds.get(result["baseline"], 1) < 2:
      return "one seed"
    return f"[{bound(s['ci_low'])}, {bound(s['ci_high'])}]"

  lines = [f"single-curve reading (not decayed below each run's end); "
           f"baseline {result['baseline']}; levels "
           f"{', '.join(f'{l:.4f}' for l in result['levels'])}",
           f"{'level':>8} {'arm':<22} {'FLOPs ratio':>12} {'95% CI':>18} {'reached':>8}"]
  for s in result["speedups"]:
    ratio = "not reached" if s["flops_ratio"] is None else f"{s['flops_ratio']:.2f}x"
    lines.append(f"{s['level']:>8.4f} {s['arm']:<22} {ratio:>12} {interval(s):>18} "
                 f"{str(s['reached']):>8}")
  sweeps = result.get("rates") or rates.sweeps(result.get("arms", []))
  return "\n".join(lines + rates.lines(sweeps)
                   + report.frontier_lines(result.get("frontier"))
                   + report.frontier_lines(result.get("frontier_seconds")))


def export(result: dict, workdir: pathlib.Path, out_dir: pathlib.Path,
           stem: str = "growth_study") -> None:
  """Copies study.json/png and every run's metrics.jsonl into a results
  folder (benchmarks/results/STEM.json and metrics/STEM/)."""
  (out_dir / "metrics" / stem).mkdir(parents=True, exist_ok=True)
  for arm in result["arms"]:
    shutil.copyfile(workdir / "runs" / arm["name"] / "metrics.jsonl",
                    out_dir / "metrics" / stem / f"{arm['name']}.jsonl")
  shutil.copyfile(workdir / "study.json", out_dir / f"{stem}.json")
  shutil.copyfile(workdir / "study.png", out_dir / f"{stem}.png")


def restore(study: Study, workdir: pathlib.Path, out_dir: pathlib.Path,
            stem: str | None = None) -> list[str]:
  """Marks done, in WORKDIR, the runs an earlier export holds (out_dir/STEM.json
  and metrics/STEM/), so a study split over machines that share no disk
  resumes where the last one stopped: each run's metrics.jsonl and a
  done.json. A trunk whose decay branches are not all exported is left to
  run again (its branches start from its checkpoints, which an export does
  not keep). Runs already in WORKDIR are kept. Returns the names restored."""
  stem = stem or study.name
  path = out_dir / f"{stem}.json"
  if not path.exists():
    raise FileNotFoundError(f"--resume_from: {path} does not exist (an export "
                            "of this study: --export DIR)")
  exported = json.loads(path.read_text())
  # a run's name is ARM_lrRATE_sSEED or ARM_sSEED (spec.Study.runs)
  arm_of = lambda run: next((a["name"] for a in study.arms if re.match(
      rf"{re.escape(a['name'])}_(lr|s\d)", run)), None)
  restored = []
  for row in exported["arms"]:
    run_dir = workdir / "runs" / row["name"]
    if is_done(run_dir):
      continue
    metrics = out_dir / "metrics" / stem / f"{row['name']}.jsonl"
    if not metrics.exists():
      raise FileNotFoundError(f"--resume_from: {metrics} is missing (listed in {path})")
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(metrics, run_dir / "metrics.jsonl")
    record = {k: row.get(k) for k in ("name", "kind", "seed", "lr", "branch",
                                      "trunk", "stopped", "device", "runs_at_once")}
    # the study's arm, as run_one writes it (the export's is rate-suffixed)
    record["arm"] = arm_of(row["name"]) or row.get("arm")
    (run_dir / "done.json").write_text(json.dumps(
        dict(record, restored_from=str(path)), indent=1) + "\n")
    restored.append(row["name"])
  planned = study.runs(best_lrs(study, workdir))
  for trunk in {r.branch["trunk"] for r in planned if r.branch}:
    branches = [r for r in planned if r.branch and r.branch["trunk"] == trunk]
    if trunk in restored and not all(is_done(workdir / "runs" / b.name)
                                     for b in branches):
      log.warning("study: %s is restored without all its decay branches; it "
                  "trains again, for their checkpoints", trunk)
      shutil.rmtree(workdir / "runs" / trunk)
      restored.remove(trunk)
  return restored
