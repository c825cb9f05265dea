r"""Compares runs: python -m growjax.report RUN_DIR [RUN_DIR ...] [--baseline B] [--out FILE.png]

Reads each run directory's metrics.jsonl, compares every run with the
from-scratch one the way `growjax.compare` defines (each run read on a
smoothed, monotone validation curve; FLOPs to several loss levels, their
ratios and the loss difference at equal FLOPs, with bootstrap intervals;
steady-state wall-clock with compiles apart), prints the table, and writes a
PNG (loss against FLOPs and against steady-state seconds, growth marked, the
scratch envelope drawn) and the same numbers as JSON beside it.

The from-scratch runs are those without growth events, or --baseline. Each
run directory is one arm; the growth-study command groups seeds into arms
through `compare.summarize` directly. `plot_run` draws one run alone (the
training loss, smoothed, and the validation loss with its standard error).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import pathlib
import sys

import numpy as np

from growjax import compare as compare_lib
from growjax import frontier as frontier_lib
from growjax.train import metrics as metrics_lib


def load_run(workdir) -> compare_lib.Run:
  """A run directory as a `compare.Run`: named after the directory, its kind
  the first growth method (else "scratch"), seed and first peak rate from its
  config.json when present."""
  workdir = pathlib.Path(workdir)
  rows = metrics_lib.read(workdir)
  methods = [r.get("method", "grown") for r in rows if r.get("event") == "growth"]
  kind = methods[0] if methods else "scratch"
  seed = lr = None
  config = workdir / "config.json"
  if config.exists():
    c = json.loads(config.read_text())
    seed = c.get("seed")
    lr = (((c.get("stages") or [{}])[0].get("lr") or {}).get("peak")
          or (c.get("schedule") or {}).get("peak"))
  name, branch = workdir.name, None
  if (workdir / "branch.json").exists():  # a decay branch: its trunk's arm
    b = json.loads((workdir / "branch.json").read_text())
    name, branch = pathlib.Path(b["trunk"]).name, f"decay_at {b['decay_at']:g}"
  return compare_lib.Run(name=name, kind=kind, seed=seed, lr=lr, rows=rows,
                         branch=branch)


def load_runs(workdirs, baseline=None) -> list:
  """The run directories (and `baseline`) as `compare.Run`s, one arm each.
  With `baseline`, that run is the only scratch arm (others without growth
  are kind "no_growth")."""
  paths = list(dict.fromkeys(
      [pathlib.Path(w) for w in workdirs] + ([pathlib.Path(baseline)] if baseline else [])))
  runs = []
  for path in paths:
    run = load_run(path)
    if baseline is not None and path == pathlib.Path(baseline):
      run = dataclasses.replace(run, kind="scratch")
    elif baseline is not None and run.kind == "scratch":
      run = dataclasses.replace(run, kind="no_growth")
    runs.append(run)
  names = [r.name for r in runs if r.branch is None]
  if len(set(names)) != len(names):
    raise ValueError(f"run directories share a name: {names} (each is one arm)")
  if not any(r.kind == "scratch" for r in runs):
    raise ValueError("pass --baseline: no run without growth among "
                     f"{[str(p) for p in paths]}")
  return runs


def compare(workdirs, baseline=None, *, seconds: bool = False, **options) -> dict:
  """`compare.summarize` over run directories (options: its keywords), with
  the compute frontier (`growjax.frontier`) when some are decay branches,
  and with `seconds` the same reading in steady-state training seconds
  ("frontier_seconds"): fair only when every run had its device to itself,
  on one kind of machine, which the caller knows and run directories don't."""
  runs = load_runs(workdirs, baseline)
  result = compare_lib.summarize(
      runs, baseline=pathlib.Path(baseline).name if baseline else None, **options)
  if frontier_lib.has_branches(runs):
    kw = {k: options[k] for k in ("n_boot", "ci", "rng_seed") if k in options}
    result["frontier"] = frontier_lib.frontier(runs, **kw)
    if seconds:
      untimed = frontier_lib.untimed(runs)
      if untimed:
        raise ValueError(f"--seconds: {untimed} log no train_time (growjax "
                         "before steady-state seconds): no time frontier")
      result["frontier_seconds"] = frontier_lib.frontier(runs, cost="seconds", **kw)
  elif seconds:
    raise ValueError("--seconds reads decayed points: no run is a decay branch")
  return result


def _num(x, fmt=".4f"):
  return "-" if x is None else format(x, fmt)


