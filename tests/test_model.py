"""The decoder: causality, parameter count, masks, precision, KV cache, errors."""

import dataclasses

import hypothesis
import hypothesis.strategies as st
import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import growjax
from growjax import ModelConfig, model
from growjax import params as params_lib

CFG = ModelConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=2, head_dim=16,
                  d_ff=64, max_len=16, pos="xpos")
# A Llama-family model: RMSNorm, SwiGLU, grouped-query attention, rope base
# 500000 (Llama 3's).
LLAMA = ModelConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=4,
                    head_dim=8, d_ff=48, max_len=16, pos="rope", norm="rmsnorm",
                    mlp="swiglu", n_kv_heads=2, rope_theta=500_000.0)
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
@pytest.mark.parametrize("shape", [
    dict(), dict(d_model=8, n_layers=3, n_heads=3, head_dim=4, d_ff=12),
    dict(norm="rmsnorm"), dict(mlp="swiglu"), dict(n_heads=4, n_kv_heads=1),
    dict(norm="rmsnorm", mlp="swiglu", n_heads=6, n_kv_heads=3),
    dict(pos="rope", qkv_bias=True, n_heads=4, n_kv_heads=2)])
def test_param_count_and_param_axes_match_init(shape, tie):
  cfg = CFG.replace(tie_embeddings=tie, **shape)
  abstract = jax.eval_shape(lambda k: model.init(cfg, k), jax.random.key(0))
  assert model.param_count(cfg) == sum(x.size for x in jax.tree.leaves(abstract))
  sizes = model.axis_sizes(cfg)
  shapes = {params_lib.path_of(p): x.shape
            for p, x in jax.tree_util.tree_leaves_with_path(abstract)}
  assert shapes == {path: tuple(sizes[a] for a in axes)
                    for path, axes in model.param_axes(cfg).items()}
  assert (model.non_embedding_param_count(cfg) == model.param_count(cfg)
          - cfg.d_model * cfg.vocab_size * (1 if tie else 2))


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
    "init_std": 0.0, "norm": "batchnorm", "mlp": "relu",
    "n_kv_heads": 3,  # does not divide n_heads = 2
    "rope_theta": -1.0, "param": "ntk", "mup_base": {"width": 64},
    "rope_theta": -1.0, "norm_eps": 0.0, "parallel_residual": "yes",
    "rotary_fraction": 1.5, "qkv_bias": 1, "rope_scaling": "llama3",
}


@pytest.mark.parametrize("field", sorted(BAD))
def test_invalid_config_field_raises_one_error_naming_it(field):
  assert set(BAD) == {f.name for f in dataclasses.fields(ModelConfig)}
  with pytest.raises(ValueError, match=rf"ModelConfig\.{field}: "):
    CFG.replace(**{field: BAD[field]})


# ------------------------------------------------------------- remat ---

def xent(params, cfg, tokens, remat, masks=None):
  logits = model.apply(params, cfg, tokens[:, :-1], masks=masks, remat=remat)
  return optax.softmax_cross_entropy_with_integer_labels(
      logits, tokens[:, 1:]).mean()


loss_and_grad = jax.jit(jax.value_and_grad(xent),
                        static_argnames=("cfg", "remat"))


def random_masks(cfg, seed):
  keys = jax.random.split(jax.random.key(seed), 4)
  shapes = {"hidden": (cfg.d_model,), "heads": (cfg.n_layers, cfg.n_heads),
            "mlp": (cfg.n_layers, cfg.d_ff), "layers": (cfg.n_layers,)}
  return {k: jax.random.uniform(key, shape)
          for key, (k, shape) in zip(keys, sorted(shapes.items()))}


@pytest.mark.parametrize("remat", ["dots", "full", "offload"])
def test_every_remat_policy_gives_the_loss_and_gradients_of_none(params, remat):
  tokens = tokens_from(7, t=T + 1)
  masks = random_masks(CFG, 7)  # every mask path is rematerialised too
  ref_loss, ref_grads = loss_and_grad(params, CFG, tokens, "none", masks)
  loss, grads = loss_and_grad(params, CFG, tokens, remat, masks)
  np.testing.assert_allclose(loss, ref_loss, rtol=1e-6)
  for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def sub_jaxprs(params):
  for v in params.values():
    for x in v if isinstance(v, (tuple, list)) else (v,):
      if isinstance(x, jax.extend.core.ClosedJaxpr):
        yield x.jaxpr
      elif isinstance(x, jax.extend.core.Jaxpr):
        yield x


def count_matmuls(jaxpr) -> dict[str, int]:
  """dot_generals in a jaxpr and all its sub-jaxprs (scan and remat bodies),
  split into those with batch dimensions (XLA attention) and without
  (projections), each counted once per appearance in the program."""
  counts = {"projection": 0, "batched": 0}
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "dot_general":
      (_, _), (lhs_batch, _) = eqn.params["dimension_numbers"]
      counts["batched" if lhs_batch else "projection"] += 1
    for sub in sub_jaxprs(eqn.params):
      for k, v in count_matmuls(sub).items():
        counts[k] += v
  return counts


