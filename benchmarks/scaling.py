r"""Two-GPU scaling: 1.3B on 1 and 2 GPUs, the largest model fsdp=2 trains, and a
350M -> 1.3B growth on the 2-GPU mesh.

    python benchmarks/scaling.py          # nvidia-h200-x2
    python benchmarks/scaling.py --tiny   # 8 simulated CPU devices
    python benchmarks/scaling.py --overlap  # with XLA's GPU collective overlap flags

1. scaling: growjax's train step (growjax.train.step, AdamW of
   growjax.train.optimizer, state built sharded by growjax.train.state) for
   1.3B at seq 2048 with one global batch (16 x 2048) on 1 GPU, on 2 under
   data=2 and under fsdp=2: tokens/s, MFU per GPU (PaLM FLOPs over 989 TFLOP/s
   per GPU) and scaling efficiency = 2-GPU tok/s / (2 x 1-GPU tok/s).
2. largest: growjax.memory.memory_per_device predicts the largest model of a
   GPT-3-like family that trains on 2 GPUs with fsdp=2 (remat "full");
   a few steps of it confirm the prediction (stepping down if it fails), and
   the next size up is compiled to show its program does not fit.
3. growth: a 350M model (head_dim 128, so its heads grow into the 1.3B's) is
   trained a few steps on the fsdp=2 mesh, then grown into the 1.3B by msg
   (growjax.grow.grow and grow_opt_state under one jax.jit with the new
   state's out_shardings); reports compile and run time of the growth and the
   fixed-batch loss before and after, in bf16 and in float32.

A part that fails is recorded with its error and the run goes on (`--parts`
runs a subset). JAX may use 95% of each GPU's memory (XLA_PYTHON_CLIENT_
MEM_FRACTION, unless set). Writes benchmarks/results/scaling_h200x2.json:
machine, jax, matmul_bf16_tflops, runs (gpus, mesh, size, tokens_per_s,
mfu_vs_peak, scaling_efficiency, ...), largest_fsdp2, growth.
"""

from __future__ import annotations

import os
import sys

TINY = "--tiny" in sys.argv
if TINY and "xla_force_host_platform_device_count" not in os.environ.get(
    "XLA_FLAGS", ""):  # before jax is imported
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                             " --xla_force_host_platform_device_count=8")
if TINY:
  os.environ["JAX_PLATFORMS"] = "cpu"
# --overlap: the GPU flags MaxText trains with, so a layer's fsdp all-gathers
# and reduce-scatters run beside the previous layer's matmuls (the scan's
# collectives pipelined across iterations, the latency-hiding scheduler).
OVERLAP_FLAGS = ("--xla_gpu_enable_latency_hiding_scheduler=true"
                 " --xla_gpu_enable_pipelined_all_gather=true"
                 " --xla_gpu_enable_pipelined_reduce_scatter=true"
                 " --xla_gpu_enable_pipelined_all_reduce=true"
                 " --xla_gpu_enable_while_loop_double_buffering=true")
if "--overlap" in sys.argv:
  os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " " + OVERLAP_FLAGS
os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.95")

import argparse  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from train_speed import (  # noqa: E402
    PEAK_TFLOPS, matmul_tflops, program_bytes, use_compilation_cache)

from growjax import ModelConfig, checks, cost, grow, loss, memory, model, parallel  # noqa: E402
from growjax.train import optimizer as opt_lib  # noqa: E402
from growjax.train import state as state_lib  # noqa: E402
from growjax.train import step as step_lib  # noqa: E402

SIZES = {  # name: (d_model, n_layers, n_heads, head_dim, d_ff)
    "350M-k128": (1024, 24, 8, 128, 4096),
    "1.3B": (2048, 24, 16, 128, 8192),
    "2.7B": (2560, 32, 20, 128, 10240),
    "6.7B": (4096, 32, 32, 128, 16384),
    "13B": (5120, 40, 40, 128, 20480),
    "20B": (6144, 44, 48, 128, 24576),
    "30B": (7168, 48, 56, 128, 28672),
    # --tiny stand-ins, same roles
    "tiny-small": (32, 2, 2, 16, 128),
    "tiny": (64, 2, 4, 16, 256),
    "tiny-2x": (128, 2, 8, 16, 512),
    "tiny-4x": (256, 2, 16, 16, 1024),
}
FULL = dict(size="1.3B", small="350M-k128", seq_len=2048, batch=16,
            vocab=32_000, family=("1.3B", "2.7B", "6.7B", "13B", "20B", "30B"),
            steps=10, warmup=2)