def format_comparison(result: dict) -> str:
  """The result as tables a reader can check against the JSON."""
  head = (f"baseline (scratch): {result['baseline']};  each curve: local linear fit, "
          f"half-life {result['smoothing']['local_linear_half_life_eval_points']:g} "
          "eval points, then the highest smoothed loss from each point on")
  return "\n".join([head] + _run_lines(result) + _speedup_lines(result)
                   + _delta_lines(result) + _clock_lines(result["wall_clock"])
                   + [f"note: {n}" for n in result["notes"]]
                   + frontier_lines(result.get("frontier")))


def frontier_lines(f: dict | None) -> list:
  """The compute-frontier table (decayed points only), when there is one."""
  if not f:
    return []
  over = (f"{f['ci'] * 100:g}% interval over " + " and ".join(f["ci_over"])
          if f["ci_over"] else "no interval")
  unit = (lambda x: f"{x:.1f} s") if f.get("cost") == "seconds" else (
      lambda x: f"{x:.3e} FLOPs")
  lines = [f"{f['reading']} ({over}):"]
  for s in f["speedups"]:
    head = (f"  level {s['level']:.4f} (scratch {unit(s['level_flops'])})  "
            f"{s['arm']:<20} vs {s['against']:<12}")
    if s["against_flops"] is None:
      lines.append(f"{head} the {s['against']} frontier never reaches it")
    elif not s["reached"]:
      lines.append(f"{head} not reached by the arm's frontier")
    else:
      ci = ("" if s["ci_low"] is None and s["ci_high"] is None else
            f"  [{_num(s['ci_low'], '.2f')}, {_num(s['ci_high'], '.2f')}]")
      mark = {"at_least": ">=", "at_most": "<="}.get(s.get("bound"), "")
      why = {"at_least": "  (a bound: the arm's first decayed point is below the level)",
             "at_most": f"  (a bound: the {s['against']} frontier's first point is "
                        "below the level)",
             "unknown": "  (unknown: both frontiers' first points are below the level)",
             }.get(s.get("bound"), "")
      lines.append(f"{head} {mark}{s['flops_ratio']:.2f}x{ci}  ({unit(s['arm_flops'])} vs "
                   f"{unit(s['against_flops'])}){why}")
  if f.get("deltas"):
    lines.append("final loss minus each frontier's at the arm's final FLOPs "
                 "(negative: the arm is better):")
  for d in f.get("deltas", []):
    head = f"  {d['arm']:<20} vs {d['against']:<12}"
    if d["delta"] is None:
      lines.append(f"{head} the {d['against']} frontier has no point that cheap")
      continue
    ci = ("" if d["ci_low"] is None and d["ci_high"] is None else
          f"  [{_num(d['ci_low'], '+.4f')}, {_num(d['ci_high'], '+.4f')}]")
    lines.append(f"{head} {d['delta']:+.4f}{ci}  at {d['arm_flops']:.3e} FLOPs")
  v = f.get("verdict")
  if v:
    lines.append(f"verdict: {v['answer']}"
                 + (", provisional" if v.get("pending") else "")
                 + (f" (best grown arm: {v['arm']})" if v["arm"] else ""))
    lines += [f"  {r}" for r in v["reasons"]] + [f"  rule: {v['rule']}"]
  return lines + [f"note: {n}" for n in f["notes"]]


def _bounds(entry, fmt, result) -> str:
  if not result["ci_over"]:
    return ""
  return f"  [{_num(entry['ci_low'], fmt)}, {_num(entry['ci_high'], fmt)}]"


def _run_lines(result) -> list:
  lines = [f"{'run':<24} {'kind':<11} {'seed':>4} {'final val loss':>18} "
           f"{'smoothed':>9} {'FLOPs':>10}"]
  for a in result["arms"]:
    se = a["final_val_loss_se"]
    final = f"{a['final_val_loss']:.4f}" + (f" ± {se:.4f}" if se is not None else "")
    lines.append(f"{a['name']:<24} {a['kind']:<11} {str(a['seed']):>4} {final:>18} "
                 f"{a['smoothed_final_val_loss']:>9.4f} {a['train_flops']:>10.3e}")
  return lines


