"""The dry run prices what the trainer trains and the memory each remat policy
needs, and writes what it prints."""

import dataclasses
import json

import ml_collections
import pytest

from growjax import cost, dry_run, memory
from growjax.experiment import Experiment

SEQ, BATCH = 16, 4
GIB = 2.0**30


def _experiment(tokens, grown_layers=2):
  c = ml_collections.ConfigDict()
  c.name = "priced"
  c.data = dict(name="python_source", seq_len=SEQ, vocab_size=512)
  c.model = dict(d_model=16, n_layers=1, n_heads=2, head_dim=8, d_ff=32)
  c.stages = [
      dict(tokens=tokens[0], batch_size=BATCH, lr=dict(peak=1e-3)),
      dict(tokens=tokens[1], batch_size=BATCH, lr=dict(peak=1e-3),
           model=dict(n_layers=grown_layers),
           grow=dict(method="msg", ramp_steps=1)),
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


def _auto(exp):
  """The experiment with train.remat 'auto' (the default)."""
  return dataclasses.replace(exp, train=dataclasses.replace(exp.train,
                                                            remat="auto"))


def test_dry_run_prices_every_policy_and_takes_the_fastest_that_fits(
    tmp_path):
  """Each stage shows its memory per device under every policy and the one
  the run takes: with room for everything 'none', and for the larger stage
  a cheaper one when only it fits within memory.SAFETY of the device."""
  exp = _auto(_experiment((BATCH * SEQ, BATCH * SEQ), grown_layers=8))
  ample = dry_run.plan(exp, 1, device_bytes=1e12)
  for row in ample["stages"]:
    by = row["memory_by_remat"]
    assert list(by) == list(memory.REMAT)
    assert list(by.values()) == sorted(by.values(), reverse=True)
    assert row["remat"] == "none" and row["refusal"] is None
    assert row["memory_per_device"]["total"] == by["none"]
  small, large = (r["memory_by_remat"] for r in ample["stages"])
  device = large["dots"] / memory.SAFETY
  assert small["none"] <= memory.SAFETY * device < large["none"]
  text = dry_run.report(exp, tmp_path, n_devices=1, device_bytes=device)
  p = json.loads((tmp_path / "plan.json").read_text())
  assert [r["remat"] for r in p["stages"]] == ["none", "dots"]
  assert p["stages"][1]["memory_per_device"]["total"] == large["dots"]
  by = ", ".join(f"{k} {v / GIB:.2f}" for k, v in large.items())
  assert (f"stage 1 GiB per device by remat: {by} (device limit "
          f"{device / GIB:.1f} GiB; takes 'dots')") in text
  assert "does not fit" not in text


def test_dry_run_marks_a_stage_that_fits_under_no_policy(tmp_path):
  exp = _auto(_experiment((BATCH * SEQ, BATCH * SEQ), grown_layers=8))
  small, large = (r["memory_by_remat"] for r in
                  dry_run.plan(exp, 1, device_bytes=1e12)["stages"])
  device = (small["full"] + large["full"]) / 2
  text = dry_run.report(exp, tmp_path, n_devices=1, device_bytes=device)
  p = json.loads((tmp_path / "plan.json").read_text())
  assert p["stages"][0]["refusal"] is None
  refusal = p["stages"][1]["refusal"]
  assert refusal == memory.fit_or_explain(memory.Workload(
      exp.stages[1].model, batch_size=BATCH, seq_len=SEQ,
      mesh=dict(data=1, fsdp=1, tensor=1), remat="auto"), device)
  assert refusal.startswith(f"needs {large['full'] / GIB:.1f} GiB per device "
                            "with remat='full' (the least memory)")
  assert f"stage 1 does not fit: {refusal}" in text
  assert "stage 0 does not fit" not in text


def test_a_set_policy_is_priced_as_set():
  """A policy named in the experiment is the one priced, fitting or not."""
  exp = _experiment((BATCH * SEQ, BATCH * SEQ))
  for remat, policy in (("none", "none"), ("full", "full"), ("dots", "dots")):
    e = dataclasses.replace(exp, train=dataclasses.replace(exp.train,
                                                           remat=remat))
    rows = dry_run.plan(e, 1, device_bytes=1.0)["stages"]
    assert [r["remat"] for r in rows] == [policy, policy]
    assert all(r["refusal"].startswith("needs ") for r in rows)
