r"""A growth study: every arm of a growth-vs-scratch comparison, in one command.

    python -m growjax.study --config experiments/growth_study.py --workdir runs/study
    python -m growjax.study --config experiments/growth_study.py:runlocal --workdir /tmp/s

One study file (see experiments/growth_study.py) declares the shared setup
(`base`: data, the final model, batch size, mesh, eval, ...), the primary
budget (`budget_tokens` of the final shape, i.e. a FLOPs budget) and the arms:

  scratch     the final shape from scratch: a learning-rate sweep over `lrs`
              at the first seed, then the best rate at every other seed
  msg, stack, hyperclone, zero, ...
              grown arms: `model` is stage 0's shape, `stages` the growths;
              each stage spends a fraction (`flops`) of the budget
  small_only  stage 0's shape alone, trained for the whole budget: the control
              that says how much of a speedup is a small model being cheap,
              not growth

Each run trains in its own sub-workdir (WORKDIR/runs/NAME) through the same
trainer as `growjax.main`, one after the other or `--parallel N` at a time
(each in its own process, on the devices of `--devices`). A killed study
picks up where it stopped: finished runs are skipped, an unfinished one
resumes from its checkpoint. Grown and small-only runs stop early once their
smoothed validation loss reaches the best scratch run's final loss (when that
is known), or when the budget is spent, whichever comes first.

At the end it writes WORKDIR/study.json (the corpus's fingerprint, one row per
run, the speedup table per loss level with bootstrap CIs; see growjax.compare)
and WORKDIR/study.png.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import pathlib
from typing import Any, Mapping

from growjax import checks
from growjax.experiment import ExperimentError

log = logging.getLogger("growjax")

KINDS = ("scratch", "small_only", "msg", "zero", "hyperclone", "stack")
GROWN = ("msg", "zero", "hyperclone", "stack")
ARM_FIELDS = {
    "scratch": ("name", "kind", "seeds", "lrs", "warmup_steps", "final_lr_frac",
                "model", "tokens"),
    "small_only": ("name", "kind", "seeds", "lrs", "warmup_steps",
                   "final_lr_frac", "model", "flops"),
    "grown": ("name", "kind", "seeds", "model", "stages", "allow_lr_jump"),
}
GROWN_STAGE_FIELDS = ("model", "grow", "flops", "lr")
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

  def label(self) -> str:
    return f"{self.arm} (lr {self.lr:g}, seed {self.seed})"


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
    from growjax.experiment import Experiment, ExperimentError  # pylint: disable=g-import-not-at-top
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
    from growjax.config import ModelConfig  # pylint: disable=g-import-not-at-top
    data = self.base["data"]
    return ModelConfig(**model, vocab_size=data["vocab_size"],
                       max_len=data["seq_len"])

  def flops_per_token(self, model: dict) -> float:
    from growjax import cost  # pylint: disable=g-import-not-at-top
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

  def _experiment(self, name: str, seed: int, model: dict, stages: list) -> dict:
    fields = {k: v for k, v in self.base.items() if k != "batch_size"}
    return dict(fields, name=name, seed=seed, model=model, stages=stages)

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
          stage = dict(tokens=tokens, batch_size=self.base["batch_size"],
                       lr=self._schedule(arm, lr, tokens))
          run_name = f"{name}_lr{lr:g}_s{seed}"
          out.append(Run(run_name, name, kind, seed, lr,
                         self._experiment(run_name, seed, model, [stage]), sweep))
      else:
        model = dict(self.final_model(), **arm["model"])
        budget = self.budget_flops()
        for seed in arm["seeds"]:
          current, stages = model, []
          for j, s in enumerate(arm["stages"]):
            if j:
              current = dict(current, **s.get("model", {}))
            stage = dict(tokens=self._tokens_for(current, s["flops"] * budget),
                         batch_size=self.base["batch_size"], lr=dict(s["lr"]))
            if j:
              stage.update(model=s.get("model", {}), grow=dict(s["grow"]))
            stages.append(stage)
          run_name = f"{name}_s{seed}"
          out.append(Run(run_name, name, kind, seed, stages[0]["lr"]["peak"],
                         self._experiment(run_name, seed, model, stages)))
    return out


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
  if len(set(seeds)) != len(seeds):
    _fail(f"{path}.seeds", f"{seeds} repeats a seed")
  if kind in ("scratch", "small_only"):
    lrs = arm.get("lrs")
    if not isinstance(lrs, list) or not lrs:
      _fail(f"{path}.lrs", f"{lrs!r} is not a non-empty list of learning rates")
    for j, lr in enumerate(lrs):
      _check(f"{path}.lrs[{j}]", checks.positive_number, lr)
    if len(set(lrs)) != len(lrs):
      _fail(f"{path}.lrs", f"{lrs} repeats a learning rate")
    if "warmup_steps" in arm:
      _check(f"{path}.warmup_steps", checks.integer, arm["warmup_steps"], low=0)
    if "final_lr_frac" in arm:
      _check(f"{path}.final_lr_frac", checks.number, arm["final_lr_frac"],
             low=0.0, high=1.0)
    if "tokens" in arm:
      _check(f"{path}.tokens", checks.positive_int, arm["tokens"])
    if "flops" in arm:
      _check(f"{path}.flops", checks.positive_number, arm["flops"])
    if kind == "small_only" and not arm.get("model"):
      _fail(f"{path}.model", "missing (the small model's shape)")
    return
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


# ------------------------------------------------------------- results --
def is_done(run_dir: pathlib.Path) -> dict | None:
  path = run_dir / "done.json"
  return json.loads(path.read_text()) if path.exists() else None


def best_lrs(study: Study, workdir: pathlib.Path) -> dict[str, float]:
  """For each swept arm whose sweep has finished, the learning rate with the
  lowest smoothed final validation loss."""
  from growjax import compare  # pylint: disable=g-import-not-at-top
  from growjax.train import metrics as metrics_lib  # pylint: disable=g-import-not-at-top
  out = {}
  for arm in study.arms:
    if "lrs" not in arm:
      continue
    if len(arm["lrs"]) == 1:
      out[arm["name"]] = arm["lrs"][0]
      continue
    sweep = [r for r in study.runs() if r.arm == arm["name"] and r.sweep]
    if not all(is_done(workdir / "runs" / r.name) for r in sweep):
      continue
    finals = {r.lr: smoothed_final(metrics_lib.read(workdir / "runs" / r.name))
              for r in sweep}
    out[arm["name"]] = min(finals, key=lambda lr: finals[lr])
  return out


def target_loss(study: Study, workdir: pathlib.Path) -> float | None:
  """The best scratch sweep run's smoothed final validation loss, once the
  sweep is done: where grown runs may stop."""
  from growjax.train import metrics as metrics_lib  # pylint: disable=g-import-not-at-top
  best = best_lrs(study, workdir)
  losses = [smoothed_final(metrics_lib.read(workdir / "runs" / r.name))
            for r in study.runs(best) if r.kind == "scratch" and r.sweep
            and r.lr == best.get(r.arm) and is_done(workdir / "runs" / r.name)]
  return min(losses) if losses else None


def smoothed_final(rows: list, half_life: float = 0.5) -> float:
  """A run's final validation loss on the smoothed curve that growjax.compare
  reads every run on."""
  from growjax import compare  # pylint: disable=g-import-not-at-top
  curve = compare.eval_curve(compare.Run("run", "scratch", None, None, rows))
  return float(compare.monotone_curve(curve.loss_E, curve.flops_E, half_life)[-1])


def _math_ok(x) -> bool:
  return x is not None and math.isfinite(x)


# ------------------------------------------------------------- running --
def run_one(study: Study, run: Run, workdir: pathlib.Path,
            target: float | None = None) -> dict:
  """Trains one run in WORKDIR/runs/NAME (resuming it if it was cut short)
  and marks it done. Grown and small-only runs stop once their smoothed
  validation loss is `target_margin` below `target`, grown runs only in
  their last stage (a target reached before the growth would read the small
  model, which is the small-only control's job)."""
  import jax  # pylint: disable=g-import-not-at-top
  from growjax.experiment import Experiment  # pylint: disable=g-import-not-at-top
  from growjax.train import loop  # pylint: disable=g-import-not-at-top
  from growjax.train import metrics as metrics_lib  # pylint: disable=g-import-not-at-top
  run_dir = workdir / "runs" / run.name
  done = is_done(run_dir)
  if done:
    return done
  exp = Experiment.from_config(run.config, n_devices=jax.device_count())
  stop_when = None
  if target is not None and study.stop_at_target and run.kind != "scratch":
    level = target - study.target_margin

    last_stage = len(exp.stages) - 1

    def stop_when(row):  # called after `row` is written to metrics.jsonl
      if "val_loss" not in row or row["stage"] != last_stage:
        return None  # a grown arm is read once it has grown
      evals = [r for r in metrics_lib.read(run_dir) if "val_loss" in r]
      if len(evals) >= 3 and smoothed_final(evals) <= level:
        return (f"smoothed validation loss reached {level:.4f} (the best "
                f"scratch run's final {target:.4f} - {study.target_margin})")
      return None
  summary = loop.run(exp, run_dir, stop_when=stop_when)
  record = {"name": run.name, "arm": run.arm, "kind": run.kind, "seed": run.seed,
            "lr": run.lr, "stopped": summary.get("stop_reason"),
            "target": target, "preempted": summary.get("preempted")}
  # Done: trained to its end, or stopped at its target; a preempted run is
  # not (re-running the study resumes it from its checkpoint).
  if not summary.get("preempted") and (not summary.get("stopped")
                                       or summary.get("stop_reason")):
    (run_dir / "done.json").write_text(json.dumps(record, indent=1) + "\n")
  return record


def _claim(run_dir: pathlib.Path) -> bool:
  """Takes a run for this process (several schedulers may share a study's
  workdir, e.g. one per GPU): a `claim` file made exclusively, holding host
  and pid. A claim whose process is gone (same host) is taken over."""
  import os  # pylint: disable=g-import-not-at-top
  import socket  # pylint: disable=g-import-not-at-top
  run_dir.mkdir(parents=True, exist_ok=True)
  path = run_dir / "claim"
  me = f"{socket.gethostname()} {os.getpid()}"
  for _ in range(2):
    try:
      fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
      host, _, pid = path.read_text().partition(" ")
      if host != socket.gethostname() or _alive(int(pid or 0)):
        return False
      path.unlink(missing_ok=True)  # its owner died: take it over
      continue
    with os.fdopen(fd, "w") as f:
      f.write(me)
    return True
  return False


def _alive(pid: int) -> bool:
  import os  # pylint: disable=g-import-not-at-top
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return pid > 0


def _release(run_dir: pathlib.Path) -> None:
  (run_dir / "claim").unlink(missing_ok=True)


def run_all(study: Study, worker_args: list[str], workdir: pathlib.Path, *,
            parallel: int = 1, devices: list[str] | None = None,
            deadline: float | None = None) -> list[str]:
  """Every run of the study, `parallel` at a time as subprocesses (slot i on
  device `devices[i % len(devices)]` via CUDA_VISIBLE_DEVICES), or in this
  process when parallel == 1; a worker runs `python -m growjax.study
  WORKER_ARGS --only NAME` (the study's own flags, so overrides carry over).
  The scratch sweep goes first; the other seeds of
  its best rate are queued once it is done. Several schedulers may share one
  workdir (runs are claimed). Starts no run after `deadline` (time.time()).
  Returns the names of runs that failed."""
  import os  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  from growjax import data  # pylint: disable=g-import-not-at-top
  from growjax.experiment import Experiment  # pylint: disable=g-import-not-at-top
  workdir.mkdir(parents=True, exist_ok=True)
  # One corpus for every run, prepared before any of them starts.
  data.prepare(Experiment.from_config(study.runs()[0].config).data)

  def todo() -> list[Run]:
    runs = study.runs(best_lrs(study, workdir))
    runs.sort(key=lambda r: (not r.sweep, r.kind != "scratch"))
    return [r for r in runs if not is_done(workdir / "runs" / r.name)]

  def late() -> bool:
    return deadline is not None and time.time() > deadline

  failures: list[str] = []
  if parallel == 1:
    while not late():
      run = next((r for r in todo() if r.name not in failures
                  and _claim(workdir / "runs" / r.name)), None)
      if run is None:
        break
      log.info("study: run %s (%s)", run.name, run.label())
      try:
        record = run_one(study, run, workdir, target_loss(study, workdir))
      finally:
        _release(workdir / "runs" / run.name)
      if record.get("preempted"):
        log.info("study: stopped by %s; run the same command to resume",
                 record["preempted"])
        break
    return failures
  slots: dict[int, tuple | None] = {i: None for i in range(parallel)}
  devices = devices or []
  while True:
    for i, job in slots.items():
      if job is not None and job[0].poll() is not None:
        proc, run = job
        _release(workdir / "runs" / run.name)
        if proc.returncode != 0:
          failures.append(run.name)
          log.error("study: run %s failed (exit %d); see %s", run.name,
                    proc.returncode, workdir / "runs" / run.name / "log.txt")
        slots[i] = None
    free = [i for i, job in slots.items() if job is None]
    waiting = [r for r in todo() if r.name not in failures]
    if late():
      waiting = []
    for i in free:
      run = next((r for r in waiting if _claim(workdir / "runs" / r.name)), None)
      if run is None:
        break
      waiting.remove(run)
      env = dict(os.environ)
      if devices:
        env["CUDA_VISIBLE_DEVICES"] = devices[i % len(devices)]
      target = target_loss(study, workdir)
      cmd = [sys.executable, "-m", "growjax.study", *worker_args,
             "--only", run.name, "--claimed"]
      if target is not None:
        cmd += ["--target", repr(target)]
      log.info("study: slot %d runs %s%s", i, run.name,
               f" on device {env['CUDA_VISIBLE_DEVICES']}" if devices else "")
      with open(workdir / "runs" / run.name / "log.txt", "a") as f:
        slots[i] = (subprocess.Popen(cmd, env=env, stdout=f,
                                     stderr=subprocess.STDOUT), run)
    if all(job is None for job in slots.values()):
      break  # nothing runs here and nothing left to start (others hold the rest)
    time.sleep(1)
  return failures


# ------------------------------------------------------------- results --
def _arm_name(run: Run, study: Study) -> str:
  """The name `growjax.compare` groups seeds by: swept arms by their rate."""
  arm = next(a for a in study.arms if a["name"] == run.arm)
  return f"{run.arm}_lr{run.lr:g}" if len(arm.get("lrs", ())) > 1 else run.arm


def _common_prefix(runs: list) -> list:
  """Seeds of one arm cut to the evaluations they all made (a run that
  stopped at its target evaluates fewer times than its sibling)."""
  from growjax import compare  # pylint: disable=g-import-not-at-top
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


def finish(study: Study, workdir: pathlib.Path, *, n_boot: int = 1000) -> dict:
  """study.json and study.png from every finished run's metrics."""
  from growjax import compare, data, model, report  # pylint: disable=g-import-not-at-top
  from growjax.experiment import Experiment  # pylint: disable=g-import-not-at-top
  from growjax.train import metrics as metrics_lib  # pylint: disable=g-import-not-at-top
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
    runs.append(compare.Run(_arm_name(run, study), run.kind, run.seed, run.lr, rows))
    rows_out.append({
        "name": run.name, "arm": _arm_name(run, study), "kind": run.kind,
        "seed": run.seed, "lr": run.lr, "final_params": params,
        "stages": [{k: getattr(s.model, k) for k in ("d_model", "n_layers", "n_heads", "d_ff")}
                   | {"tokens": s.steps(exp.seq_len) * s.batch_size * exp.seq_len,
                      "method": s.grow.method if s.grow else None} for s in exp.stages],
        "tokens": tokens, "tokens_per_param": tokens / params,
        "epochs": tokens / corpus_tokens,
        "metrics": f"benchmarks/results/metrics/{run.name}.jsonl",
        "final_val_loss": float(curve.loss_E[-1]),
        "final_val_loss_se": compare.final_se(curve),
        "smoothed_final_val_loss": smoothed_final(rows),
        "train_flops": float(curve.flops_E[-1]),
        "budget_flops": study.budget_flops(),
        "stopped": done.get("stopped")})
  summary = compare.summarize(_common_prefix(runs), n_boot=n_boot)
  result = {
      "name": study.name, "corpus": corpus.fingerprint(),
      "budget_tokens": study.budget_tokens, "budget_flops": study.budget_flops(),
      "flop_convention": "PaLM: 6N + 6DV + 12LHKs per token (growjax.cost)",
      "arms": rows_out,
      "speedups": summary["speedups"], "loss_deltas": summary["loss_deltas"],
      "levels": summary["levels"], "baseline": summary["baseline"],
      "wall_clock": summary["wall_clock"], "notes": summary["notes"],
      "comparison": {k: summary[k] for k in ("smoothing", "ci", "ci_over", "n_boot",
                                              "arm_stats", "level_fractions")},
  }
  (workdir / "study.json").write_text(json.dumps(result, indent=1) + "\n")
  report.plot_study(runs, workdir / "study.png", levels=summary["levels"])
  return result


def format_result(result: dict) -> str:
  """The speedup table: one line per (level, arm)."""
  lines = [f"baseline {result['baseline']}; levels {', '.join(f'{l:.4f}' for l in result['levels'])}",
           f"{'level':>8} {'arm':<22} {'FLOPs ratio':>12} {'95% CI':>18} {'reached':>8}"]
  for s in result["speedups"]:
    ratio = "not reached" if s["flops_ratio"] is None else f"{s['flops_ratio']:.2f}x"
    ci = ("" if s["ci_low"] is None and s["ci_high"] is None else
          f"[{s['ci_low'] if s['ci_low'] is None else round(s['ci_low'], 2)}, "
          f"{s['ci_high'] if s['ci_high'] is None else round(s['ci_high'], 2)}]")
    lines.append(f"{s['level']:>8.4f} {s['arm']:<22} {ratio:>12} {ci:>18} "
                 f"{str(s['reached']):>8}")
  return "\n".join(lines)


def export(result: dict, workdir: pathlib.Path, out_dir: pathlib.Path,
           stem: str = "growth_study") -> None:
  """Copies study.json/png and every run's metrics.jsonl into a results
  folder (benchmarks/results/ and its metrics/)."""
  import shutil  # pylint: disable=g-import-not-at-top
  (out_dir / "metrics").mkdir(parents=True, exist_ok=True)
  for arm in result["arms"]:
    shutil.copyfile(workdir / "runs" / arm["name"] / "metrics.jsonl",
                    out_dir / "metrics" / f"{arm['name']}.jsonl")
  shutil.copyfile(workdir / "study.json", out_dir / f"{stem}.json")
  shutil.copyfile(workdir / "study.png", out_dir / f"{stem}.png")


# ---------------------------------------------------------------- command --
def _flags():
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string("workdir", None, "The study's directory (runs/NAME/ per run).")
  flags.DEFINE_integer("parallel", 1, "Runs at once, each in its own process "
                       "(1: one after the other, in this process).")
  flags.DEFINE_string("devices", None, "Comma-separated CUDA device ids; slot i "
                      "uses devices[i % n] (e.g. 0,1,0,1: two runs per GPU).")
  flags.DEFINE_float("deadline_s", None, "Start no run after this many seconds.")
  flags.DEFINE_string("only", None, "Train this one run (by name) and stop.")
  flags.DEFINE_bool("claimed", False, "(--only) the scheduler already claimed it.")
  flags.DEFINE_float("target", None, "(--only) stop at this smoothed loss.")
  flags.DEFINE_integer("n_boot", 1000, "Bootstrap samples of the speedup CIs.")
  flags.DEFINE_string("export", None, "Also copy study.json/png and the runs' "
                      "metrics here (e.g. benchmarks/results).")
  flags.mark_flags_as_required(["workdir"])
  return flags.FLAGS


def _worker_args(argv: list[str]) -> list[str]:
  """This command's arguments for a worker: the study's own, without the
  scheduler's."""
  skip = ("--parallel", "--devices", "--deadline_s", "--export", "--only",
          "--claimed", "--target", "--n_boot")
  out, i = [], 0
  while i < len(argv):
    a = argv[i]
    name = a.split("=", 1)[0]
    if name in skip:
      i += 1 if "=" in a or name == "--claimed" else 2
      continue
    out.append(a)
    i += 1
  return out


def main() -> int:
  """python -m growjax.study: every run, then the table and study.json."""
  import sys  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  from growjax import command  # pylint: disable=g-import-not-at-top
  flags = FLAGS
  study = Study.from_config(flags.config)
  workdir = pathlib.Path(flags.workdir)
  if flags.only:
    run = next((r for r in study.runs(best_lrs(study, workdir))
                if r.name == flags.only), None)
    if run is None:
      raise command.UsageError(f"--only: {flags.only!r} is not a run of this study")
    run_dir = workdir / "runs" / run.name
    if not flags.claimed and not _claim(run_dir):
      raise command.UsageError(f"--only: {run.name} is being trained by "
                               f"{(run_dir / 'claim').read_text()}")
    try:
      run_one(study, run, workdir, flags.target)
    finally:
      if not flags.claimed:
        _release(run_dir)
    return 0
  devices = [d for d in (flags.devices or "").split(",") if d]
  deadline = time.time() + flags.deadline_s if flags.deadline_s else None
  failures = run_all(study, _worker_args(sys.argv[1:]), workdir,
                     parallel=flags.parallel, devices=devices, deadline=deadline)
  result = finish(study, workdir, n_boot=flags.n_boot)
  print(format_result(result))
  print(f"written: {workdir / 'study.json'}, {workdir / 'study.png'}")
  if flags.export:
    export(result, workdir, pathlib.Path(flags.export), stem=study.name)
    print(f"exported to {flags.export}")
  if failures:
    print(f"runs that failed (see runs/NAME/log.txt): {', '.join(failures)}",
          file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  from growjax import command as _command  # pylint: disable=g-import-not-at-top
  FLAGS = _flags()
  _command.run(main, experiment=True)
