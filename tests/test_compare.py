"""The honest comparison, on synthetic curves whose answer is known."""

import json

import hypothesis
from hypothesis import strategies as st
import numpy as np
import pytest

from growjax import compare


def rows(flops, losses, *, chunks=None, se=None, train_time=None,
         compile_time=None, growth=()):
  """metrics.jsonl rows: one training row with validation per point; growth
  is [(step, seconds or None)] events, logged after the row of that step."""
  out = []
  for i, (f, l) in enumerate(zip(flops, losses)):
    r = {"step": i + 1, "stage": 0, "loss": float(l), "train_flops": float(f),
         "time": 10.0 * (i + 1), "val_loss": float(l)}
    if chunks is not None:
      r["val_chunks"] = [float(c) for c in chunks[i]]
    if se is not None:
      r["val_loss_se"] = se
    if train_time is not None:
      r["train_time"] = float(train_time[i])
    if compile_time is not None:
      r["compile_time"] = float(compile_time[i])
    out.append(r)
    for step, seconds in growth:
      if step == i + 1:
        event = {"event": "growth", "step": step, "stage": 1, "method": "msg"}
        if seconds is not None:
          event["seconds"] = seconds
        out.append(event)
  return out


def run(name, kind, flops, losses, seed=0, **kw):
  return compare.Run(name=name, kind=kind, seed=seed, lr=1e-3,
                     rows=rows(flops, losses, **kw))


def speedup(result, arm):
  return [s for s in result["speedups"] if s["arm"] == arm]


def test_smoothed_curve_is_a_weighted_local_line_then_the_highest_value_ahead():
  # at the middle the weights (1/2, 1, 1/2) are symmetric: the weighted mean
  # 3/2; at an end (1, 1/2, 1/4) the weighted line through (0,0) (1,3) (2,0)
  # has value (S2 T0 - S1 T1) / (S0 S2 - S1^2) = (1.5 1.5 - 1 1.5) / (1.75 1.5 - 1)
  smooth = compare.local_linear(np.array([0, 3, 0.0]), [0, 1, 2], 1.0)
  np.testing.assert_allclose(smooth, [6 / 13, 3 / 2, 6 / 13])
  np.testing.assert_allclose(compare.stays_below(np.array([4, 1, 4, 3, 2.0])),
                             [4, 4, 4, 3, 2])
  np.testing.assert_allclose(compare.local_linear([3.0, 1, 2], [1, 2, 3], 0), [3, 1, 2])


@hypothesis.given(gaps=st.lists(st.floats(0.1, 10), min_size=3, max_size=12),
                  slope=st.floats(-2, 0), half_life=st.floats(0.2, 4))
def test_smoothing_returns_a_straight_line_unchanged_so_it_has_no_lag(
    gaps, slope, half_life):
  flops = np.cumsum(gaps)
  line = 5 + slope * flops
  np.testing.assert_allclose(compare.local_linear(line, flops, half_life), line,
                             rtol=1e-9, atol=1e-9)


@hypothesis.given(a=st.floats(1, 3), b=st.floats(0.5, 4), tau=st.floats(100, 2000),
                  factor=st.floats(1.1, 4), n=st.integers(4, 12),
                  half_life=st.sampled_from([0, 0.5, 1.0, 2.0]))
def test_a_curve_compressed_in_flops_by_a_factor_has_that_speedup_at_every_level(
    a, b, tau, factor, n, half_life):
  """The arm logs the scratch run's losses at 1/factor of its FLOPs: every
  level is reached with exactly factor times fewer FLOPs."""
  flops = np.arange(1, n + 1) * 100.0
  loss = a + b * np.exp(-flops / tau)
  result = compare.summarize(
      [run("scratch", "scratch", flops, loss), run("msg", "msg", flops / factor, loss)],
      half_life=half_life, n_boot=0)
  assert [s["flops_ratio"] for s in speedup(result, "msg")] == pytest.approx([factor] * 3)
  assert [s["scratch_flops"] for s in speedup(result, "msg")] == pytest.approx(
      [100.0 * n, 50.0 * n, 25.0 * n])


def test_a_curve_shifted_by_fixed_flops_has_the_hand_computed_speedups():
  flops = np.arange(1, 11) * 100.0
  loss = 2 + 3 * np.exp(-flops / 300)
  result = compare.summarize(
      [run("scratch", "scratch", flops, loss), run("msg", "msg", flops - 50, loss)],
      n_boot=0)
  # levels at 1, 1/2, 1/4 of scratch's 1000 FLOPs; the arm gets each 50 sooner
  got = speedup(result, "msg")
  assert [s["arm_flops"] for s in got] == pytest.approx([950, 450, 200])
  assert [s["flops_ratio"] for s in got] == pytest.approx([1000 / 950, 500 / 450, 250 / 200])


DIP = [4, 1, 4, 4, 3, 2, 2, 2.0]  # a dip to 1.0 at the second evaluation


