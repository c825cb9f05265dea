"""The IQ tests of FLM-101B, generated from a seed so no model has seen them.

FLM-101B (Li et al., 2023) measures what a model can do with knowledge it
cannot have memorised, in four suites. This module generates tasks in their
spirit, small enough for toy models (every prompt under about 400 characters
with the defaults), deterministically from a seed, in pure Python and numpy:

  symbolic_mapping    sentiment, topic, parity, magnitude: classification
                      with the label words replaced by fresh random symbols,
                      few-shot; choice tasks over the symbols.
  rule_understanding  counting (0-shot), word_replacement and case_change
                      (4-shot): the rule is stated, the model applies it.
  pattern_mining      head_tail, full_repeating, head_slicing (5-shot): the
                      rule is not stated, the model induces it.
  anti_interference   multi_key_retrieval, single_supporting_fact,
                      two_supporting_facts: find the one fact that matters
                      among distractors.

Every prompt ends with ":" or "->"; the answer follows after one space
(`DELIMITER`). Choice tasks are scored by the log-likelihood of
`DELIMITER + option`, generation tasks by exact match of the first line of a
greedy continuation. `chance` is what a uniform guesser scores: 1/len(options)
for choice tasks; for generation tasks 1/|answer space|, the number of
distinct answers the generator can emit with the given parameters (counted
exactly in each generator), since a uniform guess over that space is right
with probability 1/|space| whatever the true answer is.

Usage:
  tasks = iq.generate(seed=0, n_per_task=100)
  result = iq.score(tasks, generate_fn=..., loglik_fn=...)
  print(iq.format_table(result))
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import zlib
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

SUITES = ("symbolic_mapping", "rule_understanding", "pattern_mining",
          "anti_interference")
DELIMITER = " "  # between a prompt and its answer
# Characters a greedy continuation may run past the answer, so that a longer
# first line shows up as a mismatch instead of being cut to the answer.
GENERATION_SLACK = 8


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
TASKS: dict[str, Generator] = {}  # task name -> generator(seed, n, **params)
SUITE_OF: dict[str, str] = {}  # task name -> suite


def _register(suite: str) -> Callable[[Generator], Generator]:
  def wrap(fn: Generator) -> Generator:
    TASKS[fn.__name__] = fn
    SUITE_OF[fn.__name__] = suite
    return fn
  return wrap


def generate(seed: int, n_per_task: int, *,
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
  names = list(TASKS) if names is None else list(names)
  params = dict(params or {})
  for name in list(names) + list(params):
    if name not in TASKS:
      raise ValueError(f"iq.generate: unknown task {name!r}; known: "
                       f"{sorted(TASKS)}")
  tasks = []
  for name in names:
    tasks += TASKS[name](seed, n_per_task, **params.get(name, {}))
  return tasks


# ---------------------------------------------------------------- helpers

_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_CONSONANTS = "bcdfghjklmnpqrstvwxz"  # no vowels: symbols never spell words
_SYMBOL_MARKS = "#@$%&*"


def _rng(seed: int, name: str, n: int) -> np.random.Generator:
  if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or (
      seed < 0):
    raise ValueError(f"iq.{name}: seed={seed!r} is not a non-negative integer")
  if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
    raise ValueError(f"iq.{name}: n={n!r} is not a non-negative integer")
  # crc32, not hash(): str hashes are salted per process.
  return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


def _pick(rng: np.random.Generator, seq: Sequence[Any]) -> Any:
  return seq[int(rng.integers(len(seq)))]


def _range(rng: np.random.Generator, bounds: tuple[int, int]) -> int:
  return int(rng.integers(bounds[0], bounds[1] + 1))


def _check_bounds(name: str, field: str, bounds: tuple[int, int],
                  low: int) -> None:
  lo, hi = bounds
  if not low <= lo <= hi:
    raise ValueError(f"iq.{name}: {field}={bounds!r} must satisfy "
                     f"{low} <= low <= high")


def _check_shots(name: str, shots: int, low: int) -> None:
  if isinstance(shots, bool) or not isinstance(shots, int) or shots < low:
    raise ValueError(f"iq.{name}: shots={shots!r} must be an integer >= {low}")


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


# ------------------------------------------------------ rule understanding


@_register("rule_understanding")
def counting(seed: int, n: int, *, shots: int = 0, max_count: int = 5,
             length: tuple[int, int] = (6, 10),
             alphabet: str = "abcdefgh") -> list[Task]:
  """How often a letter occurs in a list of space-separated letters.

  'How many times does "b" appear in: a c b d b e?\\nAnswer:' -> "2".
  The count is uniform in 0..max_count, so chance = 1/(max_count + 1), which
  a constant guess also scores. `shots` solved questions precede the query
  (the paper's default is 0).
  """
  _check_shots("counting", shots, 0)
  _check_bounds("counting", "length", length, 1)
  if not 0 <= max_count <= length[0]:
    raise ValueError(f"iq.counting: max_count={max_count} must be in "
                     f"0..length[0]={length[0]} (the shortest list)")
  if len(set(alphabet)) < 2:
    raise ValueError(f"iq.counting: alphabet={alphabet!r} needs 2+ letters")
  rng = _rng(seed, "counting", n)
  letters = sorted(set(alphabet))

  def question():
    target = _pick(rng, letters)
    others = [c for c in letters if c != target]
    items = [_pick(rng, others) for _ in range(_range(rng, length))]
    count = int(rng.integers(max_count + 1))
    for i in rng.choice(len(items), size=count, replace=False):
      items[int(i)] = target
    return (f'How many times does "{target}" appear in: {" ".join(items)}?'
            "\nAnswer:", str(count))

  tasks = []
  for _ in range(n):
    pairs = [question() for _ in range(shots + 1)]
    prompt = "\n".join([q + DELIMITER + a for q, a in pairs[:-1]]
                       + [pairs[-1][0]])
    tasks.append(Task("rule_understanding", "counting", prompt, pairs[-1][1],
                      None, 1.0 / (max_count + 1)))
  return tasks


_FILLERS = ("the", "a", "cat", "dog", "box", "hat", "big", "old", "sat", "ran",
            "on", "by")
_COLOURS = ("red", "blue", "green", "black", "white", "pink")


@_register("rule_understanding")
def word_replacement(seed: int, n: int, *, shots: int = 4,
                     length: tuple[int, int] = (3, 5)) -> list[Task]:
  """Replace a stated word in a phrase of `length` words.

  'Replace "red" with "blue".' then `shots` lines "the red cat -> the blue
  cat", then the query. Each phrase holds the source colour once among filler
  words. Answer space: phrases of s words with exactly one colour, so chance =
  1 / sum_s s * |fillers|^(s-1) * |colours|.
  """
  _check_shots("word_replacement", shots, 0)
  _check_bounds("word_replacement", "length", length, 1)
  rng = _rng(seed, "word_replacement", n)
  space = sum(s * len(_FILLERS) ** (s - 1) * len(_COLOURS)
              for s in range(length[0], length[1] + 1))
  tasks = []
  for _ in range(n):
    src, dst = (_COLOURS[int(i)] for i in rng.choice(len(_COLOURS), 2,
                                                     replace=False))

    def make():
      words = [_pick(rng, _FILLERS) for _ in range(_range(rng, length))]
      words[int(rng.integers(len(words)))] = src
      return " ".join(words), " ".join(dst if w == src else w for w in words)

    prompt, answer = _few_shot(_distinct(make, shots + 1, "word_replacement"),
                               f'Replace "{src}" with "{dst}".')
    tasks.append(Task("rule_understanding", "word_replacement", prompt, answer,
                      None, 1.0 / space))
  return tasks


_CASE_WORDS = ("cat", "dog", "sun", "box", "tree", "fish", "milk", "road",
               "song", "bird")


@_register("rule_understanding")
def case_change(seed: int, n: int, *, shots: int = 4,
                length: tuple[int, int] = (2, 4)) -> list[Task]:
  """Rewrite a phrase in the stated case (upper or lower, per instance).

  'Change to upper case.' then `shots` lines "cat DOG Sun -> CAT DOG SUN",
  then the query. Inputs mix lower, UPPER and Title words and always differ
  from their outputs, so copying never passes. Answer space: all-upper or
  all-lower phrases, chance = 1 / (2 * sum_s |words|^s).
  """
  _check_shots("case_change", shots, 0)
  _check_bounds("case_change", "length", length, 1)
  rng = _rng(seed, "case_change", n)
  space = 2 * sum(len(_CASE_WORDS) ** s
                  for s in range(length[0], length[1] + 1))
  styles = (str.lower, str.upper, str.title)
  tasks = []
  for _ in range(n):
    upper = bool(rng.integers(2))

    def make():
      while True:
        words = [_pick(rng, styles)(_pick(rng, _CASE_WORDS))
                 for _ in range(_range(rng, length))]
        x = " ".join(words)
        y = x.upper() if upper else x.lower()
        if x != y:
          return x, y

    prompt, answer = _few_shot(
        _distinct(make, shots + 1, "case_change"),
        f"Change to {'upper' if upper else 'lower'} case.")
    tasks.append(Task("rule_understanding", "case_change", prompt, answer,
                      None, 1.0 / space))
  return tasks


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


# ------------------------------------------------------- anti-interference


@_register("anti_interference")
def multi_key_retrieval(seed: int, n: int, *, keys: int = 8,
                        values: tuple[int, int] = (10, 99)) -> list[Task]:
  """The value of one key among `keys` key-value lines.

  "key 4821: 17\\n...\\nWhat is the value of key 4821?\\nAnswer:" -> "17".
  Keys are distinct 4-digit numbers, values distinct numbers in `values`.
  chance = 1/|values| (uniform over the value range); a guesser that copies a
  random value from the prompt would score 1/keys.
  """
  if keys < 1 or values[1] - values[0] + 1 < keys or values[0] < 0:
    raise ValueError(f"iq.multi_key_retrieval: keys={keys}, values={values!r}"
                     ": need 1 <= keys <= number of values, values >= 0")
  rng = _rng(seed, "multi_key_retrieval", n)
  span = values[1] - values[0] + 1
  tasks = []
  for _ in range(n):
    ks = [1000 + int(k) for k in rng.choice(9000, keys, replace=False)]
    vs = [values[0] + int(v) for v in rng.choice(span, keys, replace=False)]
    q = int(rng.integers(keys))
    lines = [f"key {k}: {v}" for k, v in zip(ks, vs)]
    prompt = "\n".join(lines + [f"What is the value of key {ks[q]}?",
                                "Answer:"])
    tasks.append(Task("anti_interference", "multi_key_retrieval", prompt,
                      str(vs[q]), None, 1.0 / span))
  return tasks


NAMES = ("Mary", "John", "Sandra", "Daniel", "Emma", "Fred")
LOCATIONS = ("kitchen", "garden", "office", "hallway", "bedroom", "bathroom")
OBJECTS = ("apple", "football", "milk", "book")
_MOVE_VERBS = ("went to", "moved to", "journeyed to", "travelled to")
_GET_VERBS = ("picked up", "got", "grabbed")
_DROP_VERBS = ("dropped", "put down", "discarded")


def _moves(rng: np.random.Generator, people: Sequence[str], count: int,
           ) -> list[tuple[str, str, str]]:
  """`count` ("move", person, place) events; nobody moves to where they are."""
  where: dict[str, str] = {}
  events = []
  for _ in range(count):
    person = _pick(rng, people)
    place = _pick(rng, [p for p in LOCATIONS if p != where.get(person)])
    where[person] = place
    events.append(("move", person, place))
  return events


def _story(rng: np.random.Generator, events: Sequence[tuple[str, str, str]],
           ) -> str:
  verbs = {"move": _MOVE_VERBS, "get": _GET_VERBS, "drop": _DROP_VERBS}
  return " ".join(f"{who} {_pick(rng, verbs[kind])} the {what}."
                  for kind, who, what in events)


def _check_people(name: str, people: int) -> None:
  if not 2 <= people <= len(NAMES):
    raise ValueError(f"iq.{name}: people={people} must be in 2..{len(NAMES)}")


@_register("anti_interference")
def single_supporting_fact(seed: int, n: int, *, sentences: int = 6,
                           people: int = 4) -> list[Task]:
  """bAbI task 1: people move between rooms; "Where is Mary?" asks for the
  place of her last move, among moves of the others.

  Choice over all of LOCATIONS (ranked by likelihood); chance 1/6.
  """
  _check_people("single_supporting_fact", people)
  if sentences < 1:
    raise ValueError(f"iq.single_supporting_fact: sentences={sentences} < 1")
  rng = _rng(seed, "single_supporting_fact", n)
  tasks = []
  for _ in range(n):
    events = _moves(rng, NAMES[:people], sentences)
    last = {who: where for _, who, where in events}
    who = _pick(rng, sorted(last))
    prompt = f"{_story(rng, events)}\nWhere is {who}?\nAnswer:"
    tasks.append(Task("anti_interference", "single_supporting_fact", prompt,
                      last[who], LOCATIONS, 1.0 / len(LOCATIONS)))
  return tasks


@_register("anti_interference")
def two_supporting_facts(seed: int, n: int, *, moves: int = 6,
                         people: int = 4, drop_prob: float = 0.5,
                         distractor: bool = True) -> list[Task]:
  """bAbI task 2: "Where is the apple?" needs who took it and where they went.

  A story of `moves` moves; one person who moves at least once picks up the
  asked object (anywhere in the story); with probability `drop_prob` they
  drop it later, after their first move, and it stays where they were; with
  `distractor`, someone else picks up another object. The answer is the
  holder's last place, or their place at the drop. Choice over all of
  LOCATIONS; chance 1/6.
  """
  _check_people("two_supporting_facts", people)
  if moves < 1 or not 0 <= drop_prob <= 1:
    raise ValueError(f"iq.two_supporting_facts: moves={moves} must be >= 1 "
                     f"and drop_prob={drop_prob} in [0, 1]")
  rng = _rng(seed, "two_supporting_facts", n)
  tasks = []
  for _ in range(n):
    events = _moves(rng, NAMES[:people], moves)
    holder = _pick(rng, sorted({who for _, who, _ in events}))
    obj, other = (OBJECTS[int(i)] for i in rng.choice(len(OBJECTS), 2,
                                                      replace=False))
    got = int(rng.integers(len(events) + 1))
    events.insert(got, ("get", holder, obj))
    if rng.random() < drop_prob:
      first_move = next(i for i, e in enumerate(events)
                        if e[0] == "move" and e[1] == holder)
      lo = max(got, first_move) + 1
      events.insert(int(rng.integers(lo, len(events) + 1)),
                    ("drop", holder, obj))
    if distractor:
      taker = _pick(rng, [p for p in NAMES[:people] if p != holder])
      events.insert(int(rng.integers(len(events) + 1)), ("get", taker, other))
    # The answer: replay the story.
    where: dict[str, str] = {}
    place = None
    for kind, who, what in events:
      if kind == "move":
        where[who] = what
      elif kind == "drop" and what == obj:
        place = where[who]
    place = place or where[holder]
    prompt = f"{_story(rng, events)}\nWhere is the {obj}?\nAnswer:"
    tasks.append(Task("anti_interference", "two_supporting_facts", prompt,
                      place, LOCATIONS, 1.0 / len(LOCATIONS)))
  return tasks


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
