"""Tests of growjax.evaluate.iq, the procedurally generated IQ suite.

Every task's answer is recomputed by a solver written here that reads only
the prompt text (its own lexicons and grammar, never the generator's
internals), so a generator bug shows up as a disagreement.
"""

import json
import math
import random
import re

import hypothesis
from hypothesis import strategies as st
import pytest

from growjax.evaluate import iq

SEEDS = st.integers(0, 2**63 - 1)


# ----------------------------------------------------------------- solvers

_POSITIVE = {"great", "lovely", "superb", "wonderful", "excellent", "pleasant",
             "fantastic", "delightful"}
_NEGATIVE = {"awful", "terrible", "dull", "horrible", "poor", "boring",
             "dreadful", "bad"}
_TOPICS = {
    "sport": {"ball", "goal", "match", "team", "coach", "race"},
    "food": {"bread", "soup", "cheese", "apple", "rice", "cake"},
    "weather": {"rain", "snow", "wind", "storm", "cloud", "frost"},
    "animal": {"dog", "cat", "horse", "bird", "fish", "cow"},
}


def _one(matches, text):
  assert len(matches) == 1, f"{text!r}: classes {matches}"
  return matches[0]


def _sentiment_class(text):
  words = set(re.findall(r"[a-z]+", text))
  return _one([c for c, lex in (("pos", _POSITIVE), ("neg", _NEGATIVE))
               if words & lex], text)


def _topic_class(text):
  words = set(re.findall(r"[a-z]+", text))
  return _one([c for c, lex in _TOPICS.items() if words & lex], text)


def _parity_class(text):
  return int(text) % 2


def _magnitude_class(text):
  value = int(text)
  assert value != 50 and 1 <= value <= 99, text
  return value > 50


_CLASSIFY = {"sentiment": _sentiment_class, "topic": _topic_class,
             "parity": _parity_class, "magnitude": _magnitude_class}


def _few_shot_lines(prompt):
  """(header lines, [(input, output) demos], query input)."""
  lines = prompt.split("\n")
  assert lines[-1].endswith(" ->"), lines[-1]
  query = lines[-1][:-len(" ->")]
  header, demos = [], []
  for line in lines[:-1]:
    if " -> " in line:
      x, y = line.split(" -> ")
      demos.append((x, y))
    else:
      assert not demos, f"header after demonstrations: {line!r}"
      header.append(line)
  return header, demos, query


def solve_symbolic(task):
  classify = _CLASSIFY[task.name]
  _, demos, query = _few_shot_lines(task.prompt)
  symbol_of = {}
  for x, y in demos:
    assert symbol_of.setdefault(classify(x), y) == y, "one class, two symbols"
  assert len(set(symbol_of.values())) == len(symbol_of), "one symbol, 2 classes"
  assert sorted(symbol_of.values()) == sorted(task.options), (
      "every option must be shown in the demonstrations")
  assert query not in {x for x, _ in demos}, "query repeats a demonstration"
  return symbol_of[classify(query)]


def solve_counting(task):
  blocks = re.findall(
      r'How many times does "([a-z])" appear in: ([a-z ]+)\?\nAnswer:( \d+)?',
      task.prompt)
  assert blocks and blocks[-1][2] == "", task.prompt
  for letter, items, answer in blocks:
    count = items.split().count(letter)
    if answer:  # a solved demonstration must be right too
      assert int(answer) == count
  return str(count)


def solve_word_replacement(task):
  header, demos, query = _few_shot_lines(task.prompt)
  (src, dst), = re.findall(r'^Replace "(\w+)" with "(\w+)"\.$', header[0])

  def apply(x):
    return " ".join(dst if w == src else w for w in x.split())

  assert all(apply(x) == y for x, y in demos)
  assert src in query.split()
  return apply(query)


def solve_case_change(task):
  header, demos, query = _few_shot_lines(task.prompt)
  (case,) = re.findall(r"^Change to (upper|lower) case\.$", header[0])
  apply = str.upper if case == "upper" else str.lower
  assert all(apply(x) == y for x, y in demos)
  return apply(query)


def _candidate_rules():
  """Rules a reader might induce from list -> list examples."""
  rules = {"head_tail": lambda x: [x[0], x[-1]]}
  for k in range(1, 8):
    rules[f"head{k}"] = lambda x, k=k: x[:k]
    rules[f"tail{k}"] = lambda x, k=k: x[-k:]
    rules[f"drop_last{k}"] = lambda x, k=k: x[:-k]
    rules[f"repeat{k}"] = lambda x, k=k: x * k
  return rules


