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


def _pairwise(x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
  """Rotates channel pairs (2i, 2i+1) of x by angles given as cos/sin [.., K/2]."""
  x_pairs = x.reshape(*x.shape[:-1], x.shape[-1] // 2, 2).astype(jnp.float32)
  x0, x1 = x_pairs[..., 0], x_pairs[..., 1]
  rotated = jnp.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], axis=-1)
  return rotated.reshape(x.shape)


def rope(x: jax.Array, positions: jax.Array, *,
         theta: float = ROPE_THETA) -> jax.Array:
  """Rotary position embedding of `x` [..., T, H, K] at `positions` [..., T]."""
  angles = (positions.astype(jnp.float32)[..., :, None, None]
            * _frequencies(x.shape[-1], theta))  # [..., T, 1, K/2]
  return _pairwise(x, jnp.cos(angles), jnp.sin(angles)).astype(x.dtype)


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
           gamma: float = 0.4,
           theta: float = ROPE_THETA) -> tuple[jax.Array, jax.Array]:
  """Applies `kind` ("rope" | "xpos") to queries and keys at centred
  positions; `theta` is the rotary base of both."""
  q_pos_BT, k_pos_BS = centred(q_pos_BT, k_pos_BS)
  if kind == "rope":
    return (rope(q_BTHK, q_pos_BT, theta=theta),
            rope(k_BSHK, k_pos_BS, theta=theta))
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
