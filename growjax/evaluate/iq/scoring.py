"""Scoring IQ tasks with any model, beside chance and heuristic floors; the
report table; JSONL export.

Every accuracy comes with a Wilson 95% interval. A task's floor is the
accuracy of its registered heuristic (HEURISTICS) on the same items. Choice
tasks are scored twice: by the summed log-likelihood of each option, and by
that sum divided by the option's length in tokens (in characters when no
token counter is given), which stops long options losing for their length.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable, Iterable, Sequence

import numpy as np

from growjax.evaluate.iq.tasks import (
    DELIMITER, GENERATION_SLACK, HEURISTICS, SUITES, Task)

# A floor above this is flagged in the table: a score near it shows little.
FLOOR_FLAG = 0.4
CONFIDENCE = 0.95


def wilson(correct: int, n: int) -> tuple[float, float]:
  """The Wilson score interval (CONFIDENCE) of a proportion correct / n."""
  # scipy (a jax dependency) takes seconds to import; only scoring needs it.
  from scipy import stats  # pylint: disable=g-import-not-at-top
  ci = stats.binomtest(int(correct), int(n)).proportion_ci(
      confidence_level=CONFIDENCE, method="wilson")
  return float(ci.low), float(ci.high)


# ------------------------------------------------------------------ scoring


def _first_line(text: str) -> str:
  return text.strip().split("\n", 1)[0].strip()


def _heuristic_of(task: Task) -> Callable[[Task], str]:
  if task.name not in HEURISTICS:
    raise ValueError(f"iq.score: task {task.name!r} has no heuristic; "
                     f"known: {', '.join(HEURISTICS)}")
  return HEURISTICS[task.name]


def _rate(correct: int, n: int, key: str) -> dict:
  return {key: correct / n, f"{key}_ci": list(wilson(correct, n))}


def score(tasks: Iterable[Task], *,
          generate_fn: Callable[[str, int], str],
          loglik_fn: Callable[[str, tuple[str, ...]], Sequence[float]],
          token_count_fn: Callable[[str], int] | None = None,
          ) -> dict:
  """Accuracy of a model on `tasks` beside chance and the heuristic floor,
  per task and per suite, each with a Wilson 95% interval.

  Args:
    tasks: from `generate` (or `load_jsonl`).
    generate_fn: (prompt, max_chars) -> greedy continuation of the prompt, at
      least max_chars characters unless it stopped (e.g. at a newline).
      max_chars is the answer's length plus GENERATION_SLACK, so a longer
      first line is seen and fails.
    loglik_fn: (prompt, continuations) -> summed log-likelihood of each
      continuation after the prompt. Continuations are DELIMITER + option.
    token_count_fn: continuation -> the number of tokens loglik_fn summed
      over; the normalised scoring divides by it. None: divide by the
      number of characters instead (result["normalisation"] says which).

  Choice tasks are right when the argmax of the (normalised) score is the
  answer (ties go to the first option); generation tasks when the first
  non-empty line of the continuation, stripped, equals the answer.

  Returns:
    {"normalisation": "per token" | "per character", "confidence": 0.95,
     "floor_flag": FLOOR_FLAG,
     "tasks": {name: {"suite", "n", "chance", "choice", "heuristic",
                      "floor", "floor_ci", "floor_correct", "floor_above_flag",
                      "accuracy", "accuracy_ci", "correct",
                      "accuracy_norm", "accuracy_norm_ci", "correct_norm"}},
     "suites": {suite: the same minus "choice" and "heuristic"}}.
    "accuracy" is exact match (generation) or the summed log-likelihood's
    choice; "accuracy_norm" the normalised choice (None for generation
    tasks). A suite pools its items (the mean of its tasks when, as from
    `generate`, each has the same n); its "accuracy_norm" counts generation
    items by exact match. Intervals are [low, high].
  """
  normalisation = "per token" if token_count_fn else "per character"
  count = token_count_fn or len
  tally: dict[str, dict] = {}
  for t in tasks:
    floor = _heuristic_of(t)(t) == t.answer
    if t.options is None:
      text = generate_fn(t.prompt, len(t.answer) + GENERATION_SLACK)
      correct = correct_norm = _first_line(text) == t.answer
    else:
      continuations = tuple(DELIMITER + o for o in t.options)
      scores = np.asarray(loglik_fn(t.prompt, continuations), np.float64)
      if scores.shape != (len(t.options),):
        raise ValueError(f"iq.score: loglik_fn gave {scores.size} scores for "
                         f"{len(t.options)} options of task {t.name}")
      lengths = np.array([count(c) for c in continuations], np.float64)
      if (lengths < 1).any():
        raise ValueError(f"iq.score: an option of task {t.name} counts "
                         f"{lengths.min():g} tokens; every option needs one")
      correct = t.options[int(np.argmax(scores))] == t.answer
      correct_norm = t.options[int(np.argmax(scores / lengths))] == t.answer
    e = tally.setdefault(t.name, {
        "suite": t.suite, "choice": t.options is not None,
        "heuristic": _heuristic_of(t).__name__, "n": 0, "chance": 0.0,
        "correct": 0, "correct_norm": 0, "floor_correct": 0})
    e["n"] += 1
    e["chance"] += t.chance
    e["correct"] += int(correct)
    e["correct_norm"] += int(correct_norm)
    e["floor_correct"] += int(floor)

  def summary(e: dict, choice: bool) -> dict:
    n = e["n"]
    out = {"n": n, "chance": e["chance"] / n,
           **_rate(e["floor_correct"], n, "floor"),
           "floor_correct": e["floor_correct"],
           **_rate(e["correct"], n, "accuracy"), "correct": e["correct"]}
    out["floor_above_flag"] = out["floor"] > FLOOR_FLAG
    if choice:
      out.update(_rate(e["correct_norm"], n, "accuracy_norm"),
                 correct_norm=e["correct_norm"])
    else:
      out.update(accuracy_norm=None, accuracy_norm_ci=None, correct_norm=None)
    return out

  per_task = {name: {"suite": e["suite"], "choice": e["choice"],
                     "heuristic": e["heuristic"], **summary(e, e["choice"])}
              for name, e in tally.items()}
  seen = {e["suite"] for e in tally.values()}
  per_suite = {}
  for suite in [s for s in SUITES if s in seen] + sorted(seen - set(SUITES)):
    members = [e for e in tally.values() if e["suite"] == suite]
    pooled = {k: sum(e[k] for e in members)
              for k in ("n", "chance", "correct", "correct_norm",
                        "floor_correct")}
    per_suite[suite] = summary(pooled, any(e["choice"] for e in members))
  return {"normalisation": normalisation, "confidence": CONFIDENCE,
          "floor_flag": FLOOR_FLAG, "tasks": per_task, "suites": per_suite}


def _cell(entry: dict, key: str) -> str:
  if entry.get(key) is None:
    return "-"
  lo, hi = entry[f"{key}_ci"]
  return f"{entry[key]:.3f} [{lo:.3f}, {hi:.3f}]"


def format_table(result: dict) -> str:
  """`score`'s result as text: per task, then per suite, chance, the
  heuristic floor and the accuracy under both scorings, each with its 95%
  interval; a floor above FLOOR_FLAG is marked."""
  per = result["normalisation"].removeprefix("per ")
  rows = [("task", "suite", "n", "chance", "floor [95% CI]",
           "accuracy: sum [95% CI]", f"accuracy: per {per} [95% CI]",
           "heuristic", "note")]
  order = {s: i for i, s in enumerate(SUITES)}
  tasks = sorted(result["tasks"].items(),
                 key=lambda kv: (order.get(kv[1]["suite"], len(order)),
                                 kv[1]["suite"]))
  flag = f"floor > {result['floor_flag']:.0%}"
  suites = [("(all)", {**e, "suite": s}) for s, e in result["suites"].items()]
  for name, e in tasks + suites:
    rows.append((name, e["suite"], str(e["n"]), f"{e['chance']:.3g}",
                 _cell(e, "floor"), _cell(e, "accuracy"),
                 _cell(e, "accuracy_norm"), e.get("heuristic", ""),
                 flag if e["floor_above_flag"] else ""))
  widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
  lines = ["  ".join(c.ljust(w) if i in (0, 1, 7, 8) else c.rjust(w)
                     for i, (c, w) in enumerate(zip(r, widths))).rstrip()
           for r in rows]
  lines.append(
      f"floor: the heuristic's accuracy on the same items; accuracy: exact "
      f"match, or for choice tasks the option with the highest summed "
      f"log-likelihood, or the highest per {per}; {result['confidence']:.0%} "
      f"Wilson intervals.")
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
