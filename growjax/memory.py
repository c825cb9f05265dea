"""The memory model: bytes per device of one train step, the remat policy that
fits, and the nearest mesh or microbatching when none does.

Plain arithmetic on a `Workload` (a model shape, its batch and sequence, the
mesh it is split over and the remat policy): nothing here runs a model, so
a run is refused before anything compiles, and the dry run prices every
stage under every policy.

Memory per device follows `growjax.parallel`'s sharding exactly, in
arithmetic: the same rules and the same rule walk (`growjax.logical`), on a
dict of mesh axis sizes instead of devices. Activations are priced per remat
policy (`model.REMAT`: none, dots, offload, full) from what the backward pass
keeps (`activation_bytes`); `fastest_remat` picks the default policy from them
and `fit_or_explain` refuses, in one line with a fix, a run that cannot fit.
`resolve_remat` is the one place "auto" becomes a policy (through
`dry_run.stage_remat`, for the trainer and the plan alike).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import flax.linen as nn
import jax

from growjax import checks
from growjax import logical
from growjax import model as model_lib
from growjax import params as params_lib
from growjax.config import ModelConfig
from growjax.model import REMAT  # fastest first


@dataclasses.dataclass(frozen=True)
class Workload:
  """One train step as the memory model prices it: the arguments every
  function below shares (`dataclasses.replace` varies one)."""
  cfg: ModelConfig  # the model's shape and compute dtype
  batch_size: int  # global sequences per step
  seq_len: int  # tokens per sequence
  # Mesh axis sizes, dict(data=, fsdp=, tensor=); a missing axis is 1.
  mesh: dict = dataclasses.field(default_factory=dict)
  # Logical-axis rule overrides as `c.mesh.rules` takes them; None: the
  # defaults (`logical.RULES`).
  rules: Any = None
  microbatches: int = 1  # slices of the batch per optimizer update
  # A policy of `REMAT`; "auto" only where the policy is chosen
  # (`fit_or_explain`, `resolve_remat`).
  remat: str = "none"
  loss_chunk: int | None = None  # positions per unembedding chunk; None: whole logits
  flash: bool | None = None  # cuDNN flash attention; None: as the model takes it here

  def __post_init__(self):
    checks.one_of("remat", self.remat, REMAT + ("auto",))


# ---------------------------------------------------------------- memory
#
# A rule's mesh axes lose those of size 1 and those an earlier dimension took,
# then trailing axes are dropped until their product divides the dimension;
# none left: replicated. So a dimension that does not divide is replicated,
# not padded (`logical.spec`).

def param_shapes(cfg: ModelConfig) -> dict[str, tuple[tuple[str, ...],
                                                      tuple[int, ...]]]:
  """Path -> (logical axes, shape) of every parameter `model.init` creates,
  read from the parameter table (`growjax.params`)."""
  return {path: (p.axes, p.shape(cfg))
          for path, p in params_lib.of(cfg).items()}


def local_param_count(cfg: ModelConfig, mesh: dict, rules=None) -> int:
  """Parameters one device holds under `growjax.parallel`'s sharding on a
  mesh of these axis sizes (`rules`: None for `logical.RULES`, or overrides
  as `c.mesh.rules` takes them): embed over fsdp, mlp/heads/vocab over
  tensor, a dimension that does not divide replicated."""
  sizes = logical.mesh_sizes(mesh)
  rules = logical.rules_from_config(rules)
  return sum(
      math.prod(d // n for d, n in
                zip(shape, logical.shard_counts(axes, shape, sizes, rules)))
      for axes, shape in param_shapes(cfg).values())


def local_batch_size(batch_size: int, mesh: dict, rules=None) -> int:
  """Sequences per device: rows split as `parallel.batch_sharding` splits
  them, over the `batch` rule's mesh axes (data x fsdp). A batch that does
  not divide raises, as it cannot be laid out."""
  batch_size = checks.positive_int("batch_size", batch_size)
  sizes = logical.mesh_sizes(mesh)
  n = math.prod(sizes[a] for a in
                logical.batch_axes(sizes, logical.rules_from_config(rules)))
  if batch_size % n:
    raise ValueError(
        f"batch_size: {batch_size} does not divide over the {n} devices of "
        "the batch's mesh axes (data x fsdp)")
  return batch_size // n


# ---------------------------------------------------------------- activations
#
# What the backward pass keeps, counted from the residuals JAX saves for
# growjax's block (the scan's stacked outputs in the jaxpr of jax.grad; XLA
# stores every one: tests/test_memory_model.py checks the count exactly and
# the total against XLA's buffer assignment).

# Share of the device's limit a policy chosen by `fastest_remat` may fill.
# The estimate came within +1%..+8% of XLA's own buffer assignment (never
# under) on an H200, one device (125M, 350M, 1.3B; 16k-32k tokens; every
# policy); the margin covers what it was not measured on or leaves out:
# collectives' buffers on a sharded mesh, cuBLAS/cuDNN workspaces, allocator
# fragmentation.
SAFETY = 0.85
GIB = 2.0**30


@functools.cache
def _gelu_saved() -> int:
  """[..., F] arrays the backward of flax's GeLU keeps (its input and the
  tanh form's intermediates): 5 under jax 0.10, 4 under 0.11. Read from
  `jax.vjp` on a tiny array, as autodiff rules change between versions."""
  x = jax.numpy.zeros((2, 3))
  _, backward = jax.vjp(nn.gelu, x)
  return sum(leaf.shape == x.shape for leaf in jax.tree.leaves(backward))


def flash_attention(cfg: ModelConfig) -> bool:
  """Whether the model takes cuDNN's flash attention on this backend (GPU,
  bf16, causal, head_dim <= 128): then no [T, T] scores are kept."""
  # pylint: disable-next=protected-access
  return model_lib._attention_implementation(cfg, None) == "cudnn"


def _block_weights(cfg: ModelConfig, sizes: dict, rules) -> float:
  """Elements of one layer's matmul weights (the table's hidden matrices:
  q, k, v, o, wi, wo and SwiGLU's wg) on one device."""
  shapes = param_shapes(cfg)
  return sum(
      math.prod(d // n for d, n in zip(
          shapes[path][1], logical.shard_counts(*shapes[path], sizes, rules)))
      for path, p in params_lib.of(cfg).items() if p.mup == "hidden"
  ) / cfg.n_layers


