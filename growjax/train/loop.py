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
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib
import time
from typing import Any

import jax
import numpy as np
import tqdm

from growjax import checkpoint as ckpt_lib
from growjax import cost, data, grow, hf, model, parallel
from growjax.experiment import Experiment, ExperimentError, Stage
from growjax.train import metrics as metrics_lib
from growjax.train import optimizer as opt_lib
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
  val_set: list  # fixed validation batches, on devices
  ckpt: ckpt_lib.Checkpointer
  writer: metrics_lib.Writer
  starts: list[int]  # global step at which each stage begins, plus the end
  stop_at_step: int | None
  totals: dict  # cumulative tokens, train_flops, time
  data_state: dict | None  # where the training stream stands


# ----------------------------------------------------------------- workdir --
def check_workdir(exp: Experiment, workdir: pathlib.Path):
  """Refuses a workdir that holds another experiment's run. Writes nothing."""
  record = workdir / "experiment.json"
  if record.exists():
    old = json.loads(record.read_text())
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
  if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
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
      raise ExperimentError(f"data: {e}") from e
  if jax.process_count() == 1:
    return prepare()
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  corpus = prepare() if jax.process_index() == 0 else None
  multihost_utils.sync_global_devices("growjax: data prepared")
  return corpus or prepare()


# -------------------------------------------------------------------- run --
def run(exp: Experiment, workdir, *, stop_at_step: int | None = None) -> dict:
  """Trains every stage of `exp` in `workdir`, resuming from its latest
  checkpoint. Returns a summary dict. `stop_at_step` stops (after saving)
  when the global step reaches it."""
  workdir = pathlib.Path(workdir)

  # --- Workdir: refuse another experiment's run before writing anything.
  check_workdir(exp, workdir)
  log.info("workdir %s", workdir.resolve())

  # --- Mesh.
  shape = exp.mesh.shape(jax.device_count())
  mesh = parallel.make_mesh(**shape)
  rules = parallel.rules_from_config(exp.mesh.rules)
  log.info("mesh %s over %d %s devices", shape, jax.device_count(),
           jax.devices()[0].platform)

  # --- Data: corpus, tokenizer and a fixed validation set, on devices.
  corpus = _prepare_data(exp)
  val_batch = exp.stages[0].batch_size
  val_iter = data.batches(corpus, "validation", seq_len=exp.seq_len,
                          batch_size=val_batch, seed=exp.seed, num_epochs=1,
                          shard_index=jax.process_index(),
                          shard_count=jax.process_count())
  val_set = [parallel.global_batch(b, mesh, rules)
             for _, b in zip(range(exp.eval.batches), val_iter)]
  if not val_set:
    raise ExperimentError(f"data: the validation split of {exp.data.name!r} "
                          f"holds no batch of {val_batch} x {exp.seq_len + 1} tokens")
  log.info("data %s: %s training tokens, validation %d batches of %d",
           exp.data.name, f"{corpus.num_tokens('train'):,}", len(val_set), val_batch)

  # --- Checkpoints: resume from the newest one.
  workdir.mkdir(parents=True, exist_ok=True)
  (workdir / "experiment.json").write_text(json.dumps(exp.fingerprint(), indent=1))
  (workdir / "config.json").write_text(json.dumps(exp.config, indent=1))
  writer = metrics_lib.Writer(workdir, enabled=jax.process_index() == 0)
  with ckpt_lib.Checkpointer(workdir, keep=exp.checkpoint.keep) as ckpt:
    found = ckpt_lib.latest(workdir)
    meta = ckpt.read_meta(*found) if found else None
    if meta:
      log.info("resuming from stage %d step %d", meta["stage"], meta["step"])
    r = Run(exp=exp, mesh=mesh, rules=rules, corpus=corpus, val_set=val_set,
            ckpt=ckpt, writer=writer, starts=exp.stage_starts(),
            stop_at_step=stop_at_step,
            totals=(meta or {}).get("totals", {"tokens": 0, "train_flops": 0.0,
                                               "time": 0.0}),
            data_state=(meta or {}).get("data"))

    # --- Stages: each from the state the previous one ended with.
    state, stopped = None, False
    for stage in exp.stages[meta["stage"] if meta else 0:]:
      resume = meta if meta and meta["stage"] == stage.index else None
      state, stopped = _run_stage(r, stage, state, resume)
      if stopped:
        break
  writer.close()
  rows = metrics_lib.read(workdir)
  return {"workdir": str(workdir.resolve()),
          "table": metrics_lib.summary_table(rows), "totals": r.totals,
          "stopped": stopped}


