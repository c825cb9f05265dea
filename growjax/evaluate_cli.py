"""What `python -m growjax.evaluate` does once flags are parsed (the flags are
in growjax/evaluate/__main__.py): the command's face over the evaluation
library (growjax.evaluate), in the command layer beside growjax.cli.

Kept apart from __main__.py so notebooks and tests call the same path. Every
flag, workdir, checkpoint and reading is checked before any model is
evaluated; a user's mistake raises one of `command.USER_ERRORS`.

One workdir: its result, as a table, and as JSON in WORKDIR/eval_<suite>.json
(or --out). Several: each model's result in its own workdir as above, and
one table with a column per model (`side_by_side`) whose JSON goes to --out
(default: eval_<suite>_side_by_side.json in the workdirs' common parent).
A relative --out or --export-jsonl is under the workdir (the common parent).
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Sequence

from growjax import checks, data, trained
from growjax.command import UsageError, under, user_input
from growjax.evaluate import iq, lm, side_by_side, suites
from growjax.evaluate.iq.tasks import DEFAULT_N_PER_TASK

CAUSAL = "causal"  # --blocks: plain causal attention


def _ints(text: str, name: str) -> tuple[int, ...]:
  try:
    values = tuple(int(v) for v in text.split(",") if v.strip())
  except ValueError:
    raise UsageError(f"--{name}={text!r}: not a comma-separated list of "
                     "integers") from None
  if not values or min(values) < 1:
    raise UsageError(f"--{name}={text!r}: needs positive integers")
  return values


def _blocks(text: str | None) -> tuple[int | None, ...] | None:
  """--blocks: "causal" or block lengths in tokens, comma-separated."""
  if text is None:
    return None
  blocks = []
  for item in filter(None, (v.strip() for v in text.split(","))):
    if item == CAUSAL:
      blocks.append(None)
      continue
    try:
      blocks.append(int(item))
    except ValueError:
      raise UsageError(f"--blocks={text!r}: {item!r} is neither {CAUSAL!r} "
                       "nor a block length in tokens") from None
  if not blocks:
    raise UsageError(f"--blocks={text!r}: names no reading")
  return tuple(blocks)


def _names(workdirs: Sequence[pathlib.Path]) -> list[str]:
  """Column names: the workdirs' base names, or their paths below the
  common parent where base names repeat."""
  names = [w.name for w in workdirs]
  if len(set(names)) == len(names):
    return names
  root = pathlib.Path(os.path.commonpath([w.resolve() for w in workdirs]))
  return [str(w.resolve().relative_to(root)) or w.name for w in workdirs]


def _home(workdirs) -> pathlib.Path:
  """Where a relative output path goes: the workdir, or the workdirs'
  common parent."""
  workdirs = [pathlib.Path(w) for w in workdirs]
  return workdirs[0] if len(workdirs) == 1 else pathlib.Path(
      os.path.commonpath([w.resolve() for w in workdirs]))


def _write(result: dict, path: pathlib.Path) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps({k: v for k, v in result.items()
                              if k != "table"}, indent=1) + "\n")


def evaluate(workdirs, suite: str, *, out=None, export_jsonl=None,
             tokens: int | None = None, multiples: str = "1,2,4,8",
             blocks: str | None = None, iq_seed: int = 0,
             n_per_task: int = DEFAULT_N_PER_TASK,
             tasks: str | None = None) -> dict:
  """Runs `suite` on the latest checkpoint of each of `workdirs` (a path or
  a list of paths).

  One workdir: writes its result as JSON to `out` (default
  WORKDIR/eval_<suite>.json) and returns it, with its text table under
  "table" and the path under "out". Several: also writes each model's
  result to its workdir, and returns {"suite", "models": [{"name",
  "workdir"}], "results": {name: result}, "differences": the paired
  differences from the first model, "table", "out"} after writing it to
  `out` (default: eval_<suite>_side_by_side.json in the workdirs' common
  parent).

  Raises command.USER_ERRORS for mistakes, before evaluating anything.
  """
  if suite not in suites.SUITES:
    raise UsageError(f"--suite={suite!r}: unknown suite (one of "
                     f"{', '.join(suites.SUITES)})")
  if export_jsonl and suite != "iq":
    raise UsageError("--export-jsonl writes the IQ tasks; use it with "
                     "--suite iq")
  multiples = _ints(multiples, "multiples")
  with user_input("--"):
    multiples = lm.check_multiples(multiples)
  blocks = _blocks(blocks)
  names = [t.strip() for t in tasks.split(",") if t.strip()] if tasks else None
  if names:
    unknown = sorted(set(names) - set(iq.TASKS))
    if unknown:
      raise UsageError(f"--tasks: unknown IQ task(s) {', '.join(unknown)} "
                       f"(known: {', '.join(iq.TASKS)})")
  with user_input("--"):
    for name, value in (("tokens", tokens), ("n_per_task", n_per_task)):
      if value is not None:
        checks.positive_int(name, value)
  if isinstance(workdirs, (str, os.PathLike)):
    workdirs = [workdirs]
  workdirs = [pathlib.Path(w) for w in workdirs]
  if not workdirs:
    raise UsageError("--workdir: give at least one run")
  for w in workdirs:
    if not w.is_dir():
      raise UsageError(f"workdir {w}: no such directory")
  out, export_jsonl = under(_home(workdirs), out), under(_home(workdirs),
                                                        export_jsonl)

  # Everything is checked, for every run, before any evaluation.
  runs = [trained.load_latest(w) for w in workdirs]
  corpora = []
  for w, run in zip(workdirs, runs):
    exp = run.experiment
    corpus = data.prepare(exp.data)
    l, available = exp.seq_len, corpus.num_tokens("validation")
    if suite == "length":
      with user_input("--blocks: "):
        suites.check_readings(
            suites.default_blocks(l) if blocks is None else blocks, l,
            multiples)
      need = multiples[-1] * l + 1
      if available < need:
        raise UsageError(
            f"--multiples: {multiples[-1]}x the training length {l} of {w} "
            f"is a window of {need:,} tokens; the validation split holds "
            f"{available:,}")
    elif suite == "ppl" and available < l + 1:
      raise UsageError(f"workdir {w}: the validation split ({available:,} "
                       f"tokens) holds no window of seq_len {l} + 1 tokens")
    corpora.append(corpus)

  items = None
  if suite == "iq":
    items = iq.generate(iq_seed, n_per_task, names=names)
    if export_jsonl:
      iq.export_jsonl(items, export_jsonl)
  results = {}
  for name, w, run, corpus in zip(_names(workdirs), workdirs, runs, corpora):
    if suite == "ppl":
      result = suites.ppl(run, corpus, tokens=tokens)
    elif suite == "length":
      result = suites.length(run, corpus, multiples=multiples, tokens=tokens,
                             blocks=blocks)
    else:
      result = suites.iq_suite(run, corpus, seed=iq_seed,
                               n_per_task=n_per_task, tasks=items)
    result["workdir"] = str(w.resolve())
    path = (pathlib.Path(out) if out and len(workdirs) == 1
            else w / f"eval_{suite}.json")
    _write(result, path)
    result["out"] = str(path)
    results[name] = result
  if len(workdirs) == 1:
    return next(iter(results.values()))

  table, differences = side_by_side.table(suite, results)
  path = pathlib.Path(out) if out else pathlib.Path(os.path.commonpath(
      [w.resolve() for w in workdirs])) / f"eval_{suite}_side_by_side.json"
  combined = {"suite": suite,
              "models": [{"name": n, "workdir": r["workdir"]}
                         for n, r in results.items()],
              "results": {n: {k: v for k, v in r.items()
                              if k not in ("table", "out")}
                          for n, r in results.items()},
              "differences": differences, "table": table}
  _write(combined, path)
  combined["out"] = str(path)
  return combined


def run(workdirs, suite: str, **options) -> int:
  """`evaluate`, then its table and where it went on stdout; exit status 0."""
  result = evaluate(workdirs, suite, **options)
  print(result["table"])
  print(f"written: {result['out']}")
  if options.get("export_jsonl"):
    workdirs = [workdirs] if isinstance(workdirs, (str, os.PathLike)) else workdirs
    print(f"tasks: {under(_home(workdirs), options['export_jsonl'])}")
  return 0
