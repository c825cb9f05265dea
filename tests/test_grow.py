"""Growth: function preservation, masks, gradients, optimizer state, errors.

What "equal" means, per method (each is a test below):
- msg, zero, hyperclone keep the function: logits (and so the loss) of the
  grown model equal the old model's within 1e-5 of the largest |logit|
  (float32), for random and trained weights and random tokens; msg for ANY
  values of the new weights (masks at 0).
- Every option of the model (norm: layernorm/rmsnorm, mlp: gelu/swiglu,
  grouped-query attention) is grown exactly by each method on each axis it
  claims: msg on every axis, zero on heads, kv_heads, mlp and layers,
  hyperclone on every width (the `CASES` below; LL is a Llama-family model).
  Query heads grow within their key/value groups: each old query head keeps
  reading its key/value head.
- Growing twice equals growing once to the final shape:
  msg: same shapes, same masks (1 on the first model's entries, 0 elsewhere),
       the first model's entries bitwise equal, same function; grown again
       mid-ramp, masks compose (old values kept, new entries 0);
  zero: same shapes, first model's entries bitwise equal, same function;
  hyperclone: identical parameters (x2 then x2 == x4; different axes in any
       split);
  stack: identical parameters when the intermediate depth is a multiple of
       the first (cyclic copies compose).
- After growth every new entry gets a non-zero gradient (msg after the first
  ramp step; zero after one optimizer step).
- Optimizer state: one step after growing params and state moves the old
  entries exactly as one step of the small model (msg, zero); for
  hyperclone the moments after one step equal the grown moments, and so do
  the parameters when the Adam direction is scaled by `lr_multipliers`.

Shapes are drawn from a small fixed pool (XLA compiles each shape once).
"""

from __future__ import annotations

import functools

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from growjax import ModelConfig, model, mup
from growjax import params as params_lib
from growjax import grow as G
from growjax.grow import axes as axes_lib
from growjax.grow import methods as methods_lib
from growjax.grow import operators

# ---------------------------------------------------------------- shape pool
A = ModelConfig(vocab_size=32, d_model=8, n_layers=2, n_heads=2, head_dim=4,
                d_ff=16, max_len=8)
B = ModelConfig(vocab_size=32, d_model=16, n_layers=1, n_heads=1, head_dim=4,
                d_ff=32, max_len=8, pos="rope")
A_TIED = A.replace(tie_embeddings=True)
# Llama-family: RMSNorm, SwiGLU, 4 query heads over 2 key/value heads.
LL = ModelConfig(vocab_size=32, d_model=8, n_layers=2, n_heads=4, head_dim=4,
                 d_ff=16, max_len=8, pos="rope", norm="rmsnorm", mlp="swiglu",
                 n_kv_heads=2)
RMS, SWI = A.replace(norm="rmsnorm"), A.replace(mlp="swiglu")  # one option each
# The options of Hugging Face families, all at once. NX: Pythia's (parallel
# residual, rotary on half of each head, erf GeLU, q/k/v biases) with linear
# rope scaling and another norm epsilon. QW: Qwen2.5's (q/k/v biases, eps
# 1e-6, tied embeddings, which hyperclone unties to grow d_model) with Llama
# 3's rope scaling (original length 4, below these positions).
NX = B.replace(n_layers=2, n_heads=2, parallel_residual=True,
               rotary_fraction=0.5, mlp="gelu_erf", qkv_bias=True,
               norm_eps=1e-3, rope_scaling=dict(kind="linear", factor=2.0))
QW = LL.replace(qkv_bias=True, norm_eps=1e-6, tie_embeddings=True,
                rope_scaling=dict(kind="llama3", factor=8.0,
                                  original_max_len=4))


def scaled(cfg, d=1, l=1, h=1, f=1, g=None):
  """cfg with widths and depth scaled; `g` scales n_kv_heads (default: kept,
  so GQA heads grow within their groups)."""
  kv = cfg.n_kv_heads if g is None else int(cfg.n_kv_heads * g)
  return cfg.replace(d_model=int(cfg.d_model * d), n_layers=int(cfg.n_layers * l),
                     n_heads=int(cfg.n_heads * h), d_ff=int(cfg.d_ff * f),
                     n_kv_heads=kv)


CASES = {  # method: [(old, new)], every axis alone and in combinations
    "msg": [(A, scaled(A, d=1.5)), (A, scaled(A, h=1.5)), (A, scaled(A, f=2)),
            (A, scaled(A, l=1.5)), (A, scaled(A, 1.5, 1.5, 1.5, 1.5)),
            (A, scaled(A, 2, 2, 2, 2)), (B, scaled(B, 2, 2, 2, 2)),
            (A_TIED, scaled(A_TIED, 1.5, 1.5, 1.5, 1.5)),
            # Llama-family: each axis, GQA heads within groups (h), with the
            # groups (h, g by the same factor) and both (groups of 2 -> 4)
            (LL, scaled(LL, d=1.5)), (LL, scaled(LL, h=2)),
            (LL, scaled(LL, h=2, g=2)), (LL, scaled(LL, h=3, g=1.5)),
            (LL, scaled(LL, f=1.5)), (LL, scaled(LL, l=1.5)),
            (LL, scaled(LL, 1.5, 1.5, 1.5, 1.5, g=1.5)),
            (RMS, scaled(RMS, 1.5, 1.5, 1.5, 1.5)), (SWI, scaled(SWI, 2, 2, 2, 2)),
            (NX, scaled(NX, 1.5, 1.5, 1.5, 1.5)),
            (QW, scaled(QW, 1.5, 1.5, 1.5, 1.5, g=1.5))],
    "zero": [(A, scaled(A, h=2)), (A, scaled(A, f=2)), (A, scaled(A, l=1.5)),
             (A, scaled(A, l=2, h=2, f=2)), (B, scaled(B, l=3, h=2, f=2)),
             (LL, scaled(LL, h=2)), (LL, scaled(LL, h=3, g=1.5)),
             (LL, scaled(LL, f=2)), (LL, scaled(LL, l=1.5)),
             (LL, scaled(LL, l=2, h=2, f=2, g=2)),
             (RMS, scaled(RMS, l=2, h=2, f=2)), (SWI, scaled(SWI, l=2, h=2, f=2)),
             (NX, scaled(NX, l=2, h=2, f=2)),
             (QW, scaled(QW, l=2, h=2, f=2, g=2))],
    "hyperclone": [(A, scaled(A, d=2)), (A, scaled(A, h=2)), (A, scaled(A, f=2)),
                   (A, scaled(A, d=2, h=2, f=2)), (B, scaled(B, d=2, h=2, f=2)),
                   (LL, scaled(LL, d=2)), (LL, scaled(LL, h=2)),
                   (LL, scaled(LL, h=2, g=2)), (LL, scaled(LL, f=2)),
                   (LL, scaled(LL, d=2, h=4, f=2, g=2)),
                   (RMS, scaled(RMS, d=2, h=2, f=2)),
                   (SWI, scaled(SWI, d=2, h=2, f=2)),
                   (NX, scaled(NX, d=2, h=2, f=2)),
                   (QW, scaled(QW, d=2, h=4, f=2, g=2).replace(
                       tie_embeddings=False))],
}