TINY_RUN = dict(size="tiny", small="tiny-small", seq_len=32, batch=8,
                vocab=512, family=("tiny", "tiny-2x", "tiny-4x"), steps=2,
                warmup=1)
TINY_MEMORY_GIB = 8 / 1024  # pretend device for --tiny: tiny-2x fits, 4x not
RESULTS = pathlib.Path(__file__).parent / "results"


def config(size: str, run: dict, dtype: str = "bfloat16") -> ModelConfig:
  d, layers, heads, k, f = SIZES[size]
  return ModelConfig(vocab_size=run["vocab"], d_model=d, n_layers=layers,
                     n_heads=heads, head_dim=k, d_ff=f, max_len=run["seq_len"],
                     pos="xpos", dtype=dtype)


def mesh_of(gpus: int, data: int, fsdp: int):
  return parallel.make_mesh(data=data, fsdp=fsdp, tensor=1,
                            devices=jax.devices()[:gpus])


def device_limit() -> float:
  if TINY:
    return TINY_MEMORY_GIB * 2**30
  return (jax.devices()[0].memory_stats() or {}).get("bytes_limit", 0.0)


def batch_on(mesh, run, seed=1):
  tokens = jax.random.randint(jax.random.key(seed),
                              (run["batch"], run["seq_len"] + 1), 0,
                              run["vocab"], jnp.int32)
  return jax.device_put(tokens, parallel.batch_sharding(mesh))


def compile_step(cfg, mesh, run, remat):
  """(compiled train step, optimizer, state shardings, bytes per device)."""
  lr = optax.constant_schedule(1e-4)
  optimizer = opt_lib.make(opt_lib.Optimizer(), lr)
  abstract, shardings = state_lib.abstract_state(
      cfg, optimizer, (), mesh, parallel.RULES)
  batch_sh = parallel.batch_sharding(mesh)
  step = jax.jit(step_lib.make_train_step(cfg, optimizer, lr, remat=remat,
                                          mesh=mesh),
                 in_shardings=(shardings, batch_sh),
                 out_shardings=(shardings, None), donate_argnames=("state",))
  tokens = jax.ShapeDtypeStruct((run["batch"], run["seq_len"] + 1), jnp.int32,
                                sharding=batch_sh)
  compiled = step.lower(abstract, tokens).compile()
  return compiled, optimizer, shardings, program_bytes(compiled)


def train(cfg, mesh, run, remat, steps, warmup):
  """Trains `steps` timed steps; a row of tokens/s, memory and loss."""
  start = time.perf_counter()
  compiled, optimizer, shardings, need = compile_step(cfg, mesh, run, remat)
  row = {"compile_s": time.perf_counter() - start,
         "peak_memory_gib": need / 2**30 if need else None}
  limit = device_limit()
  if need and limit and need > limit:
    raise MemoryError(f"needs {need / 2**30:.2f} GiB of {limit / 2**30:.2f}")
  state = state_lib.init_state(cfg, optimizer, jax.random.key(0), shardings)
  tokens = batch_on(mesh, run)
  for _ in range(warmup):
    state, m = compiled(state, tokens)
  jax.block_until_ready(state)
  start = time.perf_counter()
  for _ in range(steps):
    state, m = compiled(state, tokens)
  jax.block_until_ready((state, m))
  row["step_s"] = (time.perf_counter() - start) / steps
  row["tokens_per_s"] = run["batch"] * run["seq_len"] / row["step_s"]
  row["loss"] = float(m["loss"])
  return row, state


STARTED = time.perf_counter()


def say(text: str):
  print(f"[{time.perf_counter() - STARTED:5.0f}s] {text}", flush=True)


def error_of(e: Exception) -> str:
  text = str(e).strip()
  msg = text.splitlines()[0][:200] if text else repr(e)
  oom = isinstance(e, MemoryError) or "RESOURCE_EXHAUSTED" in text
  return ("OOM: " if oom else f"{type(e).__name__}: ") + msg