def activation_bytes(work: Workload) -> dict[str, float]:
  """Activation bytes per device of one microbatch's forward and backward.

  b = local_batch_size / microbatches rows of s = seq_len tokens; a = bytes
  of the compute dtype (`cfg.dtype`); t_H, t_F, t_V: how many ways the mesh
  splits heads, mlp and vocab (1 where the dimension does not divide).

  One layer, per token, with nothing recomputed (what "none" keeps):
    residual   24 D + 16        float32: each LayerNorm's three [D] values
                                (x - mean, 2 (x - mean), x-hat) and two [1]
                                (rsqrt(var + eps) and its derivative)
    matmul_io  a (2 D           the LayerNorm outputs (matmul inputs)
                + 4 H K / t_H   q and k after positions, v, attention output
                + (g + 1) F     GeLU: its output (the next matmul's input)
                  / t_F)        and the g arrays its backward keeps (its
                                input and its tanh form's intermediates:
                                g = 4 under jax 0.11, 5 under 0.10; read by
                                `_gelu_saved`)
    softmax    4 H / t_H        flash (cuDNN): the log-sum-exp
               ((4 + a) H s     XLA's attention: the float32 softmax and its
                + 8 H) / t_H    compute-dtype copy, and two [1] statistics
  and per layer, not per token, a copy of the layer's matmul weights in the
  compute dtype (a x the local elements) when a < 4 (float32 computes on the
  parameters themselves). Summed over tokens: `layer`.

  Kept across the L scanned layers (`saved`), by policy:
    none     L x layer
    dots     L x (4 D + a (4 H K / t_H + D + F / t_F)) b s: the float32
             block input, and the tensors growjax.model tags and saves
             (`model.SAVED`: q, k, v, the attention's context, its output
             projection, the MLP's input projection)
    offload  L x 4 D b s: the block inputs; the matmul outputs of "dots"
             go to host memory (`host`)
    full     L x 4 D b s: the block inputs alone
  `working`, one layer's set again while its backward runs (recomputed,
  or its gradients): `layer`, plus for offload one layer's matmul outputs
  coming back from the host.
  `head`: the final LayerNorm ((12 + a) D b s) and the logits, float32
  [b, s, V / t_V] and their gradient in the compute dtype ((4 + a) V b s /
  t_V); with `loss_chunk` set, [b, chunk, V / t_V] of them (the loss is
  computed chunk by chunk).

  total = saved + max(working, head): the head's buffers are freed before
  the layers' backward needs its working set.
  Accuracy: the saved terms are exact up to the [D] vectors per layer left
  out (the jaxpr's residuals, 0.02% at D = 64). `memory_per_device`'s total
  came within +1.4%..+7.4% of XLA's buffer assignment of the whole train
  step (argument + temp bytes; the same as the peak a step reached) on an
  H200, bf16 with cuDNN attention, one device: 125M, 350M and 1.3B, 16k and
  32k tokens per step, V 8,000 and 32,000, every policy (13 runs); and
  within -1.9%..+12.9% on CPU, float32 with XLA's attention (11 runs, D =
  64): the working set of "dots" is overcounted where XLA fuses the
  recomputed GeLU into its backward. Not measured: meshes of several
  devices (collectives' buffers), the chunked loss. Left out: the int32
  token batch, the optimizer update's temporaries.
  """
  cfg = work.cfg
  policy = checks.one_of("remat", work.remat, REMAT)
  s = checks.positive_int("seq_len", work.seq_len)
  m = checks.positive_int("microbatches", work.microbatches)
  sizes = logical.mesh_sizes(work.mesh)
  rules = logical.rules_from_config(work.rules)
  rows = local_batch_size(work.batch_size, sizes, rules)
  if rows % m:
    raise ValueError(f"microbatches: {m} does not divide the {rows} "
                     "sequences of a device's batch")
  b = rows // m
  chunk = s if work.loss_chunk is None else min(
      checks.positive_int("loss_chunk", work.loss_chunk), s)
  flash = flash_attention(cfg) if work.flash is None else checks.boolean(
      "flash", work.flash)
  a = 4 if cfg.dtype == "float32" else 2
  d, h, hk, f, v = (cfg.d_model, cfg.n_heads, cfg.n_heads * cfg.head_dim,
                    cfg.d_ff, cfg.vocab_size)
  # Each name alone: a mesh axis is used once per array, not across them.
  t_h, t_f, t_v = (
      logical.shard_counts((name,), (dim,), sizes, rules)[0]
      for name, dim in (("heads", h), ("mlp", f), ("vocab", v)))
  softmax = 4 * h if flash else (4 + a) * h * s + 8 * h
  layer_per_token = (24 * d + 16
                     + a * (2 * d + 4 * hk / t_h
                            + (_gelu_saved() + 1) * f / t_f)
                     + softmax / t_h)
  weights = a * _block_weights(cfg, sizes, rules) if a < 4 else 0.0
  layer = b * s * layer_per_token + weights
  dots = b * s * a * (4 * hk / t_h + d + f / t_f)
  inputs = b * s * 4 * d
  saved = cfg.n_layers * {"none": layer, "dots": inputs + dots,
                          "offload": inputs, "full": inputs}[policy]
  working = layer + (dots if policy == "offload" else 0.0)
  head = b * s * (12 + a) * d + b * chunk * (4 + a) * v / t_v
  return {"saved": float(saved), "working": float(working),
          "head": float(head), "total": float(saved + max(working, head)),
          "host": float(cfg.n_layers * dots if policy == "offload" else 0.0)}


