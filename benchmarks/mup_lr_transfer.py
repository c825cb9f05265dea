"""Learning-rate transfer across width (Tensor Programs V, Figure 1): sweep
the rate at widths 64, 128, 256, 512 under sp and mup; under mup the best rate
should stay put, under sp it moves with the width.

    python benchmarks/mup_lr_transfer.py          # the full grid, on a GPU (~3-5 min)
    python benchmarks/mup_lr_transfer.py --tiny   # widths 32, 64, 3 rates: a CPU smoke run

Models: 4 layers (depth fixed), head_dim 32, n_heads = width / 32, d_ff = 4
width, rope, bfloat16 compute on a GPU (float32 on CPU); muP's base is width
64 (so at width 64 mup and sp are the same model). Data: the embedded
python_source corpus (vocab 1024), as the experiments read it; every run sees
the same --steps batches of --batch x --seq tokens (4.2M tokens by default)
in the same order. Optimizer: the trainer's (clip 1.0, AdamW b2 0.95, weight
decay 0.1, muP's multipliers), linear warmup over 10% of the steps, cosine to
10% of the peak. Rates: 2^-14 .. 2^-4 in half-octaves; seeds 0, 1.

Each (param, width) is one compiled program: all rates vmapped, the steps a
lax.scan, seeds a loop (same shapes, no recompile). Score: the validation
loss (--eval_batches batches) at the end, the mean over seeds; a run that
diverged (NaN) scores +inf. Prints the best rate per width and how far it
moves (max / min over widths), writes benchmarks/results/mup_lr_transfer.json
and .png (validation loss against rate, one curve per width).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import mup_sweep as sweep  # noqa: E402  pylint: disable=g-import-not-at-top

RESULTS = pathlib.Path(__file__).parent / "results"

FULL = dict(widths=[64, 128, 256, 512], base=64, head_dim=32, layers=4,
            seq=128, batch=32, steps=1000, eval_batches=16, seeds=[0, 1],
            rates=[2.0**e for e in np.arange(-14, -3.5, 0.5)],
            vocab=1024, tokenizer_chars=2_000_000, val_fraction=0.02)
TINY = dict(widths=[32, 64], base=32, head_dim=16, layers=2, seq=32, batch=4,
            steps=6, eval_batches=2, seeds=[0], rates=[2.0**-10, 2.0**-7, 2.0**-4],
            vocab=512, tokenizer_chars=300_000, val_fraction=0.01)


def sweep_width(cfg, s: dict, train, val) -> dict:
  warmup = max(1, s["steps"] // 10)
  opt = sweep.optimizer(cfg, sweep.unit_schedule(s["steps"], warmup, True))
  run, evaluate = sweep.train_fn(cfg, opt), sweep.eval_fn(cfg)
  rates = jnp.asarray(s["rates"], jnp.float32)
  val_loss, train_loss = [], []
  for seed in s["seeds"]:
    params, state = sweep.init_runs(cfg, opt, (seed, len(s["rates"])))
    params, state, losses = run(params, state, rates, train, None)
    losses = np.asarray(losses)
    tail = max(1, s["steps"] // 10)
    train_loss.append(losses[-tail:].mean(0).tolist())
    val_loss.append(np.asarray(evaluate(params, val)).tolist())
  val = np.nan_to_num(np.asarray(val_loss), nan=np.inf)
  mean = val.mean(0)
  best = int(np.argmin(mean))
  return {"val_loss": val_loss, "train_loss": train_loss,
          "mean_val_loss": mean.tolist(), "best_rate": s["rates"][best],
          "best_val_loss": float(mean[best])}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--tiny", action="store_true")
  parser.add_argument("--steps", type=int, help="override the steps per run")
  parser.add_argument("--out", default=str(RESULTS / "mup_lr_transfer.json"))
  parser.add_argument("--resume", default=None,
                      help="a .partial.json of an earlier call with the same "
                      "settings: its (param, width) results are kept, not rerun "
                      "(the full grid takes longer than one 10-minute call)")
  args = parser.parse_args()
  s = dict(TINY if args.tiny else FULL)
  if args.steps:
    s["steps"] = args.steps
  gpu = jax.default_backend() == "gpu"
  dtype = "bfloat16" if gpu else "float32"
  start = time.perf_counter()
  train, val = sweep.data(seq_len=s["seq"], batch_size=s["batch"],
                          steps=s["steps"], eval_batches=s["eval_batches"],
                          vocab=s["vocab"], tokenizer_chars=s["tokenizer_chars"],
                          val_fraction=s["val_fraction"])
  data_s = time.perf_counter() - start
  result = {"settings": {**s, "dtype": dtype,
                         "tokens_per_run": s["steps"] * s["batch"] * s["seq"]},
            "device": jax.devices()[0].device_kind, "runs": {}, "moves": {}}
  done = {}
  if args.resume:
    earlier = json.loads(pathlib.Path(args.resume).read_text())
    if earlier["settings"] != result["settings"]:
      raise SystemExit(f"--resume {args.resume}: other settings than this run's")
    done = earlier["runs"]
  from growjax import progress  # pylint: disable=g-import-not-at-top
  todo = sum(str(w) not in done.get(p, {}) for p in ("sp", "mup")
             for w in s["widths"])
  bar = progress.bar(total=todo, desc="sweeps", unit="width", warmup=1)
  for param in ("sp", "mup"):
    result["runs"][param] = {}
    for width in s["widths"]:
      if str(width) in done.get(param, {}):
        result["runs"][param][str(width)] = done[param][str(width)]
        continue
      t = time.perf_counter()
      cfg = sweep.config(width, param, base=s["base"], head_dim=s["head_dim"],
                         layers=s["layers"], vocab=s["vocab"],
                         seq_len=s["seq"], dtype=dtype)
      r = sweep_width(cfg, s, train, val)
      r["seconds"] = round(time.perf_counter() - t, 1)
      result["runs"][param][str(width)] = r
      print(f"{param:>4} width {width:>4}: best rate {r['best_rate']:.3g} "
            f"(val loss {r['best_val_loss']:.4f}) in {r['seconds']} s",
            flush=True)
      # what is done so far, in case the run is cut short
      pathlib.Path(args.out).with_suffix(".partial.json").write_text(
          json.dumps(result, indent=1))
      bar.update()
    bests = [result["runs"][param][str(w)]["best_rate"] for w in s["widths"]]
    result["moves"][param] = max(bests) / min(bests)
  bar.close()
  result["seconds"] = round(time.perf_counter() - start, 1)
  result["data_seconds"] = round(data_s, 1)
  result["command"] = "python benchmarks/mup_lr_transfer.py" + (
      " --tiny" if args.tiny else "") + (
          f" --steps {args.steps}" if args.steps else "") + (
              f" --resume {args.resume}" if args.resume else "")
  for param in ("sp", "mup"):
    print(f"{param}: the best rate moves {result['moves'][param]:.3g}x "
          f"across widths {s['widths']}")
  sweep.write(result, args.out, plot)


def plot(result: dict, path: pathlib.Path) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  s = result["settings"]
  fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
  colors = plt.cm.viridis(np.linspace(0, 0.9, len(s["widths"])))
  finite = [v for p in result["runs"].values() for r in p.values()
            for v in r["mean_val_loss"] if np.isfinite(v)]
  for ax, param in zip(axes, ("sp", "mup")):
    for color, width in zip(colors, s["widths"]):
      r = result["runs"][param][str(width)]
      ax.plot(np.log2(s["rates"]), r["mean_val_loss"], "o-", color=color,
              ms=3, label=f"width {width}")
      ax.plot(np.log2(r["best_rate"]), r["best_val_loss"], "*", color=color,
              ms=12)
    ax.set_title(f"{param}: best rate moves {result['moves'][param]:.3g}x")
    ax.set_xlabel("log2 learning rate")
    ax.set_ylim(min(finite) - 0.05, min(max(finite), min(finite) + 2.5))
  axes[0].set_ylabel("validation loss (mean over seeds)")
  axes[1].legend()
  fig.suptitle(f"learning-rate transfer: {s['layers']} layers, head_dim "
               f"{s['head_dim']}, {s['tokens_per_run']:,} tokens per run, "
               f"muP base width {s['base']}")
  fig.tight_layout()
  fig.savefig(path, dpi=110)


if __name__ == "__main__":
  main()
