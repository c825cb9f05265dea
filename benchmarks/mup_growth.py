"""Growth under muP keeps the rate: a model grown 64 -> 256 wide continues at
the small model's tuned rate; the loss spike after growth, under sp and mup.

    python benchmarks/mup_growth.py           # on a GPU (~1-2 min)
    python benchmarks/mup_growth.py --tiny    # widths 32 -> 64: a CPU smoke run

Models: 4 layers, head_dim 32, width 64 (2 heads, d_ff 256) grown by msg to
width 256 (8 heads, d_ff 1024) with a mask ramp of --ramp steps; muP's base is
width 64, so before growth sp and mup are the same model on the same
trajectory. Rate: the small model's best rate from
benchmarks/results/mup_lr_transfer.json (width 64; --lr overrides), warmed up
over the first 10% of the small stage, then constant through the growth
(no rewarm): "continues at the small model's tuned rate". The optimizer state
grows with the model (`grow.grow_opt_state`); the multipliers after growth
are muP's for the grown shape (sp: none). Data: the embedded python_source
corpus as in mup_lr_transfer.py; seeds 0, 1, 2, vmapped.

Three arms after the same small stage:
  continue   the small model, not grown (how the loss moves without growth)
  sp         grown, standard parametrization, same rate
  mup        grown, muP, same rate
Spike of an arm: the largest loss (running mean over --window steps, mean
over seeds) after growth minus the mean loss of the --window steps before it;
a spike <= 0 means the loss never rose above its pre-growth level. Writes
benchmarks/results/mup_growth.json and .png.
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

from growjax import grow, progress

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import mup_sweep as sweep  # noqa: E402  pylint: disable=g-import-not-at-top

RESULTS = pathlib.Path(__file__).parent / "results"

FULL = dict(small=64, big=256, head_dim=32, layers=4, seq=128, batch=32,
            small_steps=600, big_steps=400, ramp=100, window=20,
            seeds=[0, 1, 2], vocab=1024, tokenizer_chars=2_000_000,
            val_fraction=0.02, lr=2.0**-7)
TINY = dict(small=32, big=64, head_dim=16, layers=2, seq=32, batch=4,
            small_steps=6, big_steps=6, ramp=3, window=2, seeds=[0, 1],
            vocab=512, tokenizer_chars=300_000, val_fraction=0.01, lr=2.0**-7)


def tuned_rate(path: pathlib.Path, width: int) -> float | None:
  """The best mup rate at `width` in a transfer sweep's JSON, if any."""
  if not path.exists():
    return None
  runs = json.loads(path.read_text())["runs"]["mup"]
  return runs[str(width)]["best_rate"] if str(width) in runs else None


def grow_runs(params, state, old, new, n: int, ramp: int):
  """Each of the n stacked runs grown by msg (params, masks, opt state)."""
  grow_one = jax.jit(lambda p, s: (
      grow.grow(p, old, new, jax.random.key(1), method="msg"),
      grow.grow_opt_state(s, old, new, method="msg")))
  grown = [grow_one(jax.tree.map(lambda x: x[i], params),  # noqa: B023
                    jax.tree.map(lambda x: x[i], state)) for i in range(n)]
  stack = lambda trees: jax.tree.map(lambda *xs: jnp.stack(xs), *trees)
  masks0 = grown[0][0].masks  # the same for every run
  return (stack([g.params for g, _ in grown]), stack([s for _, s in grown]),
          masks0)