def scaling(run, remat, peak, matmul) -> list[dict]:
  cfg = config(run["size"], run)
  rows = []
  for gpus, data, fsdp in ((1, 1, 1), (2, 2, 1), (2, 1, 2)):
    row = {"gpus": gpus, "mesh": {"data": data, "fsdp": fsdp, "tensor": 1},
           "size": run["size"], "params": model.param_count(cfg),
           "seq_len": run["seq_len"], "batch": run["batch"], "remat": remat}
    try:
      row.update(train(cfg, mesh_of(gpus, data, fsdp), run, remat,
                       run["steps"], run["warmup"])[0])
      tflops = cost.model_tflops_per_s(cfg, run["seq_len"],
                                       row["tokens_per_s"])
      row.update(model_tflops=tflops,
                 mfu_vs_peak=tflops / (peak * gpus) if peak else None,
                 mfu_vs_matmul=tflops / (matmul * gpus))
    except Exception as e:  # pylint: disable=broad-except
      traceback.print_exc()
      row["error"] = error_of(e)
    one = rows[0].get("tokens_per_s") if rows else None
    row["scaling_efficiency"] = (
        row["tokens_per_s"] / (gpus * one)
        if gpus > 1 and one and "tokens_per_s" in row else None)
    rows.append(row)
    say(f"{gpus} GPU {row['mesh']}: " + (row.get("error") or (
        f"{row['tokens_per_s']:,.0f} tok/s, MFU/GPU "
        f"{row['mfu_vs_peak'] or 0:.1%}, efficiency "
        + ("-" if row["scaling_efficiency"] is None
           else f"{row['scaling_efficiency']:.3f}") + ", "
        f"{row['peak_memory_gib'] or 0:.3g} GiB/device")))
  return rows


def largest(run, peak) -> dict:
  """The memory model's largest fsdp=2 model, confirmed by a short run."""
  mesh_sizes = {"data": 1, "fsdp": 2, "tensor": 1}
  limit = device_limit()
  predicted = {}
  for size in run["family"]:
    est = memory.memory_per_device(memory.Workload(
        config(size, run), batch_size=run["batch"], seq_len=run["seq_len"],
        mesh=mesh_sizes, remat="full"))
    predicted[size] = est["total"] / 2**30
  fits = [s for s in run["family"] if predicted[s] * 2**30 <= limit]
  out = {"mesh": mesh_sizes, "remat": "full", "device_gib": limit / 2**30,
         "predicted_gib": predicted, "predicted": fits[-1] if fits else None,
         "tried": []}
  print(f"memory model, GiB/device on fsdp=2: "
        f"{ {k: float(f'{v:.3g}') for k, v in predicted.items()} } of "
        f"{limit / 2**30:.3g}: predicts {out['predicted']}", flush=True)
  mesh = mesh_of(2, 1, 2)
  for size in reversed(fits):
    cfg = config(size, run)
    try:
      row, _ = train(cfg, mesh, run, "full", 3, 1)
      tflops = cost.model_tflops_per_s(cfg, run["seq_len"],
                                       row["tokens_per_s"])
      row.update(size=size, params=model.param_count(cfg),
                 mfu_vs_peak=tflops / (2 * peak) if peak else None)
      out["tried"].append(row)
      out["trained"] = size
      say(f"  {size}: trains, {row['tokens_per_s']:,.0f} tok/s, "
          f"{row['peak_memory_gib'] or 0:.3g} GiB/device")
      break
    except Exception as e:  # pylint: disable=broad-except
      out["tried"].append({"size": size, "error": error_of(e)})
      say(f"  {size}: {out['tried'][-1]['error']}")
  bigger = run["family"][len(fits)] if len(fits) < len(run["family"]) else None
  if bigger and out.get("trained") == out["predicted"]:
    try:  # the next size's compiled program, to show it does not fit
      need = compile_step(config(bigger, run), mesh, run, "full")[3]
      out["next_size"] = {"size": bigger, "program_gib": need / 2**30,
                          "fits": bool(need <= limit)}
      say(f"  {bigger}: compiled program needs {need / 2**30:.3g} GiB/device")
    except Exception as e:  # pylint: disable=broad-except
      out["next_size"] = {"size": bigger, "error": error_of(e)}
  return out


