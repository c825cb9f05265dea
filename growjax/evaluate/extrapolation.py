"""xPos against RoPE past the training length: arms, intervals over seeds,
the summary table and the figure.

`benchmarks/extrapolation.py` trains models of experiments/extrapolation.py
(RoPE, and xPos at several scale_base values, each with several seeds) and
reads each with the `length` suite in three ways (causal attention, blocks of
l/2, blocks of l). This module keeps what any reader of those results uses
(the benchmark, the notebook):

  arms = extrapolation.rows(length_result, seed=0)   # one row per reading
  summary = extrapolation.summarise(arms)            # mean and CI over seeds
  diffs = extrapolation.differences(arms)            # xPos - RoPE, by seed
  print(extrapolation.summary_table({"arms": arms, "summary": summary,
                                     "differences": diffs}))

Intervals are two-sided 95% Student t-intervals over seeds (n - 1 degrees of
freedom): the spread between seeds is the uncertainty that matters when
asking whether an encoding extrapolates, and it includes the text's (every
model reads the same validation tokens). xPos - RoPE differences pair the
two models of the same seed (same initial key, same data order).
"""

from __future__ import annotations

import math
import pathlib
from typing import Iterable, Sequence

import numpy as np

from growjax.evaluate import suites

CONFIDENCE = 0.95
# A model kind read one way: the rows that differ only in seed.
GROUP = ("pos", "scale_base", "attention", "block")


def rows(length_result: dict, *, seed: int, **extra) -> list[dict]:
  """One row per reading of a `suites.length` result: the model and its
  reading (`pos`, `attention` "causal" | "blockwise", `block` tokens or
  None, `seed`, `train_len`, `n_layers`, `d_model`, `scale_base` (None for
  RoPE)), `loss` and `se` {"1x": nats, ...}, `buckets` {"1x": [loss per
  training length of position], ...}, and the per-position `curve` of the
  longest length ({"length", "bin": positions per point, "loss": [...]}),
  plus `extra`."""
  r = length_result
  out = []
  for curve in r["readings"].values():
    lengths = curve["lengths"]
    longest = list(lengths)[-1]
    block = curve["block_len"]
    out.append({
        "pos": r["pos"], "attention": "causal" if block is None else
        "blockwise", "block": block, "seed": seed, "train_len": r["train_len"],
        "n_layers": r["n_layers"], "d_model": r["d_model"],
        "scale_base": r["scale_base"],
        "loss": {k: e["loss"] for k, e in lengths.items()},
        "se": {k: e["se"] for k, e in lengths.items()},
        "buckets": {k: e["buckets"] for k, e in lengths.items()},
        "curve": {"length": longest, "bin": curve["curve_bin"],
                  "loss": lengths[longest]["curve"]},
        "eval_tokens": curve["tokens"], **extra})
  return out


def t_interval(values: Sequence[float],
               confidence: float = CONFIDENCE) -> dict:
  """Mean of `values` with its two-sided Student t-interval (n - 1 degrees
  of freedom); `low`/`high` are None for a single value."""
  # scipy (a jax dependency) takes seconds to import; only intervals need it.
  from scipy import stats  # pylint: disable=g-import-not-at-top
  x = np.asarray(values, np.float64)
  mean = float(x.mean())
  if x.size < 2:
    return {"mean": mean, "low": None, "high": None, "sd": None,
            "n": int(x.size)}
  sd = float(x.std(ddof=1))
  half = float(stats.t.ppf(0.5 + confidence / 2, x.size - 1)
               * sd / math.sqrt(x.size))
  return {"mean": mean, "low": mean - half, "high": mean + half, "sd": sd,
          "n": int(x.size)}


def _key(row: dict) -> tuple:
  return tuple(row[k] for k in GROUP)


def _groups(arms: Iterable[dict]) -> dict[tuple, list[dict]]:
  groups: dict[tuple, list[dict]] = {}
  for row in arms:
    groups.setdefault(_key(row), []).append(row)
  return {k: sorted(v, key=lambda r: r["seed"]) for k, v in groups.items()}


