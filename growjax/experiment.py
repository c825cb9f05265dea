"""Experiment files -> a typed, validated `Experiment`.

An experiment file's `get_config(arg)` returns an ml_collections ConfigDict
(see experiments/toy.py). `Experiment.from_config` reads all of it before any
compute and raises `ExperimentError` naming the field path, the value and
what was expected, e.g. `stages[1].model.d_model: 48 < 64, a stage cannot
shrink`. Every default lives in the dataclasses below.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Mapping

from growjax.config import ModelConfig
from growjax.data import DataConfig


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


def _typed(cls, raw: Mapping, path: str):
  """cls(**raw), naming unknown fields and the field of a failed check."""
  names = [f.name for f in dataclasses.fields(cls)]
  for key in raw:
    if key not in names:
      _fail(f"{path}.{key}", f"unknown field (expected one of {names})")
  try:
    return cls(**raw)
  except TypeError as e:  # a missing required field
    _fail(path, str(e).split(".__init__() ")[-1])
  except ExperimentError:
    raise
  except ValueError as e:  # "Cls.field: message" -> "path.field: message"
    message = str(e)
    if ": " in message and "." in message.split(": ")[0]:
      field, message = message.split(": ", 1)
      _fail(f"{path}.{field.split('.')[-1]}", message)
    _fail(path, message)


def _check(cls_name: str, field: str, ok: bool, value, expected: str):
  if not ok:
    raise ValueError(f"{cls_name}.{field}: {value!r} {expected}")


def _is_int(v) -> bool:
  return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
  return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclasses.dataclass(frozen=True)
class Schedule:
  """Learning rate of one stage: linear warmup, then cosine to `final`."""
  peak: float  # learning rate after warmup (> 0)
  warmup_steps: int = 0  # optimizer steps of linear warmup from 0 (>= 0)
  final: float = 0.0  # learning rate at the stage's last step (0 <= final <= peak)

  def __post_init__(self):
    _check("Schedule", "peak", _is_num(self.peak) and self.peak > 0, self.peak,
           "is not a positive learning rate")
    _check("Schedule", "warmup_steps",
           _is_int(self.warmup_steps) and self.warmup_steps >= 0,
           self.warmup_steps, "is not a non-negative integer")
    _check("Schedule", "final",
           _is_num(self.final) and 0 <= self.final <= self.peak, self.final,
           f"is not between 0 and peak={self.peak}")


@dataclasses.dataclass(frozen=True)
class Growth:
  """How a stage grows from the previous one (see growjax.grow.METHODS)."""
  method: str  # a growjax.grow.METHODS name: "msg", "zero", "hyperclone", "stack"
  ramp_steps: int = 0  # msg only: steps over which new-structure masks rise 0 -> 1
  new_layers: Any = "interleave"  # where new layers go: "top", "bottom", "interleave" or a list of indices

  def __post_init__(self):
    from growjax import grow  # pylint: disable=g-import-not-at-top
    _check("Growth", "method", self.method in grow.METHODS, self.method,
           f"is not a growth method (one of {sorted(grow.METHODS)})")
    _check("Growth", "ramp_steps",
           _is_int(self.ramp_steps) and self.ramp_steps >= 0, self.ramp_steps,
           "is not a non-negative integer")
    _check("Growth", "ramp_steps", self.method == "msg" or not self.ramp_steps,
           self.ramp_steps, f"is set but method {self.method!r} has no masks")
    ok = (self.new_layers in ("top", "bottom", "interleave") or (
        isinstance(self.new_layers, (list, tuple))
        and all(_is_int(i) and i >= 0 for i in self.new_layers)))
    _check("Growth", "new_layers", ok, self.new_layers,
           "is not 'top', 'bottom', 'interleave' or a list of layer indices")
    if isinstance(self.new_layers, list):
      object.__setattr__(self, "new_layers", tuple(self.new_layers))

  def options(self, old: ModelConfig, new: ModelConfig) -> dict:
    """Keyword options for `grow.grow`: where new layers go, when any do."""
    if new.n_layers > old.n_layers and self.method != "stack":
      return {"new_layers": self.new_layers}
    return {}


@dataclasses.dataclass(frozen=True)
class Stage:
  index: int
  model: ModelConfig
  tokens: int  # training tokens of this stage (> 0)
  batch_size: int  # sequences per optimizer step, global
  lr: Schedule
  grow: Growth | None  # None for stage 0
  microbatches: int = 1  # gradient accumulation: batch_size is split into this many

  def steps(self, seq_len: int) -> int:
    return self.tokens // (self.batch_size * seq_len)


@dataclasses.dataclass(frozen=True)
class Optimizer:
  """AdamW with global-norm clipping (FLM-101B's settings by default)."""
  b1: float = 0.9
  b2: float = 0.95
  eps: float = 1e-8
  weight_decay: float = 0.1  # not applied to LayerNorm scales and biases
  clip_norm: float = 1.0  # global gradient norm clip


@dataclasses.dataclass(frozen=True)
class Mesh:
  """Device mesh; -1 takes all remaining devices (at most one axis)."""
  data: int = -1
  fsdp: int = 1
  tensor: int = 1
  rules: tuple = ()  # overrides of growjax.parallel.RULES: ((logical, mesh axes), ...)

  def __post_init__(self):
    sizes = (self.data, self.fsdp, self.tensor)
    for name, v in zip(("data", "fsdp", "tensor"), sizes):
      _check("Mesh", name, _is_int(v) and (v >= 1 or v == -1), v,
             "is not a positive integer or -1")
    _check("Mesh", "data", sizes.count(-1) <= 1, sizes,
           "uses -1 on more than one axis")

  def devices_needed(self) -> int | None:
    """Devices of a fully specified mesh; None when an axis is -1."""
    sizes = (self.data, self.fsdp, self.tensor)
    return None if -1 in sizes else math.prod(sizes)

  def shape(self, n_devices: int) -> dict[str, int]:
    sizes = {"data": self.data, "fsdp": self.fsdp, "tensor": self.tensor}
    fixed = math.prod(v for v in sizes.values() if v != -1)
    if -1 in sizes.values():
      if n_devices % fixed:
        raise ValueError(f"Mesh.data: {n_devices} devices do not split into "
                         f"a mesh with fixed axes of product {fixed}")
      sizes = {k: (n_devices // fixed if v == -1 else v)
               for k, v in sizes.items()}
    elif fixed != n_devices:
      raise ValueError(f"Mesh.data: mesh {sizes} needs {fixed} devices, "
                       f"{n_devices} are present")
    return sizes


@dataclasses.dataclass(frozen=True)
class Checkpoint:
  every_steps: int = 500  # save every N optimizer steps (and at each stage end)
  keep: int = 3  # checkpoints kept per stage

  def __post_init__(self):
    for f in ("every_steps", "keep"):
      v = getattr(self, f)
      _check("Checkpoint", f, _is_int(v) and v >= 1, v,
             "is not a positive integer")


@dataclasses.dataclass(frozen=True)
class Eval:
  every_steps: int = 200  # validation loss every N steps (and at stage ends)
  batches: int = 8  # validation batches per evaluation

  def __post_init__(self):
    for f in ("every_steps", "batches"):
      v = getattr(self, f)
      _check("Eval", f, _is_int(v) and v >= 1, v, "is not a positive integer")


@dataclasses.dataclass(frozen=True)
class Train:
  log_every: int = 10  # steps between metrics lines
  remat: bool = False  # recompute block activations in the backward pass
  progress: bool = True  # show a progress bar

  def __post_init__(self):
    _check("Train", "log_every", _is_int(self.log_every) and self.log_every >= 1,
           self.log_every, "is not a positive integer")


TOP_FIELDS = ("name", "seed", "data", "model", "stages", "mesh", "checkpoint",
              "eval", "optimizer", "train")
STAGE_FIELDS = ("model", "tokens", "batch_size", "lr", "grow", "microbatches")


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

  @property
  def seq_len(self) -> int:
    return self.data.seq_len

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
                        "grow": s.grow and dataclasses.asdict(s.grow)}
                       for s in self.stages]}

  @classmethod
  def from_config(cls, config, *, n_devices: int | None = None) -> "Experiment":
    """Validates a whole experiment ConfigDict; raises ExperimentError."""
    c = _as_dict(config, "config")
    for key in c:
      if key not in TOP_FIELDS:
        _fail(key, f"unknown field (expected one of {list(TOP_FIELDS)})")
    for key in ("data", "model", "stages"):
      if key not in c:
        _fail(key, "missing (every experiment declares data, model and stages)")
    seed = c.get("seed", 0)
    if not _is_int(seed):
      _fail("seed", f"{seed!r} is not an integer")
    try:
      data = DataConfig.from_dict(_as_dict(c["data"], "data"))
    except ValueError as e:
      _fail("data", str(e))
    mesh = _typed(Mesh, _as_dict(c.get("mesh"), "mesh"), "mesh")
    if n_devices is not None:
      try:
        mesh_shape = mesh.shape(n_devices)
      except ValueError as e:
        _fail("mesh", str(e).split(": ", 1)[1])
    else:
      mesh_shape = None
    model = _as_dict(c["model"], "model")
    for key in ("vocab_size", "max_len"):
      if key in model:
        _fail(f"model.{key}", f"comes from data ({'vocab_size' if key == 'vocab_size' else 'seq_len'}); remove it here")
    stages_raw = c["stages"]
    if not isinstance(stages_raw, (list, tuple)) or not stages_raw:
      _fail("stages", f"{stages_raw!r} is not a non-empty list of stages")
    base = dict(model, vocab_size=data.vocab_size, max_len=data.seq_len)
    stages: list[Stage] = []
    prev = None
    for i, raw in enumerate(stages_raw):
      stages.append(_stage(i, _as_dict(raw, f"stages[{i}]"), base, prev,
                           data.seq_len, mesh_shape))
      prev = stages[-1]
      base = prev.model.to_dict()
    return cls(
        name=c.get("name", "experiment"), seed=seed, data=data,
        stages=tuple(stages), mesh=mesh,
        checkpoint=_typed(Checkpoint, _as_dict(c.get("checkpoint"), "checkpoint"), "checkpoint"),
        eval=_typed(Eval, _as_dict(c.get("eval"), "eval"), "eval"),
        optimizer=_typed(Optimizer, _as_dict(c.get("optimizer"), "optimizer"), "optimizer"),
        train=_typed(Train, _as_dict(c.get("train"), "train"), "train"),
        config=json.loads(json.dumps(c, default=list)))


