"""Checkpoints: one orbax CheckpointManager per stage.

    WORKDIR/checkpoints/stage_0/<step>/{params, opt_state, meta}
    WORKDIR/checkpoints/stage_1/<step>/{params, opt_state, masks0, meta}
                                         <- the first is the grown state

A stage's directory holds its own steps, so the end of stage k and the grown
start of stage k+1 (the same global step) are both kept. The train state is
saved as one orbax item per entry (StandardSave, async), so a reader restores
only what it needs: evaluation takes `params` and `masks0` and never builds an
optimizer. Its `step` is the checkpoint's own step (a state is saved at its
step). `meta` is JSON: stage, step, the data iterator's state, the names of
the growth masks the state carries, and cumulative tokens, FLOPs and wall
time.
"""

from __future__ import annotations

import pathlib
import re

import jax
import numpy as np
import orbax.checkpoint as ocp

# Train-state entries saved as orbax items; "step" lives in the meta.
ITEMS = ("params", "opt_state", "masks0")


class CheckpointError(RuntimeError):
  """A checkpoint that cannot be read; names its path."""


def stage_dir(workdir, stage: int) -> pathlib.Path:
  return pathlib.Path(workdir).resolve() / "checkpoints" / f"stage_{stage}"


def _stages(workdir) -> list[int]:
  root = pathlib.Path(workdir) / "checkpoints"
  if not root.is_dir():
    return []
  found = (re.fullmatch(r"stage_(\d+)", p.name) for p in root.iterdir())
  return sorted(int(m.group(1)) for m in found if m)


def _steps(directory: pathlib.Path) -> list[int]:
  """Finished checkpoint steps (orbax writes to a tmp name, then renames)."""
  if not directory.is_dir():
    return []
  return sorted(int(p.name) for p in directory.iterdir()
                if p.name.isdigit() and (p / "meta").exists())


def latest(workdir) -> tuple[int, int] | None:
  """(stage, step) of the newest finished checkpoint, or None."""
  for stage in reversed(_stages(workdir)):
    steps = _steps(stage_dir(workdir, stage))
    if steps:
      return stage, steps[-1]
  return None


class Checkpointer:
  """Saves and restores the train state of every stage of one run.

  Use as a context manager: leaving it waits for the last async save.
  """

  def __init__(self, workdir, *, keep: int):
    self.workdir = pathlib.Path(workdir)
    self.keep = keep
    self._managers: dict[int, ocp.CheckpointManager] = {}

  def _manager(self, stage: int) -> ocp.CheckpointManager:
    if stage not in self._managers:
      options = ocp.CheckpointManagerOptions(
          max_to_keep=self.keep, create=True, enable_async_checkpointing=True)
      self._managers[stage] = ocp.CheckpointManager(
          stage_dir(self.workdir, stage), options=options)
    return self._managers[stage]

  def save(self, stage: int, step: int, state, meta: dict):
    """Starts an async save of `state` at global step `step`; its arrays may
    be donated right after (orbax copies them off the device before `save`
    returns)."""
    items = {k: ocp.args.StandardSave(state[k]) for k in ITEMS if k in state}
    self._manager(stage).save(step, args=ocp.args.Composite(
        **items, meta=ocp.args.JsonSave(meta)))

  def read_meta(self, stage: int, step: int) -> dict:
    path = stage_dir(self.workdir, stage) / str(step)
    try:
      return self._manager(stage).restore(
          step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
    except Exception as e:  # orbax raises many kinds; name the checkpoint
      raise CheckpointError(
          f"checkpoint {path}: cannot read its meta ({type(e).__name__}: "
          f"{e}); delete it to resume from the previous one") from e

  def restore(self, stage: int, step: int, abstract_state):
    """The entries of `abstract_state` (a dict of trees of
    jax.ShapeDtypeStruct with shardings; any of params, opt_state, masks0,
    step) as saved at (stage, step), laid out like it."""
    path = stage_dir(self.workdir, stage) / str(step)
    items = {k: ocp.args.StandardRestore(v) for k, v in abstract_state.items()
             if k in ITEMS}
    try:
      restored = self._manager(stage).restore(
          step, args=ocp.args.Composite(**items))
    except Exception as e:
      raise CheckpointError(
          f"checkpoint {path}: cannot restore the train state "
          f"({type(e).__name__}: {str(e)[:300]}); it is corrupt or from a "
          "different model; delete it to resume from the previous one") from e
    state = {k: restored[k] for k in items}
    if "step" in abstract_state:
      s = abstract_state["step"]
      state["step"] = jax.device_put(np.asarray(step, s.dtype), s.sharding)
    return state

  def wait(self):
    for m in self._managers.values():
      m.wait_until_finished()

  def close(self):
    for m in self._managers.values():
      m.wait_until_finished()
      m.close()
    self._managers.clear()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()