def test_an_early_dip_below_the_level_is_not_charged_at_the_dip():
  flops = np.arange(1, 9, dtype=float)
  clean = [5, 4.5, 4, 3.5, 3.2, 2.5, 2.2, 2.0]

  def charged(half_life):
    result = compare.summarize(
        [run("scratch", "scratch", flops, clean), run("msg", "msg", flops, DIP)],
        levels=[3.0], n_boot=0, half_life=half_life)
    return [a["flops_to_level"][0] for a in result["arms"] if a["name"] == "msg"][0]

  # raw: first below 3 at 2 (the dip); it stays <= 3 only from point 5 on
  assert charged(0) == pytest.approx(5.0)
  # smoothed, the dip pulls its neighbours down a little, but the run is
  # still charged after point 4, its last loss well above the level
  assert 4 < charged(0.5) < 5


def test_scratch_is_charged_the_same_way_as_a_grown_arm():
  flops = np.arange(1, 9, dtype=float)
  result = compare.summarize(
      [run("scratch", "scratch", flops, DIP), run("msg", "msg", flops, DIP)],
      levels=[3.0, 2.5], n_boot=0, half_life=0)
  charges = {a["name"]: a["flops_to_level"] for a in result["arms"]}
  assert charges["scratch"] == charges["msg"]
  assert charges["scratch"] == pytest.approx([5.0, 5.5])
  assert [s["flops_ratio"] for s in result["speedups"]] == [1.0, 1.0]
  default = compare.summarize(
      [run("scratch", "scratch", flops, DIP), run("msg", "msg", flops, DIP)], n_boot=0)
  assert [s["flops_ratio"] for s in default["speedups"]] == [1.0, 1.0, 1.0]


def test_a_study_with_no_scratch_run_yet_exports_summarize_s_fields_empty():
  from growjax.study import results  # pylint: disable=g-import-not-at-top
  summary = compare.summarize([run("scratch", "scratch", [1, 2, 3], [5, 4, 3]),
                               run("msg", "msg", [1, 2, 3], [5, 4, 3.5])], n_boot=0)
  assert set(results._uncompared()) == set(summary)  # pylint: disable=protected-access


def test_a_run_that_never_reaches_a_level_is_reported_as_not_reached():
  scratch = run("scratch", "scratch", [1, 2, 3, 4, 5], [5, 4, 3, 2.5, 2.0])
  short = run("msg", "msg", [0.5, 1, 1.5, 2, 2.5], [5, 4.5, 4.2, 4.0, 3.9])
  result = compare.summarize([scratch, short], n_boot=0, half_life=0)
  assert result["levels"][0] == pytest.approx(2.0)  # scratch's final loss
  final = speedup(result, "msg")[0]
  assert final["reached"] is False and final["flops_ratio"] is None
  assert final["arm_flops"] is None
  # it would need more than its 2.5 FLOPs, scratch needed 5: below 2x
  assert final["ratio_below"] == pytest.approx(2.0)
  json.dumps(result, allow_nan=False)  # no infinities, no NaNs


def centred_noise(rng, n, k, sd):
  noise = rng.normal(0, sd, (n, k))
  return noise - noise.mean(axis=1, keepdims=True)  # chunk means average to 0


def test_bootstrap_says_how_often_an_unreached_level_is_reached():
  """The arm ends 0.001 nats above scratch's final level, well inside the
  validation noise: not reached, but in a fraction of the samples it is."""
  rng = np.random.default_rng(0)
  flops = np.arange(1, 9) * 10.0
  loss = 3 + np.exp(-flops / 30)
  k = 16
  scratch = run("scratch", "scratch", flops, loss,
                chunks=loss[:, None] + centred_noise(rng, 8, k, 0.2))
  arm = run("msg", "msg", flops, loss + 0.001,
            chunks=loss[:, None] + 0.001 + centred_noise(rng, 8, k, 0.2))
  result = compare.summarize([scratch, arm], n_boot=400)
  final = speedup(result, "msg")[0]
  assert final["reached"] is False and final["flops_ratio"] is None
  assert 0.1 < final["reached_fraction"] < 0.9
  assert final["ci_low"] is None  # the lower bound falls among not-reached samples
  assert result["ci_over"] == ["validation chunks"]


def coverage_and_width(k, reps=40):
  """Runs whose true speedup is 2 at every level; each validation chunk has
  its own difficulty, shared by all runs (the paired design), plus noise."""
  flops = np.arange(1, 21) * 50.0
  arm_flops = np.arange(1, 41) * 25.0
  covered, widths = 0, []
  for rep in range(reps):
    rng = np.random.default_rng(rep)
    hard_K = rng.normal(0, 0.3, k)
    truth = lambda f: 2 + 3 * np.exp(-f / 1000)  # pylint: disable=cell-var-from-loop
    s = truth(flops)[:, None] + hard_K + rng.normal(0, 0.05, (20, k))
    a = truth(2 * arm_flops)[:, None] + hard_K + rng.normal(0, 0.05, (40, k))
    result = compare.summarize(
        [compare.Run("scratch", "scratch", 0, None,
                     rows(flops, s.mean(1), chunks=s)),
         compare.Run("msg", "msg", 0, None, rows(arm_flops, a.mean(1), chunks=a))],
        n_boot=300, rng_seed=rep)
    final = speedup(result, "msg")[0]
    covered += final["ci_low"] <= 2.0 <= final["ci_high"]
    widths.append(final["ci_high"] - final["ci_low"])
  return covered / reps, float(np.median(widths))