def _speedup_lines(result) -> list:
  if not result["speedups"]:
    return ["no other arm to compare with the baseline"]
  over = (f"{result['ci'] * 100:g}% interval over " + " and ".join(result["ci_over"])
          if result["ci_over"] else "no interval")
  lines = [f"FLOPs to level, scratch / arm ({over}):"]
  for s in result["speedups"]:
    head = f"  level {s['level']:.4f}  {s['arm']:<24}"
    seen = ("" if s["reached_fraction"] is None
            else f", reached in {s['reached_fraction']:.0%} of bootstrap samples")
    bounds = _bounds(s, ".2f", result)
    if s["scratch_flops"] is None:
      lines.append(f"{head} scratch never reaches it")
    elif s["reached"]:
      lines.append(f"{head} {s['flops_ratio']:.2f}x{bounds}  ({s['arm_flops']:.3e} vs "
                   f"{s['scratch_flops']:.3e} FLOPs{seen})")
    else:
      lines.append(f"{head} not reached{bounds} (ratio < {s['ratio_below']:.2f}x{seen})")
  return lines


def _delta_lines(result) -> list:
  if not result["loss_deltas"]:
    return []
  return ["loss at equal FLOPs, arm - scratch:"] + [
      f"  {d['flops']:.3e} FLOPs  {d['arm']:<24} {d['delta']:+.4f}"
      f"{_bounds(d, '+.4f', result)}" for d in result["loss_deltas"]]


def _clock_lines(clock) -> list:
  lines = []
  if clock["levels"]:
    lines.append(f"wall-clock to level, seconds ({clock['basis']}):")
    for w in clock["levels"]:
      ratio = "" if w["time_ratio"] is None else f"  {w['time_ratio']:.2f}x"
      lines.append(f"  level {w['level']:.4f}  {w['arm']:<24} {_num(w['seconds'], '.1f')} "
                   f"vs scratch {_num(w['scratch_seconds'], '.1f')}{ratio}")
  compiles = {k: v for k, v in clock["compile_seconds"].items() if v is not None}
  if compiles:
    lines.append("compile seconds (apart): " + ", ".join(
        f"{k} {v:.1f}" for k, v in compiles.items()))
  return lines


# --- Plots.


def ema(loss_N, half_life: float) -> np.ndarray:
  """Exponential moving average, weights halving every `half_life` points:
  s_0 = y_0, s_i = s_{i-1} + a (y_i - s_{i-1}), a = 1 - 2**(-1 / half_life).
  For the eye only: comparisons read `compare.monotone_curve`."""
  a = 1.0 - 0.5 ** (1.0 / half_life)
  out_N = np.array(loss_N, float)
  for i in range(1, len(out_N)):
    out_N[i] = out_N[i - 1] + a * (out_N[i] - out_N[i - 1])
  return out_N


def _pyplot():
  # matplotlib takes seconds to import and the commands that import report
  # (main, study) plot only at the end.
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def _save(fig, out) -> pathlib.Path:
  out = pathlib.Path(out)
  out.parent.mkdir(parents=True, exist_ok=True)
  fig.tight_layout()
  fig.savefig(out, dpi=110)
  _pyplot().close(fig)
  return out


def scratch_envelope(runs, half_life: float = 0.5):
  """(flops, loss): the lower envelope over the scratch arms' curves (each
  the mean over its seeds of their monotone curves)."""
  arms: dict[str, list] = {}
  for r in runs:
    if r.kind == "scratch" and r.branch is None and any(
        "val_loss" in row for row in r.rows):
      arms.setdefault(r.name, []).append(compare_lib.eval_curve(r))
  curves = []
  for cs in arms.values():
    flops_E = cs[0].flops_E  # seeds share it; an unfinished one is clamped
    mean_E = np.mean([np.interp(flops_E, c.flops_E, compare_lib.monotone_curve(
        c.loss_E, c.flops_E, half_life)) for c in cs], 0)
    curves.append((flops_E, mean_E))
  if not curves:
    return np.array([]), np.array([])
  grid = np.unique(np.concatenate([f for f, _ in curves]))
  loss = np.stack([np.where((grid >= f[0]) & (grid <= f[-1]), np.interp(grid, f, l), np.nan)
                   for f, l in curves])
  return grid, np.nanmin(loss, axis=0)