def solve_pattern(task):
  """Induce the rule: the answer every rule consistent with the
  demonstrations gives; the demonstrations must leave no ambiguity."""
  header, demos, query = _few_shot_lines(task.prompt)
  assert not header
  demos = [(x.split(), y.split()) for x, y in demos]
  query = query.split()
  answers = {" ".join(rule(query)) for rule in _candidate_rules().values()
             if all(rule(x) == y for x, y in demos)}
  assert len(answers) == 1, f"ambiguous demonstrations: {answers}"
  return answers.pop()


def solve_retrieval(task):
  pairs = re.findall(r"^key (\d+): (\d+)$", task.prompt, re.M)
  (key,) = re.findall(r"What is the value of key (\d+)\?\nAnswer:$",
                      task.prompt)
  table = dict(pairs)
  assert len(table) == len(pairs), "duplicate keys"
  return table[key]


_MOVE = re.compile(r"^(\w+) (?:went|moved|journeyed|travelled) to the (\w+)$")
_GET = re.compile(r"^(\w+) (?:picked up|got|grabbed) the (\w+)$")
_DROP = re.compile(r"^(\w+) (?:dropped|put down|discarded) the (\w+)$")


def solve_babi(task):
  """Replay the story: where each person is, who holds what, where each
  dropped object lies."""
  story, question, answer_cue = task.prompt.split("\n")
  assert answer_cue == "Answer:"
  where, holder, lies = {}, {}, {}
  for sentence in story.rstrip(".").split(". "):
    if m := _MOVE.match(sentence):
      where[m[1]] = m[2]
    elif m := _GET.match(sentence):
      assert m[2] not in holder, "picked up twice"
      holder[m[2]] = m[1]
    elif m := _DROP.match(sentence):
      assert holder.pop(m[2]) == m[1], "dropped by someone not holding it"
      lies[m[2]] = where[m[1]]
    else:
      raise AssertionError(f"unparsed sentence {sentence!r}")
  (article, thing), = re.findall(r"^Where is (the )?(\w+)\?$", question)
  if not article:
    return where[thing]
  return where[holder[thing]] if thing in holder else lies[thing]


SOLVERS = {
    "sentiment": solve_symbolic, "topic": solve_symbolic,
    "parity": solve_symbolic, "magnitude": solve_symbolic,
    "counting": solve_counting,
    "word_replacement": solve_word_replacement,
    "case_change": solve_case_change,
    "head_tail": solve_pattern, "full_repeating": solve_pattern,
    "head_slicing": solve_pattern,
    "multi_key_retrieval": solve_retrieval,
    "single_supporting_fact": solve_babi, "two_supporting_facts": solve_babi,
}


# ------------------------------------------------------------------ tests


def test_registry_covers_four_suites_and_has_a_solver_per_task():
  assert set(iq.SUITE_OF.values()) == set(iq.SUITES)
  assert set(iq.TASKS) == set(SOLVERS) == set(iq.SUITE_OF)
  for name, fn in iq.TASKS.items():
    tasks = fn(0, 3)
    assert len(tasks) == 3
    assert {(t.name, t.suite) for t in tasks} == {(name, iq.SUITE_OF[name])}


@hypothesis.given(seed=SEEDS)
def test_every_answer_agrees_with_an_independent_solver(seed):
  for task in iq.generate(seed, 12):
    assert SOLVERS[task.name](task) == task.answer, task.prompt


@hypothesis.given(seed=SEEDS)
def test_prompts_are_short_and_tasks_well_formed(seed):
  for task in iq.generate(seed, 12):
    assert len(task.prompt) <= 400, (task.name, len(task.prompt))
    assert task.prompt.endswith((":", "->")) and task.answer.strip()
    assert task.answer == task.answer.strip() and "\n" not in task.answer
    assert 0 < task.chance <= 0.5
    if task.options is not None:
      assert len(set(task.options)) == len(task.options)
      assert task.chance == pytest.approx(1 / len(task.options))


