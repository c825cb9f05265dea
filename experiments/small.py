r"""Growth vs. from scratch at GPU scale: 9M -> 34M parameters on Python source.

    python -m growjax.main --config experiments/small.py --workdir runs/small
    python -m growjax.main --config experiments/small.py:baseline --workdir runs/small_baseline
    python -m growjax.report runs/small runs/small_baseline

Sized for one GPU (a few minutes each on an H200); `runlocal` is a CPU smoke
run. Stage 0 trains d_model 256 / 4 layers on 75% of the tokens; MSG then
doubles width and depth (512 / 8 layers) for the rest. `baseline` trains the
final shape from scratch on the same tokens and schedule length. Both read the
same data in the same order (the embedded corpus, about 3 epochs).
"""

import ml_collections

from growjax.experiment import parse_arg

SEQ_LEN = 512


def get_config(arg=None):
  a = parse_arg(arg, runlocal=False, baseline=False)
  c = ml_collections.ConfigDict()
  c.name = "small_baseline" if a["baseline"] else "small"
  c.seed = 0
  c.data = dict(name="python_source", seq_len=SEQ_LEN, vocab_size=8192,
                val_fraction=0.05)  # >= 1M held-out tokens
  c.model = dict(d_model=256, n_layers=4, n_heads=4, head_dim=64, d_ff=1024,
                 pos="xpos", dtype="bfloat16")
  batch = 32
  step_tokens = batch * SEQ_LEN
  final = dict(d_model=512, n_heads=8, d_ff=2048, n_layers=8)
  c.stages = [
      dict(tokens=1200 * step_tokens, batch_size=batch,
           lr=dict(peak=2e-3, warmup_steps=100, final=6e-4)),
      dict(model=final, grow=dict(method="msg", ramp_steps=100, new_layers="interleave"),
           tokens=400 * step_tokens, batch_size=batch,
           lr=dict(peak=1e-3, warmup_steps=50, final=1e-4)),
  ]
  if a["baseline"]:
    c.model = dict(c.model, **final)
    c.stages = [dict(tokens=1600 * step_tokens, batch_size=batch,
                     lr=dict(peak=1e-3, warmup_steps=100, final=1e-4))]
  c.mesh = dict(data=-1, fsdp=1, tensor=1)
  c.checkpoint = dict(every_steps=400, keep=1)
  c.eval = dict(every_steps=100, tokens=1_048_576)
  c.train = dict(log_every=20, progress=True)
  if a["runlocal"]:
    c.data.update(vocab_size=512, seq_len=64)
    c.model.update(dtype="float32")
    for s in c.stages:
      s.update(tokens=4 * batch * 64, lr=dict(s["lr"], warmup_steps=1))
      if "grow" in s:
        s["grow"]["ramp_steps"] = 2
    c.eval = dict(every_steps=2, tokens=2_048)
    c.train = dict(log_every=1, progress=True)
  return c
