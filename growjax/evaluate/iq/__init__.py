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

# Importing the suites registers their tasks in TASKS.
from growjax.evaluate.iq import anti_interference, pattern_mining, rule_understanding, symbolic_mapping
from growjax.evaluate.iq.anti_interference import multi_key_retrieval, single_supporting_fact, two_supporting_facts
from growjax.evaluate.iq.pattern_mining import full_repeating, head_slicing, head_tail
from growjax.evaluate.iq.rule_understanding import case_change, counting, word_replacement
from growjax.evaluate.iq.scoring import export_jsonl, format_table, load_jsonl, score
from growjax.evaluate.iq.symbolic_mapping import magnitude, parity, sentiment, topic
from growjax.evaluate.iq.tasks import DELIMITER, GENERATION_SLACK, SUITE_OF, SUITES, TASKS, Task, generate

__all__ = [
    "DELIMITER", "GENERATION_SLACK", "SUITES", "SUITE_OF", "TASKS", "Task",
    "anti_interference", "case_change", "counting", "export_jsonl",
    "format_table", "full_repeating", "generate", "head_slicing", "head_tail",
    "load_jsonl", "magnitude", "multi_key_retrieval", "parity",
    "pattern_mining", "rule_understanding", "score", "sentiment",
    "single_supporting_fact", "symbolic_mapping", "topic",
    "two_supporting_facts", "word_replacement",
]
