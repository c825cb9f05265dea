"""A plain JAX GPT train step: the reference growjax's step is measured against.

Written the way one writes a GPT in an afternoon, with no growjax import (the
package never imports this file either): the same architecture and FLOP count
as growjax.model's default training path, so the two steps differ only in how
they are written.

- pre-LayerNorm (scale and bias, float32), GeLU MLP, no linear biases,
  untied unembedding, float32 residual stream;
- xPos (rotate-half channel pairing, centred positions, tables built once per
  step), causal attention: cuDNN flash attention on a GPU, XLA's elsewhere;
- layers stacked and scanned; remat "none", "dots" (jax's
  dots_with_no_batch_dims_saveable) or "full";
- bfloat16 compute on float32 parameters; float32 logits and optax's
  integer-label cross-entropy;
- AdamW (b1 0.9, b2 0.95, eps 1e-8, weight decay 0.1 off LayerNorms) after
  global-norm clipping at 1.0: growjax.train.optimizer's defaults.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax


@dataclasses.dataclass(frozen=True)
class Config:
  vocab: int
  d_model: int
  n_layers: int
  n_heads: int
  head_dim: int
  d_ff: int
  remat: str = "dots"  # "none" | "dots" | "full"
  dtype: str = "bfloat16"


def init(cfg: Config, key):
  L, D, H, K, F, V = (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.head_dim,
                      cfg.d_ff, cfg.vocab)
  ks = iter(jax.random.split(key, 8))
  normal = lambda *shape: 0.02 * jax.random.normal(next(ks), shape, jnp.float32)
  return {
      "embed": normal(V, D), "unembed": normal(D, V),
      "ln_f": {"s": jnp.ones(D), "b": jnp.zeros(D)},
      "layers": {"ln1": {"s": jnp.ones((L, D)), "b": jnp.zeros((L, D))},
                 "ln2": {"s": jnp.ones((L, D)), "b": jnp.zeros((L, D))},
                 "wq": normal(L, D, H, K), "wk": normal(L, D, H, K),
                 "wv": normal(L, D, H, K), "wo": normal(L, H, K, D),
                 "wi": normal(L, D, F), "wout": normal(L, F, D)}}


def layer_norm(x, p):
  x = x.astype(jnp.float32)
  mean = x.mean(-1, keepdims=True)
  var = jnp.square(x - mean).mean(-1, keepdims=True)
  return (x - mean) * jax.lax.rsqrt(var + 1e-5) * p["s"] + p["b"]


def xpos_tables(t, k, scale_base=512.0, gamma=0.4):
  """cos and sin [T, 1, K] for queries and keys, the xPos scale folded in."""
  pos = (jnp.arange(t) - t // 2).astype(jnp.float32)[:, None]
  pairs = jnp.arange(0, k, 2, dtype=jnp.float32)
  angle = pos * 10000.0 ** (-pairs / k)
  zeta_pow = ((pairs / k + gamma) / (1 + gamma)) ** (pos / scale_base)
  cos = jnp.concatenate([jnp.cos(angle)] * 2, -1)[:, None]
  sin = jnp.concatenate([jnp.sin(angle)] * 2, -1)[:, None]
  scale = jnp.concatenate([zeta_pow] * 2, -1)[:, None]
  return (cos * scale, sin * scale), (cos / scale, sin / scale)


def rotate(x, cos, sin):
  xf = x.astype(jnp.float32)
  x1, x2 = jnp.split(xf, 2, axis=-1)
  return (xf * cos + jnp.concatenate([-x2, x1], -1) * sin).astype(x.dtype)


def block(cfg: Config, h, w, tables):
  dt = jnp.dtype(cfg.dtype)
  x = layer_norm(h, w["ln1"]).astype(dt)
  q, k, v = (jnp.einsum("BTD,DHK->BTHK", x, w[n].astype(dt))
             for n in ("wq", "wk", "wv"))
  q, k = rotate(q, *tables[0]), rotate(k, *tables[1])
  gpu = jax.default_backend() == "gpu" and dt == jnp.bfloat16
  a = jax.nn.dot_product_attention(q, k, v, is_causal=True,
                                   implementation="cudnn" if gpu else None)
  h = h + jnp.einsum("BTHK,HKD->BTD", a, w["wo"].astype(dt))
  x = layer_norm(h, w["ln2"]).astype(dt)
  u = jax.nn.gelu(jnp.einsum("BTD,DF->BTF", x, w["wi"].astype(dt)))
  return h + jnp.einsum("BTF,FD->BTD", u, w["wout"].astype(dt))


POLICIES = {"dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
            "full": jax.checkpoint_policies.nothing_saveable}


def loss_fn(cfg: Config, params, batch):
  tokens, labels = batch[:, :-1], batch[:, 1:]
  tables = xpos_tables(tokens.shape[1], cfg.head_dim)
  body = lambda h, w: (block(cfg, h, w, tables), None)
  if cfg.remat != "none":
    body = jax.checkpoint(body, policy=POLICIES[cfg.remat], prevent_cse=False)
  h, _ = jax.lax.scan(body, params["embed"][tokens], params["layers"])
  dt = jnp.dtype(cfg.dtype)
  x = layer_norm(h, params["ln_f"]).astype(dt)
  logits = jnp.einsum("BTD,DV->BTV", x, params["unembed"].astype(dt))
  return optax.softmax_cross_entropy_with_integer_labels(
      logits.astype(jnp.float32), labels).mean()


def optimizer(lr=1e-4):
  no_ln = lambda p: jax.tree_util.tree_map_with_path(
      lambda path, _: not any("ln" in str(k) for k in path), p)
  return optax.chain(
      optax.clip_by_global_norm(1.0),
      optax.adamw(lr, b1=0.9, b2=0.95, eps=1e-8, weight_decay=0.1, mask=no_ln))


def make(cfg: Config, lr=1e-4):
  """(init_state(key), train_step(state, batch [B, T+1]) -> (state, loss))."""
  opt = optimizer(lr)

  def init_state(key):
    params = init(cfg, key)
    return {"params": params, "opt": opt.init(params)}

  def train_step(state, batch):
    loss, grads = jax.value_and_grad(loss_fn, argnums=1)(
        cfg, state["params"], batch)
    updates, opt_state = opt.update(grads, state["opt"], state["params"])
    return {"params": optax.apply_updates(state["params"], updates),
            "opt": opt_state}, loss

  return init_state, train_step
