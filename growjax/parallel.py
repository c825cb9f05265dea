"""The device mesh, and logical-axis rules -> `NamedSharding`.

Layers name logical axes only (`growjax.model.AXES`: `("layers", "embed",
"mlp")`); the rules below map those names to the axes of one mesh,

    data    pure data parallelism (replicas; spans hosts first),
    fsdp    data parallelism whose replicas also split the parameters and
            optimizer state along `embed` (ZeRO-3 / FSDP),
    tensor  tensor (model) parallelism: `mlp`, `heads`, `vocab`,

so a parameter's sharding and its growth (`growjax.grow` pads along the same
names) cannot disagree. Everything is classic GSPMD: `jax.jit` with
`NamedSharding` in/out shardings on a mesh of `Auto` axes.

    mesh = parallel.make_mesh(data=-1, fsdp=2, tensor=2)     # or from_config(c.mesh)
    params = parallel.sharded_init(cfg, key, mesh)           # built on the devices
    p_sh = jax.tree.map(lambda x: x.sharding, params)
    state_sh = parallel.state_shardings(jax.eval_shape(make_state, params), p_sh, mesh)
    step = jax.jit(train_step, in_shardings=(state_sh, parallel.batch_sharding(mesh)),
                   out_shardings=(state_sh, None), donate_argnames=("state",))
    batch = parallel.global_batch(local_numpy_batch, mesh)

Multi-host: start one process per host, all with the same command; the
first thing `main` does is `initialize_distributed()`, which joins them when
it finds a multi-host launch in the environment:

    # on every host i = 0..N-1 (GPU: one process owns all of its host's GPUs)
    JAX_COORDINATOR_ADDRESS=host0:1234 JAX_NUM_PROCESSES=N JAX_PROCESS_ID=i \\
        python -m growjax.main --config experiments/X.py --workdir DIR
    # SLURM: srun --nodes=N --ntasks-per-node=1 python -m growjax.main ...
    # (Open MPI's mpirun and Cloud TPU pods are detected the same way)

After that `jax.devices()` lists every host's devices, `make_mesh` lays
`data` across hosts (the slowest-varying axis) and `tensor` within a host,
and each process feeds only its own rows of the batch to `global_batch`.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from growjax import model as model_lib
from growjax.config import ModelConfig

MESH_AXES = ("data", "fsdp", "tensor")

MeshAxes = tuple[str, ...] | None
Rules = tuple[tuple[str, MeshAxes], ...]

# Default logical-axis rules: (logical name, mesh axes). A name may appear
# more than once: the first rule that can shard the dimension wins (see
# `logical_to_spec`), so later rules are fallbacks. Names without a rule,
# and rules to None, are replicated.
RULES: Rules = (
    ("batch", ("data", "fsdp")),
    ("embed", ("fsdp",)),
    ("mlp", ("tensor",)),
    ("heads", ("tensor",)),
    ("vocab", ("tensor",)),
    ("layers", None),
    ("head_dim", None),
    ("time", None),
)


# ----------------------------------------------------------------- mesh ---

def make_mesh(data: int = -1, fsdp: int = 1, tensor: int = 1, *,
              devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A ("data", "fsdp", "tensor") mesh of Auto axes over `devices`
  (default: every device of every process).

  -1 means all remaining devices (at most one axis). A product that does not
  match the number of devices raises a `ValueError` naming the field.
  """
  sizes = {"data": data, "fsdp": fsdp, "tensor": tensor}
  for name, value in sizes.items():
    if (isinstance(value, bool) or not isinstance(value, (int, np.integer))
        or (value < 1 and value != -1)):
      raise ValueError(
          f"mesh.{name}: {value!r} is not a positive integer or -1 "
          "(all remaining devices)")
  fill = [name for name, value in sizes.items() if value == -1]
  if len(fill) > 1:
    raise ValueError(
        f"mesh.{fill[1]}: -1, but mesh.{fill[0]} is -1 already; at most one "
        "axis may take all remaining devices")
  devices = jax.devices() if devices is None else list(devices)
  n = len(devices)
  fixed = math.prod(v for v in sizes.values() if v != -1)
  if fill:
    if n % fixed:
      others = " * ".join(f"{k}={v}" for k, v in sizes.items() if v != -1)
      raise ValueError(
          f"mesh.{fill[0]}: -1 cannot take the remaining devices: {n} "
          f"devices are not divisible by {others} = {fixed}")
    sizes[fill[0]] = n // fixed
  elif fixed != n:
    raise ValueError(
        f"mesh: data * fsdp * tensor = {data} * {fsdp} * {tensor} = {fixed}, "
        f"but there are {n} devices (set one field to -1 to take the rest)")
  sizes = {k: int(v) for k, v in sizes.items()}
  # jax.make_mesh defaults to Explicit axes in new JAX; growjax is GSPMD
  # (jit + NamedSharding), so ask for Auto. Keywords: the positional order of
  # make_mesh's optional arguments has changed between releases.
  auto = (jax.sharding.AxisType.Auto,) * len(MESH_AXES)
  return jax.make_mesh(tuple(sizes.values()), MESH_AXES, axis_types=auto,
                       devices=devices)


