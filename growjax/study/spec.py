"""A study file -> a validated `Study`: its shared base, its budget, its arms,
and every `Run` they make (see experiments/growth_study.py and the package
docstring). Every mistake is a `StudyError` naming its field, before any
compute; every run's experiment is validated too.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

from growjax import checks, cost
from growjax.config import ModelConfig
from growjax.experiment import Experiment, ExperimentError

KINDS = ("scratch", "small_only", "msg", "zero", "hyperclone", "stack")
GROWN = ("msg", "zero", "hyperclone", "stack")
# Every arm may also declare `schedule` (growjax.schedule's block; its peak
# comes from `lrs` in a swept arm, its warmup_steps and final from the arm's
# warmup_steps and final_lr_frac when not given) and `branches` (decay
# branches of each of its runs: decay_at, decay_fraction). A grown arm under
# a run-level schedule may sweep `lrs` too (the schedule's peak, final
# `final_lr_frac` of it): its first seed at every rate, its other seeds at
# the sweep's best, as scratch does.
ARM_FIELDS = {
    "scratch": ("name", "kind", "seeds", "lrs", "warmup_steps", "final_lr_frac",
                "model", "tokens", "schedule", "branches"),
    "small_only": ("name", "kind", "seeds", "lrs", "warmup_steps",
                   "final_lr_frac", "model", "flops", "schedule", "branches"),
    "grown": ("name", "kind", "seeds", "model", "stages", "allow_lr_jump",
              "schedule", "branches", "lrs", "final_lr_frac"),
}
GROWN_STAGE_FIELDS = ("model", "grow", "flops", "lr", "lr_multiplier")
TOP_FIELDS = ("name", "base", "budget_tokens", "arms", "stop_at_target",
              "target_margin")


class StudyError(ExperimentError):
  """A mistake in a study file, named by its field path (a user error: one
  line, exit status 2)."""


def _fail(path: str, message: str):
  raise StudyError(f"{path}: {message}")


def _check(path: str, fn, *args, **kwargs):
  """A growjax.checks call whose error names the study field."""
  try:
    return fn(path, *args, **kwargs)
  except ValueError as e:
    raise StudyError(str(e)) from None


def _plain(value):
  """ConfigDicts and tuples as plain dicts and lists."""
  if hasattr(value, "to_dict"):
    value = value.to_dict()
  if isinstance(value, Mapping):
    return {k: _plain(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_plain(v) for v in value]
  return value


@dataclasses.dataclass(frozen=True)
class Run:
  """One training run of the study: an experiment config and its place."""
  name: str  # unique; its sub-workdir's name
  arm: str
  kind: str
  seed: int
  lr: float  # peak learning rate of its first stage
  config: dict  # an experiment file's dict (growjax.experiment)
  sweep: bool = False  # part of the scratch learning-rate sweep
  # A decay branch: {trunk: the trunk run's name, at, start, end}
  # (growjax.schedule.Branch); trained from the trunk's checkpoint once the
  # trunk is done.
  branch: dict | None = None

  def label(self) -> str:
    where = f", decay_at {self.branch['at']:g}" if self.branch else ""
    return f"{self.arm} (lr {self.lr:g}, seed {self.seed}{where})"


@dataclasses.dataclass(frozen=True)
class Study:
  name: str
  base: dict  # experiment fields shared by every run; base["model"]: final shape
  budget_tokens: int  # tokens of the final shape from scratch: the FLOPs budget
  arms: tuple[dict, ...]
  stop_at_target: bool = True  # stop grown runs once they reach the target
  target_margin: float = 0.02  # ... after this much more loss drop (nats)

  # ----------------------------------------------------------- reading --
  @classmethod
  def from_config(cls, config) -> "Study":
    """Validates a whole study file; raises StudyError naming the field."""
    c = _plain(config)
    if not isinstance(c, dict):
      _fail("config", f"{c!r} is not a dict")
    for key in c:
      if key not in TOP_FIELDS:
        _fail(key, f"unknown field (expected one of {list(TOP_FIELDS)})")
    for key in ("base", "budget_tokens", "arms"):
      if key not in c:
        _fail(key, "missing (a study declares base, budget_tokens and arms)")
    base = c["base"]
    if not isinstance(base, dict) or "model" not in base or "data" not in base:
      _fail("base", "is not a dict with at least data, model and batch_size")
    if "batch_size" not in base:
      _fail("base.batch_size", "missing (sequences per step, every run)")
    for key in ("stages", "seed"):
      if key in base:
        _fail(f"base.{key}", "is set per run by the study; remove it here")
    budget = _check("budget_tokens", checks.positive_int, c["budget_tokens"])
    arms = c["arms"]
    if not isinstance(arms, list) or not arms:
      _fail("arms", f"{arms!r} is not a non-empty list of arms")
    names = set()
    for i, arm in enumerate(arms):
      _check_arm(i, arm)
      if arm["name"] in names:
        _fail(f"arms[{i}].name", f"{arm['name']!r} is used twice")
      names.add(arm["name"])
    if not any(a["kind"] == "scratch" for a in arms):
      _fail("arms", "has no scratch arm (the baseline every speedup is read against)")
    study = cls(name=c.get("name", "study"), base=base, budget_tokens=budget,
                arms=tuple(arms),
                stop_at_target=_check("stop_at_target", checks.boolean,
                                      c.get("stop_at_target", True)),
                target_margin=_check("target_margin", checks.number,
                                     c.get("target_margin", 0.02), low=0.0))
    # Every run's experiment is validated now, before any compute.
    for run in study.runs(best_lr={a["name"]: a["lrs"][0] for a in arms
                                   if "lrs" in a}):
      try:
        Experiment.from_config(run.config)
      except ExperimentError as e:
        raise StudyError(f"arms[{run.arm}] run {run.name}: {e}") from None
    return study

  # ------------------------------------------------------------- runs --
  def final_model(self) -> dict:
    return dict(self.base["model"])

  def _model_config(self, model: dict):
    data = self.base["data"]
    return ModelConfig(**model, vocab_size=data["vocab_size"],
                       max_len=data["seq_len"])

  def flops_per_token(self, model: dict) -> float:
    return cost.train_flops_per_token(self._model_config(model),
                                      self.base["data"]["seq_len"])

  def budget_flops(self) -> float:
    """FLOPs of the final shape trained on `budget_tokens`, as the trainer
    counts them (whole steps)."""
    return self.flops_per_token(self.final_model()) * self._whole_steps(
        self.budget_tokens)

  def _whole_steps(self, tokens: float) -> int:
    step = self.base["batch_size"] * self.base["data"]["seq_len"]
    return max(1, int(tokens // step)) * step

  def _tokens_for(self, model: dict, flops: float) -> int:
    return self._whole_steps(flops / self.flops_per_token(model))

  def _experiment(self, name: str, seed: int, model: dict, stages: list,
                  arm: dict, schedule: dict | None = None) -> dict:
    fields = {k: v for k, v in self.base.items() if k != "batch_size"}
    out = dict(fields, name=name, seed=seed, model=model, stages=stages)
    if schedule is not None:
      out["schedule"] = schedule
    if arm.get("branches") is not None:
      out["branches"] = dict(arm["branches"])
    return out

  def _run_schedule(self, arm: dict, lr: float, tokens: int) -> dict | None:
    """A swept arm's run-level schedule at rate `lr` (None: per-stage)."""
    s = dict(arm.get("schedule") or {})
    if s.get("kind", "per_stage") == "per_stage":
      return s or None
    steps = tokens // (self.base["batch_size"] * self.base["data"]["seq_len"])
    s.setdefault("warmup_steps", min(arm.get("warmup_steps", max(1, steps // 10)),
                                     steps))
    s.setdefault("final", lr * arm.get("final_lr_frac", 0.1))
    return dict(s, peak=lr)

  def _with_branches(self, run: Run) -> list[Run]:
    """`run` and, when its experiment declares them, its decay branches."""
    if "branches" not in run.config:
      return [run]
    from growjax import schedule  # pylint: disable=g-import-not-at-top
    from growjax.experiment import Experiment  # pylint: disable=g-import-not-at-top
    out = [run]
    for b in schedule.branches(Experiment.from_config(run.config)):
      name = f"{run.name}_decay{b.at:g}"
      out.append(dataclasses.replace(
          run, name=name, config=dict(b.config, name=name), sweep=False,
          branch={"trunk": run.name, "at": b.at, "start": b.start, "end": b.end}))
    return out

  def _schedule(self, arm: dict, lr: float, tokens: int) -> dict:
    steps = tokens // (self.base["batch_size"] * self.base["data"]["seq_len"])
    warmup = min(arm.get("warmup_steps", max(1, steps // 10)), steps)
    return dict(peak=lr, warmup_steps=warmup,
                final=lr * arm.get("final_lr_frac", 0.1))

  def every_run(self, best_lr: Mapping[str, float] | None = None) -> list[Run]:
    """`runs(best_lr)` and every other (rate, seed) of the swept arms: a run
    trained for an earlier best rate (before the sweep grew) is reported
    too, so every run that was tried is in the results."""
    planned = self.runs(best_lr)
    names = {r.name for r in planned}
    extra = []
    for arm in self.arms:
      for lr in arm.get("lrs", ())[:]:
        for r in self.runs({arm["name"]: lr}):
          if r.arm == arm["name"] and r.name not in names:
            names.add(r.name)
            extra.append(r)
    return planned + extra

  def runs(self, best_lr: Mapping[str, float] | None = None) -> list[Run]:
    """Every run of the study. Scratch and small-only arms sweep `lrs` at
    their first seed; their other seeds run at `best_lr[arm]` only, so they
    are listed once the sweep has chosen it (pass best_lr)."""
    best_lr = best_lr or {}
    out = []
    for arm in self.arms:
      kind, name = arm["kind"], arm["name"]
      if kind in ("scratch", "small_only"):
        model = dict(self.final_model(), **arm.get("model", {}))
        if kind == "scratch":
          tokens = self._whole_steps(arm.get("tokens", self.budget_tokens))
        else:
          tokens = self._tokens_for(model, arm.get("flops", 1.0) * self.budget_flops())
        seeds = arm["seeds"]
        plan = [(seeds[0], lr, len(arm["lrs"]) > 1) for lr in arm["lrs"]]
        if name in best_lr:
          plan += [(s, best_lr[name], False) for s in seeds[1:]]
        for seed, lr, sweep in plan:
          schedule = self._run_schedule(arm, lr, tokens)
          stage = dict(tokens=tokens, batch_size=self.base["batch_size"])
          if schedule is None or schedule.get("kind", "per_stage") == "per_stage":
            stage["lr"] = self._schedule(arm, lr, tokens)
          run_name = f"{name}_lr{lr:g}_s{seed}"
          run = Run(run_name, name, kind, seed, lr, self._experiment(
              run_name, seed, model, [stage], arm, schedule), sweep)
          # Every run branches, a sweep's too: a split study cannot wait for
          # the best rate (the trunk's checkpoints die with its machine).
          out += self._with_branches(run)
      else:
        model = dict(self.final_model(), **arm["model"])
        budget = self.budget_flops()
        for seed, lr, sweep in self._grown_plan(arm, best_lr):
          current, stages = model, []
          for j, s in enumerate(arm["stages"]):
            if j:
              current = dict(current, **s.get("model", {}))
            stage = dict(tokens=self._tokens_for(current, s["flops"] * budget),
                         batch_size=self.base["batch_size"])
            stage.update({k: (dict(s[k]) if k == "lr" else s[k])
                          for k in ("lr", "lr_multiplier") if k in s})
            if j:
              stage.update(model=s.get("model", {}), grow=dict(s["grow"]))
            stages.append(stage)
          schedule = dict(arm["schedule"]) if arm.get("schedule") else None
          if lr is None:
            run_name = f"{name}_s{seed}"
            lr = stages[0]["lr"]["peak"] if "lr" in stages[0] else schedule["peak"]
          else:
            run_name = f"{name}_lr{lr:g}_s{seed}"
            schedule.update(peak=lr)
            schedule.setdefault("final", lr * arm.get("final_lr_frac", 0.1))
          run = Run(run_name, name, kind, seed, lr, self._experiment(
              run_name, seed, model, stages, arm, schedule), sweep)
          out += self._with_branches(run)
    return out

  @staticmethod
  def _grown_plan(arm: dict, best_lr: Mapping[str, float]) -> list[tuple]:
    """(seed, lr or None, sweep) of each run of a grown arm: every seed at
    the schedule's peak, or with `lrs` the first seed at every rate and the
    others at the sweep's best once it is known."""
    seeds, lrs = arm["seeds"], arm.get("lrs")
    if not lrs:
      return [(s, None, False) for s in seeds]
    plan = [(seeds[0], lr, len(lrs) > 1) for lr in lrs]
    if arm["name"] in best_lr:
      plan += [(s, best_lr[arm["name"]], False) for s in seeds[1:]]
    return plan


def _check_lrs(path: str, arm: dict) -> None:
  """A swept arm's lrs (and final_lr_frac)."""
  lrs = arm.get("lrs")
  if not isinstance(lrs, list) or not lrs:
    _fail(f"{path}.lrs", f"{lrs!r} is not a non-empty list of learning rates")
  for j, lr in enumerate(lrs):
    _check(f"{path}.lrs[{j}]", checks.positive_number, lr)
  if len(set(lrs)) != len(lrs):
    _fail(f"{path}.lrs", f"{lrs} repeats a learning rate")
  if "final_lr_frac" in arm:
    _check(f"{path}.final_lr_frac", checks.number, arm["final_lr_frac"],
           low=0.0, high=1.0)


def _check_arm(i: int, arm) -> None:
  path = f"arms[{i}]"
  if not isinstance(arm, dict):
    _fail(path, f"{arm!r} is not a dict")
  kind = arm.get("kind")
  if kind not in KINDS:
    _fail(f"{path}.kind", f"{kind!r} is not one of {list(KINDS)}")
  fields = ARM_FIELDS["grown" if kind in GROWN else kind]
  for key in arm:
    if key not in fields:
      _fail(f"{path}.{key}", f"unknown field for a {kind} arm (expected one of {list(fields)})")
  if not isinstance(arm.get("name"), str) or not arm["name"].replace("_", "").isalnum():
    _fail(f"{path}.name", f"{arm.get('name')!r} is not a name of letters, digits and _")
  seeds = arm.get("seeds")
  if not isinstance(seeds, list) or not seeds:
    _fail(f"{path}.seeds", f"{seeds!r} is not a non-empty list of seeds")
  for j, s in enumerate(seeds):
    _check(f"{path}.seeds[{j}]", checks.integer, s, low=0)
  for key in ("schedule", "branches"):
    if arm.get(key) is not None and not isinstance(arm[key], dict):
      _fail(f"{path}.{key}", f"{arm[key]!r} is not a dict")
  run_level = (arm.get("schedule") or {}).get("kind", "per_stage") != "per_stage"
  if len(set(seeds)) != len(seeds):
    _fail(f"{path}.seeds", f"{seeds} repeats a seed")
  if kind in ("scratch", "small_only"):
    _check_lrs(path, arm)
    if "warmup_steps" in arm:
      _check(f"{path}.warmup_steps", checks.integer, arm["warmup_steps"], low=0)
    if "tokens" in arm:
      _check(f"{path}.tokens", checks.positive_int, arm["tokens"])
    if "flops" in arm:
      _check(f"{path}.flops", checks.positive_number, arm["flops"])
    if kind == "small_only" and not arm.get("model"):
      _fail(f"{path}.model", "missing (the small model's shape)")
    if run_level and "peak" in arm["schedule"]:
      _fail(f"{path}.schedule.peak", "comes from lrs in a swept arm; remove it")
    return
  if "lrs" in arm or "final_lr_frac" in arm:
    if not run_level:
      key = "lrs" if "lrs" in arm else "final_lr_frac"
      _fail(f"{path}.{key}", "a grown arm sweeps its rate under a run-level "
            "schedule only (schedule.kind \"wsd\"); per-stage rates are its "
            "stages' lr")
    _check_lrs(path, arm)
    if "peak" in arm["schedule"]:
      _fail(f"{path}.schedule.peak", "comes from lrs in a swept arm; remove it")
  elif run_level and "peak" not in arm["schedule"]:
    _fail(f"{path}.schedule.peak", "missing (the stable phase's rate, or lrs "
          "to sweep it)")
  if not isinstance(arm.get("model"), dict):
    _fail(f"{path}.model", "missing (stage 0's shape, as overrides of base.model)")
  stages = arm.get("stages")
  if not isinstance(stages, list) or len(stages) < 2:
    _fail(f"{path}.stages", "is not a list of at least two stages (stage 0, then growths)")
  total = 0.0
  prev_final = None
  for j, s in enumerate(stages):
    spath = f"{path}.stages[{j}]"
    if not isinstance(s, dict):
      _fail(spath, f"{s!r} is not a dict")
    for key in s:
      if key not in GROWN_STAGE_FIELDS or (j == 0 and key in ("model", "grow")):
        _fail(f"{spath}.{key}", "unknown field" + (
            " for stage 0 (its shape is the arm's model)" if j == 0 else
            f" (expected one of {list(GROWN_STAGE_FIELDS)})"))
    if j and "grow" not in s:
      _fail(f"{spath}.grow", "missing (how this stage grows)")
    total += _check(f"{spath}.flops", checks.number, s.get("flops"), low=0.0,
                    low_open=True, high=1.0)
    if run_level:  # the arm's schedule sets the rate; the experiment checks the rest
      if "lr" in s:
        _fail(f"{spath}.lr", "the arm's schedule sets the rate (schedule.kind "
              f"{arm['schedule']['kind']!r}); remove it (lr_multiplier scales a stage)")
      continue
    lr = s.get("lr")
    if not isinstance(lr, dict) or "peak" not in lr:
      _fail(f"{spath}.lr", "is not a dict with at least peak")
    peak = _check(f"{spath}.lr.peak", checks.positive_number, lr["peak"])
    if prev_final is not None and peak > prev_final * (1 + 1e-9) and not arm.get(
        "allow_lr_jump", False):
      _fail(f"{spath}.lr.peak", f"{peak:g} > {prev_final:g}, the rate where "
            "stage {j - 1} ended: growth would throw progress away (set "
            "allow_lr_jump=True in an arm that ablates exactly this)".replace(
                "{j - 1}", str(j - 1)))
    prev_final = lr.get("final", 0.0)
  if total > 1.0 + 1e-9:
    _fail(f"{path}.stages", f"spend {total:g} of the budget's FLOPs (at most 1)")
