"""Symbolic mapping: classification with label words replaced by random symbols."""

from __future__ import annotations

from typing import Callable

import numpy as np

from growjax.evaluate.iq.tasks import (
    Task, _CONSONANTS, _SYMBOL_MARKS, _check_shots, _draw_new, _few_shot, _pick, _register, _rng)


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
              text: Callable[[np.random.Generator, int], str]) -> list[Task]:
  """Few-shot classification into `n_labels` classes named by new symbols.

  Each instance draws its own symbols, so the mapping lives only in the
  prompt; every class appears among the demonstrations (else the query's
  symbol could not be known) and the query's class is uniform.
  """
  _check_shots(name, shots, n_labels)
  rng = _rng(seed, name, n)
  tasks = []
  for _ in range(n):
    symbols = _symbols(rng, n_labels)
    labels = list(range(n_labels)) + [
        int(x) for x in rng.integers(n_labels, size=shots - n_labels)]
    rng.shuffle(labels)
    labels.append(int(rng.integers(n_labels)))  # the query
    pairs, seen = [], set()
    for label in labels:
      pairs.append(_draw_new(lambda: (text(rng, label), symbols[label]), seen,
                             name))
    prompt, answer = _few_shot(pairs)
    tasks.append(Task("symbolic_mapping", name, prompt, answer, symbols,
                      1.0 / n_labels))
  return tasks


@_register("symbolic_mapping")
def sentiment(seed: int, n: int, *, shots: int = 6) -> list[Task]:
  """Sentiment of a templated phrase ("the food was awful" -> negative), the
  two labels shown as random symbols; `shots` demonstrations; chance 1/2."""
  classes = tuple(SENTIMENT_WORDS)

  def text(rng, label):
    return _pick(rng, _SENTIMENT_TEMPLATES).format(
        noun=_pick(rng, _SENTIMENT_NOUNS),
        adj=_pick(rng, SENTIMENT_WORDS[classes[label]]))

  return _symbolic("sentiment", seed, n, shots, len(classes), text)


@_register("symbolic_mapping")
def topic(seed: int, n: int, *, shots: int = 8) -> list[Task]:
  """Topic (sport, food, weather, animal) of a templated phrase ("I saw the
  storm today" -> weather) shown as random symbols; chance 1/4."""
  classes = tuple(TOPIC_WORDS)

  def text(rng, label):
    return _pick(rng, _TOPIC_TEMPLATES).format(
        noun=_pick(rng, TOPIC_WORDS[classes[label]]))

  return _symbolic("topic", seed, n, shots, len(classes), text)


@_register("symbolic_mapping")
def parity(seed: int, n: int, *, shots: int = 6) -> list[Task]:
  """Parity of a number in 10..99 ("37" -> odd) shown as random symbols;
  chance 1/2."""

  def text(rng, label):  # label 0: even, 1: odd
    return str(10 + 2 * int(rng.integers(45)) + label)

  return _symbolic("parity", seed, n, shots, 2, text)


@_register("symbolic_mapping")
def magnitude(seed: int, n: int, *, shots: int = 6) -> list[Task]:
  """Whether a number in 1..99 (never 50) is below or above 50, shown as
  random symbols; chance 1/2."""

  def text(rng, label):  # label 0: 1..49, 1: 51..99
    return str(1 + 50 * label + int(rng.integers(49)))

  return _symbolic("magnitude", seed, n, shots, 2, text)
