"""Rule understanding: counting, word replacement, case change."""

from __future__ import annotations

from growjax.evaluate.iq.tasks import (
    DELIMITER, Task, _check_bounds, _check_shots, _distinct, _few_shot, _pick, _range, _register, _rng)


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
