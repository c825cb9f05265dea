"""Each arm's learning-rate sweep, read from a study's run rows (study.json's
"arms"): the rates tried, the best, whether the best sits at the grid's edge
(then the arm may be untuned: a rate beyond the edge was never tried), and
the best rate's seeds. Under muP the best rates of the families say how far
a rate tuned at the small width transferred.

The best rate is the study's own pick (`progress.best_lrs`): the lowest
smoothed final validation loss at seed 0, the sweep's seed.
"""

from __future__ import annotations

import statistics

from growjax.frontier import family


def sweeps(rows: list[dict]) -> list[dict]:
  """One entry per arm family, in the rows' order, from its trunks (decay
  branches are not sweeps): `rates` (lr -> seed 0's final and smoothed
  final), `best_lr` and `best_arm` (the arm's name at it, as the frontier
  names it), `edge` ("low", "high", "inside", or None for a single rate),
  and the best rate's `seeds`, `finals` and `mean`."""
  by_family: dict[str, list[dict]] = {}
  for r in rows:
    if r.get("branch") is None:
      by_family.setdefault(family(r["arm"]), []).append(r)
  out = []
  for name, trunks in by_family.items():
    sweep = {r["lr"]: r for r in trunks if r["seed"] == min(t["seed"] for t in trunks)}
    lrs = sorted(sweep)
    best = min(lrs, key=lambda lr: sweep[lr]["smoothed_final_val_loss"])
    at_best = sorted((r for r in trunks if r["lr"] == best), key=lambda r: r["seed"])
    edge = (None if len(lrs) == 1 else "low" if best == lrs[0]
            else "high" if best == lrs[-1] else "inside")
    out.append({
        "family": name, "kind": trunks[0]["kind"], "param": trunks[0].get("param"),
        "rates": [{"lr": lr, "final": sweep[lr]["final_val_loss"],
                   "smoothed_final": sweep[lr]["smoothed_final_val_loss"]} for lr in lrs],
        "best_lr": best, "best_arm": at_best[0]["arm"], "edge": edge,
        "seeds": [r["seed"] for r in at_best],
        "finals": [r["final_val_loss"] for r in at_best],
        "mean": statistics.fmean(r["final_val_loss"] for r in at_best)})
  return out


def lines(entries: list[dict]) -> list[str]:
  """The sweep table: each family's rates and finals (seed 0), the best
  bracketed, its seeds' mean, and a note where the best is the grid's edge."""
  if not entries:
    return []
  out = ["learning-rate sweeps (final validation loss at seed 0; [best], the "
         "study's pick by the smoothed final):",
         f"  {'arm':<16} {'param':<5} {'rates tried':<44} {'best: seeds, mean':<20} edge"]
  for e in entries:
    tried = " ".join(f"[{r['lr']:g} {r['final']:.4f}]" if r["lr"] == e["best_lr"]
                     else f"{r['lr']:g} {r['final']:.4f}" for r in e["rates"])
    edge = {None: "one rate", "inside": "-", "low": "lowest tried: lower untried",
            "high": "highest tried: higher untried"}[e["edge"]]
    best = f"{len(e['seeds'])}, {e['mean']:.4f}"
    out.append(f"  {e['family']:<16} {e['param'] or '-':<5} {tried:<44} {best:<20} {edge}")
  return out