def _run_stage(r: Run, stage: Stage, prev_state, resume: dict | None):
  """Trains one stage from `prev_state` (the previous stage's last state;
  None for stage 0) or from the checkpoint `resume` names. Returns (its last
  state, whether it stopped at `stop_at_step`)."""
  exp, cfg = r.exp, stage.model
  start, end = r.starts[stage.index], r.starts[stage.index + 1]

  # --- Model and optimizer of this stage.
  lr = opt_lib.schedule(stage, start, end - start)
  optimizer = opt_lib.make(exp.optimizer, lr)
  log.info("stage %d: %s, %s params, steps %d-%d", stage.index,
           {k: getattr(cfg, k) for k in ("d_model", "n_layers", "n_heads", "d_ff")},
           f"{model.param_count(cfg):,}", start, end)

  # --- State: restore, initialise, or grow from the previous stage.
  key = jax.random.fold_in(jax.random.key(exp.seed), stage.index)
  ramp = stage.ramp(start)
  if resume is not None:
    abstract, _ = state_lib.abstract_state(cfg, optimizer, resume["masks"],
                                           r.mesh, r.rules)
    state = r.ckpt.restore(stage.index, resume["step"], abstract)
    metrics_lib.drop_after(r.ckpt.workdir, resume["step"])  # logged again
  elif stage.index == 0:
    _, shardings = state_lib.abstract_state(cfg, optimizer, (), r.mesh, r.rules)
    if exp.init_from is None:
      state = state_lib.init_state(cfg, optimizer, key, shardings)
    else:  # a pretrained model, checked when the experiment was read
      state = state_lib.state_from_params(cfg, optimizer, hf.load_pretrained(
          hf.init_from_dir(exp.init_from))[1], shardings)
  else:
    prev = exp.stages[stage.index - 1]
    fixed = r.val_set[0]
    before = float(jax.jit(step_lib.make_eval_step(prev.model))(prev_state, fixed))
    state, ramp = state_lib.grow_state(prev_state, prev, stage, key, optimizer,
                                       r.mesh, r.rules, start=start)
    del prev_state
    after = float(jax.jit(step_lib.make_eval_step(cfg, ramp))(state, fixed))
    r.writer.write({"event": "growth", "step": start, "stage": stage.index,
                    "method": stage.grow.method, "loss_before": before,
                    "loss_after": after})
    log.info("grew into stage %d by %s: fixed-batch loss %.6f -> %.6f",
             stage.index, stage.grow.method, before, after)

  # --- Data: the stream continues where the previous stage stopped (its
  # position does not depend on the batch size); saved with the model.
  train_iter = data.batches(
      r.corpus, "train", seq_len=exp.seq_len, batch_size=stage.batch_size,
      seed=exp.seed, shard_index=jax.process_index(),
      shard_count=jax.process_count())
  if r.data_state is not None:
    train_iter.set_state(r.data_state)

  def save(state, step):
    r.ckpt.save(stage.index, step, state, {
        "stage": stage.index, "step": step, "masks": sorted(state.get("masks0", {})),
        "data": train_iter.get_state(), "totals": r.totals})

  if resume is None:
    save(state, start)  # the grown (or fresh) state, at once

  # --- Update step: jitted once per shape (and once more when masks fold).
  def compile_steps(state):
    shardings = jax.tree.map(lambda x: x.sharding, state)  # where it lives
    batch_sh = parallel.batch_sharding(r.mesh, r.rules)
    train = jax.jit(
        step_lib.make_train_step(cfg, optimizer, lr, microbatches=stage.microbatches,
                                 ramp=ramp, remat=exp.train.remat),
        in_shardings=(shardings, batch_sh), out_shardings=(shardings, None),
        donate_argnames=("state",))
    evaluate = jax.jit(step_lib.make_eval_step(cfg, ramp),
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

  def validate(state):
    return float(np.mean([jax.device_get(eval_step(state, b)) for b in r.val_set]))

  # --- Loop.
  tokens_per_step = stage.batch_size * exp.seq_len
  flops_per_token = cost.train_flops_per_token(cfg, exp.seq_len)
  bar = tqdm.tqdm(total=end - start, initial=step - start, desc=f"stage {stage.index}",
                  unit="step", disable=not exp.train.progress or jax.process_index() != 0,
                  dynamic_ncols=True)
  tick, tick_step, stopped = time.perf_counter(), step, False
  while step < end:
    batch = parallel.global_batch(next(train_iter), r.mesh, r.rules)
    with jax.transfer_guard("disallow"):
      state, m = train_step(state, batch)
    step += 1
    r.totals["tokens"] += tokens_per_step
    r.totals["train_flops"] += flops_per_token * tokens_per_step
    last = step == end
    if step % exp.train.log_every == 0 or last or step == r.stop_at_step:
      m = jax.device_get(m)
      now = time.perf_counter()
      seconds = now - tick
      r.totals["time"] += seconds
      rate = (step - tick_step) * tokens_per_step / max(seconds, 1e-9)
      row = {"step": step, "stage": stage.index, "loss": float(m["loss"]),
             "lr": float(m["lr"]), "grad_norm": float(m["grad_norm"]),
             "tokens": r.totals["tokens"], "tokens_per_s": rate,
             "tflops": flops_per_token * rate / 1e12,
             "train_flops": r.totals["train_flops"], "time": r.totals["time"]}
      if step % exp.eval.every_steps == 0 or last:
        row["val_loss"] = validate(state)
      r.writer.write(row)
      bar.set_postfix(loss=f"{row['loss']:.3f}", tok_s=f"{rate:,.0f}", refresh=False)
      tick, tick_step = time.perf_counter(), step
    bar.update(1)
    if step % exp.checkpoint.every_steps == 0 or last or step == r.stop_at_step:
      save(state, step)
    if step == r.stop_at_step:
      stopped = True
      break
    if ramp is not None and "masks0" in state and ramp.done(step):
      state = fold(state, step)
      train_step, eval_step = compile_steps(state)
  bar.close()
  r.ckpt.wait()
  r.data_state = train_iter.get_state()
  return state, stopped
