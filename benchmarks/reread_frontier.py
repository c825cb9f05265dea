"""Re-read an exported study's compute frontier from its committed metrics,
without training or the corpus: after a fix to `growjax.frontier`, the
results in benchmarks/results say what the fixed reading says.

    python benchmarks/reread_frontier.py benchmarks/results/growth_study_v2_r1.json

Rewrites the JSON's "frontier" and "frontier_seconds" (the same reading in
steady-state training seconds, over the runs that had a device of the
kind most trained on to themselves: `results.seconds_frontier`), each with
a note that it
was re-read, its "rates" (each arm's sweep), and its .png, and prints each
arm's rate sweep and the frontier tables. The single-curve reading and every
run row stay as the study wrote them. `--plot_only` redraws the .png from
the JSON's own frontier and leaves the JSON as it is (after a change to the
plot).
`--config experiments/growth_study_v2.py:regime=1` lists the runs the study
plans that the export lacks: the verdict is then marked provisional.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import tempfile

from growjax import command, compare, frontier, report
from growjax.study import rates
from growjax.study.results import pending_runs, restore, seconds_frontier
from growjax.study.spec import Study

NOTE = ("frontier re-read from the exported metrics by "
        "benchmarks/reread_frontier.py; the rest of this file is as the study "
        "wrote it")


def planned(config: str, path: pathlib.Path) -> tuple[str, ...]:
  """The runs that the study file CONFIG (PATH[:ARG]) plans and the export at
  `path` does not hold, as the study itself would list them."""
  study = Study.from_config(command.load_experiment(config))
  with tempfile.TemporaryDirectory() as workdir:
    restore(study, pathlib.Path(workdir), path.parent, stem=path.stem)
    return pending_runs(study, pathlib.Path(workdir))


def reread(path: pathlib.Path, n_boot: int = 1000, plot_only: bool = False,
           config: str | None = None) -> dict:
  result = json.loads(path.read_text())
  metrics = path.parent / "metrics" / path.stem  # as results.export lays it out
  runs = [compare.Run(a["arm"], a["kind"], a["seed"], a["lr"], [
      json.loads(l) for l in (metrics / f"{a['name']}.jsonl").read_text().splitlines()
      if l], branch=a["branch"]) for a in result["arms"]]
  sweeps = rates.sweeps(result["arms"])
  if not plot_only:  # without a config, the runs pending when it was written
    pending = (planned(config, path) if config else
               tuple(result.get("frontier", {}).get("verdict", {}).get("pending", ())))
    result["rates"] = sweeps  # as the study now stores it
    result["frontier"] = frontier.frontier(runs, n_boot=n_boot, pending=pending)
    result["frontier"]["notes"].append(NOTE)
    result.pop("frontier_seconds", None)
    seconds = seconds_frontier(runs, result["arms"], n_boot)
    if seconds:
      seconds["notes"].append(NOTE)
      result["frontier_seconds"] = seconds
    path.write_text(json.dumps(result, indent=1) + "\n")
  report.plot_study(runs, path.with_suffix(".png"), levels=result["levels"],
                    frontier=result["frontier"],
                    frontier_seconds=result.get("frontier_seconds"),
                    best={e["best_arm"] for e in sweeps})
  return result


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("json", type=pathlib.Path)
  parser.add_argument("--n_boot", type=int, default=1000)
  parser.add_argument("--plot_only", action="store_true",
                      help="redraw the .png only; the JSON stays as it is")
  parser.add_argument("--config", help="the study file (PATH[:ARG]): the runs "
                      "it plans that the export lacks make the verdict "
                      "provisional")
  args = parser.parse_args()
  result = reread(args.json, args.n_boot, args.plot_only, args.config)
  print("\n".join(rates.lines(result.get("rates") or rates.sweeps(result["arms"]))
                  + report.frontier_lines(result["frontier"])
                  + report.frontier_lines(result.get("frontier_seconds"))))


if __name__ == "__main__":
  main()