MSG_LL_ALL, ZERO_LL_ALL, HC_LL_ALL = 14, 9, 9  # Llama-family, every axis


def as_mup(cfg, base):
  """cfg under muP with base shape `base` (a config, usually the old model's
  halved widths, so the old model is itself wider than its base)."""
  return cfg.replace(param="mup", mup_base=dict(
      d_model=base.d_model, n_heads=base.n_heads, d_ff=base.d_ff))


A_BASE = A.replace(d_model=4, n_heads=1, d_ff=8)
LL_BASE = LL.replace(d_model=4, n_heads=2, d_ff=8)
# Every method on every axis it claims, under muP (each case compiles: the
# all-axes cases of CASES, the GPT one and the Llama one per method).
MUP_CASES = [
    (method, (as_mup(old, base), as_mup(new, base)))
    for method, picks in (("msg", (4, MSG_LL_ALL)), ("zero", (3, ZERO_LL_ALL)),
                          ("hyperclone", (3, HC_LL_ALL)))
    for old, new, base in ((*CASES[method][i], A_BASE if i < 8 else LL_BASE)
                           for i in picks)]

LAYER_OPTIONS = ["top", "bottom", "interleave"]
TOKENS_SHAPE = (2, 8)


# ------------------------------------------------- compiled once per shape
@functools.partial(jax.jit, static_argnames="cfg")
def forward(params, masks, tokens, cfg):
  return model.apply(params, cfg, tokens, masks=masks)


def _loss(params, masks, tokens, cfg):
  logits = model.apply(params, cfg, tokens[:, :-1], masks=masks)
  return optax.softmax_cross_entropy_with_integer_labels(
      logits, tokens[:, 1:]).mean()


loss_and_grad = jax.jit(jax.value_and_grad(_loss), static_argnames="cfg")
init = jax.jit(model.init, static_argnums=0)


@functools.lru_cache(maxsize=None)
def grow_fn(old, new, method, options=()):
  """grow(old -> new), jitted once per growth (options: sorted items)."""
  return jax.jit(functools.partial(G.grow, old_cfg=old, new_cfg=new,
                                   method=method, **dict(options)))


@functools.lru_cache(maxsize=None)
def grow_state_fn(old, new, method, options=()):
  return jax.jit(functools.partial(G.grow_opt_state, old_cfg=old, new_cfg=new,
                                   method=method, **dict(options)))


@functools.lru_cache(maxsize=None)
def update_fn(name):
  return jax.jit(OPTIMIZERS[name].update)


def do_grow(params, old, new, method, seed=0, masks=None, **options):
  return grow_fn(old, new, method, tuple(sorted(options.items())))(
      params, key=jax.random.key(seed), masks=masks)


def tokens_from(seed, shape=TOKENS_SHAPE):
  return jax.random.randint(jax.random.key(seed), shape, 0, A.vocab_size)


def random_params(cfg, seed, scale=1.0):
  """init(cfg) with matrices scaled and LayerNorm scale/bias randomised, so no
  exactness holds by accident of a symmetric init."""
  params = jax.tree.map(np.asarray, init(cfg, jax.random.key(seed)))
  rng = np.random.default_rng(seed)

  def perturb(path, x):
    kind = params_lib.TABLE[params_lib.path_of(path)].init
    if kind == "normal":
      return jnp.asarray(x * scale)
    base = 1.0 if kind == "ones" else 0.0
    return jnp.asarray(base + 0.5 * rng.standard_normal(x.shape), jnp.float32)

  return jax.tree_util.tree_map_with_path(perturb, params)


OPTIMIZERS = {
    "adamw": optax.adamw(1e-2, weight_decay=0.1),
    "clip_adamw": optax.chain(optax.clip_by_global_norm(0.05),
                              optax.adamw(1e-2, weight_decay=0.1)),
    "multisteps": optax.MultiSteps(optax.adamw(1e-2, weight_decay=0.1),
                                   every_k_schedule=2),
    # Adam on matrices, momentum SGD on norms: masked states hold MaskedNodes.
    "masked": optax.chain(
        optax.masked(optax.adamw(1e-2, weight_decay=0.1),
                     lambda p: jax.tree.map(lambda x: x.ndim > 1 and
                                            x.shape[-1] > 1, p)),
        optax.masked(optax.sgd(1e-2, momentum=0.9),
                     lambda p: jax.tree.map(lambda x: not (x.ndim > 1 and
                                                           x.shape[-1] > 1), p))),
}


def step(name, params, state, grads):
  updates, state = update_fn(name)(grads, state, params)
  return optax.apply_updates(params, updates), state


@functools.lru_cache(maxsize=None)
def trained(cfg, seed, optimizer="adamw", steps=3):
  """(params, opt_state) after a few optimizer steps on random tokens."""
  params = random_params(cfg, seed)
  state = OPTIMIZERS[optimizer].init(params)
  for i in range(steps):
    _, grads = loss_and_grad(params, None, tokens_from(1000 + seed + i, (2, 9)),
                             cfg=cfg)
    params, state = step(optimizer, params, state, grads)
  return params, state


def weights(cfg, seed, kind):
  if kind == "trained":
    return trained(cfg, seed % 3)[0]
  return random_params(cfg, seed, scale=10.0 if kind == "large" else 1.0)


def maps_of(old, new, method, **options):
  opts = methods_lib.check_options(method, options)
  return G.axis_maps(G.plan(old, new, method=method), method, opts)


def restrict(tree, axes_tree_fn, maps):
  """The entries of a grown tree at the old entries' positions (numpy)."""
  def one(path, x):
    x = np.asarray(x)
    for i, name in enumerate(axes_tree_fn(params_lib.path_of(path))):
      if name in maps:
        x = np.take(x, maps[name].old_positions, axis=i)
    return x
  return jax.tree_util.tree_map_with_path(one, tree)


def fresh_mask(shape, names, maps):
  out = np.zeros(shape, bool)
  for i, name in enumerate(names):
    if name in maps:
      out |= maps[name].fresh.reshape([-1 if j == i else 1
                                       for j in range(len(shape))])
  return out


def assert_same_function(a, b, rel=1e-5):
  a, b = np.asarray(a), np.asarray(b)
  scale = float(np.abs(a).max())
  err = float(np.abs(a - b).max())
  assert err <= rel * scale, f"max |difference| {err:.3g} > {rel} * {scale:.3g}"


