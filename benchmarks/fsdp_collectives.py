r"""What the train step communicates under data=2 and fsdp=2, against what
FSDP needs at the least.

    python benchmarks/fsdp_collectives.py              # 1.3B at seq 2048 (CPU, ~10 min)
    python benchmarks/fsdp_collectives.py --layers 2   # the same widths, 2 layers
    python benchmarks/fsdp_collectives.py --tiny       # a toy model, seconds

Compiles only, on 8 simulated CPU devices (2 of them), from abstract state
(nothing is allocated): growjax's train step (growjax.train.step, AdamW of
growjax.train.optimizer, state shardings of growjax.train.state), jitted as
the loop jits it, for the 1.3B shape of benchmarks/scaling.py (16 x 2048
tokens, vocab 32,000, remat "dots"), under data=2 and fsdp=2, each two ways:

  before  the step without the model's sharding constraints (`mesh=None`:
          what the loop compiled before growjax.constraints);
  after   with them (`mesh=` the mesh, as the loop now jits it).

Every collective (growjax.collectives: the HLO right after SPMD
partitioning, each loop trip counted) is sorted by kind, dtype and role:

  weight      an all-gather of a matmul weight (matched by its shape);
  norm        an all-gather of a norm's scale or bias;
  gradient    a reduce-scatter or all-reduce of a parameter's gradient;
  lookup      the embedding lookup (jnp.take) and its transpose;
  scalar      loss and norm sums;
  tokens      integer collectives: the batch's tokens (microbatch slicing);
  activation  anything else: activations resharded mid-model.

FSDP's least: one all-gather of each matmul weight in the compute dtype
(bfloat16) for the forward pass and one more for the backward pass (under
remat it is recomputed; without, keeping the forward's would hold every
layer's whole weights, what FSDP exists not to do); norm scales and
biases are gathered in float32 (norms compute in float32); one
reduce-scatter of each gradient, in the dtype data parallelism all-reduces
it (the matmuls' bfloat16 output; float32 for norms). The embedding table is
left out of it: its lookup is its own row.

Prints a table and writes benchmarks/results/fsdp_collectives.json.
"""

from __future__ import annotations

import os
import sys

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=8")
os.environ["JAX_PLATFORMS"] = "cpu"

import argparse  # noqa: E402
import collections  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import pathlib  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

from growjax import ModelConfig, collectives, model, parallel  # noqa: E402
from growjax.train import optimizer as opt_lib  # noqa: E402
from growjax.train import state as state_lib  # noqa: E402
from growjax.train import step as step_lib  # noqa: E402

# benchmarks/scaling.py's 1.3B run, and a toy with the same roles
FULL = dict(d_model=2048, n_layers=24, n_heads=16, head_dim=128, d_ff=8192,
            vocab=32_000, seq_len=2048, batch=16)
TINY = dict(d_model=48, n_layers=2, n_heads=4, head_dim=16, d_ff=160,
            vocab=384, seq_len=32, batch=8)
MESHES = {"data=2": dict(data=2, fsdp=1, tensor=1),
          "fsdp=2": dict(data=1, fsdp=2, tensor=1)}
RESULTS = pathlib.Path(__file__).parent / "results"


def config(shape: dict) -> ModelConfig:
  return ModelConfig(vocab_size=shape["vocab"], d_model=shape["d_model"],
                     n_layers=shape["n_layers"], n_heads=shape["n_heads"],
                     head_dim=shape["head_dim"], d_ff=shape["d_ff"],
                     max_len=shape["seq_len"], pos="xpos", dtype="bfloat16")


