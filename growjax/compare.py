r"""How runs are compared: compute to reach a loss, read honestly.

A speedup claim ("growth reaches loss L with k times fewer FLOPs") is read
off validation curves. Raw curves are noisy, so reading the first point that
dips below L charges a run for its luckiest evaluation. Here every run, the
from-scratch one included, is read the same way:

1. **Smoothed curve.** At each evaluation point, a local linear fit: the
   line fitted to the run's validation losses against FLOPs by weighted least
   squares, point j weighing 2**(-|i - j| / half_life) at point i, with
   `half_life` in evaluation points (default 0.5: neighbours weigh 1/4, the
   next 1/16). The unit is evaluation points, not FLOPs, because the noise of
   a validation loss comes from the recent training trajectory, whose length
   scale is optimizer steps (evaluations come every fixed number of steps; a
   window in FLOPs would average a grown run's cheap early stages over many
   more updates than the scratch run's). Why not an EMA: an EMA lags a
   falling curve by a fixed number of evaluations, which adds about the same
   FLOPs d to every charge near the end of a grown and a scratch run and
   shrinks every ratio towards 1, (S + d) / (A + d). In simulations with a
   true ratio of 2 (three curve shapes, 20-40 evaluations, 2 seeds, 8 chunks,
   30 trials each), an EMA of half-life 1 read 1.73-1.93 on average and its
   95% intervals held 2 in 31% of trials; this fit read 1.92-1.99 (1.77 +-
   0.39 at a level where the curves had flattened) and held 2 in 93%. It has
   no lag (a straight line comes back unchanged, at the ends too); its bias
   comes from curvature only, hence the short half-life.
2. **Monotone curve.** At each point, the highest smoothed loss from that
   point to the end of the run: the level the run stays at or below from then
   on. We prefer this to a running minimum because a running minimum keeps
   any dip forever (an early dip deep enough to pull the smoothed curve
   under a level would be charged at the dip, the luckiest evaluation again)
   and credits losses that a growth step later throws away. A run earns a
   level by staying there. Both envelopes are monotone; this one errs against
   every run, scratch included.
3. **Charge.** A run's FLOPs to level L: the first FLOPs at which its monotone
   curve is at or below L, interpolated linearly between evaluation points;
   none ("not reached") if it never is. An arm (a configuration, run with
   several seeds) is read on the mean over seeds of its runs' monotone curves
   (the seeds evaluate at the same FLOPs).
4. **Levels.** The best scratch arm is the scratch arm with the lowest mean
   monotone final loss. The levels are its monotone mean curve's loss at
   `level_fractions` of its final FLOPs (by default 1, 1/2, 1/4: its final
   loss and two above it), so the scratch arm is charged about those
   fractions of its FLOPs.
5. **Ratios.** flops_ratio = scratch FLOPs to L / arm FLOPs to L (above 1:
   the arm is cheaper); delta = arm loss - scratch loss on the monotone curves
   at equal FLOPs (below 0: the arm is better), at `flops_fractions` of the
   FLOPs both cover.
6. **Confidence intervals.** Percentile bootstrap, `n_boot` samples. Each
   sample resamples, with replacement, the seeds of each arm (independently:
   arms are separate runs) and the K validation chunks (`val_chunks` of the
   evaluation rows; one draw of chunk indices for all runs and all points,
   because every run is scored on the same chunks: a paired bootstrap). The
   levels are recomputed in every sample from the resampled scratch arm; the
   best scratch arm is chosen once, on the full data. A sample in which an
   arm never reaches a level ranks below every sample in which it does, and
   the interval uses the outer order statistics, so an interval is widened,
   never narrowed, by not-reached samples; a bound that falls among them is
   none. One seed and no chunks: no interval, and the result says so.
7. **Wall-clock.** Steady-state seconds: `train_time` (seconds inside train
   steps) plus the `seconds` of each growth so far; `compile_time` is shown
   apart. Old metrics without them fall back to `time` (compiles included),
   and the result says so.

This is the *single-curve* reading, kept for runs without decay branches
and labelled so: below a run's final FLOPs its curve is not decayed (a cosine
run halfway is not a run decayed at half the budget), so an intermediate ratio
is not a speedup. Runs that are decay branches (`Run.branch`) are left out
here: `growjax.frontier` reads them, decayed points only, the speedups to
quote.

Pure numpy, no JAX: `summarize` is what `growjax.report` and the growth-study
command call. Arrays carry their shapes in their names: E evaluation points,
K validation chunks, S seeds, N logged training rows, and a leading `x` for
any batch of bootstrap samples.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from growjax import checks


@dataclasses.dataclass(frozen=True)
class Run:
  """One training run: `rows` are its metrics.jsonl lines.

  Runs that share a `name` are the seeds of one arm (one configuration).
  `kind` is "scratch" for the final shape trained from scratch, else the
  growth method or control ("msg", "stack", "hyperclone", "small_only", ...).
  """
  name: str
  kind: str
  seed: int | None
  lr: float | None
  rows: list
  # A decay branch of the arm's run with this seed (e.g. "decay_at 0.5"):
  # read only on the compute frontier (growjax.frontier), never as a curve.
  branch: str | None = None


# --- Reading metrics rows.


@dataclasses.dataclass(frozen=True)
class Curve:
  """A run's evaluation rows as arrays (chunks_EK None in old metrics)."""
  flops_E: np.ndarray
  loss_E: np.ndarray
  se_E: np.ndarray | None
  chunks_EK: np.ndarray | None
  growth_flops: tuple


