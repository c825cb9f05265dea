r"""The compute frontier: the lowest *decayed* loss reached at each FLOP count.

A point partway down one run's curve is not what that run's compute buys: its
rate has not decayed there, and a run decayed at that budget ends lower (the
objection of "No Train No Gain", Kaddour et al. 2023, arXiv 2307.06440). So
speedups are read off decayed points only: each decay branch's final
validation loss (`growjax.schedule`, `growjax.train.branch`) and each run's
own final loss (its schedule decays at its end).

1. **Points.** An arm's decayed points: its runs' finals and its branches'
   finals, each at the FLOPs it was charged (a branch: its trunk's FLOPs up
   to the branch point plus its own). The seeds of an arm branch at the same
   FLOPs; a point's loss is the mean over seeds.
2. **Frontier.** Sorted by FLOPs, the points that beat every cheaper point
   (Pareto): the lowest loss reached with at most that many FLOPs. A group's
   frontier (every scratch arm together, every small-only arm together) is
   the frontier of the union of its arms' points.
3. **FLOPs to a level.** The first frontier point at or below the level;
   between it and the frontier point before it, FLOPs are interpolated
   linearly in log-FLOPs against loss (a power law in FLOPs is a straight
   line there). A first point already below charges its own FLOPs, an upper
   bound on what the level costs that frontier (nothing is known before its
   first point), so a speedup that rests on one is a bound, marked `bound`
   ("at_least" when the arm's side is, "at_most" when the other frontier's
   is, "unknown" when both are); a level below the whole frontier is not
   reached, and said so. Points at equal FLOPs (the same branch point of
   several arms) count once, at the lowest loss.
4. **Levels.** The scratch frontier's losses at its own points' FLOPs, so
   scratch is charged exactly those FLOPs.
5. **Speedups.** scratch frontier FLOPs / arm frontier FLOPs at each level;
   and for grown arms the same against the small-only frontier (how much of
   the saving is a small model being cheap, not growth), and against the
   better of the two at each level ("best_of_both": the fewer FLOPs of
   either to reach it), the comparison a grown arm has to win.
6. **Equal-FLOPs deltas.** Each non-scratch arm's final loss minus each
   frontier's loss at the arm's final FLOPs (its lowest decayed point within
   `equal_rtol` of them: whole-step rounding leaves arms of one budget a
   fraction of a percent apart), against scratch, small-only and the better
   of both. A negative delta is a gain. (In seconds, `equal_rtol` also
   merges a pooled frontier's near-equal points: `_snap`.)
7. **Intervals.** As `growjax.compare`: a percentile bootstrap resampling
   seeds and, paired across all runs, the validation chunks of each point;
   arms run on the same seeds draw the same seeds in each sample (paired by
   seed); the levels are recomputed in each sample (the scratch frontier's
   loss at the same FLOPs).

8. **Verdict** (`verdict`), the growth study's rule, on the reading above.
   Win: a grown arm reaches the scratch frontier's final level at least
   `win` (1.3) times sooner than the better of both frontiers, the
   interval's low end above 1, at 2 seeds or more. Conclusive no: every
   grown arm's interval on its final loss minus the better frontier's at
   equal FLOPs excludes a gain larger than `margin` (0.005 nats). Gain: the
   best grown arm is better at 2+ seeds, beyond `margin` at equal FLOPs and
   in FLOPs (interval above 1), but below `win`. Split: a grown arm is
   better at equal FLOPs at 2+ seeds beyond `margin`, yet reaches scratch's
   final level no sooner than the better frontier (interval not above 1),
   and no grown arm's interval there reaches `win`: its frontier crosses the
   better one's near that level (steeper), so it ends lower at the budget
   without saving FLOPs to scratch's loss. Anything else is unclear, with
   the reasons (one seed, an interval that straddles, a bound). Runs the
   study still plans (`pending`) make any answer provisional.

Pure numpy, above `growjax.compare` (its runs, curves and intervals); the
study and `growjax.report` add `frontier(...)` to their results when any run
is a decay branch (`has_branches`).
"""

from __future__ import annotations

