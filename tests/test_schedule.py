"""The run-level learning-rate schedule: warmup-stable-decay across stages
(its values at the points that define it, for every decay shape), re-warms,
stage multipliers, decay branches, and the one-line errors for bad input."""

import math

import pytest

from growjax import schedule
from growjax.experiment import Experiment, ExperimentError

MODEL = dict(d_model=8, n_layers=2, n_heads=2, head_dim=4, d_ff=16, pos="rope")
PEAK, FINAL = 1e-2, 1e-3
STEP_TOKENS = 2 * 8  # batch_size 2 x seq_len 8


def config(schedule_=None, branches=None, stage1=None, steps=(40, 40)):
  s = dict(dict(kind="wsd", peak=PEAK, warmup_steps=10, decay_fraction=0.25,
                final=FINAL, rewarm_steps=5, rewarm_from=0.2), **(schedule_ or {}))
  c = dict(data=dict(name="python_source", seq_len=8, vocab_size=300),
           model=MODEL, schedule=s,
           stages=[dict(tokens=steps[0] * STEP_TOKENS, batch_size=2),
                   dict(dict(model=dict(n_layers=3), grow=dict(method="zero"),
                             tokens=steps[1] * STEP_TOKENS, batch_size=2,
                             lr_multiplier=0.5), **(stage1 or {}))])
  if branches is not None:
    c["branches"] = branches
  return c


def rates(exp):
  """rate(t) of the stage that trains step t + 1."""
  fns = [schedule.stage_rate(exp, s) for s in exp.stages]
  starts = exp.stage_starts()
  return lambda t: float(fns[max(i for i in range(len(fns)) if starts[i] <= t)](t))


@pytest.mark.parametrize("shape", schedule.SHAPES)
def test_wsd_rate_at_warmup_end_growth_decay_start_and_last_step(shape):
  exp = Experiment.from_config(config(dict(decay_shape=shape)))
  rate = rates(exp)
  # 80 steps: warmup to 10, growth at 40 (re-warm to 45, x0.5), decay 60-80
  assert rate(0) == 0.0
  assert rate(5) == pytest.approx(PEAK / 2)
  assert rate(10) == pytest.approx(PEAK)
  assert rate(39) == pytest.approx(PEAK)
  assert rate(40) == pytest.approx(0.5 * 0.2 * PEAK)  # the re-warm's start
  assert rate(45) == pytest.approx(0.5 * PEAK)
  assert rate(60) == pytest.approx(0.5 * PEAK)  # decay start
  frac = 19 / 20  # the last step trains with count 79 of a decay over 60-80
  want = {"linear": 1 - frac, "cosine": 0.5 * (1 + math.cos(math.pi * frac)),
          "1-sqrt": 1 - math.sqrt(frac)}[shape]
  assert rate(79) == pytest.approx(0.5 * (FINAL + (PEAK - FINAL) * want), rel=1e-5)
  assert rate(70) == pytest.approx(0.5 * (FINAL + (PEAK - FINAL) * {
      "linear": 0.5, "cosine": 0.5, "1-sqrt": 1 - math.sqrt(0.5)}[shape]), rel=1e-5)


def test_per_stage_cosine_is_the_default_and_is_rewound_at_growth():
  c = config()
  del c["schedule"]
  c["stages"][0]["lr"] = dict(peak=PEAK, warmup_steps=4, final=FINAL)
  c["stages"][1]["lr"] = dict(peak=PEAK / 2, warmup_steps=0, final=FINAL / 2)
  exp = Experiment.from_config(c)
  assert exp.schedule.kind == "per_stage"
  rate = rates(exp)
  assert rate(4) == pytest.approx(PEAK)
  assert rate(40) == pytest.approx(0.5 * PEAK / 2)  # rewound; x lr_multiplier


def test_branches_start_in_the_stable_phase_and_cut_the_trunk():
  exp = Experiment.from_config(config(branches=dict(
      decay_at=[0.25, 0.5, 1.0], decay_fraction=0.25)))
  found = schedule.branches(exp)
  # decay_at 1.0 with the trunk's own decay fraction is the trunk itself
  assert [(b.at, b.start, b.end) for b in found] == [(0.25, 15, 20), (0.5, 30, 40)]
  assert schedule.checkpoint_steps(exp) == (15, 30)
  b = Experiment.from_config(found[1].config)
  assert [s.steps(8) for s in b.stages] == [40]
  assert b.schedule.stable_end(40) == 30 and b.branches is None
  trunk, branch = rates(exp), rates(b)
  assert all(branch(t) == trunk(t) for t in range(30))
  assert branch(39) < trunk(39) == pytest.approx(PEAK)


@pytest.mark.parametrize("change, field", [
    (dict(schedule_=dict(kind="warmup_stable")), "schedule.kind"),
    (dict(schedule_=dict(decay_fraction=0.0)), "schedule.decay_fraction"),
    (dict(schedule_=dict(decay_fraction=1.5)), "schedule.decay_fraction"),
    (dict(schedule_=dict(decay_shape="exp")), "schedule.decay_shape"),
    (dict(schedule_=dict(rewarm_steps=41)), "schedule.rewarm_steps"),
    (dict(stage1=dict(lr_multiplier=-1.0)), r"stages\[1\].lr_multiplier"),
    (dict(stage1=dict(lr=dict(peak=1e-3))), r"stages\[1\].lr"),
    (dict(branches=dict(decay_at=[0.5, 1.2])), r"branches.decay_at\[1\]"),
    (dict(branches=dict(decay_at=[0.05])), r"branches.decay_at\[0\]"),
    (dict(branches=dict(decay_at=[0.5]), schedule_=dict(decay_fraction=1.0,
                                                        warmup_steps=0)),
     "branches"),
    (dict(branches=dict(decay_at=[0.9], decay_fraction=0.1)),
     r"branches.decay_at\[0\]"),  # starts after the trunk's decay began
])
def test_bad_schedules_and_branches_name_their_field(change, field):
  with pytest.raises(ExperimentError, match=f"^{field}: ") as e:
    Experiment.from_config(config(**change))
  assert "\n" not in str(e.value)


def test_branches_need_a_stable_phase():
  c = config(branches=dict(decay_at=[0.5]))
  del c["schedule"]
  for s in c["stages"]:
    s["lr"] = dict(peak=PEAK)
  with pytest.raises(ExperimentError, match=r"^branches: the schedule has no "
                     r"stable phase \(schedule.kind 'per_stage'\)"):
    Experiment.from_config(c)


def test_dry_run_prints_the_rate_per_stage_and_each_branch(tmp_path):
  from growjax import dry_run  # pylint: disable=g-import-not-at-top
  exp = Experiment.from_config(config(branches=dict(decay_at=[0.5])), n_devices=1)
  text = dry_run.report(exp, tmp_path, n_devices=1)
  assert ("schedule wsd: warmup 10 steps to 0.01, stable to step 60, 1-sqrt "
          "decay to 0.001 over the last 20 steps") in text
  assert "  stage 1 steps 40-80 x0.5: lr at step 40: 0.001, 45: 0.005, 60: 0.005" in text
  assert "branch decay_at 0.5: from the trunk's step 32, decayed by step 40" in text
