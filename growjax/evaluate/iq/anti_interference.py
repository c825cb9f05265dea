"""Anti-interference: multiple-key retrieval, one and two supporting facts."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from growjax.evaluate.iq.tasks import (
    Task, _pick, _register, _rng)


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