def eval_curve(run: Run) -> Curve:
  """The validation curve of `run` and the FLOPs at which it grew."""
  train = [r for r in run.rows if "event" not in r]
  val = [r for r in train if "val_loss" in r]
  if not val:
    raise ValueError(f"{run.name} (seed {run.seed}): no validation loss in its "
                     "metrics")
  flops_E = np.array([r["train_flops"] for r in val], float)
  if np.any(np.diff(flops_E) <= 0):
    raise ValueError(f"{run.name} (seed {run.seed}): evaluation FLOPs do not "
                     "increase (metrics of two runs in one file?)")
  se_E = (np.array([r["val_loss_se"] for r in val], float)
          if all("val_loss_se" in r for r in val) else None)
  chunks = [r.get("val_chunks") for r in val]
  chunks_EK = None
  if all(chunks) and len({len(c) for c in chunks}) == 1:
    chunks_EK = np.array(chunks, float)
  growth = []
  for event in (r for r in run.rows if r.get("event") == "growth"):
    before = [r["train_flops"] for r in train if r["step"] <= event["step"]]
    growth.append(float(before[-1]) if before else 0.0)
  return Curve(flops_E, np.array([r["val_loss"] for r in val], float), se_E,
               chunks_EK, tuple(growth))


def final_se(curve: Curve) -> float | None:
  """Standard error of the last validation loss: logged, else from chunks."""
  if curve.se_E is not None:
    return float(curve.se_E[-1])
  if curve.chunks_EK is not None and curve.chunks_EK.shape[1] > 1:
    c_K = curve.chunks_EK[-1]
    return float(c_K.std(ddof=1) / math.sqrt(len(c_K)))
  return None


def steady_seconds(run: Run, basis: str | None = None) -> dict:
  """Training seconds against FLOPs, compiles apart.

  Returns flops_N, seconds_N, compile (the last compile_time, or None) and
  basis: "train_time" (train_time plus the `seconds` of every growth logged
  before the row) when every row has them, else "time" (or as asked).
  """
  train = [r for r in run.rows if "event" not in r]
  growth = [r for r in run.rows if r.get("event") == "growth"]
  steady = all("train_time" in r for r in train) and all(
      "seconds" in g for g in growth)
  basis = basis or ("train_time" if steady else "time")
  if basis == "train_time" and not steady:
    raise ValueError(f"{run.name} (seed {run.seed}): no train_time in its metrics")
  seconds = [r["train_time"] + sum(g["seconds"] for g in growth if g["step"] < r["step"])
             if basis == "train_time" else r["time"] for r in train]
  return {"flops_N": np.array([r["train_flops"] for r in train], float),
          "seconds_N": np.array(seconds, float),
          "compile": train[-1].get("compile_time") if train else None,
          "basis": basis}


