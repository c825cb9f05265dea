"""The staged training loop.

Reads top to bottom like a recipe, in labelled sections, each opening with
one log line: `run` sets up what every stage shares (workdir, mesh, data,
checkpoints) in a `Run`; `_run_stage` then takes one stage through model and
optimizer, `enter_stage` (restore, initialise or grow: the state, the ramp
and the stream position) and a `StageLoop` (a plain step loop whose named
hooks log, evaluate, checkpoint, guard and preempt). Stage 0 initialises; every
later stage grows the parameters and the AdamW state from the end of the
previous stage (a pure function of that state and of (seed, stage), so a
crash during growth re-grows identically), saves at once, takes the stage's
learning rate from the run's schedule (growjax.schedule: a per-stage cosine
rewound at each growth, or one warmup-stable-decay curve that growth does not
restart), ramps the growth's masks and folds them when the ramp ends. A trunk
also saves and keeps the steps its decay branches start from
(growjax.train.branch).

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
from jax.experimental import multihost_utils
import numpy as np

from growjax import atomic, blame
from growjax import checkpoint as ckpt_lib
from growjax import cost, data, dry_run, grow, hf, memory, model, parallel, pause, progress
from growjax import lock as lock_lib
from growjax import schedule as schedule_lib
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
  remat: list[str]  # each stage's remat policy (growjax.model.REMAT; memory_plan)
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
  corpus = prepare() if jax.process_index() == 0 else None
  multihost_utils.sync_global_devices("growjax: data prepared")
  return corpus or prepare()


# ----------------------------------------------------------------- memory --
def memory_plan(exp: Experiment, mesh_shape: dict) -> list[str]:
  """Each stage's remat policy, as the dry run plans it (`train.remat`, or
  with "auto" the fastest the memory model fits in device memory). A stage
  that fits under no policy is refused here, before anything compiles,
  naming the model's figure and the nearest fix."""
  device_bytes = memory.device_memory_bytes()
  out = []
  for stage in exp.stages:
    policy, refusal = dry_run.stage_remat(exp, stage, mesh_shape, device_bytes)
    if refusal:
      raise ExperimentError(f"stages[{stage.index}]: {refusal}")
    out.append(policy)
  return out


def validation_set(exp: Experiment, corpus, mesh, rules) -> Validation:
  """The fixed held-out windows (`data.validation_windows`: the same for any
  seed and batch size), in batches on the devices; each process feeds its
  rows of every batch."""
  windows = data.validation_windows(corpus, exp.seq_len, exp.eval.tokens)
  count, batch = len(windows), exp.eval_batch_size()
  pad = -count % batch
  windows = np.concatenate([windows, np.zeros((pad, windows.shape[1]), windows.dtype)])
  k, n = parallel.process_rows(mesh, rules)  # multi-host: this process's block
  rows = batch // n
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
  try:  # multi-host: each process must feed its own rows of the batch
    parallel.process_rows(mesh, rules)
  except ValueError as e:
    raise ExperimentError(str(e)) from None
  remat = memory_plan(exp, shape)

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
  with ckpt_lib.Checkpointer(workdir, keep=exp.checkpoint.keep,
                             keep_steps=schedule_lib.checkpoint_steps(exp)) as ckpt:
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
  lr = opt_lib.stage_schedule(exp, stage)
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
  # --- Model and optimizer of this stage.
  lr, optimizer = _optimizer(r.exp, stage)
  cfg, start, end = stage.model, r.starts[stage.index], r.starts[stage.index + 1]
  log.info("stage %d: %s, %s params, steps %d-%d, remat %s", stage.index,
           {k: getattr(cfg, k) for k in ("d_model", "n_layers", "n_heads", "d_ff")},
           f"{model.param_count(cfg):,}", start, end, r.remat[stage.index])
  # --- State: restore, initialise, or grow from the previous stage.
  entry = enter_stage(r, stage, optimizer, prev_state, resume)
  del prev_state
  # --- Update step and loop.
  steps = StageLoop(r, stage, entry, lr, optimizer,
                    saved_at=start if resume is None else resume.step)
  if resume is None:
    steps.save(start)  # the grown (or fresh) state, at once
  stopped = steps.run()
  return steps.state, stopped


