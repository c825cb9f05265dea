"""The staged training loop.

Reads top to bottom like a recipe, in labelled sections, each opening with
one log line: `run` sets up what every stage shares (workdir, mesh, data,
checkpoints) in a `Run`; `_run_stage` then takes one stage through model and
optimizer, state, data, update step and loop. Stage 0 initialises; every
later stage grows the parameters and the AdamW state from the end of the
previous stage (a pure function of that state and of (seed, stage), so a
crash during growth re-grows identically), saves at once, rewinds the
learning-rate schedule, ramps the growth's masks and folds them when the ramp
ends.

Interruptions are harmless (README, "Interruptions and recovery"): process 0
holds the workdir's lock (growjax.lock); SIGTERM or SIGINT saves at the next
step boundary and stops (growjax.train.preempt); a resumed run restores the
newest checkpoint that restores, moving corrupt ones aside
(growjax.checkpoint), and cuts metrics.jsonl back to the lines that
checkpoint had seen, so a run killed at any moment ends with exactly the
metrics of an uninterrupted one. Non-finite steps are skipped inside the
jitted step and booked by growjax.train.guard, which may stop the run or, on
a loss spike, roll it back to its last checkpoint past the offending batches.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib
import time
from typing import Any, Callable

import jax
import numpy as np

from growjax import atomic, blame
from growjax import checkpoint as ckpt_lib
from growjax import cost, data, grow, hf, model, parallel, pause, progress
from growjax import lock as lock_lib
from growjax.experiment import Experiment, ExperimentError, Stage
from growjax.train import guard as guard_lib
from growjax.train import metrics as metrics_lib
from growjax.train import optimizer as opt_lib
from growjax.train import preempt as preempt_lib
from growjax.train import state as state_lib
from growjax.train import step as step_lib

log = logging.getLogger("growjax")


@dataclasses.dataclass
class Run:
  """What every stage of one run shares; `totals` and `data_state` move on
  with training and are saved with every checkpoint."""
  exp: Experiment
  mesh: jax.sharding.Mesh
  rules: Any
  corpus: Any
  val: "Validation"
  remat: list[str]  # each stage's remat policy (growjax.model.REMAT)
  ckpt: ckpt_lib.Checkpointer
  writer: metrics_lib.Writer
  starts: list[int]  # global step at which each stage begins, plus the end
  stop_at_step: int | None
  stop_when: Callable[[dict], str | None] | None
  totals: dict  # cumulative tokens, train_flops and seconds (see metrics.py)
  data_state: dict | None  # where the training stream stands
  guard: guard_lib.Guard  # skipped steps and loss spikes (saved with each checkpoint)
  preemption: preempt_lib.Preemption
  clock: float = 0.0  # perf_counter() when totals["time"] was last brought up to date
  stop_reason: str | None = None
  preempted: str | None = None  # the signal that stopped the run
  step: int = 0  # the last global step trained

  def tick(self) -> float:
    """Brings totals["time"] (wall-clock of the whole run, every restart
    included) up to now; returns now."""
    now = time.perf_counter()
    self.totals["time"] += now - self.clock
    self.clock = now
    return now


@dataclasses.dataclass
class Validation:
  """The fixed validation set on the devices: `batches` of eval_batch_size
  windows, the last padded with zero-weight windows."""
  batches: list  # global [E, T+1] arrays
  count: int  # real windows (the rest are padding)

  def losses(self, eval_step, state) -> np.ndarray:
    """Every real window's mean loss: float64 [count]."""
    out = np.concatenate([_to_host(eval_step(state, b)) for b in self.batches])
    return out[:self.count].astype(np.float64)

  def fixed_batch(self):
    """The first batch and how many of its windows are real: the batch whose
    loss is logged before and after each growth."""
    return self.batches[0], min(self.count, self.batches[0].shape[0])


def _to_host(x) -> np.ndarray:
  if jax.process_count() == 1:
    return np.asarray(jax.device_get(x))
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


