r"""Why do data=2, fsdp=2 and tensor=2 give different losses for the same run?

    python benchmarks/mesh_determinism.py                 # 8 simulated CPU devices
    python benchmarks/mesh_determinism.py --devices gpu   # the GPUs that are there

On two H200s a shortened experiments/small.py gave stage-0 validation losses
5.026 (data=2), 5.038 (fsdp=2) and 5.040 (tensor=2). Either the meshes see
different data or initial parameters, or the same computation rounds
differently (the order of the reductions changes with the sharding). This
script separates the two:

1. the first step's loss under every mesh: it reads the initial parameters
   and the first batch, so float32 agreement to rounding (~1e-7) shows the
   meshes see the same data and the same initialisation;
2. the final validation loss of the same short run under every mesh, in
   float32 and in bfloat16: if the float32 runs agree closely while the
   bfloat16 ones spread like the GPU runs did, rounding (amplified by
   training) explains the spread.

Prints a table and writes benchmarks/results/mesh_determinism.json.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

MESHES = {"data=2": dict(data=2, fsdp=1, tensor=1),
          "fsdp=2": dict(data=1, fsdp=2, tensor=1),
          "tensor=2": dict(data=1, fsdp=1, tensor=2),
          "single": dict(data=1, fsdp=1, tensor=1)}


def experiment(mesh: dict, dtype: str, steps: int) -> dict:
  batch, seq = 16, 64
  return dict(
      name="mesh_determinism", seed=0,
      data=dict(name="python_source", seq_len=seq, vocab_size=512,
                tokenizer_chars=300_000),
      model=dict(d_model=64, n_layers=2, n_heads=4, head_dim=16, d_ff=256,
                 pos="xpos", dtype=dtype),
      stages=[dict(tokens=steps * batch * seq, batch_size=batch,
                   lr=dict(peak=3e-3, warmup_steps=5, final=3e-4))],
      mesh=mesh, checkpoint=dict(every_steps=10_000, keep=1),
      eval=dict(every_steps=steps), train=dict(log_every=steps, progress=False))


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--devices", default="cpu", choices=("cpu", "gpu"))
  parser.add_argument("--steps", type=int, default=60)
  parser.add_argument("--out", default="benchmarks/results/mesh_determinism.json")
  args = parser.parse_args(argv)
  if args.devices == "cpu":
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_force_host_platform_device_count=2")
    os.environ["JAX_PLATFORMS"] = "cpu"
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from growjax.experiment import Experiment  # pylint: disable=g-import-not-at-top
  from growjax.train import loop, metrics  # pylint: disable=g-import-not-at-top

  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    for dtype in ("float32", "bfloat16"):
      for name, mesh in MESHES.items():
        n = mesh["data"] * mesh["fsdp"] * mesh["tensor"]
        if jax.device_count() < n:
          continue
        exp = Experiment.from_config(experiment(mesh, dtype, args.steps),
                                     n_devices=n)
        workdir = pathlib.Path(tmp) / f"{dtype}_{name}"
        start = time.perf_counter()
        loop.run(exp, workdir, devices=jax.devices()[:n])
        lines = metrics.read(workdir)
        first = next(r for r in lines if "loss" in r)
        last = [r for r in lines if "val_loss" in r][-1]
        rows.append(dict(dtype=dtype, mesh=name, first_loss=first["loss"],
                         final_val_loss=last["val_loss"],
                         seconds=time.perf_counter() - start))
        print(f"{dtype:9s} {name:9s} first train loss {first['loss']:.6f}  "
              f"final val {last['val_loss']:.6f}", flush=True)
  spread = {}
  for dtype in ("float32", "bfloat16"):
    vals = [r["final_val_loss"] for r in rows if r["dtype"] == dtype]
    firsts = [r["first_loss"] for r in rows if r["dtype"] == dtype]
    spread[dtype] = dict(final_val_spread=float(np.ptp(vals)),
                         first_loss_spread=float(np.ptp(firsts)))
    print(f"{dtype}: first-step loss spread {np.ptp(firsts):.2e}, final "
          f"validation spread {np.ptp(vals):.2e}")
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(dict(
      machine=f"{jax.device_count()} x {jax.devices()[0].device_kind}",
      jax=jax.__version__, steps=args.steps, runs=rows, spread=spread),
      indent=1) + "\n")
  print(f"written: {out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