# ------------------------------------------------------------ stage entry --
@dataclasses.dataclass
class Entry:
  """A stage as entered: its first state, its growth's mask ramp (None when
  it has none), and where the training stream stands (None: at its start)."""
  state: dict
  ramp: grow.Ramp | None
  data_state: dict | None


def enter_stage(r: Run, stage: Stage, optimizer, prev_state,
                resume: ckpt_lib.Restored | None) -> Entry:
  """The state `stage` starts from: the checkpoint `resume`, else a fresh
  (or pretrained) model for stage 0, else `prev_state` grown. The stream
  goes on where the previous stage stopped (its position does not depend
  on the batch size)."""
  start = r.starts[stage.index]
  key = jax.random.fold_in(jax.random.key(r.exp.seed), stage.index)
  if resume is not None:
    state, ramp = resume.state, stage.ramp(start)
  elif stage.index == 0:
    state, ramp = _initial_state(r, stage, optimizer, key), stage.ramp(start)
  else:
    state, ramp = _grow_into(r, stage, prev_state, optimizer, key)
  return Entry(state, ramp, r.data_state)


def _initial_state(r: Run, stage: Stage, optimizer, key):
  """Stage 0's state: initialised, or a pretrained model's (`init_from`,
  checked when the experiment was read), placed on the mesh."""
  cfg = stage.model
  _, shardings = state_lib.abstract_state(cfg, optimizer, (), r.mesh, r.rules)
  if r.exp.init_from is None:
    return state_lib.init_state(cfg, optimizer, key, shardings)
  params = hf.load_pretrained(hf.init_from_dir(r.exp.init_from))[1]
  return state_lib.state_from_params(cfg, optimizer, params, shardings)


def _grow_into(r: Run, stage: Stage, prev_state, optimizer, key):
  """(the previous stage's last state grown into `stage`, its ramp); logs
  the fixed batch's loss before and after (equal: growth keeps the
  function) as a "growth" event."""
  exp, chunk = r.exp, r.exp.train.loss_chunk
  prev, start = exp.stages[stage.index - 1], r.starts[stage.index]
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
  after = fixed_loss(step_lib.make_eval_step(stage.model, ramp, loss_chunk=chunk),
                     state)
  r.writer.write({"event": "growth", "step": start, "stage": stage.index,
                  "method": stage.grow.method, "loss_before": before,
                  "loss_after": after, "seconds": seconds})
  log.info("grew into stage %d by %s in %.2f s (compile included): "
           "fixed-batch loss %.6f -> %.6f", stage.index, stage.grow.method,
           seconds, before, after)
  return state, ramp


