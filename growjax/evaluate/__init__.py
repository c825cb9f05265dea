"""Evaluations of trained and grown models.

  python -m growjax.evaluate --workdir RUN --suite ppl|length|iq

Evaluation reads checkpoints (`growjax.trained`) and never trains: nothing
here imports `growjax.train` (a test checks it).

Modules:
  iq             the FLM-101B-style IQ tasks, generated from a seed; scoring
  lm             validation loss: perplexity, loss against context length
  suites         the ppl, length and iq suites on a trained model
  cli            what `python -m growjax.evaluate` does (__main__ has its flags)
  extrapolation  xPos against RoPE: the results table and figure of
                 benchmarks/extrapolation.py (which trains both)
"""
