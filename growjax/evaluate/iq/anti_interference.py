"""Anti-interference: multiple-key retrieval, one and two supporting facts.

The model finds the one fact that matters among others like it. The stories
are built so that recency, frequency and position point at the answer no
more often than at a wrong place: every place is mentioned once, the fact
that answers is never the last sentence, and its position is uniform over
the rest; the person asked about has been somewhere else before, and others
move after them.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from growjax import checks
from growjax.evaluate.iq.tasks import (
    Task, _heuristic, _pick, _register, _rng)


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


@_heuristic("multi_key_retrieval")
def last_value(task: Task) -> str:
  """The value on the last key line: recency (right for 1 in `keys`)."""
  return re.findall(r"^key \d+: (\d+)$", task.prompt, re.M)[-1]


NAMES = ("Mary", "John", "Sandra", "Daniel", "Emma", "Fred")
# bAbI's six rooms and two more, so a story of eight moves can name each
# place once.
LOCATIONS = ("kitchen", "garden", "office", "hallway", "bedroom", "bathroom",
             "cellar", "attic")
OBJECTS = ("apple", "football", "milk", "book")
_MOVE_VERBS = ("went to", "moved to", "journeyed to", "travelled to")
_GET_VERBS = ("picked up", "got", "grabbed")
_DROP_VERBS = ("dropped", "put down", "discarded")


def _story(rng: np.random.Generator, events: Sequence[tuple[str, str, str]],
           ) -> str:
  verbs = {"move": _MOVE_VERBS, "get": _GET_VERBS, "drop": _DROP_VERBS}
  return " ".join(f"{who} {_pick(rng, verbs[kind])} the {what}."
                  for kind, who, what in events)


def _check_story(name: str, people: int, moves: int) -> None:
  checks.integer(f"iq.{name}: people", people, low=2, high=len(NAMES))
  checks.integer(f"iq.{name}: moves", moves, low=3, high=len(LOCATIONS))


def _own_moves(rng: np.random.Generator, moves: int, last: int,
               ) -> tuple[int, list[int]]:
  """Where the asked entity's person moves: (q, earlier positions).

  q, the move that answers, is never the last move; the person also moved
  1 to 3 times before q (as many as fit), at random earlier positions. The
  count is drawn first and q uniformly after it, so neither "the person's
  k-th move", nor "the k-th place from the start or the end", nor "k moves
  after the person's first" is right much more often than another guess.
  `last`: the last position q may take.
  """
  earlier = int(rng.integers(1, min(3, last) + 1))
  q = int(rng.integers(earlier, last + 1))
  return q, sorted(int(i) for i in rng.choice(q, earlier, replace=False))


def _movers(rng: np.random.Generator, people: Sequence[str], who: str,
            moves: int, own: Sequence[int]) -> list[str]:
  """Who makes each of `moves` moves: `who` at the positions `own`, someone
  else everywhere else."""
  others = [p for p in people if p != who]
  return [who if i in own else _pick(rng, others) for i in range(moves)]


def _places(rng: np.random.Generator, moves: int) -> list[str]:
  """A different place for each move: no place is mentioned twice, so
  counting mentions tells nothing."""
  return [LOCATIONS[int(i)] for i in rng.permutation(len(LOCATIONS))[:moves]]


@_register("anti_interference")
def single_supporting_fact(seed: int, n: int, *, moves: int = 8,
                           people: int = 4) -> list[Task]:
  """bAbI task 1: people move between rooms; "Where is Mary?" asks for the
  place of her last move, among her earlier moves and the others' later ones.

  Mary's last move (see `_own_moves`) is never the story's last sentence;
  each of the `moves` sentences names a different place. Choice over all of
  LOCATIONS (ranked by likelihood); chance 1/8.
  """
  _check_story("single_supporting_fact", people, moves)
  rng = _rng(seed, "single_supporting_fact", n)
  tasks = []
  for _ in range(n):
    who = _pick(rng, NAMES[:people])
    q, earlier = _own_moves(rng, moves, moves - 2)
    movers = _movers(rng, NAMES[:people], who, moves, earlier + [q])
    places = _places(rng, moves)
    events = [("move", m, p) for m, p in zip(movers, places)]
    prompt = f"{_story(rng, events)}\nWhere is {who}?\nAnswer:"
    tasks.append(Task("anti_interference", "single_supporting_fact", prompt,
                      places[q], LOCATIONS, 1.0 / len(LOCATIONS)))
  return tasks


@_register("anti_interference")
def two_supporting_facts(seed: int, n: int, *, moves: int = 8,
                         people: int = 4, drop_prob: float = 0.5,
                         distractor: bool = True) -> list[Task]:
  """bAbI task 2: "Where is the apple?" needs who took it and where they went.

  The holder picks up the apple at a uniform point before their move q (see
  `_own_moves`) and so carries it to the answer's place. With probability
  `drop_prob` they drop it at a uniform point after q and move on later, so
  their last place is wrong; else only others move after q. With
  `distractor`, someone else picks up another object. Each move names a
  different place. Choice over all of LOCATIONS; chance 1/8.
  """
  _check_story("two_supporting_facts", people, moves)
  checks.number("iq.two_supporting_facts: drop_prob", drop_prob, low=0,
                high=1)
  checks.boolean("iq.two_supporting_facts: distractor", distractor)
  rng = _rng(seed, "two_supporting_facts", n)
  tasks = []
  for _ in range(n):
    holder = _pick(rng, NAMES[:people])
    obj, other = (OBJECTS[int(i)] for i in rng.choice(len(OBJECTS), 2,
                                                      replace=False))
    drop = bool(rng.random() < drop_prob)
    q, own = _own_moves(rng, moves, moves - 2)
    # before[i]: what happens just before move i (i = moves: at the end).
    before: list[list[tuple[str, str, str]]] = [[] for _ in range(moves + 1)]
    before[int(rng.integers(q + 1))].append(("get", holder, obj))
    own.append(q)
    if drop:
      at = int(rng.integers(q + 1, moves))
      before[at].append(("drop", holder, obj))
      own.append(int(rng.integers(at, moves)))  # moving on after the drop
    movers = _movers(rng, NAMES[:people], holder, moves, own)
    places = _places(rng, moves)
    if distractor:
      taker = _pick(rng, [p for p in NAMES[:people] if p != holder])
      slot = before[int(rng.integers(moves + 1))]
      slot.insert(int(rng.integers(len(slot) + 1)), ("get", taker, other))
    events = []
    for i in range(moves + 1):
      events += before[i]
      if i < moves:
        events.append(("move", movers[i], places[i]))
    prompt = f"{_story(rng, events)}\nWhere is the {obj}?\nAnswer:"
    tasks.append(Task("anti_interference", "two_supporting_facts", prompt,
                      places[q], LOCATIONS, 1.0 / len(LOCATIONS)))
  return tasks


def _sentences(task: Task) -> list[str]:
  return task.prompt.split("\n")[0].removesuffix(".").split(". ")


def _place(sentence: str) -> str | None:
  last = sentence.rsplit(" ", 1)[-1]
  return last if last in LOCATIONS else None


@_heuristic("single_supporting_fact")
def second_last_place(task: Task) -> str:
  """The place named in the story's second-to-last sentence: recency that
  skips the final sentence, which never answers."""
  return [p for p in map(_place, _sentences(task)) if p][-2]


@_heuristic("two_supporting_facts")
def place_before_object(task: Task) -> str:
  """The place named last before the asked object's last mention (where it
  was picked up or dropped): nearness in the text, without following who
  holds it."""
  (obj,) = re.findall(r"\nWhere is the (\w+)\?", task.prompt)
  sentences = _sentences(task)
  last = max(i for i, s in enumerate(sentences) if s.endswith(f" {obj}"))
  places = [p for p in map(_place, sentences[:last]) if p]
  return places[-1] if places else task.options[0]
