"""The trainer end to end: learning, staged growth, checkpoints, exact resume,
and what it survives: corrupt checkpoints, signals, non-finite and spiking
losses."""

import json
import logging
import os
import pathlib
import shutil
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from growjax import checkpoint, data, lock, parallel, pause, trained
from growjax import loss as loss_lib
from growjax.experiment import Experiment
from growjax.train import guard
from growjax.train import loop
from growjax.train import metrics as metrics_lib
from growjax.train import preempt
from trees import tree_hash

BATCH, SEQ = 8, 32


def tiny_config(text_path, data_dir, stages):
  """A tiny experiment on a real text (tinyshakespeare where present)."""
  data = dict(name="text_files", paths=[str(text_path)], seq_len=SEQ,
              vocab_size=512, tokenizer_chars=300_000, dir=str(data_dir))
  return dict(
      name="tiny", seed=0, data=data,
      model=dict(d_model=32, n_layers=1, n_heads=2, head_dim=16, d_ff=64),
      stages=stages,
      checkpoint=dict(every_steps=5, keep=2),
      eval=dict(every_steps=5, tokens=512),
      train=dict(log_every=1, progress=False))


def stage(steps, lr=1e-2, **extra):
  return dict(tokens=steps * BATCH * SEQ, batch_size=BATCH,
              lr=dict(peak=lr, warmup_steps=2, final=lr / 10), **extra)


THREE_STAGES = [
    stage(10),
    stage(8, lr=5e-3, model=dict(d_model=48, n_heads=3, d_ff=96, n_layers=2),
          grow=dict(method="msg", ramp_steps=3, new_layers="top")),
    stage(8, lr=5e-3, model=dict(n_layers=3, d_ff=128),
          grow=dict(method="zero")),
]


def losses(workdir):
  return [(r["step"], r["loss"]) for r in metrics_lib.read(workdir)
          if "event" not in r]


def test_training_lowers_the_loss_by_a_nat(text_path, data_dir, tmp_path):
  exp = Experiment.from_config(
      tiny_config(text_path, data_dir, [stage(40)]), n_devices=1)
  loop.run(exp, tmp_path)
  curve = [l for _, l in losses(tmp_path)]
  assert len(curve) == 40
  assert np.mean(curve[:3]) - np.mean(curve[-5:]) > 1.0, curve


def test_a_stage_is_entered_and_stepped_hook_by_hook(text_path, data_dir,
                                                    tmp_path):
  """The parts of a stage, without `loop.run`: `enter_stage` gives stage 0
  a fresh state at step 0 (no ramp, the stream at its start); the step loop
  takes two updates, its `log` hook writes the line of step 2 with the
  validation loss, and its `checkpoint` hook saves step 2."""
  exp = Experiment.from_config(
      tiny_config(text_path, data_dir, [stage(4)]), n_devices=1)
  mesh = parallel.make_mesh(**exp.mesh.shape(1), devices=jax.devices()[:1])
  rules = parallel.rules_from_config(exp.mesh.rules)
  corpus = data.prepare(exp.data)
  with checkpoint.Checkpointer(tmp_path, keep=2) as ckpt, \
       metrics_lib.Writer(tmp_path) as writer:
    r = loop.Run(
        exp=exp, mesh=mesh, rules=rules, corpus=corpus,
        val=loop.validation_set(exp, corpus, mesh, rules), remat=["none"],
        ckpt=ckpt, writer=writer, starts=exp.stage_starts(),
        stop_at_step=None, stop_when=None, data_state=None,
        totals=dict(tokens=0, train_flops=0.0, time=0.0, train_time=0.0,
                    compile_time=0.0, eval_time=0.0),
        guard=guard.Guard(10, None), preemption=preempt.Preemption())
    first = exp.stages[0]
    lr, optimizer = loop._optimizer(exp, first)
    entry = loop.enter_stage(r, first, optimizer, None, None)
    assert entry.ramp is None and entry.data_state is None
    steps = loop.StageLoop(r, first, entry, lr, optimizer, saved_at=0)
    assert steps.step == 0
    steps.compile()
    steps.train_one()
    steps.train_one()
    row = steps.log(evaluate=True)
    steps.checkpoint()
    ckpt.wait()
  assert row["step"] == 2 and np.isfinite(row["loss"]) and "val_loss" in row
  assert [l["step"] for l in metrics_lib.read(tmp_path)] == [2]
  assert r.totals["tokens"] == 2 * BATCH * SEQ
  assert checkpoint.latest(tmp_path) == (0, 2)


