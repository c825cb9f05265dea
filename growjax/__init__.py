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
  study           python -m growjax.study: every arm of a growth study, then
                  study.json with the speedups and their intervals
  sample          python -m growjax.sample: continue a prompt with a run
  export          python -m growjax.export: a run as a Hugging Face checkpoint
  evaluate/       python -m growjax.evaluate: perplexity, length, IQ suites,
                  several runs side by side; reads checkpoints, never trains
  command         one way to start a command: flags, logging, one-line errors
  blame           which errors are a user's (one line) and which are bugs
  report          runs compared and plotted (loss vs FLOPs and time)
  compare         how runs are compared: smoothed monotone curves, FLOPs to
                  each loss level, bootstrap intervals (numpy only)
  dry_run         the plan: FLOPs, tokens and memory per stage and policy
  trained         a run's latest checkpoint, for evaluation (no optimizer)
  decode          KV-cache generation, sampling, log-likelihoods
  hf              Hugging Face (Llama, GPT-NeoX) <-> growjax parameters
  train/          optimizer, train state and step, the numerical guard,
                  preemption (SIGTERM), metrics, the staged loop
  lock            one run per workdir
  pause           named points where the chaos test stops a run
  progress        one way to show progress: tqdm bars on a terminal, plain
                  lines elsewhere; log lines through tqdm.write
  experiment      experiment file -> typed, validated Experiment (plain data)
  cost            FLOPs, MFU, memory per device and remat policy
  flm101b         FLM-101B's published figures and reconstructed shapes
  grow/           growth methods and their options, plan, operators, masks
                  and their Ramp, optimizer-state growth, lr multipliers
  parallel        mesh and logical-axis rules -> NamedSharding
  logical         the logical-axis -> mesh-axis rule walk, on axis sizes
  loss            next-token cross-entropy, whole or chunked logits
  model           the decoder and its axis table; init / apply / KV cache
  data/           TFDS builders, sentencepiece tokenizer, batches drawn across
                  the epoch, the fixed validation set, corpus fingerprint
  checkpoint      orbax: one manager per stage, one item per state entry;
                  corrupt checkpoints moved aside
  atomic          write-then-rename for small files
  config          ModelConfig
  checks          the one set of value checks
  positions       RoPE, xPos, blockwise causal masks
"""

from growjax import config, grow, model, positions
from growjax.config import ModelConfig

__all__ = ["ModelConfig", "config", "grow", "model", "positions"]