def growth(run) -> dict:
  """350M -> 1.3B by msg on the fsdp=2 mesh: time and fixed-batch losses."""
  small, big = config(run["small"], run), config(run["size"], run)
  mesh = mesh_of(2, 1, 2)
  _, state = train(small, mesh, run, "dots", 3, 0)  # a few real steps
  fixed = batch_on(mesh, run, seed=2)
  lr = optax.constant_schedule(1e-4)
  optimizer = opt_lib.make(opt_lib.Optimizer(), lr)

  def grow_fn(state, key):
    grown = grow.grow(state["params"], small, big, key, method="msg")
    opt_state = grow.grow_opt_state(state["opt_state"], small, big,
                                    method="msg")
    return {"params": grown.params, "opt_state": opt_state,
            "step": state["step"], "masks0": grown.masks}

  key = jax.random.key(1)
  mask_keys = sorted(jax.eval_shape(grow_fn, state, key)["masks0"])
  _, shardings = state_lib.abstract_state(big, optimizer, mask_keys, mesh,
                                          parallel.RULES)
  start = time.perf_counter()
  compiled = jax.jit(grow_fn, out_shardings=shardings).lower(
      state, key).compile()
  out = {"from": run["small"], "to": run["size"], "method": "msg",
         "mesh": {"data": 1, "fsdp": 2, "tensor": 1},
         "compile_s": time.perf_counter() - start}
  start = time.perf_counter()
  grown = jax.block_until_ready(compiled(state, key))
  out["grow_s"] = time.perf_counter() - start
  for dtype in ("bfloat16", "float32"):
    old_cfg, new_cfg = small.replace(dtype=dtype), big.replace(dtype=dtype)
    losses = jax.jit(lambda old, new, masks, batch: (
        loss.cross_entropy(old, old_cfg, batch),
        loss.cross_entropy(new, new_cfg, batch, masks=masks)))
    with jax.default_matmul_precision("highest" if dtype == "float32"
                                      else "default"):
      before, after = losses(state["params"], grown["params"],
                             grown["masks0"], fixed)
    out[f"loss_before_{dtype}"] = float(before)
    out[f"loss_after_{dtype}"] = float(after)
  say(f"growth {out['from']} -> {out['to']}: compile {out['compile_s']:.1f} s,"
      f" run {out['grow_s']:.2f} s; fixed-batch loss bf16 "
      f"{out['loss_before_bfloat16']:.6f} -> {out['loss_after_bfloat16']:.6f},"
      f" f32 {out['loss_before_float32']:.6f} -> "
      f"{out['loss_after_float32']:.6f}")
  return out


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--tiny", action="store_true",
                      help="8 simulated CPU devices, tiny models")
  parser.add_argument("--overlap", action="store_true",
                      help="XLA's GPU collective overlap flags (OVERLAP_FLAGS)")
  parser.add_argument("--parts", default="scaling,largest,growth")
  parser.add_argument("--remat", default="dots",
                      help="policy of the scaling runs (growjax.model.REMAT)")
  parser.add_argument("--steps", type=int, default=None)
  parser.add_argument("--out", default=None)
  args = parser.parse_args(argv)
  run = dict(TINY_RUN if args.tiny else FULL)
  if args.steps:
    run["steps"] = args.steps
  try:  # a bad policy fails here, before any compute
    checks.one_of("remat", args.remat, model.REMAT)
  except ValueError as e:
    parser.error(f"--{e}")
  parts = args.parts.split(",")
  for part in parts:
    if part not in ("scaling", "largest", "growth"):
      parser.error(f"--parts: {part!r} is not scaling, largest or growth")
  if len(jax.devices()) < 2:
    parser.error(f"needs 2 devices, found {len(jax.devices())}")
  out = pathlib.Path(args.out) if args.out else (
      pathlib.Path("/tmp/scaling_tiny.json") if args.tiny
      else RESULTS / "scaling_h200x2.json")

  use_compilation_cache()
  started = time.perf_counter()
  device = jax.devices()[0]
  peak = next((v for k, v in PEAK_TFLOPS.items() if k in device.device_kind),
              None)
  matmul = matmul_tflops(256 if args.tiny else 8192, 2 if args.tiny else 20)
  print(f"{len(jax.devices())} x {device.device_kind}, jax {jax.__version__}: "
        f"bf16 matmul {matmul:.1f} TFLOP/s per device", flush=True)
  result = {"machine": f"{len(jax.devices())} x {device.device_kind} "
                       f"({device.platform}), "
                       f"{platform.processor() or platform.machine()}",
            "jax": jax.__version__, "xla_flags": os.environ.get("XLA_FLAGS", ""),
            "matmul_bf16_tflops": matmul,
            "peak_bf16_tflops": peak, "runs": []}
  if "scaling" in parts:
    result["runs"] = scaling(run, args.remat, peak, matmul)
  for part, fn in (("largest", lambda: largest(run, peak)),
                   ("growth", lambda: growth(run))):
    if part in parts:
      try:
        result[f"{part}_fsdp2" if part == "largest" else part] = fn()
      except Exception as e:  # pylint: disable=broad-except
        traceback.print_exc()
        result[f"{part}_fsdp2" if part == "largest" else part] = {
            "error": error_of(e)}
  result["wall_s"] = time.perf_counter() - started
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(result, indent=1))
  print(f"wrote {out} ({result['wall_s']:.0f} s)")


if __name__ == "__main__":
  main()