# Non-default parameters of every generator, drawn by hypothesis.
PARAMS = {
    "sentiment": st.fixed_dictionaries({"shots": st.integers(2, 8)}),
    "topic": st.fixed_dictionaries({"shots": st.integers(4, 10)}),
    "parity": st.fixed_dictionaries({"shots": st.integers(2, 8)}),
    "magnitude": st.fixed_dictionaries({"shots": st.integers(2, 8)}),
    "counting": st.fixed_dictionaries({
        "shots": st.integers(0, 3), "max_count": st.integers(0, 4),
        "length": st.tuples(st.integers(4, 6), st.integers(6, 9))}),
    "word_replacement": st.fixed_dictionaries({
        "shots": st.integers(0, 6),
        "length": st.tuples(st.integers(2, 3), st.integers(3, 6))}),
    "case_change": st.fixed_dictionaries({
        "shots": st.integers(0, 6),
        "length": st.tuples(st.integers(1, 2), st.integers(2, 4))}),
    "head_tail": st.fixed_dictionaries({
        "shots": st.integers(2, 6),
        "length": st.tuples(st.integers(3, 4), st.integers(4, 6))}),
    "full_repeating": st.fixed_dictionaries({
        "shots": st.integers(2, 6),
        "times": st.sampled_from([(2,), (3,), (2, 3), (2, 4)])}),
    "head_slicing": st.fixed_dictionaries({
        "shots": st.integers(2, 6),
        "keep": st.sampled_from([(1,), (2,), (1, 3), (2, 3, 4)])}),
    "multi_key_retrieval": st.fixed_dictionaries({"keys": st.integers(1, 12)}),
    "single_supporting_fact": st.fixed_dictionaries({
        "sentences": st.integers(1, 8), "people": st.integers(2, 6)}),
    "two_supporting_facts": st.fixed_dictionaries({
        "moves": st.integers(1, 7), "people": st.integers(2, 6),
        "drop_prob": st.sampled_from([0.0, 0.5, 1.0]),
        "distractor": st.booleans()}),
}


@hypothesis.given(seed=SEEDS, params=st.fixed_dictionaries(PARAMS))
def test_answers_agree_with_solver_under_other_shots_and_lengths(seed, params):
  for task in iq.generate(seed, 4, params=params):
    assert SOLVERS[task.name](task) == task.answer, task.prompt


@hypothesis.given(seed=SEEDS, other=SEEDS)
def test_same_seed_same_tasks_other_seed_other_tasks(seed, other):
  hypothesis.assume(seed != other)
  tasks = iq.generate(seed, 5)
  assert tasks == iq.generate(seed, 5)
  others = iq.generate(other, 5)
  for name in iq.TASKS:
    assert ([t.prompt for t in tasks if t.name == name]
            != [t.prompt for t in others if t.name == name]), name


def test_each_task_draws_from_its_own_stream():
  everything = iq.generate(3, 4)
  assert iq.generate(3, 4, names=["counting"]) == [
      t for t in everything if t.name == "counting"]


def _oracle(tasks):
  answer_of = {}
  for t in tasks:  # a prompt must determine its answer
    assert answer_of.setdefault(t.prompt, t.answer) == t.answer

  def generate_fn(prompt, max_chars):
    text = f" {answer_of[prompt]}\nQuestion: more"
    return text[:max_chars]

  def loglik_fn(prompt, options):
    return [0.0 if o == " " + answer_of[prompt] else -1.0 for o in options]

  return generate_fn, loglik_fn


def test_oracle_scores_everything():
  tasks = iq.generate(0, 30)
  generate_fn, loglik_fn = _oracle(tasks)
  result = iq.score(tasks, generate_fn=generate_fn, loglik_fn=loglik_fn)
  assert set(result["tasks"]) == set(iq.TASKS)
  assert set(result["suites"]) == set(iq.SUITES)
  for entry in [*result["tasks"].values(), *result["suites"].values()]:
    assert entry["accuracy"] == 1.0 and entry["n"] >= 30


def _within_binomial_tolerance(accuracy, chance, n, sigmas=4.5):
  return abs(accuracy - chance) <= sigmas * math.sqrt(chance * (1 - chance) / n)


# Generation tasks whose answer space the test knows independently.
SMALL_SPACES = {
    "counting": [str(i) for i in range(6)],
    "multi_key_retrieval": [str(v) for v in range(10, 100)],
}