# ----------------------------------------------------------------- workdir --
def check_workdir(exp: Experiment, workdir: pathlib.Path):
  """Refuses a workdir that is no writable directory or holds another
  experiment's run. Writes nothing."""
  lock_lib.check_usable(workdir)
  record = workdir / "experiment.json"
  if record.exists():
    try:
      old = json.loads(record.read_text())
    except json.JSONDecodeError as e:
      raise ExperimentError(f"workdir {workdir}: its experiment.json is not "
                            f"JSON ({e}); use a new --workdir") from None
    new = json.loads(json.dumps(exp.fingerprint()))
    if old != new:
      raise ExperimentError(
          f"workdir {workdir}: holds a different experiment "
          f"({_first_difference(old, new)}); use a new --workdir")
  elif ckpt_lib.latest(workdir) is not None:
    raise ExperimentError(
        f"workdir {workdir}: holds checkpoints but no experiment.json; "
        "use a new --workdir")


def _first_difference(old, new, path="") -> str:
  if isinstance(old, dict) and isinstance(new, dict):
    for key in sorted(set(old) | set(new)):
      if old.get(key) != new.get(key):
        return _first_difference(old.get(key), new.get(key), f"{path}.{key}".lstrip("."))
  if isinstance(old, list) and isinstance(new, list):
    if len(old) != len(new):
      return f"{path}: {len(old)} entries there, {len(new)} here"
    for i, (a, b) in enumerate(zip(old, new)):
      if a != b:
        return _first_difference(a, b, f"{path}[{i}]")
  return f"{path}: {old!r} there, {new!r} here"


def _prepare_data(exp: Experiment):
  """Process 0 builds the shared cache first; the others then load it. A
  corpus that cannot serve the experiment is named as its `data` field."""
  def prepare():
    try:
      return data.prepare(exp.data)
    except ValueError as e:  # the corpus does not fit the data config
      if not blame.raised_by_growjax(e):
        raise  # a library's: a bug, with its traceback
      raise ExperimentError(f"data: {e}") from e
  if jax.process_count() == 1:
    return prepare()
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  corpus = prepare() if jax.process_index() == 0 else None
  multihost_utils.sync_global_devices("growjax: data prepared")
  return corpus or prepare()


# ----------------------------------------------------------------- memory --
def memory_plan(exp: Experiment, mesh_shape: dict, rules) -> list[str]:
  """Each stage's remat policy: `train.remat`, or with "auto" the fastest the
  memory model fits in device memory. A stage that fits under no policy is
  refused here, before anything compiles, naming the model's figure and the
  nearest fix."""
  device_bytes = cost.device_memory_bytes()
  out = []
  for stage in exp.stages:
    kw = dict(batch_size=stage.batch_size, seq_len=exp.seq_len, mesh=mesh_shape,
              rules=rules, loss_chunk=exp.train.loss_chunk,
              microbatches=stage.microbatches)
    refusal = cost.fit_or_explain(stage.model, device_bytes=device_bytes,
                                  remat=exp.train.remat, **kw)
    if refusal:
      raise ExperimentError(f"stages[{stage.index}]: {refusal}")
    out.append(exp.train.remat if exp.train.remat != "auto" else
               cost.fastest_remat(stage.model, device_bytes=device_bytes, **kw))
  return out


def validation_set(exp: Experiment, corpus, mesh, rules) -> Validation:
  """The fixed held-out windows (`data.validation_windows`: the same for any
  seed and batch size), in batches on the devices; each process feeds its
  rows of every batch."""
  windows = data.validation_windows(corpus, exp.seq_len, exp.eval.tokens)
  count, batch = len(windows), exp.eval_batch_size()
  pad = -count % batch
  windows = np.concatenate([windows, np.zeros((pad, windows.shape[1]), windows.dtype)])
  rows = batch // jax.process_count()
  k = jax.process_index()
  batches = [parallel.global_batch(windows[i + k * rows:i + (k + 1) * rows], mesh, rules)
             for i in range(0, len(windows), batch)]
  return Validation(batches, count)


# -------------------------------------------------------------------- run --
MAX_ROLLBACKS = 3  # spikes rolled back to one checkpoint before the run stops