@pytest.fixture(scope="module")
def three_stage_run(text_path, data_dir, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("three_stages")
  exp = Experiment.from_config(
      tiny_config(text_path, data_dir, THREE_STAGES), n_devices=1)
  summary = loop.run(exp, workdir)
  return exp, workdir, summary


def test_every_stage_is_checkpointed(three_stage_run):
  exp, workdir, _ = three_stage_run
  starts = exp.stage_starts()
  for i in range(3):
    steps = sorted(int(p.name) for p in checkpoint.stage_dir(workdir, i).iterdir()
                   if p.name.isdigit())
    assert steps[-1] == starts[i + 1]  # each stage's end
  # the grown state was saved at once, at the first step of its stage
  assert checkpoint.latest(workdir) == (2, starts[3])


def test_growth_keeps_the_fixed_batch_loss(three_stage_run):
  _, workdir, _ = three_stage_run
  events = [r for r in metrics_lib.read(workdir) if r.get("event") == "growth"]
  assert [e["stage"] for e in events] == [1, 2]
  for e in events:
    assert e["loss_after"] == pytest.approx(e["loss_before"], rel=1e-6, abs=1e-6)


def test_training_improves_after_each_growth(three_stage_run):
  exp, workdir, _ = three_stage_run
  rows = metrics_lib.read(workdir)
  for e in (r for r in rows if r.get("event") == "growth"):
    start, end = exp.stage_starts()[e["stage"]:e["stage"] + 2]
    # exact growth: the grown model's validation loss is the one logged at
    # the previous stage's last step, on the same fixed validation set
    at_growth = [r["val_loss"] for r in rows if r.get("step") == start and "val_loss" in r]
    final = [r["val_loss"] for r in rows if r.get("step") == end and "val_loss" in r]
    assert final[-1] < at_growth[-1], (e, at_growth, final)


def test_resumed_run_repeats_the_uninterrupted_losses(
    three_stage_run, text_path, data_dir, tmp_path):
  """Stopped mid-stage, mid-ramp and at a stage boundary, then resumed: the
  losses equal those of the uninterrupted run bit for bit."""
  exp, reference, _ = three_stage_run
  starts = exp.stage_starts()
  for stop in (7, starts[1] + 1, starts[2]):
    loop.run(exp, tmp_path, stop_at_step=stop)
    assert checkpoint.latest(tmp_path)[1] == stop
  loop.run(exp, tmp_path)
  assert losses(tmp_path) == losses(reference)


def test_workdir_of_another_experiment_is_refused(three_stage_run, text_path,
                                                  data_dir):
  _, workdir, _ = three_stage_run
  before = sorted(str(p) for p in pathlib.Path(workdir).rglob("*"))
  other = tiny_config(text_path, data_dir, [stage(12)])
  with pytest.raises(ValueError, match=r"holds a different experiment \(stages"):
    loop.run(Experiment.from_config(other, n_devices=1), workdir)
  assert sorted(str(p) for p in pathlib.Path(workdir).rglob("*")) == before


def test_run_writes_metrics_the_report_reads(three_stage_run):
  _, workdir, summary = three_stage_run
  rows = [r for r in metrics_lib.read(workdir) if "event" not in r]
  for key in ("step", "stage", "loss", "lr", "tokens", "grad_norm",
              "train_flops", "time", "train_time", "compile_time", "eval_time"):
    assert all(key in r for r in rows), key
  # throughput is steady-state: absent only where a line's window held just
  # the first (compiling) step of a program
  assert sum("tokens_per_s" in r and "tflops" in r for r in rows) >= len(rows) - 6
  for key in ("time", "train_time", "compile_time"):
    assert all(a[key] <= b[key] for a, b in zip(rows, rows[1:])), key
  assert rows[-1]["train_time"] + rows[-1]["compile_time"] <= rows[-1]["time"]
  val = [r for r in rows if "val_loss" in r]
  assert val and all(r["val_loss_se"] > 0 and len(r["val_chunks"]) == len(val[0]["val_chunks"])
                     for r in val)
  growth = [r for r in metrics_lib.read(workdir) if r.get("event") == "growth"]
  assert growth and all(e["seconds"] > 0 for e in growth)
  assert rows[-1]["tokens"] == sum(s["tokens"] for s in THREE_STAGES)
  assert "stage" in summary["table"]
  assert json.loads((pathlib.Path(workdir) / "config.json").read_text())["name"] == "tiny"


def test_fsdp_and_tensor_sharded_run_matches_the_data_parallel_one(
    three_stage_run, text_path, data_dir, tmp_path):
  """The same three stages on a (data 2, fsdp 2, tensor 2) mesh: parameters,
  optimizer state and growth are sharded, and the losses agree with the
  data-parallel run up to float reassociation."""
  exp, reference, _ = three_stage_run
  config = tiny_config(text_path, data_dir, THREE_STAGES)
  config["mesh"] = dict(data=2, fsdp=2, tensor=2)
  sharded = Experiment.from_config(config, n_devices=8)
  loop.run(sharded, tmp_path)
  got, want = losses(tmp_path), losses(reference)
  assert [s for s, _ in got] == [s for s, _ in want]
  np.testing.assert_allclose([l for _, l in got], [l for _, l in want], rtol=2e-3)


# ------------------------------------------------------------ integrity --
def copy_of(reference, tmp_path) -> pathlib.Path:
  workdir = tmp_path / "copy"
  shutil.copytree(reference, workdir)
  return workdir




def _halve_arrays(d):
  for f in (d / "params").rglob("*"):
    if f.is_file() and f.parent.name == "d":
      f.write_bytes(f.read_bytes()[:f.stat().st_size // 2])


CORRUPTIONS = {
    "truncated arrays": _halve_arrays,
    "garbage meta": lambda d: (d / "meta" / "metadata").write_text("{garbage"),
    "missing meta": lambda d: shutil.rmtree(d / "meta"),
    "garbage array metadata": lambda d: (d / "params" / "_METADATA").write_text("{"),
    "half-written directory": lambda d: shutil.rmtree(d / "opt_state"),
}


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_corrupt_latest_checkpoint_is_moved_aside_and_the_run_resumes_exactly(
    three_stage_run, tmp_path, corruption, caplog):
  """The newest checkpoint, damaged: named in one line, moved to
  checkpoints/corrupt/, and the run resumes from the one before it in the same
  stage, ending with the uninterrupted run's losses."""
  exp, reference, _ = three_stage_run
  workdir = copy_of(reference, tmp_path)
  stage, step = checkpoint.latest(workdir)
  CORRUPTIONS[corruption](checkpoint.stage_dir(workdir, stage) / str(step))
  with caplog.at_level(logging.INFO, logger="growjax"):
    loop.run(exp, workdir)
  # growjax's own lines: asyncio may also log orbax's abandoned restore task
  # (multi-line, naming the same path) whenever the garbage collector finds it
  named = [r.getMessage() for r in caplog.records
           if r.name.startswith("growjax") and f"stage_{stage}/{step}" in r.getMessage()]
  assert named and all("\n" not in m for m in named), named
  moved = workdir / "checkpoints" / "corrupt" / f"stage_{stage}_{step}"
  assert moved.is_dir()
  assert f"resuming from stage {stage} step" in caplog.text
  assert losses(workdir) == losses(reference)
  # the one resumed from is still there: a corrupt one counts no more
  # towards `keep` (2), so nothing good was rotated away
  kept = sorted(int(p.name) for p in checkpoint.stage_dir(workdir, stage).iterdir())
  assert kept == sorted(int(p.name) for p in checkpoint.stage_dir(reference, stage).iterdir())


def test_a_stage_whose_checkpoints_are_all_corrupt_resumes_from_the_stage_before(
    three_stage_run, tmp_path):
  exp, reference, _ = three_stage_run
  workdir = copy_of(reference, tmp_path)
  last = checkpoint.stage_dir(workdir, 2)
  for d, corruption in zip(sorted(last.iterdir()), ("truncated arrays", "missing meta")):
    CORRUPTIONS[corruption](d)
  loop.run(exp, workdir)
  assert sorted(p.name for p in (workdir / "checkpoints" / "corrupt").iterdir()) == [
      f"stage_2_{d.name}" for d in sorted(checkpoint.stage_dir(reference, 2).iterdir())]
  assert losses(workdir) == losses(reference)
  growth = [r for r in metrics_lib.read(workdir) if r.get("event") == "growth"]
  assert [g["stage"] for g in growth] == [1, 2]  # regrown, logged once


def test_when_no_checkpoint_restores_it_says_so_in_one_line_and_moves_nothing(
    three_stage_run, tmp_path):
  exp, reference, _ = three_stage_run
  workdir = copy_of(reference, tmp_path)
  dirs = [checkpoint.stage_dir(workdir, s) / str(t)
          for s, t in checkpoint.candidates(workdir)]
  for d in dirs:
    _halve_arrays(d)
  before = tree_hash(workdir)
  with pytest.raises(checkpoint.CheckpointError) as raised:
    loop.run(exp, workdir)
  assert str(raised.value) == (
      f"workdir {workdir}: none of its {len(dirs)} checkpoints restores (each "
      "named above), so the cause may be the code rather than the files; "
      "nothing was moved")
  assert tree_hash(workdir) == before


def test_evaluation_reads_a_locked_workdir_past_a_corrupt_checkpoint_writing_nothing(
    three_stage_run, tmp_path):
  _, reference, _ = three_stage_run
  workdir = copy_of(reference, tmp_path)
  stage, step = checkpoint.latest(workdir)
  CORRUPTIONS["truncated arrays"](checkpoint.stage_dir(workdir, stage) / str(step))
  with lock.WorkdirLock(workdir):  # a run training there meanwhile
    before = tree_hash(workdir)
    run = trained.load_latest(workdir)
    assert tree_hash(workdir) == before
  assert (run.stage, run.step) < (stage, step)


# ----------------------------------------------------------- preemption --
def test_sigterm_saves_at_the_next_step_boundary_and_the_resumed_run_matches(
    three_stage_run, tmp_path, monkeypatch):
  exp, reference, _ = three_stage_run
  sig = signal.SIGTERM
  real_at = pause.at

  def signal_at_step_12(point, step):  # mid-step 12, as a scheduler would
    if (point, step) == ("step", 12):
      os.kill(os.getpid(), sig)
    real_at(point, step)

  monkeypatch.setattr(pause, "at", signal_at_step_12)
  summary = loop.run(exp, tmp_path)
  assert summary["preempted"] == sig.name and summary["stopped"]
  assert summary["step"] == 12 and checkpoint.latest(tmp_path) == (1, 12)
  assert signal.getsignal(sig) is not None  # handlers given back
  monkeypatch.setattr(pause, "at", real_at)
  loop.run(exp, tmp_path)
  assert losses(tmp_path) == losses(reference)


# ------------------------------------------------------- numerical guard --
def batches_at(exp, steps) -> np.ndarray:
  """The first 16 tokens of row 0 of the training batch of each step."""
  it = data.batches(data.prepare(exp.data), "train", seq_len=exp.seq_len,
                    batch_size=exp.stages[0].batch_size, seed=exp.seed,
                    shard_index=0, shard_count=1)
  out = {}
  for step in range(1, max(steps) + 1):
    b = next(it)
    if step in steps:
      out[step] = b[0, :16]
  return np.stack([out[s] for s in steps])


def poison(monkeypatch, heads, factor):
  """The loss of a batch whose row 0 starts with one of `heads`, times
  `factor` (nan: a non-finite loss with finite gradients)."""
  real = loss_lib.cross_entropy
  heads = jnp.asarray(heads)

  def poisoned(params, cfg, batch, **kw):
    value = real(params, cfg, batch, **kw)
    hit = jnp.any(jnp.all(batch[0, :16][None] == heads, axis=1))
    if np.isnan(factor):
      return jnp.where(hit, jnp.nan, value)
    return value * jnp.where(hit, factor, 1.0)

  monkeypatch.setattr(loss_lib, "cross_entropy", poisoned)


def one_stage(text_path, data_dir, steps, **train):
  config = tiny_config(text_path, data_dir, [stage(steps)])
  config["train"].update(train)
  return Experiment.from_config(config, n_devices=1)


def test_non_finite_losses_skip_their_updates_and_are_counted(
    text_path, data_dir, tmp_path, monkeypatch, caplog):
  exp = one_stage(text_path, data_dir, 12)
  bad = [4, 7, 8]
  poison(monkeypatch, batches_at(exp, bad), float("nan"))
  with caplog.at_level(logging.WARNING, logger="growjax"):
    loop.run(exp, tmp_path)
  rows = [r for r in metrics_lib.read(tmp_path) if "event" not in r]
  assert [r["step"] for r in rows if np.isnan(r["loss"])] == bad
  assert [r["skipped_steps"] for r in rows] == [0, 0, 0, 1, 1, 1, 2, 3, 3, 3, 3, 3]
  assert "step 8: loss nan, gradient norm 0.0: not finite; update skipped (2 " \
         "in a row, 3 in all)" in caplog.text
  assert np.isfinite(rows[-1]["loss"]) and rows[-1]["loss"] < rows[0]["loss"]


def test_too_many_skipped_steps_in_a_row_stop_the_run_with_its_checkpoint_intact(
    text_path, data_dir, tmp_path, monkeypatch):
  exp = one_stage(text_path, data_dir, 12, max_skipped_in_a_row=3)
  poison(monkeypatch, batches_at(exp, [6, 7, 8]), float("nan"))
  with pytest.raises(guard.Diverged, match=r"^step 8: 3 updates in a row skipped"):
    loop.run(exp, tmp_path)
  assert checkpoint.latest(tmp_path) == (0, 5)
  assert trained.load_latest(tmp_path).step == 5  # it restores
  assert not (tmp_path / lock.NAME).exists()


def test_a_loss_spike_rolls_back_to_the_last_checkpoint_past_its_batches(
    text_path, data_dir, tmp_path, monkeypatch):
  exp = one_stage(text_path, data_dir, 20, spike_factor=3.0)
  poison(monkeypatch, batches_at(exp, [13]), 30.0)
  loop.run(exp, tmp_path)
  rows = metrics_lib.read(tmp_path)
  events = [r for r in rows if r.get("event") == "rollback"]
  assert [(e["step"], e["spike_step"], e["skipped_batches"]) for e in events] == [
      (10, 13, 3)]
  steps = [r["step"] for r in rows if "event" not in r]
  assert steps == list(range(1, 21))  # each step once, the spike's undone
  assert max(r["loss"] for r in rows if "event" not in r) < 10
  assert rows[-1]["tokens"] == 20 * BATCH * SEQ  # skipped batches not counted
