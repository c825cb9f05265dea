"""Rule understanding: counting, word replacement, case change.

The rule is stated; the model applies it. A floor here is what skipping the
rule earns: noticing the letter without counting it, copying the phrase,
writing every phrase in one case.
"""

from __future__ import annotations

import re

from growjax.evaluate.iq.tasks import (
    DELIMITER, Task, _check_bounds, _check_shots, _distinct, _few_shot, _heuristic, _pick, _range, _read_few_shot, _register, _rng)


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


@_heuristic("counting")
def presence(task: Task) -> str:
  """"1" if the asked letter is in the query's list, else "0": seeing the
  letter without counting it (right whenever the count is 0 or 1)."""
  letter, items = re.findall(r'How many times does "(.)" appear in: ([^?]*)\?',
                             task.prompt)[-1]
  return "1" if letter in items.split() else "0"


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


@_heuristic("word_replacement")
def copy_phrase(task: Task) -> str:
  """The query's phrase unchanged: continuing without applying the rule
  (never right: every phrase holds the word to replace)."""
  return _read_few_shot(task.prompt)[2]


_CASE_WORDS = ("cat", "dog", "sun", "box", "tree", "fish", "milk", "road",
               "song", "bird")


_CASES = {"upper": str.upper, "lower": str.lower, "title": str.title}


@_register("rule_understanding")
def case_change(seed: int, n: int, *, shots: int = 4,
                length: tuple[int, int] = (2, 4)) -> list[Task]:
  """Rewrite a phrase in the stated case: upper, lower or title, uniform per
  instance, so no one case is right more than a third of the time.

  'Change to title case.' then `shots` lines "cat DOG sun -> Cat Dog Sun",
  then the query. Inputs mix lower, UPPER and Title words and always differ
  from their outputs, so copying never passes. Answer space: phrases in one
  of the three cases, distinct across cases (every word has 3+ letters), so
  chance = 1 / (3 * sum_s |words|^s).
  """
  _check_shots("case_change", shots, 0)
  _check_bounds("case_change", "length", length, 1)
  rng = _rng(seed, "case_change", n)
  space = len(_CASES) * sum(len(_CASE_WORDS) ** s
                            for s in range(length[0], length[1] + 1))
  styles = (str.lower, str.upper, str.title)
  tasks = []
  for _ in range(n):
    case = _pick(rng, tuple(_CASES))

    def make():
      while True:
        words = [_pick(rng, styles)(_pick(rng, _CASE_WORDS))
                 for _ in range(_range(rng, length))]
        x = " ".join(words)
        y = _CASES[case](x)
        if x != y:
          return x, y

    prompt, answer = _few_shot(_distinct(make, shots + 1, "case_change"),
                               f"Change to {case} case.")
    tasks.append(Task("rule_understanding", "case_change", prompt, answer,
                      None, 1.0 / space))
  return tasks


@_heuristic("case_change")
def upper_case(task: Task) -> str:
  """The query in upper case whatever the instruction: one case for every
  item (each case is right for a third of the instances)."""
  return _read_few_shot(task.prompt)[2].upper()