import math

import numpy as np

from growjax import compare

GROUPS = ("scratch", "small_only")  # the kinds read as one frontier each
ANSWERS = ("win", "gain", "split", "no", "unclear")  # `verdict`'s, in the order tried


def family(arm: str) -> str:
  """An arm's name without its rate (a study names a swept arm's runs
  ARM_lrRATE): stack_lr0.002 -> stack, scratch_cosine -> scratch_cosine."""
  return arm.split("_lr")[0]


def has_branches(runs) -> bool:
  return any(r.branch is not None for r in runs)


def untimed(runs) -> list[str]:
  """The runs that log no steady-state training seconds (train_time), which
  a time frontier (cost="seconds") reads: none, or it cannot be read."""
  return [r.name for r in runs
          if compare.steady_seconds(r)["basis"] != "train_time"]


def flops_to_level(flops_P, loss_P, level: float) -> float:
  """FLOPs at which the frontier of points (flops_P, loss_P) reaches `level`
  (definition 3 of the module doc); nan when it never does."""
  order = _order(flops_P, loss_P)
  prev = None  # the last frontier point, above the level
  for f, l in zip(np.asarray(flops_P, float)[order], np.asarray(loss_P, float)[order]):
    if l <= level + 1e-9:
      if prev is None:
        return float(f)
      t = (prev[1] - level) / (prev[1] - l)
      return float(math.exp(math.log(prev[0]) + t * (math.log(f) - math.log(prev[0]))))
    if prev is None or l < prev[1]:
      prev = (f, l)
  return math.nan


def _order(flops_P, loss_P):
  """Indices by FLOPs, the lowest loss first among equal FLOPs."""
  return np.lexsort((np.asarray(loss_P, float), np.asarray(flops_P, float)))


def first_below(flops_P, loss_P, level: float) -> bool:
  """Whether the cheapest point is already below `level`: the FLOPs that
  `flops_to_level` charges are then its own, an upper bound."""
  return float(np.asarray(loss_P, float)[_order(flops_P, loss_P)[0]]) < level - 1e-9


def best_at(flops_P, loss_P, at: float) -> float:
  """The frontier's loss at FLOPs `at`: the lowest loss of a point that
  costs at most `at` (inf when none does)."""
  mask = np.asarray(flops_P, float) <= at * (1 + 1e-9)
  return float(np.asarray(loss_P, float)[mask].min()) if mask.any() else math.inf


def pareto(flops_P, loss_P) -> list[int]:
  """Indices of the frontier points, by FLOPs."""
  out, best = [], math.inf
  for i in _order(flops_P, loss_P):
    if loss_P[i] < best:
      out.append(int(i))
      best = loss_P[i]
  return out


COSTS = ("flops", "seconds")  # what a reading charges each point


def _snap(cost_P, loss_P, rtol: float):
  """Costs with near-equal ones counted once: a point is charged the cost of
  any lower-loss point that costs at most `rtol` more. Seconds of runs at
  the same FLOPs differ by a fraction of a percent, and without this a
  worse point 0.1 s cheaper would stand on a pooled frontier, and between
  it and the next a level's seconds would be interpolated (in FLOPs such
  points are equal, and `_order` counts them once)."""
  cost_P, loss_P = np.asarray(cost_P, float), np.asarray(loss_P, float)
  out = cost_P.copy()
  for i in range(len(cost_P)):
    near = (loss_P < loss_P[i]) & (cost_P >= cost_P[i]) & (cost_P <= cost_P[i] * (1 + rtol))
    if near.any():
      out[i] = cost_P[near].max()
  return out


def _final(run: compare.Run, cost: str = "flops"):
  """(cost, loss, chunks_K or None) of a run's last validation: its FLOPs,
  or its steady-state training seconds there (`compare.steady_seconds`:
  compiles and evaluations excluded, growths included; a branch's seconds
  include its trunk's up to the branch point)."""
  c = compare.eval_curve(run)
  x = float(c.flops_E[-1])
  if cost == "seconds":
    t = compare.steady_seconds(run, "train_time")
    x = float(np.interp(x, t["flops_N"], t["seconds_N"]))
  return (x, float(c.loss_E[-1]), None if c.chunks_EK is None else c.chunks_EK[-1])