# ---------------------------------------------------------------- rules ---

def _mesh_axes(value: Any, where: str) -> MeshAxes:
  """None, "fsdp" or ("data", "fsdp") -> None or a tuple of names."""
  if value is None:
    return None
  names = (value,) if isinstance(value, str) else value
  if not isinstance(names, Sequence) or not all(
      isinstance(a, str) for a in names):
    raise ValueError(
        f"{where}: {value!r} is not None, a mesh axis name or a sequence of "
        "them")
  return tuple(names) or None


def rules_from_config(overrides: Any = None, *, base: Rules = RULES,
                      field: str = "mesh.rules") -> Rules:
  """`base` with the rules of an experiment config applied.

  `overrides` (e.g. `c.mesh.rules`) is None, a sequence of (logical name,
  mesh axes) pairs, or a mapping name -> mesh axes; mesh axes are None
  (replicate), a name of `MESH_AXES`, or a sequence of them. A logical name
  given in `overrides` replaces all of its rules in `base`; other names keep
  theirs. Errors name `field`, the entry and the value.
  """
  if overrides is None:
    return _normalize(base, "rules")
  items = list(overrides.items()) if hasattr(overrides, "items") else overrides
  if isinstance(items, str) or not isinstance(items, Sequence):
    raise ValueError(
        f"{field}: {overrides!r} is not a list of (logical name, mesh axes) "
        "pairs or a mapping")
  new = []
  for i, item in enumerate(items):
    where = f"{field}[{i}]"
    if (isinstance(item, str) or not isinstance(item, Sequence)
        or len(item) != 2 or not isinstance(item[0], str)):
      raise ValueError(
          f"{where}: {item!r} is not a (logical name, mesh axes) pair")
    axes = _mesh_axes(item[1], where)
    for a in axes or ():
      if a not in MESH_AXES:
        raise ValueError(
            f"{where}: mesh axis {a!r} of {item[0]!r} is not one of "
            f"{MESH_AXES}")
    new.append((item[0], axes))
  named = {name for name, _ in new}
  return tuple(new) + tuple(
      r for r in _normalize(base, "rules") if r[0] not in named)


def _normalize(rules: Any, field: str) -> Rules:
  if rules is None:
    return RULES
  if rules is RULES:
    return rules
  out = []
  for i, item in enumerate(rules):
    if (isinstance(item, str) or not isinstance(item, Sequence)
        or len(item) != 2 or not isinstance(item[0], str)):
      raise ValueError(
          f"{field}[{i}]: {item!r} is not a (logical name, mesh axes) pair")
    out.append((item[0], _mesh_axes(item[1], f"{field}[{i}]")))
  return tuple(out)


def from_config(mesh_cfg: Any, *, devices: Sequence[jax.Device] | None = None
                ) -> tuple[Mesh, Rules]:
  """The mesh and rules of an experiment's `c.mesh`: fields data, fsdp,
  tensor (see `make_mesh`) and optional rules (see `rules_from_config`)."""
  fields = dict(mesh_cfg.items()) if hasattr(mesh_cfg, "items") else None
  if fields is None:
    raise ValueError(f"mesh: {mesh_cfg!r} is not a dict of fields")
  unknown = sorted(set(fields) - {*MESH_AXES, "rules"})
  if unknown:
    raise ValueError(
        f"mesh.{unknown[0]}: unknown field; expected {MESH_AXES} and rules")
  rules = rules_from_config(fields.pop("rules", None))
  return make_mesh(**fields, devices=devices), rules