# --- The curve every run is read on.


def local_linear(loss_xE: np.ndarray, flops_E, half_life: float) -> np.ndarray:
  """At each evaluation point i, the value at i of the line fitted to all
  points by weighted least squares against FLOPs, point j weighing
  2**(-|i - j| / half_life); half_life 0 returns the input.

  A line through the data is returned unchanged, at the ends too, so the
  smoothed curve has no lag; its only bias is the curve's curvature.
  """
  loss_xE = np.asarray(loss_xE, float)
  n = loss_xE.shape[-1]
  if half_life == 0 or n < 3:
    return loss_xE.copy()
  flops_E = np.asarray(flops_E, float)
  x_E = (flops_E - flops_E[0]) / (flops_E[-1] - flops_E[0])  # well scaled
  i_E = np.arange(n)
  w_EE = 0.5 ** (np.abs(i_E[:, None] - i_E[None, :]) / half_life)
  d_EE = x_E[None, :] - x_E[:, None]  # d[i, j] = x_j - x_i
  s0_E, s1_E, s2_E = w_EE.sum(1), (w_EE * d_EE).sum(1), (w_EE * d_EE**2).sum(1)
  t0_xE, t1_xE = loss_xE @ w_EE.T, loss_xE @ (w_EE * d_EE).T
  return (s2_E * t0_xE - s1_E * t1_xE) / (s0_E * s2_E - s1_E**2)


def stays_below(loss_xE: np.ndarray) -> np.ndarray:
  """m_i = max_{j >= i} loss_j: what the run stays at or below from i on."""
  return np.maximum.accumulate(loss_xE[..., ::-1], axis=-1)[..., ::-1]


def monotone_curve(loss_xE: np.ndarray, flops_E, half_life: float) -> np.ndarray:
  """The curve a run is read on: `stays_below(local_linear(...))`."""
  return stays_below(local_linear(loss_xE, flops_E, half_life))


def flops_to_level(flops_E, curve_xE, level_x) -> np.ndarray:
  """First FLOPs at which a non-increasing curve is at or below its level,
  linear between evaluation points; nan where it never is (the first point
  already below charges that point's FLOPs: nothing is known before it).
  Within 1e-9 nats counts as at the level: float rounding, not loss."""
  flops_E = np.asarray(flops_E, float)
  curve_xE = np.asarray(curve_xE, float)
  level_x = np.asarray(level_x, float)
  below_xE = curve_xE <= level_x[..., None] + 1e-9
  i_x = np.argmax(below_xE, axis=-1)
  j_x = np.maximum(i_x - 1, 0)
  y1 = np.take_along_axis(curve_xE, i_x[..., None], -1)[..., 0]
  y0 = np.take_along_axis(curve_xE, j_x[..., None], -1)[..., 0]
  gap = np.where(i_x > 0, y0 - y1, 1.0)
  frac = np.where(i_x > 0, np.clip((y0 - level_x) / np.where(gap > 0, gap, 1.0), 0, 1), 0.0)
  at_x = flops_E[j_x] + frac * (flops_E[i_x] - flops_E[j_x])
  return np.where(below_xE.any(axis=-1), at_x, np.nan)


def loss_at_flops(flops_E, curve_xE, at: float) -> np.ndarray:
  """The curve at FLOPs `at`, linear between evaluation points (outside the
  evaluated range: its end point, never an extrapolation)."""
  flops_E = np.asarray(flops_E, float)
  at = float(np.clip(at, flops_E[0], flops_E[-1]))
  if len(flops_E) == 1:
    return np.asarray(curve_xE, float)[..., 0]
  i = int(np.clip(np.searchsorted(flops_E, at), 1, len(flops_E) - 1))
  w = (at - flops_E[i - 1]) / (flops_E[i] - flops_E[i - 1])
  return curve_xE[..., i - 1] * (1 - w) + curve_xE[..., i] * w


# --- Bootstrap intervals.