def assert_trees_equal(a, b):
  jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x),
                                                          np.asarray(y)), a, b)


def xent(logits, tokens):
  logits = np.asarray(logits, np.float64)
  logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(
      -1, keepdims=True)) - logits.max(-1, keepdims=True)
  return float(-np.take_along_axis(logp, tokens[..., None], -1).mean())


# ------------------------------------------------------------ the axis table
@pytest.mark.parametrize("cfg", [A, LL], ids=["gpt", "llama"])
def test_param_table_inits_match_init_and_axis_fields_size_one_axis(cfg):
  params = init(cfg, jax.random.key(0))
  for keys, x in jax.tree_util.tree_flatten_with_path(params)[0]:
    p = params_lib.TABLE[params_lib.path_of(keys)]
    if p.init == "ones":
      assert np.all(np.asarray(x) == 1), p.path
    elif p.init == "zeros":
      assert np.all(np.asarray(x) == 0), p.path
    else:
      std = mup.init_std(p, cfg)
      assert 0.5 * std < np.asarray(x).std() < 2 * std, p.path
  for axis, field in params_lib.AXIS_FIELDS.items():
    bigger = LL.replace(**{field: getattr(LL, field) + 2})
    changed = {k for k, v in model.axis_sizes(bigger).items()
               if v != model.axis_sizes(LL)[k]}
    assert changed == {axis}
  # key/value heads have no mask: new ones are read by masked query heads only
  assert {axes_lib.gating_mask(a) for a in axes_lib.GROWABLE} == {
      *model.MASK_AXES, None}
  assert axes_lib.gating_mask("kv_heads") is None


def test_methods_table_lists_every_method_with_its_exactness():
  assert set(G.METHODS) == {"msg", "zero", "hyperclone", "stack"}
  for name, m in G.METHODS.items():
    assert m.name == name and m.description and set(m.axes) <= set(axes_lib.GROWABLE)
  assert G.METHODS["msg"].axes == axes_lib.GROWABLE and G.METHODS["msg"].uses_masks
  assert [m for m in G.METHODS if G.METHODS[m].exact] == ["msg", "zero", "hyperclone"]
  assert "embed" not in G.METHODS["zero"].axes
  assert G.METHODS["stack"].axes == ("layers",)


def test_plan_orders_operators_widths_then_depth_and_skips_kept_axes():
  new = scaled(A, d=2, l=2, f=2)
  assert G.plan(A, new, method="msg") == [
      G.GrowthOp("embed", 8, 16), G.GrowthOp("mlp", 16, 32),
      G.GrowthOp("layers", 2, 4)]
  assert G.plan(A, A, method="hyperclone") == []


# ------------------------------------------------------- function preserved
ALL_CASES = [(m, i) for m in CASES for i in range(len(CASES[m]))]


def case_options(method, index):
  """Each case with layer growth uses one placement of the new layers, so
  every placement is covered without compiling each case three times."""
  return {} if method == "hyperclone" else {
      "new_layers": LAYER_OPTIONS[index % len(LAYER_OPTIONS)]}


@pytest.mark.parametrize("method,index", ALL_CASES)
@hypothesis.given(seed=st.integers(0, 2**16),
                  kind=st.sampled_from(["init", "large", "trained"]))
def test_exact_methods_keep_logits_and_loss(method, index, seed, kind):
  old, new = CASES[method][index]
  params = weights(old, seed, kind)
  tokens = tokens_from(seed, (2, 9))
  before = forward(params, None, tokens[:, :-1], cfg=old)
  grown = do_grow(params, old, new, method, seed=seed,
                  **case_options(method, index))
  assert grown.config == new
  assert (grown.masks is not None) == (method == "msg")
  after = forward(grown.params, grown.masks, tokens[:, :-1], cfg=new)
  assert_same_function(before, after)
  # The same property seen through the loss on this batch.
  t = np.asarray(tokens[:, 1:])
  assert abs(xent(before, t) - xent(after, t)) <= 1e-5 * xent(before, t)


@pytest.mark.parametrize("method,case", MUP_CASES)
@hypothesis.given(seed=st.integers(0, 2**16),
                  kind=st.sampled_from(["init", "large", "trained"]))
def test_exact_methods_keep_logits_under_mup(method, case, seed, kind):
  """muP's logits multiplier base_D / D falls as D grows: the unembedding
  absorbs D1 / D0 (times hyperclone's 1/n), so the function is kept."""
  old, new = case
  params = weights(old, seed, kind)
  tokens = tokens_from(seed)
  grown = do_grow(params, old, new, method, seed=seed,
                  **({} if method == "hyperclone" else {"new_layers": "top"}))
  assert_same_function(forward(params, None, tokens, cfg=old),
                       forward(grown.params, grown.masks, tokens, cfg=new))


@pytest.mark.parametrize("index", range(len(CASES["msg"])))
@hypothesis.given(seed=st.integers(0, 2**16), scale=st.sampled_from([1.0, 100.0]))
def test_msg_keeps_logits_for_any_new_weights(index, seed, scale):
  old, new = CASES["msg"][index]
  params = weights(old, seed, "trained")
  options = case_options("msg", index)
  grown = do_grow(params, old, new, "msg", seed=seed, **options)
  maps = maps_of(old, new, "msg", **options)
  rng = np.random.default_rng(seed)

  def garbage(path, x):
    x = np.asarray(x)
    fresh = fresh_mask(x.shape, model.AXES[params_lib.path_of(path)], maps)
    return jnp.asarray(np.where(fresh, scale * rng.standard_normal(x.shape), x),
                       jnp.float32)

  wild = jax.tree_util.tree_map_with_path(garbage, grown.params)
  tokens = tokens_from(seed)
  assert_same_function(forward(params, None, tokens, cfg=old),
                       forward(wild, grown.masks, tokens, cfg=new))


def test_stack_copies_layers_cyclically_and_is_not_exact():
  params = weights(A, 0, "trained")
  new = A.replace(n_layers=3)
  grown = do_grow(params, A, new, "stack")
  assert grown.masks is None
  for j in range(3):
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(x[j], y[j % 2]),
                 grown.params["blocks"], params["blocks"])
  tokens = tokens_from(0)
  before = np.asarray(forward(params, None, tokens, cfg=A))
  after = np.asarray(forward(grown.params, None, tokens, cfg=new))
  assert np.abs(before - after).max() > 1e-3 * np.abs(before).max()
  assert not G.METHODS["stack"].exact


def copy_sums(x, axis, source):
  """x summed over each set of copies (entries with the same source) along
  `axis`: [..., old, ...]."""
  x = np.moveaxis(np.asarray(x, np.float64), axis, 0)
  sums = np.zeros((int(source.max()) + 1,) + x.shape[1:])
  np.add.at(sums, source, x)
  return sums