def memory_per_device(work: Workload, *, param_bytes: int = 4,
                      opt_bytes: int = 8) -> dict[str, float]:
  """Estimated bytes per device of one train step of `work.cfg` on
  `work.mesh` (dict(data=, fsdp=, tensor=); a missing axis is 1), sharded as
  `growjax.parallel` shards (`rules` as in `local_param_count`), the global
  `batch_size` split into `microbatches`.

  params: `local_param_count` x param_bytes (float32 master weights:
    embed over fsdp, mlp/heads/vocab over tensor, so LayerNorm vectors only
    over fsdp);
  optimizer: the same count x opt_bytes (AdamW's two float32 moments: 8);
  gradients: the same count x param_bytes, twice with microbatches > 1 (the
    running sum and the current microbatch's);
  activations: `activation_bytes(...)["total"]` (see there, with its
    accuracy); host: bytes the "offload" policy keeps in host memory.
  total: params + optimizer + gradients + activations (device memory).
  """
  sizes = logical.mesh_sizes(work.mesh)
  param_bytes = checks.positive_int("param_bytes", param_bytes)
  opt_bytes = checks.positive_int("opt_bytes", opt_bytes)
  act = activation_bytes(dataclasses.replace(work, mesh=sizes))
  n = local_param_count(work.cfg, sizes, work.rules)
  microbatches = work.microbatches
  out = {
      "params": float(n * param_bytes),
      "optimizer": float(n * opt_bytes),
      "gradients": float(n * param_bytes * (2 if microbatches > 1 else 1)),
      "activations": act["total"],
  }
  out["total"] = sum(out.values())
  out["host"] = act["host"]
  return out


