"""Scoring IQ tasks with any model, the report table, and JSONL export."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable, Iterable, Sequence

import numpy as np

from growjax.evaluate.iq.tasks import (
    DELIMITER, GENERATION_SLACK, SUITES, Task)


# ------------------------------------------------------------------ scoring


def _first_line(text: str) -> str:
  return text.strip().split("\n", 1)[0].strip()


def score(tasks: Iterable[Task], *,
          generate_fn: Callable[[str, int], str],
          loglik_fn: Callable[[str, tuple[str, ...]], Sequence[float]],
          ) -> dict:
  """Accuracy of a model on `tasks`, next to chance, per task and per suite.

  Args:
    tasks: from `generate` (or `load_jsonl`).
    generate_fn: (prompt, max_chars) -> greedy continuation of the prompt, at
      least max_chars characters unless it stopped (e.g. at a newline).
      max_chars is the answer's length plus GENERATION_SLACK, so a longer
      first line is seen and fails.
    loglik_fn: (prompt, continuations) -> log-likelihood of each continuation
      after the prompt. Continuations are DELIMITER + option.

  Choice tasks are right when the argmax of loglik_fn is the answer (ties go
  to the first option); generation tasks when the first non-empty line of the
  continuation, stripped, equals the answer.

  Returns:
    {"tasks": {name: {"suite", "accuracy", "chance", "n"}},
     "suites": {suite: {"accuracy", "chance", "n"}}}; a suite's accuracy and
    chance are the means over its tasks (each task weighs the same).
  """
  tally: dict[str, list] = {}  # name -> [suite, correct, n, sum of chance]
  for t in tasks:
    if t.options is None:
      text = generate_fn(t.prompt, len(t.answer) + GENERATION_SLACK)
      correct = _first_line(text) == t.answer
    else:
      scores = list(loglik_fn(t.prompt,
                              tuple(DELIMITER + o for o in t.options)))
      if len(scores) != len(t.options):
        raise ValueError(f"iq.score: loglik_fn gave {len(scores)} scores for "
                         f"{len(t.options)} options of task {t.name}")
      correct = t.options[int(np.argmax(scores))] == t.answer
    entry = tally.setdefault(t.name, [t.suite, 0, 0, 0.0])
    entry[1] += int(correct)
    entry[2] += 1
    entry[3] += t.chance
  per_task = {name: {"suite": suite, "accuracy": correct / count,
                     "chance": chance / count, "n": count}
              for name, (suite, correct, count, chance) in tally.items()}
  seen = {e["suite"] for e in per_task.values()}
  per_suite = {}
  for suite in [s for s in SUITES if s in seen] + sorted(seen - set(SUITES)):
    members = [e for e in per_task.values() if e["suite"] == suite]
    per_suite[suite] = {
        "accuracy": float(np.mean([e["accuracy"] for e in members])),
        "chance": float(np.mean([e["chance"] for e in members])),
        "n": sum(e["n"] for e in members)}
  return {"tasks": per_task, "suites": per_suite}


def format_table(result: dict) -> str:
  """`score`'s result as text: every task's accuracy beside its chance, then
  every suite's mean."""
  rows = [("suite", "task", "n", "accuracy", "chance")]
  order = {s: i for i, s in enumerate(SUITES)}
  tasks = sorted(result["tasks"].items(),
                 key=lambda kv: (order.get(kv[1]["suite"], len(order)),
                                 kv[1]["suite"]))
  for name, e in tasks:
    rows.append((e["suite"], name, str(e["n"]), f"{e['accuracy']:.3f}",
                 f"{e['chance']:.3g}"))
  for suite, e in result["suites"].items():
    rows.append((suite, "(mean)", str(e["n"]), f"{e['accuracy']:.3f}",
                 f"{e['chance']:.3g}"))
  widths = [max(len(r[i]) for r in rows) for i in range(5)]
  lines = []
  for r in rows:
    lines.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                           for i, (c, w) in enumerate(zip(r, widths))))
  return "\n".join(lines)


# ------------------------------------------------------------------- export

_FIELDS = tuple(f.name for f in dataclasses.fields(Task))


def export_jsonl(tasks: Iterable[Task], path: str | os.PathLike) -> None:
  """One JSON object per line per task, with the fields of Task (options a
  list or null), so other harnesses can run the same items."""
  with open(path, "w", encoding="utf-8") as f:
    for t in tasks:
      record = dataclasses.asdict(t)
      record["options"] = None if t.options is None else list(t.options)
      f.write(json.dumps(record, ensure_ascii=False) + "\n")


def load_jsonl(path: str | os.PathLike) -> list[Task]:
  """Tasks written by `export_jsonl`."""
  tasks = []
  with open(path, encoding="utf-8") as f:
    for line_no, line in enumerate(f, 1):
      if not line.strip():
        continue
      record = json.loads(line)
      missing = set(_FIELDS) - set(record)
      if missing:
        raise ValueError(f"{path}:{line_no}: missing fields {sorted(missing)}")
      options = record["options"]
      tasks.append(Task(
          suite=record["suite"], name=record["name"], prompt=record["prompt"],
          answer=record["answer"],
          options=None if options is None else tuple(options),
          chance=float(record["chance"])))
  return tasks