@pytest.mark.parametrize("index", [3, HC_LL_ALL, 6])
def test_hyperclone_noise_breaks_symmetry_and_keeps_logits(index):
  """Every weight tiled along an input axis gets noise that differs between
  its copies and sums to zero over them: the embed-tiled q and, for GQA heads
  copied within their groups (index 6), the heads-tiled o."""
  old, new = CASES["hyperclone"][index]
  params = weights(old, 1, "trained")
  plain = do_grow(params, old, new, "hyperclone")
  noisy = do_grow(params, old, new, "hyperclone", seed=3, noise=1.0)
  maps = maps_of(old, new, "hyperclone")
  for path, axis in (("blocks/attn/q", "embed"), ("blocks/attn/o", "heads")):
    if axis not in maps:
      continue
    i = model.AXES[path].index(axis)
    pick = lambda t: t["blocks"]["attn"][path[-1]]
    a, b = np.asarray(pick(noisy.params)), np.asarray(pick(plain.params))
    source, first = maps[axis].source, maps[axis].old_positions
    later = np.setdiff1d(np.arange(source.size), first)  # the other copies
    assert np.abs(np.take(a, later, i)  # differ from their first copy
                  - np.take(a, first[source[later]], i)).min() > 0
    np.testing.assert_allclose(  # their sums do not
        copy_sums(a, i, maps[axis].source), copy_sums(b, i, maps[axis].source),
        rtol=1e-5, atol=1e-6)
  tokens = tokens_from(1)
  assert_same_function(forward(params, None, tokens, cfg=old),
                       forward(noisy.params, None, tokens, cfg=new))


# -------------------------------------------------------- growing in steps
def test_msg_twice_equals_once_and_mid_ramp_masks_compose():
  mid, final = CASES["msg"][4][1], CASES["msg"][5][1]  # x1.5, then x2
  params = weights(A, 2, "trained")
  # New layers on top: placed twice, they land where one placement puts them.
  once = do_grow(params, A, final, "msg", seed=1, new_layers="top")
  first = do_grow(params, A, mid, "msg", seed=2, new_layers="top")
  twice = do_grow(first.params, mid, final, "msg", seed=3, masks=first.masks,
                  new_layers="top")
  assert jax.tree.map(jnp.shape, once.params) == jax.tree.map(jnp.shape, twice.params)
  assert_trees_equal(once.masks, twice.masks)
  maps = maps_of(A, final, "msg", new_layers="top")
  assert_trees_equal(restrict(once.params, model.AXES.get, maps),
                     restrict(twice.params, model.AXES.get, maps))
  assert_trees_equal(restrict(once.params, model.AXES.get, maps), params)
  tokens = tokens_from(2)
  logits = forward(params, None, tokens, cfg=A)
  assert_same_function(logits, forward(once.params, once.masks, tokens, cfg=final))
  assert_same_function(logits, forward(twice.params, twice.masks, tokens, cfg=final))

  # Grown again mid-ramp: the function of the ramped model is kept, old mask
  # values are kept, the newest entries start at 0, and the ramp composes.
  ramped = G.ramp(first.masks, 0.25)
  again = do_grow(first.params, mid, final, "msg", seed=3, masks=ramped,
                  new_layers="top")
  assert_same_function(forward(first.params, ramped, tokens, cfg=mid),
                       forward(again.params, again.masks, tokens, cfg=final))
  hidden = np.asarray(again.masks["hidden"])
  np.testing.assert_array_equal(hidden, [1] * 8 + [0.25] * 4 + [0] * 4)
  np.testing.assert_allclose(np.asarray(G.ramp(again.masks, 0.5)["hidden"]),
                             [1] * 8 + [0.625] * 4 + [0.5] * 4)


def test_zero_twice_equals_once():
  final = CASES["zero"][3][1]  # heads, mlp, layers x2
  mid = CASES["zero"][0][1]  # heads x2
  params = weights(A, 0, "trained")
  once = do_grow(params, A, final, "zero", seed=1)
  twice = do_grow(do_grow(params, A, mid, "zero", seed=2).params, mid, final,
                  "zero", seed=3)
  assert once.masks is None and twice.masks is None
  assert jax.tree.map(jnp.shape, once.params) == jax.tree.map(jnp.shape, twice.params)
  maps = maps_of(A, final, "zero")
  assert_trees_equal(restrict(twice.params, model.AXES.get, maps), params)
  tokens = tokens_from(0)
  assert_same_function(forward(once.params, None, tokens, cfg=final),
                       forward(twice.params, None, tokens, cfg=final))


def test_hyperclone_twice_equals_once_and_stack_composes():
  params = weights(A, 0, "trained")
  d2, d4 = scaled(A, d=2), scaled(A, d=4)
  assert_trees_equal(do_grow(params, A, d4, "hyperclone").params,
                     do_grow(do_grow(params, A, d2, "hyperclone").params, d2, d4,
                             "hyperclone").params)
  widths = CASES["hyperclone"][3][1]  # embed then heads and mlp, or all at once
  assert_trees_equal(do_grow(params, A, widths, "hyperclone").params,
                     do_grow(do_grow(params, A, d2, "hyperclone").params, d2,
                             widths, "hyperclone").params)
  l4, l8 = A.replace(n_layers=4), A.replace(n_layers=8)
  assert_trees_equal(do_grow(params, A, l8, "stack").params,
                     do_grow(do_grow(params, A, l4, "stack").params, l4, l8,
                             "stack").params)


@pytest.mark.parametrize("method,new", [
    ("zero", scaled(CASES["msg"][0][1], f=2, l=1.5)),
    ("hyperclone", scaled(CASES["msg"][0][1], d=2, f=2))])
def test_growing_a_mid_ramp_model_carries_its_masks(method, new):
  """A model mid-ramp (msg hidden mask at 0.3) grown again by another method:
  its masks grow with it (zero: new entries 1, the new structures need no
  mask; hyperclone: masks tiled with the channels), the function is kept."""
  old, mid = CASES["msg"][0]  # d_model 8 -> 12
  params = weights(old, 0, "trained")
  first = do_grow(params, old, mid, "msg", **case_options("msg", 0))
  masks = G.ramp(first.masks, 0.3)
  grown = do_grow(first.params, mid, new, method, masks=masks)
  hidden = np.asarray(grown.masks["hidden"])
  expected = np.asarray(masks["hidden"])
  np.testing.assert_array_equal(
      hidden, expected if method == "zero" else np.tile(expected, 2))
  tokens = tokens_from(0)
  assert_same_function(forward(first.params, masks, tokens, cfg=mid),
                       forward(grown.params, grown.masks, tokens, cfg=new))


