"""A trained model from a run's workdir: what evaluation and sampling read.

    run = trained.load_latest("runs/toy")
    logits = model.apply(run.params, run.config, tokens, masks=run.masks)

Restores the newest checkpoint's parameters (and MSG masks, ramped to the
checkpoint's step) onto one device, from the experiment the run recorded in
WORKDIR/config.json. Only the `params` and `masks0` items are read: no
optimizer is built and nothing of `growjax.train` is imported. A checkpoint
that does not restore is named in one line and the one before it is used.
Nothing in the workdir is written, and its lock is not taken: a run may be
training there meanwhile.
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
  try:
    exp = Experiment.from_config(json.loads(config.read_text()))
  except json.JSONDecodeError as e:
    raise ckpt_lib.CheckpointError(f"workdir {workdir}: config.json is not "
                                   f"JSON ({e})") from None
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])

  def on_device(shapes):
    return jax.tree.map(
        lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=device),
        shapes)

  def abstract(stage_index: int, meta: dict) -> dict:
    cfg = exp.stages[stage_index].model
    out = {"params": on_device(axes_lib.param_shapes(cfg))}
    if meta["masks"]:
      out["masks0"] = on_device(
          {k: jax.ShapeDtypeStruct(axes_lib.mask_shape(k, cfg), jnp.float32)
           for k in meta["masks"]})
    return out

  with ckpt_lib.Checkpointer(workdir, keep=exp.checkpoint.keep,
                             read_only=True) as ckpt:
    got = ckpt.restore_newest(abstract, move_aside=False)
  if got is None:
    raise ckpt_lib.CheckpointError(f"workdir {workdir}: holds no checkpoint")
  stage = exp.stages[got.stage]
  ramp = stage.ramp(exp.stage_starts()[got.stage])
  state = got.state
  masks = ramp.masks(state["masks0"], got.step) if "masks0" in state else None
  return Trained(exp, got.stage, got.step, stage.model, state["params"], masks)
