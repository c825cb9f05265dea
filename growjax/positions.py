"""Rotary positions (RoPE), xPos, and the position bookkeeping of attention.

All functions act on `[..., T, H, K]` arrays (time, heads, head_dim) with
`positions` of shape `[..., T]`. Channels are rotated in adjacent pairs
(2i, 2i+1), as in the xPos paper's reference code, with frequency
theta_i = theta^(-2i/K) for a rotary base theta (10000 by default; Llama 3
uses 500000).

xPos (Sun et al., 2022) multiplies pair i of the query at position n by
zeta_i^(n / scale_base) and of the key at position m by zeta_i^(-m / scale_base),
zeta_i = (2i/K + gamma) / (1 + gamma), so q.k carries zeta^((n - m)/scale_base)
and attention decays with distance.

Two options of rotary positions, as transformers has them (`encode`):
`rotary_dims` rotates only a head's first channels (partial rotary, GPT-NeoX's
rotary_pct), with frequencies theta^(-2i/rotary_dims); `scaling` (a
`config.RopeScaling`, "linear" or "llama3") rescales the frequencies.

Scores depend on n - m only, so the model is free to shift every position by
one offset. `centred` does that before `rope`/`xpos` are applied: it keeps the
rotation angles small (float32 sin/cos lose accuracy at large angles) and the
xPos exponents within +-T/2/scale_base, so nothing overflows at long lengths.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


ROPE_THETA = 10000.0  # the rotary base of RoFormer, GPT-NeoX and Llama 1/2


def _frequencies(head_dim: int, theta: float = ROPE_THETA) -> jax.Array:
  """theta_i = theta^(-2i/K), one per channel pair: [K/2]."""
  return theta ** (-jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim)


def scaled_frequencies(dims: int, theta: float = ROPE_THETA,
                       scaling=None) -> jax.Array:
  """Frequencies of `dims` rotary channels [dims/2], rescaled by `scaling`
  (a config.RopeScaling or None) as transformers' modeling_rope_utils does:
  linear divides them all by the factor; llama3 divides those of wavelength
  above original_max_len / low_freq_factor, keeps those below
  original_max_len / high_freq_factor, and interpolates between."""
  freq = _frequencies(dims, theta)
  if scaling is None:
    return freq
  if scaling.kind == "linear":
    return freq / scaling.factor
  old = float(scaling.original_max_len)
  low, high = scaling.low_freq_factor, scaling.high_freq_factor
  wavelen = 2 * jnp.pi / freq
  scaled = jnp.where(wavelen > old / low, freq / scaling.factor, freq)
  smooth = (old / wavelen - low) / (high - low)
  smoothed = (1 - smooth) * scaled / scaling.factor + smooth * scaled
  medium = (wavelen >= old / high) & (wavelen <= old / low)
  return jnp.where(medium, smoothed, scaled)


def _pairwise(x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
  """Rotates channel pairs (2i, 2i+1) of x by angles given as cos/sin [.., K/2]."""
  x_pairs = x.reshape(*x.shape[:-1], x.shape[-1] // 2, 2).astype(jnp.float32)
  x0, x1 = x_pairs[..., 0], x_pairs[..., 1]
  rotated = jnp.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], axis=-1)
  return rotated.reshape(x.shape)


def rope(x: jax.Array, positions: jax.Array, *, theta: float = ROPE_THETA,
         rotary_dims: int | None = None, scaling=None) -> jax.Array:
  """Rotary position embedding of `x` [..., T, H, K] at `positions` [..., T]:
  the first `rotary_dims` channels (default all K) rotate, at frequencies
  `scaled_frequencies(rotary_dims, theta, scaling)`; the rest pass."""
  dims = x.shape[-1] if rotary_dims is None else rotary_dims
  angles = (positions.astype(jnp.float32)[..., :, None, None]
            * scaled_frequencies(dims, theta, scaling))  # [..., T, 1, dims/2]
  if dims == x.shape[-1]:
    return _pairwise(x, jnp.cos(angles), jnp.sin(angles)).astype(x.dtype)
  rotated = _pairwise(x[..., :dims], jnp.cos(angles), jnp.sin(angles))
  return jnp.concatenate([rotated.astype(x.dtype), x[..., dims:]], axis=-1)


def xpos(x: jax.Array, positions: jax.Array, *, key_side: bool,
         scale_base: float = 512.0, gamma: float = 0.4,
         theta: float = ROPE_THETA) -> jax.Array:
  """xPos: RoPE plus the per-pair scale zeta^(+-position / scale_base).

  Queries (`key_side=False`) are scaled by zeta^(n/scale_base), keys by
  zeta^(-m/scale_base).
  """
  head_dim = x.shape[-1]
  zeta = ((jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim + gamma)
          / (1.0 + gamma))  # [K/2], in (0, 1)
  power = positions.astype(jnp.float32)[..., :, None, None] / scale_base
  scale = zeta ** (-power if key_side else power)  # [..., T, 1, K/2]
  angles = (positions.astype(jnp.float32)[..., :, None, None]
            * _frequencies(head_dim, theta))
  cos, sin = jnp.cos(angles) * scale, jnp.sin(angles) * scale
  return _pairwise(x, cos, sin).astype(x.dtype)


def centred(q_pos: jax.Array, k_pos: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Shifts query and key positions [B, T], [B, S] by one integer per row so
  the span they cover is centred on zero. Scores depend only on n - m, so this
  changes nothing mathematically and keeps angles and xPos exponents small."""
  lo = jnp.minimum(q_pos.min(-1, keepdims=True), k_pos.min(-1, keepdims=True))
  hi = jnp.maximum(q_pos.max(-1, keepdims=True), k_pos.max(-1, keepdims=True))
  offset = (lo + hi) // 2
  return q_pos - offset, k_pos - offset