def test_uniform_guesser_scores_chance():
  n = 800
  tasks = iq.generate(1, n)
  rng = random.Random(0)

  def generate_fn(prompt, max_chars):
    del max_chars
    for name, space in SMALL_SPACES.items():
      if prompt in prompts[name]:
        return rng.choice(space)
    return "".join(rng.choice("abc ") for _ in range(5))

  def loglik_fn(prompt, options):
    return [rng.random() for _ in options]

  prompts = {name: {t.prompt for t in tasks if t.name == name}
             for name in SMALL_SPACES}
  result = iq.score(tasks, generate_fn=generate_fn, loglik_fn=loglik_fn)
  for name, e in result["tasks"].items():
    assert e["n"] == n
    if name in SMALL_SPACES:
      assert e["chance"] == pytest.approx(1 / len(SMALL_SPACES[name]))
    if iq.TASKS[name](0, 1)[0].options is not None or name in SMALL_SPACES:
      assert _within_binomial_tolerance(e["accuracy"], e["chance"], n), (
          name, e)
    else:  # an astronomically large answer space: random text never hits
      assert e["chance"] < 2e-3 and e["accuracy"] == 0.0, (name, e)


def test_constant_guess_and_copying_score_no_better_than_chance():
  """Answers are balanced (a constant guess is at chance) and the query's
  input is never its own answer (copying scores 0)."""
  n = 800
  tasks = iq.generate(2, n)
  constant = {"counting": "2", "multi_key_retrieval": "50"}

  def generate_fn(prompt, max_chars):
    del max_chars
    for name, guess in constant.items():
      if prompt in prompts[name]:
        return guess
    return prompt.split("\n")[-1].removesuffix(" ->")  # copy the query

  prompts = {name: {t.prompt for t in tasks if t.name == name}
             for name in constant}
  result = iq.score(tasks, generate_fn=generate_fn,
                    loglik_fn=lambda p, o: [0.0] * len(o))
  for name, e in result["tasks"].items():
    if name in constant:
      assert _within_binomial_tolerance(e["accuracy"], e["chance"], n), name
    elif iq.SUITE_OF[name] in ("rule_understanding", "pattern_mining"):
      assert e["accuracy"] == 0.0, name


def test_head_tail_answer_space_matches_its_chance():
  tasks = iq.head_tail(4, 200)
  for t in tasks:
    first, last = t.answer.split()
    assert re.fullmatch("[a-z]", first) and re.fullmatch("[a-z]", last)
    assert first != last
  assert tasks[0].chance == pytest.approx(1 / (26 * 25))


def test_score_and_table_report_each_task_beside_chance():
  tasks = iq.generate(5, 10)
  result = iq.score(tasks, generate_fn=lambda p, m: "",
                    loglik_fn=lambda p, o: list(range(len(o))))
  table = iq.format_table(result)
  for name, e in result["tasks"].items():
    (row,) = [line for line in table.splitlines() if f" {name} " in line]
    assert f"{e['accuracy']:.3f}" in row and f"{e['chance']:.3g}" in row
  for suite, e in result["suites"].items():
    members = [t for t in result["tasks"].values() if t["suite"] == suite]
    assert e["chance"] == pytest.approx(
        sum(t["chance"] for t in members) / len(members))


def test_score_rejects_a_wrong_number_of_logliks():
  tasks = iq.sentiment(0, 1)
  with pytest.raises(ValueError, match="scores for 2 options"):
    iq.score(tasks, generate_fn=lambda p, m: "", loglik_fn=lambda p, o: [0.0])


def test_export_jsonl_round_trips(tmp_path):
  tasks = iq.generate(6, 5)
  path = tmp_path / "iq.jsonl"
  iq.export_jsonl(tasks, path)
  lines = path.read_text().splitlines()
  assert len(lines) == len(tasks)
  assert set(json.loads(lines[0])) == {"suite", "name", "prompt", "answer",
                                       "options", "chance"}
  assert iq.load_jsonl(path) == tasks


@pytest.mark.parametrize("call, field", [
    (lambda: iq.topic(0, 1, shots=3), "shots=3"),
    (lambda: iq.counting(0, 1, max_count=7), "max_count=7"),
    (lambda: iq.head_slicing(0, 1, keep=()), "keep"),
    (lambda: iq.multi_key_retrieval(0, 1, keys=0), "keys=0"),
    (lambda: iq.generate(-1, 1), "seed=-1"),
    (lambda: iq.generate(0, 1, names=["iq_of_a_rock"]), "iq_of_a_rock"),
])
def test_bad_parameters_name_the_field(call, field):
  with pytest.raises(ValueError, match=re.escape(field)):
    call()