def plot_study(runs, out, *, levels=(), half_life: float = 0.5,
               frontier: dict | None = None,
               frontier_seconds: dict | None = None,
               best: set[str] | None = None) -> pathlib.Path:
  """Validation loss against FLOPs and against steady-state seconds.

  Every arm in one colour (its seeds alike): logged points faint, the
  monotone curve as a line (solid for scratch, dash-dot for small-only,
  dashed for grown arms), growth points as triangles, decay branches' finals
  as stars; the scratch envelope dashed black; `levels` as dotted lines.
  With `frontier` (growjax.frontier's reading) the trunks are faint and each
  arm's compute frontier is bold, the pooled scratch and small-only
  frontiers in black and grey, and a middle panel zooms in on the decayed
  points, where the frontiers are read (on the full axes they crowd into
  the last few pixels). With `frontier_seconds` (the same reading in
  seconds) a fourth panel zooms in on it below the middle one. `best`: the
  arms the zooms draw bold (a study's picks, `growjax.study.rates`; by
  default `best_per_family`).
  """
  plt = _pyplot()
  ax_zt = None
  if frontier and frontier.get("arms") and frontier_seconds:
    fig, ((ax_f, ax_z), (ax_t, ax_zt)) = plt.subplots(2, 2, figsize=(14, 10))
  elif frontier and frontier.get("arms"):
    fig, (ax_f, ax_z, ax_t) = plt.subplots(1, 3, figsize=(19, 4.8))
  else:
    fig, (ax_f, ax_t) = plt.subplots(1, 2, figsize=(13, 4.8))
    ax_z = None
  colours, labelled = {}, set()
  names = list(dict.fromkeys(r.name for r in runs))
  palette = (["C%d" % i for i in range(10)] if len(names) <= 10 else
             [plt.get_cmap("tab20")(i % 20) for i in range(len(names))])
  styles = {"scratch": "-", "small_only": "-."}  # grown arms dashed
  basis = "time" if frontier_lib.untimed(runs) else "train_time"
  for r in runs:
    if not any("val_loss" in row for row in r.rows):
      continue  # nothing to draw yet (a run stopped before its first evaluation)
    colour = colours.setdefault(r.name, palette[names.index(r.name)])
    c = compare_lib.eval_curve(r)
    if r.branch is not None:  # a decay branch: its final is a decayed point
      ax_f.plot(c.flops_E[-1:], c.loss_E[-1:], "*", color=colour, ms=9,
                mec="black", mew=0.5)
      continue
    mono_E = compare_lib.monotone_curve(c.loss_E, c.flops_E, half_life)
    t = compare_lib.steady_seconds(r, basis)
    seconds_E = np.interp(c.flops_E, t["flops_N"], t["seconds_N"])
    label = None if r.name in labelled else f"{r.name} ({r.kind})"
    labelled.add(r.name)
    for ax, x_E in ((ax_f, c.flops_E), (ax_t, seconds_E)):
      ax.plot(x_E, c.loss_E, "o", color=colour, ms=2.5, alpha=0.35)
      ax.plot(x_E, mono_E, styles.get(r.kind, "--"), color=colour,
              lw=1.0 if frontier else 1.4, alpha=0.4 if frontier else 1.0,
              label=label)
    for g in c.growth_flops:
      if c.flops_E[0] <= g <= c.flops_E[-1]:
        y = np.interp(g, c.flops_E, mono_E)
        ax_f.plot([g], [y], "v", color=colour, ms=7, mec="black", mew=0.5)
        ax_t.plot([np.interp(g, t["flops_N"], t["seconds_N"])], [y], "v",
                  color=colour, ms=7, mec="black", mew=0.5)
  grid, envelope = scratch_envelope(runs, half_life)
  if len(grid) and not frontier:
    ax_f.plot(grid, envelope, "--", color="black", lw=1.2, label="scratch envelope")
  if frontier:
    _frontier_lines(ax_f, frontier, colours, arm_labels=False, group_alpha=0.8)
  if ax_z is not None:
    _frontier_zoom(ax_z, frontier, colours, levels, best=best)
  if ax_zt is not None:
    _frontier_zoom(ax_zt, frontier_seconds, colours, levels, seconds=True, best=best)
  for level in levels:
    for ax in (ax_f, ax_t):
      ax.axhline(level, color="grey", ls=":", lw=0.8)
  ax_f.set_xscale("log")
  _flops_ticks(ax_f)
  ax_f.set_xlabel("training FLOPs")
  ax_t.set_xlabel("steady-state training seconds" if basis == "train_time"
                  else "wall-clock seconds (compiles included)")
  for ax in (ax_f, ax_t):
    ax.set_ylabel("validation loss (nats/token)")
    ax.grid(alpha=0.3)
  ax_f.legend(fontsize=7)
  ax_f.set_title("loss vs. compute (lines: smoothed, monotone; v: growth; "
                 "*: decayed branches" + ("; bold: frontiers" if frontier else "")
                 + ("; dotted: levels)" if len(levels) else ")"), fontsize=8)
  ax_t.set_title("loss vs. time", fontsize=10)
  return _save(fig, out)


