"""Experiment files -> a typed, validated `Experiment`.

An experiment file's `get_config(arg)` returns an ml_collections ConfigDict
(see experiments/toy.py). `Experiment.from_config` reads all of it before any
compute and raises `ExperimentError` naming the field path, the value and
what was expected, e.g. `stages[1].model.d_model: 48 < 64, a stage cannot
shrink`.

Two steps, one place each:
  - the dataclasses below are plain typed data; each checks its own values
    (through `growjax.checks`) and holds its fields' defaults; a growth's
    options are checked, and defaulted, by the growth method itself
    (`growjax.grow.methods`);
  - `validate(exp)` runs once over the whole experiment for what needs more
    than one field: the growth plan between stages (shrinking, head_dim, what
    a method can grow), steps against warmup and ramp, batches against the
    mesh.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Mapping
import warnings

import jax

from growjax import checks, grow, hf, mup, parallel
from growjax import model as model_lib
from growjax.config import ModelConfig, MupBase
from growjax import schedule as schedule_lib
from growjax.schedule import Branches, RunSchedule
from growjax.data import DataConfig
from growjax.grow import methods
from growjax.logical import MESH_AXES


class ExperimentError(ValueError):
  """A mistake in an experiment file, named by its field path."""


def _fail(path: str, message: str):
  raise ExperimentError(f"{path}: {message}")


def _as_dict(value, path: str) -> dict:
  if value is None:
    return {}
  if hasattr(value, "to_dict"):
    value = value.to_dict()
  if not isinstance(value, Mapping):
    _fail(path, f"{value!r} is not a dict")
  return dict(value)


def _typed(cls, raw: Mapping, path: str, build=None):
  """cls(**raw) (or build(raw), e.g. cls.from_dict), naming unknown fields
  and the field of a failed check."""
  names = [f.name for f in dataclasses.fields(cls)]
  for key in raw:
    if key not in names:
      _fail(f"{path}.{key}", f"unknown field (expected one of {names})")
  try:
    return build(raw) if build else cls(**raw)
  except TypeError as e:  # a missing required field
    _fail(path, str(e).split(".__init__() ")[-1])
  except ExperimentError:
    raise
  except ValueError as e:  # "[Cls.]field: message" -> "path.field: message"
    _fail(*_located(path, str(e), names))


def _located(path: str, message: str, fields) -> tuple[str, str]:
  """(path.field, message) when `message` starts with one of `fields`."""
  head, sep, rest = message.partition(": ")
  field = head.split(".")[-1]  # "Cls.field" or "field", maybe "field[i]"
  if sep and field.split("[")[0] in fields:
    return f"{path}.{field}", rest
  return path, message


def _below_one(name: str, value) -> float:
  """A decay rate in [0, 1)."""
  value = checks.number(name, value, low=0.0, high=1.0)
  if value == 1.0:
    raise ValueError(f"{name}: 1.0 is not below 1 (a decay rate in [0, 1))")
  return value


@dataclasses.dataclass(frozen=True)
class Schedule:
  """Learning rate of one stage under the run schedule 'per_stage': linear
  warmup, then cosine to `final` (growjax.schedule)."""
  peak: float  # learning rate after warmup (> 0)
  warmup_steps: int = 0  # optimizer steps of linear warmup from 0 (>= 0)
  final: float = 0.0  # learning rate at the stage's last step (0 <= final <= peak)

  def __post_init__(self):
    checks.positive_number("peak", self.peak)
    checks.integer("warmup_steps", self.warmup_steps, low=0)
    checks.number("final", self.final, low=0.0, high=self.peak)


@dataclasses.dataclass(frozen=True)
class Growth:
  """How a stage grows from the previous one: a `growjax.grow.METHODS` name
  and every option of that method (`grow.methods.OPTIONS` documents each and
  holds its one default)."""
  method: str  # "msg", "zero", "hyperclone" or "stack"
  options: dict  # the method's options, checked, defaults filled in

  @classmethod
  def from_dict(cls, raw: Mapping[str, Any]) -> "Growth":
    """From an experiment's `grow=dict(method=..., **options)`."""
    raw = dict(raw)
    if "method" not in raw:
      raise ValueError("method: missing (one of "
                       f"{sorted(methods.METHODS)})")
    method = raw.pop("method")
    methods.get(method)
    return cls(method, methods.check_options(method, raw))

  def grow_options(self) -> dict:
    """The keyword options of `grow.grow` and `grow.grow_opt_state`."""
    return {k: self.options[k] for k in methods.get(self.method).grow_options}

  def to_dict(self) -> dict:
    return {"method": self.method, **self.options}