def _arm_points(name, members, notes, cost: str = "flops"):
  """labels, flops_P (or seconds_P), loss_SP, chunks_SPK (None without
  chunks) of one arm."""
  by_seed: dict = {}
  for r in members:
    by_seed.setdefault(r.seed, {})[r.branch or "final"] = _final(r, cost)
  labels = sorted(set.intersection(*(set(p) for p in by_seed.values())))
  missing = set.union(*(set(p) for p in by_seed.values())) - set(labels)
  if missing:
    notes.append(f"arm {name}: points {sorted(missing)} are missing for some "
                 "seeds (unfinished branches?); left out")
  seeds = sorted(by_seed, key=lambda s: (s is None, s))
  flops_SP = np.array([[by_seed[s][l][0] for l in labels] for s in seeds])
  if cost == "seconds":  # seeds take a little more or less time: their mean
    flops_SP = flops_SP.mean(0, keepdims=True)
  elif not np.allclose(flops_SP, flops_SP[0], rtol=1e-6):
    raise ValueError(f"arm {name}: its seeds' decayed points are at different "
                     "FLOPs")
  loss_SP = np.array([[by_seed[s][l][1] for l in labels] for s in seeds])
  chunks = [[by_seed[s][l][2] for l in labels] for s in seeds]
  ok = all(c is not None for row in chunks for c in row) and len(
      {len(c) for row in chunks for c in row}) == 1
  return labels, flops_SP[0], loss_SP, np.array(chunks, float) if ok else None


BOTH = "best_of_both"  # the better of the scratch and small-only frontiers