def interval(samples_x, ci: float) -> tuple:
  """(low, high) percentile bounds of bootstrap samples, nan = not reached,
  ranked below every reached sample; outer order statistics (no
  interpolation); a bound among the not-reached samples is None."""
  s_x = np.where(np.isnan(samples_x), -np.inf, samples_x)
  tail = (1.0 - ci) / 2
  low = float(np.quantile(s_x, tail, method="lower"))
  high = float(np.quantile(s_x, 1 - tail, method="higher"))
  return (low if np.isfinite(low) else None, high if np.isfinite(high) else None)


def _chunk_draws(curves: list, n_boot: int, rng):
  """Per run, its validation losses under `n_boot` draws of chunk indices
  shared by all runs ([n_boot, E] each); else (None, why not)."""
  ks = {c.chunks_EK.shape[1] if c.chunks_EK is not None else None for c in curves}
  if None in ks:
    return None, "some runs log no val_chunks"
  if len(ks) > 1:
    return None, f"runs log different numbers of val_chunks {sorted(ks)}"
  (k,) = ks
  idx_BK = rng.integers(0, k, size=(n_boot, k))
  return [c.chunks_EK[:, idx_BK].mean(-1).T for c in curves], None


# --- The comparison.


def _nan_to_none(x):
  x = float(x)
  return None if math.isnan(x) else x


def _group(runs) -> dict:
  """{arm name: [runs]}, checked: one kind per arm, distinct seeds."""
  arms: dict[str, list] = {}
  for run in runs:
    if not isinstance(run.kind, str) or not run.kind:
      raise ValueError(f"{run.name}: kind {run.kind!r} is not a name")
    arms.setdefault(run.name, []).append(run)
  for name, members in arms.items():
    kinds = {r.kind for r in members}
    if len(kinds) > 1:
      raise ValueError(f"arm {name}: its runs have different kinds {sorted(kinds)}")
    seeds = [r.seed for r in members]
    if len(set(seeds)) != len(seeds):
      raise ValueError(f"arm {name}: seeds repeat: {seeds}")
  return arms


def _arm_flops(name, curves) -> np.ndarray:
  """The FLOPs at which an arm's seeds all evaluate."""
  flops_E = curves[0].flops_E
  for c in curves[1:]:
    if c.flops_E.shape != flops_E.shape or not np.allclose(c.flops_E, flops_E,
                                                           rtol=1e-6):
      raise ValueError(f"arm {name}: its seeds are evaluated at different FLOPs "
                       "(unfinished runs?)")
  return flops_E


def _read(*, loss: dict, seeds: dict, arm_flops: dict, baseline: str, levels,
          level_fractions, flops_fractions, half_life) -> dict:
  """Every statistic, for a batch x of samples (x = 1: the point estimate).

  loss[name] is [S, x, E] validation losses, seeds[name] an [x, S] choice of
  seed indices. Returns levels_xL, charge[name] ([x, L] FLOPs, nan = not
  reached), curve[name] ([x, E] monotone mean curve) and delta[name]
  ({flops: [x] arm - scratch loss}).
  """
  curve = {}
  for name, loss_SxE in loss.items():
    mono_SxE = monotone_curve(loss_SxE, arm_flops[name], half_life)
    idx_xS = seeds[name]
    x = np.arange(idx_xS.shape[0])[:, None]
    curve[name] = mono_SxE[idx_xS, x].mean(axis=1)  # [x, E]
  base_flops_E, base_xE = arm_flops[baseline], curve[baseline]
  if levels is None:
    levels_xL = np.stack([loss_at_flops(base_flops_E, base_xE, f * base_flops_E[-1])
                          for f in level_fractions], axis=-1)
  else:
    levels_xL = np.broadcast_to(np.asarray(levels, float), (base_xE.shape[0], len(levels)))
  charge = {name: np.stack([flops_to_level(arm_flops[name], curve[name], levels_xL[:, l])
                            for l in range(levels_xL.shape[1])], axis=-1)
            for name in curve}
  delta = {}
  for name in curve:
    lo = max(arm_flops[name][0], base_flops_E[0])
    hi = min(arm_flops[name][-1], base_flops_E[-1])
    points = [f * hi for f in flops_fractions if f * hi >= lo]
    delta[name] = {p: loss_at_flops(arm_flops[name], curve[name], p)
                   - loss_at_flops(base_flops_E, base_xE, p) for p in points}
  return {"levels_xL": levels_xL, "charge": charge, "curve": curve, "delta": delta}