@dataclasses.dataclass(frozen=True)
class Stage:
  index: int
  model: ModelConfig
  tokens: int  # training tokens of this stage (> 0)
  batch_size: int  # sequences per optimizer step, global (> 0)
  lr: Schedule | None  # None under a run-level schedule (schedule.kind 'wsd')
  grow: Growth | None  # None for stage 0
  microbatches: int = 1  # gradient accumulation: batch_size is split into this many
  lr_multiplier: float = 1.0  # this stage's rate x this (>= 0; width growth, muP)

  def __post_init__(self):
    checks.number("lr_multiplier", self.lr_multiplier, low=0.0)
    checks.positive_int("tokens", self.tokens)
    checks.positive_int("batch_size", self.batch_size)
    checks.positive_int("microbatches", self.microbatches)
    if self.batch_size % self.microbatches:
      raise ValueError(f"microbatches: {self.microbatches} does not divide "
                       f"batch_size {self.batch_size}")

  def steps(self, seq_len: int) -> int:
    return self.tokens // (self.batch_size * seq_len)

  def ramp(self, start: int):
    """The `grow.Ramp` of this stage's growth masks, for a stage that begins
    at global step `start`; None when its method uses no masks."""
    if self.grow is None or not grow.METHODS[self.grow.method].uses_masks:
      return None
    return grow.Ramp(start=start, steps=self.grow.options["ramp_steps"])


@dataclasses.dataclass(frozen=True)
class Optimizer:
  """AdamW with global-norm clipping (FLM-101B's settings by default)."""
  b1: float = 0.9  # first-moment decay, in [0, 1)
  b2: float = 0.95  # second-moment decay, in [0, 1)
  eps: float = 1e-8  # added to the root of the second moment (> 0)
  weight_decay: float = 0.1  # decoupled, >= 0; not on LayerNorm scales and biases
  clip_norm: float = 1.0  # global gradient norm clip (> 0)
  # After a hyperclone growth, scale each parameter's update by
  # growjax.grow.lr_multipliers (1/n along tiled input axes), so one step of
  # the grown model equals the grown step of the small one.
  clone_lr_multipliers: bool = True

  def __post_init__(self):
    checks.boolean("clone_lr_multipliers", self.clone_lr_multipliers)
    _below_one("b1", self.b1)
    _below_one("b2", self.b2)
    checks.positive_number("eps", self.eps)
    checks.number("weight_decay", self.weight_decay, low=0.0)
    checks.positive_number("clip_norm", self.clip_norm)