def frontier(runs, *, n_boot: int = 1000, ci: float = 0.95,
             rng_seed: int = 0, equal_rtol: float = 0.01,
             pending: tuple[str, ...] = (), cost: str = "flops") -> dict:
  """The frontier reading of `runs` (`compare.Run`s; a decay branch has
  `branch` set and its trunk's arm name and seed). Returns a JSON-ready dict:
  reading, levels, level_flops, ci, ci_over, n_boot, notes, arms (per arm:
  kind, its decayed points with their loss's s.e. over validation chunks,
  and which are on its frontier), groups (the
  scratch and small-only frontiers), speedups ([{level, level_flops, arm,
  against, flops_ratio, ci_low, ci_high, reached, reached_fraction,
  arm_flops, against_flops, bound}]), deltas ([{arm, against, arm_flops,
  against_flops, delta, ci_low, ci_high}]) and verdict (`verdict`;
  `pending`: the planned runs not finished, which make it provisional).

  cost="seconds" charges each point its steady-state training seconds
  instead (`_final`; the seeds' mean), the wall-clock question on one kind
  of device; every FLOPs field of the result then holds seconds, and there
  are no deltas (arms end at different seconds) and no verdict (the study's
  rule is in FLOPs). Only meaningful where every run had its device to
  itself."""
  if cost not in COSTS:
    raise ValueError(f"cost {cost!r}: one of {COSTS}")
  notes: list[str] = []
  arms: dict[str, list] = {}
  for r in runs:
    arms.setdefault(r.name, []).append(r)
  kinds = {n: m[0].kind for n, m in arms.items()}
  if "scratch" not in kinds.values():
    raise ValueError("no scratch arm among the runs (kind \"scratch\")")
  points = {n: _arm_points(n, m, notes, cost) for n, m in arms.items()}
  seeds_of = {n: sorted({r.seed for r in m}, key=lambda s: (s is None, s))
              for n, m in arms.items()}
  for n, (labels, *_) in points.items():
    if labels == ["final"]:
      notes.append(f"arm {n} has no decay branches: its frontier is its "
                   "final loss alone")
  groups = {g: [n for n in arms if kinds[n] == g] for g in GROUPS}
  groups = {g: ns for g, ns in groups.items() if ns}

  rng = np.random.default_rng(rng_seed)
  have_chunks = all(p[3] is not None for p in points.values()) and len(
      {p[3].shape[-1] for p in points.values()}) == 1
  multi_seed = any(p[2].shape[0] > 1 for p in points.values())
  ci_over = ((["seeds"] if multi_seed else []) +
             (["validation chunks"] if have_chunks else [])) if n_boot else []
  if n_boot and not ci_over:
    notes.append("no confidence intervals: one seed per arm and no val_chunks")

  def losses(x_seeds, x_chunks):
    """{arm: [x, P]}: the mean over seeds (resampled by x_seeds) of each
    point's loss (from the chunks drawn by x_chunks); None, None: the
    point estimate ([1, P])."""
    out = {}
    for n, (_, _, loss_SP, chunks_SPK) in points.items():
      if x_chunks is not None:
        base_SxP = chunks_SPK[:, :, x_chunks].mean(-1).transpose(0, 2, 1)
      else:
        base_SxP = loss_SP[:, None, :]
      if x_seeds is None:
        out[n] = base_SxP.mean(0)
        continue
      idx_xS = x_seeds[n]
      n_x = idx_xS.shape[0]
      base_SxP = np.broadcast_to(base_SxP, (base_SxP.shape[0], n_x, base_SxP.shape[2]))
      out[n] = base_SxP[idx_xS, np.arange(n_x)[:, None]].mean(1)
    return out

  def union(names, loss):
    cost_P = np.concatenate([points[n][1] for n in names])
    if cost == "seconds":  # near-equal seconds count once, by the point estimate
      cost_P = _snap(cost_P, np.concatenate([point[n][0] for n in names]), equal_rtol)
    return cost_P, np.concatenate([loss[n] for n in names], axis=-1)

  point = losses(None, None)
  s_flops, s_loss = union(groups["scratch"], point)
  level_flops = [float(s_flops[i]) for i in pareto(s_flops, s_loss[0])]

  def fronts(loss) -> dict:
    """(flops_P, loss_xP) of every arm, and of every group as "[group]"."""
    out = {n: (points[n][1], loss[n]) for n in arms}
    out.update({f"[{g}]": union(ns, loss) for g, ns in groups.items()})
    return out

  def read(loss) -> dict:
    """levels [x, L] and FLOPs to each level [x, L] of every arm and group."""
    fl, ls = union(groups["scratch"], loss)
    levels_xL = np.array([[best_at(fl, ls[x], f) for f in level_flops]
                          for x in range(ls.shape[0])])
    frontiers = fronts(loss)
    charge = {k: np.array([[flops_to_level(f, l[x], levels_xL[x, j])
                            for j in range(levels_xL.shape[1])]
                           for x in range(l.shape[0])])
              for k, (f, l) in frontiers.items()}
    if len(groups) == 2:
      charge[f"[{BOTH}]"] = np.fmin(charge["[scratch]"], charge["[small_only]"])
    # each arm's final point against each frontier at (about) its FLOPs
    at = {}
    for n in arms:
      f_final = points[n][1][points[n][0].index("final")]
      for g in groups:
        f, l = frontiers[f"[{g}]"]
        at[(n, g)] = np.array([best_at(f, l[x], f_final * (1 + equal_rtol))
                               for x in range(l.shape[0])])
      if len(groups) == 2:
        at[(n, BOTH)] = np.fmin(at[(n, "scratch")], at[(n, "small_only")])
      at[(n, "final")] = loss[n][:, points[n][0].index("final")]
    return {"levels": levels_xL, "charge": charge, "at": at}

  est = read(point)
  # where a frontier is charged its first point's FLOPs (definition 3)
  early = {k: [first_below(f, l[0], level) for level in est["levels"][0]]
           for k, (f, l) in fronts(point).items()}
  if len(groups) == 2:  # either side's charge may be high, so their minimum may be
    early[f"[{BOTH}]"] = [a or b for a, b in zip(early["[scratch]"],
                                                 early["[small_only]"])]
  boot = None
  if ci_over:
    k = next(iter(points.values()))[3].shape[-1] if have_chunks else None
    x_chunks = rng.integers(0, k, size=(n_boot, k)) if have_chunks else None
    draws: dict = {}  # one draw per seed list: arms on the same seeds pair
    x_seeds = {}
    for n in points:
      key = tuple(seeds_of[n])
      if key not in draws:
        draws[key] = rng.integers(0, len(key), size=(n_boot, len(key)))
      x_seeds[n] = draws[key]
    boot = read(losses(x_seeds, x_chunks))

  speedups = []
  for n in arms:
    if kinds[n] == "scratch":
      continue
    against = ["scratch"] + (["small_only", BOTH] if kinds[n] not in GROUPS
                             and "small_only" in groups else [])
    for g in against:
      for j, level in enumerate(est["levels"][0]):
        a, b = est["charge"][n][0, j], est["charge"][f"[{g}]"][0, j]
        entry = {"level": float(level), "level_flops": level_flops[j], "arm": n,
                 "against": g, "flops_ratio": (float(b / a) if not (
                     math.isnan(a) or math.isnan(b)) else None),
                 "ci_low": None, "ci_high": None, "reached": not math.isnan(a),
                 "reached_fraction": None, "arm_flops": _none(a),
                 "against_flops": _none(b),
                 "bound": _bound(early[n][j] and not math.isnan(a),
                                 early[f"[{g}]"][j] and not math.isnan(b))}
        if boot is not None:
          a_x, b_x = boot["charge"][n][:, j], boot["charge"][f"[{g}]"][:, j]
          entry["ci_low"], entry["ci_high"] = compare.interval(
              compare._ratio(b_x, a_x), ci)  # pylint: disable=protected-access
          entry["reached_fraction"] = float(np.mean(~np.isnan(a_x)))
        speedups.append(entry)

  deltas = []
  for n in arms:
    # in seconds arms end at different costs, and a frontier's lowest point
    # within an arm's seconds would be one far cheaper: no equal-cost deltas
    if kinds[n] == "scratch" or "final" not in points[n][0] or cost != "flops":
      continue
    against = ["scratch"] + (["small_only", BOTH] if kinds[n] not in GROUPS
                             and "small_only" in groups else [])
    for g in against:
      d = est["at"][(n, "final")][0] - est["at"][(n, g)][0]
      entry = {"arm": n, "against": g,
               "arm_flops": float(points[n][1][points[n][0].index("final")]),
               "delta": _none(d) if math.isfinite(d) else None,
               "ci_low": None, "ci_high": None}
      if boot is not None and math.isfinite(d):
        d_x = boot["at"][(n, "final")] - boot["at"][(n, g)]
        entry["ci_low"], entry["ci_high"] = compare.interval(d_x, ci)
      deltas.append(entry)

  def se(names):
    """Each point's standard error over validation chunks (of the mean over
    seeds), None without chunks: chunks are contiguous, so this is wider
    than a run's val_loss_se over windows, which treats them as independent."""
    if not all(points[n][3] is not None for n in names):
      return None
    c_PK = np.concatenate([points[n][3].mean(0) for n in names])
    return c_PK.std(-1, ddof=1) / math.sqrt(c_PK.shape[-1]) if c_PK.shape[-1] > 1 else None

  def describe(flops_P, loss_P, labels=None, se_P=None):
    on = set(pareto(flops_P, loss_P))
    return [{"flops": float(f), "loss": float(l),
             "se": None if se_P is None else float(se_P[i]), "on_frontier": i in on,
             **({"point": labels[i]} if labels else {})}
            for i, (f, l) in enumerate(zip(flops_P, loss_P))]

  result = {
      "reading": ("compute frontier: lowest decayed loss (branch and run "
                  "finals) at each FLOP count; FLOPs to a level interpolated "
                  "linearly in log-FLOPs between frontier points"
                  if cost == "flops" else
                  "time frontier: lowest decayed loss (branch and run finals) "
                  "within each number of steady-state training seconds "
                  "(compiles and evaluations excluded; the seeds' mean); "
                  "seconds to a level interpolated linearly in log-seconds; "
                  "every 'flops' field holds seconds"),
      "cost": cost,
      "levels": [float(v) for v in est["levels"][0]], "level_flops": level_flops,
      "ci": ci, "ci_over": ci_over, "n_boot": n_boot if boot is not None else 0,
      "notes": notes,
      "arms": [{"arm": n, "kind": kinds[n], "seeds": sorted(
                    {r.seed for r in arms[n]}, key=lambda s: (s is None, s)),
                "points": describe(points[n][1], point[n][0], points[n][0], se([n]))}
               for n in arms],
      "groups": {g: describe(*(lambda f, l: (f, l[0]))(*union(ns, point)),
                             se_P=se(ns))
                 for g, ns in groups.items()},
      "speedups": speedups, "deltas": deltas,
  }
  if cost == "flops":
    result["verdict"] = verdict(result, pending=pending)
  return result