GROWN_FIELDS = ("d_model", "n_layers", "n_heads", "d_ff")


def _stage(i: int, raw: dict, base: dict, prev: Stage | None, seq_len: int,
           mesh_shape: dict | None) -> Stage:
  path = f"stages[{i}]"
  for key in raw:
    if key not in STAGE_FIELDS:
      _fail(f"{path}.{key}", f"unknown field (expected one of {list(STAGE_FIELDS)})")
  for key in ("tokens", "batch_size", "lr"):
    if key not in raw:
      _fail(f"{path}.{key}", "missing (every stage declares tokens, batch_size and lr)")
  overrides = _as_dict(raw.get("model"), f"{path}.model")
  if i == 0 and overrides:
    _fail(f"{path}.model", "stage 0 trains the top-level `model`; put its shape there")
  for key in overrides:
    if key in ("vocab_size", "max_len"):
      _fail(f"{path}.model.{key}", "comes from data and cannot change between stages")
  model = _typed(ModelConfig, {**base, **overrides}, f"{path}.model")
  if prev is not None:
    old = prev.model
    for f in GROWN_FIELDS:
      a, b = getattr(old, f), getattr(model, f)
      if b < a:
        _fail(f"{path}.model.{f}", f"{b} < {a}, a stage cannot shrink")
    if model.head_dim != old.head_dim:
      _fail(f"{path}.model.head_dim", f"{model.head_dim} != {old.head_dim}, growth keeps head_dim")
  tokens, batch = raw["tokens"], raw["batch_size"]
  if not _is_int(tokens) or tokens <= 0:
    _fail(f"{path}.tokens", f"{tokens!r} is not a positive integer")
  if not _is_int(batch) or batch <= 0:
    _fail(f"{path}.batch_size", f"{batch!r} is not a positive integer")
  micro = raw.get("microbatches", 1)
  if not _is_int(micro) or micro <= 0 or batch % micro:
    _fail(f"{path}.microbatches", f"{micro!r} does not divide batch_size {batch}")
  if mesh_shape is not None:
    split = mesh_shape["data"] * mesh_shape["fsdp"]
    if (batch // micro) % split:
      _fail(f"{path}.batch_size",
            f"{batch} (in {micro} microbatches) does not split over the mesh's "
            f"data x fsdp = {split} devices")
  lr = _typed(Schedule, _as_dict(raw["lr"], f"{path}.lr"), f"{path}.lr")
  grow_raw = raw.get("grow")
  if i == 0:
    if grow_raw:
      _fail(f"{path}.grow", "stage 0 has nothing to grow from")
    growth = None
  else:
    if not grow_raw:
      _fail(f"{path}.grow", "missing (a later stage says how it grows, e.g. dict(method='msg', ramp_steps=100))")
    growth = _typed(Growth, _as_dict(grow_raw, f"{path}.grow"), f"{path}.grow")
    from growjax import grow  # pylint: disable=g-import-not-at-top
    try:
      grow.plan(prev.model, model, method=growth.method)
    except ValueError as e:
      _fail(f"{path}.grow", str(e))
  stage = Stage(index=i, model=model, tokens=tokens, batch_size=batch, lr=lr,
                grow=growth, microbatches=micro)
  steps = stage.steps(seq_len)
  if steps < 1:
    _fail(f"{path}.tokens", f"{tokens} tokens make no step of batch_size "
          f"{batch} x seq_len {seq_len}")
  if lr.warmup_steps > steps:
    _fail(f"{path}.lr.warmup_steps", f"{lr.warmup_steps} > the stage's {steps} steps")
  if growth is not None and growth.ramp_steps > steps:
    _fail(f"{path}.grow.ramp_steps", f"{growth.ramp_steps} > the stage's {steps} steps")
  return stage


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