def step_collectives(cfg: ModelConfig, mesh_shape: dict, batch: int,
                     seq_len: int, *, remat: str = "dots",
                     constrained: bool = True):
  """Every collective of growjax's train step on 2 devices, jitted as the
  loop jits it (state and batch shardings in, state out, state donated)."""
  mesh = parallel.make_mesh(**mesh_shape, devices=jax.devices()[:2])
  lr = optax.constant_schedule(1e-4)
  optimizer = opt_lib.make(opt_lib.Optimizer(), lr)
  abstract, shardings = state_lib.abstract_state(cfg, optimizer, (), mesh,
                                                 parallel.RULES)
  batch_sh = parallel.batch_sharding(mesh)
  step = jax.jit(
      step_lib.make_train_step(cfg, optimizer, lr, remat=remat,
                               mesh=mesh if constrained else None),
      in_shardings=(shardings, batch_sh), out_shardings=(shardings, None),
      donate_argnames=("state",))
  tokens = jax.ShapeDtypeStruct((batch, seq_len + 1), jnp.int32,
                                sharding=batch_sh)
  return collectives.collectives(
      collectives.partitioned_hlo(step.lower(abstract, tokens)))


def weights(cfg: ModelConfig) -> dict[tuple[int, ...], list[str]]:
  """Sorted shape of each parameter (one layer's slice for stacked layer
  parameters) -> the parameters of that shape."""
  out = collections.defaultdict(list)
  for path, axes in model.param_axes(cfg).items():
    sizes = model.axis_sizes(cfg)
    shape = tuple(sizes[a] for a in axes if a != "layers")
    out[tuple(sorted(shape))].append(path)
  return dict(out)


def role(c: collectives.Collective, table) -> tuple[str, str]:
  """(role, what) of a collective; see the module docstring."""
  shapes = [tuple(sorted(s)) for s in c.shapes]
  if "_take" in c.op:
    return "lookup", "embedding " + ("backward" if "transpose" in c.op
                                     else "forward")
  if all(s == () for s in shapes):
    return "scalar", "sums"
  if c.dtype[0] in "su":  # integers: the batch's tokens moving
    return "tokens", c.op.split("/")[-2] if "/" in c.op else c.op
  if len(shapes) == 1 and shapes[0] in table:
    names = ", ".join(table[shapes[0]])
    if c.kind == "all-gather":
      return "weight" if len(shapes[0]) > 1 else "norm", names
    if c.kind in ("reduce-scatter", "all-reduce"):
      return "gradient", names
  return "activation", c.op.split("/")[-2] if "/" in c.op else c.op


def rows_of(found, table) -> list[dict]:
  """Collectives grouped by kind, dtype, role and what, per step."""
  groups = collections.defaultdict(lambda: [0, 0, 0.0])
  for c in found:
    key = (c.kind, c.dtype, *role(c, table))
    groups[key][0] += c.per_call
    groups[key][1] += c.per_call * c.bytes
    groups[key][2] += c.per_call * c.traffic
  return [dict(kind=k[0], dtype=k[1], role=k[2], what=k[3], per_step=v[0],
               mb=v[1] / 1e6, traffic_mb=v[2] / 1e6)
          for k, v in sorted(groups.items())]


def minimum(cfg: ModelConfig) -> dict:
  """FSDP's least per step (module docstring): counts and MB of weight
  gathers and gradient reduce-scatters, the embedding table left out."""
  sizes = model.axis_sizes(cfg)
  passes = 2
  out = dict(weight_gathers=0, weight_gather_mb=0.0, gradient_reductions=0,
             gradient_mb=0.0)
  for path, axes in model.param_axes(cfg).items():
    if path == "embed":
      continue
    layers = cfg.n_layers if axes[0] == "layers" else 1
    shape = [sizes[a] for a in axes if a != "layers"]
    itemsize = 4 if len(shape) == 1 else 2  # norms in float32, matmuls bf16
    mb = math.prod(shape) * itemsize / 1e6
    out["weight_gathers"] += passes * layers
    out["weight_gather_mb"] += passes * layers * mb
    out["gradient_reductions"] += layers
    out["gradient_mb"] += layers * mb
  return out


