"""A trained model from a run's workdir: what evaluation and sampling read.

    run = trained.load_latest("runs/toy")
    logits = model.apply(run.params, run.config, tokens, masks=run.masks)

Restores the newest checkpoint's parameters (and MSG masks, ramped to the
checkpoint's step) onto one device, from the experiment the run recorded in
WORKDIR/config.json. Only the `params` and `masks0` items are read: no
optimizer is built and nothing of `growjax.train` is imported.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import jax
import jax.numpy as jnp

from growjax import checkpoint as ckpt_lib
from growjax.config import ModelConfig
from growjax.experiment import Experiment
from growjax.grow import axes as axes_lib


@dataclasses.dataclass
class Trained:
  experiment: Experiment
  stage: int
  step: int
  config: ModelConfig
  params: dict
  masks: dict | None  # the growth masks at `step` (None once folded)


def load_latest(workdir) -> Trained:
  """The newest checkpoint of `workdir`, on one device."""
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
  cfg = stage.model
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])

  def on_device(shapes):
    return jax.tree.map(
        lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=device),
        shapes)

  with ckpt_lib.Checkpointer(workdir, keep=exp.checkpoint.keep) as ckpt:
    names = ckpt.read_meta(stage_index, step)["masks"]
    abstract = {"params": on_device(axes_lib.param_shapes(cfg))}
    if names:
      abstract["masks0"] = on_device(
          {k: jax.ShapeDtypeStruct(axes_lib.mask_shape(k, cfg), jnp.float32)
           for k in names})
    state = ckpt.restore(stage_index, step, abstract)
  ramp = stage.ramp(exp.stage_starts()[stage_index])
  masks = ramp.masks(state["masks0"], step) if "masks0" in state else None
  return Trained(exp, stage_index, step, cfg, state["params"], masks)
