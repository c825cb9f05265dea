"""The train step: gradient accumulation and the learning-rate schedule."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from growjax import ModelConfig, model
from growjax.experiment import Schedule, Stage
from growjax.train import optimizer as opt_lib
from growjax.train import step as step_lib

CFG = ModelConfig(vocab_size=64, d_model=16, n_layers=1, n_heads=2, head_dim=8,
                  d_ff=32, max_len=8)


def test_microbatches_average_to_the_full_batch_gradient():
  lr = optax.constant_schedule(1e-2)
  optimizer = opt_lib.make(opt_lib.Optimizer(), lr)
  params = model.init(CFG, jax.random.key(0))
  state = {"params": params, "opt_state": optimizer.init(params),
           "step": jnp.zeros((), jnp.int32)}
  batch = jax.random.randint(jax.random.key(1), (8, 9), 0, CFG.vocab_size)
  outs = [jax.jit(step_lib.make_train_step(CFG, optimizer, lr, microbatches=m))(state, batch)
          for m in (1, 4)]
  (one, m1), (four, m4) = outs
  np.testing.assert_allclose(m1["loss"], m4["loss"], rtol=1e-6)
  np.testing.assert_allclose(m1["grad_norm"], m4["grad_norm"], rtol=1e-5)
  for a, b in zip(jax.tree.leaves(one["params"]), jax.tree.leaves(four["params"])):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert int(four["step"]) == 1


def test_schedule_is_rewound_at_each_stage():
  stage = Stage(index=1, model=CFG, tokens=1, batch_size=1, grow=None,
                lr=Schedule(peak=1e-3, warmup_steps=10, final=1e-4))
  lr = opt_lib.schedule(stage, start_step=500, steps=100)
  assert float(lr(500)) == 0.0  # warmup starts again at the stage's first step
  np.testing.assert_allclose(float(lr(510)), 1e-3, rtol=1e-6)
  np.testing.assert_allclose(float(lr(600)), 1e-4, rtol=1e-5)


def test_weight_decay_spares_layer_norms():
  mask = opt_lib.decay_mask(model.init(CFG, jax.random.key(0)))
  assert mask["blocks"]["attn"]["q"] and mask["embed"] and mask["unembed"]
  assert not any(jax.tree.leaves(mask["blocks"]["ln1"]))
  assert not any(jax.tree.leaves(mask["ln_f"]))
