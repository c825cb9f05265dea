"""Does warmup-stable-decay, decayed at the end, land where a cosine run does
at the same budget? A CPU check of growjax.schedule.

    python benchmarks/wsd_vs_cosine.py [--steps 600] [--shapes 1-sqrt] \
        [--workdir /tmp/wsd_vs_cosine] [--out benchmarks/results/wsd_vs_cosine_cpu.json]

Trains the runlocal study's final shape (d_model 64, 4 layers, the stdlib's
Python source, seq_len 64, batch 16) for `--steps` steps, once under the
per-stage cosine (linear warmup to 1e-2, cosine to 1e-3) and once per WSD
decay shape (the same warmup, peak and floor; the decay over the last 20% of
the steps), each from the same seed, on the same data order, and reads the
final validation loss of each on the same fixed validation set. The
difference WSD - cosine comes with its standard error paired over the 20
validation chunks (the chunk-to-chunk spread of the difference; seed-to-seed
variation is not in it). Hägele et al. (2024, arXiv 2405.18392) find WSD
with a 20% cooldown matches cosine; the check passes at |difference| < 0.03
nats.

Prints a table and writes the JSON (with the command that made it).
"""

import argparse
import json
import math
import pathlib
import platform
import shutil
import sys
import time

import jax
import numpy as np

from growjax.experiment import Experiment
from growjax.train import loop
from growjax.train import metrics as metrics_lib

PEAK, FINAL, WARMUP, BATCH, SEQ = 1e-2, 1e-3, 30, 16, 64


def config(name: str, steps: int, schedule: dict | None) -> dict:
  stage = dict(tokens=steps * BATCH * SEQ, batch_size=BATCH)
  if schedule is None:
    stage["lr"] = dict(peak=PEAK, warmup_steps=WARMUP, final=FINAL)
  c = dict(name=name, seed=0,
           data=dict(name="python_source", seq_len=SEQ, vocab_size=512,
                     tokenizer_chars=300_000),
           model=dict(d_model=64, n_layers=4, n_heads=4, head_dim=16, d_ff=256,
                      pos="xpos", dtype="float32"),
           stages=[stage], mesh=dict(data=1, fsdp=1, tensor=1),
           checkpoint=dict(every_steps=steps, keep=1),
           eval=dict(every_steps=max(1, steps // 6), tokens=65_536),
           train=dict(log_every=50, progress=False))
  if schedule is not None:
    c["schedule"] = schedule
  return c


def final_eval(workdir) -> dict:
  return [r for r in metrics_lib.read(workdir) if "val_loss" in r][-1]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--steps", type=int, default=600)
  parser.add_argument("--shapes", default="1-sqrt",
                      help="comma-separated WSD decay shapes")
  parser.add_argument("--workdir", default="/tmp/wsd_vs_cosine")
  parser.add_argument("--out", default=str(pathlib.Path(__file__).parent / "results"
                                           / "wsd_vs_cosine_cpu.json"))
  args = parser.parse_args(argv)
  root = pathlib.Path(args.workdir)
  shutil.rmtree(root, ignore_errors=True)
  runs = {"cosine": None}
  for shape in args.shapes.split(","):
    runs[f"wsd_{shape}"] = dict(kind="wsd", peak=PEAK, warmup_steps=WARMUP,
                                decay_fraction=0.2, decay_shape=shape, final=FINAL)
  finals = {}
  for name, schedule in runs.items():
    began = time.perf_counter()
    exp = Experiment.from_config(config(name, args.steps, schedule), n_devices=1)
    loop.run(exp, root / name, devices=jax.devices()[:1])
    row = final_eval(root / name)
    finals[name] = dict(val_loss=row["val_loss"], val_loss_se=row["val_loss_se"],
                        chunks=row["val_chunks"], tokens=row["tokens"],
                        train_flops=row["train_flops"],
                        seconds=time.perf_counter() - began, schedule=schedule
                        or dict(kind="per_stage", peak=PEAK, warmup_steps=WARMUP,
                                final=FINAL))
  base = np.array(finals["cosine"]["chunks"])
  out_runs = []
  print(f"{'run':<14} {'final val loss':>16} {'- cosine':>18}")
  for name, f in finals.items():
    d_K = np.array(f["chunks"]) - base
    diff, se = float(d_K.mean()), float(d_K.std(ddof=1) / math.sqrt(len(d_K)))
    entry = {k: v for k, v in f.items() if k != "chunks"}
    entry.update(name=name, minus_cosine=diff, minus_cosine_se_paired_chunks=se,
                 within_0_03=abs(diff) < 0.03)
    out_runs.append(entry)
    print(f"{name:<14} {f['val_loss']:>8.4f} ± {f['val_loss_se']:.4f} "
          f"{diff:>+10.4f} ± {se:.4f}")
  result = {
      "command": "python " + " ".join([sys.argv[0]] + (argv or sys.argv[1:])),
      "machine": platform.processor() or platform.machine(),
      "device": jax.devices()[0].platform, "jax": jax.__version__,
      "steps": args.steps, "batch_size": BATCH, "seq_len": SEQ,
      "model": "d_model 64, 4 layers, 4 heads, d_ff 256 (runlocal's final shape)",
      "data": "python_source (stdlib), vocab 512", "runs": out_runs,
      "note": "difference s.e. is over the 20 validation chunks, paired; one "
              "seed, so seed-to-seed variation is not in it"}
  pathlib.Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
  print(f"written: {args.out}")


if __name__ == "__main__":
  main()