def summary(rows) -> dict:
  def total(pred, field="per_step"):
    return sum(r[field] for r in rows if pred(r))
  weight = lambda r: r["role"] in ("weight", "norm")
  return dict(
      weight_gathers=total(weight), weight_gather_mb=total(weight, "mb"),
      f32_matmul_weight_gathers=total(
          lambda r: r["role"] == "weight" and r["dtype"] == "f32"),
      gradient_reductions=total(lambda r: r["role"] == "gradient"),
      gradient_mb=total(lambda r: r["role"] == "gradient", "mb"),
      activation_collectives=total(lambda r: r["role"] == "activation"),
      activation_mb=total(lambda r: r["role"] == "activation", "mb"),
      all_to_alls=total(lambda r: r["kind"] == "all-to-all"),
      all_to_alls_outside_lookup=total(
          lambda r: r["kind"] == "all-to-all" and r["role"] != "lookup"),
      collectives=total(lambda r: True),
      traffic_mb_per_device=total(lambda r: True, "traffic_mb"))


def print_table(name, rows, s, least):
  print(f"\n{name}")
  print(f"  {'kind':15s} {'dtype':5s} {'role':10s} {'per step':>8s} "
        f"{'MB/step':>10s}  what")
  for r in rows:
    print(f"  {r['kind']:15s} {r['dtype']:5s} {r['role']:10s} "
          f"{r['per_step']:8d} {r['mb']:10.2f}  {r['what'][:60]}")
  print(f"  weight gathers {s['weight_gathers']} ({s['weight_gather_mb']:.0f} "
        f"MB; least {least['weight_gathers']}, "
        f"{least['weight_gather_mb']:.0f} MB), f32 matmul weight gathers "
        f"{s['f32_matmul_weight_gathers']}; gradient reductions "
        f"{s['gradient_reductions']} ({s['gradient_mb']:.0f} MB; least "
        f"{least['gradient_reductions']}, {least['gradient_mb']:.0f} MB); "
        f"activation collectives {s['activation_collectives']} "
        f"({s['activation_mb']:.0f} MB); all-to-alls {s['all_to_alls']}; "
        f"{s['traffic_mb_per_device']:.0f} MB sent per device")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--tiny", action="store_true", help="a toy model")
  parser.add_argument("--layers", type=int, default=None,
                      help="n_layers instead of the shape's")
  parser.add_argument("--remat", default="dots")
  parser.add_argument("--out", default=None)
  args = parser.parse_args(argv)
  shape = dict(TINY if args.tiny else FULL)
  if args.layers:
    shape["n_layers"] = args.layers
  model.remat_kind(args.remat)
  cfg = config(shape)
  table = weights(cfg)
  least = minimum(cfg)
  out = pathlib.Path(args.out) if args.out else (
      pathlib.Path("/tmp/fsdp_collectives_tiny.json") if args.tiny
      else RESULTS / "fsdp_collectives.json")
  result = dict(
      jax=jax.__version__, shape=shape, remat=args.remat,
      params=model.param_count(cfg),
      where="HLO after SPMD partitioning, 2 of 8 simulated CPU devices "
            "(growjax.collectives); MB are whole buffers per step, "
            "traffic_mb what each device sends (ring)",
      fsdp_least=least, runs=[])
  for mesh_name, mesh_shape in MESHES.items():
    for label, constrained in (("before", False), ("after", True)):
      start = time.perf_counter()
      rows = rows_of(step_collectives(cfg, mesh_shape, shape["batch"],
                                      shape["seq_len"], remat=args.remat,
                                      constrained=constrained), table)
      s = summary(rows)
      result["runs"].append(dict(mesh=mesh_name, constraints=label,
                                 compile_s=time.perf_counter() - start,
                                 summary=s, rows=rows))
      print_table(f"{mesh_name}, {label} (compiled in "
                  f"{time.perf_counter() - start:.0f} s)", rows, s, least)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(result, indent=1) + "\n")
  print(f"\nwrote {out}")


if __name__ == "__main__":
  sys.exit(main())