# ------------------------------------------------------------- step loop --
class StageLoop:
  """One stage's steps from its `Entry` to its end: a plain loop (`run`)
  and its named hooks, each called where the loop says: `preempt` (a
  signal: save and stop), `log` (a metrics line, with `evaluate` on the
  validation set when due), `checkpoint`, `guard` (wait for the steps in
  flight and let the guard read their losses) and `fold` (the masks, once
  the ramp has brought them to 1).

  Seconds are booked three ways (metrics.py): the first step of each
  compiled program to compile_time, the steady-state steps between two
  syncs to train_time, validation to eval_time."""

  def __init__(self, r: Run, stage: Stage, entry: Entry, lr, optimizer, *,
               saved_at: int):
    exp = r.exp
    self.r, self.stage, self.lr, self.optimizer = r, stage, lr, optimizer
    self.ramp, self.saved_at = entry.ramp, saved_at
    self.start, self.end = r.starts[stage.index], r.starts[stage.index + 1]
    shard_index, shard_count = parallel.process_rows(r.mesh, r.rules)  # multi-host
    self.stream = data.batches(
        r.corpus, "train", seq_len=exp.seq_len, batch_size=stage.batch_size,
        seed=exp.seed, shard_index=shard_index, shard_count=shard_count)
    if entry.data_state is not None:
      self.stream.set_state(entry.data_state)
    self.tokens_per_step = stage.batch_size * exp.seq_len
    self.flops_per_token = cost.train_flops_per_token(stage.model, exp.seq_len)
    self.state = entry.state
    self.step = int(jax.device_get(self.state["step"]))
    self.m = None  # the last step's metrics (on the devices)
    self.pending = []  # (step, metrics) of the steps the host has not read yet
    self.window = {"steps": 0, "seconds": 0.0}  # steady-state steps since the last log line
    self.since = time.perf_counter()
    self.fresh = True  # the next step is a compiled program's first

  # --- The loop.
  def run(self) -> bool:
    """Trains to the stage's end; returns whether the run stops here."""
    r, exp = self.r, self.r.exp
    self.fold()  # a resumed state whose ramp has ended
    self.compile()
    bar = progress.bar(total=self.end - self.start,
                       initial=self.step - self.start,
                       desc=f"stage {self.stage.index}", unit="step", warmup=1,
                       disable=not exp.train.progress
                       or jax.process_index() != 0 or self.step >= self.end)
    stopped = False
    while self.step < self.end:
      if r.preemption.requested(self.step):
        self.preempt()
        stopped = True
        break
      self.train_one()
      last, at_stop = self.step == self.end, self.step == r.stop_at_step
      if self.step % exp.train.log_every == 0 or last or at_stop:
        row = self.log(evaluate=self.step % exp.eval.every_steps == 0 or last)
        if "tokens_per_s" in row:
          bar.set_postfix(loss=f"{row['loss']:.3f}",
                          tok_s=f"{row['tokens_per_s']:,.0f}", refresh=False)
      bar.update(1)
      if (self.step % exp.checkpoint.every_steps == 0 or last or at_stop
          or r.stop_reason or self.step in r.ckpt.keep_steps):
        self.checkpoint()
      if at_stop or r.stop_reason:
        stopped = True
        break
      if self.masks_done():
        self.guard()
        self.fold()
        self.compile()
    bar.close()
    r.ckpt.wait()
    r.data_state = self.stream.get_state()
    return stopped

  def train_one(self):
    """One update on the stream's next batch; the host does not wait for it
    (except on a program's first step, booked as compile time)."""
    r = self.r
    batch = parallel.global_batch(next(self.stream), r.mesh, r.rules)
    began = time.perf_counter()
    with jax.transfer_guard("disallow"):
      self.state, self.m = self.train_step(self.state, batch)
    pause.at("step", self.step + 1)
    self.pending.append((self.step + 1, self.m))
    if self.fresh:  # compiled (or loaded from the cache) by this first call
      jax.block_until_ready(self.m)
      self.since = time.perf_counter()
      r.totals["compile_time"] += self.since - began
      self.fresh = False
    else:
      self.window["steps"] += 1
    self.step += 1
    r.step = self.step
    r.totals["tokens"] += self.tokens_per_step
    r.totals["train_flops"] += self.flops_per_token * self.tokens_per_step

  # --- Hooks.
  def preempt(self):
    """A signal asked to stop: save here (unless just saved), and stop."""
    r = self.r
    self.guard()
    if self.saved_at != self.step:
      self.save(self.step)
    r.preempted = r.preemption.signal
    r.stop_reason = f"preempted by {r.preempted}"
    log.info("stage %d: %s at step %d: saved, stopping", self.stage.index,
             r.preempted, self.step)

  def log(self, *, evaluate: bool) -> dict:
    """Writes the metrics line of this step (with the validation loss when
    `evaluate`) and returns it; asks `stop_when` about it."""
    r = self.r
    self.guard()
    values = jax.device_get(self.m)
    w = self.window
    rate = (w["steps"] * self.tokens_per_step / w["seconds"]
            if w["steps"] and w["seconds"] > 0 else None)
    row = {"step": self.step, "stage": self.stage.index,
           "loss": float(values["loss"]), "lr": float(values["lr"]),
           "grad_norm": float(values["grad_norm"]),
           "tokens": r.totals["tokens"], "train_flops": r.totals["train_flops"],
           "skipped_steps": r.guard.skipped}
    if rate:  # none when the window held only a compiling step
      row.update(tokens_per_s=rate, tflops=self.flops_per_token * rate / 1e12)
    if evaluate:
      row.update(self.evaluate())
    r.tick()
    row.update({k: r.totals[k] for k in ("time", "train_time", "compile_time",
                                         "eval_time")})
    r.writer.write(row)
    self.window = {"steps": 0, "seconds": 0.0}
    if evaluate and r.stop_when is not None:
      r.stop_reason = r.stop_when(row)
      if r.stop_reason:
        log.info("stage %d: stopping at step %d: %s", self.stage.index,
                 self.step, r.stop_reason)
    self.since = time.perf_counter()
    return row

  def evaluate(self) -> dict:
    """The validation loss of the current state, and its standard error."""
    began = time.perf_counter()
    stats = data.loss_stats(self.r.val.losses(self.eval_step, self.state))
    self.r.totals["eval_time"] += time.perf_counter() - began
    return {"val_loss": stats["loss"], "val_loss_se": stats["se"],
            "val_chunks": stats["chunk_means"]}

  def checkpoint(self):
    self.guard()
    self.save(self.step)
    self.since = time.perf_counter()

  def guard(self):
    """Waits for the steps in flight and books their seconds; then reads
    each one's loss for the guard, which may stop the run (Diverged) or roll
    it back (_Rollback)."""
    r = self.r
    if self.m is not None:
      jax.block_until_ready(self.m)
    now = time.perf_counter()
    r.totals["train_time"] += now - self.since
    self.window["seconds"] += now - self.since
    self.since = now
    steps = [s for s, _ in self.pending]
    values = jax.device_get([v for _, v in self.pending])
    self.pending.clear()
    for s, v in zip(steps, values):
      why = r.guard.observe(s, float(v["loss"]), float(v["grad_norm"]),
                            bool(v["skipped"]))
      if why:
        raise _Rollback(s, why, self.stream.get_state())

  def masks_done(self) -> bool:
    """Whether the state still has masks and the ramp has brought them to 1."""
    return (self.ramp is not None and "masks0" in self.state
            and self.ramp.done(self.step))

  def fold(self):
    """The state without its masks once the ramp has brought them to 1."""
    if not self.masks_done():
      return
    state = dict(self.state)
    grow.fold(self.ramp.masks(state.pop("masks0"), self.step))  # all exactly 1 by now
    self.state = state
    log.info("stage %d: masks reached 1 and folded at step %d",
             self.stage.index, self.step)

  # --- Saving and compiling.
  def save(self, step: int):
    """Starts saving the state; its meta holds what a resumed run needs to
    go on exactly as this one will: the data position, the totals, the
    number of metrics lines and the guard's state."""
    r, state = self.r, self.state
    r.tick()
    r.ckpt.save(self.stage.index, step, state, {
        "stage": self.stage.index, "step": step,
        "masks": sorted(state.get("masks0", {})),
        # a copy: the save is asynchronous and training goes on changing totals
        "data": self.stream.get_state(), "totals": dict(r.totals),
        "metrics_rows": r.writer.rows, "guard": r.guard.state()})
    self.saved_at = step

  def compile(self):
    """The jitted train and eval steps of the current state's shape and
    placement (once per shape, and once more when the masks fold)."""
    r, stage, chunk = self.r, self.stage, self.r.exp.train.loss_chunk
    shardings = jax.tree.map(lambda x: x.sharding, self.state)  # where it lives
    batch_sh = parallel.batch_sharding(r.mesh, r.rules)
    self.train_step = jax.jit(
        step_lib.make_train_step(
            stage.model, self.optimizer, self.lr,
            microbatches=stage.microbatches, ramp=self.ramp,
            remat=r.remat[stage.index], loss_chunk=chunk, mesh=r.mesh,
            rules=r.rules),
        in_shardings=(shardings, batch_sh), out_shardings=(shardings, None),
        donate_argnames=("state",))
    self.eval_step = jax.jit(
        step_lib.make_eval_step(stage.model, self.ramp, loss_chunk=chunk,
                                mesh=r.mesh, rules=r.rules),
        in_shardings=(shardings, batch_sh))
    self.fresh = True
