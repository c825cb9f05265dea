"""muP's coordinate check (Tensor Programs V, Figure 5): the size of every
layer's activations after a few Adam steps, across widths, under sp and mup.

    python benchmarks/mup_coord_check.py           # widths 64..1024, CPU, ~10 min
    python benchmarks/mup_coord_check.py --tiny    # widths 32..128, seconds

Models: 2 layers, head_dim 32 fixed, n_heads = d_model / 32, d_ff = 4
d_model, vocab 512 (random tokens: the check is about scale, not data);
muP's base is the narrowest width. From one init per width, `--steps` steps of
Adam (no weight decay, no clipping) at one fixed rate on a fixed batch; after
each step, the RMS over the batch of

  embed   the embedding's output (the residual stream's input)
  attn    each attention block's output (the residual update), mean over layers
  mlp     each MLP block's output, mean over layers
  logits  the model's logits

A parametrization is width-stable when these stay flat as the width grows:
under sp the hidden layers' and logits' updates grow with the width (about
proportionally after a few steps), under mup they stay flat. The slope of log
RMS against log width (least squares, at the last step) summarises each
curve. Prints a table and writes benchmarks/results/mup_coord_check.json and
.png (RMS against width, one line per step, as in the paper).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from growjax import model, mup, progress
from growjax import params as params_lib
from growjax.config import ModelConfig

RESULTS = pathlib.Path(__file__).parent / "results"
PARTS = ("embed", "attn", "mlp", "logits")
HEAD_DIM = 32


def config(width: int, param: str, base: int, *, head_dim: int = HEAD_DIM,
           vocab: int = 512, seq_len: int = 64, layers: int = 2) -> ModelConfig:
  shape = lambda d: dict(d_model=d, n_heads=d // head_dim, d_ff=4 * d)
  return ModelConfig(vocab_size=vocab, n_layers=layers, head_dim=head_dim,
                     max_len=seq_len, param=param, mup_base=shape(base),
                     **shape(width))


def activations(params, cfg: ModelConfig, tokens):
  """RMS of each part's output (`PARTS`), with the model's own modules run
  layer by layer (the scanned model keeps no intermediates)."""
  b, t = tokens.shape
  pos = jnp.broadcast_to(jnp.arange(t, dtype=jnp.int32), (b, t))
  rms = lambda x: jnp.sqrt(jnp.mean(jnp.square(x.astype(jnp.float32))))
  h = jnp.take(params_lib.EMBED.get(params), tokens, axis=0)
  out = {"embed": rms(h), "attn": 0.0, "mlp": 0.0}
  norm = lambda name, p, x: model.Norm(cfg.norm).apply({"params": p[name]}, x)
  for i in range(cfg.n_layers):
    layer = jax.tree.map(lambda x: x[i], params["blocks"])  # noqa: B023
    a, _ = model.Attention(cfg).apply({"params": layer["attn"]},
                                      norm("ln1", layer, h), pos, pos, None,
                                      None)
    h = h + a
    m = model.Mlp(cfg).apply({"params": layer["mlp"]}, norm("ln2", layer, h),
                             None)
    h = h + m
    out["attn"] += rms(a) / cfg.n_layers
    out["mlp"] += rms(m) / cfg.n_layers
  logits = model.project(norm("ln_f", params, h),
                         model.unembedding(params, cfg), cfg)
  out["logits"] = rms(logits)
  return out, logits


def loss_fn(params, cfg, batch):
  logits = model.apply(params, cfg, batch[:, :-1])
  return optax.softmax_cross_entropy_with_integer_labels(
      logits, batch[:, 1:]).mean()


def run(width: int, param: str, *, base: int, steps: int, lr: float,
        batch, seed: int = 0, head_dim: int = HEAD_DIM,
        check: bool = True) -> dict:
  """RMS per part after each of `steps` Adam steps (step 0: at init);
  `check`: first assert the layer-by-layer forward is the model's."""
  cfg = config(width, param, base, head_dim=head_dim,
               seq_len=batch.shape[1] - 1)
  opt = optax.chain(optax.scale_by_adam(b1=0.9, b2=0.95),
                    _scale(mup.lr_multipliers(cfg)), optax.scale(-lr))
  params = model.init(cfg, jax.random.key(seed))

  @jax.jit
  def step(params, state):
    grads = jax.grad(loss_fn)(params, cfg, batch)
    updates, state = opt.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  measure = jax.jit(lambda p: activations(p, cfg, batch[:, :-1]))
  if check:
    np.testing.assert_allclose(
        measure(params)[1], model.apply(params, cfg, batch[:, :-1]),
        rtol=1e-4, atol=1e-5)
  state = opt.init(params)
  rows = []
  for _ in range(steps + 1):
    rows.append({k: float(v) for k, v in measure(params)[0].items()})
    params, state = step(params, state)
  return {part: [r[part] for r in rows] for part in PARTS}


