"""A trained model from a run's workdir, for evaluation and sampling."""

from __future__ import annotations

import dataclasses
import json
import pathlib

import jax

from growjax import checkpoint as ckpt_lib
from growjax import parallel
from growjax.config import ModelConfig
from growjax.experiment import Experiment
from growjax.train import optimizer as opt_lib
from growjax.train import state as state_lib
from growjax.train import step as step_lib


@dataclasses.dataclass
class Trained:
  experiment: Experiment
  stage: int
  step: int
  config: ModelConfig
  params: dict
  masks: dict | None  # the growth masks at `step` (None once folded)


def load_latest(workdir) -> Trained:
  """The newest checkpoint of `workdir`, on one device (replicated)."""
  workdir = pathlib.Path(workdir)
  config = workdir / "config.json"
  found = ckpt_lib.latest(workdir)
  if found is None or not config.exists():
    raise ckpt_lib.CheckpointError(
        f"workdir {workdir}: holds no checkpoint (train it first with "
        f"python -m growjax.main --config ... --workdir {workdir})")
  exp = Experiment.from_config(json.loads(config.read_text()))
  stage_index, step = found
  stage = exp.stages[stage_index]
  mesh = parallel.make_mesh(data=1, fsdp=1, tensor=1, devices=jax.devices()[:1])
  rules = parallel.rules_from_config(())
  with ckpt_lib.Checkpointer(workdir, keep=exp.checkpoint.keep) as ckpt:
    meta = ckpt.read_meta(stage_index, step)
    starts = exp.stage_starts()
    optimizer = opt_lib.make(exp.optimizer, opt_lib.schedule(
        stage, starts[stage_index], starts[stage_index + 1] - starts[stage_index]))
    abstract, _ = state_lib.abstract_state(stage.model, optimizer,
                                           meta["masks"], mesh, rules)
    state = ckpt.restore(stage_index, step, abstract)
  masks = None
  if "masks0" in state and stage.grow is not None and stage.grow.ramp_steps:
    ramp = step_lib.Ramp(start=starts[stage_index], steps=stage.grow.ramp_steps)
    masks = ramp.masks(state["masks0"], step)
  return Trained(exp, stage_index, step, stage.model, state["params"], masks)
