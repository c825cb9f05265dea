"""What `python -m growjax.evaluate` does once flags are parsed.

Kept apart from __main__.py so notebooks and tests call the same path. Flags
are checked before anything is read; a user's mistake raises one of
`command.USER_ERRORS`.
"""

from __future__ import annotations

import json
import pathlib

from growjax import checks
from growjax.command import UsageError, user_input


def _ints(text: str, name: str) -> tuple[int, ...]:
  try:
    values = tuple(int(v) for v in text.split(",") if v.strip())
  except ValueError:
    raise UsageError(f"--{name}={text!r}: not a comma-separated list of "
                     "integers") from None
  if not values or min(values) < 1:
    raise UsageError(f"--{name}={text!r}: needs positive integers")
  return values


def evaluate(workdir, suite: str, *, out=None, export_jsonl=None,
             batches: int | None = None, batch_size: int | None = None,
             multiples: str = "1,2,4,8", windows: int | None = None,
             iq_seed: int = 0, n_per_task: int = 20,
             tasks: str | None = None) -> dict:
  """Runs `suite` on the latest checkpoint of `workdir`; writes the result
  as JSON to `out` (default WORKDIR/eval_<suite>.json) and returns it, with
  its text table under "table". Raises command.USER_ERRORS for mistakes."""
  from growjax import data, trained  # pylint: disable=g-import-not-at-top
  from growjax.evaluate import iq, lm, suites  # pylint: disable=g-import-not-at-top
  if suite not in suites.SUITES:
    raise UsageError(f"--suite={suite!r}: unknown suite (one of "
                     f"{', '.join(suites.SUITES)})")
  if export_jsonl and suite != "iq":
    raise UsageError("--export-jsonl writes the IQ tasks; use it with "
                     "--suite iq")
  multiples = _ints(multiples, "multiples")
  names = [t.strip() for t in tasks.split(",") if t.strip()] if tasks else None
  if names:
    unknown = sorted(set(names) - set(iq.TASKS))
    if unknown:
      raise UsageError(f"--tasks: unknown IQ task(s) {', '.join(unknown)} "
                       f"(known: {', '.join(iq.TASKS)})")
  with user_input("--"):
    for name, value in (("batches", batches), ("batch_size", batch_size),
                        ("windows", windows), ("n_per_task", n_per_task)):
      if value is not None:
        checks.positive_int(name, value)
  workdir = pathlib.Path(workdir)
  if not workdir.is_dir():
    raise UsageError(f"workdir {workdir}: no such directory")
  run = trained.load_latest(workdir)
  corpus = data.prepare(run.experiment.data)
  try:
    if suite == "ppl":
      result = suites.ppl(run, corpus, batches=batches, batch_size=batch_size)
    elif suite == "length":
      if windows is None and (batches or batch_size):
        exp = run.experiment
        windows = ((batches or exp.eval.batches)
                   * (batch_size or exp.stages[0].batch_size))
      result = suites.length(run, corpus, multiples=multiples, windows=windows)
    else:
      items = iq.generate(iq_seed, n_per_task, names=names)
      if export_jsonl:
        iq.export_jsonl(items, export_jsonl)
      result = suites.iq_suite(run, corpus, seed=iq_seed,
                               n_per_task=n_per_task, tasks=items)
  except lm.NotEnoughText as e:  # the flags ask for more text than there is
    raise UsageError(str(e)) from e
  result["workdir"] = str(workdir.resolve())
  out = pathlib.Path(out) if out else workdir / f"eval_{suite}.json"
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps({k: v for k, v in result.items() if k != "table"},
                            indent=1) + "\n")
  result["out"] = str(out)
  return result


def run(workdir, suite: str, **options) -> int:
  """`evaluate`, then its table and where it went on stdout; exit status 0."""
  result = evaluate(workdir, suite, **options)
  print(result["table"])
  print(f"written: {result['out']}")
  if options.get("export_jsonl"):
    print(f"tasks: {options['export_jsonl']}")
  return 0