def logical_to_spec(axes: Sequence[str | None], shape: Sequence[int],
                    mesh: Mesh | Mapping[str, int], rules: Any = RULES) -> P:
  """The PartitionSpec of an array of `shape` whose dimensions have logical
  names `axes`, on `mesh` (or on a mesh of these axis sizes: a plan for
  devices that are not here).

  Dimensions are taken left to right. For each, the rules for its name are
  tried in order; a rule's mesh axes lose those of size 1 and those an
  earlier dimension already took (one mesh axis never appears twice in a
  spec), then trailing axes are dropped until their product divides the
  dimension. The first rule left with any axis shards the dimension; a rule
  to None, or no rule left, replicates it. So a dimension not divisible by
  its mesh axes is replicated (or, for a multi-axis rule like batch -> (data,
  fsdp), sharded over the longest prefix that divides it).
  """
  if len(axes) != len(shape):
    raise ValueError(
        f"logical axes {tuple(axes)} do not match shape {tuple(shape)}")
  rules = _normalize(rules, "rules")
  sizes = dict(mesh.shape) if isinstance(mesh, Mesh) else dict(mesh)
  used: set[str] = set()
  spec = []
  for name, dim in zip(axes, shape):
    chosen: tuple[str, ...] = ()
    for rule_name, mesh_axes in rules if name is not None else ():
      if rule_name != name:
        continue
      if mesh_axes is None:
        break
      missing = [a for a in mesh_axes if a not in sizes]
      if missing:
        raise ValueError(
            f"rule {name!r} -> {mesh_axes}: the mesh has no axis "
            f"{missing[0]!r} (its axes: {tuple(sizes)})")
      free = [a for a in mesh_axes if a not in used and sizes[a] > 1]
      while free and dim % math.prod(sizes[a] for a in free):
        free.pop()
      if free:
        chosen = tuple(free)
        break
    used.update(chosen)
    spec.append(None if not chosen else
                chosen[0] if len(chosen) == 1 else chosen)
  return P(*spec)


# ------------------------------------------------------------ shardings ---

def shardings(tree: Any, mesh: Mesh, rules: Any = RULES, *,
              axes: Any = None) -> Any:
  """NamedShardings for params (or growth masks): arrays or
  `jax.ShapeDtypeStruct`s, with logical axes from `model.logical_axes`
  (or `axes`, a tree of axis-name tuples matching `tree`)."""
  rules = _normalize(rules, "rules")
  axes = model_lib.logical_axes(tree) if axes is None else axes
  return jax.tree.map(
      lambda x, names: NamedSharding(
          mesh, logical_to_spec(names, x.shape, mesh, rules)),
      tree, axes)


def param_shardings(cfg: ModelConfig, mesh: Mesh, rules: Any = RULES) -> Any:
  """The shardings of `model.init(cfg, key)`, without building it."""
  abstract = jax.eval_shape(functools.partial(model_lib.init, cfg),
                            jax.random.key(0))
  return shardings(abstract, mesh, rules)


def _is_masked(x: Any) -> bool:
  # optax.masked leaves MaskedNode placeholders where a transform is off.
  return type(x).__name__ == "MaskedNode"


def _fits(leaf: Any, sharding: NamedSharding) -> bool:
  """Whether `sharding` can lay out `leaf` (rank and divisibility)."""
  shape = getattr(leaf, "shape", None)
  spec = sharding.spec
  if shape is None or len(spec) > len(shape):
    return False
  sizes = dict(sharding.mesh.shape)
  for dim, entry in zip(shape, spec):
    names = () if entry is None else (entry,) if isinstance(entry, str) else entry
    if dim % math.prod(sizes[a] for a in names):
      return False
  return True


def state_shardings(abstract_tree: Any, params_shardings: Any,
                    mesh: Mesh) -> Any:
  """Shardings for an optimizer state or a whole train state.

  Every sub-pytree with the params' structure (Adam's mu and nu, MultiSteps'
  accumulated gradients, the params themselves; optax.masked placeholders
  allowed) gets the params' shardings, leaf by leaf, where they fit the
  leaf's shape (a factored second moment with other shapes is replicated);
  everything else (step counters, scalars, RNG keys) is replicated.
  `abstract_tree` holds arrays or `jax.ShapeDtypeStruct`s
  (`jax.eval_shape(make_state, ...)`).
  """
  replicated = NamedSharding(mesh, P())
  params_def = jax.tree.structure(params_shardings)

  def like_params(x):
    return (not _is_masked(x) and
            jax.tree.structure(x, is_leaf=_is_masked) == params_def)

  def subtree(x):
    if _is_masked(x):
      return x
    if not like_params(x):  # a leaf outside any params-like subtree
      return replicated
    return jax.tree.map(
        lambda leaf, s: leaf if _is_masked(leaf) else (
            s if _fits(leaf, s) else replicated),
        x, params_shardings, is_leaf=_is_masked)

  return jax.tree.map(
      subtree, abstract_tree,
      is_leaf=lambda x: _is_masked(x) or like_params(x))


def _batch_axes(mesh: Mesh, rules: Any) -> tuple[str, ...]:
  sizes = dict(mesh.shape)
  for name, mesh_axes in _normalize(rules, "rules"):
    if name != "batch":
      continue
    if mesh_axes is None:
      return ()
    axes = tuple(a for a in mesh_axes if sizes.get(a, 1) > 1)
    if axes:
      return axes
  return ()


