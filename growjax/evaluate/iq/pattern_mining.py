"""Pattern mining: head and tail, full repeating, head slicing."""

from __future__ import annotations

from typing import Callable

import numpy as np

from growjax.evaluate.iq.tasks import (
    Task, _LETTERS, _check_bounds, _check_shots, _distinct, _few_shot, _permutations, _pick, _range, _register, _rng)


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


@_register("pattern_mining")
def full_repeating(seed: int, n: int, *, shots: int = 5,
                   length: tuple[int, int] = (2, 3),
                   times: tuple[int, ...] = (2, 3),
                   alphabet: str = _LETTERS) -> list[Task]:
  """Repeat the whole list r times, r fixed per instance from `times`:
  "c f a -> c f a c f a" (r = 2).

  Answer space: lists of s distinct letters repeated r times; distinct (s, r)
  give distinct outputs (the minimal period is s), so chance =
  1 / sum_{r, s} A!/(A-s)!.
  """
  _check_bounds("full_repeating", "length", length, 1)
  if not times or len(set(times)) != len(times) or min(times) < 2:
    raise ValueError(f"iq.full_repeating: times={times!r} must be distinct "
                     "integers >= 2")
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


@_register("pattern_mining")
def head_slicing(seed: int, n: int, *, shots: int = 5,
                 keep: tuple[int, ...] = (2, 3),
                 extra: tuple[int, int] = (1, 3),
                 alphabet: str = _LETTERS) -> list[Task]:
  """Keep the first m items, m fixed per instance from `keep`; inputs have
  m + e items, e in `extra`: "c f a k -> c f" (m = 2).

  Answer space: lists of m distinct letters, chance = 1 / sum_m A!/(A-m)!.
  """
  _check_bounds("head_slicing", "extra", extra, 1)
  if not keep or len(set(keep)) != len(keep) or min(keep) < 1:
    raise ValueError(f"iq.head_slicing: keep={keep!r} must be distinct "
                     "integers >= 1")
  space = sum(_permutations(len(alphabet), m) for m in keep)

  def instance(rng):
    m = int(_pick(rng, keep))

    def make():
      x = _letters(rng, m + _range(rng, extra), alphabet)
      return x, x[:m]
    return make

  return _pattern("head_slicing", seed, n, shots, instance, 1.0 / space,
                  extra[0] < extra[1])