# ---------------------------------------------------------------- fitting

def device_memory_bytes() -> int | None:
  """What XLA may allocate on one local device: its allocator's
  `bytes_limit` (on a GPU, 75% of the memory unless
  XLA_PYTHON_CLIENT_MEM_FRACTION says otherwise: 104.9 GiB of an H200's
  139.8); None where the backend reports none (CPU)."""
  stats = jax.local_devices()[0].memory_stats()
  return stats.get("bytes_limit") if stats else None


def _totals(work: Workload) -> dict[str, float]:
  return {p: memory_per_device(dataclasses.replace(work, remat=p))["total"]
          for p in REMAT}


def _policies(policies) -> tuple[str, ...]:
  """`policies` checked, in `REMAT`'s order (fastest first)."""
  chosen = {checks.one_of("policies", p, REMAT) for p in policies}
  if not chosen:
    raise ValueError("policies: empty; expected some of "
                     f"{list(REMAT)}")
  return tuple(p for p in REMAT if p in chosen)


def _fastest(totals: dict[str, float], device_bytes: float,
             policies=REMAT) -> str | None:
  return next((p for p in policies if totals[p] <= SAFETY * device_bytes),
              None)


def _auto(totals: dict[str, float], device_bytes: float, policies) -> str:
  """'auto': the fastest that fits within `SAFETY`, else the least memory."""
  return (_fastest(totals, device_bytes, policies)
          or min(policies[::-1], key=totals.get))


def fastest_remat(work: Workload, device_bytes: float | None, *,
                  policies=REMAT) -> str:
  """The default remat policy ('auto'; `work.remat` is not read): the first
  of `policies` (those the model has; in `REMAT`'s order, fastest first)
  whose `memory_per_device` total is at most `SAFETY` of `device_bytes`; the
  fastest when no limit is known (None: CPU); the least memory when none
  fits (`fit_or_explain` says whether even that runs)."""
  policies = _policies(policies)
  if device_bytes is None:
    return policies[0]
  totals = _totals(work)
  device_bytes = checks.positive_number("device_bytes", device_bytes)
  return _auto(totals, device_bytes, policies)


def resolve_remat(work: Workload, device_bytes: float | None, *,
                  policies=REMAT) -> tuple[str, str | None]:
  """(the policy a run of `work` takes, `fit_or_explain`'s refusal or None):
  `work.remat`, or for 'auto' `fastest_remat`'s choice. The one place 'auto'
  becomes a policy (the trainer and the dry run both ask here)."""
  policy = (fastest_remat(work, device_bytes, policies=policies)
            if work.remat == "auto" else work.remat)
  return policy, fit_or_explain(work, device_bytes, policies=policies)


