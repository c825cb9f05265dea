"""The compute frontier, on synthetic decayed points whose answer is known:
power laws shifted by a known FLOPs factor give that factor."""

import json
import math

import numpy as np
import pytest

from growjax import compare, frontier

K = 20  # validation chunks


def law(flops, shift=1.0):
  """A decayed loss as a power law in FLOPs; `shift`: reaches each loss
  `shift` times sooner."""
  return 1.5 + 40.0 * (np.asarray(flops, float) * shift / 1e15) ** -0.3 / 40.0


def arm(name, kind, flops, shift=1.0, seeds=(0,), noise=0.0, rng=None):
  """An arm's runs: its trunk's final at the last FLOPs, and a decay branch
  at each of the others, each with K validation chunks around the law;
  `shift` a list: one per point (a curve steeper or flatter than the law)."""
  out = []
  shifts = shift if isinstance(shift, (list, tuple)) else [shift] * len(flops)
  for seed in seeds:
    for i, f in enumerate(flops):
      loss = float(law(f, shifts[i]))
      chunks = loss + (rng.normal(0, noise, K) if noise else np.zeros(K))
      row = {"step": i + 1, "stage": 0, "loss": loss, "train_flops": float(f),
             "time": 1.0 + i,
             "val_loss": float(chunks.mean()),
             "val_chunks": [float(c) for c in chunks]}
      out.append(compare.Run(name, kind, seed, 1e-3, [row], branch=(
          None if i == len(flops) - 1 else f"decay_at {i}")))
  return out


SCRATCH = [1e15, 2e15, 4e15, 8e15]


def test_two_power_laws_shifted_by_a_known_factor_give_that_factor():
  # the grown arm's branches sit between scratch's: its FLOPs to each level
  # are interpolated in log-FLOPs (a power law is near-straight there)
  grown = [0.3e15, 0.6e15, 1.1e15, 2e15, 3e15]
  result = frontier.frontier(arm("scratch", "scratch", SCRATCH)
                             + arm("grown", "msg", grown, shift=2.5), n_boot=0)
  ratios = [s["flops_ratio"] for s in result["speedups"] if s["arm"] == "grown"]
  assert len(ratios) == 4 and ratios[-1] is None  # 8e15 / 2.5 is past its end
  # between points a factor 2 apart, the log-FLOPs interpolation of a power
  # law with an offset errs by under 2%; at points it hits, it is exact
  assert ratios[:3] == pytest.approx([2.5] * 3, rel=0.02)
  exact = frontier.frontier(
      arm("scratch", "scratch", SCRATCH)
      + arm("grown", "msg", [f / 2.5 for f in SCRATCH], shift=2.5), n_boot=0)
  assert [s["flops_ratio"] for s in exact["speedups"]] == pytest.approx([2.5] * 4)
  assert result["speedups"][-1]["reached"] is False
  assert result["level_flops"] == SCRATCH
  assert result["levels"] == pytest.approx(list(law(SCRATCH)))


def test_the_frontier_is_the_lowest_decayed_loss_and_groups_pool_arms():
  flops = [1e15, 2e15, 4e15]
  worse = [compare.Run(r.name, r.kind, r.seed, r.lr, [
      dict(r.rows[0], val_loss=r.rows[0]["val_loss"] + (0.5 if i == 1 else 0.0),
           val_chunks=[c + (0.5 if i == 1 else 0.0) for c in r.rows[0]["val_chunks"]])],
      branch=r.branch) for i, r in enumerate(arm("b", "scratch", flops))]
  result = frontier.frontier(arm("a", "scratch", flops[:2]) + worse, n_boot=0)
  group = result["groups"]["scratch"]
  on = sorted((p["flops"], p["loss"]) for p in group if p["on_frontier"])
  assert [f for f, _ in on] == flops
  assert [l for _, l in on] == pytest.approx(list(law(flops)))
  b = next(a for a in result["arms"] if a["arm"] == "b")["points"]
  assert [p["on_frontier"] for p in sorted(b, key=lambda p: p["flops"])] == [
      True, False, True]  # the worse middle point beats no cheaper one