def _scale(mults):
  return optax.stateless(
      lambda u, _: jax.tree.map(lambda x, m: x * m, u, mults))


def slope(widths, values) -> float:
  """Least-squares slope of log(value) against log(width)."""
  return float(np.polyfit(np.log(widths), np.log(values), 1)[0])


def coord_check(widths, *, steps: int, lr: float, batch_size: int,
                seq_len: int, head_dim: int = HEAD_DIM, seed: int = 0) -> dict:
  """{param: {width: {part: [rms per step]}}, slopes: {param: {part: s}}}."""
  rng = np.random.default_rng(seed)
  batch = jnp.asarray(rng.integers(0, 512, (batch_size, seq_len + 1)),
                      jnp.int32)
  out = {"widths": list(widths), "steps": steps, "lr": lr,
         "head_dim": head_dim, "base": widths[0], "batch_size": batch_size,
         "seq_len": seq_len, "runs": {}, "slopes": {}}
  bar = progress.bar(total=2 * len(widths), desc="coord check", unit="width")
  for param in ("sp", "mup"):
    runs = {}
    for w in widths:
      runs[w] = run(w, param, base=widths[0], steps=steps, lr=lr, batch=batch,
                    seed=seed, head_dim=head_dim, check=w == widths[-1])
      bar.update()
    out["runs"][param] = {str(w): r for w, r in runs.items()}
    out["slopes"][param] = {
        part: slope(widths, [runs[w][part][-1] for w in widths])
        for part in PARTS}
  bar.close()
  return out


def plot(result: dict, path: pathlib.Path) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  widths = result["widths"]
  fig, axes = plt.subplots(2, len(PARTS), figsize=(4 * len(PARTS), 7),
                           sharex=True)
  colors = plt.cm.viridis(np.linspace(0, 0.9, result["steps"] + 1))
  for row, param in enumerate(("sp", "mup")):
    for col, part in enumerate(PARTS):
      ax = axes[row, col]
      for s in range(result["steps"] + 1):
        ax.plot(widths, [result["runs"][param][str(w)][part][s]
                         for w in widths], "o-", color=colors[s],
                label=f"step {s}")
      ax.set_xscale("log", base=2)
      ax.set_yscale("log")
      ax.set_title(f"{param}: {part} (slope "
                   f"{result['slopes'][param][part]:+.2f})")
      if row == 1:
        ax.set_xlabel("width (d_model)")
      if col == 0:
        ax.set_ylabel("RMS of the output")
  axes[0, 0].legend(fontsize=7)
  fig.suptitle(f"coordinate check: {result['steps']} Adam steps at lr "
               f"{result['lr']:g}, head_dim {result['head_dim']}, base width "
               f"{result['base']}")
  fig.tight_layout()
  fig.savefig(path, dpi=110)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--tiny", action="store_true",
                      help="widths 32..128, 3 steps: a smoke run")
  parser.add_argument("--widths", default="64,128,256,512,1024")
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--lr", type=float, default=1e-2)
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--seq", type=int, default=64)
  parser.add_argument("--out", default=str(RESULTS / "mup_coord_check.json"))
  args = parser.parse_args()
  widths = [int(w) for w in args.widths.split(",")]
  head_dim = HEAD_DIM
  if args.tiny:
    widths, args.steps, args.batch, args.seq, head_dim = [32, 64, 128], 3, 4, 16, 16
  start = time.perf_counter()
  result = coord_check(widths, steps=args.steps, lr=args.lr,
                       batch_size=args.batch, seq_len=args.seq,
                       head_dim=head_dim)
  result["seconds"] = round(time.perf_counter() - start, 1)
  result["command"] = "python benchmarks/mup_coord_check.py" + (
      " --tiny" if args.tiny else "")
  print(f"{'param':>5} " + " ".join(f"{p:>8}" for p in PARTS)
        + "   (slope of log RMS vs log width at the last step)")
  for param in ("sp", "mup"):
    print(f"{param:>5} " + " ".join(
        f"{result['slopes'][param][p]:>+8.2f}" for p in PARTS))
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(result, indent=1))
  plot(result, out.with_suffix(".png"))
  print(f"wrote {out} and {out.with_suffix('.png')} in {result['seconds']} s")


if __name__ == "__main__":
  main()
