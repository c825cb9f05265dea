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
the growth masks the state carries, cumulative tokens, FLOPs and wall time,
the number of metrics lines and the numerical guard's state.

A checkpoint is written under a temporary name and renamed into place when
complete (orbax's atomic rename), so a killed save leaves no step directory;
old ones are deleted only after a newer one is complete. A step directory
that does not restore (truncated arrays, missing or garbage metadata, a
half-written directory) is corrupt: `restore_newest` reports it in one line
and, once an older checkpoint restores, moves it aside to
WORKDIR/checkpoints/corrupt/ (never deletes it), so it counts no more among
the `keep` of its stage. When none restores, nothing is moved: the cause is
more likely the model code than every file.

Readers (`read_only`: evaluation, sampling, export) take the newest
checkpoint that restores, and write nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import pathlib
import re
import shutil
from typing import Callable

import jax
from jax.experimental import multihost_utils
import numpy as np
import orbax.checkpoint as ocp

from growjax import pause

log = logging.getLogger("growjax")

# Train-state entries saved as orbax items; "step" lives in the meta.
ITEMS = ("params", "opt_state", "masks0")


class CheckpointError(RuntimeError):
  """A checkpoint that cannot be read; names its path."""


@dataclasses.dataclass
class Restored:
  """A checkpoint restored by `Checkpointer.restore_newest`."""
  stage: int
  step: int
  meta: dict
  state: dict


def stage_dir(workdir, stage: int) -> pathlib.Path:
  return pathlib.Path(workdir).resolve() / "checkpoints" / f"stage_{stage}"


def _stages(workdir) -> list[int]:
  root = pathlib.Path(workdir) / "checkpoints"
  if not root.is_dir():
    return []
  found = (re.fullmatch(r"stage_(\d+)", p.name) for p in root.iterdir())
  return sorted(int(m.group(1)) for m in found if m)


def _steps(directory: pathlib.Path, *, finished: bool = True) -> list[int]:
  """Checkpoint steps (orbax writes to a tmp name, then renames); with
  `finished`, only those with their meta."""
  if not directory.is_dir():
    return []
  return sorted(int(p.name) for p in directory.iterdir()
                if p.name.isdigit() and (not finished or (p / "meta").exists()))


def candidates(workdir) -> list[tuple[int, int]]:
  """(stage, step) of every checkpoint directory, newest first, finished or
  not (one without its meta is corrupt: orbax renames only complete ones)."""
  return [(stage, step) for stage in reversed(_stages(workdir))
          for step in reversed(_steps(stage_dir(workdir, stage), finished=False))]


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

  def __init__(self, workdir, *, keep: int, read_only: bool = False,
               keep_steps=()):
    """keep_steps: global steps kept whatever `keep` says (the steps decay
    branches start from, `growjax.schedule.checkpoint_steps`)."""
    self.workdir = pathlib.Path(workdir)
    self.keep = keep
    self.read_only = read_only
    self.keep_steps = frozenset(keep_steps)
    self._managers: dict[int, ocp.CheckpointManager] = {}

  def _manager(self, stage: int) -> ocp.CheckpointManager:
    if stage not in self._managers:
      if self.read_only:
        options = ocp.CheckpointManagerOptions(read_only=True, create=False)
      else:  # the writer holds the workdir's lock: tmp dirs are its own
        keep = dict(max_to_keep=self.keep)
        if self.keep_steps:  # the newest `keep`, and the branch points
          policies = ocp.checkpoint_managers
          keep = dict(preservation_policy=policies.AnyPreservationPolicy([
              policies.LatestN(self.keep),
              policies.CustomSteps(sorted(self.keep_steps))]))
        options = ocp.CheckpointManagerOptions(
            **keep, create=True, enable_async_checkpointing=True,
            cleanup_tmp_directories=True,
            temporary_path_class=_PausingRename if _pausing() else None)
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
      meta = self._manager(stage).restore(
          step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
    except Exception as e:  # orbax raises many kinds; name the checkpoint
      raise CheckpointError(
          f"checkpoint {path}: cannot read its meta ({_reason(e)})") from e
    if not isinstance(meta, dict) or not {"stage", "step", "masks"} <= set(meta):
      raise CheckpointError(f"checkpoint {path}: its meta is not a growjax "
                            f"checkpoint's ({str(meta)[:80]})")
    return meta

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
    except Exception as e:  # pylint: disable=broad-except
      raise CheckpointError(
          f"checkpoint {path}: cannot restore the train state "
          f"({_reason(e)}); it is corrupt or from a different model") from e
    state = {k: restored[k] for k in items}
    if "step" in abstract_state:
      s = abstract_state["step"]
      state["step"] = jax.device_put(np.asarray(step, s.dtype), s.sharding)
    return state

  def restore_newest(self, abstract_for: Callable[[int, dict], dict], *,
                     move_aside: bool) -> Restored | None:
    """The newest checkpoint that restores, or None when there is none.

    abstract_for(stage, meta) gives the abstract state to restore (see
    `restore`). Each checkpoint that fails is logged in one line; with
    `move_aside` (the trainer, holding the lock) the failed ones newer than
    the one restored are moved to checkpoints/corrupt/ (on process 0). When
    none restores, nothing moves and CheckpointError says so.
    """
    failed = []
    for stage, step in candidates(self.workdir):
      try:
        meta = self.read_meta(stage, step)
        state = self.restore(stage, step, abstract_for(stage, meta))
      except CheckpointError as e:
        log.warning("%s", " ".join(str(e).split()))
        failed.append((stage, step))
        continue
      if move_aside:
        for bad in failed:
          self.quarantine(*bad)
      return Restored(stage, step, meta, state)
    if failed:
      raise CheckpointError(
          f"workdir {self.workdir}: none of its {len(failed)} checkpoints "
          "restores (each named above), so the cause may be the code rather "
          "than the files; nothing was moved")
    return None

  def quarantine(self, stage: int, step: int) -> pathlib.Path:
    """Moves a corrupt checkpoint to checkpoints/corrupt/stage_S_STEP[.N]
    (process 0; the stage's manager forgets it)."""
    source = stage_dir(self.workdir, stage) / str(step)
    target = stage_dir(self.workdir, stage).parent / "corrupt" / f"stage_{stage}_{step}"
    n = 0
    while os.path.lexists(f"{target}.{n}" if n else target):
      n += 1
    target = pathlib.Path(f"{target}.{n}" if n else target)
    if jax.process_index() == 0:
      target.parent.mkdir(parents=True, exist_ok=True)
      shutil.move(source, target)
      log.warning("checkpoint %s: moved aside to %s", source, target)
    manager = self._managers.pop(stage, None)
    if manager is not None:
      manager.close()
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices(f"growjax: moved {source}")
    return target

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


def _reason(e: BaseException) -> str:
  """An exception in a few words: orbax and TensorStore write many lines."""
  text = " ".join(str(e).split())
  return f"{type(e).__name__}: {text[:200]}{'...' if len(text) > 200 else ''}"


def _pausing() -> bool:
  return os.environ.get(pause.ENV, "").startswith("checkpoint@")


class _PausingRename(ocp.path.atomicity.AtomicRenameTemporaryPath):
  """orbax's atomic rename, with the test hook `pause.at("checkpoint", step)`
  between writing a step's files and renaming them into place."""

  async def finalize(self, *args, **kwargs):
    name = self.get_final().name
    if name.isdigit():
      await asyncio.to_thread(pause.at, "checkpoint", int(name))
    await super().finalize(*args, **kwargs)
