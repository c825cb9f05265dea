"""The learning rate of a whole run, across its stages, and its decay branches.

An experiment's `schedule` block picks one of two kinds:

  per_stage  (the default) each stage's own `lr`: linear warmup, then cosine
             to its `final`, rewound at each growth. The committed studies
             used it; they reproduce unchanged.
  wsd        warmup-stable-decay over the run's global steps, which stages
             and growth do not restart: linear warmup from 0 to `peak`, the
             constant `peak`, then one decay to `final` over the last
             `decay_fraction` of the run's steps, shaped `linear`, `cosine`
             or `1-sqrt` (Hägele et al. 2024, arXiv 2405.18392). Optionally,
             after each growth, a re-warm: `rewarm_steps` steps from
             `rewarm_from` x the rate back to it.

Under either kind a stage's `lr_multiplier` scales its rate (width growth;
muP). A stage's rate at global optimizer step t (the count the update of step
t + 1 uses) is

    lr_multiplier[k] x base(t) x rewarm_k(t)

with base the WSD curve and rewarm_k rising linearly from `rewarm_from` at the
growth into stage k to 1 after `rewarm_steps`.

`branches` (wsd only) declares decay branches once: for each fraction `a` of
`decay_at`, a branch is a run of its own that ends at step E = round(a x N) of
the trunk's N steps and decays over its last round(decay_fraction x E) steps,
from a checkpoint of the trunk's stable phase (`growjax.train.branch`). Its
experiment is the trunk's, cut at E, with the decay moved there:
`branch_config` builds it, so a branch is an ordinary experiment.

Plain data and pure functions; the rates are optax schedules.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Mapping

import jax.numpy as jnp
import optax

from growjax import checks

KINDS = ("per_stage", "wsd")
SHAPES = ("linear", "cosine", "1-sqrt")
WSD_FIELDS = ("peak", "warmup_steps", "decay_fraction", "decay_shape", "final",
              "rewarm_steps", "rewarm_from")


@dataclasses.dataclass(frozen=True)
class RunSchedule:
  """The run's learning-rate schedule (the experiment's `schedule` block)."""
  kind: str = "per_stage"  # "per_stage" (each stage's lr) or "wsd"
  peak: float | None = None  # wsd: the stable phase's rate (> 0)
  warmup_steps: int = 0  # wsd: linear warmup from 0 over the run's first steps (>= 0)
  decay_fraction: float = 0.2  # wsd: the last fraction of the run's steps decays, in (0, 1]
  decay_shape: str = "1-sqrt"  # wsd: "linear", "cosine" or "1-sqrt"
  final: float = 0.0  # wsd: the rate at the run's end (0 <= final <= peak)
  rewarm_steps: int = 0  # wsd: after each growth, steps back to the rate (0: no re-warm)
  rewarm_from: float = 0.0  # wsd: the fraction of the rate a re-warm starts at, in [0, 1)

  def __post_init__(self):
    checks.one_of("kind", self.kind, KINDS)
    if self.kind == "per_stage":
      return
    if self.peak is None:
      raise ValueError("peak: missing (the stable phase's rate, for kind 'wsd')")
    checks.positive_number("peak", self.peak)
    checks.integer("warmup_steps", self.warmup_steps, low=0)
    checks.number("decay_fraction", self.decay_fraction, low=0.0, low_open=True,
                  high=1.0)
    checks.one_of("decay_shape", self.decay_shape, SHAPES)
    checks.number("final", self.final, low=0.0, high=self.peak)
    checks.integer("rewarm_steps", self.rewarm_steps, low=0)
    checks.number("rewarm_from", self.rewarm_from, low=0.0, high=1.0)
    if self.rewarm_from == 1.0:
      raise ValueError("rewarm_from: 1.0 is not below 1 (a re-warm starts "
                       "below the rate; rewarm_steps=0 means none)")

  @classmethod
  def from_dict(cls, raw: Mapping) -> "RunSchedule":
    """From an experiment's `schedule=dict(kind=..., ...)`; a wsd field
    under kind 'per_stage' is refused by name."""
    raw = dict(raw)
    kind = raw.get("kind", "per_stage")
    if kind == "per_stage":
      for key in raw:
        if key in WSD_FIELDS:
          raise ValueError(f"{key}: only for kind 'wsd' (kind 'per_stage' "
                           "takes each stage's lr)")
    return cls(**raw)

  def decay_steps(self, total_steps: int) -> int:
    """Steps of the decay at the end of a run of `total_steps`."""
    return int(round(self.decay_fraction * total_steps))

  def stable_end(self, total_steps: int) -> int:
    """The global step at which the decay starts."""
    return total_steps - self.decay_steps(total_steps)


@dataclasses.dataclass(frozen=True)
class Branches:
  """Decay branches of a wsd run (the experiment's `branches` block)."""
  decay_at: tuple  # fractions of the run's steps at which a branch ends, each in (0, 1]
  decay_fraction: float = 0.2  # the last fraction of each branch's steps decays, in (0, 1]

  def __post_init__(self):
    if not isinstance(self.decay_at, (list, tuple)) or not self.decay_at:
      raise ValueError(f"decay_at: {self.decay_at!r} is not a non-empty list "
                       "of fractions of the run")
    for i, a in enumerate(self.decay_at):
      checks.number(f"decay_at[{i}]", a, low=0.0, low_open=True)
      if a > 1.0:
        raise ValueError(f"decay_at[{i}]: {a:g} > 1, past the run's budget (a "
                         "branch ends within the trunk's steps)")
    if len(set(self.decay_at)) != len(self.decay_at):
      raise ValueError(f"decay_at: {list(self.decay_at)} repeats a point")
    object.__setattr__(self, "decay_at", tuple(sorted(self.decay_at)))
    checks.number("decay_fraction", self.decay_fraction, low=0.0,
                  low_open=True, high=1.0)


@dataclasses.dataclass(frozen=True)
class Branch:
  """One decay branch of a trunk run."""
  at: float  # the `decay_at` fraction
  start: int  # the trunk's global step it starts from (a checkpoint there)
  end: int  # its last global step
  config: dict  # its experiment (the trunk's, cut at `end`, decaying from `start`)

  @property
  def label(self) -> str:
    return f"decay_at {self.at:g}"


# ------------------------------------------------------------------ rates --
def _decay(shape: str, peak: float, final: float, steps: int) -> optax.Schedule:
  """From `peak` at 0 to `final` at `steps`."""
  if shape == "linear":
    return optax.linear_schedule(peak, final, steps)
  if shape == "cosine":
    return optax.cosine_decay_schedule(peak, steps, alpha=final / peak)

  def one_minus_sqrt(count):
    frac = jnp.clip(count / steps, 0.0, 1.0)
    return final + (peak - final) * (1.0 - jnp.sqrt(frac))
  return one_minus_sqrt


def wsd_base(s: RunSchedule, total_steps: int) -> optax.Schedule:
  """The WSD curve of a run of `total_steps`, against the global step."""
  start = s.stable_end(total_steps)
  parts = [optax.constant_schedule(s.peak),
           _decay(s.decay_shape, s.peak, s.final, total_steps - start)]
  boundaries = [start]
  if s.warmup_steps:
    parts.insert(0, optax.linear_schedule(0.0, s.peak, s.warmup_steps))
    boundaries.insert(0, s.warmup_steps)
  return optax.join_schedules(parts, boundaries)


def per_stage(stage, start_step: int, steps: int) -> optax.Schedule:
  """Linear warmup from 0 to the stage's `peak`, cosine to its `final` at the
  stage's end, counted from `start_step` (the schedule is rewound at each
  growth; the optimizer's count carries over). With no warmup the stage
  starts at `peak` (a growth that continues the previous stage's rate)."""
  lr = stage.lr
  base = optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=lr.peak, warmup_steps=lr.warmup_steps,
      decay_steps=max(steps, lr.warmup_steps + 1), end_value=lr.final)
  return lambda count: base(count - start_step)