def test_bootstrap_interval_covers_the_true_speedup_and_narrows_with_more_chunks():
  few, many = coverage_and_width(8), coverage_and_width(64)
  assert few[0] >= 0.8 and many[0] >= 0.8  # nominal 0.95
  assert many[1] < 0.6 * few[1]  # sqrt(8) narrower in theory


def test_best_scratch_arm_is_the_lowest_mean_over_seeds():
  flops = [1.0, 2.0, 3.0]
  runs = [run("lr1", "scratch", flops, [4, 3.5, 3.0], seed=0),
          run("lr1", "scratch", flops, [4, 3.6, 3.2], seed=1),
          # the best single seed, but the worse mean (3.15 > 3.1)
          run("lr2", "scratch", flops, [4, 3.4, 2.9], seed=0),
          run("lr2", "scratch", flops, [4, 3.7, 3.4], seed=1),
          run("msg", "msg", flops, [3.5, 3.0, 2.8], seed=0),
          run("msg", "msg", flops, [3.5, 3.1, 2.9], seed=1)]
  result = compare.summarize(runs, half_life=0, n_boot=200)
  assert result["baseline"] == "lr1"
  assert result["levels"][0] == pytest.approx(3.1)
  assert result["ci_over"] == ["seeds"]
  assert {s["arm"] for s in result["speedups"]} == {"lr2", "msg"}
  assert set(result["speedups"][0]) >= {"level", "arm", "flops_ratio", "ci_low",
                                        "ci_high", "reached"}
  assert [(a["name"], a["seed"]) for a in result["arms"]] == [
      (r.name, r.seed) for r in runs]
  assert set(result["arms"][0]) >= {"name", "kind", "seed", "lr", "final_val_loss",
                                    "final_val_loss_se", "train_flops"}


def test_wall_clock_is_steady_train_time_plus_growth_with_compiles_apart():
  flops = [1.0, 2.0, 3.0, 4.0]
  loss = [5, 4, 3, 2.0]
  scratch = run("scratch", "scratch", flops, loss, train_time=[2, 4, 6, 8],
                compile_time=[3, 3, 3, 3])
  grown = run("msg", "msg", [0.5, 1, 1.5, 2], loss, train_time=[1, 2, 3, 4],
              compile_time=[5, 5, 7, 7], growth=[(2, 0.5)])
  assert compare.steady_seconds(grown)["seconds_N"].tolist() == [1, 2, 3.5, 4.5]
  result = compare.summarize([scratch, grown], n_boot=0)
  clock = result["wall_clock"]
  assert clock["basis"] == "train_time"
  assert clock["compile_seconds"] == {"scratch": 3.0, "msg": 7.0}
  # the final level: scratch at 4 FLOPs (8 s), the arm at 2 FLOPs (4 + 0.5 s)
  assert clock["levels"][0]["time_ratio"] == pytest.approx(8 / 4.5)


def test_old_metrics_without_the_new_fields_still_compare_and_say_so():
  flops = [1.0, 2.0, 3.0]
  new = run("msg", "msg", [0.5, 1, 1.5], [4, 3, 2.0], se=0.01, train_time=[1, 2, 3],
            chunks=[[4, 4], [3, 3], [2, 2]])
  old = run("scratch", "scratch", flops, [4, 3, 2.0])
  result = compare.summarize([old, new])
  assert speedup(result, "msg")[0]["flops_ratio"] == pytest.approx(2.0)
  assert result["ci_over"] == [] and speedup(result, "msg")[0]["ci_low"] is None
  assert result["wall_clock"]["basis"] == "time"
  notes = " ".join(result["notes"])
  assert "val_chunks" in notes and "train_time" in notes and "val_loss_se" in notes
  se = {a["name"]: a["final_val_loss_se"] for a in result["arms"]}
  assert se == {"scratch": None, "msg": 0.01}


def test_bad_input_is_named():
  flops = [1.0, 2.0]
  good = [run("s", "scratch", flops, [3, 2.0])]
  with pytest.raises(ValueError, match="level_fractions: .* is empty"):
    compare.summarize(good, level_fractions=())
  with pytest.raises(ValueError, match="half_life"):
    compare.summarize(good, half_life=-1)
  with pytest.raises(ValueError, match="arm s: seeds repeat"):
    compare.summarize(good + [run("s", "scratch", flops, [3, 2.5])])
  with pytest.raises(ValueError, match="no scratch arm"):
    compare.summarize([run("m", "msg", flops, [3, 2.0])])
  with pytest.raises(ValueError, match="m .seed 0.: no validation loss"):
    compare.summarize(good + [compare.Run("m", "msg", 0, None, [{"step": 1}])])
