"""Pattern mining: head and tail, full repeating, head slicing.

The rule is not stated; the model induces it from the demonstrations. A rule
with a parameter (how many items to keep, how often to repeat) draws it per
instance from a range wide enough that no fixed guess, nor one read off the
query's length, is right more than a quarter of the time; the floor
heuristics are such guesses.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from growjax import checks
from growjax.evaluate.iq.tasks import (
    Task, _LETTERS, _check_bounds, _check_shots, _distinct, _few_shot, _heuristic, _permutations, _pick, _range, _read_few_shot, _register, _rng)


# ---------------------------------------------------------- pattern mining
# Inputs are lists of distinct lowercase letters separated by spaces: one
# token per item under most tokenizers, so the pattern is visible to a model
# with a small vocabulary. No instruction is given; the rule must be induced.


def _letters(rng: np.random.Generator, size: int, alphabet: str) -> list[str]:
  return [alphabet[int(i)] for i in rng.choice(len(alphabet), size,
                                               replace=False)]


def _pattern(name: str, seed: int, n: int, shots: int,
             instance: Callable[[np.random.Generator],
                                Callable[[], tuple[list[str], list[str]]]],
             chance: float, vary_lengths: bool) -> list[Task]:
  """Few-shot "x -> f(x)" tasks; `instance(rng)` fixes the rule's parameter
  and returns a maker of (input, output) lists.

  Demonstrations come in at least two lengths when they can, so a rule that
  keeps a fixed number of items is told apart from one that drops a fixed
  number.
  """
  _check_shots(name, shots, 1)
  rng = _rng(seed, name, n)
  tasks = []
  for _ in range(n):
    make_lists = instance(rng)

    def make():
      x, y = make_lists()
      return " ".join(x), " ".join(y)

    for _ in range(100):
      pairs = _distinct(make, shots + 1, name)
      if (not vary_lengths or shots < 2
          or len({len(x.split()) for x, _ in pairs[:-1]}) > 1):
        break
    prompt, answer = _few_shot(pairs)
    tasks.append(Task("pattern_mining", name, prompt, answer, None, chance))
  return tasks


@_register("pattern_mining")
def head_tail(seed: int, n: int, *, shots: int = 5,
              length: tuple[int, int] = (3, 6),
              alphabet: str = _LETTERS) -> list[Task]:
  """Keep the first and the last item: "c f a k -> c k".

  Answer space: ordered pairs of distinct letters, chance = 1/(A(A-1)).
  """
  _check_bounds("head_tail", "length", length, 3)
  a = len(alphabet)

  def instance(rng):
    def make():
      x = _letters(rng, _range(rng, length), alphabet)
      return x, [x[0], x[-1]]
    return make

  return _pattern("head_tail", seed, n, shots, instance,
                  1.0 / _permutations(a, 2), length[0] < length[1])


@_heuristic("head_tail")
def first_two(task: Task) -> str:
  """The query's first two items: an answer of the right length copied from
  the front (never right: lists have 3+ distinct items)."""
  return " ".join(_read_few_shot(task.prompt)[2].split()[:2])


def _distinct_ints(name: str, field: str, values: tuple[int, ...],
                   low: int) -> None:
  if not values or len(set(values)) != len(values):
    raise ValueError(f"iq.{name}: {field}: {values!r} is not a non-empty "
                     "tuple of distinct integers")
  for v in values:
    checks.integer(f"iq.{name}: {field}", v, low=low)


@_register("pattern_mining")
def full_repeating(seed: int, n: int, *, shots: int = 5,
                   length: tuple[int, int] = (2, 3),
                   times: tuple[int, ...] = (2, 3, 4, 5),
                   alphabet: str = _LETTERS) -> list[Task]:
  """Repeat the whole list r times, r uniform per instance from `times`:
  "c f a -> c f a c f a" (r = 2).

  Answer space: lists of s distinct letters repeated r times; distinct (s, r)
  give distinct outputs (the minimal period is s), so chance =
  1 / sum_{r, s} A!/(A-s)!.
  """
  _check_bounds("full_repeating", "length", length, 1)
  _distinct_ints("full_repeating", "times", times, 2)
  space = len(times) * sum(_permutations(len(alphabet), s)
                           for s in range(length[0], length[1] + 1))

  def instance(rng):
    r = int(_pick(rng, times))

    def make():
      x = _letters(rng, _range(rng, length), alphabet)
      return x, x * r
    return make

  return _pattern("full_repeating", seed, n, shots, instance, 1.0 / space,
                  length[0] < length[1])


@_heuristic("full_repeating")
def repeat_twice(task: Task) -> str:
  """The query twice: the commonest repetition, guessed, not induced (right
  when r = 2, a quarter of the instances by default)."""
  query = _read_few_shot(task.prompt)[2]
  return f"{query} {query}"


@_register("pattern_mining")
def head_slicing(seed: int, n: int, *, shots: int = 5,
                 keep: tuple[int, ...] = (1, 2, 3, 4),
                 length: tuple[int, int] = (5, 8),
                 alphabet: str = _LETTERS) -> list[Task]:
  """Keep the first m items, m uniform per instance from `keep`, of lists
  whose length is uniform in `length` whatever m is: "c f a k x -> c f"
  (m = 2). The query's length tells nothing about m, so neither a fixed cut
  nor one in proportion to the length beats 1/len(keep).

  Answer space: lists of m distinct letters, chance = 1 / sum_m A!/(A-m)!.
  """
  _distinct_ints("head_slicing", "keep", keep, 1)
  _check_bounds("head_slicing", "length", length, max(keep) + 1)
  space = sum(_permutations(len(alphabet), m) for m in keep)

  def instance(rng):
    m = int(_pick(rng, keep))

    def make():
      x = _letters(rng, _range(rng, length), alphabet)
      return x, x[:m]
    return make

  return _pattern("head_slicing", seed, n, shots, instance, 1.0 / space,
                  length[0] < length[1])


@_heuristic("head_slicing")
def first_half(task: Task) -> str:
  """The first half of the query (rounded down): a cut in proportion to the
  length, guessed, not induced."""
  items = _read_few_shot(task.prompt)[2].split()
  return " ".join(items[:len(items) // 2])