def encode(q_BTHK: jax.Array, k_BSHK: jax.Array, q_pos_BT: jax.Array,
           k_pos_BS: jax.Array, *, kind: str, scale_base: float = 512.0,
           gamma: float = 0.4, theta: float = ROPE_THETA,
           rotary_dims: int | None = None,
           scaling=None) -> tuple[jax.Array, jax.Array]:
  """Applies `kind` ("rope" | "xpos") to queries and keys at centred
  positions; `theta` is the rotary base of both; `rotary_dims` and `scaling`
  (rope only) as in `rope`."""
  q_pos_BT, k_pos_BS = centred(q_pos_BT, k_pos_BS)
  if kind == "rope":
    options = dict(theta=theta, rotary_dims=rotary_dims, scaling=scaling)
    return (rope(q_BTHK, q_pos_BT, **options),
            rope(k_BSHK, k_pos_BS, **options))
  if kind == "xpos":
    return (xpos(q_BTHK, q_pos_BT, key_side=False, scale_base=scale_base,
                 gamma=gamma, theta=theta),
            xpos(k_BSHK, k_pos_BS, key_side=True, scale_base=scale_base,
                 gamma=gamma, theta=theta))
  raise ValueError(f"positions kind {kind!r} is not 'rope' or 'xpos'")


def causal_mask(q_pos_BT: jax.Array, k_pos_BS: jax.Array,
                block_len: int | None = None) -> jax.Array:
  """Boolean [B, 1, T, S] attention mask from positions.

  A query at n sees keys at m <= n; with `block_len`, blockwise causal
  attention: each block of `block_len` positions sees itself and the previous
  block only, so no distance exceeds 2 * block_len (xPos at inference beyond
  the training length). Keys at negative positions are empty cache slots.
  """
  q = q_pos_BT[:, :, None]
  k = k_pos_BS[:, None, :]
  # a padding query (position -1) sees only padding, never an empty row
  mask = ((k <= q) & (k >= 0)) | ((q < 0) & (k == q))
  if block_len is not None:
    mask &= (k // block_len) >= (q // block_len) - 1
  return mask[:, None, :, :]