def _check_options(half_life, n_boot, ci, level_fractions, flops_fractions, levels):
  checks.number("half_life", half_life, low=0)
  checks.integer("n_boot", n_boot, low=0)
  checks.number("ci", ci, low=0, low_open=True, high=0.999)
  for field, values in (("level_fractions", level_fractions),
                        ("flops_fractions", flops_fractions)):
    if not values:
      raise ValueError(f"{field}: {values!r} is empty")
    for i, f in enumerate(values):
      checks.number(f"{field}[{i}]", f, low=0, low_open=True, high=1)
  if levels is not None:
    if not levels:
      raise ValueError(f"levels: {levels!r} is empty")
    for i, level in enumerate(levels):
      checks.number(f"levels[{i}]", level)


def summarize(runs, *, baseline: str | None = None, levels=None,
              level_fractions=(1.0, 0.5, 0.25), flops_fractions=(0.25, 0.5, 1.0),
              half_life: float = 0.5, n_boot: int = 1000, ci: float = 0.95,
              rng_seed: int = 0) -> dict:
  """Compares arms against the best scratch arm (definitions: module doc).

  Args:
    runs: `Run`s; those sharing a name are one arm's seeds.
    baseline: the scratch arm to compare against (default: the scratch arm
      with the lowest mean monotone final loss).
    levels: loss levels in nats (default: from `level_fractions`).
    level_fractions: fractions of the baseline's final FLOPs whose loss on
      its monotone curve are the levels.
    flops_fractions: fractions of the FLOPs both runs cover, where the loss
      difference is read.
    half_life: of the local linear fit's weights, in evaluation points (0:
      no smoothing).
    n_boot: bootstrap samples (0: no intervals).
    ci: confidence level of the intervals.
    rng_seed: of the bootstrap's random draws.

  Returns:
    A JSON-ready dict: "reading" (what the single-curve figures are),
    "baseline", "levels", "smoothing", "ci", "ci_over",
    "n_boot", "notes"; "arms" (one entry per run: name, kind, seed, lr,
    final_val_loss, final_val_loss_se, train_flops, smoothed_final_val_loss,
    flops_to_level per level, growth_flops); "arm_stats" (per arm: kind,
    seeds, mean smoothed final loss); "speedups" ([{level, arm, flops_ratio,
    ci_low, ci_high, reached, reached_fraction, arm_flops, scratch_flops,
    ratio_below}]); "loss_deltas" ([{flops, arm, delta, ci_low, ci_high}]);
    "wall_clock" ({basis, compile_seconds: {arm: s}, levels: [{level, arm,
    seconds, scratch_seconds, time_ratio}]}).
  """
  _check_options(half_life, n_boot, ci, level_fractions, flops_fractions, levels)
  runs = list(runs)  # decay branches are growjax.frontier's, not read here
  decayed = [r for r in runs if r.branch is not None]
  arms = _group([r for r in runs if r.branch is None])
  curves = {id(r): eval_curve(r) for m in arms.values() for r in m}
  arm_flops = {name: _arm_flops(name, [curves[id(r)] for r in members])
               for name, members in arms.items()}
  finals = {name: float(np.mean([monotone_curve(curves[id(r)].loss_E, arm_flops[name],
                                                half_life)[-1] for r in members]))
            for name, members in arms.items()}
  baseline = _pick_baseline(arms, finals, baseline)
  spec = dict(arm_flops=arm_flops, baseline=baseline, levels=levels,
              level_fractions=level_fractions, flops_fractions=flops_fractions,
              half_life=half_life)

  # The point estimate: every seed once, the logged validation losses.
  point = _read(loss={n: np.stack([curves[id(r)].loss_E for r in m])[:, None]
                      for n, m in arms.items()},
                seeds={n: np.arange(len(m))[None] for n, m in arms.items()}, **spec)
  boot, ci_over, notes = _bootstrap(arms, curves, spec, n_boot, rng_seed)
  if levels is not None and np.isnan(point["charge"][baseline][0]).any():
    notes.append(f"the baseline {baseline} never reaches some of the given levels: "
                 "no ratio there")
  if any(curves[id(r)].se_E is None for m in arms.values() for r in m):
    notes.append("some runs log no val_loss_se: their final s.e. comes from "
                 "val_chunks, else is null")
  out = {
      "reading": "single curve: each run's smoothed, monotone validation "
                 "curve; its intermediate points are not decayed, so below "
                 "its final FLOPs a ratio is not a speedup (see frontier)",
      "baseline": baseline,
      "levels": [float(v) for v in point["levels_xL"][0]],
      "level_fractions": None if levels is not None else list(level_fractions),
      "smoothing": {"local_linear_half_life_eval_points": half_life,
                    "monotone": "stays_below: highest smoothed loss from each "
                                "point to the end of the run"},
      "ci": ci, "ci_over": ci_over, "n_boot": n_boot if boot else 0,
      "notes": notes,
      "arms": _run_entries(arms, curves, point, half_life),
      "arm_stats": [{"arm": n, "kind": m[0].kind, "seeds": [r.seed for r in m],
                     "smoothed_final_val_loss": finals[n]} for n, m in arms.items()],
      "speedups": _speedups(arms, baseline, arm_flops, point, boot, ci),
      "loss_deltas": _deltas(arms, baseline, point, boot, ci),
      "wall_clock": _wall_clock(arms, baseline, point, notes),
  }
  if decayed:
    notes.append(f"{len(decayed)} decay branches left out of this reading "
                 "(growjax.frontier reads them)")
  return out


