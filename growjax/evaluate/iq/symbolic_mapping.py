"""Symbolic mapping: classification with label words replaced by random symbols.

Each instance names its classes by fresh symbols, so label priors carry
nothing over from training or between instances. The query's key word (the
adjective, the noun, the deciding digit) never appears in the
demonstrations: copying the symbol of a demonstration that looks like the
query is right only by chance, and the model has to know what the key means.
"""

from __future__ import annotations

import collections
from typing import Callable

import numpy as np

from growjax.evaluate.iq.tasks import (
    Task, _CONSONANTS, _SYMBOL_MARKS, _check_shots, _few_shot, _heuristic, _pick, _read_few_shot, _register, _rng)


# ------------------------------------------------------- symbolic mapping

SENTIMENT_WORDS = {
    "positive": ("great", "lovely", "superb", "wonderful", "excellent",
                 "pleasant", "fantastic", "delightful"),
    "negative": ("awful", "terrible", "dull", "horrible", "poor", "boring",
                 "dreadful", "bad"),
}
_SENTIMENT_NOUNS = ("film", "food", "service", "book", "room", "trip", "song",
                    "game")
_SENTIMENT_TEMPLATES = ("the {noun} was {adj}", "my {noun} is {adj}",
                        "this {noun} is so {adj}", "{adj} {noun}, truly")

TOPIC_WORDS = {
    "sport": ("ball", "goal", "match", "team", "coach", "race"),
    "food": ("bread", "soup", "cheese", "apple", "rice", "cake"),
    "weather": ("rain", "snow", "wind", "storm", "cloud", "frost"),
    "animal": ("dog", "cat", "horse", "bird", "fish", "cow"),
}
_TOPIC_TEMPLATES = ("we talked about the {noun}", "the {noun} was new",
                    "I saw the {noun} today", "look at that {noun}")


def _symbols(rng: np.random.Generator, k: int) -> tuple[str, ...]:
  """`k` fresh symbols like "#kz"; letter pairs differ, so they stay distinct
  under a tokenizer that maps every punctuation mark to one unknown token."""
  out, pairs = [], set()
  while len(out) < k:
    pair = _pick(rng, _CONSONANTS) + _pick(rng, _CONSONANTS)
    if pair not in pairs:
      pairs.add(pair)
      out.append(_pick(rng, _SYMBOL_MARKS) + pair)
  return tuple(out)


def _symbolic(name: str, seed: int, n: int, shots: int, n_labels: int,
              draw: Callable[[np.random.Generator, int], tuple[str, str]],
              ) -> list[Task]:
  """Few-shot classification into `n_labels` classes named by new symbols.

  `draw(rng, label)` gives a text of class `label` and its key (the part
  that decides the class). Each instance draws its own symbols, so the
  mapping lives only in the prompt; every class appears among the
  demonstrations (else the query's symbol could not be known), the query's
  class is uniform and independent of the demonstrations' classes, and no
  demonstration shares the query's key.
  """
  _check_shots(name, shots, n_labels)
  rng = _rng(seed, name, n)
  tasks = []
  for _ in range(n):
    symbols = _symbols(rng, n_labels)
    labels = list(range(n_labels)) + [
        int(x) for x in rng.integers(n_labels, size=shots - n_labels)]
    rng.shuffle(labels)
    query_label = int(rng.integers(n_labels))
    query, query_key = draw(rng, query_label)
    pairs, seen = [], {query}
    for label in labels:
      for _ in range(1000):
        text, key = draw(rng, label)
        if key != query_key and text not in seen:
          break
      else:
        raise ValueError(f"iq.{name}: shots={shots} is more than the "
                         "distinct demonstrations it can draw")
      seen.add(text)
      pairs.append((text, symbols[label]))
    prompt, answer = _few_shot(pairs + [(query, symbols[query_label])])
    tasks.append(Task("symbolic_mapping", name, prompt, answer, symbols,
                      1.0 / n_labels))
  return tasks


def _likeness(a: str, b: str) -> int:
  """Shared words; for two numbers, digits equal in the same place."""
  if a.isdigit() and b.isdigit():
    return sum(x == y for x, y in zip(a[::-1], b[::-1]))
  return len(set(a.split()) & set(b.split()))


@_heuristic("sentiment")
@_heuristic("topic")
@_heuristic("parity")
@_heuristic("magnitude")
def nearest_demonstration(task: Task) -> str:
  """The symbol of the demonstration most like the query (shared words, or
  digits in the same place); ties go to the symbol shown most often among
  them, then to the latest: surface similarity, label frequency and recency
  together, without knowing what any word means."""
  _, demos, query = _read_few_shot(task.prompt)
  best = max(_likeness(x, query) for x, _ in demos)
  tied = [y for x, y in demos if _likeness(x, query) == best]
  counts = collections.Counter(tied)
  return max(reversed(tied), key=counts.__getitem__)


@_register("symbolic_mapping")
def sentiment(seed: int, n: int, *, shots: int = 6) -> list[Task]:
  """Sentiment of a templated phrase ("the food was awful" -> negative), the
  two labels shown as random symbols; `shots` demonstrations; the query's
  adjective is not among theirs; chance 1/2."""
  classes = tuple(SENTIMENT_WORDS)

  def draw(rng, label):
    adj = _pick(rng, SENTIMENT_WORDS[classes[label]])
    return _pick(rng, _SENTIMENT_TEMPLATES).format(
        noun=_pick(rng, _SENTIMENT_NOUNS), adj=adj), adj

  return _symbolic("sentiment", seed, n, shots, len(classes), draw)


@_register("symbolic_mapping")
def topic(seed: int, n: int, *, shots: int = 8) -> list[Task]:
  """Topic (sport, food, weather, animal) of a templated phrase ("I saw the
  storm today" -> weather) shown as random symbols; the query's noun is not
  among the demonstrations'; chance 1/4."""
  classes = tuple(TOPIC_WORDS)

  def draw(rng, label):
    noun = _pick(rng, TOPIC_WORDS[classes[label]])
    return _pick(rng, _TOPIC_TEMPLATES).format(noun=noun), noun

  return _symbolic("topic", seed, n, shots, len(classes), draw)


@_register("symbolic_mapping")
def parity(seed: int, n: int, *, shots: int = 6) -> list[Task]:
  """Parity of a number in 10..99 ("37" -> odd) shown as random symbols; no
  demonstration ends in the query's last digit; chance 1/2."""

  def draw(rng, label):  # label 0: even, 1: odd
    text = str(10 + 2 * int(rng.integers(45)) + label)
    return text, text[-1]

  return _symbolic("parity", seed, n, shots, 2, draw)


@_register("symbolic_mapping")
def magnitude(seed: int, n: int, *, shots: int = 6) -> list[Task]:
  """Whether a number in 10..99 (never 50) is below or above 50, shown as
  random symbols; no demonstration has the query's tens digit; chance 1/2."""

  def draw(rng, label):  # label 0: 10..49, 1: 51..99
    text = str(10 + int(rng.integers(40)) if label == 0
               else 51 + int(rng.integers(49)))
    return text, text[0]

  return _symbolic("magnitude", seed, n, shots, 2, draw)
