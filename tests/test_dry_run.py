"""The dry run prices what the trainer trains, and writes what it prints."""

import json

import ml_collections
import pytest

from growjax import cost, dry_run
from growjax.experiment import Experiment

SEQ, BATCH = 16, 4


def _experiment(tokens):
  c = ml_collections.ConfigDict()
  c.name = "priced"
  c.data = dict(name="python_source", seq_len=SEQ, vocab_size=512)
  c.model = dict(d_model=16, n_layers=1, n_heads=2, head_dim=8, d_ff=32)
  c.stages = [
      dict(tokens=tokens[0], batch_size=BATCH, lr=dict(peak=1e-3)),
      dict(tokens=tokens[1], batch_size=BATCH, lr=dict(peak=1e-3),
           model=dict(n_layers=2), grow=dict(method="msg", ramp_steps=1)),
  ]
  c.mesh = dict(data=1, fsdp=1, tensor=1)
  return Experiment.from_config(c, n_devices=1)


def test_dry_run_prices_the_steps_the_trainer_runs_not_the_declared_tokens(
    tmp_path):
  """Stage 0 declares 3 windows and 5 tokens: the trainer runs
  floor(tokens / (B T)) = 3 steps, so the plan prices 3 x 4 x 16 = 192
  tokens (the steps `Experiment.stage_starts` gives the loop), and shows the
  declared 197 beside them; stage 1 divides, and says nothing more."""
  step = BATCH * SEQ
  exp = _experiment((3 * step + 5, 2 * step))
  text = dry_run.report(exp, tmp_path, n_devices=1)
  p = json.loads((tmp_path / "plan.json").read_text())
  starts = exp.stage_starts()
  for i, (stage, row) in enumerate(zip(exp.stages, p["stages"])):
    assert row["steps"] == starts[i + 1] - starts[i]
    assert row["tokens"] == row["steps"] * BATCH * SEQ
    assert row["declared_tokens"] == stage.tokens
    assert row["train_flops"] == pytest.approx(
        cost.train_flops_per_token(stage.model, SEQ) * row["tokens"])
  assert [r["tokens"] for r in p["stages"]] == [3 * step, 2 * step]
  assert p["total_tokens"] == 5 * step
  assert "stage 0 declares 197 tokens and trains 192 (3 steps x batch 4 x " \
         "seq_len 16)" in text
  assert "stage 1 declares" not in text
  assert p == json.loads(json.dumps(dry_run.plan(exp, 1)))
