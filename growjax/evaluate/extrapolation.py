"""xPos against RoPE past the training length: the results, side by side.

`benchmarks/extrapolation.py` trains the two models of
experiments/extrapolation.py and reads each with the `length` suite; this
module keeps what any reader of those results uses (the notebook, the
benchmark): the numbers a results file keeps of a length result, the summary
table and the figure. Results look like

  {"xpos": {"loss_1x", ..., "ratio_4x", ..., "buckets", "block_len"},
   "rope": {...}, "rope_blockwise": {...}, "train_len": ..., ...}

"rope_blockwise" is the control: the RoPE model read with xPos's blockwise
attention, which tells how much of xPos's advantage is the attention pattern
and how much the position encoding.
"""

from __future__ import annotations

import pathlib

VARIANTS = ("xpos", "rope", "rope_blockwise")  # results keys, plot order
KEYS = ("loss_1x", "loss_2x", "loss_4x", "loss_8x", "ratio_2x", "ratio_4x",
        "ratio_8x")


def entry(length_result: dict) -> dict:
  """The numbers the results file keeps of a `suites.length` result."""
  r = length_result
  return {**{k: r[k] for k in KEYS if k in r},
          "buckets": {k: e["buckets"] for k, e in r["lengths"].items()},
          "block_len": r["block_len"]}


def summary_table(results: dict) -> str:
  """One row per variant: loss at each length and its ratio to 1x."""
  present = [p for p in VARIANTS if p in results]
  lines = [f"{'':<15}" + "".join(f"{k:>10}" for k in KEYS)]
  for pos in present:
    lines.append(f"{pos:<15}" + "".join(
        f"{results[pos].get(k, float('nan')):>10.4f}" for k in KEYS))
  return "\n".join(lines)


def figure(results: dict):
  """A matplotlib figure: loss against context length for each variant, and
  loss per position bucket at the longest length."""
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  train_len = results["train_len"]
  fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
  styles = {"xpos": "o-", "rope": "s-", "rope_blockwise": "s--"}
  for name in [v for v in VARIANTS if v in results]:
    r = results[name]
    names = sorted((k for k in r if k.startswith("loss_")),
                   key=lambda k: int(k[5:-1]))
    x = [int(k[5:-1]) * train_len for k in names]
    label = {"xpos": "xPos (blockwise)", "rope": "RoPE",
             "rope_blockwise": "RoPE (blockwise)"}[name]
    left.plot(x, [r[k] for k in names], styles[name], label=label)
    longest = max(r["buckets"], key=lambda k: int(k[:-1]))
    b = r["buckets"][longest]
    right.plot([(i + 0.5) * train_len for i in range(len(b))], b,
               styles[name], label=f"{label}, {longest}")
  left.set_xscale("log", base=2)
  for ax in (left, right):
    ax.axvline(train_len, color="gray", ls=":", lw=1)
    ax.legend()
    ax.grid(alpha=0.3)
  left.set(xlabel="context length (tokens)", ylabel="validation loss (nats)",
           title=f"loss vs. context length (trained on {train_len})")
  right.set(xlabel="position in the window (bucket centre)",
            ylabel="validation loss (nats)",
            title="loss per position bucket, longest context")
  fig.tight_layout()
  return fig


def plot(results: dict, path) -> pathlib.Path:
  """`figure(results)` saved as a PNG at `path`."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig = figure(results)
  path = pathlib.Path(path)
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path
