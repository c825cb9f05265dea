"""The decoder: causality, parameter count, masks, precision, KV cache, errors."""

import dataclasses

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import growjax
from growjax import ModelConfig, model

CFG = ModelConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=2, head_dim=16,
                  d_ff=64, max_len=16, pos="xpos")
T = 16


@pytest.fixture(scope="module")
def params():
  return model.init(CFG, jax.random.key(0))


forward = jax.jit(model.apply, static_argnames=("cfg", "block_len"))


def tokens_from(seed, batch=2, t=T):
  return jax.random.randint(jax.random.key(seed), (batch, t), 0, CFG.vocab_size)


@hypothesis.given(seed=st.integers(0, 2**31 - 1), t=st.integers(0, T - 2),
                  pos=st.sampled_from(["xpos", "rope"]))
def test_logits_at_t_ignore_later_tokens(params, seed, t, pos):
  cfg = CFG.replace(pos=pos)
  tokens = tokens_from(seed)
  changed = tokens.at[:, t + 1:].set((tokens[:, t + 1:] + 1) % cfg.vocab_size)
  a = forward(params, cfg, tokens)
  b = forward(params, cfg, changed)
  np.testing.assert_allclose(a[:, :t + 1], b[:, :t + 1], rtol=1e-6, atol=1e-6)
  assert not np.allclose(a[:, t + 1:], b[:, t + 1:])


@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("shape", [dict(), dict(d_model=8, n_layers=3, n_heads=3,
                                                head_dim=4, d_ff=12)])
def test_param_count_matches_init(shape, tie):
  cfg = CFG.replace(tie_embeddings=tie, **shape)
  abstract = jax.eval_shape(lambda k: model.init(cfg, k), jax.random.key(0))
  assert model.param_count(cfg) == sum(x.size for x in jax.tree.leaves(abstract))


def test_every_param_has_logical_axes_of_its_rank(params):
  axes = model.logical_axes(params)
  sizes = model.axis_sizes(CFG)
  for leaf, names in zip(jax.tree.leaves(params),
                         jax.tree.leaves(axes, is_leaf=lambda x: isinstance(x, tuple))):
    assert leaf.shape == tuple(sizes[n] for n in names)


def ones_masks(cfg):
  return {"hidden": jnp.ones(cfg.d_model), "heads": jnp.ones((cfg.n_layers, cfg.n_heads)),
          "mlp": jnp.ones((cfg.n_layers, cfg.d_ff)), "layers": jnp.ones(cfg.n_layers)}


@hypothesis.given(seed=st.integers(0, 2**31 - 1))
def test_masks_of_ones_equal_no_masks(params, seed):
  tokens = tokens_from(seed)
  a = forward(params, CFG, tokens)
  b = forward(params, CFG, tokens, masks=ones_masks(CFG))
  np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_zero_layer_mask_skips_the_layer(params):
  """A layer whose mask is 0 is the identity: the same as a 1-layer model."""
  tokens = tokens_from(3)
  masks = {"layers": jnp.array([1.0, 0.0])}
  one_layer = CFG.replace(n_layers=1)
  first = jax.tree.map(lambda x: x, params)
  first["blocks"] = jax.tree.map(lambda x: x[:1], params["blocks"])
  np.testing.assert_allclose(forward(params, CFG, tokens, masks=masks),
                             forward(first, one_layer, tokens), rtol=1e-5, atol=1e-5)


@hypothesis.given(seed=st.integers(0, 2**31 - 1))
def test_bfloat16_compute_stays_close_to_float32(params, seed):
  tokens = tokens_from(seed)
  f32 = forward(params, CFG, tokens)
  bf16 = forward(params, CFG.replace(dtype="bfloat16"), tokens)
  assert bf16.dtype == jnp.float32
  rel = jnp.linalg.norm(bf16 - f32) / jnp.linalg.norm(f32)
  assert rel < 2e-2, rel


@pytest.mark.parametrize("pos", ["xpos", "rope"])
def test_shifting_all_positions_keeps_logits(params, pos):
  cfg = CFG.replace(pos=pos)
  tokens = tokens_from(4)
  base = jnp.broadcast_to(jnp.arange(T), tokens.shape)
  a = forward(params, cfg, tokens, positions=base)
  b = forward(params, cfg, tokens, positions=base + 16_384)
  np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_kv_cache_decoding_equals_full_forward(params):
  tokens = tokens_from(5)
  full = forward(params, CFG, tokens)
  step = jax.jit(model.apply, static_argnames=("cfg",))
  cache = model.init_cache(CFG, batch=2, length=T + 4)
  logits, cache = step(params, CFG, tokens[:, :5], cache=cache)  # a prompt
  outs = [logits]
  for t in range(5, T):
    logits, cache = step(params, CFG, tokens[:, t:t + 1], cache=cache)
    outs.append(logits)
  np.testing.assert_allclose(jnp.concatenate(outs, 1), full, rtol=1e-5, atol=1e-5)
  assert int(cache["index"]) == T


def test_blockwise_attention_with_one_block_is_causal_attention(params):
  tokens = tokens_from(6)
  np.testing.assert_allclose(forward(params, CFG, tokens, block_len=T),
                             forward(params, CFG, tokens), rtol=1e-5, atol=1e-5)


def test_public_api_of_the_design_doc():
  cfg = ModelConfig(vocab_size=512, d_model=64, n_layers=2, n_heads=4,
                    head_dim=16, d_ff=256, max_len=256, pos="xpos")
  p = growjax.model.init(cfg, jax.random.key(0))
  logits = growjax.model.apply(p, cfg, jnp.zeros((1, 4), jnp.int32))
  assert logits.shape == (1, 4, 512) and logits.dtype == jnp.float32


BAD = {
    "vocab_size": 1, "d_model": 0, "n_layers": -1, "n_heads": 2.5, "head_dim": 7,
    "d_ff": "64", "max_len": 0, "pos": "alibi", "xpos_scale_base": 0,
    "xpos_gamma": -1.0, "tie_embeddings": "yes", "dtype": "float16",
    "init_std": 0.0,
}


@pytest.mark.parametrize("field", sorted(BAD))
def test_invalid_config_field_raises_one_error_naming_it(field):
  assert set(BAD) == {f.name for f in dataclasses.fields(ModelConfig)}
  with pytest.raises(ValueError, match=rf"ModelConfig\.{field}: "):
    CFG.replace(**{field: BAD[field]})