def test_dots_policy_recomputes_no_projection_and_full_recomputes_them(params):
  tokens = tokens_from(8, t=T + 1)
  counts = {r: count_matmuls(jax.make_jaxpr(
      jax.grad(xent), static_argnums=(1, 3))(params, CFG, tokens, r).jaxpr)
            for r in ("none", "dots", "full")}
  assert counts["dots"]["projection"] == counts["none"]["projection"]
  # only XLA attention's scores are recomputed (cuDNN's kernel output is kept)
  assert counts["dots"]["batched"] == counts["none"]["batched"] + 1
  # full: the projections whose outputs the backward pass reads (q, k, v, o,
  # wi; not wo) run a second time
  assert counts["full"]["projection"] == counts["none"]["projection"] + 5


def test_invalid_remat_is_one_error_naming_the_field(params):
  with pytest.raises(ValueError, match=r"^remat: 'some' is not one of"):
    model.apply(params, CFG, tokens_from(0), remat="some")


# ---------------------------------------------- hidden states, fast path ---

@pytest.mark.parametrize("tie", [False, True])
def test_hidden_states_project_to_the_logits(tie):
  cfg = CFG.replace(tie_embeddings=tie)
  p = model.init(cfg, jax.random.key(1))
  tokens = tokens_from(9)
  masks = random_masks(cfg, 9)
  x = model.apply(p, cfg, tokens, masks=masks, return_hidden=True)
  assert x.shape == (2, T, cfg.d_model) and x.dtype == jnp.float32
  np.testing.assert_allclose(
      model.project(x, model.unembedding(p, cfg), cfg),
      model.apply(p, cfg, tokens, masks=masks), rtol=1e-6, atol=1e-6)


def count_primitive(jaxpr, name) -> int:
  return sum((eqn.primitive.name == name)
             + sum(count_primitive(s, name) for s in sub_jaxprs(eqn.params))
             for eqn in jaxpr.eqns)


def test_no_masks_trace_no_mask_arithmetic(params):
  """masks=None and masks={} trace one program; a mask of ones adds
  multiplies, so the comparison would see them."""
  tokens = tokens_from(10)
  trace = lambda masks: jax.make_jaxpr(
      lambda p: model.apply(p, CFG, tokens, masks=masks))(params).jaxpr
  none, empty, ones = trace(None), trace({}), trace(ones_masks(CFG))
  assert str(none) == str(empty)
  assert count_primitive(ones, "mul") > count_primitive(none, "mul")


@pytest.mark.parametrize("pos", ["xpos", "rope"])
def test_training_attention_asks_for_cudnn_in_bf16_without_a_mask(
    params, monkeypatch, pos):
  """On a GPU every training forward (no cache, no blockwise mask) calls
  cuDNN flash attention with bf16 q, k, v; recorded here on CPU by
  pretending to be a GPU and running XLA's attention instead."""
  calls = []
  real = jax.nn.dot_product_attention

  def recording(q, k, v, *, mask, is_causal, scale, implementation):
    calls.append((q.dtype, k.dtype, v.dtype, mask, is_causal, implementation))
    return real(q, k, v, mask=mask, is_causal=is_causal, scale=scale)

  monkeypatch.setattr(model.jax, "default_backend", lambda: "gpu")
  monkeypatch.setattr(model.jax.nn, "dot_product_attention", recording)
  cfg = CFG.replace(dtype="bfloat16", pos=pos)
  for remat in ("none", "dots"):  # tracing is enough
    jax.make_jaxpr(jax.grad(xent), static_argnums=(1, 3))(
        params, cfg, tokens_from(11, t=T + 1), remat)
  bf16 = jnp.dtype("bfloat16")
  assert calls and all(c == (bf16, bf16, bf16, None, True, "cudnn")
                       for c in calls), calls


# ------------------------------------------------ Llama-family options ---

@pytest.fixture(scope="module")
def llama_params():
  """LLAMA's parameters with norm scales off 1, so a dropped scale shows."""
  p = model.init(LLAMA, jax.random.key(2))
  return jax.tree_util.tree_map_with_path(
      lambda k, x: x + 0.3 * jax.random.normal(jax.random.key(3), x.shape)
      if params_lib.path_of(k).endswith("scale") else x, p)


def test_grouped_query_attention_is_attention_over_repeated_kv_heads(
    llama_params):
  """GQA with G key/value heads computes the multi-head model whose k and v
  heads are each repeated H / G times, consecutively (transformers'
  repeat_kv): query head h reads key/value head h // (H / G)."""
  mha = LLAMA.replace(n_kv_heads=None)
  repeat = LLAMA.n_heads // LLAMA.kv_heads
  p = jax.tree.map(lambda x: x, llama_params)
  for name in "kv":
    p["blocks"]["attn"][name] = jnp.repeat(p["blocks"]["attn"][name], repeat,
                                           axis=2)
  tokens = tokens_from(12)
  np.testing.assert_allclose(forward(llama_params, LLAMA, tokens),
                             forward(p, mha, tokens), rtol=1e-5, atol=1e-5)