def spike(losses: np.ndarray, pre: float, window: int) -> float:
  return float(sweep.smooth(losses, window).max() - pre)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--tiny", action="store_true")
  parser.add_argument("--lr", type=float,
                      help="the small model's rate (default: the transfer "
                           "sweep's best at the small width)")
  parser.add_argument("--out", default=str(RESULTS / "mup_growth.json"))
  args = parser.parse_args()
  s = dict(TINY if args.tiny else FULL)
  swept = tuned_rate(RESULTS / "mup_lr_transfer.json", s["small"])
  s["lr"] = args.lr or swept or s["lr"]
  s["lr_from"] = ("--lr" if args.lr else
                  "mup_lr_transfer.json" if swept else "default")
  dtype = "bfloat16" if jax.default_backend() == "gpu" else "float32"
  start = time.perf_counter()
  steps = s["small_steps"] + s["big_steps"]
  train, _ = sweep.data(seq_len=s["seq"], batch_size=s["batch"], steps=steps,
                        eval_batches=1, vocab=s["vocab"],
                        tokenizer_chars=s["tokenizer_chars"],
                        val_fraction=s["val_fraction"])
  first, second = train[:s["small_steps"]], train[s["small_steps"]:]
  n = len(s["seeds"])
  rates = jnp.full((n,), s["lr"], jnp.float32)
  schedule = sweep.unit_schedule(steps, s["small_steps"] // 10, decay=False)
  shape = dict(head_dim=s["head_dim"], layers=s["layers"], vocab=s["vocab"],
               seq_len=s["seq"], dtype=dtype, base=s["small"])
  result = {"settings": {**s, "dtype": dtype},
            "device": jax.devices()[0].device_kind, "loss": {}, "spike": {}}

  # four programs: the small stage, then each arm after it
  bar = progress.bar(total=4, desc="mup_growth", unit="stage")
  small = sweep.config(s["small"], "mup", **shape)  # == sp at its base
  opt = sweep.optimizer(small, schedule)
  params, state = sweep.init_runs(small, opt, s["seeds"])
  params, state, losses = sweep.train_fn(small, opt)(params, state, rates,
                                                     first, None)
  before = np.asarray(losses).mean(1)
  pre = float(before[-s["window"]:].mean())
  result["loss"]["small"] = before.tolist()
  result["pre_growth_loss"] = pre
  bar.update()

  copy = lambda t: jax.tree.map(jnp.copy, t)
  _, _, kept = sweep.train_fn(small, opt)(copy(params), copy(state), rates,
                                          second, None)
  arms = {"continue": np.asarray(kept).mean(1)}
  bar.update()
  for param in ("sp", "mup"):
    old = sweep.config(s["small"], param, **shape)
    new = sweep.config(s["big"], param, **shape)
    big_params, big_state, masks0 = grow_runs(params, state, old, new, n,
                                              s["ramp"])
    run = sweep.train_fn(new, sweep.optimizer(new, schedule), ramp=s["ramp"])
    _, _, after = run(big_params, big_state, rates, second, masks0)
    arms[param] = np.asarray(after).mean(1)
    bar.update()
  bar.close()
  for arm, curve in arms.items():
    result["loss"][arm] = curve.tolist()
    result["spike"][arm] = spike(curve, pre, s["window"])
    result.setdefault("final_loss", {})[arm] = float(
        curve[-s["window"]:].mean())
  result["seconds"] = round(time.perf_counter() - start, 1)
  result["command"] = "python benchmarks/mup_growth.py" + (
      " --tiny" if args.tiny else "")
  print(f"rate {s['lr']:.3g} ({s['lr_from']}); loss before growth {pre:.4f}")
  print(f"{'arm':>9} {'spike':>8} {'final':>8}")
  for arm in arms:
    print(f"{arm:>9} {result['spike'][arm]:>+8.4f} "
          f"{result['final_loss'][arm]:>8.4f}")
  sweep.write(result, args.out, plot)


def plot(result: dict, path: pathlib.Path) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  s, w = result["settings"], result["settings"]["window"]
  fig, ax = plt.subplots(figsize=(8, 4.5))
  x0 = s["small_steps"]
  small = sweep.smooth(np.asarray(result["loss"]["small"]), w)
  ax.plot(np.arange(small.size) + w - 1, small, color="black", label="small")
  for arm, color in (("continue", "gray"), ("sp", "tab:red"),
                     ("mup", "tab:blue")):
    y = sweep.smooth(np.asarray(result["loss"][arm]), w)
    ax.plot(x0 + np.arange(y.size) + w - 1, y, color=color,
            label=f"{arm} (spike {result['spike'][arm]:+.3f})")
  ax.axvline(x0, color="gray", ls=":")
  ax.axvspan(x0, x0 + s["ramp"], color="gray", alpha=0.1, label="mask ramp")
  ax.set_xlabel("step")
  ax.set_ylabel(f"training loss (mean of {w} steps, over seeds)")
  ax.set_ylim(min(small.min(), *[min(v) for v in result["loss"].values()]) - 0.1,
              result["pre_growth_loss"] + 1.5)
  ax.set_title(f"width {s['small']} -> {s['big']} by msg at the small model's "
               f"rate {s['lr']:.3g}")
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=110)


if __name__ == "__main__":
  main()
