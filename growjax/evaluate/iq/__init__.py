"""The IQ tests of FLM-101B, generated from a seed so no model has seen them.

FLM-101B (Li et al., 2023) measures what a model can do with knowledge it
cannot have memorised, in four suites. This package generates tasks in their
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
`DELIMITER + option`, summed and also divided by the option's length in
tokens; generation tasks by exact match of the first line of a greedy
continuation.

Three numbers put a score in context, each over the same items:
  chance  what a uniform guesser scores: 1/len(options) for choice tasks;
          for generation tasks 1/|answer space|, the number of distinct
          answers the generator can emit with the given parameters (counted
          exactly in each generator).
  floor   the accuracy of the task's heuristic (HEURISTICS): the best
          strategy we could write that skips the ability the task tests. It
          reads the prompt only and may copy, guess a fixed parameter, or
          follow position, recency, frequency or surface likeness, but
          neither apply the stated rule, induce the instance's rule, know
          what a word means, nor chain facts. The generators are built so
          that these floors stay low (see each suite's docstring); a floor
          above 40% is flagged (binary choices sit at 50% by chance).
  interval  a Wilson 95% interval for every accuracy; DEFAULT_N_PER_TASK
          (200) items make it at most +-0.07 wide.

Usage:
  tasks = iq.generate(seed=0)                      # 200 items per task
  result = iq.score(tasks, generate_fn=..., loglik_fn=..., token_count_fn=...)
  print(iq.format_table(result))
"""

# Importing the suites registers their tasks in TASKS and HEURISTICS.
from growjax.evaluate.iq import anti_interference, pattern_mining, rule_understanding, symbolic_mapping
from growjax.evaluate.iq.anti_interference import multi_key_retrieval, single_supporting_fact, two_supporting_facts
from growjax.evaluate.iq.pattern_mining import full_repeating, head_slicing, head_tail
from growjax.evaluate.iq.rule_understanding import case_change, counting, word_replacement
from growjax.evaluate.iq.scoring import CONFIDENCE, FLOOR_FLAG, export_jsonl, format_table, load_jsonl, score, wilson
from growjax.evaluate.iq.symbolic_mapping import magnitude, parity, sentiment, topic
from growjax.evaluate.iq.tasks import DEFAULT_N_PER_TASK, DELIMITER, GENERATION_SLACK, HEURISTICS, SUITE_OF, SUITES, TASKS, Task, generate

__all__ = [
    "CONFIDENCE", "DEFAULT_N_PER_TASK", "DELIMITER", "FLOOR_FLAG",
    "GENERATION_SLACK", "HEURISTICS", "SUITES", "SUITE_OF", "TASKS", "Task",
    "anti_interference", "case_change", "counting", "export_jsonl",
    "format_table", "full_repeating", "generate", "head_slicing", "head_tail",
    "load_jsonl", "magnitude", "multi_key_retrieval", "parity",
    "pattern_mining", "rule_understanding", "score", "sentiment",
    "single_supporting_fact", "symbolic_mapping", "topic",
    "two_supporting_facts", "wilson", "word_replacement",
]
