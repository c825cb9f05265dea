"""growjax: train language models cheaply by growing them.

    import jax, growjax
    cfg = growjax.ModelConfig(vocab_size=512, d_model=64, n_layers=2, n_heads=4,
                              head_dim=16, d_ff=256, max_len=256, pos="xpos")
    params = growjax.model.init(cfg, jax.random.key(0))
    logits = growjax.model.apply(params, cfg, tokens)
    grown = growjax.grow.grow(params, cfg, cfg.replace(d_model=128),
                              jax.random.key(1), method="msg")

The modules, each importing only those listed below it (or to their right
in the same row); tests/test_layers.py reads this table and checks every
import, those inside functions too. A package's `__main__` is a command line
that nothing imports: it may import anything.

  main, cli       python -m growjax.main: flags; validate, train or plan, report
  study/          python -m growjax.study: every arm of a growth study, then
                  study.json with the speedups and their intervals
  sample          python -m growjax.sample: continue a prompt with a run
  launch          python -m growjax.launch: N JAX processes of D devices on one
                  machine (multi-host tried locally), output by process
  export          python -m growjax.export: a run as a Hugging Face checkpoint
  evaluate_cli    python -m growjax.evaluate (flags in evaluate/__main__.py):
                  one run's suite, or several runs side by side
  command         one way to start a command: flags, logging, one-line errors
  evaluate/       perplexity, length, IQ suites, several runs side by side;
                  reads checkpoints, never trains
  report          runs compared and plotted (loss vs FLOPs and time)
  frontier        the compute frontier: lowest decayed loss per FLOPs (decay
                  branches and run finals), speedups against it (numpy only)
  compare         how runs are compared: smoothed monotone curves, FLOPs to
                  each loss level, bootstrap intervals (numpy only)
  trained         a run's latest checkpoint, for evaluation (no optimizer)
  decode          KV-cache generation, sampling, log-likelihoods
  hf              Hugging Face (GPT-NeoX, Llama, Qwen2, Mistral) <-> growjax
                  parameters
  hf_reference    those families' transformers forward passes in numpy
  train/          optimizer, train state and step, the numerical guard,
                  preemption (SIGTERM), metrics, the staged loop, decay branches
  lock            one run per workdir
  dry_run         the plan: FLOPs, tokens and memory per stage and policy,
                  and each stage's remat policy (the trainer takes it too)
  experiment      experiment file -> typed, validated Experiment (plain data)
  hf              Hugging Face (Llama, GPT-NeoX) <-> growjax parameters
  memory          bytes per device of a train step (a `Workload`), the remat
                  policy that fits, the mesh that would
  flm101b         FLM-101B's published figures and reconstructed shapes
  cost            FLOPs, MFU, a growth schedule's price
  grow/           growth methods and their options, plan, operators, masks
                  and their Ramp, optimizer-state growth, lr multipliers
  parallel        mesh and logical-axis rules -> NamedSharding
  collectives     what a jitted program communicates: its collectives by
                  kind, dtype and bytes, read after SPMD partitioning
  loss            next-token cross-entropy, whole or chunked logits
  model           the decoder; init / apply / KV cache; the remat policies
                  (`REMAT`)
  constraints     sharding constraints inside the model by logical axes
                  (activations, cast weights), on when a step has a mesh
  mup             muP's init stds, Adam multipliers, logits and attention
                  factors, relative to a base shape
  params          the parameter table: each parameter's path, logical axes,
                  fan-in, init, muP role (sharding, growth, muP read it)
  logical         the logical-axis -> mesh-axis rule walk, on axis sizes
  data/           TFDS builders, sentencepiece tokenizer, batches drawn across
                  the epoch, the fixed validation set, corpus fingerprint
  checkpoint      orbax: one manager per stage, one item per state entry;
                  corrupt checkpoints moved aside
  blame           which errors are a user's (one line) and which are bugs
  pause           named points where the chaos test stops a run
  atomic          write-then-rename for small files
  progress        one way to show progress: tqdm bars on a terminal, plain
                  lines elsewhere; log lines through tqdm.write
  schedule        the run's learning rate across stages (per-stage cosine or
                  warmup-stable-decay, re-warms) and its decay branches
  config          ModelConfig
  checks          the one set of value checks
  positions       RoPE, xPos, blockwise causal masks
"""

from growjax import config, grow, model, positions
from growjax.config import ModelConfig

__all__ = ["ModelConfig", "config", "grow", "model", "positions"]