def run(exp: Experiment, workdir, *, stop_at_step: int | None = None,
        stop_when: Callable[[dict], str | None] | None = None,
        devices=None) -> dict:
  """Trains every stage of `exp` in `workdir`, resuming from its newest
  checkpoint that restores. Returns a summary dict.

  stop_at_step: save and stop when the global step reaches it.
  stop_when: called with every metrics row that has a validation loss (after
    it is written); a string it returns stops the run there (saved), and is
    the summary's `stop_reason`.
  devices: the devices of the mesh (default: all).

  Holds the workdir's lock (process 0) throughout; a SIGTERM or SIGINT saves
  at the next step boundary and stops (the summary's `preempted` names it).
  """
  workdir = pathlib.Path(workdir)
  clock = time.perf_counter()

  # --- Checks: the workdir, the mesh and memory, before anything is written.
  check_workdir(exp, workdir)
  lock_lib.check_usable(exp.data.cache_dir(),
                        what="data cache (data.dir, else $GROWJAX_DATA_DIR)")
  devices = list(devices) if devices is not None else jax.devices()
  shape = exp.mesh.shape(len(devices))
  mesh = parallel.make_mesh(**shape, devices=devices)
  rules = parallel.rules_from_config(exp.mesh.rules)
  remat = memory_plan(exp, shape, rules)

  # --- Workdir: one training process at a time; signals ask for a save.
  with lock_lib.WorkdirLock(workdir, enabled=jax.process_index() == 0), \
       preempt_lib.Preemption() as preemption:
    return _run_locked(exp, workdir, mesh, rules, remat, clock, preemption,
                       stop_at_step=stop_at_step, stop_when=stop_when)


def _run_locked(exp, workdir, mesh, rules, remat, clock, preemption, *,
                stop_at_step, stop_when) -> dict:
  # --- Data: corpus, tokenizer and the fixed validation set, on devices.
  corpus = _prepare_data(exp)
  val = validation_set(exp, corpus, mesh, rules)
  devices = mesh.devices.flatten()
  log.info("workdir %s", workdir.resolve())
  log.info("mesh %s over %d %s devices; remat %s", dict(mesh.shape),
           len(devices), devices[0].platform, remat)
  log.info("data %s: %s training tokens; validation %d windows (%s tokens) "
           "in %d batches", exp.data.name, f"{corpus.num_tokens('train'):,}",
           val.count, f"{val.count * exp.seq_len:,}", len(val.batches))

  # --- Checkpoints: resume from the newest one that restores (found before
  # anything is written: when none restores, the workdir stays as it was).
  with ckpt_lib.Checkpointer(workdir, keep=exp.checkpoint.keep) as ckpt:
    got = _newest(exp, ckpt, mesh, rules)
    if jax.process_index() == 0:
      atomic.write_text(workdir / "experiment.json",
                        json.dumps(exp.fingerprint(), indent=1))
      atomic.write_text(workdir / "config.json", json.dumps(exp.config, indent=1))
    writer = metrics_lib.Writer(workdir, enabled=jax.process_index() == 0)
    with writer:
      r = Run(exp=exp, mesh=mesh, rules=rules, corpus=corpus, val=val,
              remat=remat, ckpt=ckpt, writer=writer, starts=exp.stage_starts(),
              stop_at_step=stop_at_step, stop_when=stop_when,
              totals={"tokens": 0, "train_flops": 0.0, "time": 0.0,
                      "train_time": 0.0, "compile_time": 0.0, "eval_time": 0.0},
              data_state=None, clock=clock, preemption=preemption,
              guard=guard_lib.Guard(exp.train.max_skipped_in_a_row,
                                    exp.train.spike_factor))
      _resume_from(r, got)
      if got:
        log.info("resuming from stage %d step %d", got.stage, got.step)

      # --- Stages: each from the state the previous one ended with; a loss
      # spike rolls back to the last checkpoint, past the batches since.
      rollbacks: dict[tuple, int] = {}
      while True:
        try:
          stopped = _run_stages(r, got)
          break
        except _Rollback as spike:
          got = _roll_back(r, spike, rollbacks)
  rows = metrics_lib.read(workdir)
  return {"workdir": str(workdir.resolve()),
          "table": metrics_lib.summary_table(rows), "totals": r.totals,
          "stopped": stopped, "stop_reason": r.stop_reason,
          "preempted": r.preempted, "step": r.step}


def _run_stages(r: Run, got: ckpt_lib.Restored | None) -> bool:
  """Trains from `got` (None: from scratch) to the end; returns whether the
  run stopped early."""
  state = None
  for stage in r.exp.stages[got.stage if got else 0:]:
    resume = got if got and got.stage == stage.index else None
    state, stopped = _run_stage(r, stage, state, resume)
    if stopped:
      return True
    pause.at("stage_end", r.step)
    if stage.index + 1 < len(r.exp.stages) and r.preemption.requested(r.step):
      r.preempted = r.preemption.signal  # the stage's end is saved
      r.stop_reason = f"preempted by {r.preempted}"
      return True
  return False


