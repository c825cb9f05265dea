"""IQ tasks: the Task record, the registries, generate(), and shared helpers.

Two registries, filled by the suite modules: TASKS maps a task name to its
generator, HEURISTICS maps it to that task's floor strategy (a function of
the prompt and options alone, never the answer).
"""

import dataclasses
import math
import zlib
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from growjax import checks

SUITES = ("symbolic_mapping", "rule_understanding", "pattern_mining",
          "anti_interference")
DELIMITER = " "  # between a prompt and its answer
# Characters a greedy continuation may run past the answer, so that a longer
# first line shows up as a mismatch instead of being cut to the answer.
GENERATION_SLACK = 8
# Items per task unless told: a Wilson 95% interval at 200 items is at most
# +-0.07 wide, so a task's score can be told from its floor.
DEFAULT_N_PER_TASK = 200


@dataclasses.dataclass(frozen=True)
class Task:
  """One test item: the model continues `prompt`; `answer` is correct."""

  suite: str  # one of SUITES
  name: str  # key of TASKS
  prompt: str  # ends with ":" or "->"; the answer follows after DELIMITER
  answer: str  # exact expected text (no leading space)
  options: tuple[str, ...] | None  # choices to rank; None: generation task
  chance: float  # accuracy of a uniform guesser (see the module docstring)

  def __post_init__(self):
    if self.options is not None and self.answer not in self.options:
      raise ValueError(
          f"Task {self.name}: answer {self.answer!r} is not among the options "
          f"{self.options!r}")


Generator = Callable[..., list[Task]]
Heuristic = Callable[[Task], str]
TASKS: dict[str, Generator] = {}  # task name -> generator(seed, n, **params)
SUITE_OF: dict[str, str] = {}  # task name -> suite
# task name -> the simple strategy whose accuracy is the task's floor: it
# reads the prompt (and options) and returns an answer, skipping the ability
# the task tests (see the package docstring).
HEURISTICS: dict[str, Heuristic] = {}


def _register(suite: str) -> Callable[[Generator], Generator]:
  def wrap(fn: Generator) -> Generator:
    TASKS[fn.__name__] = fn
    SUITE_OF[fn.__name__] = suite
    return fn
  return wrap


def _heuristic(task: str) -> Callable[[Heuristic], Heuristic]:
  """Registers the decorated function as the heuristic floor of `task`."""
  def wrap(fn: Heuristic) -> Heuristic:
    HEURISTICS[task] = fn
    return fn
  return wrap


def generate(seed: int, n_per_task: int = DEFAULT_N_PER_TASK, *,
             names: Sequence[str] | None = None,
             params: Mapping[str, Mapping[str, Any]] | None = None,
             ) -> list[Task]:
  """`n_per_task` instances of every task (or of `names`), in TASKS order.

  Args:
    seed: non-negative integer; the same seed gives the same tasks. Each task
      draws from its own stream (seed, task name), so adding or dropping a
      task leaves the others unchanged.
    n_per_task: instances per task.
    names: task names to generate; default all of TASKS.
    params: task name -> keyword arguments for its generator, e.g.
      {"word_replacement": {"shots": 2}}.
  """
  checks.positive_int("iq.generate: n_per_task", n_per_task)
  names = list(TASKS) if names is None else list(names)
  params = dict(params or {})
  for name in list(names) + list(params):
    if name not in TASKS:
      raise ValueError(f"iq.generate: unknown task {name!r}; known: "
                       f"{', '.join(TASKS)}")
  tasks = []
  for name in names:
    tasks += TASKS[name](seed, n_per_task, **params.get(name, {}))
  return tasks


# ---------------------------------------------------------------- helpers

_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_CONSONANTS = "bcdfghjklmnpqrstvwxz"  # no vowels: symbols never spell words
_SYMBOL_MARKS = "#@$%&*"


def _rng(seed: int, name: str, n: int) -> np.random.Generator:
  checks.integer(f"iq.{name}: seed", seed, low=0)
  checks.integer(f"iq.{name}: n", n, low=0)
  # crc32, not hash(): str hashes are salted per process.
  return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


def _pick(rng: np.random.Generator, seq: Sequence[Any]) -> Any:
  return seq[int(rng.integers(len(seq)))]


def _range(rng: np.random.Generator, bounds: tuple[int, int]) -> int:
  return int(rng.integers(bounds[0], bounds[1] + 1))


def _check_bounds(name: str, field: str, bounds: tuple[int, int],
                  low: int) -> None:
  """An inclusive (low, high) range of integers with `low` <= low <= high."""
  lo, hi = bounds
  checks.integer(f"iq.{name}: {field}[0]", lo, low=low)
  checks.integer(f"iq.{name}: {field}[1]", hi, low=lo)


def _check_shots(name: str, shots: int, low: int) -> None:
  checks.integer(f"iq.{name}: shots", shots, low=low)


def _draw_new(make: Callable[[], tuple[str, str]], seen: set[str],
              name: str) -> tuple[str, str]:
  """An (input, output) pair from `make` whose input is not in `seen`.

  Demonstrations and query never repeat, so copying a demonstration's answer
  cannot solve the query.
  """
  for _ in range(1000):
    pair = make()
    if pair[0] not in seen:
      seen.add(pair[0])
      return pair
  raise ValueError(f"iq.{name}: could not draw a new distinct example; "
                   "widen the lengths or lower the shots")


def _distinct(make: Callable[[], tuple[str, str]], count: int, name: str,
              ) -> list[tuple[str, str]]:
  """`count` (input, output) pairs with distinct inputs."""
  seen: set[str] = set()
  return [_draw_new(make, seen, name) for _ in range(count)]


def _few_shot(pairs: Sequence[tuple[str, str]], header: str = "") -> tuple[
    str, str]:
  """Prompt `header + "x -> y" lines + "query ->"`, and the query's answer."""
  lines = [header] if header else []
  lines += [f"{x} ->{DELIMITER}{y}" for x, y in pairs[:-1]]
  lines.append(f"{pairs[-1][0]} ->")
  return "\n".join(lines), pairs[-1][1]


def _permutations(alphabet: int, k: int) -> int:
  return math.perm(alphabet, k)


def _read_few_shot(prompt: str) -> tuple[list[str], list[tuple[str, str]],
                                         str]:
  """The inverse of `_few_shot`, for heuristics: (header lines,
  demonstrations as (input, output), the query's input)."""
  lines = prompt.split("\n")
  header = [line for line in lines[:-1] if f" ->{DELIMITER}" not in line]
  demos = [tuple(line.split(f" ->{DELIMITER}", 1)) for line in lines[:-1]
           if f" ->{DELIMITER}" in line]
  return header, demos, lines[-1].removesuffix(" ->")