def verdict(f: dict, *, win: float = 1.3, margin: float = 0.005,
            min_seeds: int = 2, pending: tuple[str, ...] = ()) -> dict:
  """The growth study's answer from a `frontier` result (definition 8):
  {answer: "win" | "gain" | "split" | "no" | "unclear", rule, arm, speedup,
  delta, reasons, pending}. `arm`, `speedup` and `delta`: the arm the answer
  rests on (for win and unclear, the best grown arm by FLOPs ratio against
  the better of both at the final level) and its two readings. `pending`
  (the planned runs not yet finished) makes any answer provisional: the
  first reason says so."""
  rule = (f"win: a grown arm reaches the scratch frontier's final level >= "
          f"{win:g}x sooner than the better of the scratch and small-only "
          f"frontiers, interval low end > 1, >= {min_seeds} seeds; no: every "
          f"grown arm's final loss minus the better frontier's at equal FLOPs "
          f"has its interval's low end >= -{margin:g} nats")
  seeds = {a["arm"]: len(a["seeds"]) for a in f["arms"]}
  grown = [a["arm"] for a in f["arms"] if a["kind"] not in GROUPS + ("scratch",)]
  out = {"answer": "unclear", "rule": rule, "arm": None, "speedup": None,
         "delta": None, "reasons": [], "pending": sorted(pending)}
  if pending:  # a branch's name extends its trunk's: name the trunks
    roots = [n for n in sorted(pending)
             if not any(n.startswith(m + "_") for m in pending)]
    more = len(pending) - len(roots)
    out["reasons"].append(
        f"provisional: {len(pending)} planned run(s) not finished: "
        f"{', '.join(roots)}" + (f", and {more} of their branches" if more else ""))
  if not grown or not f["levels"]:
    out["reasons"].append("no grown arm, or no scratch frontier")
    return out
  final = len(f["levels"]) - 1
  against = BOTH if any(s["against"] == BOTH for s in f["speedups"]) else "scratch"
  if against == "scratch":
    out["reasons"].append("no small-only arm: read against scratch alone")
  at_final = {s["arm"]: s for s in f["speedups"] if s["against"] == against
              and s["level_flops"] == f["level_flops"][final]}
  deltas = {d["arm"]: d for d in f["deltas"] if d["against"] == against}

  def ratio(n):
    return (at_final.get(n) or {}).get("flops_ratio") or 0.0

  def rest_on(n, answer=None):
    out.update(arm=n, speedup=at_final.get(n), delta=deltas.get(n))
    if answer:
      out["answer"] = answer
    return out

  def faster(n):  # the speedup's interval is above 1 (not a bound from above)
    s = at_final.get(n)
    return bool(s and s["ci_low"] is not None and s["ci_low"] > 1.0
                and s["bound"] in (None, "at_least"))

  def better(n):  # at 2+ seeds, a gain beyond the margin at equal FLOPs
    d = deltas.get(n)
    return (seeds[n] >= min_seeds and d is not None
            and d["ci_high"] is not None and d["ci_high"] < -margin)

  def could_win(n):  # the speedup's interval (or a bound from below) reaches win
    s = at_final.get(n)
    if not s or not s["flops_ratio"]:
      return False  # not reached
    if s["bound"] in ("at_least", "unknown"):
      return True
    return (s["ci_high"] if s["ci_high"] is not None else s["flops_ratio"]) >= win

  best = max(grown, key=ratio)
  rest_on(best)
  s = at_final.get(best)
  if ratio(best) >= win and faster(best) and seeds[best] >= min_seeds:
    return rest_on(best, "win")
  if ratio(best) >= win:
    if seeds[best] < min_seeds:
      out["reasons"].append(f"{best}: {s['flops_ratio']:.2f}x at {seeds[best]} "
                            f"seed(s); a win needs {min_seeds}")
    if s["ci_low"] is None or s["ci_low"] <= 1.0:
      out["reasons"].append(f"{best}: the interval's low end is not above 1")
    if s["bound"] in ("at_most", "unknown"):
      out["reasons"].append(f"{best}: the speedup is " + (
          "only an upper bound" if s["bound"] == "at_most" else
          "unknown (both frontiers' first points are below the level)"))
  gains = [n for n in grown if better(n) and faster(n)]
  if gains:
    n = max(gains, key=ratio)
    out["reasons"].append(f"{n}: a gain at equal FLOPs and a speedup whose "
                          f"interval is above 1, below the {win:g}x bar")
    return rest_on(n, "gain")
  splits = [n for n in grown if better(n)]
  if splits and not any(could_win(n) for n in grown):
    n = min(splits, key=lambda n: deltas[n]["delta"])
    d, s = deltas[n], at_final.get(n)
    reach = ("does not reach scratch's final level" if not s or not s["flops_ratio"]
             else f"reaches scratch's final level {s['flops_ratio']:.2f}x "
             f"[{_fmt_x(s['ci_low'])}, {_fmt_x(s['ci_high'])}] as soon")
    out["reasons"].append(
        f"{n}: {d['delta']:+.4f} [{_fmt(d['ci_low'])}, {_fmt(d['ci_high'])}] "
        f"nats against {against} at equal FLOPs ({seeds[n]} seeds), yet {reach}: "
        f"its frontier crosses the better one's near that level")
    out["reasons"].append(f"no grown arm's interval at scratch's final level "
                          f"reaches {win:g}x")
    thin = [m for m in grown if seeds[m] < min_seeds]
    if thin:
      out["reasons"].append(f"at one seed (intervals over validation chunks "
                            f"only): {', '.join(thin)}")
    return rest_on(n, "split")
  open_ = [n for n in grown if deltas.get(n) is None or deltas[n]["ci_low"] is None
           or deltas[n]["ci_low"] < -margin]
  closest = min((n for n in grown if deltas.get(n) and deltas[n]["delta"] is not None),
                key=lambda n: deltas[n]["delta"], default=None)
  if not open_ and closest is not None and seeds[closest] >= min_seeds:
    out["answer"] = "no"
    return out
  if not open_ and closest is not None:
    out["reasons"].append(f"{closest}, the closest to a gain, has "
                          f"{seeds[closest]} seed(s); a no needs {min_seeds}")
  for n in open_:
    d = deltas.get(n)
    if d is None or d["delta"] is None:
      out["reasons"].append(f"{n}: no equal-FLOPs reading")
    else:
      out["reasons"].append(
          f"{n}: {d['delta']:+.4f} [{_fmt(d['ci_low'])}, {_fmt(d['ci_high'])}] "
          f"nats against {against}: a gain above {margin:g} is not excluded")
  if open_ and not any(seeds[n] >= min_seeds for n in grown):
    out["reasons"].append("every grown arm has one seed: its intervals cover "
                          "validation chunks, not seeds")
  return out


def _fmt(x):
  return "-" if x is None else f"{x:+.4f}"


def _fmt_x(x):
  return "-" if x is None else f"{x:.2f}"


def _bound(arm_early: bool, against_early: bool) -> str | None:
  """Which way a speedup is a bound when a side was charged its first
  point's FLOPs (an overcharge of unknown size)."""
  return {(True, False): "at_least", (False, True): "at_most",
          (True, True): "unknown"}.get((arm_early, against_early))


def _none(x):
  return None if math.isnan(x) else float(x)