@pytest.mark.parametrize("new_layers,positions", [
    ("top", [0, 1]), ("bottom", [2, 3]), ("interleave", [0, 2]),
    ((0, 3), [1, 2])])
def test_new_layers_go_where_asked(new_layers, positions):
  new = A.replace(n_layers=4)
  params = weights(A, 0, "init")
  grown = do_grow(params, A, new, "msg", new_layers=new_layers)
  expected = np.zeros(4)
  expected[positions] = 1
  np.testing.assert_array_equal(grown.masks["layers"], expected)
  jax.tree.map(lambda x, y: np.testing.assert_array_equal(
      np.asarray(x)[positions], y), grown.params["blocks"], params["blocks"])


# -------------------------------------------------------------------- masks
def test_masks_ramp_to_one_then_fold_without_changing_logits():
  old, new = CASES["msg"][4]
  params = weights(old, 0, "trained")
  grown = do_grow(params, old, new, "msg")
  assert set(grown.masks) == set(model.MASK_AXES)
  assert_trees_equal(G.ramp(grown.masks, 0.0), grown.masks)  # exactly m0
  assert not G.foldable(G.ramp(grown.masks, 0.999))
  with pytest.raises(ValueError, match=r"masks.heads: 5 of 9 entries are not 1 \(min 0.5\)"):
    G.fold(G.ramp(grown.masks, 0.5))
  done = G.ramp(grown.masks, 1.7)  # clipped: exactly one
  assert G.foldable(done) and G.fold(done) is None
  tokens = tokens_from(0)
  assert_same_function(forward(grown.params, done, tokens, cfg=new),
                       forward(grown.params, None, tokens, cfg=new))
  assert G.ramp(None, 0.5) is None and G.fold(None) is None


# ---------------------------------------------------------------- gradients
def assert_every_fresh_entry_has_gradient(grads, maps, tokens):
  for keys, g in jax.tree_util.tree_flatten_with_path(grads)[0]:
    path = params_lib.path_of(keys)
    g = np.asarray(g)
    fresh = fresh_mask(g.shape, model.AXES[path], maps)
    if path == "embed":  # rows of tokens absent from the batch get none
      present = np.zeros(g.shape[0], bool)
      present[np.asarray(tokens)[:, :-1].ravel()] = True
      fresh &= present[:, None]
    assert np.all(g[fresh] != 0), (
        f"{path}: {int(np.sum(g[fresh] == 0))} of {int(fresh.sum())} new entries "
        "have a zero gradient")


@pytest.mark.parametrize("index", [4, 5, MSG_LL_ALL])
def test_msg_new_weights_get_gradients_after_first_ramp_step(index):
  old, new = CASES["msg"][index]
  grown = do_grow(weights(old, 0, "trained"), old, new, "msg",
                  new_layers="interleave")
  tokens = tokens_from(5, (2, 9))
  masks = G.Ramp(start=0, steps=100).masks(grown.masks, 1)
  _, grads = loss_and_grad(grown.params, masks, tokens, cfg=new)
  assert_every_fresh_entry_has_gradient(grads, maps_of(old, new, "msg"), tokens)


def test_zero_new_weights_get_gradients_after_one_step():
  old, new = CASES["zero"][3]
  params, state = trained(old, 0)
  grown = do_grow(params, old, new, "zero", new_layers="interleave")
  state = grow_state_fn(old, new, "zero", (("new_layers", "interleave"),))(state)
  tokens = tokens_from(5, (2, 9))
  _, grads = loss_and_grad(grown.params, None, tokens, cfg=new)
  wi = np.asarray(grads["blocks"]["mlp"]["wi"])
  assert np.all(wi[:, :, old.d_ff:] == 0)  # zero outgoing weights: no signal yet
  new_params, _ = step("adamw", grown.params, state, grads)
  _, grads = loss_and_grad(new_params, None, tokens, cfg=new)
  assert_every_fresh_entry_has_gradient(
      grads, maps_of(old, new, "zero", new_layers="interleave"), tokens)


# ---------------------------------------------------------- optimizer state
def moments_at_old_entries(state, maps):
  """The non-scalar leaves of an optimizer state, restricted to the old
  entries (each leaf's axes are those of the parameter at the same path)."""
  out = []
  for keys, x in jax.tree_util.tree_flatten_with_path(state)[0]:
    if np.ndim(x) == 0:
      continue
    path = "/".join(str(k.key) for k in keys
                    if isinstance(k, jax.tree_util.DictKey))
    out.append(restrict({"x": x}, lambda _: model.AXES[path], maps)["x"])
  return out


@pytest.mark.parametrize("method,index,optimizer", [
    (m, i, o) for m, i in (("msg", 4), ("zero", 3)) for o in sorted(OPTIMIZERS)
    # zero + active clipping: the new weights' gradients enter the global norm
    if (m, o) != ("zero", "clip_adamw")] + [
        ("msg", MSG_LL_ALL, "clip_adamw"), ("zero", ZERO_LL_ALL, "adamw")])
@hypothesis.given(seed=st.integers(0, 2**16))
def test_one_step_after_growing_state_moves_old_entries_like_the_small_model(
    method, index, optimizer, seed):
  old, new = CASES[method][index]
  # 3 steps: Adam moments are non-zero, MultiSteps (k=2) is mid-accumulation.
  params, state = trained(old, seed % 2, optimizer)
  grown = do_grow(params, old, new, method, seed=seed)
  grown_state = grow_state_fn(old, new, method)(state)
  shapes = lambda t: jax.tree.map(lambda x: tuple(x.shape), t)
  assert shapes(grown_state) == shapes(jax.eval_shape(
      OPTIMIZERS[optimizer].init, grown.params))
  assert_trees_equal([x for x in jax.tree.leaves(grown_state) if x.ndim == 0],
                     [x for x in jax.tree.leaves(state) if x.ndim == 0])  # counts

  tokens = tokens_from(seed, (2, 9))
  _, g_small = loss_and_grad(params, None, tokens, cfg=old)
  small, small_state = step(optimizer, params, state, g_small)
  _, g_big = loss_and_grad(grown.params, grown.masks, tokens, cfg=new)
  big, big_state = step(optimizer, grown.params, grown_state, g_big)

  maps = maps_of(old, new, method)
  # Gradients and moments: equal up to float rounding (the grown model sums
  # in another order), within 1e-5 of each leaf's largest entry.
  close = lambda a, b: np.testing.assert_allclose(
      a, b, rtol=1e-4, atol=1e-5 * float(np.abs(b).max()))
  jax.tree.map(close, restrict(g_big, model.AXES.get, maps), g_small)
  for a, b in zip(moments_at_old_entries(big_state, maps),
                  [x for x in jax.tree.leaves(small_state) if x.ndim > 0]):
    close(a, b)
  # Parameters: Adam divides by sqrt(nu), which amplifies that rounding where
  # the first moment nearly cancels; so within 5% of one step (lr) per entry.
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=0, atol=5e-4),
               restrict(big, model.AXES.get, maps), small)