def _optimizer(exp: Experiment, stage: Stage):
  """The learning-rate schedule and the optimizer of `stage`."""
  start, end = exp.stage_starts()[stage.index:stage.index + 2]
  lr = opt_lib.schedule(stage, start, end - start)
  return lr, opt_lib.make(exp.optimizer, lr, opt_lib.multipliers(exp, stage))


def _newest(exp: Experiment, ckpt, mesh, rules) -> ckpt_lib.Restored | None:
  """The newest checkpoint that restores (corrupt ones moved aside), or None
  for a fresh start."""

  def abstract(stage_index: int, meta: dict):
    stage = exp.stages[stage_index]
    _, optimizer = _optimizer(exp, stage)
    return state_lib.abstract_state(stage.model, optimizer, meta["masks"],
                                    mesh, rules)[0]

  return ckpt.restore_newest(abstract, move_aside=True)


def _resume_from(r: Run, got: ckpt_lib.Restored | None, *,
                 keep_clock: bool = False):
  """The run's totals, data position and guard as checkpoint `got` saved
  them (None: a fresh start), and metrics.jsonl cut back to the lines it had
  seen. `keep_clock`: keep the seconds booked so far (a rollback)."""
  meta = got.meta if got else {}
  if "metrics_rows" in meta or not got:
    r.writer.truncate(meta.get("metrics_rows", 0))
  else:  # saved before checkpoints counted the lines
    metrics_lib.drop_after(r.ckpt.workdir, got.step)
    r.writer.rows = len(metrics_lib.read(r.ckpt.workdir))
  totals = meta.get("totals", {})
  if keep_clock:
    totals = {k: v for k, v in totals.items() if k in ("tokens", "train_flops")}
  r.totals.update(totals)
  r.data_state = meta.get("data")
  r.guard.restore(meta.get("guard"))
  r.step = got.step if got else 0


class _Rollback(Exception):
  """A loss spike at `step`: roll back to the last checkpoint and go on from
  the data position `data_state` (the batches in between are skipped)."""

  def __init__(self, step: int, why: str, data_state: dict):
    super().__init__(why)
    self.step, self.why, self.data_state = step, why, data_state


def _roll_back(r: Run, spike: _Rollback, rollbacks: dict):
  """Restores the last checkpoint after `spike`; the data goes on after the
  spike's batch. Raises Diverged after MAX_ROLLBACKS to one checkpoint."""
  r.ckpt.wait()
  got = _newest(r.exp, r.ckpt, r.mesh, r.rules)
  _resume_from(r, got, keep_clock=True)
  key = (got.stage, got.step)
  rollbacks[key] = rollbacks.get(key, 0) + 1
  if rollbacks[key] > MAX_ROLLBACKS:
    raise guard_lib.Diverged(
        f"{spike.why}: rolled back to stage {got.stage} step {got.step} "
        f"{MAX_ROLLBACKS} times already, and it spikes again; stopped (lower "
        "the learning rate, or raise train.spike_factor)")
  r.data_state = spike.data_state
  skipped = spike.step - got.step
  r.writer.write({"event": "rollback", "step": got.step, "stage": got.stage,
                  "spike_step": spike.step, "why": spike.why,
                  "skipped_batches": skipped})
  log.warning("%s: rolled back to stage %d step %d, skipping the %d batches "
              "after it", spike.why, got.stage, got.step, skipped)
  return got