def test_speedup_against_small_only_and_intervals_over_seeds_and_chunks():
  rng = np.random.default_rng(0)
  runs = (arm("scratch", "scratch", SCRATCH, seeds=(0, 1), noise=0.002, rng=rng)
          + arm("small", "small_only", SCRATCH, shift=1.5, seeds=(0,), noise=0.002,
                rng=rng)
          + arm("grown", "msg", [f / 3 for f in SCRATCH], shift=3.0,
                seeds=(0, 1), noise=0.002, rng=rng))
  result = frontier.frontier(runs, n_boot=300)
  assert result["ci_over"] == ["seeds", "validation chunks"]
  by = {(s["arm"], s["against"], round(s["level_flops"])): s for s in result["speedups"]}
  s = by[("grown", "scratch", 2e15)]
  assert s["flops_ratio"] == pytest.approx(3.0, rel=0.03)
  assert s["ci_low"] < 3.0 < s["ci_high"] and s["ci_high"] / s["ci_low"] < 1.5
  small = by[("grown", "small_only", 2e15)]
  assert small["flops_ratio"] == pytest.approx(3.0 / 1.5, rel=0.05)
  assert ("small", "small_only", 2e15) not in by  # a control is not read against itself


def test_the_single_curve_reading_leaves_branches_to_the_frontier(tmp_path):
  runs = arm("scratch", "scratch", SCRATCH) + arm("grown", "msg", SCRATCH, shift=2.0)
  result = compare.summarize(runs, n_boot=0)
  assert result["reading"].startswith("single curve")
  assert [a["name"] for a in result["arms"]] == ["scratch", "grown"]  # trunks only
  assert frontier.has_branches(runs)
  # growjax.report reads a branch's directory as its trunk's arm
  from growjax import report  # pylint: disable=g-import-not-at-top
  _write_run_dirs(runs, tmp_path)
  both = report.compare(sorted(tmp_path.iterdir()), baseline=tmp_path / "scratch",
                        n_boot=0)
  ratios = [s["flops_ratio"] for s in both["frontier"]["speedups"]]
  # at the first level the arm's first point is already below: charged its
  # own FLOPs, as nothing is known before it
  assert ratios == pytest.approx([1.0, 2.0, 2.0, 2.0])
  assert "compute frontier" in report.format_comparison(both)


def _write_run_dirs(runs, root):
  """Each run as a growjax run directory (metrics.jsonl, and branch.json
  naming its trunk's directory for a decay branch)."""
  for r in runs:
    d = root / (r.name if r.branch is None else f"{r.name}_{r.branch[-1]}")
    d.mkdir(parents=True)
    (d / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in r.rows))
    if r.branch is not None:
      (d / "branch.json").write_text(json.dumps(
          {"trunk": str(root / r.name), "decay_at": 0.1 * int(r.branch[-1])}))


def test_a_level_below_every_point_is_not_reached_and_one_above_charges_the_first():
  f, l = [1.0, 2.0, 4.0], [3.0, 2.0, 1.0]
  assert math.isnan(frontier.flops_to_level(f, l, 0.5))
  assert frontier.flops_to_level(f, l, 5.0) == 1.0
  assert frontier.flops_to_level(f, l, 1.5) == pytest.approx(2 * math.sqrt(2))


def test_best_of_both_takes_the_cheaper_frontier_at_each_level():
  # small-only reaches each level 1.5x sooner than scratch; a grown arm 3x
  runs = (arm("scratch", "scratch", SCRATCH) + arm("small", "small_only", SCRATCH,
                                                   shift=1.5)
          + arm("grown", "msg", [f / 3 for f in SCRATCH], shift=3.0))
  result = frontier.frontier(runs, n_boot=0)
  by = {(s["arm"], s["against"], round(s["level_flops"])): s for s in result["speedups"]}
  both = by[("grown", "best_of_both", 2e15)]
  assert both["flops_ratio"] == pytest.approx(3.0 / 1.5, rel=0.05)
  assert both["against_flops"] == by[("grown", "small_only", 2e15)]["against_flops"]
  assert ("small", "best_of_both", 2e15) not in by