@pytest.mark.parametrize("index,param", [(3, "sp"), (HC_LL_ALL, "sp"),
                                         (3, "mup")])
def test_hyperclone_state_growth_commutes_with_one_adam_step(index, param):
  """Moments: grow(step(small)) == step(grow(small)) for plain AdamW. Params:
  the same holds when each parameter's Adam direction is multiplied by
  lr_multipliers (1/n along tiled input axes) and weight decay is applied
  outside it, with eps negligible; without the multipliers the grown model's
  Adam direction on those parameters is n times the grown direction. (The
  Llama case copies query heads within groups and the groups too, so its
  key/value moments are scaled by the groups' factor, its q moments by the
  heads'.) Under muP each model's direction is also multiplied by muP's
  multipliers for its shape, which already hold hyperclone's 1/n: its
  lr_multipliers are all 1."""
  old, new = CASES["hyperclone"][index]  # embed, heads, mlp x2 (heads x4)
  if param == "mup":
    old, new = as_mup(old, A_BASE), as_mup(new, A_BASE)
  lr, wd = 1e-2, 0.1
  params, state = trained(old, 1)
  tokens = tokens_from(7, (2, 9))
  _, g_small = loss_and_grad(params, None, tokens, cfg=old)
  grown = do_grow(params, old, new, "hyperclone")
  _, g_big = loss_and_grad(grown.params, None, tokens, cfg=new)
  grow_state = grow_state_fn(old, new, "hyperclone")

  # Moments, plain AdamW: exact whatever eps, lr and weight decay.
  _, small_state = step("adamw", params, state, g_small)
  _, big_state = step("adamw", grown.params, grow_state(state), g_big)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(
      a, b, rtol=1e-5, atol=1e-6 * float(np.abs(a).max()) + 1e-30),
      grow_state(small_state), big_state)

  # Params: Adam direction x multipliers, then decoupled weight decay.
  multipliers = G.lr_multipliers(old, new, method="hyperclone")
  if param == "mup":
    assert set(jax.tree.leaves(multipliers)) == {1.0}
    multipliers = mup.lr_multipliers(new)
  assert multipliers["blocks"]["attn"]["q"] == 0.5 * (  # embed: its input
      mup.lr_multipliers(old)["blocks"]["attn"]["q"])
  assert multipliers["blocks"]["attn"]["o"] == old.n_heads / new.n_heads * (
      mup.lr_multipliers(old)["blocks"]["attn"]["o"])
  assert multipliers["blocks"]["mlp"]["wo"] == 0.5 * (  # mlp
      mup.lr_multipliers(old)["blocks"]["mlp"]["wo"])
  assert multipliers["embed"] == 1.0 and multipliers["ln_f"]["scale"] == 1.0

  def adam(mult):
    return optax.chain(
        optax.scale_by_adam(eps=1e-30),
        optax.stateless(lambda u, p: jax.tree.map(lambda x, m: x * m, u, mult)),
        optax.add_decayed_weights(wd), optax.scale(-lr))

  def update(mult, grads, adam_state, p):
    opt = adam(mult)
    opt_state = (adam_state,) + tuple(opt.init(p)[1:])
    return jax.jit(opt.update)(grads, opt_state, p)[0]

  ones = lambda t: jax.tree.map(lambda _: 1.0, t)
  upd_small = update(mup.lr_multipliers(old), g_small, state[0], params)
  upd_big = update(multipliers, g_big, grow_state(state)[0], grown.params)
  expected = do_grow(optax.apply_updates(params, upd_small), old, new,
                     "hyperclone").params
  jax.tree.map(lambda a, b: np.testing.assert_allclose(
      a, b, rtol=1e-5, atol=1e-6 * float(np.abs(a).max())),
      expected, optax.apply_updates(grown.params, upd_big))

  # Without multipliers: the Adam direction u' = -update/lr - wd * p is the
  # tiled old direction, not the tiled-and-divided one the weights need.
  if param == "mup":
    return
  direction = lambda upd, p: jax.tree.map(lambda u, x: -u / lr - wd * x, upd, p)
  u_plain = direction(update(ones(multipliers), g_big, grow_state(state)[0],
                             grown.params), grown.params)
  u_grown = do_grow(direction(upd_small, params), old, new, "hyperclone").params
  for path, n in (("blocks/attn/q", 2), ("blocks/mlp/wo", 2), ("embed", 1)):
    pick = lambda t: functools.reduce(lambda d, k: d[k], path.split("/"), t)
    np.testing.assert_allclose(pick(u_plain), n * np.asarray(pick(u_grown)),
                               rtol=1e-4, atol=1e-5)


def test_stack_state_copies_the_moments_of_the_copied_layers():
  params, state = trained(A, 0)
  new = A.replace(n_layers=3)
  grown_state = grow_state_fn(A, new, "stack")(state)
  for old_tree, new_tree in ((state[0].mu, grown_state[0].mu),
                             (state[0].nu, grown_state[0].nu)):
    for j in range(3):
      jax.tree.map(lambda x, y: np.testing.assert_array_equal(x[j], y[j % 2]),
                   new_tree["blocks"], old_tree["blocks"])


# --------------------------------------------------------- jit and sharding
def test_growth_jits_with_out_shardings_on_a_mesh():
  from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
  old, new = CASES["msg"][5]  # all axes x2
  mesh = Mesh(np.array(jax.devices()[:2]), ("fsdp",))

  def sharding(names):
    return NamedSharding(mesh, P(*["fsdp" if n == "embed" else None for n in names]))

  shapes = axes_lib.param_shapes(new)
  out = G.Grown(
      params=jax.tree_util.tree_map_with_path(
          lambda p, _: sharding(model.AXES[params_lib.path_of(p)]), shapes),
      masks={k: sharding(v) for k, v in model.MASK_AXES.items()}, config=new)
  params = weights(old, 0, "trained")
  fn = jax.jit(functools.partial(G.grow, old_cfg=old, new_cfg=new, method="msg"),
               out_shardings=out)
  sharded = fn(params, key=jax.random.key(1))
  assert sharded.params["blocks"]["mlp"]["wi"].sharding.spec == P(None, "fsdp", None)
  assert sharded.masks["hidden"].sharding.spec == P("fsdp")
  assert_trees_equal(sharded, do_grow(params, old, new, "msg", seed=1))