def best_per_family(frontier: dict) -> set[str]:
  """Each arm family's best rate: the arm with the lowest loss at its last
  decayed point (its seeds' mean at its final FLOPs), more seeds breaking a
  tie. A family is an arm's name before `_lr` (stack_lr0.002 -> stack), not
  its kind: msg_late_depth and flm grow by msg too."""
  best = {}
  for arm in frontier.get("arms", []):
    if arm["points"]:
      family = frontier_lib.family(arm["arm"])
      key = (max(arm["points"], key=lambda p: p["flops"])["loss"], -len(arm["seeds"]))
      if family not in best or key < best[family][0]:
        best[family] = (key, arm["arm"])
  return {name for _, name in best.values()}


def _frontier_lines(ax, frontier: dict, colours: dict, *, arm_labels: bool,
                    group_alpha: float, only: set[str] | None = None) -> None:
  """Each arm's compute frontier bold in its colour (with `only`, those arms
  bold and the rest thin and faint), the pooled scratch and small-only
  frontiers in black and grey."""
  for arm in frontier.get("arms", []):
    on = sorted((p["flops"], p["loss"]) for p in arm["points"] if p["on_frontier"])
    if arm["arm"] in colours and on:
      bold = only is None or arm["arm"] in only
      ax.plot(*zip(*on), "-s" if bold else "-", color=colours[arm["arm"]],
              lw=2.4 if bold else 0.8, ms=4, alpha=1.0 if bold else 0.3,
              label=arm["arm"] if arm_labels and bold else None)
  for group, colour in (("scratch", "black"), ("small_only", "grey")):
    on = sorted((p["flops"], p["loss"]) for p in frontier.get("groups", {}).get(group, [])
                if p["on_frontier"])
    if on:
      ax.plot(*zip(*on), "-", color=colour, lw=3.2, alpha=group_alpha,
              label=f"{group} frontier")


def _frontier_zoom(ax, frontier: dict, colours: dict, levels,
                   seconds: bool = False, best: set[str] | None = None) -> None:
  """Every arm's decayed points (its seeds' mean at each) and the frontiers
  (`_frontier_lines`), with the levels, on axes fitted to the decayed
  points. Where an arm swept its rate, only its best arm's frontier is bold
  and labelled (`best_per_family`): nineteen bold lines read as none.
  `seconds`: the frontier is in steady-state seconds (a linear axis)."""
  flops, losses = [], []
  for arm in frontier["arms"]:
    pts = [(p["flops"], p["loss"]) for p in arm["points"]]
    ax.plot(*zip(*pts), "o", color=colours.get(arm["arm"], "C7"), ms=3, alpha=0.5)
    flops += [f for f, _ in pts]
    losses += [l for _, l in pts]
  best = best_per_family(frontier) if best is None else best
  swept = len(best) < len(frontier["arms"])
  _frontier_lines(ax, frontier, colours, arm_labels=True, group_alpha=0.35,
                  only=best if swept else None)
  for level in levels:
    ax.axhline(level, color="grey", ls=":", lw=0.8)
  if flops:
    span = max(max(losses) - min(losses), 0.01)  # one point: still a range
    ax.set_xlim(min(flops) / 1.08, max(flops) * 1.08)
    ax.set_ylim(min(losses) - 0.05 * span, max(losses) + 0.05 * span)
  if seconds:
    ax.set_xlabel("steady-state training seconds")
  else:
    ax.set_xscale("log")
    _flops_ticks(ax)
    ax.set_xlabel("training FLOPs")
  ax.set_ylabel("decayed validation loss (nats/token)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  ax.set_title(("the frontiers in seconds" if seconds else "the frontiers")
               + ": decayed points only (o: an arm's point, its seeds' mean; "
               "bold: " + ("each arm's best rate's frontier" if swept
                           else "its frontier") + ")", fontsize=8)


def _flops_ticks(ax) -> None:
  """A log FLOPs axis labelled at 1, 2 and 5 times each power of ten and
  nowhere else: matplotlib's minor labels overlap on a span under a decade."""
  import matplotlib.ticker as ticker  # pylint: disable=g-import-not-at-top

  def label(x, _):
    exponent = math.floor(math.log10(x) + 1e-9)
    return f"{x / 10 ** exponent:.0f}e{exponent}"

  ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
  ax.xaxis.set_major_formatter(ticker.FuncFormatter(label))
  ax.xaxis.set_minor_formatter(ticker.NullFormatter())


