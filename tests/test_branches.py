"""Training under a warmup-stable-decay schedule across a growth: exact resume
at the growth and inside the re-warm, and decay branches (a run of their own
from the trunk's checkpoint, charged its FLOPs, resuming exactly, never
writing into the trunk)."""

import json

import pytest

from growjax import schedule
from growjax.experiment import Experiment
from growjax.train import branch as branch_lib
from growjax.train import loop
from growjax.train import metrics as metrics_lib
from trees import tree_hash

BATCH, SEQ = 8, 32
TOKENS = BATCH * SEQ


def config(text_path, data_dir):
  """16 steps: warmup 2, growth at 8 (re-warm 3 steps), decay 12-16; a branch
  from step 6 decays over 6-12, across the growth."""
  data = dict(name="text_files", paths=[str(text_path)], seq_len=SEQ,
              vocab_size=512, tokenizer_chars=300_000, dir=str(data_dir))
  return dict(
      name="wsd", seed=0, data=data,
      model=dict(d_model=32, n_layers=1, n_heads=2, head_dim=16, d_ff=64),
      schedule=dict(kind="wsd", peak=1e-2, warmup_steps=2, decay_fraction=0.25,
                    decay_shape="1-sqrt", final=1e-3, rewarm_steps=3,
                    rewarm_from=0.1),
      branches=dict(decay_at=[0.75], decay_fraction=0.5),
      stages=[dict(tokens=8 * TOKENS, batch_size=BATCH),
              dict(model=dict(n_layers=2), grow=dict(method="zero"),
                   tokens=8 * TOKENS, batch_size=BATCH, lr_multiplier=0.8)],
      checkpoint=dict(every_steps=5, keep=1),
      eval=dict(every_steps=4, tokens=512),
      train=dict(log_every=1, progress=False))


def losses(workdir):
  return [(r["step"], r["loss"]) for r in metrics_lib.read(workdir) if "event" not in r]




@pytest.fixture(scope="module")
def trunk(text_path, data_dir, tmp_path_factory):
  exp = Experiment.from_config(config(text_path, data_dir), n_devices=1)
  workdir = tmp_path_factory.mktemp("trunk")
  loop.run(exp, workdir)
  return exp, workdir


def test_resume_at_the_growth_and_inside_the_rewarm_repeats_the_losses(
    trunk, tmp_path):
  exp, reference = trunk
  for stop in (8, 9):  # the growth's step, then inside its re-warm
    loop.run(exp, tmp_path, stop_at_step=stop)
  loop.run(exp, tmp_path)
  assert losses(tmp_path) == losses(reference)
  lr = {r["step"]: r["lr"] for r in metrics_lib.read(reference) if "lr" in r}
  assert lr[9] == pytest.approx(0.8 * 0.1 * 1e-2)  # the re-warm's first step
  assert lr[12] == pytest.approx(0.8 * 1e-2)  # stable, at the stage's multiplier


def test_a_branch_resumed_mid_decay_equals_one_never_interrupted(
    trunk, tmp_path):
  exp, trunk_dir = trunk
  before = tree_hash(trunk_dir)
  (b,) = schedule.branches(exp)
  assert (b.start, b.end) == (6, 12)
  whole, cut = tmp_path / "whole", tmp_path / "cut"
  branch_lib.run(exp, trunk_dir, 0.75, whole, n_devices=1)
  branch_lib.run(exp, trunk_dir, 0.75, cut, n_devices=1, stop_at_step=10)
  branch_lib.run(exp, trunk_dir, 0.75, cut, n_devices=1)
  assert tree_hash(trunk_dir) == before  # the trunk is never written
  assert losses(cut) == losses(whole)
  mine, theirs = dict(losses(whole)), dict(losses(trunk_dir))
  assert [mine[s] for s in range(1, 7)] == [theirs[s] for s in range(1, 7)]
  assert max(mine) == 12 and mine[7] == theirs[7]  # the rates differ from 7 on
  rows = {r["step"]: r for r in metrics_lib.read(whole) if "event" not in r}
  trunk_rows = {r["step"]: r for r in metrics_lib.read(trunk_dir) if "event" not in r}
  # charged the trunk's FLOPs to the branch point, then its own
  assert rows[12]["train_flops"] == pytest.approx(trunk_rows[12]["train_flops"])
  assert rows[8]["lr"] < trunk_rows[8]["lr"]
  assert rows[12]["lr"] < 0.8 * 1e-2 / 2
  assert json.loads((whole / "branch.json").read_text())["start"] == 6