def stage_rate(exp, stage) -> optax.Schedule:
  """The rate of `stage` of experiment `exp` against the global step (valid
  within the stage's steps): its multiplier times the run's schedule."""
  starts = exp.stage_starts()
  start, end = starts[stage.index], starts[stage.index + 1]
  s, mult = exp.schedule, stage.lr_multiplier
  if s.kind == "per_stage":
    base = per_stage(stage, start, end - start)
    return base if mult == 1.0 else (lambda count: mult * base(count))
  base = wsd_base(s, starts[-1])
  if stage.index == 0 or not s.rewarm_steps:
    return lambda count: mult * base(count)
  lo = s.rewarm_from

  def rewarmed(count):
    rise = jnp.clip((count - start) / s.rewarm_steps, 0.0, 1.0)
    return mult * base(count) * (lo + (1.0 - lo) * rise)
  return rewarmed


def describe(exp) -> list[str]:
  """The schedule per stage, for the dry run: each stage's steps and its rate
  at its first step, its last, and where it changes phase."""
  starts, s = exp.stage_starts(), exp.schedule
  total = starts[-1]
  lines = []
  if s.kind == "per_stage":
    lines.append("schedule per_stage: each stage's own warmup + cosine, "
                 "rewound at each growth")
  else:
    stable = s.stable_end(total)
    rewarm = (f"; after each growth a re-warm of {s.rewarm_steps} steps from "
              f"{s.rewarm_from:g}x" if s.rewarm_steps else "; no re-warm")
    lines.append(f"schedule wsd: warmup {s.warmup_steps} steps to {s.peak:g}, "
                 f"stable to step {stable}, {s.decay_shape} decay to "
                 f"{s.final:g} over the last {total - stable} steps "
                 f"({s.decay_fraction:g} of {total}){rewarm}")
  for stage in exp.stages:
    a, b = starts[stage.index], starts[stage.index + 1]
    rate = stage_rate(exp, stage)
    marks = sorted({a, b - 1} | {t for t in _phase_steps(exp, stage) if a <= t < b})
    at = ", ".join(f"{t}: {float(rate(t)):.3g}" for t in marks)
    mult = (f" x{stage.lr_multiplier:g}" if stage.lr_multiplier != 1.0 else "")
    lines.append(f"  stage {stage.index} steps {a}-{b}{mult}: lr at step {at}")
  return lines