def summarise(arms: Sequence[dict], confidence: float = CONFIDENCE
              ) -> list[dict]:
  """Per model kind and reading (GROUP): the loss at each length, and its
  rise over the 1x loss (the same seed's), as mean and t-interval over
  seeds."""
  out = []
  for key, members in _groups(arms).items():
    lengths = list(members[0]["loss"])
    loss = {m: t_interval([r["loss"][m] for r in members], confidence)
            for m in lengths}
    base = lengths[0]
    rise = {m: t_interval([r["loss"][m] - r["loss"][base] for r in members],
                          confidence) for m in lengths[1:]}
    out.append({**dict(zip(GROUP, key)),
                "seeds": [r["seed"] for r in members], "loss": loss,
                f"rise_over_{base}": rise})
  return out


def differences(arms: Sequence[dict], confidence: float = CONFIDENCE
                ) -> list[dict]:
  """xPos minus RoPE at each length, and xPos's rise over its 1x loss minus
  RoPE's (what the longer context does to one encoding beyond the other),
  for each xPos scale_base and each reading, paired by seed (seeds that both
  have), as t-intervals."""
  groups = _groups(arms)
  out = []
  for key, members in groups.items():
    row = dict(zip(GROUP, key))
    if row["pos"] != "xpos":
      continue
    rope = {r["seed"]: r for r in groups.get(
        ("rope", None, row["attention"], row["block"]), [])}
    pairs = [(x, rope[x["seed"]]) for x in members if x["seed"] in rope]
    if not pairs:
      continue
    lengths = list(pairs[0][0]["loss"])
    base = lengths[0]

    def rise(row, m):
      return row["loss"][m] - row["loss"][base]

    out.append({"scale_base": row["scale_base"],
                "attention": row["attention"], "block": row["block"],
                "seeds": [x["seed"] for x, _ in pairs],
                "xpos_minus_rope": {
                    m: t_interval([x["loss"][m] - r["loss"][m]
                                   for x, r in pairs], confidence)
                    for m in lengths},
                f"rise_over_{base}_xpos_minus_rope": {
                    m: t_interval([rise(x, m) - rise(r, m) for x, r in pairs],
                                  confidence)
                    for m in lengths[1:]}})
  return out


# ---------------------------------------------------------------- reports

def _model(row: dict) -> str:
  if row["pos"] == "rope":
    return "RoPE"
  return f"xPos sb={row['scale_base']:g}"


def _ci(e: dict) -> str:
  if e["low"] is None:
    return f"{e['mean']:.4f}"
  return f"{e['mean']:.4f} [{e['low']:.4f}, {e['high']:.4f}]"


def _signed_ci(e: dict) -> str:
  if e["low"] is None:
    return f"{e['mean']:+.4f}"
  return f"{e['mean']:+.4f} [{e['low']:+.4f}, {e['high']:+.4f}]"


def _order(entry: dict) -> tuple:
  return (entry["pos"] != "rope", entry.get("scale_base") or 0,
          entry["block"] is not None, entry["block"] or 0)


def summary_table(results: dict) -> str:
  """The summary and the differences of `results` (as the benchmark writes
  them: "summary", "differences", "train_len") as text."""
  summary = sorted(results["summary"], key=_order)
  if not summary:
    return "(no arms)"
  train_len = results.get("train_len")
  lengths = list(summary[0]["loss"])
  n = max(len(s["seeds"]) for s in summary)
  # One seed has no interval: say so rather than name one it doesn't show.
  level = f"{results.get('confidence', CONFIDENCE):.0%}"
  ci = f" [{level} t-interval]" if n > 1 else ""
  parts = [f"loss (nats), mean over seeds [{level} t-interval, n = {n}]"
           if n > 1 else "loss (nats), one seed: no interval"]
  rows = [["model", "reading"] + lengths]
  for s in summary:
    rows.append([_model(s), suites.reading_label(s["block"], train_len)]
                + [_ci(s["loss"][m]) for m in lengths])
  parts.append(suites.format_rows(rows, 2))
  rise_key = f"rise_over_{lengths[0]}"
  parts += ["", f"rise over the {lengths[0]} loss of the same model "
            f"(nats){ci}"]
  rows = [["model", "reading"] + list(summary[0][rise_key])]
  for s in summary:
    rows.append([_model(s), suites.reading_label(s["block"], train_len)]
                + [_signed_ci(e) for e in s[rise_key].values()])
  parts.append(suites.format_rows(rows, 2))
  diffs = sorted(results.get("differences", []),
                 key=lambda d: _order({**d, "pos": "xpos"}))
  if diffs:
    rise_key = f"rise_over_{lengths[0]}_xpos_minus_rope"
    for key, what in (("xpos_minus_rope", "loss"),
                      (rise_key, f"rise over {lengths[0]}")):
      parts += ["", f"xPos - RoPE, {what}, paired by seed (nats){ci}"]
      rows = [["model", "reading"] + list(diffs[0][key])]
      for d in diffs:
        rows.append([_model({**d, "pos": "xpos"}),
                     suites.reading_label(d["block"], train_len)]
                    + [_signed_ci(e) for e in d[key].values()])
      parts.append(suites.format_rows(rows, 2))
  return "\n".join(parts)