@dataclasses.dataclass(frozen=True)
class Mesh:
  """Device mesh; -1 takes all remaining devices (at most one axis)."""
  data: int = -1  # replicas (> 0, or -1)
  fsdp: int = 1  # replicas that also split parameters and optimizer state
  tensor: int = 1  # tensor parallelism over mlp, heads, vocab
  rules: tuple = ()  # overrides of growjax.parallel.RULES: ((logical, mesh axes), ...)

  def __post_init__(self):
    sizes = [getattr(self, a) for a in MESH_AXES]
    for name, v in zip(MESH_AXES, sizes):
      if not (checks.is_int(v) and v == -1):
        checks.positive_int(name, v)
    if sizes.count(-1) > 1:
      raise ValueError(f"data: {sizes} uses -1 on more than one axis")
    object.__setattr__(self, "rules", parallel.rules_from_config(
        self.rules, base=(), field="rules"))

  def devices_needed(self) -> int | None:
    """Devices of a fully specified mesh; None when an axis is -1."""
    sizes = [getattr(self, a) for a in MESH_AXES]
    return None if -1 in sizes else math.prod(sizes)

  def shape(self, n_devices: int) -> dict[str, int]:
    """The axis sizes over `n_devices` (the -1 axis takes the rest): the
    arguments of `parallel.make_mesh`. ValueError when they do not fit."""
    sizes = {a: getattr(self, a) for a in MESH_AXES}
    fixed = math.prod(v for v in sizes.values() if v != -1)
    if -1 in sizes.values():
      if n_devices % fixed:
        raise ValueError(f"{n_devices} devices do not split into a mesh with "
                         f"fixed axes of product {fixed}")
      return {k: (n_devices // fixed if v == -1 else v)
              for k, v in sizes.items()}
    if fixed != n_devices:
      raise ValueError(f"mesh {sizes} needs {fixed} devices, {n_devices} are "
                       "present")
    return sizes


@dataclasses.dataclass(frozen=True)
class Checkpoint:
  every_steps: int = 500  # save every N optimizer steps (and at each stage end)
  keep: int = 3  # checkpoints kept per stage

  def __post_init__(self):
    checks.positive_int("every_steps", self.every_steps)
    checks.positive_int("keep", self.keep)


@dataclasses.dataclass(frozen=True)
class Eval:
  """Validation: one fixed held-out set (`growjax.data.validation_windows`),
  the same for every run on the same data and seq_len, whatever the seed or
  batch size, so runs can be compared on it."""
  every_steps: int = 200  # validation loss every N steps (and at stage ends)
  tokens: int = 131_072  # size of the validation set in predicted tokens
  batch_size: int | None = None  # windows per evaluation call; None: stage 0's batch_size

  def __post_init__(self):
    checks.positive_int("every_steps", self.every_steps)
    checks.positive_int("tokens", self.tokens)
    if self.batch_size is not None:
      checks.positive_int("batch_size", self.batch_size)


@dataclasses.dataclass(frozen=True)
class Train:
  log_every: int = 10  # steps between metrics lines
  # What each block keeps for the backward pass (growjax.model.REMAT: "none",
  # "dots", "offload", "full"); "auto": the fastest that fits in device memory
  # by the memory model (growjax.memory.resolve_remat; "none" where no limit
  # is known, as on CPU). True / False (before policies): deprecated, read as
  # "full" / "none".
  remat: str = "auto"
  loss_chunk: int | None = None  # positions per unembedding chunk (growjax.loss); None: whole [B, T, V] logits
  progress: bool = True  # show a progress bar
  # Updates skipped in a row for a non-finite loss or gradient norm before
  # the run stops (>= 1; growjax.train.guard).
  max_skipped_in_a_row: int = 10
  # Roll back to the last checkpoint, skipping the batches since, when a
  # step's loss exceeds this multiple of its recent mean (> 1); None: never.
  spike_factor: float | None = None

  def __post_init__(self):
    checks.positive_int("log_every", self.log_every)
    if isinstance(self.remat, bool):  # the one place the old bools are read
      policy = "full" if self.remat else "none"
      warnings.warn(f"train.remat: {self.remat} is deprecated; write "
                    f"remat={policy!r}", FutureWarning, stacklevel=2)
      object.__setattr__(self, "remat", policy)
    checks.one_of("remat", self.remat, ("auto",) + model_lib.REMAT)
    if self.loss_chunk is not None:
      checks.positive_int("loss_chunk", self.loss_chunk)
    checks.boolean("progress", self.progress)
    checks.positive_int("max_skipped_in_a_row", self.max_skipped_in_a_row)
    if self.spike_factor is not None:
      checks.number("spike_factor", self.spike_factor, low=1.0, low_open=True)


TOP_FIELDS = ("name", "seed", "data", "model", "stages", "mesh", "checkpoint",
              "eval", "optimizer", "train", "init_from", "schedule", "branches")
STAGE_FIELDS = ("model", "tokens", "batch_size", "lr", "grow", "microbatches",
                "lr_multiplier")


@dataclasses.dataclass(frozen=True)
class Experiment:
  name: str
  seed: int
  data: DataConfig
  stages: tuple[Stage, ...]
  mesh: Mesh
  checkpoint: Checkpoint
  eval: Eval
  optimizer: Optimizer
  train: Train
  config: dict = dataclasses.field(default=None, compare=False, repr=False)  # as read
  init_from: str | None = None  # "hf:DIR": stage 0 starts from that checkpoint
  schedule: RunSchedule = RunSchedule()  # the run's learning rate (growjax.schedule)
  branches: Branches | None = None  # decay branches (wsd only)

  @property
  def seq_len(self) -> int:
    return self.data.seq_len

  def eval_batch_size(self) -> int:
    """Windows per evaluation call."""
    return self.eval.batch_size or self.stages[0].batch_size

  def stage_starts(self) -> list[int]:
    """Global optimizer step at which each stage begins, plus the end."""
    starts = [0]
    for s in self.stages:
      starts.append(starts[-1] + s.steps(self.seq_len))
    return starts

  def fingerprint(self) -> dict:
    """What must match for a workdir's checkpoints to belong to this run."""
    return {"seed": self.seed, "data": dataclasses.asdict(self.data),
            "stages": [{"model": s.model.to_dict(), "tokens": s.tokens,
                        "batch_size": s.batch_size,
                        "grow": s.grow and s.grow.to_dict()}
                       for s in self.stages],
            **({"init_from": self.init_from} if self.init_from else {})}

  @classmethod
  def from_config(cls, config, *, n_devices: int | None = None) -> "Experiment":
    """Reads and validates a whole experiment ConfigDict (the mesh against
    `n_devices` when given); raises ExperimentError."""
    c = _as_dict(config, "config")
    for key in c:
      if key not in TOP_FIELDS:
        _fail(key, f"unknown field (expected one of {list(TOP_FIELDS)})")
    for key in ("data", "stages") + (() if "init_from" in c else ("model",)):
      if key not in c:
        _fail(key, "missing (every experiment declares data, model and stages)")
    seed = c.get("seed", 0)
    if not checks.is_int(seed):
      _fail("seed", f"{seed!r} is not an integer")
    try:
      data = DataConfig.from_dict(_as_dict(c["data"], "data"))
    except ValueError as e:
      _fail("data", str(e))
    model = _as_dict(c["model"], "model")
    for key, source in (("vocab_size", "vocab_size"), ("max_len", "seq_len")):
      if key in model:
        _fail(f"model.{key}", f"comes from data ({source}); remove it here")
    if "init_from" in c:
      model = _pretrained_model(c["init_from"], model, data)
    stages_raw = c["stages"]
    if not isinstance(stages_raw, (list, tuple)) or not stages_raw:
      _fail("stages", f"{stages_raw!r} is not a non-empty list of stages")
    base = dict(model, vocab_size=data.vocab_size, max_len=data.seq_len)
    schedule = _typed(RunSchedule, _as_dict(c.get("schedule"), "schedule"),
                      "schedule", RunSchedule.from_dict)
    branches = None
    if c.get("branches") is not None:
      branches = _typed(Branches, _as_dict(c["branches"], "branches"), "branches")
    stages: list[Stage] = []
    for i, raw in enumerate(stages_raw):
      stages.append(_stage(i, _as_dict(raw, f"stages[{i}]"), base, schedule))
      base = stages[-1].model.to_dict()
    blocks = {name: _typed(kind, _as_dict(c.get(name), name), name)
              for name, kind in (("mesh", Mesh), ("checkpoint", Checkpoint),
                                 ("eval", Eval), ("optimizer", Optimizer),
                                 ("train", Train))}
    exp = cls(name=c.get("name", "experiment"), seed=seed, data=data,
              stages=tuple(stages), **blocks,
              config=json.loads(json.dumps(c, default=list)),
              init_from=c.get("init_from"), schedule=schedule, branches=branches)
    validate(exp, n_devices=n_devices)
    return exp


def _pretrained_model(value, model: dict, data: DataConfig) -> dict:
  """Stage 0's model fields for `init_from = "hf:DIR"`: the checkpoint's
  config, checked (config.json and the safetensors headers; no tensor is
  read) before any compute. `model` may add settings the checkpoint does not
  fix (dtype, init_std); a shape or architecture field must agree with it."""
  try:
    fields = hf.check_pretrained(hf.init_from_dir(value))
  except (ValueError, FileNotFoundError) as e:
    _fail("init_from", str(e).removeprefix("init_from: "))
  fields.pop("max_len")  # the context length comes from data
  for key, v in model.items():
    if key in fields and fields[key] != v:
      _fail(f"model.{key}", f"{v!r}, but init_from's checkpoint has "
            f"{fields[key]!r} (stage 0 is that model; grow it in a later "
            "stage)")
  if model.get("param") == "mup":  # the checkpoint is sp: muP equals it at its base only
    own = {k: fields[k] for k in ("d_model", "n_heads", "d_ff", "head_dim")}
    try:
      base = dataclasses.asdict(MupBase.of(model.get("mup_base"), fields["head_dim"]))
    except ValueError:
      base = model.get("mup_base")  # not a base at all: named the same way
    if base != own:
      shown = {k: v for k, v in base.items() if k != "head_dim" or v != own[k]} if (
          isinstance(base, dict)) else base
      _fail("model.mup_base", f"{shown}, but init_from's checkpoint is "
            "standard-parametrized: muP computes its function only at its base "
            f"shape, so mup_base must be the checkpoint's widths {own} (grow "
            "from there)")
  if fields["vocab_size"] != data.vocab_size:
    _fail("init_from", f"{value}: the checkpoint's vocab_size "
          f"{fields['vocab_size']} is not data.vocab_size {data.vocab_size} "
          "(its embedding rows are the tokenizer's pieces)")
  fields.pop("vocab_size")
  return {**fields, **model}


def _stage(i: int, raw: dict, base: dict, schedule: RunSchedule) -> Stage:
  """Stage i, typed: its model is `base` (the previous stage's model) with
  the stage's overrides."""
  path = f"stages[{i}]"
  for key in raw:
    if key not in STAGE_FIELDS:
      _fail(f"{path}.{key}", f"unknown field (expected one of {list(STAGE_FIELDS)})")
  per_stage = schedule.kind == "per_stage"
  for key in ("tokens", "batch_size") + (("lr",) if per_stage else ()):
    if key not in raw:
      _fail(f"{path}.{key}", "missing (every stage declares tokens, batch_size "
            "and, under the per_stage schedule, lr)")
  if not per_stage and "lr" in raw:
    _fail(f"{path}.lr", f"the run's schedule sets the rate (schedule.kind "
          f"{schedule.kind!r}); remove it (lr_multiplier scales a stage)")
  overrides = _as_dict(raw.get("model"), f"{path}.model")
  if i == 0 and overrides:
    _fail(f"{path}.model", "stage 0 trains the top-level `model`; put its shape there")
  for key in overrides:
    if key in ("vocab_size", "max_len"):
      _fail(f"{path}.model.{key}", "comes from data and cannot change between stages")
  grow_raw = raw.get("grow")
  if (i > 0 and base.get("tie_embeddings") and "tie_embeddings" not in overrides
      and _as_dict(grow_raw, f"{path}.grow").get("method") == "hyperclone"
      and overrides.get("d_model", base["d_model"]) != base["d_model"]):
    # hyperclone cannot copy a shared table: the output layer is untied
    # (exact; growjax.grow.axes.untie), said in the log and the export
    overrides = {**overrides, "tie_embeddings": False}
  model = _typed(ModelConfig, {**base, **overrides}, f"{path}.model")
  lr = (_typed(Schedule, _as_dict(raw["lr"], f"{path}.lr"), f"{path}.lr")
        if per_stage else None)
  growth = None
  if i == 0 and grow_raw:
    _fail(f"{path}.grow", "stage 0 has nothing to grow from")
  if i > 0:
    if not grow_raw:
      _fail(f"{path}.grow", "missing (a later stage says how it grows, e.g. "
            "dict(method='msg', ramp_steps=100))")
    grow_raw = _as_dict(grow_raw, f"{path}.grow")
    try:
      growth = Growth.from_dict(grow_raw)
    except ValueError as e:  # names the method or one of its options
      _fail(*_located(f"{path}.grow", str(e), ["method", *grow_raw]))
  given = {k: raw[k] for k in ("tokens", "batch_size", "microbatches",
                               "lr_multiplier") if k in raw}  # Stage holds the defaults
  return _typed(Stage, dict(index=i, model=model, lr=lr, grow=growth, **given),
                path)


def validate(exp: Experiment, *, n_devices: int | None = None) -> None:
  """The checks that need more than one field, run once over the whole
  experiment: growth plans, steps, and (with `n_devices`) the mesh."""
  mesh_shape = None
  if n_devices is not None:
    try:
      mesh_shape = exp.mesh.shape(n_devices)
    except ValueError as e:
      _fail("mesh", str(e))
  for prev, stage in zip((None,) + exp.stages, exp.stages):
    path = f"stages[{stage.index}]"
    if prev is not None:
      try:
        grow.plan(prev.model, stage.model, method=stage.grow.method)
      except grow.PlanError as e:
        if e.field is None:
          _fail(f"{path}.grow", str(e))
        _fail(f"{path}.model.{e.field}", e.detail)
    steps = stage.steps(exp.seq_len)
    if steps < 1:
      _fail(f"{path}.tokens", f"{stage.tokens} tokens make no step of "
            f"batch_size {stage.batch_size} x seq_len {exp.seq_len}")
    if stage.lr is not None and stage.lr.warmup_steps > steps:
      _fail(f"{path}.lr.warmup_steps",
            f"{stage.lr.warmup_steps} > the stage's {steps} steps")
    if stage.index and exp.schedule.rewarm_steps > steps:
      _fail("schedule.rewarm_steps", f"{exp.schedule.rewarm_steps} > the "
            f"{steps} steps of stages[{stage.index}] (a re-warm ends within "
            "its stage)")
    ramp = stage.ramp(0)
    if ramp is not None and ramp.steps > steps:
      _fail(f"{path}.grow.ramp_steps", f"{ramp.steps} > the stage's {steps} "
            "steps (the masks must reach 1 and fold within their stage)")
    if mesh_shape is not None:
      split = mesh_shape["data"] * mesh_shape["fsdp"]
      if (stage.batch_size // stage.microbatches) % split:
        _fail(f"{path}.batch_size",
              f"{stage.batch_size} (in {stage.microbatches} microbatches) does "
              f"not split over the mesh's data x fsdp = {split} devices")
  _validate_schedule(exp)
  if mesh_shape is not None:
    split = mesh_shape["data"] * mesh_shape["fsdp"]
    batch = exp.eval_batch_size()
    if batch % split:
      _fail("eval.batch_size", f"{batch} does not split over the mesh's data x "
            f"fsdp = {split} devices")


def _validate_schedule(exp: Experiment) -> None:
  """The run schedule against the run's steps, and every decay branch's
  experiment (each validated as a run of its own)."""
  s, total = exp.schedule, exp.stage_starts()[-1]
  if s.kind == "wsd":
    decay = s.decay_steps(total)
    if decay < 1:
      _fail("schedule.decay_fraction", f"{s.decay_fraction:g} of the run's "
            f"{total} steps is no step of decay")
    if s.warmup_steps + decay > total:
      _fail("schedule.warmup_steps", f"{s.warmup_steps} warmup + {decay} decay "
            f"steps > the run's {total} steps")
  try:
    found = schedule_lib.branches(exp)
  except ValueError as e:
    _fail(*_located("branches", str(e), ["decay_at"]))
  for b in found:
    try:
      Experiment.from_config(b.config)
    except ExperimentError as e:
      _fail(f"branches.decay_at[{exp.branches.decay_at.index(b.at)}]",
            f"{b.at:g}: its branch (steps {b.start}-{b.end}) is not a valid "
            f"run: {e}")


def parse_arg(arg: str | None, **defaults) -> dict:
  """Parses a get_config argument like "runlocal,size=small" against typed
  defaults (big_vision's convention): a bare name sets a bool to True."""
  values = dict(defaults)
  for item in filter(None, (arg or "").split(",")):
    key, _, raw = item.partition("=")
    if key not in defaults:
      raise ExperimentError(f"config argument {key!r}: unknown (expected one of {sorted(defaults)})")
    kind = type(defaults[key])
    if kind is bool:
      values[key] = raw.lower() not in ("0", "false", "no") if raw else True
    else:
      try:
        values[key] = kind(raw)
      except ValueError:
        raise ExperimentError(f"config argument {key}={raw!r}: not a {kind.__name__}") from None
  return values


def lr_multipliers(exp: "Experiment", stage: Stage):
  """The update multiplier of every parameter of `stage`: muP's for the
  stage's shape (`mup.lr_multipliers`: base fan-in / fan-in of each hidden
  matrix; all 1 under sp) times, unless `optimizer.clone_lr_multipliers` is
  off, the product over the growths up to it of `grow.lr_multipliers`
  (under sp 1/n along the input axes a hyperclone growth tiled n times; 1
  for every other method, and under muP, whose own multipliers already hold
  hyperclone's). None when all are 1. The optimizer applies them
  (growjax.train.optimizer) and the dry run prints them."""
  total = mup.lr_multipliers(stage.model)
  if exp.optimizer.clone_lr_multipliers:
    for prev, s in zip(exp.stages[:stage.index],
                       exp.stages[1:stage.index + 1]):
      m = grow.lr_multipliers(prev.model, s.model, method=s.grow.method,
                              **s.grow.grow_options())
      total = jax.tree.map(lambda a, b: a * b, total, m)
  if all(float(v) == 1.0 for v in jax.tree.leaves(total)):
    return None
  return total
