"""The loss: the chunked path equals the plain one and never builds [B, T, V]."""

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest

from growjax import ModelConfig, loss, model

# V = 96 differs from every other size, so a [B, T, V] shape is the logits
CFG = ModelConfig(vocab_size=96, d_model=32, n_layers=2, n_heads=2, head_dim=16,
                  d_ff=64, max_len=16, pos="xpos")
B, T = 3, 16


@pytest.fixture(scope="module")
def params():
  return model.init(CFG, jax.random.key(0))


def windows(seed, b=B, t=T):
  return jax.random.randint(jax.random.key(seed), (b, t + 1), 0, CFG.vocab_size)


def msg_masks(cfg, seed):
  """Masks as a growth mid-ramp leaves them: values in [0, 1]."""
  keys = jax.random.split(jax.random.key(seed), 4)
  shapes = {"hidden": (cfg.d_model,), "heads": (cfg.n_layers, cfg.n_heads),
            "mlp": (cfg.n_layers, cfg.d_ff), "layers": (cfg.n_layers,)}
  return {k: jax.random.uniform(key, shape)
          for key, (k, shape) in zip(keys, sorted(shapes.items()))}


def xent(p, cfg, batch, masks, remat, chunk):
  return loss.cross_entropy(p, cfg, batch, masks=masks, remat=remat,
                            chunk=chunk)


value_and_grad = jax.jit(jax.value_and_grad(xent),
                         static_argnames=("cfg", "remat", "chunk"))


def assert_trees_close(a, b, rtol, atol):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


# chunk 5 does not divide T = 16: the last chunk is padded
@pytest.mark.parametrize("chunk,masked,tie,remat", [
    (4, False, False, "none"), (5, True, False, "dots"),
    (16, True, True, "none"), (64, False, True, "full")])
def test_chunked_loss_and_gradients_equal_the_plain_path(chunk, masked, tie,
                                                         remat):
  cfg = CFG.replace(tie_embeddings=tie)
  p = model.init(cfg, jax.random.key(1))
  batch = windows(chunk)
  masks = msg_masks(cfg, chunk) if masked else None
  plain = value_and_grad(p, cfg, batch, masks, "none", None)
  chunked = value_and_grad(p, cfg, batch, masks, remat, chunk)
  np.testing.assert_allclose(chunked[0], plain[0], rtol=1e-6)
  assert_trees_close(chunked[1], plain[1], rtol=1e-5, atol=1e-7)


def test_bfloat16_chunked_gradients_stay_close_to_the_plain_path(params):
  """In bf16 the chunked path sums dW in float32, the plain path in bf16:
  equal up to bf16 rounding."""
  cfg = CFG.replace(dtype="bfloat16")
  batch = windows(3)
  plain = value_and_grad(params, cfg, batch, None, "none", None)
  chunked = value_and_grad(params, cfg, batch, None, "none", 4)
  np.testing.assert_allclose(chunked[0], plain[0], rtol=1e-3)
  for a, b in zip(jax.tree.leaves(chunked[1]), jax.tree.leaves(plain[1])):
    assert jnp.linalg.norm(a - b) <= 2e-2 * jnp.linalg.norm(b) + 1e-8


@pytest.mark.parametrize("chunk", [None, 6])
def test_per_window_losses_and_gradients_agree_with_the_plain_path(params,
                                                                   chunk):
  """Per-window losses average to the loss, and weighting windows unequally
  (a cotangent the mean never sees) gives the plain path's gradient."""
  batch = windows(4)
  weights = jnp.arange(1.0, B + 1)
  per = jax.jit(loss.per_window, static_argnames=("cfg", "chunk"))
  losses = per(params, CFG, batch, chunk=chunk)
  assert losses.shape == (B,)
  np.testing.assert_allclose(losses.mean(),
                             loss.cross_entropy(params, CFG, batch), rtol=1e-6)
  weighted = lambda p, c: (loss.per_window(p, CFG, batch, chunk=c)
                           * weights).sum()
  assert_trees_close(jax.grad(weighted)(params, chunk),
                     jax.grad(weighted)(params, None), rtol=1e-5, atol=1e-7)


def shapes_in(jaxpr):
  """Every intermediate's shape in a jaxpr and its sub-jaxprs."""
  for eqn in jaxpr.eqns:
    yield from (v.aval.shape for v in eqn.outvars)
    for value in eqn.params.values():
      for x in value if isinstance(value, (tuple, list)) else (value,):
        if isinstance(x, jax.extend.core.ClosedJaxpr):
          yield from shapes_in(x.jaxpr)
        elif isinstance(x, jax.extend.core.Jaxpr):
          yield from shapes_in(x)


def test_chunked_training_step_never_builds_BTV_logits(params):
  batch = windows(5)
  grad = lambda chunk: jax.make_jaxpr(jax.grad(
      lambda p: loss.cross_entropy(p, CFG, batch, chunk=chunk)))(params).jaxpr
  full = (B, T, CFG.vocab_size)
  assert full in set(shapes_in(grad(None)))  # the check sees the plain path's
  chunked = set(shapes_in(grad(4)))
  assert full not in chunked and (B, 4, CFG.vocab_size) in chunked


@pytest.mark.parametrize("chunk", [0, -2, 2.5, True])
def test_invalid_chunk_is_one_error_naming_it(params, chunk):
  with pytest.raises(ValueError, match=r"^chunk: "):
    loss.cross_entropy(params, CFG, windows(0), chunk=chunk)