def plot_run(workdir, out, *, train_half_life: float | None = None) -> pathlib.Path:
  """One run: its training loss (raw, and an EMA of half-life
  `train_half_life` logged rows, by default 1/50 of them but at least 1) and
  its validation loss with a band of ± one standard error, against FLOPs;
  growth dotted; the learning rate on a second axis."""
  run = load_run(workdir)
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(8, 4.8))
  train = [r for r in run.rows if "event" not in r]
  if train:
    flops_N = np.array([r["train_flops"] for r in train], float)
    loss_N = np.array([r["loss"] for r in train], float)
    train_half_life = train_half_life or max(1.0, len(loss_N) / 50)
    ax.plot(flops_N, loss_N, color="C0", alpha=0.25, lw=0.8)
    ax.plot(flops_N, ema(loss_N, train_half_life), color="C0", lw=1.5,
            label=f"training loss (EMA, half-life {train_half_life:.3g} log lines)")
    if all("lr" in r for r in train):  # the schedule, on its own axis
      ax_lr = ax.twinx()
      ax_lr.plot(flops_N, [r["lr"] for r in train], color="C2", lw=1, alpha=0.8)
      ax_lr.set_ylabel("learning rate", color="C2")
      ax_lr.tick_params(axis="y", colors="C2")
  title = run.name
  if any("val_loss" in r for r in train):
    c = compare_lib.eval_curve(run)
    se_E = c.se_E
    if se_E is None and c.chunks_EK is not None and c.chunks_EK.shape[1] > 1:
      se_E = c.chunks_EK.std(axis=1, ddof=1) / math.sqrt(c.chunks_EK.shape[1])
    ax.plot(c.flops_E, c.loss_E, "o-", color="C1", ms=3, label="validation loss")
    if se_E is not None:
      ax.fill_between(c.flops_E, c.loss_E - se_E, c.loss_E + se_E, color="C1",
                      alpha=0.3, lw=0, label="± 1 s.e. (validation set)")
    else:
      title += " (no validation s.e. in the metrics)"
    for g in c.growth_flops:
      ax.axvline(g, color="grey", ls=":", lw=1)
  ax.set_xlabel("training FLOPs")
  ax.set_ylabel("loss (nats/token)")
  ax.set_title(title + "  (dotted: growth)", fontsize=10)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  return _save(fig, out)


def plot(workdirs, out, **options) -> pathlib.Path:
  """`plot_study` over run directories."""
  return plot_study([load_run(w) for w in workdirs], out, **options)


def main(argv=None):
  parser = argparse.ArgumentParser(prog="python -m growjax.report",
                                   description=__doc__.splitlines()[2])
  parser.add_argument("runs", nargs="+", help="run workdirs")
  parser.add_argument("--baseline", help="the from-scratch run's workdir")
  parser.add_argument("--seconds", action="store_true",
                      help="also read the decayed points in steady-state "
                           "training seconds (only fair when every run had "
                           "its device to itself, on one kind of machine)")
  parser.add_argument("--out", default=None,
                      help="PNG path (default: FIRST_RUN/../report.png); the "
                           "JSON goes beside it")
  args = parser.parse_args(argv)
  for w in args.runs + ([args.baseline] if args.baseline else []):
    if not (pathlib.Path(w) / "metrics.jsonl").exists():
      print(f"error: {w}: no metrics.jsonl (not a growjax run directory)",
            file=sys.stderr)
      return 2
  out = pathlib.Path(args.out or pathlib.Path(args.runs[0]).parent / "report.png")
  try:
    runs = load_runs(args.runs, args.baseline)
    result = compare(args.runs, args.baseline, seconds=args.seconds)
    png = plot_study(runs, out, levels=result["levels"],
                     frontier=result.get("frontier"),
                     frontier_seconds=result.get("frontier_seconds"))
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(format_comparison(result))
  if "frontier_seconds" in result:
    print("\n".join(frontier_lines(result["frontier_seconds"])))
  print(f"plot: {png}")
  out.with_suffix(".json").write_text(json.dumps(result, indent=1, allow_nan=False))
  return 0


if __name__ == "__main__":
  sys.exit(main())
