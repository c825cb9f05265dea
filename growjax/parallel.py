"""The device mesh, and logical-axis rules -> `NamedSharding`.

Layers name logical axes only (`growjax.params`); `growjax.logical` holds
the rules that map those names to the mesh axes `data`, `fsdp` and `tensor`,
and the walk that applies them, so a parameter's sharding and its growth
(`growjax.grow` pads along the same names) cannot disagree. This module puts
that walk on a real mesh. Everything is classic GSPMD: `jax.jit` with
`NamedSharding` in/out shardings on a mesh of `Auto` axes. State is built on
the devices, never on the host (big_vision):

    mesh = parallel.make_mesh(**exp.mesh.shape(jax.device_count()))
    rules = parallel.rules_from_config(exp.mesh.rules)
    init = functools.partial(model.init, cfg)
    p_sh = parallel.shardings(jax.eval_shape(init, key), mesh, rules)
    params = jax.jit(init, out_shardings=p_sh)(key)          # sharded at birth
    state_sh = parallel.state_shardings(jax.eval_shape(make_state, params), p_sh, mesh)
    step = jax.jit(train_step, in_shardings=(state_sh, parallel.batch_sharding(mesh, rules)),
                   out_shardings=(state_sh, None), donate_argnames=("state",))
    batch = parallel.global_batch(local_numpy_batch, mesh, rules)

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

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from growjax import checks
from growjax import logical
from growjax import model as model_lib
# Re-exported: the product names them as parallel.X.
from growjax.logical import MESH_AXES, RULES, rules_from_config  # noqa: F401


# ----------------------------------------------------------------- mesh ---

def make_mesh(data: int, fsdp: int, tensor: int, *,
              devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A ("data", "fsdp", "tensor") mesh of Auto axes over `devices`
  (default: every device of every process).

  The sizes are explicit and their product is the number of devices: an
  experiment's `Mesh.shape(n_devices)` resolves -1 (the only mesh
  arithmetic). Errors name the field.
  """
  sizes = {name: checks.positive_int(f"mesh.{name}", value) for name, value
           in zip(MESH_AXES, (data, fsdp, tensor))}
  devices = jax.devices() if devices is None else list(devices)
  if math.prod(sizes.values()) != len(devices):
    raise ValueError(
        f"mesh: data * fsdp * tensor = {data} * {fsdp} * {tensor} = "
        f"{math.prod(sizes.values())}, but there are {len(devices)} devices")
  # jax.make_mesh defaults to Explicit axes in new JAX; growjax is GSPMD
  # (jit + NamedSharding), so ask for Auto. Keywords: the positional order of
  # make_mesh's optional arguments has changed between releases.
  auto = (jax.sharding.AxisType.Auto,) * len(MESH_AXES)
  return jax.make_mesh(tuple(sizes.values()), MESH_AXES, axis_types=auto,
                       devices=devices)


def logical_to_spec(axes: Sequence[str | None], shape: Sequence[int],
                    mesh: Mesh | Mapping[str, int], rules: Any = RULES) -> P:
  """`logical.spec` as a PartitionSpec, on `mesh` or on a dict of its axis
  sizes."""
  sizes = dict(mesh.shape) if isinstance(mesh, Mesh) else dict(mesh)
  return P(*logical.spec(axes, shape, sizes, rules))


# ------------------------------------------------------------ shardings ---

def shardings(tree: Any, mesh: Mesh, rules: Any = RULES, *,
              axes: Any = None) -> Any:
  """NamedShardings for params (or growth masks): arrays or
  `jax.ShapeDtypeStruct`s, with logical axes from `model.logical_axes`
  (or `axes`, a tree of axis-name tuples matching `tree`)."""
  rules = logical.normalize(rules)
  axes = model_lib.logical_axes(tree) if axes is None else axes
  return jax.tree.map(
      lambda x, names: NamedSharding(
          mesh, logical_to_spec(names, x.shape, mesh, rules)),
      tree, axes)


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


def batch_sharding(mesh: Mesh, rules: Any = RULES) -> NamedSharding:
  """Rows over the `batch` rule's mesh axes (data x fsdp), every other
  dimension (time, ...) replicated; fits arrays of any rank."""
  axes = logical.batch_axes(dict(mesh.shape), rules)
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
  axes = logical.batch_axes(dict(mesh.shape), rules)
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


def process_rows(mesh: Mesh, rules: Any = RULES, *,
                 process: int | None = None) -> tuple[int, int]:
  """Which rows of every global batch `process` (default: this one) feeds
  to `global_batch`: block `index` of `count` equal blocks, so that the
  processes' rows, in process order, are the single-process batch row for
  row. (0, 1) single-host.

  The batch axes (data x fsdp) must split over the processes, each holding
  its own contiguous share of the batch shards; a mesh where processes share
  batch shards (a `tensor` axis, or any non-batch axis, spanning processes:
  they would each need the same rows) raises a one-line ValueError naming
  the mesh, before anything compiles.
  """
  axes = logical.batch_axes(dict(mesh.shape), rules)
  index = [mesh.axis_names.index(a) for a in axes]
  sizes = [mesh.devices.shape[i] for i in index]
  held: dict[int, set[int]] = {}  # process -> the flat batch shards it holds
  for coords, device in np.ndenumerate(mesh.devices):
    shard = int(np.ravel_multi_index([coords[i] for i in index], sizes)) if index else 0
    held.setdefault(device.process_index, set()).add(shard)
  if len(held) == 1:
    return 0, 1
  me = jax.process_index() if process is None else process
  shards = math.prod(sizes)
  ordered = sorted(held.items(), key=lambda kv: min(kv[1]))
  per = len(ordered[0][1])
  per_process = mesh.devices.size // len(held)
  layout = f"mesh {dict(mesh.shape)} over {len(held)} processes of {per_process} devices"
  for k, (process_k, mine) in enumerate(ordered):
    if mine == set(range(k * per, (k + 1) * per)):
      continue
    shared = sorted(p for p, s in held.items() if s & mine)
    if len(shared) > 1:
      raise ValueError(
          f"{layout}: processes {shared[0]} and {shared[1]} would feed the same "
          "rows of the batch, as an axis other than data and fsdp spans "
          f"processes; keep mesh.tensor within one process's {per_process} devices")
    raise ValueError(f"{layout}: process {process_k}'s batch shards "
                     f"{sorted(mine)} are not one block of the {shards}")
  order = [p for p, _ in ordered]
  return order.index(me), len(order)


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
