"""Evaluations of trained and grown models.

  python -m growjax.evaluate --workdir RUN [--workdir RUN2 ...] \
      --suite ppl|length|iq

Evaluation reads checkpoints (`growjax.trained`) and never trains: nothing
here imports `growjax.train` (a test checks it).

Modules:
  iq             the FLM-101B-style IQ tasks, generated from a seed; scoring
                 beside chance and heuristic floors, Wilson intervals
  lm             validation losses: the fixed validation set, loss against
                 context length on the same tokens at every length
  suites         the ppl, length and iq suites on a trained model
  side_by_side   several models' results of one suite in one table, with
                 paired differences
  __main__       the command's flags; what it does once they are parsed is
                 growjax.evaluate_cli, in the command layer above this one
  extrapolation  xPos against RoPE over seeds: rows, t-intervals, the table
                 and figure of benchmarks/extrapolation.py (which trains them)
"""