@hypothesis.given(seed=st.integers(0, 2**31 - 1))
def test_llama_masks_of_ones_equal_no_masks_and_logits_are_causal(
    llama_params, seed):
  tokens = tokens_from(seed)
  a = forward(llama_params, LLAMA, tokens)
  b = forward(llama_params, LLAMA, tokens, masks=ones_masks(LLAMA))
  np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
  changed = tokens.at[:, 9:].set((tokens[:, 9:] + 1) % LLAMA.vocab_size)
  np.testing.assert_allclose(forward(llama_params, LLAMA, changed)[:, :9],
                             a[:, :9], rtol=1e-6, atol=1e-6)


def test_llama_kv_cache_holds_kv_heads_and_decodes_like_the_full_forward(
    llama_params):
  tokens = tokens_from(13)
  full = forward(llama_params, LLAMA, tokens)
  step = jax.jit(model.apply, static_argnames=("cfg",))
  cache = model.init_cache(LLAMA, batch=2, length=T)
  assert cache["k"].shape == (2, 2, T, LLAMA.kv_heads, LLAMA.head_dim)
  outs = []
  for t in range(0, T, 4):
    logits, cache = step(llama_params, LLAMA, tokens[:, t:t + 4], cache=cache)
    outs.append(logits)
  np.testing.assert_allclose(jnp.concatenate(outs, 1), full, rtol=1e-5,
                             atol=1e-5)


def test_hf_options_decode_from_the_kv_cache_like_the_full_forward():
  """Parallel residual, partial rotary, q/k/v biases (cached with the keys,
  before positions), llama3 rope scaling and norm epsilon: the cache path
  computes what the full forward does, and logits stay causal."""
  cfg = LLAMA.replace(parallel_residual=True, rotary_fraction=0.5,
                      qkv_bias=True, norm_eps=1e-3, rope_scaling=dict(
                          kind="llama3", factor=8.0, original_max_len=4))
  params = jax.tree.map(lambda x: x + 0.1, model.init(cfg, jax.random.key(3)))
  tokens = tokens_from(14)
  full = forward(params, cfg, tokens)
  step = jax.jit(model.apply, static_argnames=("cfg",))
  cache = model.init_cache(cfg, batch=2, length=T)
  outs = []
  for t in range(0, T, 4):
    logits, cache = step(params, cfg, tokens[:, t:t + 4], cache=cache)
    outs.append(logits)
  np.testing.assert_allclose(jnp.concatenate(outs, 1), full, rtol=1e-5,
                             atol=1e-5)
  changed = tokens.at[:, 9:].set((tokens[:, 9:] + 1) % cfg.vocab_size)
  np.testing.assert_allclose(forward(params, cfg, changed)[:, :9],
                             full[:, :9], rtol=1e-6, atol=1e-6)


@hypothesis.given(theta=st.sampled_from([10_000.0, 500_000.0, 1e6]),
                  start=st.integers(0, 4096))
def test_rope_theta_turns_pair_i_by_position_times_theta_power(theta, start):
  from growjax import positions  # pylint: disable=g-import-not-at-top
  x = jax.random.normal(jax.random.key(0), (3, 2, 8))  # [T, H, K]
  pos = start + jnp.arange(3)
  got = np.asarray(positions.rope(x, pos, theta=theta), np.float64)
  angle = (np.asarray(pos, np.float64)[:, None, None]
           * theta ** (-np.arange(0, 8, 2) / 8.0))  # [T, 1, K/2]
  x0, x1 = np.asarray(x, np.float64)[..., 0::2], np.asarray(x)[..., 1::2]
  np.testing.assert_allclose(got[..., 0::2], x0 * np.cos(angle)
                             - x1 * np.sin(angle), atol=2e-3)
  np.testing.assert_allclose(got[..., 1::2], x0 * np.sin(angle)
                             + x1 * np.cos(angle), atol=2e-3)


def test_rope_theta_of_the_config_reaches_attention(llama_params):
  tokens = tokens_from(14)
  a = forward(llama_params, LLAMA, tokens)
  b = forward(llama_params, LLAMA.replace(rope_theta=10_000.0), tokens)
  assert np.abs(np.asarray(a) - np.asarray(b)).max() > 1e-4


@pytest.mark.parametrize("remat", ["dots", "full"])
def test_llama_remat_policies_give_the_loss_and_gradients_of_none(
    llama_params, remat):
  tokens = tokens_from(15, t=T + 1)
  masks = random_masks(LLAMA, 15)
  ref_loss, ref_grads = loss_and_grad(llama_params, LLAMA, tokens, "none",
                                      masks)
  loss, grads = loss_and_grad(llama_params, LLAMA, tokens, remat, masks)
  np.testing.assert_allclose(loss, ref_loss, rtol=1e-6)
  for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