def _pick_baseline(arms, finals, baseline) -> str:
  """`baseline` checked, else the scratch arm of lowest mean final loss."""
  if baseline is not None:
    if baseline not in arms:
      raise ValueError(f"baseline: {baseline!r} is not one of {list(arms)}")
    return baseline
  scratch = [n for n, members in arms.items() if members[0].kind == "scratch"]
  if not scratch:
    raise ValueError("no scratch arm among the runs (kind \"scratch\")")
  return min(scratch, key=finals.get)


def _bootstrap(arms, curves, spec, n_boot, rng_seed):
  """(samples of every statistic or None, what they resample, notes)."""
  rng = np.random.default_rng(rng_seed)
  ordered = [r for m in arms.values() for r in m]
  draws, no_chunks = _chunk_draws([curves[id(r)] for r in ordered], n_boot, rng)
  multi_seed = any(len(m) > 1 for m in arms.values())
  ci_over = ((["seeds"] if multi_seed else []) + (["validation chunks"] if draws else [])
             if n_boot else [])
  notes = []
  if n_boot and not ci_over:
    notes.append(f"no confidence intervals: one seed per arm and {no_chunks}")
  elif n_boot and not draws:
    notes.append(f"intervals cover seeds only: {no_chunks}")
  elif n_boot and not multi_seed:
    notes.append("intervals cover validation chunks only: one seed per arm, "
                 "so seed-to-seed variation is left out")
  if not ci_over:
    return None, ci_over, notes
  by_run = dict(zip(map(id, ordered), draws)) if draws else {}

  def losses(r):  # [n_boot, E]: resampled chunks, else the logged losses
    loss_E = curves[id(r)].loss_E
    return by_run.get(id(r), np.broadcast_to(loss_E, (n_boot, len(loss_E))))

  boot = _read(loss={n: np.stack([losses(r) for r in m]) for n, m in arms.items()},
               seeds={n: rng.integers(0, len(m), size=(n_boot, len(m)))
                      for n, m in arms.items()}, **spec)
  return boot, ci_over, notes


