r"""Toy growth: a small model on the embedded Python-source corpus, grown twice.

    python -m growjax.main --config experiments/toy.py --workdir runs/toy
    python -m growjax.main --config experiments/toy.py:baseline --workdir runs/toy_baseline
    python -m growjax.report runs/toy runs/toy_baseline

Three stages on a laptop CPU in a few minutes: d_model 64 / 2 layers, grown by
masked structural growth (MSG) to 128 / 4, then deeper to 6 layers. The
`baseline` variant trains the final shape from scratch on the same total
tokens; `runlocal` shrinks everything to a smoke run of seconds (times:
benchmarks/results/readme_times.json).
"""

import ml_collections

from growjax.experiment import parse_arg

SEQ_LEN = 128


def get_config(arg=None):
  a = parse_arg(arg, runlocal=False, baseline=False)
  c = ml_collections.ConfigDict()
  c.name = "toy_baseline" if a["baseline"] else "toy"
  c.seed = 0
  c.data = dict(
      name="python_source",  # the interpreter's own standard library
      seq_len=SEQ_LEN,  # tokens per training window
      vocab_size=1024,  # sentencepiece vocabulary trained from the corpus
      tokenizer_chars=2_000_000,  # characters sampled to train the tokenizer
      val_fraction=0.02)  # documents held out: >= 100k validation tokens
  c.model = dict(d_model=64, n_layers=2, n_heads=4, head_dim=16, d_ff=256,
                 pos="xpos")
  batch = 16
  step_tokens = batch * SEQ_LEN
  c.stages = [
      # most tokens go to the small model, as in FLM-101B
      dict(tokens=400 * step_tokens, batch_size=batch,
           lr=dict(peak=3e-3, warmup_steps=40, final=1e-3)),
      # each growth keeps the function and the Adam moments, so the rate
      # continues where the previous stage ended (no warmup, no jump)
      dict(model=dict(d_model=128, n_heads=8, d_ff=512, n_layers=4),
           grow=dict(method="msg", ramp_steps=40, new_layers="interleave"),
           tokens=150 * step_tokens, batch_size=batch,
           lr=dict(peak=1e-3, warmup_steps=0, final=4e-4)),
      dict(model=dict(n_layers=6),
           grow=dict(method="msg", ramp_steps=30, new_layers="top"),
           tokens=100 * step_tokens, batch_size=batch,
           lr=dict(peak=4e-4, warmup_steps=0, final=1e-4)),
  ]
  if a["baseline"]:  # the final shape, from scratch, on the same tokens
    final = dict(c.model, d_model=128, n_heads=8, d_ff=512, n_layers=6)
    c.model = final
    c.stages = [dict(tokens=sum(s["tokens"] for s in c.stages), batch_size=batch,
                     lr=dict(peak=2e-3, warmup_steps=40, final=1e-4))]
  c.mesh = dict(data=-1, fsdp=1, tensor=1)  # -1: all remaining devices
  c.checkpoint = dict(every_steps=100, keep=2)
  c.eval = dict(every_steps=50, tokens=100_000)  # one fixed held-out set
  c.train = dict(log_every=10, progress=True)  # progress: show a progress bar

  if a["runlocal"]:  # seconds: a smoke test of every code path
    # Few compiled programs: each stage's masks reach 1 at its last step, so
    # they fold there, not mid-stage (which would compile the step again).
    steps = 4
    c.data.update(seq_len=64, vocab_size=512, tokenizer_chars=200_000)
    for s in c.stages:
      s.update(tokens=steps * 8 * 64, batch_size=8)
      s["lr"]["warmup_steps"] = 1
      if "grow" in s:
        s["grow"]["ramp_steps"] = steps
    c.checkpoint = dict(every_steps=2, keep=2)
    c.eval = dict(every_steps=steps, tokens=2_048)
    c.train = dict(log_every=1, progress=True)
  return c