def batch_sharding(mesh: Mesh, rules: Any = RULES) -> NamedSharding:
  """Rows over the `batch` rule's mesh axes (data x fsdp), every other
  dimension (time, ...) replicated; fits arrays of any rank."""
  axes = _batch_axes(mesh, rules)
  return NamedSharding(mesh, P(axes if len(axes) > 1 else
                               axes[0] if axes else None))


def global_batch(local_batch: Any, mesh: Mesh, rules: Any = RULES) -> Any:
  """Global `jax.Array`s, rows sharded by `batch_sharding`, from this
  process's rows (a tree of numpy arrays).

  Single-host the local rows are the whole batch; multi-host each process
  passes only its own rows (a global batch of `rows * process_count()` when
  the batch axes span the hosts) and the result is the same global array on
  every process.
  """
  sharding = batch_sharding(mesh, rules)
  axes = _batch_axes(mesh, rules)
  index = [mesh.axis_names.index(a) for a in axes]
  me = jax.process_index()
  local_shards = len({tuple(c[i] for i in index)
                      for c, d in np.ndenumerate(mesh.devices)
                      if d.process_index == me})

  def one(x):
    x = np.asarray(x)
    if x.ndim == 0 or x.shape[0] % local_shards:
      rows = "a scalar's" if x.ndim == 0 else x.shape[0]
      raise ValueError(
          f"global_batch: {rows} local rows do not "
          f"split into this process's {local_shards} batch shards "
          f"(mesh axes {axes} of {dict(mesh.shape)})")
    return jax.make_array_from_process_local_data(sharding, x)

  return jax.tree.map(one, local_batch)


# ------------------------------------------------------- building state ---

def sharded_init(cfg: ModelConfig, key: jax.Array, mesh: Mesh,
                 rules: Any = RULES) -> Any:
  """`model.init(cfg, key)` built directly on the devices, each parameter
  with the sharding the rules give it (big_vision: `jax.eval_shape` for the
  shapes, the rules for the shardings, `jax.jit(out_shardings=...)`).
  Equal to the unsharded init: random bits do not depend on the sharding."""
  out = param_shardings(cfg, mesh, rules)
  key = jax.device_put(key, NamedSharding(mesh, P()))
  init = jax.jit(model_lib.init, static_argnums=0, out_shardings=out)
  return init(cfg, key)


# ---------------------------------------------------------- multi-host ---

def _multi_host_launch() -> str | None:
  """The multi-host launcher found in the environment, or None."""
  env = os.environ

  def count(name):
    try:
      return int(env.get(name, "1") or "1")
    except ValueError:
      return 1

  if env.get("JAX_COORDINATOR_ADDRESS"):
    return "JAX_COORDINATOR_ADDRESS"
  slurm = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_PROCID",
           "SLURM_LOCALID")  # inside srun, as jax's own SLURM detection needs
  if all(k in env for k in slurm) and count("SLURM_NTASKS") > 1:
    return "SLURM"
  if "OMPI_MCA_orte_hnp_uri" in env and count("OMPI_COMM_WORLD_SIZE") > 1:
    return "Open MPI"
  hosts = env.get("TPU_WORKER_HOSTNAMES") or env.get(
      "TPU_PROCESS_ADDRESSES") or ""
  if len([h for h in hosts.split(",") if h.strip()]) > 1:
    return "Cloud TPU pod"
  if env.get("MEGASCALE_COORDINATOR_ADDRESS"):
    return "multislice TPU"
  return None


def initialize_distributed(*, force: bool | None = None) -> bool:
  """Join the processes of a multi-host run; call it before any other JAX
  call (main does so first). Returns whether `jax.distributed` is running.

  Multi-host is detected from the environment: JAX_COORDINATOR_ADDRESS (with
  JAX_NUM_PROCESSES and JAX_PROCESS_ID, read here), SLURM inside `srun`
  with more than one task, Open MPI's `mpirun`, or a Cloud TPU pod; then
  `jax.distributed.initialize()` fills in the rest. Single-host it does
  nothing. `force=True` always initializes (e.g. a TPU pod that sets no
  environment variables), `force=False` never does.
  """
  is_initialized = getattr(jax.distributed, "is_initialized", None)
  if is_initialized is not None and is_initialized():
    return True
  if force is False or (force is None and _multi_host_launch() is None):
    return False
  kwargs = {}
  for arg, name in (("num_processes", "JAX_NUM_PROCESSES"),
                    ("process_id", "JAX_PROCESS_ID")):
    if os.environ.get(name):
      try:
        kwargs[arg] = int(os.environ[name])
      except ValueError:
        raise ValueError(
            f"{name}: {os.environ[name]!r} is not an integer") from None
  jax.distributed.initialize(**kwargs)
  return True