def test_chunked_growth_keeps_old_entries_masks_and_function(monkeypatch):
  old, new = CASES["msg"][5]
  params = weights(old, 0, "trained")
  whole = do_grow(params, old, new, "msg", seed=4)
  monkeypatch.setattr(operators, "CHUNK", 64)
  rows = jax.jit(functools.partial(G.grow, old_cfg=old, new_cfg=new, method="msg"))(
      params, key=jax.random.key(4))
  assert_trees_equal(whole.masks, rows.masks)
  maps = maps_of(old, new, "msg")
  assert_trees_equal(restrict(rows.params, model.AXES.get, maps), params)
  fresh_q = np.asarray(rows.params["blocks"]["attn"]["q"])[
      fresh_mask((4, 16, 4, 4), model.AXES["blocks/attn/q"], maps)]
  assert 0.7 * new.init_std < fresh_q.std() < 1.3 * new.init_std
  tokens = tokens_from(0)
  assert_same_function(forward(whole.params, whole.masks, tokens, cfg=new),
                       forward(rows.params, rows.masks, tokens, cfg=new))


# -------------------------------------------------------------- bad inputs
@functools.lru_cache(maxsize=None)
def _params_a():
  return random_params(A, 0)


@pytest.mark.parametrize("new,method,options,match", [
    (A.replace(d_model=4), "msg", {}, r"embed \(d_model\): 4 < 8, a stage cannot shrink"),
    (A.replace(n_layers=1), "zero", {}, r"layers \(n_layers\): 1 < 2"),
    (A.replace(head_dim=8), "msg", {}, r"head_dim: 4 -> 8"),
    (A.replace(vocab_size=64), "msg", {}, r"vocab_size: 32 -> 64"),
    (A.replace(max_len=16), "msg", {}, r"max_len: 8 -> 16"),
    (A.replace(pos="rope"), "msg", {}, r"pos: 'xpos' -> 'rope'"),
    (A, "net2net", {}, r"method: 'net2net' is not a growth method"),
    (A.replace(d_model=12), "hyperclone", {},
     r"embed \(d_model\): 8 -> 12: not an integer multiple"),
    (A.replace(n_layers=4), "hyperclone", {}, r"layers \(n_layers\): 2 -> 4: method "
     r"'hyperclone' cannot grow layers"),
    (A.replace(d_model=16), "zero", {}, r"embed \(d_model\): 8 -> 16: method 'zero' "
     r"cannot grow the hidden width exactly: plain LayerNorm"),
    (A.replace(d_ff=32), "stack", {}, r"mlp \(d_ff\): 16 -> 32: method 'stack'"),
    (A.replace(d_model=16), "hyperclone", {"new_layers": "top"},
     r"new_layers: not an option of method 'hyperclone'"),
    (A.replace(n_layers=3), "stack", {"new_layers": "top"},
     r"new_layers: not an option of method 'stack'"),
    (A.replace(n_layers=3), "msg", {"noise": 0.1}, r"noise: not an option of method 'msg'"),
    (A.replace(n_layers=3), "msg", {"colour": "red"},
     r"colour: not an option of method 'msg' \(an unknown option\)"),
    (A.replace(n_layers=3), "msg", {"new_layers": "middle"}, r"new_layers: 'middle'"),
    (A.replace(n_layers=4), "msg", {"new_layers": [0, 0]},
     r"new_layers: \[0, 0\] must be 2 distinct indices in \[0, 4\)"),
    (A.replace(n_layers=4), "zero", {"new_layers": [1, 7]}, r"new_layers: \[1, 7\]"),
    (A.replace(n_layers=3), "msg", {"ramp_steps": 100},
     r"ramp_steps: an option of the trainer, not of grow\(\)"),
    (A.replace(d_model=16), "hyperclone", {"noise": -1}, r"noise: -1"),
])
def test_bad_growth_is_a_named_value_error(new, method, options, match):
  with pytest.raises(ValueError, match=match):
    G.grow(_params_a(), A, new, jax.random.key(0), method=method, **options)


def test_ramp_steps_is_a_checked_option_of_every_method_with_masks():
  for name, m in G.METHODS.items():
    assert ("ramp_steps" in m.options) == m.uses_masks, name
    assert "ramp_steps" not in m.grow_options, name
  assert methods_lib.check_options("msg", {"ramp_steps": 7})["ramp_steps"] == 7
  with pytest.raises(ValueError, match=r"ramp_steps: 0 leaves the masks no "
                     "steps to rise from 0 to 1"):
    methods_lib.check_options("msg", {"ramp_steps": 0})
  with pytest.raises(ValueError, match=r"ramp_steps: not an option of method "
                     "'zero'"):
    methods_lib.check_options("zero", {"ramp_steps": 10})


@pytest.mark.parametrize("method,index", [("msg", 5), ("msg", 3), ("zero", 3),
                                          ("hyperclone", 3), ("msg", 11),
                                          ("msg", MSG_LL_ALL)])
def test_mask_names_are_the_masks_grow_returns(method, index):
  old, new = CASES[method][index]
  shapes = jax.eval_shape(
      lambda p, k: G.grow(p, old, new, k, method=method), init(old, jax.random.key(0)),
      jax.random.key(0))
  assert G.mask_names(old, new, method=method) == tuple(sorted(shapes.masks or {}))


def test_growing_params_and_optimizer_state_plans_once():
  from growjax.grow.plan import _plan  # pylint: disable=g-import-not-at-top
  new = scaled(A, d=2, f=2)
  params = init(A, jax.random.key(0))
  _plan.cache_clear()
  G.mask_names(A, new, method="msg")
  jax.eval_shape(lambda p, k: G.grow(p, A, new, k, method="msg"), params,
                 jax.random.key(0))
  jax.eval_shape(lambda s: G.grow_opt_state(s, A, new, method="msg"),
                 optax.adamw(1e-3).init(params))
  info = _plan.cache_info()
  assert info.misses == 1 and info.hits == 2


def test_ramp_starts_at_the_growth_masks_and_reaches_one_after_its_steps():
  _, new = CASES["msg"][4]
  m0 = do_grow(weights(A, 0, "init"), A, new, "msg").masks
  r = G.Ramp(start=10, steps=4)
  assert_trees_equal(r.masks(m0, 10), m0)
  assert_trees_equal(r.masks(m0, 12), G.ramp(m0, 0.5))
  assert G.foldable(r.masks(m0, 14)) and not G.foldable(r.masks(m0, 13))
  assert [r.done(s) for s in (13, 14, 20)] == [False, True, True]


