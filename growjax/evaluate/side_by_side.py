"""Several models' results of one suite in one table, a column per model.

    table, differences = side_by_side.table("ppl", {"scratch": r1, "grown": r2})

FLM-101B's claim is that a grown model loses nothing in ability against one
trained from scratch; this puts the two side by side on the same text and the
same items. Where two models scored the same validation windows (the same
corpus, seq_len and set size: `lm` records a hash of the text), each later
model's difference from the first is paired window by window, so its standard
error is that of the differences, far below either loss's. The IQ suite
gives every model the same generated items, so chance and the heuristic floor
are one column; each model's accuracy has its Wilson interval.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from growjax.evaluate import lm, suites


def paired_difference(a: Sequence[float], b: Sequence[float]) -> dict:
  """mean(b - a) over paired windows, with its standard error."""
  d = np.asarray(b, np.float64) - np.asarray(a, np.float64)
  se = float(d.std(ddof=1) / math.sqrt(d.size)) if d.size > 1 else None
  return {"mean": float(d.mean()), "se": se, "windows": int(d.size)}


def _delta(a: dict, b: dict) -> dict | None:
  """b's loss minus a's, paired, when both scored the same text."""
  if a.get("text") is None or a.get("text") != b.get("text"):
    return None
  return paired_difference(a["window_losses"], b["window_losses"])


def _signed(d: dict | None) -> str:
  if d is None:
    return "(other text)"
  se = "" if d["se"] is None else f" ± {d['se']:.4f}"
  return f"{d['mean']:+.4f}{se}"


def _ci(entry: dict, key: str) -> str:
  """'accuracy [low, high]' of an IQ result entry, '-' where there is none."""
  if entry.get(key) is None:
    return "-"
  low, high = entry[f"{key}_ci"]
  return f"{entry[key]:.3f} [{low:.3f}, {high:.3f}]"


def _model_rows(results: dict) -> list[list[str]]:
  return [
      ["model"] + [f"{r['pos']} L{r['n_layers']} d{r['d_model']}"
                   for r in results.values()],
      ["stage, step"] + [f"{r['stage']}, {r['step']}"
                         for r in results.values()]]


def _ppl(results: dict) -> tuple[list[list[str]], dict]:
  names = list(results)
  first = results[names[0]]
  rows = [[""] + names, *_model_rows(results),
          ["loss ± s.e."] + [lm.pm(r["loss"], r["se"])
                             for r in results.values()],
          ["perplexity"] + [f"{r['perplexity']:.3f}" for r in results.values()],
          ["tokens"] + [f"{r['tokens']:,}" for r in results.values()]]
  deltas = {n: _delta(first, results[n]) for n in names[1:]}
  if deltas:
    rows.append([f"loss - {names[0]} (paired)", "-"]
                + [_signed(deltas[n]) for n in names[1:]])
  return rows, {f"{n} - {names[0]}": d for n, d in deltas.items()}


def _length(results: dict) -> tuple[list[list[str]], dict]:
  names = list(results)
  first = results[names[0]]
  readings = [k for k in first["readings"]
              if all(k in r["readings"] for r in results.values())]
  header = ["reading", "length"] + names + [f"{n} - {names[0]} (paired)"
                                           for n in names[1:]]
  rows = [header] + [[label, ""] + cells
                     for label, *cells in _model_rows(results)]
  for row in rows[1:]:
    row += [""] * (len(header) - len(row))
  differences = {}
  for k in readings:
    lengths = [m for m in first["readings"][k]["lengths"]
               if all(m in r["readings"][k]["lengths"]
                      for r in results.values())]
    for m in lengths:
      entries = [r["readings"][k]["lengths"][m] for r in results.values()]
      deltas = [_delta(entries[0], e) for e in entries[1:]]
      for n, d in zip(names[1:], deltas):
        differences.setdefault(f"{n} - {names[0]}", {}).setdefault(k, {})[m] = d
      label = suites.reading_label(first["readings"][k]["block_len"],
                                   first["train_len"])
      rows.append([label, m] + [lm.pm(e["loss"], e["se"]) for e in entries]
                  + [_signed(d) for d in deltas])
  return rows, differences


def _iq(results: dict) -> tuple[list[list[str]], dict]:
  names = list(results)
  first = results[names[0]]
  per = first["normalisation"].removeprefix("per ")
  header = ["task", "suite", "n", "chance", "floor [95% CI]"]
  for n in names:
    header += [f"{n}: sum [95% CI]", f"{n}: per {per}"]
  rows = [header]
  entries = [("tasks", t) for t in first["tasks"]] + [
      ("suites", s) for s in first["suites"]]
  for kind, key in entries:
    e = first[kind][key]
    row = [key if kind == "tasks" else "(all)", e["suite"] if kind == "tasks"
           else key, str(e["n"]), f"{e['chance']:.3g}",
           _ci(e, "floor")
           + (" !" if e["floor_above_flag"] else "")]
    for r in results.values():
      m = r[kind].get(key, {})
      row += [_ci(m, "accuracy"), _ci(m, "accuracy_norm")]
    rows.append(row)
  return rows, {}


# suite: (its rows, and how many of their first columns are labels)
SUITES = {"ppl": (_ppl, 1), "length": (_length, 2), "iq": (_iq, 2)}
NOTES = {
    "ppl": "loss in nats on the fixed validation set; ± s.e. over windows; "
           "a paired difference is over the same windows",
    "length": "loss in nats; every length and reading scores the same "
              "tokens; ± s.e. over windows; a paired difference is over the "
              "same windows",
    "iq": "accuracy with its Wilson 95% interval; floor: the best heuristic "
          "on the same items (! above the flag); choice tasks: the option "
          "of highest summed log-likelihood, or per token",
}


def table(suite: str, results: dict) -> tuple[str, dict]:
  """One text table of `results` ({model name: that suite's result}), a
  column per model, and the paired differences from the first model."""
  if suite not in SUITES:
    raise ValueError(f"suite {suite!r}: not one of {', '.join(SUITES)}")
  if not results:
    raise ValueError("side_by_side.table: no results")
  make, labels = SUITES[suite]
  rows, differences = make(results)
  return (suites.format_rows(rows, labels) + "\n" + NOTES[suite] + ".",
          differences)