def _run_stage(r: Run, stage: Stage, prev_state,
               resume: ckpt_lib.Restored | None):
  """Trains one stage from `prev_state` (the previous stage's last state;
  None for stage 0) or from the checkpoint `resume` (restored by
  `_newest`). Returns (its last state, whether the run stops here)."""
  exp, cfg = r.exp, stage.model
  start, end = r.starts[stage.index], r.starts[stage.index + 1]

  # --- Model and optimizer of this stage.
  lr, optimizer = _optimizer(exp, stage)
  remat, chunk = r.remat[stage.index], exp.train.loss_chunk
  log.info("stage %d: %s, %s params, steps %d-%d, remat %s", stage.index,
           {k: getattr(cfg, k) for k in ("d_model", "n_layers", "n_heads", "d_ff")},
           f"{model.param_count(cfg):,}", start, end, remat)

  # --- State: restore, initialise, or grow from the previous stage.
  key = jax.random.fold_in(jax.random.key(exp.seed), stage.index)
  ramp = stage.ramp(start)
  if resume is not None:
    state = resume.state
  elif stage.index == 0:
    _, shardings = state_lib.abstract_state(cfg, optimizer, (), r.mesh, r.rules)
    if exp.init_from is None:
      state = state_lib.init_state(cfg, optimizer, key, shardings)
    else:  # a pretrained model, checked when the experiment was read
      state = state_lib.state_from_params(cfg, optimizer, hf.load_pretrained(
          hf.init_from_dir(exp.init_from))[1], shardings)
  else:
    prev = exp.stages[stage.index - 1]
    fixed, real = r.val.fixed_batch()

    def fixed_loss(step_fn, state):
      return float(_to_host(jax.jit(step_fn)(state, fixed))[:real].mean())

    before = fixed_loss(step_lib.make_eval_step(prev.model, loss_chunk=chunk),
                        prev_state)
    grown_at = time.perf_counter()
    state, ramp = state_lib.grow_state(prev_state, prev, stage, key, optimizer,
                                       r.mesh, r.rules, start=start)
    jax.block_until_ready(state)
    seconds = time.perf_counter() - grown_at
    del prev_state
    pause.at("growth", start)
    after = fixed_loss(step_lib.make_eval_step(cfg, ramp, loss_chunk=chunk), state)
    r.writer.write({"event": "growth", "step": start, "stage": stage.index,
                    "method": stage.grow.method, "loss_before": before,
                    "loss_after": after, "seconds": seconds})
    log.info("grew into stage %d by %s in %.2f s (compile included): "
             "fixed-batch loss %.6f -> %.6f", stage.index, stage.grow.method,
             seconds, before, after)

  # --- Data: the stream continues where the previous stage stopped (its
  # position does not depend on the batch size); saved with the model.
  train_iter = data.batches(
      r.corpus, "train", seq_len=exp.seq_len, batch_size=stage.batch_size,
      seed=exp.seed, shard_index=jax.process_index(),
      shard_count=jax.process_count())
  if r.data_state is not None:
    train_iter.set_state(r.data_state)

  def save(state, step):
    """Starts saving `state`; its meta holds what a resumed run needs to go
    on exactly as this one will: the data position, the totals, the number
    of metrics lines and the guard's state."""
    nonlocal saved_at
    r.tick()
    r.ckpt.save(stage.index, step, state, {
        "stage": stage.index, "step": step, "masks": sorted(state.get("masks0", {})),
        # a copy: the save is asynchronous and training goes on changing totals
        "data": train_iter.get_state(), "totals": dict(r.totals),
        "metrics_rows": r.writer.rows, "guard": r.guard.state()})
    saved_at = step

  saved_at = start if resume is None else resume.step
  if resume is None:
    save(state, start)  # the grown (or fresh) state, at once

  # --- Update step: jitted once per shape (and once more when masks fold).
  def compile_steps(state):
    shardings = jax.tree.map(lambda x: x.sharding, state)  # where it lives
    batch_sh = parallel.batch_sharding(r.mesh, r.rules)
    train = jax.jit(
        step_lib.make_train_step(cfg, optimizer, lr, microbatches=stage.microbatches,
                                 ramp=ramp, remat=remat, loss_chunk=chunk),
        in_shardings=(shardings, batch_sh), out_shardings=(shardings, None),
        donate_argnames=("state",))
    evaluate = jax.jit(step_lib.make_eval_step(cfg, ramp, loss_chunk=chunk),
                       in_shardings=(shardings, batch_sh))
    return train, evaluate

  def fold(state, step):
    """The state without its masks once the ramp has brought them to 1."""
    if ramp is None or "masks0" not in state or not ramp.done(step):
      return state
    state = dict(state)
    grow.fold(ramp.masks(state.pop("masks0"), step))  # all exactly 1 by now
    log.info("stage %d: masks reached 1 and folded at step %d", stage.index, step)
    return state

  step = int(jax.device_get(state["step"]))
  state = fold(state, step)
  train_step, eval_step = compile_steps(state)

  def validate(state) -> dict:
    began = time.perf_counter()
    stats = data.loss_stats(r.val.losses(eval_step, state))
    r.totals["eval_time"] += time.perf_counter() - began
    return {"val_loss": stats["loss"], "val_loss_se": stats["se"],
            "val_chunks": stats["chunk_means"]}

  # --- Loop. Seconds are booked three ways (metrics.py): the first step of
  # each compiled program to compile_time, the steady-state steps between
  # two syncs to train_time, validation to eval_time.
  tokens_per_step = stage.batch_size * exp.seq_len
  flops_per_token = cost.train_flops_per_token(cfg, exp.seq_len)
  bar = progress.bar(total=end - start, initial=step - start, desc=f"stage {stage.index}",
                     unit="step", warmup=1, disable=not exp.train.progress
                     or jax.process_index() != 0 or step >= end)
  fresh, stopped, m = True, False, None
  window = {"steps": 0, "seconds": 0.0}  # steady-state steps since the last log line
  pending = []  # (step, metrics) of the steps the host has not read yet
  since = time.perf_counter()

  def settle():
    """Waits for the steps in flight and books their seconds; then reads
    each one's loss for the guard, which may stop the run (Diverged) or roll
    it back (_Rollback)."""
    nonlocal since
    if m is not None:
      jax.block_until_ready(m)
    now = time.perf_counter()
    r.totals["train_time"] += now - since
    window["seconds"] += now - since
    since = now
    steps, values = [s for s, _ in pending], jax.device_get([v for _, v in pending])
    pending.clear()
    for s, v in zip(steps, values):
      why = r.guard.observe(s, float(v["loss"]), float(v["grad_norm"]),
                            bool(v["skipped"]))
      if why:
        raise _Rollback(s, why, train_iter.get_state())

  while step < end:
    if r.preemption.requested(step):  # save here, then stop
      settle()
      if saved_at != step:
        save(state, step)
      r.preempted = r.preemption.signal
      r.stop_reason = f"preempted by {r.preempted}"
      log.info("stage %d: %s at step %d: saved, stopping", stage.index,
               r.preempted, step)
      stopped = True
      break
    batch = parallel.global_batch(next(train_iter), r.mesh, r.rules)
    began = time.perf_counter()
    with jax.transfer_guard("disallow"):
      state, m = train_step(state, batch)
    pause.at("step", step + 1)
    pending.append((step + 1, m))
    if fresh:  # compiled (or loaded from the cache) by this first call
      jax.block_until_ready(m)
      since = time.perf_counter()
      r.totals["compile_time"] += since - began
      fresh = False
    else:
      window["steps"] += 1
    step += 1
    r.step = step
    r.totals["tokens"] += tokens_per_step
    r.totals["train_flops"] += flops_per_token * tokens_per_step
    last = step == end
    if step % exp.train.log_every == 0 or last or step == r.stop_at_step:
      settle()
      values = jax.device_get(m)
      rate = (window["steps"] * tokens_per_step / window["seconds"]
              if window["steps"] and window["seconds"] > 0 else None)
      row = {"step": step, "stage": stage.index, "loss": float(values["loss"]),
             "lr": float(values["lr"]), "grad_norm": float(values["grad_norm"]),
             "tokens": r.totals["tokens"], "train_flops": r.totals["train_flops"],
             "skipped_steps": r.guard.skipped}
      if rate:  # none when the window held only a compiling step
        row.update(tokens_per_s=rate, tflops=flops_per_token * rate / 1e12)
      evaluated = step % exp.eval.every_steps == 0 or last
      if evaluated:
        row.update(validate(state))
      r.tick()
      row.update({k: r.totals[k] for k in ("time", "train_time", "compile_time",
                                           "eval_time")})
      r.writer.write(row)
      if rate:
        bar.set_postfix(loss=f"{row['loss']:.3f}", tok_s=f"{rate:,.0f}", refresh=False)
      window = {"steps": 0, "seconds": 0.0}
      if evaluated and r.stop_when is not None:
        r.stop_reason = r.stop_when(row)
        if r.stop_reason:
          log.info("stage %d: stopping at step %d: %s", stage.index, step,
                   r.stop_reason)
      since = time.perf_counter()
    bar.update(1)
    if (step % exp.checkpoint.every_steps == 0 or last or step == r.stop_at_step
        or r.stop_reason):
      settle()
      save(state, step)
      since = time.perf_counter()
    if step == r.stop_at_step or r.stop_reason:
      stopped = True
      break
    if ramp is not None and "masks0" in state and ramp.done(step):
      settle()
      state = fold(state, step)
      train_step, eval_step = compile_steps(state)
      fresh = True
  bar.close()
  r.ckpt.wait()
  r.data_state = train_iter.get_state()
  return state, stopped