def _mesh_text(sizes: dict) -> str:
  return ", ".join(f"{k}={sizes[k]}" for k in logical.MESH_AXES)


def _suggestions(work: Workload, device_bytes: float, max_devices: int,
                 policies) -> list[str]:
  """The nearest mesh (the same devices rearranged, else fsdp or tensor
  multiplied) and the fewest microbatches under which some policy fits."""
  def fit(**change):
    try:
      totals = _totals(dataclasses.replace(work, **change))
    except ValueError:  # the batch does not split that way
      return None
    p = _fastest(totals, device_bytes, policies)
    return None if p is None else (p, totals[p])

  sizes = logical.mesh_sizes(work.mesh)
  n = math.prod(sizes.values())
  same = sorted(
      ({"data": n // (fs * t), "fsdp": fs, "tensor": t}
       for t in range(1, n + 1) if n % t == 0
       for fs in range(1, n // t + 1) if (n // t) % fs == 0),
      key=lambda m: (m["tensor"], m["fsdp"]))
  more = [{**sizes, axis: sizes[axis] * k}
          for k in (2**i for i in range(1, 31)) if n * k <= max_devices
          for axis in ("fsdp", "tensor")]
  out = []
  for mesh in [m for m in same if m != sizes] + more:
    found = fit(mesh=mesh)
    if found:
      out.append(f"mesh {_mesh_text(mesh)} ({math.prod(mesh.values())} "
                 f"devices: {found[1] / GIB:.1f} GiB, remat={found[0]!r})")
      break
  rows = local_batch_size(work.batch_size, sizes, work.rules)
  for m in range(work.microbatches + 1, rows + 1):
    found = rows % m == 0 and fit(microbatches=m)
    if found:
      out.append(f"microbatches={m} ({found[1] / GIB:.1f} GiB, "
                 f"remat={found[0]!r})")
      break
  return out


def fit_or_explain(work: Workload, device_bytes: float | None, *,
                   policies=REMAT, max_devices: int = 4096) -> str | None:
  """None when the run fits; else one line for the user, e.g.

    needs 152.3 GiB per device with remat='full' (the least memory),
    104.9 GiB on the device: use mesh data=1, fsdp=2, tensor=1 (2 devices:
    78.1 GiB, remat='dots') or microbatches=4 (95.0 GiB, remat='full')

  `work.remat`: a policy of `REMAT`, or 'auto' (`fastest_remat`'s choice
  among `policies`, those the model has). A run is refused when the estimate
  exceeds `device_bytes` itself (None: no limit known, nothing refused);
  what it suggests fits within `SAFETY` of it, as `fastest_remat` chooses:
  for a set policy that does not fit, the fastest of `policies` that does;
  when none does, the nearest mesh (the same devices rearranged, else up to
  `max_devices`) and the fewest microbatches.
  """
  if device_bytes is None:
    return None
  device_bytes = checks.positive_number("device_bytes", device_bytes)
  policies = _policies(policies)
  totals = _totals(work)
  least = min(policies[::-1], key=totals.get)
  policy = (_auto(totals, device_bytes, policies) if work.remat == "auto"
            else work.remat)
  if totals[policy] <= device_bytes:
    return None
  least = " (the least memory)" if totals[policy] <= totals[least] else ""
  head = (f"needs {totals[policy] / GIB:.1f} GiB per device with "
          f"remat={policy!r}{least}, {device_bytes / GIB:.1f} GiB on the "
          "device")
  other = _fastest(totals, device_bytes, policies)
  if other is not None:
    return f"{head}: remat={other!r} fits ({totals[other] / GIB:.1f} GiB)"
  fixes = _suggestions(work, device_bytes, max_devices, policies)
  if not fixes:
    return (f"{head}, and no mesh of up to {max_devices} devices nor more "
            "microbatches fits")
  return f"{head}: use " + " or ".join(fixes)