def _errorbar(ax, x, entries: list[dict], colour: str, label: str):
  """Means with their t-interval as bars (plain points for one seed)."""
  mean = np.array([e["mean"] for e in entries])
  if entries[0]["low"] is None:
    ax.plot(x, mean, "o-", color=colour, label=label)
    return
  err = np.array([[e["mean"] - e["low"], e["high"] - e["mean"]]
                  for e in entries]).T
  ax.errorbar(x, mean, yerr=err, fmt="o-", capsize=3, color=colour,
              label=label)


def figure(results: dict):
  """A matplotlib figure, one column per reading: loss against context
  length, its rise over the 1x loss (both mean over seeds with t-interval
  bars), and the per-position loss of the longest length (mean over
  seeds)."""
  # matplotlib takes seconds to import; only the figure needs it.
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  train_len = results["train_len"]
  summary = sorted(results["summary"], key=_order)
  readings = sorted({s["block"] for s in summary},
                    key=lambda b: (b is not None, b or 0))
  models = sorted({(s["pos"], s["scale_base"]) for s in summary},
                  key=lambda ps: (ps[0] != "rope", ps[1] or 0))
  colours = {m: f"C{i}" for i, m in enumerate(models)}
  groups = _groups(results["arms"])
  fig, axes = plt.subplots(3, len(readings), squeeze=False,
                           figsize=(5 * len(readings), 10.5))
  for col, block in enumerate(readings):
    top, middle, bottom = axes[:, col]
    for s in summary:
      if s["block"] != block:
        continue
      model = (s["pos"], s["scale_base"])
      colour, label = colours[model], _model(s)
      names = list(s["loss"])
      _errorbar(top, [int(k[:-1]) * train_len for k in names],
                [s["loss"][k] for k in names], colour, label)
      rise = next(v for k, v in s.items() if k.startswith("rise_over_"))
      _errorbar(middle, [int(k[:-1]) * train_len for k in rise],
                list(rise.values()), colour, label)
      members = groups[(s["pos"], s["scale_base"], s["attention"], block)]
      curve = np.mean([r["curve"]["loss"] for r in members], axis=0)
      step = members[0]["curve"]["bin"]
      bottom.plot((np.arange(len(curve)) + 0.5) * step, curve, "-", lw=1,
                  color=colour, label=label)
    top.set(title=suites.reading_label(block, train_len),
            ylabel="validation loss (nats)")
    middle.axhline(0, color="gray", lw=1)
    middle.set(ylabel="loss - loss at 1x (nats)")
    for ax in (top, middle):
      ax.set_xscale("log", base=2)
      ax.set_xlabel("context length (tokens)")
    bottom.set(xlabel="position in the longest window (tokens)",
               ylabel="loss at that position (nats)")
    for ax in (top, middle, bottom):
      ax.axvline(train_len, color="gray", ls=":", lw=1)
      ax.grid(alpha=0.3)
      ax.legend(fontsize=8)
  n = max(len(s["seeds"]) for s in summary)
  fig.suptitle(f"trained on {train_len} tokens; mean over {n} seed(s), "
               f"{CONFIDENCE:.0%} t-intervals")
  fig.tight_layout()
  return fig


def plot(results: dict, path) -> pathlib.Path:
  """`figure(results)` saved as a PNG at `path`."""
  # matplotlib takes seconds to import; only the figure needs it.
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig = figure(results)
  path = pathlib.Path(path)
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path