def test_equal_flops_deltas_are_paired_by_seed():
  # a grown arm better by 0.01 nats at the budget on every seed, under seed
  # effects (0.05 nats from seed to seed) shared by both arms: paired, the
  # interval is tight around -0.01; unpaired it would span the seed spread
  offset = {0: 0.0, 1: 0.05, 2: -0.05}

  def shifted(runs, by):
    return [compare.Run(r.name, r.kind, r.seed, r.lr, [dict(
        r.rows[0], val_loss=r.rows[0]["val_loss"] + offset[r.seed] + by,
        val_chunks=[c + offset[r.seed] + by for c in r.rows[0]["val_chunks"]])],
        branch=r.branch) for r in runs]

  runs = (shifted(arm("scratch", "scratch", SCRATCH, seeds=(0, 1, 2)), 0.0)
          + shifted(arm("grown", "msg", SCRATCH, seeds=(0, 1, 2)), -0.01))
  result = frontier.frontier(runs, n_boot=300)
  (d,) = [d for d in result["deltas"] if d["arm"] == "grown"]
  assert d["against"] == "scratch" and d["arm_flops"] == SCRATCH[-1]
  assert d["delta"] == pytest.approx(-0.01, abs=1e-9)
  assert d["ci_low"] == pytest.approx(-0.01, abs=1e-6)
  assert d["ci_high"] == pytest.approx(-0.01, abs=1e-6)
  from growjax import report  # pylint: disable=g-import-not-at-top
  assert any("-0.0100" in line for line in report.frontier_lines(result))


def test_points_at_equal_flops_count_once_and_early_levels_are_bounds():
  # three scratch rates branch at the same FLOPs (as in a study): one level
  # per FLOPs, the lowest loss; a small-only arm whose first decayed point is
  # already below scratch's first two levels is charged its own FLOPs there,
  # which only bounds its speedup from below
  runs = (arm("scratch_a", "scratch", SCRATCH[1:])
          + arm("scratch_b", "scratch", SCRATCH[1:], shift=0.8)
          + arm("small", "small_only", SCRATCH[1:], shift=3.0)
          + arm("grown", "msg", [f / 2 for f in SCRATCH], shift=2.0))
  result = frontier.frontier(runs, n_boot=0)
  assert result["level_flops"] == SCRATCH[1:]
  assert result["levels"] == pytest.approx(list(law(SCRATCH[1:])))
  on = [p for p in result["groups"]["scratch"] if p["on_frontier"]]
  assert len(on) == 3
  by = {(s["arm"], s["against"], round(s["level_flops"])): s for s in result["speedups"]}
  first = by[("small", "scratch", 2e15)]
  assert first["bound"] == "at_least" and first["flops_ratio"] == pytest.approx(1.0)
  assert by[("small", "scratch", 8e15)]["bound"] is None  # interpolated: exact
  # the grown arm against the better of both: small-only's charge is a bound
  grown = by[("grown", "best_of_both", 2e15)]
  assert grown["bound"] == "at_most"
  assert by[("grown", "scratch", 2e15)]["bound"] is None
  from growjax import report  # pylint: disable=g-import-not-at-top
  lines = report.frontier_lines(result)
  assert len(lines) == len(set(lines))
  assert any(">=1.00x" in l and "small" in l and "a bound" in l for l in lines)
  assert any("<=" in l and "best_of_both" in l for l in lines)