def _phase_steps(exp, stage) -> list[int]:
  """Steps where the rate changes phase (warmup end, decay start, re-warm end)."""
  s, starts = exp.schedule, exp.stage_starts()
  start = starts[stage.index]
  if s.kind == "per_stage":
    return [start + stage.lr.warmup_steps]
  out = [s.warmup_steps, s.stable_end(starts[-1])]
  if stage.index and s.rewarm_steps:
    out.append(start + s.rewarm_steps)
  return out


# -------------------------------------------------------------- branches --
def branches(exp) -> list[Branch]:
  """The decay branches `exp` declares (none without a `branches` block). A
  branch identical to the trunk (same decay start and end) is the trunk's own
  decay, and left out. Raises ValueError naming `decay_at[i]` for a branch
  that does not start in the stable phase."""
  b, s = exp.branches, exp.schedule
  if b is None:
    return []
  total = exp.stage_starts()[-1]
  if s.kind != "wsd":
    raise ValueError(f"the schedule has no stable phase (schedule.kind "
                     f"{s.kind!r}); decay branches need schedule.kind 'wsd'")
  stable = s.stable_end(total)
  if stable <= s.warmup_steps:
    raise ValueError(f"the schedule has no stable phase (warmup to step "
                     f"{s.warmup_steps}, decay from step {stable}): no "
                     "checkpoint to branch from")
  out = []
  for i, a in enumerate(b.decay_at):
    end = int(round(a * total))
    decay = int(round(b.decay_fraction * end))
    start = end - decay
    where = f"decay_at[{i}]: {a:g} (steps {start}-{end})"
    if decay < 1:
      raise ValueError(f"{where}: its decay of {b.decay_fraction:g} x {end} "
                       "steps is no step")
    if start < s.warmup_steps:
      raise ValueError(f"{where}: starts at step {start}, inside the warmup "
                       f"(to step {s.warmup_steps}), not the stable phase")
    if start > stable:
      raise ValueError(f"{where}: starts at step {start}, after the trunk's "
                       f"decay began (step {stable}), not in its stable phase")
    if (start, end) == (stable, total):
      continue  # the trunk itself
    out.append(Branch(a, start, end, branch_config(exp, a, start, end)))
  return out


def branch_config(exp, at: float, start: int, end: int) -> dict:
  """The experiment dict of the branch from step `start` to `end`: the
  trunk's config (as read) with its stages cut at `end`, its decay over the
  steps from `start`, no branches, and its own name."""
  c = copy.deepcopy(exp.config)
  c.pop("branches", None)
  c["name"] = f"{exp.name}_decay{at:g}"
  starts = exp.stage_starts()
  stages = []
  for stage, raw in zip(exp.stages, c["stages"]):
    a, b = starts[stage.index], starts[stage.index + 1]
    if a >= end and stage.index:
      break
    if b > end:
      raw = dict(raw, tokens=(end - a) * stage.batch_size * exp.seq_len)
    stages.append(raw)
  c["stages"] = stages
  # decay_steps(end) must be exactly end - start: round() absorbs the float error
  c["schedule"] = dict(c["schedule"], decay_fraction=(end - start) / end)
  return c


def checkpoint_steps(exp) -> tuple[int, ...]:
  """The trunk's steps its branches start from: saved and kept."""
  return tuple(sorted({b.start for b in branches(exp)}))

