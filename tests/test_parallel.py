"""growjax.parallel on 8 simulated CPU devices (tests/conftest.py).

Meshes and shardings are checked without compiling anything (the rule walk
itself: tests/test_logical.py); the few compiled tests (sharded init,
forward, train step) share one tiny model and one (2, 2, 2) mesh.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from growjax import logical, model, parallel
from growjax import params as params_lib
from growjax.config import ModelConfig

CFG = ModelConfig(vocab_size=64, d_model=16, n_layers=2, n_heads=2,
                  head_dim=8, d_ff=32, max_len=16)
BATCH = 8


@pytest.fixture(scope="module")
def mesh():
  return parallel.make_mesh(data=2, fsdp=2, tensor=2)


@pytest.fixture(scope="module")
def host_params():
  """The unsharded init, on the host. Jitted, like `_sharded_init`: eager
  (op-by-op) init differs from any compiled one in the last bit of some
  values, whatever the sharding, because XLA fuses the normal sampler."""
  init = jax.jit(model.init, static_argnums=0)
  return jax.tree.map(np.asarray, init(CFG, jax.random.key(0)))


@pytest.fixture(scope="module")
def tokens():
  return np.asarray(jax.random.randint(
      jax.random.key(1), (BATCH, CFG.max_len + 1), 0, CFG.vocab_size))


# ------------------------------------------------------------------ mesh ---

@pytest.mark.parametrize("sizes", [(8, 1, 1), (2, 2, 2), (1, 4, 2), (1, 1, 8)])
def test_make_mesh_has_the_asked_shape_and_auto_axes(sizes):
  mesh = parallel.make_mesh(*sizes)
  assert mesh.axis_names == ("data", "fsdp", "tensor")
  assert tuple(mesh.shape.values()) == sizes
  assert mesh.axis_types == (jax.sharding.AxisType.Auto,) * 3
  assert len({d.id for d in mesh.devices.flat}) == 8


def test_make_mesh_over_some_devices():
  four = parallel.make_mesh(2, 2, 1, devices=jax.devices()[:4])
  assert tuple(four.shape.values()) == (2, 2, 1)
  assert {d.id for d in four.devices.flat} == {d.id for d in jax.devices()[:4]}


@pytest.mark.parametrize("sizes, message", [
    ((3, 1, 1), r"mesh: data \* fsdp \* tensor = 3 \* 1 \* 1 = 3, but there are 8"),
    ((4, 4, 1), r"= 16, but there are 8 devices"),
    ((-1, 2, 2), r"mesh.data: -1 is not an integer >= 1"),  # Mesh.shape's job
    ((0, 1, 1), r"mesh.data: 0 is not an integer >= 1"),
    ((2, "2", 2), r"mesh.fsdp: '2' is not an integer"),
    ((2, 2, True), r"mesh.tensor: True is not an integer"),
])
def test_make_mesh_errors_name_the_field(sizes, message):
  with pytest.raises(ValueError, match=message):
    parallel.make_mesh(*sizes)


# ------------------------------------------------------------ shardings ---

def test_logical_to_spec_is_the_rule_walk_on_the_mesh_sizes(mesh):
  """The spec on a real mesh is `logical.spec` on its sizes (the one walk
  that growjax.cost prices memory with)."""
  for axes, shape in ((("layers", "embed", "mlp"), (2, 16, 32)),
                      (("batch", "time", "embed"), (8, 16, 16)),
                      (("vocab", "embed"), (3, 16))):
    assert parallel.logical_to_spec(axes, shape, mesh) == P(
        *logical.spec(axes, shape, dict(mesh.shape)))
  assert parallel.logical_to_spec(("embed", "mlp"), (16, 32), mesh) == P(
      "fsdp", "tensor")


def test_rules_from_config_reshard_parameters(mesh):
  rules = parallel.rules_from_config(
      [("embed", None), ("mlp", ["tensor", "fsdp"])])
  w = {"w": jax.ShapeDtypeStruct((16, 32), jnp.float32)}
  sh = parallel.shardings(w, mesh, rules, axes={"w": ("embed", "mlp")})
  assert sh["w"].spec == P(None, ("tensor", "fsdp"))


def test_mask_shardings_follow_mask_axes(mesh):
  masks = {"hidden": jax.ShapeDtypeStruct((16,), jnp.float32),
           "heads": jax.ShapeDtypeStruct((2, 2), jnp.float32),
           "mlp": jax.ShapeDtypeStruct((2, 32), jnp.float32),
           "layers": jax.ShapeDtypeStruct((2,), jnp.float32)}
  specs = jax.tree.map(lambda s: s.spec, parallel.shardings(masks, mesh))
  assert specs == {"hidden": P("fsdp"), "heads": P(None, "tensor"),
                   "mlp": P(None, "tensor"), "layers": P(None)}


# ------------------------------------------------------ optimizer states ---

def _decay_mask(params):
  """Weight decay on everything but the LayerNorms."""
  return jax.tree_util.tree_map_with_path(
      lambda path, _: not any(str(getattr(k, "key", "")).startswith("ln")
                              for k in path), params)


TX = optax.chain(optax.clip_by_global_norm(1.0),
                 optax.adamw(1e-2, weight_decay=0.1, mask=_decay_mask))


def test_state_shardings_give_moments_the_params_shardings(mesh):
  abstract = jax.eval_shape(lambda k: model.init(CFG, k), jax.random.key(0))
  p_sh = parallel.shardings(abstract, mesh)
  multi = optax.MultiSteps(TX, every_k_schedule=2)
  state = {"params": abstract, "opt": jax.eval_shape(multi.init, abstract),
           "step": jax.ShapeDtypeStruct((), jnp.int32),
           "rng": jax.eval_shape(lambda: jax.random.key(0))}
  sh = parallel.state_shardings(state, p_sh, mesh)
  assert jax.tree.structure(sh) == jax.tree.structure(state)
  replicated = NamedSharding(mesh, P())
  adam = sh["opt"].inner_opt_state[1][0]
  for tree in (sh["params"], sh["opt"].acc_grads, adam.mu, adam.nu):
    assert tree == p_sh
  assert adam.count == replicated
  assert sh["step"] == sh["rng"] == sh["opt"].mini_step == replicated
  # optax.masked leaves MaskedNode placeholders inside a params-like tree.
  masked = optax.masked(optax.scale_by_adam(), _decay_mask)
  m_sh = parallel.state_shardings(jax.eval_shape(masked.init, abstract),
                                  p_sh, mesh)
  mu = m_sh.inner_state.mu
  assert mu["embed"] == p_sh["embed"]
  assert isinstance(mu["ln_f"]["scale"], optax.MaskedNode)


def test_state_shardings_replicate_leaves_the_params_sharding_does_not_fit(mesh):
  abstract = {"w": jax.ShapeDtypeStruct((16, 32), jnp.float32)}
  p_sh = {"w": NamedSharding(mesh, P("fsdp", "tensor"))}
  factored = {"v_row": {"w": jax.ShapeDtypeStruct((16,), jnp.float32)},
              "v_odd": {"w": jax.ShapeDtypeStruct((3, 32), jnp.float32)},
              "mu": abstract}
  sh = parallel.state_shardings(factored, p_sh, mesh)
  assert sh["v_row"]["w"].spec == P() and sh["v_odd"]["w"].spec == P()
  assert sh["mu"] == p_sh


# ---------------------------------------------------------------- batches ---

def test_global_batch_shards_rows_over_data_and_fsdp(mesh, tokens):
  batch = parallel.global_batch({"tokens": tokens}, mesh)["tokens"]
  assert batch.shape == tokens.shape
  assert batch.sharding.is_equivalent_to(
      NamedSharding(mesh, P(("data", "fsdp"), None)), 2)
  assert {s.data.shape for s in batch.addressable_shards} == {(2, 17)}
  np.testing.assert_array_equal(np.asarray(batch), tokens)
  with pytest.raises(ValueError, match="3 local rows do not split into this "
                     "process's 4 batch shards"):
    parallel.global_batch(tokens[:3], mesh)


def test_initialize_distributed_is_a_no_op_single_host(monkeypatch):
  for name in ("JAX_COORDINATOR_ADDRESS", "SLURM_JOB_ID", "OMPI_MCA_orte_hnp_uri",
               "TPU_WORKER_HOSTNAMES", "TPU_PROCESS_ADDRESSES",
               "MEGASCALE_COORDINATOR_ADDRESS"):
    monkeypatch.delenv(name, raising=False)
  assert parallel._multi_host_launch() is None
  assert parallel.initialize_distributed() is False
  slurm = dict(SLURM_JOB_ID="7", SLURM_STEP_NODELIST="n[1-2]", SLURM_PROCID="0",
               SLURM_LOCALID="0", SLURM_NTASKS="1")
  for k, v in slurm.items():
    monkeypatch.setenv(k, v)
  assert parallel._multi_host_launch() is None  # one task: single-host
  monkeypatch.setenv("SLURM_NTASKS", "2")
  assert parallel._multi_host_launch() == "SLURM"
  assert parallel.initialize_distributed(force=False) is False
  monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "host0:1234")
  assert parallel._multi_host_launch() == "JAX_COORDINATOR_ADDRESS"


# -------------------------------------------------- compiled on the mesh ---

EXPECTED_SPECS = {
    "embed": P("tensor", "fsdp"),
    "blocks/attn/q": P(None, "fsdp", "tensor", None),
    "blocks/attn/o": P(None, "tensor", None, "fsdp"),
    "blocks/mlp/wi": P(None, "fsdp", "tensor"),
    "blocks/mlp/wo": P(None, "tensor", "fsdp"),
    "blocks/ln1/scale": P(None, "fsdp"),
    "ln_f/bias": P("fsdp"),
    "unembed": P("fsdp", "tensor"),
}


def _sharded_init(cfg, key, mesh):
  """`model.init` built on the devices (big_vision): `jax.eval_shape` for the
  shapes, the rules for the shardings, `jax.jit(out_shardings=...)`."""
  init = functools.partial(model.init, cfg)
  out = parallel.shardings(jax.eval_shape(init, key), mesh)
  key = jax.device_put(key, NamedSharding(mesh, P()))
  return jax.jit(init, out_shardings=out)(key)


def test_sharded_init_equals_unsharded_init(mesh, host_params):
  """Random bits do not depend on the sharding."""
  params = _sharded_init(CFG, jax.random.key(0), mesh)
  flat = {params_lib.path_of(p): x
          for p, x in jax.tree_util.tree_leaves_with_path(params)}
  host = {params_lib.path_of(p): x
          for p, x in jax.tree_util.tree_leaves_with_path(host_params)}
  assert flat.keys() == host.keys() == model.param_axes(CFG).keys()
  for path, x in flat.items():
    np.testing.assert_array_equal(np.asarray(x), host[path], err_msg=path)
    expected = NamedSharding(mesh, parallel.logical_to_spec(
        model.AXES[path], x.shape, mesh))
    assert x.sharding.is_equivalent_to(expected, x.ndim), path
  for path, spec in EXPECTED_SPECS.items():
    assert flat[path].sharding.is_equivalent_to(
        NamedSharding(mesh, spec), flat[path].ndim), path
  # Each device holds its shard only: embed [64, 16] over tensor x fsdp.
  assert {s.data.shape for s in flat["embed"].addressable_shards} == {(32, 8)}


def test_sharded_forward_equals_unsharded_forward(mesh, host_params, tokens):
  x = tokens[:, :-1]
  forward = lambda p, t: model.apply(p, CFG, t)
  expected = jax.jit(forward)(host_params, x)
  p_sh = parallel.shardings(host_params, mesh)
  logits_sh = NamedSharding(mesh, parallel.logical_to_spec(
      ("batch", "time", "vocab"), expected.shape, mesh))
  sharded = jax.jit(forward, in_shardings=(p_sh, parallel.batch_sharding(mesh)),
                    out_shardings=logits_sh)
  logits = sharded(jax.device_put(host_params, p_sh),
                   parallel.global_batch(x, mesh))
  assert logits.sharding.is_equivalent_to(logits_sh, 3)
  np.testing.assert_allclose(np.asarray(logits), np.asarray(expected),
                             atol=1e-5, rtol=1e-5)


def _loss(params, tokens):
  logits = model.apply(params, CFG, tokens[:, :-1])
  return optax.softmax_cross_entropy_with_integer_labels(
      logits, tokens[:, 1:]).mean()


def _make_state(params):
  return {"params": params, "opt": TX.init(params),
          "step": jnp.zeros((), jnp.int32)}


def _train_step(state, tokens):
  loss, grads = jax.value_and_grad(_loss)(state["params"], tokens)
  updates, opt = TX.update(grads, state["opt"], state["params"])
  return {"params": optax.apply_updates(state["params"], updates), "opt": opt,
          "step": state["step"] + 1}, loss


def test_sharded_adamw_steps_equal_one_device_steps(mesh, host_params, tokens):
  # One device.
  step = jax.jit(_train_step, donate_argnames=("state",))
  state = jax.jit(_make_state)(host_params)
  losses = []
  for _ in range(2):
    state, loss = step(state, tokens)
    losses.append(float(loss))
  # The (2, 2, 2) mesh, the state built on its devices.
  p_sh = parallel.shardings(host_params, mesh)
  state_sh = parallel.state_shardings(
      jax.eval_shape(_make_state, host_params), p_sh, mesh)
  sharded_state = jax.jit(_make_state, in_shardings=(p_sh,),
                          out_shardings=state_sh)(host_params)
  replicated = NamedSharding(mesh, P())
  sharded_step = jax.jit(
      _train_step, in_shardings=(state_sh, parallel.batch_sharding(mesh)),
      out_shardings=(state_sh, replicated), donate_argnames=("state",))
  batch = parallel.global_batch(tokens, mesh)
  sharded_losses = []
  for _ in range(2):
    old = sharded_state
    sharded_state, loss = sharded_step(sharded_state, batch)
    sharded_losses.append(float(loss))
  assert old["params"]["embed"].is_deleted()  # the state was donated
  assert int(sharded_state["step"]) == 2
  np.testing.assert_allclose(sharded_losses, losses, rtol=1e-5)
  jax.tree.map(
      lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b),
                                              atol=1e-5, rtol=1e-5),
      sharded_state["params"], state["params"])
  mu = sharded_state["opt"][1][0].mu
  assert mu["blocks"]["mlp"]["wi"].sharding.is_equivalent_to(
      NamedSharding(mesh, P(None, "fsdp", "tensor")), 3)
  # Two steps moved the parameters (the comparison is not vacuous).
  assert not np.allclose(np.asarray(state["params"]["unembed"]),
                         host_params["unembed"])
