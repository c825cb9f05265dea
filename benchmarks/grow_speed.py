"""Time and peak memory of growing a model plus its AdamW state, against one
training step of the grown model.

    python benchmarks/grow_speed.py                  # --sizes 125M,350M (CPU)
    python benchmarks/grow_speed.py --sizes 1.3B     # on a GPU

Shapes (GPT-3 family, tied embeddings, vocab 50,304, head_dim 64 or 128; the
size names the GROWN model, whose parameter count matches GPT-3's table):

  125M  d512  L8  H8  F2048  ->  d768  L12 H12 F3072   (width x1.5, depth x1.5)
  350M  d512  L16 H8  F2048  ->  d1024 L24 H16 F4096   (width x2,   depth x1.5)
  1.3B  d1024 L16 H8  F4096  ->  d2048 L24 H16 F8192   (width x2,   depth x1.5, K128)

Method msg (new layers interleaved): every axis grows, masks are created, and
all new weights are drawn, the most work any method does. The growth of params
plus the AdamW state (mu, nu) is ONE jitted function; it is compiled first
(timed separately), then run `--repeats` times (the best is reported).

Each size runs in a fresh subprocess, so the memory numbers are its own:
  CPU  peak resident memory during the growth: the kernel's high-water mark is
       reset (/proc/self/clear_refs) right before the run, and
       peak = VmHWM - VmRSS(before) + bytes(old state), i.e. the memory the
       growth holds at its worst, counting the old state it reads.
  GPU  peak_bytes_in_use - bytes_in_use(before) + bytes(old state) from
       device.memory_stats() (an upper bound if building the old state peaked
       higher).
Both are compared with bytes(old state) + bytes(new state) (params, mu, nu,
masks), the least any out-of-place growth needs; XLA's own plan
(compiled.memory_analysis(): temp bytes) is reported too.

The training step: loss, gradient and optax.adamw update of the grown model
with its masks, in float32, jitted with the state donated, on a batch of
--batch x --seq tokens (defaults in BATCH: on CPU 8 x 512 for 125M, 4 x 512
for 350M; on GPU 4 x 1024 for 1.3B); compiled first, then timed (the best of
--step_repeats).

Targets: growth time < one training step; peak memory < 1.25 x (old + new).
Prints a table and writes benchmarks/results/grow_speed.json, one entry per
backend ("cpu", "gpu"), so a GPU run adds to the CPU numbers. "grow s" is the
best of the runs, "(first)" the first run after compiling.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import json
import os
import pathlib
import platform
import subprocess
import sys
import time

RESULTS = pathlib.Path(__file__).parent / "results" / "grow_speed.json"

SHAPES = {  # name: (old, new) as (d_model, n_layers, n_heads, head_dim, d_ff)
    "125M": ((512, 8, 8, 64, 2048), (768, 12, 12, 64, 3072)),
    "350M": ((512, 16, 8, 64, 2048), (1024, 24, 16, 64, 4096)),
    "1.3B": ((1024, 16, 8, 128, 4096), (2048, 24, 16, 128, 8192)),
    "tiny": ((32, 2, 2, 16, 64), (64, 3, 4, 16, 128)),  # a smoke run
}
VOCAB = 50304
# Training-step batch (sequences, length) per size, by backend. CPU: the
# 350M step at 8 x 512 does not fit next to other work in this 23 GiB machine
# (float32 logits and attention weights), so it takes 4 x 512. GPU (H200,
# float32): 1.3B at 4 x 2048 needs 118 GiB, so 4 x 1024.
BATCH = {"cpu": {"125M": (8, 512), "350M": (4, 512), "1.3B": (4, 512),
                 "tiny": (8, 512)},
         "gpu": {"125M": (8, 2048), "350M": (8, 2048), "1.3B": (4, 1024),
                 "tiny": (8, 512)}}


def _config(shape):
  from growjax import ModelConfig
  d, layers, heads, head_dim, ff = shape
  return ModelConfig(vocab_size=VOCAB, d_model=d, n_layers=layers,
                     n_heads=heads, head_dim=head_dim, d_ff=ff, max_len=2048,
                     pos="xpos", tie_embeddings=True)


def _status(field: str) -> int:
  """A /proc/self/status memory field (VmRSS, VmHWM) in bytes."""
  for line in open("/proc/self/status"):
    if line.startswith(field + ":"):
      return int(line.split()[1]) * 1024
  raise KeyError(field)


def _reset_peak() -> None:
  try:
    ctypes.CDLL("libc.so.6").malloc_trim(0)
  except OSError:
    pass
  with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets VmHWM to the current RSS


def _nbytes(tree) -> int:
  import jax
  return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree))


def measure(size: str, batch: int, seq: int, repeats: int,
            step_repeats: int) -> dict:
  """One size, in this (fresh) process."""
  import jax
  import optax

  from growjax import grow as grow_lib
  from growjax import model

  old_cfg, new_cfg = (_config(s) for s in SHAPES[size])
  opts = dict(method="msg", new_layers="interleave")
  device = jax.devices()[0]
  on_cpu = device.platform == "cpu"
  optimizer = optax.adamw(3e-4, b1=0.9, b2=0.95, weight_decay=0.1)

  # Old state, built on the device.
  params = jax.jit(model.init, static_argnums=0)(old_cfg, jax.random.key(0))
  opt_state = jax.jit(optimizer.init)(params)
  jax.block_until_ready((params, opt_state))
  old_bytes = _nbytes((params, opt_state))

  def grow_state(params, opt_state, key):
    grown = grow_lib.grow(params, old_cfg, new_cfg, key, **opts)
    return grown, grow_lib.grow_opt_state(opt_state, old_cfg, new_cfg, **opts)

  start = time.perf_counter()
  compiled = jax.jit(grow_state).lower(params, opt_state,
                                       jax.random.key(1)).compile()
  compile_s = time.perf_counter() - start
  analysis = compiled.memory_analysis()
  temp_bytes = getattr(analysis, "temp_size_in_bytes", None)

  # Peak memory of one growth.
  if on_cpu:
    _reset_peak()
    before = _status("VmRSS")
  else:
    before = device.memory_stats()["bytes_in_use"]
  start = time.perf_counter()
  out = jax.block_until_ready(compiled(params, opt_state, jax.random.key(1)))
  first_s = time.perf_counter() - start
  if on_cpu:
    above = _status("VmHWM") - before
  else:
    above = device.memory_stats()["peak_bytes_in_use"] - before
  new_bytes = _nbytes(out)
  peak = above + old_bytes

  times = [first_s]
  for i in range(repeats - 1):
    del out
    start = time.perf_counter()
    out = jax.block_until_ready(compiled(params, opt_state, jax.random.key(2 + i)))
    times.append(time.perf_counter() - start)
  grown, new_opt_state = out
  del params, opt_state, out

  # One training step of the grown model (with its MSG masks).
  tokens = jax.random.randint(jax.random.key(3), (batch, seq + 1), 0, VOCAB)

  def loss_fn(params, masks, tokens):
    logits = model.apply(params, new_cfg, tokens[:, :-1], masks=masks)
    return optax.softmax_cross_entropy_with_integer_labels(
        logits, tokens[:, 1:]).mean()

  @functools.partial(jax.jit, donate_argnames=("params", "opt_state"))
  def train_step(params, opt_state, masks, tokens):
    loss, grads = jax.value_and_grad(loss_fn)(params, masks, tokens)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  start = time.perf_counter()
  step = train_step.lower(grown.params, new_opt_state, grown.masks,
                          tokens).compile()
  step_compile_s = time.perf_counter() - start
  params, opt_state = grown.params, new_opt_state
  step_times = []
  for _ in range(step_repeats):
    start = time.perf_counter()
    params, opt_state, loss = jax.block_until_ready(
        step(params, opt_state, grown.masks, tokens))
    step_times.append(time.perf_counter() - start)

  return {
      "size": size,
      "old": old_cfg.to_dict(), "new": new_cfg.to_dict(),
      "old_params": model.param_count(old_cfg),
      "new_params": model.param_count(new_cfg),
      "method": opts,
      "grow_compile_s": compile_s,
      "grow_s": min(times), "grow_s_all": times,
      "train_step_compile_s": step_compile_s,
      "train_step_s": min(step_times), "train_step_s_all": step_times,
      "train_batch": [batch, seq],
      "loss_after_step": float(loss),
      "old_state_bytes": old_bytes, "new_state_bytes": new_bytes,
      "peak_bytes": peak,
      "peak_over_old_plus_new": peak / (old_bytes + new_bytes),
      "xla_temp_bytes": temp_bytes,
      "memory_method": ("VmHWM - VmRSS(before) + old state" if on_cpu else
                        "peak_bytes_in_use - bytes_in_use(before) + old state"),
      "grow_over_step": min(times) / min(step_times),
      "device_kind": device.device_kind, "platform": device.platform,
  }


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--sizes", default="125M,350M",
                      help=f"comma-separated, of {list(SHAPES)}")
  parser.add_argument("--batch", type=int, default=None,
                      help="training-step sequences (default: BATCH)")
  parser.add_argument("--seq", type=int, default=None,
                      help="training-step length (default: BATCH)")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--step_repeats", type=int, default=2)
  parser.add_argument("--out", default=str(RESULTS))
  parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
  args = parser.parse_args()

  if args.one:  # the child: one size, result as JSON on the last stdout line
    import jax
    batch, seq = BATCH["cpu" if jax.devices()[0].platform == "cpu" else "gpu"][
        args.one]
    result = measure(args.one, args.batch or batch, args.seq or seq,
                     args.repeats, args.step_repeats)
    print(json.dumps(result))
    return

  results = []
  for size in args.sizes.split(","):
    if size not in SHAPES:
      sys.exit(f"--sizes: {size!r} is not one of {list(SHAPES)}")
    cmd = [sys.executable, __file__, "--one", size,
           "--repeats", str(args.repeats),
           "--step_repeats", str(args.step_repeats)]
    if args.batch:
      cmd += ["--batch", str(args.batch)]
    if args.seq:
      cmd += ["--seq", str(args.seq)]
    print(f"[grow_speed] {size}: running in a fresh process", flush=True)
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode:
      sys.stderr.write(run.stderr)
      sys.exit(f"{size}: child failed with {run.returncode}")
    results.append(json.loads(run.stdout.strip().splitlines()[-1]))

  import jax
  machine = {
      "processor": platform.processor(), "machine": platform.machine(),
      "platform": platform.platform(), "cpu_count": os.cpu_count(),
      "python": platform.python_version(), "jax": jax.__version__,
      "device_kind": results[0]["device_kind"] if results else None,
      "backend": results[0]["platform"] if results else None,
      "load_average": os.getloadavg(),
  }
  gib = 2.0 ** 30
  header = (f"{'size':>5} {'params old->new':>17} {'compile s':>9} {'grow s':>8} "
            f"{'(first)':>8} "
            f"{'step s':>8} {'grow/step':>9} {'old+new GiB':>11} {'peak GiB':>8} "
            f"{'peak/(old+new)':>14} {'xla temp GiB':>12}")
  print(header)
  for r in results:
    temp = r["xla_temp_bytes"]
    print(f"{r['size']:>5} {r['old_params'] / 1e6:7.1f}M->{r['new_params'] / 1e6:6.1f}M "
          f"{r['grow_compile_s']:9.1f} {r['grow_s']:8.3f} {r['grow_s_all'][0]:8.3f} "
          f"{r['train_step_s']:8.3f} "
          f"{r['grow_over_step']:9.3f} "
          f"{(r['old_state_bytes'] + r['new_state_bytes']) / gib:11.2f} "
          f"{r['peak_bytes'] / gib:8.2f} {r['peak_over_old_plus_new']:14.3f} "
          f"{'-' if temp is None else f'{temp / gib:12.3f}'}")
  print(f"machine: {machine}")
  # One file, one entry per backend: a GPU run keeps the CPU numbers and back.
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  runs = json.loads(out.read_text()) if out.exists() else {}
  runs[machine["backend"] or "none"] = {"machine": machine, "results": results}
  out.write_text(json.dumps(runs, indent=2) + "\n")
  print(f"wrote {out} [{machine['backend']}]")


if __name__ == "__main__":
  main()
