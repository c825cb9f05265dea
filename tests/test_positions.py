"""RoPE and xPos: the paper's formula, shift invariance, blockwise masks."""

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from growjax import positions

K = 16  # head_dim shared by every test here: one compile per function


def paper_xpos(x, pos, key_side, scale_base=512.0, gamma=0.4):
  """xPos written from the paper in float64 numpy: pairs (2i, 2i+1) rotated by
  n * theta_i, theta_i = 10000^(-2i/d), and scaled by zeta_i^(+-n/scale_base),
  zeta_i = (2i/d + gamma) / (1 + gamma)."""
  x = np.asarray(x, np.float64)
  d = x.shape[-1]
  out = np.empty_like(x)
  for i in range(d // 2):
    theta = 10000.0 ** (-2 * i / d)
    zeta = (2 * i / d + gamma) / (1 + gamma)
    n = np.asarray(pos, np.float64)[..., :, None]
    scale = zeta ** ((-n if key_side else n) / scale_base)
    a, b = x[..., 2 * i], x[..., 2 * i + 1]
    out[..., 2 * i] = (a * np.cos(n * theta) - b * np.sin(n * theta)) * scale
    out[..., 2 * i + 1] = (a * np.sin(n * theta) + b * np.cos(n * theta)) * scale
  return out


@hypothesis.given(seed=st.integers(0, 2**31 - 1), key_side=st.booleans(),
                  start=st.integers(-64, 64))
def test_xpos_matches_the_papers_formula(seed, key_side, start):
  x = jax.random.normal(jax.random.key(seed), (2, 8, 3, K))
  pos = jnp.broadcast_to(start + jnp.arange(8), (2, 8))
  got = positions.xpos(x, pos, key_side=key_side)
  want = paper_xpos(x, pos, key_side)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_rope_is_xpos_without_decay():
  x = jax.random.normal(jax.random.key(0), (1, 8, 2, K))
  pos = jnp.arange(8)[None]
  huge = positions.xpos(x, pos, key_side=False, scale_base=1e12)
  np.testing.assert_allclose(positions.rope(x, pos), huge, rtol=1e-5, atol=1e-6)


def scores(kind, q, k, q_pos, k_pos):
  q, k = positions.encode(q, k, q_pos, k_pos, kind=kind)
  return jnp.einsum("BTHK,BSHK->BHTS", q, k)


@pytest.mark.parametrize("kind", ["rope", "xpos"])
@pytest.mark.parametrize("offset,rtol", [(1, 1e-5), (1024, 1e-5),
                                         (16_384, 1e-3), (1_000_000, 1e-3)])
def test_scores_depend_only_on_relative_position(kind, offset, rtol):
  q = jax.random.normal(jax.random.key(1), (1, 64, 2, K))
  k = jax.random.normal(jax.random.key(2), (1, 64, 2, K))
  pos = jnp.arange(64)[None] * 7  # spans 448 positions
  base = scores(kind, q, k, pos, pos)
  shifted = scores(kind, q, k, pos + offset, pos + offset)
  assert np.isfinite(shifted).all()
  np.testing.assert_allclose(shifted, base, rtol=rtol, atol=rtol * 1e-2)


@pytest.mark.parametrize("kind", ["rope", "xpos"])
def test_long_inputs_stay_finite(kind):
  """16k positions in one window: centring keeps xPos exponents in range."""
  t = 16_384
  q = jax.random.normal(jax.random.key(3), (1, t, 1, K))
  pos = jnp.arange(t)[None]
  qe, ke = positions.encode(q, q, pos, pos, kind=kind)
  assert np.isfinite(qe).all() and np.isfinite(ke).all()
  # the score between the first and last positions is still finite and small
  s = jnp.einsum("K,K->", qe[0, -1, 0], ke[0, 0, 0])
  assert np.isfinite(s)


def test_xpos_attention_decays_with_distance():
  """Identical query and key vectors: the xPos score shrinks with distance."""
  v = jnp.ones((1, 1, 1, K))
  near = scores("xpos", v, v, jnp.array([[10]]), jnp.array([[9]]))
  far = scores("xpos", v, v, jnp.array([[2000]]), jnp.array([[9]]))
  assert abs(float(far.squeeze())) < abs(float(near.squeeze()))


def test_blockwise_mask_sees_own_and_previous_block():
  pos = jnp.arange(12)[None]
  mask = np.asarray(positions.causal_mask(pos, pos, block_len=4))[0, 0]
  for n in range(12):
    for m in range(12):
      assert mask[n, m] == (m <= n and m // 4 >= n // 4 - 1), (n, m)
  full = np.asarray(positions.causal_mask(pos, pos))[0, 0]
  np.testing.assert_array_equal(full, np.tril(np.ones((12, 12), bool)))


def test_empty_cache_slots_are_masked():
  q = jnp.array([[3]])
  k = jnp.array([[0, 1, 2, 3, -1, -1]])
  np.testing.assert_array_equal(
      positions.causal_mask(q, k)[0, 0, 0], [1, 1, 1, 1, 0, 0])
