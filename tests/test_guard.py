"""The numerical guard: a non-finite step changes nothing; the host's verdicts."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from growjax import ModelConfig, model
from growjax.train import guard
from growjax.train import optimizer as opt_lib
from growjax.train import step as step_lib

CFG = ModelConfig(vocab_size=64, d_model=16, n_layers=1, n_heads=2, head_dim=8,
                  d_ff=32, max_len=8)


def test_a_non_finite_gradient_leaves_parameters_and_optimizer_state_unchanged():
  lr = optax.constant_schedule(1e-2)
  optimizer = opt_lib.make(opt_lib.Optimizer(), lr)
  params = model.init(CFG, jax.random.key(0))
  state = {"params": params, "opt_state": optimizer.init(params),
           "step": jnp.full((), 3, jnp.int32)}
  # test_step.py's program: one compile (or cache hit) for both files
  batch = jax.random.randint(jax.random.key(1), (8, 9), 0, CFG.vocab_size)
  train_step = jax.jit(step_lib.make_train_step(CFG, optimizer, lr))
  good, m = train_step(state, batch)
  assert not m["skipped"] and int(good["step"]) == 4
  # one NaN weight: the loss and every gradient it touches are NaN
  bad = dict(state, params=jax.tree.map(lambda x: x, params))
  bad["params"]["ln_f"]["scale"] = params["ln_f"]["scale"].at[0].set(jnp.nan)
  out, m = train_step(bad, batch)
  assert bool(m["skipped"]) and not np.isfinite(float(m["loss"]))
  assert int(out["step"]) == 4  # the batch is consumed
  for a, b in zip(jax.tree.leaves((out["params"], out["opt_state"])),
                  jax.tree.leaves((bad["params"], bad["opt_state"]))):
    np.testing.assert_array_equal(a, b)


def test_guard_stops_after_max_skipped_in_a_row_and_counts_every_skip():
  g = guard.Guard(max_in_a_row=3, spike_factor=None)
  for step, skipped in enumerate([True, True, False, True, True], start=1):
    assert g.observe(step, float("nan") if skipped else 1.0, 1.0, skipped) is None
  assert (g.skipped, g.in_a_row) == (4, 2)
  with pytest.raises(guard.Diverged, match="^step 6: 3 updates in a row"):
    g.observe(6, float("inf"), 1.0, True)


def test_guard_calls_a_spike_only_after_warmup_and_resumes_its_state_exactly():
  g = guard.Guard(max_in_a_row=10, spike_factor=2.0)
  for step in range(1, guard.WARMUP + 1):
    assert g.observe(step, 100.0 if step == 1 else 5.0, 1.0, False) is None
  copy = guard.Guard(max_in_a_row=10, spike_factor=2.0)
  copy.restore(g.state())
  for h in (g, copy):
    why = h.observe(guard.WARMUP + 1, 100.0, 1.0, False)
    assert why.startswith(f"step {guard.WARMUP + 1}: loss 100.0000 > 2.0 x")
  assert g.state() == copy.state()