def _run_entries(arms, curves, point, half_life) -> list:
  """Per run: the issue's result-schema fields and its own FLOPs to level."""
  out = []
  levels_L = point["levels_xL"][0]
  for name, members in arms.items():
    for r in members:
      c = curves[id(r)]
      mono_E = monotone_curve(c.loss_E, c.flops_E, half_life)
      train = [row for row in r.rows if "event" not in row]
      out.append({
          "name": name, "kind": r.kind, "seed": r.seed, "lr": r.lr,
          "final_val_loss": float(c.loss_E[-1]), "final_val_loss_se": final_se(c),
          "train_flops": float(train[-1]["train_flops"]),
          "smoothed_final_val_loss": float(mono_E[-1]),
          "flops_to_level": [_nan_to_none(v) for v in flops_to_level(
              c.flops_E, np.broadcast_to(mono_E, (len(levels_L), len(mono_E))),
              levels_L)],
          "growth_flops": list(c.growth_flops)})
  return out


def _ratio(base_x, arm_x):
  """scratch / arm FLOPs; nan when the arm never reaches the level (the ratio
  is then lower than any reached one), inf when only scratch never does."""
  ratio_x = base_x / arm_x
  return np.where(np.isnan(base_x) & ~np.isnan(arm_x), np.inf, ratio_x)


def _speedups(arms, baseline, arm_flops, point, boot, ci) -> list:
  out = []
  levels_L = point["levels_xL"][0]
  base = point["charge"][baseline][0]
  for name in arms:
    if name == baseline:
      continue
    arm = point["charge"][name][0]
    for l, level in enumerate(levels_L):
      reached, base_reached = not math.isnan(arm[l]), not math.isnan(base[l])
      entry = {"level": float(level), "arm": name,
               "flops_ratio": float(base[l] / arm[l]) if reached and base_reached else None,
               "ci_low": None, "ci_high": None, "reached": reached,
               "reached_fraction": None, "arm_flops": _nan_to_none(arm[l]),
               "scratch_flops": _nan_to_none(base[l]),
               # not reached: it would need more than all its FLOPs
               "ratio_below": (float(base[l] / arm_flops[name][-1])
                               if base_reached and not reached else None)}
      if boot is not None:
        arm_x = boot["charge"][name][:, l]
        entry["ci_low"], entry["ci_high"] = interval(
            _ratio(boot["charge"][baseline][:, l], arm_x), ci)
        entry["reached_fraction"] = float(np.mean(~np.isnan(arm_x)))
      out.append(entry)
  return out


def _deltas(arms, baseline, point, boot, ci) -> list:
  out = []
  for name in arms:
    if name == baseline:
      continue
    for flops, d_x in point["delta"][name].items():
      entry = {"flops": float(flops), "arm": name, "delta": float(d_x[0]),
               "ci_low": None, "ci_high": None}
      if boot is not None:
        entry["ci_low"], entry["ci_high"] = interval(boot["delta"][name][flops], ci)
      out.append(entry)
  return out


def _wall_clock(arms, baseline, point, notes) -> dict:
  """Steady-state seconds to each level (mean over an arm's seeds) and their
  ratio scratch / arm; compile seconds apart. Point estimates only."""
  runs = [r for m in arms.values() for r in m]
  basis = ("train_time" if all(steady_seconds(r)["basis"] == "train_time" for r in runs)
           else "time")
  if basis == "time":
    notes.append("some runs log no train_time (or growth seconds): wall-clock "
                 "uses `time`, compiles included, for every run")
  timing = {n: [steady_seconds(r, basis) for r in m] for n, m in arms.items()}

  def seconds_at(name, flops):
    if math.isnan(flops):
      return None
    return float(np.mean([np.interp(flops, t["flops_N"], t["seconds_N"])
                          for t in timing[name]]))

  entries = []
  for name in arms:
    if name == baseline:
      continue
    for l, level in enumerate(point["levels_xL"][0]):
      arm_s = seconds_at(name, point["charge"][name][0][l])
      base_s = seconds_at(baseline, point["charge"][baseline][0][l])
      entries.append({"level": float(level), "arm": name, "seconds": arm_s,
                      "scratch_seconds": base_s,
                      "time_ratio": base_s / arm_s if arm_s and base_s else None})
  compile_s = {}
  for name, ts in timing.items():
    values = [t["compile"] for t in ts]
    compile_s[name] = None if None in values else float(np.mean(values))
  return {"basis": basis, "compile_seconds": compile_s, "levels": entries}