@pytest.mark.parametrize("shift, seeds, answer", [
    (4.5, (0, 1), "win"),       # 3x sooner than small-only (itself 1.5x)
    (1.5 * 1.15, (0, 1), "gain"),  # 1.15x: real, below the 1.3x bar
    (1.5, (0, 1), "no"),        # the small model's curve, grown or not
    (4.5, (0,), "unclear"),     # one seed: no answer yet
    # steeper than the small model's curve: level with it near scratch's
    # final loss (0.96x), 0.025 nats below it at the budget's end
    ([1.0, 1.0, 1.2, 1.8], (0, 1), "split"),
])
def test_the_verdict_follows_the_studys_rule(shift, seeds, answer):
  rng = np.random.default_rng(0)
  runs = (arm("scratch", "scratch", SCRATCH, seeds=(0, 1), noise=0.001, rng=rng)
          + arm("small", "small_only", SCRATCH, shift=1.5, seeds=(0, 1),
                noise=0.001, rng=rng)
          + arm("grown", "msg", SCRATCH, shift=shift, seeds=seeds, noise=0.001,
                rng=rng))
  result = frontier.frontier(runs, n_boot=200)
  v = result["verdict"]
  assert v["answer"] == answer, v
  assert v["arm"] == "grown"
  if answer == "unclear":
    assert any("seed" in r for r in v["reasons"])
  if answer == "split":
    assert v["delta"]["ci_high"] < -0.02 and v["speedup"]["ci_high"] < 1.0
    assert any("crosses" in r for r in v["reasons"])
  from growjax import report  # pylint: disable=g-import-not-at-top
  assert f"verdict: {answer} (best grown arm: grown)" in report.frontier_lines(result)


def test_runs_still_planned_make_the_verdict_provisional_not_different():
  rng = np.random.default_rng(0)
  runs = (arm("scratch", "scratch", SCRATCH, seeds=(0, 1), noise=0.001, rng=rng)
          + arm("small", "small_only", SCRATCH, shift=1.5, seeds=(0, 1),
                noise=0.001, rng=rng)
          + arm("grown", "msg", SCRATCH, shift=4.5, seeds=(0, 1), noise=0.001,
                rng=rng))
  done = frontier.frontier(runs, n_boot=50)["verdict"]
  v = frontier.frontier(runs, n_boot=50, pending=(
      "other_s0_decay0.5", "other_s0", "grown_s2"))["verdict"]
  assert v["answer"] == done["answer"] == "win"
  assert v["pending"] == ["grown_s2", "other_s0", "other_s0_decay0.5"]
  assert v["reasons"][0] == ("provisional: 3 planned run(s) not finished: "
                             "grown_s2, other_s0, and 1 of their branches")
  assert v["reasons"][1:] == done["reasons"] and done["pending"] == []
  # seed 10 is no branch of seed 1: both are trunks
  both = frontier.frontier(runs, n_boot=0, pending=("grown_s1", "grown_s10"))
  assert both["verdict"]["reasons"][0] == ("provisional: 2 planned run(s) not "
                                           "finished: grown_s1, grown_s10")


def test_a_speedup_the_frontiers_cannot_pin_down_is_named_so_in_the_verdict():
  # the small model alone and the grown arm both start below scratch's final
  # loss: neither's FLOPs to it are measured, so the ratio is no speedup
  runs = (arm("scratch", "scratch", SCRATCH) + arm("small", "small_only", SCRATCH, shift=12)
          + arm("grown", "msg", [f / 3 for f in SCRATCH], shift=40))
  v = frontier.frontier(runs, n_boot=0)["verdict"]
  assert v["answer"] == "unclear"
  assert ("grown: the speedup is unknown (both frontiers' first points are below "
          "the level)") in v["reasons"]


def _timed(runs, seconds_per_flop, jitter=0.0):
  """The runs with each row's train_time at `seconds_per_flop` (each seed
  `jitter` of it slower than the one before)."""
  return [compare.Run(r.name, r.kind, r.seed, r.lr, [
      dict(row, train_time=row["train_flops"] * seconds_per_flop * (1 + jitter * r.seed))
      for row in r.rows], branch=r.branch) for r in runs]


