r"""Training throughput and MFU of growjax's train step on this machine.

    python benchmarks/train_speed.py --sizes 125M,350M,1.3B      # on a GPU
    python benchmarks/train_speed.py --sizes tiny --steps 5      # a CPU smoke run

For each GPT-style size: the jitted AdamW train step of growjax.train.step
(bfloat16 compute, float32 parameters, donated state) on random tokens,
timed over `--steps` steps after two warm-up steps. Reports tokens/s, model
TFLOP/s (growjax.cost's count: 6N + unembedding + attention), MFU against the
chip's dense bf16 peak and against a bf16 8192^3 matmul measured in the same
run, and the device's peak memory. Prints a table and writes
benchmarks/results/train_speed_<platform>.json.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import time

import jax
import jax.numpy as jnp
import optax

from growjax import ModelConfig, cost, model
from growjax.train import step as step_lib

SIZES = {  # name: (d_model, n_layers, n_heads, head_dim, d_ff, batch, seq_len, remat)
    "tiny": (64, 2, 4, 16, 256, 8, 128, False),
    "125M": (768, 12, 12, 64, 3072, 32, 1024, False),
    "350M": (1024, 24, 16, 64, 4096, 32, 1024, False),
    "1.3B": (2048, 24, 16, 128, 8192, 32, 1024, True),
}
VOCAB = 32_000
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0}  # dense bf16, datasheet


def matmul_tflops(n=8192, reps=10) -> float:
  """bf16 n^3 matmul rate on random data: the ceiling a model step can reach."""
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.bfloat16)
  b = jax.random.normal(jax.random.key(1), (n, n), jnp.bfloat16)
  f = jax.jit(lambda a, b: a @ b)
  f(a, b).block_until_ready()
  start = time.perf_counter()
  for _ in range(reps):
    out = f(a, b)
  out.block_until_ready()
  return 2 * n**3 * reps / (time.perf_counter() - start) / 1e12


def bench(name: str, steps: int) -> dict:
  d, layers, heads, k, f, batch, seq, remat = SIZES[name]
  cfg = ModelConfig(vocab_size=VOCAB, d_model=d, n_layers=layers, n_heads=heads,
                    head_dim=k, d_ff=f, max_len=seq, pos="xpos", dtype="bfloat16")
  lr = optax.constant_schedule(1e-4)
  optimizer = optax.adamw(lr, b1=0.9, b2=0.95, weight_decay=0.1)
  train_step = jax.jit(step_lib.make_train_step(cfg, optimizer, lr, remat=remat),
                       donate_argnames=("state",))

  @jax.jit
  def init(key):
    params = model.init(cfg, key)
    return {"params": params, "opt_state": optimizer.init(params),
            "step": jnp.zeros((), jnp.int32)}

  state = init(jax.random.key(0))
  tokens = jax.random.randint(jax.random.key(1), (batch, seq + 1), 0, VOCAB)
  compile_start = time.perf_counter()
  for _ in range(2):
    state, m = train_step(state, tokens)
  jax.block_until_ready(m)
  warmup = time.perf_counter() - compile_start
  start = time.perf_counter()
  for _ in range(steps):
    state, m = train_step(state, tokens)
  loss = float(m["loss"])  # blocks
  seconds = (time.perf_counter() - start) / steps
  tokens_per_s = batch * seq / seconds
  stats = jax.devices()[0].memory_stats() or {}
  return {"size": name, "params": model.param_count(cfg), "batch": batch,
          "seq_len": seq, "remat": remat, "step_s": seconds,
          "tokens_per_s": tokens_per_s,
          "model_tflops": cost.model_tflops_per_s(cfg, seq, tokens_per_s),
          "warmup_s": warmup, "loss": loss,
          "peak_memory_gib": stats.get("peak_bytes_in_use", 0) / 2**30}


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--sizes", default="125M,350M,1.3B")
  parser.add_argument("--steps", type=int, default=10)
  parser.add_argument("--out", default=None)
  args = parser.parse_args()
  device = jax.devices()[0]
  kind = device.device_kind
  matmul = matmul_tflops() if device.platform == "gpu" else None
  peak = next((v for k, v in PEAK_TFLOPS.items() if k in kind), None)
  rows = []
  for name in args.sizes.split(","):
    r = bench(name, args.steps)
    r["mfu_vs_peak"] = r["model_tflops"] / peak if peak else None
    r["mfu_vs_matmul"] = r["model_tflops"] / matmul if matmul else None
    rows.append(r)
    print(f"{name:>6} {r['params'] / 1e6:>8.1f}M  {r['tokens_per_s']:>12,.0f} tok/s  "
          f"{r['model_tflops']:>7.1f} TFLOP/s  MFU {r['mfu_vs_peak'] or 0:.1%} of peak, "
          f"{r['mfu_vs_matmul'] or 0:.1%} of matmul  peak mem {r['peak_memory_gib']:.1f} GiB",
          flush=True)
  result = {"machine": f"{kind} ({device.platform}), {platform.processor() or platform.machine()}",
            "jax": jax.__version__, "matmul_bf16_tflops": matmul,
            "peak_bf16_tflops": peak, "runs": rows}
  out = pathlib.Path(args.out or pathlib.Path(__file__).parent / "results" /
                     f"train_speed_{device.platform}.json")
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(result, indent=1))
  print(f"wrote {out}")


if __name__ == "__main__":
  main()
