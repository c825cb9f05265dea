r"""Llama-family growth: RMSNorm, SwiGLU, grouped-query attention, in stages.

    python -m growjax.main --config experiments/llama_growth.py --workdir runs/llama
    python -m growjax.export --workdir runs/llama --out runs/llama_hf
    # or start from a Hugging Face Llama-format checkpoint (config.json +
    # safetensors) no larger than stage 1, e.g. one exported above:
    python -m growjax.main --config experiments/llama_growth.py:hf=runs/llama_hf \
        --workdir runs/llama_more

Three stages on the embedded Python-source corpus, a few minutes on a laptop
CPU. Stage 0 is a small Llama-style model (4 query heads over 2 key/value
heads, rope base 500000 as in Llama 3). Stage 1 grows it by masked
structural growth (MSG): wider (d_model 64 -> 128, d_ff 192 -> 384), more
query heads within the same 2 key/value groups (2 -> 4 heads per group) and
deeper (2 -> 4 layers). Stage 2 doubles the heads with their groups (8 over 4
key/value heads) and the MLP by HyperCloning. Every growth keeps the
function: the growth events in metrics.jsonl show the same fixed-batch loss
before and after. `runlocal` shrinks everything to a smoke run of seconds.

With `hf=DIR`, `c.init_from = "hf:DIR"`: stage 0 is the checkpoint's model
(its config.json gives the shape; it must be rmsnorm + swiglu like the
stages that follow, and its vocabulary must be data.vocab_size's, i.e. the
tokenizer growjax trains on this corpus), trained on from its weights.
"""

import ml_collections

from growjax.experiment import parse_arg

SEQ_LEN = 128


def get_config(arg=None):
  a = parse_arg(arg, runlocal=False, hf="")
  c = ml_collections.ConfigDict()
  c.name = "llama_growth"
  c.seed = 0
  c.data = dict(
      name="python_source",  # the interpreter's own standard library
      seq_len=SEQ_LEN,  # tokens per training window
      vocab_size=1024,  # sentencepiece vocabulary trained from the corpus
      tokenizer_chars=2_000_000)  # characters sampled to train the tokenizer
  c.model = dict(
      d_model=64, n_layers=2, head_dim=16,
      n_heads=4, n_kv_heads=2,  # grouped-query attention: 2 heads per group
      d_ff=192,  # SwiGLU: 3 matrices of d_model x d_ff
      norm="rmsnorm", mlp="swiglu", pos="rope", rope_theta=500_000.0)
  batch = 16
  step_tokens = batch * SEQ_LEN
  c.stages = [
      dict(tokens=300 * step_tokens, batch_size=batch,
           lr=dict(peak=3e-3, warmup_steps=30, final=1e-3)),
      # wider, more query heads per key/value head, deeper: msg, exact
      dict(model=dict(d_model=128, n_heads=8, d_ff=384, n_layers=4),
           grow=dict(method="msg", ramp_steps=40, new_layers="interleave"),
           tokens=150 * step_tokens, batch_size=batch,
           lr=dict(peak=2e-3, warmup_steps=15, final=5e-4)),
      # twice the heads with their groups, twice the MLP: hyperclone, exact
      dict(model=dict(n_heads=16, n_kv_heads=4, d_ff=768),
           grow=dict(method="hyperclone", noise=0.5),
           tokens=100 * step_tokens, batch_size=batch,
           lr=dict(peak=1.5e-3, warmup_steps=10, final=1e-4)),
  ]
  if a["hf"]:  # stage 0 is the checkpoint's model: its shape comes from it
    c.init_from = "hf:" + a["hf"]
    c.model = dict()
  c.mesh = dict(data=-1, fsdp=1, tensor=1)  # -1: all remaining devices
  c.checkpoint = dict(every_steps=100, keep=2)
  c.eval = dict(every_steps=50, tokens=65_536)  # one fixed held-out set
  c.train = dict(log_every=10, progress=True)  # progress: show a progress bar

  if a["runlocal"]:  # seconds: a smoke test of every code path
    c.data.update(vocab_size=512, tokenizer_chars=200_000)
    for s in c.stages:
      s["tokens"] = 6 * step_tokens
      s["lr"]["warmup_steps"] = 2
      if "ramp_steps" in s.get("grow", {}):
        s["grow"]["ramp_steps"] = 3
    c.checkpoint = dict(every_steps=4, keep=2)
    c.eval = dict(every_steps=3, tokens=2_048)
    c.train = dict(log_every=1, progress=True)
  return c