def test_the_time_frontier_charges_seconds_so_a_slow_arm_loses_its_flops_saving():
  # the grown arm needs 2.5x fewer FLOPs but runs at half the FLOP/s (a
  # narrow model's lower MFU): 1.25x sooner in seconds; its two seeds take
  # 1% apart, and the point's seconds are their mean
  scratch = _timed(arm("scratch", "scratch", SCRATCH), 1e-13)
  grown = _timed(arm("grown", "msg", [f / 2.5 for f in SCRATCH], shift=2.5,
                     seeds=(0, 1)), 2e-13, jitter=0.01)
  flops = frontier.frontier(scratch + grown, n_boot=0)
  seconds = frontier.frontier(scratch + grown, n_boot=0, cost="seconds")
  assert [s["flops_ratio"] for s in flops["speedups"]] == pytest.approx([2.5] * 4)
  assert [s["flops_ratio"] for s in seconds["speedups"]] == pytest.approx(
      [1.25 / 1.005] * 4)
  assert seconds["level_flops"] == pytest.approx([f * 1e-13 for f in SCRATCH])
  assert seconds["cost"] == "seconds" and "seconds" in seconds["reading"]
  assert seconds["deltas"] == [] and "verdict" not in seconds  # both are in FLOPs
  assert flops["cost"] == "flops" and flops["deltas"] and "verdict" in flops
  with pytest.raises(ValueError, match="cost 'time'"):
    frontier.frontier(scratch + grown, n_boot=0, cost="time")


def test_in_seconds_a_worse_point_a_fraction_cheaper_does_not_stand_on_a_pooled_frontier():
  # two scratch rates branch at the same FLOPs; the worse one ran 0.3%
  # faster. In FLOPs the pair counts once; in seconds it must too, or the
  # worse point becomes a level and the better one's seconds interpolate
  good = _timed(arm("scratch_lr0.002", "scratch", SCRATCH), 1e-13)
  worse = _timed(arm("scratch_lr0.004", "scratch", SCRATCH, shift=0.8), 0.997e-13)
  grown = _timed(arm("grown", "msg", [f / 2 for f in SCRATCH], shift=2.0), 1e-13)
  seconds = frontier.frontier(good + worse + grown, n_boot=0, cost="seconds")
  flops = frontier.frontier(good + worse + grown, n_boot=0)
  assert seconds["levels"] == pytest.approx(flops["levels"])
  assert seconds["levels"] == pytest.approx(list(law(SCRATCH)))
  assert seconds["level_flops"] == pytest.approx([f * 1e-13 for f in SCRATCH])
  on = [p for p in seconds["groups"]["scratch"] if p["on_frontier"]]
  assert [p["loss"] for p in on] == pytest.approx(list(law(SCRATCH)))
  assert [s["flops_ratio"] for s in seconds["speedups"] if s["arm"] == "grown"] == (
      pytest.approx([2.0] * 4))


def test_report_command_reads_seconds_only_when_asked(tmp_path, capsys):
  # python -m growjax.report can't know whether its runs had their devices
  # to themselves: the time frontier is opt-in (--seconds), and refused for
  # runs that log no steady-state seconds
  from growjax import report  # pylint: disable=g-import-not-at-top
  scratch = _timed(arm("scratch", "scratch", SCRATCH), 1e-13)
  grown = _timed(arm("grown", "msg", [f / 2.5 for f in SCRATCH], shift=2.5), 2e-13)
  _write_run_dirs(scratch + grown, tmp_path / "timed")
  dirs = [str(d) for d in sorted((tmp_path / "timed").iterdir())] + [
      "--baseline", str(tmp_path / "timed" / "scratch")]  # no growth events here
  out = tmp_path / "report.png"
  assert report.main(dirs + ["--out", str(out)]) == 0
  assert "frontier_seconds" not in json.loads(out.with_suffix(".json").read_text())
  assert report.main(dirs + ["--out", str(out), "--seconds"]) == 0
  result = json.loads(out.with_suffix(".json").read_text())
  assert [s["flops_ratio"] for s in result["frontier_seconds"]["speedups"]] == (
      pytest.approx([1.25] * 4))
  assert "time frontier" in capsys.readouterr().out
  _write_run_dirs(arm("scratch", "scratch", SCRATCH), tmp_path / "untimed")
  untimed = [str(d) for d in sorted((tmp_path / "untimed").iterdir())]
  assert report.main(untimed + ["--out", str(out), "--seconds"]) == 2
  assert "train_time" in capsys.readouterr().err
