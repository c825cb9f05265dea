"""growjax: train language models cheaply by growing them.

    import jax, growjax
    cfg = growjax.ModelConfig(vocab_size=512, d_model=64, n_layers=2, n_heads=4,
                              head_dim=16, d_ff=256, max_len=256, pos="xpos")
    params = growjax.model.init(cfg, jax.random.key(0))
    logits = growjax.model.apply(params, cfg, tokens)
    grown = growjax.grow.grow(params, cfg, cfg.replace(d_model=128),
                              jax.random.key(1), method="msg")

The modules, each importing only those listed below it:

  main, cli       python -m growjax.main: flags; validate, train or plan, report
  sample          python -m growjax.sample: continue a prompt with a run
  evaluate/       python -m growjax.evaluate: perplexity, length, IQ suites;
                  reads checkpoints, never trains
  command         one way to start a command: flags, logging, one-line errors
  report, plan    runs compared (loss vs FLOPs and time); the dry run
  trained         a run's latest checkpoint, for evaluation (no optimizer)
  decode          KV-cache generation, sampling, log-likelihoods
  train/          optimizer, train state and step, metrics, the staged loop
  experiment      experiment file -> typed, validated Experiment (plain data)
  cost            FLOPs, MFU, memory per device, GPU-hours and dollars
  grow/           growth methods and their options, plan, operators, masks
                  and their Ramp, optimizer-state growth
  parallel        mesh and logical-axis rules -> NamedSharding
  model           the decoder and its axis table; init / apply / KV cache
  data/           TFDS builders, sentencepiece tokenizer, packed batches
  checkpoint      orbax: one manager per stage, one item per state entry
  config          ModelConfig
  checks          the one set of value checks
  positions       RoPE, xPos, blockwise causal masks
"""

from growjax import config, grow, model, positions
from growjax.config import ModelConfig

__all__ = ["ModelConfig", "config", "grow", "model", "positions"]