def test_bad_inputs_are_named_value_errors():
  with pytest.raises(ValueError, match=r"^tie_embeddings: True: hyperclone "
                     r"grows d_model 8 -> 16 by copies, .* set "
                     "tie_embeddings=False in the grown model"):
    G.plan(A_TIED, A_TIED.replace(d_model=16), method="hyperclone")
  with pytest.raises(ValueError, match=r"params.blocks/attn/k: shape \(2, 8, 2, 4\) "
                     r"is not \(1, 16, 1, 4\), the shape old_cfg gives it"):
    G.grow(_params_a(), B, scaled(B, d=2), jax.random.key(0), method="msg")
  with pytest.raises(ValueError, match=r"masks.hidden: shape \(4,\) is not \(8,\)"):
    G.grow(_params_a(), A, A.replace(n_layers=3), jax.random.key(0), method="msg",
           masks={"hidden": jnp.ones(4)})
  with pytest.raises(ValueError, match=r"new_layers: not an option of method "
                     "'hyperclone'"):
    G.grow_opt_state({}, A, A.replace(d_model=16), method="hyperclone",
                     new_layers="top")
  with pytest.raises(ValueError, match=r"embed \(d_model\): 4 < 8"):
    G.lr_multipliers(A, A.replace(d_model=4), method="hyperclone")
  with pytest.raises(ValueError, match=r"opt_state: no part of it has the "
                     "structure and shapes of old_cfg's parameters"):
    G.grow_opt_state(optax.adam(1e-3).init(_params_a()), B, scaled(B, f=2),
                     method="msg")


# ---------------------------------------------- grouped-query attention
@hypothesis.given(g=st.integers(1, 4), r=st.integers(1, 3),
                  more_g=st.integers(0, 2), more_r=st.integers(0, 2),
                  tile=st.booleans())
def test_heads_grow_within_their_key_value_groups(g, r, more_g, more_r, tile):
  """Grown query head j reads key/value head j // r' (r = H / G heads per
  group). Every old query head keeps reading its key/value head: msg and zero
  keep it in its group (once each), hyperclone copies it, equally often, into
  the groups that copy its key/value head; so a fresh key/value head is read
  by fresh query heads only. One head per group is plain heads growth."""
  if tile:  # integer factors
    g2, r2 = g * (1 + more_g), r * (1 + more_r)
  else:  # any larger groups and more of them
    g2, r2 = g + more_g, r + more_r
  op = operators.GrowthOp("heads", g * r, g2 * r2, groups=(g, g2))
  plain = operators.tiled if tile else operators.appended
  kv = plain(operators.GrowthOp("kv_heads", g, g2))
  heads = operators.grouped(op, tile=tile)
  reads = kv.source[np.arange(g2 * r2) // r2]  # old kv head read; -1: fresh
  old = heads.source >= 0
  np.testing.assert_array_equal(reads[old], heads.source[old] // r)
  if tile:
    assert old.all() and heads.copies == g2 * r2 // (g * r)
    np.testing.assert_array_equal(np.bincount(heads.source),
                                  np.full(g * r, heads.copies))
  else:
    np.testing.assert_array_equal(np.sort(heads.source[old]), np.arange(g * r))
  if r == r2 == 1:
    np.testing.assert_array_equal(
        heads.source, plain(operators.GrowthOp("heads", g, g2)).source)


@pytest.mark.parametrize("old,new,method,field,match", [
    (LL, LL.replace(n_kv_heads=4), "msg", "n_kv_heads",
     r"^kv_heads \(n_kv_heads\): 2 -> 4 with n_heads 4 -> 4 leaves 1 query "
     r"heads per key/value head, fewer than 2"),
    (LL, LL.replace(n_heads=12, n_kv_heads=4), "hyperclone", None,
     r"heads \(n_heads\): 4 -> 12: 2 -> 3 query heads per key/value head "
     r"\(n_kv_heads 2 -> 4\) is not an integer multiple"),
    (LL, LL.replace(n_kv_heads=1), "msg", "n_kv_heads",
     r"kv_heads \(n_kv_heads\): 1 < 2, a stage cannot shrink"),
    (LL, LL.replace(d_model=16), "zero", None,
     r"method 'zero' cannot grow the hidden width exactly: RMSNorm takes its "
     r"mean square over the new channels too"),
    (LL, LL.replace(norm="layernorm"), "msg", "norm",
     r"^norm: 'rmsnorm' -> 'layernorm', cannot change it"),
    (A, A.replace(mlp="swiglu"), "msg", "mlp", r"^mlp: 'gelu' -> 'swiglu'"),
    (LL, LL.replace(rope_theta=5e5), "msg", "rope_theta",
     r"^rope_theta: 10000.0 -> 500000.0"),
    (NX, NX.replace(qkv_bias=False), "zero", "qkv_bias",
     r"^qkv_bias: True -> False, cannot change it"),
    (NX, NX.replace(parallel_residual=False), "msg", "parallel_residual",
     r"^parallel_residual: True -> False"),
    (NX, NX.replace(rotary_fraction=1.0), "msg", "rotary_fraction",
     r"^rotary_fraction: 0.5 -> 1.0"),
    (QW, QW.replace(norm_eps=1e-5), "msg", "norm_eps",
     r"^norm_eps: 1e-06 -> 1e-05"),
    (QW, QW.replace(rope_scaling=None), "msg", "rope_scaling",
     r"^rope_scaling: RopeScaling\(kind='llama3'.* -> None"),
    (A, A_TIED, "msg", "tie_embeddings",
     r"^tie_embeddings: False -> True, cannot tie an untied model"),
])
def test_growth_the_options_cannot_make_exactly_is_a_named_plan_error(
    old, new, method, field, match):
  with pytest.raises(G.PlanError, match=match) as e:
    G.plan(old, new, method=method)
  assert e.value.field == field and "\n" not in str(e.value)


# ------------------------------------------------------- untying embeddings
@pytest.mark.parametrize("method,new", [
    ("hyperclone", scaled(QW, d=2).replace(tie_embeddings=False)),
    ("msg", scaled(QW, l=1.5).replace(tie_embeddings=False))])
def test_untying_starts_the_output_layer_at_the_embedding_transpose(method,
                                                                    new):
  """Any method may untie (the output layer starts as the embedding's
  transpose, before it grows); the optimizer state gets zero moments for
  it, with the structure optax builds for the grown params."""
  params = weights(QW, 1, "init")
  grown = do_grow(params, QW, new, method)
  tokens = tokens_from(1)
  assert_same_function(forward(params, None, tokens, cfg=QW),
                       forward(grown.params, grown.masks, tokens, cfg=new))
  if method == "msg":  # d_model kept: the very table, transposed
    np.testing.assert_array_equal(grown.params["unembed"],
                                  np.asarray(params["embed"]).T)
  opt = optax.adamw(1e-2)
  state = grow_state_fn(QW, new, method)(opt.init(params))
  want = jax.eval_shape(opt.init, grown.params)
  assert jax.tree.structure(state) == jax.tree.structure(want)
  assert not np.any(np.asarray(state[0].mu["unembed"]))
