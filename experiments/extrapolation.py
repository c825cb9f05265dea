r"""Length extrapolation: xPos against RoPE, trained short, evaluated long.

Models identical but for their positions are trained on windows of l tokens
of the embedded python_source corpus, then read windows of 1x, 2x, 4x and 8x
that length three ways: plain causal attention, and blockwise causal
attention with blocks of l/2 (the xPos paper's, arXiv 2212.10554 section 3.3:
no query-key distance reaches l) and of l. FLM-101B chose xPos so a model
keeps working past its training length; this is that claim, with the
attention pattern separated from the position encoding.

The default is the H200 size: 12 layers, d_model 512 (38M matmul weights),
l = 512, bf16, 10M tokens per model (305 steps of 64 windows). At 266 MFLOP
per training token (growjax.cost.train_flops_per_token) a model is 2.7
PFLOP, about 9 s at 300 TFLOP/s, so the benchmark's 12 models (RoPE and
three xPos scale_base values, 3 seeds each) are about 2 minutes of training;
the rest of its ~8 minute budget is data preparation, compiles (one set per
model kind: the seeds share them) and the readings. `runlocal` is the CPU
size (2 layers, d_model 64, l = 64, 1M tokens).

Every model, its length evaluation, benchmarks/results/extrapolation.json
and its plot, in one resumable command (one H200; the CPU version writes
extrapolation_cpu.json):

  python benchmarks/extrapolation.py --workdir runs/extrapolation
  python benchmarks/extrapolation.py --workdir runs/extrapolation_cpu \
      --arg runlocal --out benchmarks/results/extrapolation_cpu.json

One model by hand:

  python -m growjax.main --config experiments/extrapolation.py:pos=rope \
      --workdir runs/extrapolation/rope/seed0
  python -m growjax.evaluate --workdir runs/extrapolation/rope/seed0 \
      --suite length

Arguments (`experiments/extrapolation.py:pos=xpos,scale_base=512,seed=1`):
  pos         "xpos" or "rope"
  scale_base  xPos positions per factor zeta of decay (default l / 2, the
              paper's ratio: 512 at its training length 1024)
  seed        initialisation and data order
  seq_len     training length l in tokens
  tokens      training tokens
  runlocal    the CPU size

What to expect is what benchmarks/results/extrapolation*.json measured: see
the summary there, with its intervals over seeds.
"""

import ml_collections

from growjax.experiment import parse_arg


def get_config(arg=None):
  a = parse_arg(arg, pos="xpos", scale_base=0.0, seed=0, seq_len=0, tokens=0,
                runlocal=False)
  local = a["runlocal"]
  seq_len = a["seq_len"] or (64 if local else 512)
  c = ml_collections.ConfigDict()
  c.name = f"extrapolation-{a['pos']}"
  c.seed = a["seed"]
  c.data = dict(name="python_source",     # the embedded stdlib corpus, offline
                seq_len=seq_len,          # training length l, tokens
                vocab_size=512,           # sentencepiece pieces (256 are bytes)
                tokenizer_chars=2_000_000,  # text the tokenizer learns from
                # documents held out: enough for windows of 8 l
                val_fraction=0.01 if local else 0.05)
  c.model = dict(d_model=512, n_layers=12, n_heads=8, head_dim=64, d_ff=2048,
                 dtype="bfloat16",                       # compute dtype
                 pos=a["pos"],                           # "xpos" or "rope"
                 xpos_scale_base=a["scale_base"] or seq_len / 2)  # xpos only
  stage = dict(tokens=a["tokens"] or 10_000_000,  # training tokens
               batch_size=64,                     # windows per step
               lr=dict(peak=1.5e-3, warmup_steps=40, final=1.5e-4))
  c.mesh = dict(data=-1, fsdp=1, tensor=1)  # data parallel over what there is
  c.checkpoint = dict(every_steps=100_000, keep=1)  # the last step only
  c.eval = dict(every_steps=100)  # validation loss every N steps
  c.train = dict(log_every=20)
  if local:  # the CPU size
    c.model.update(d_model=64, n_layers=2, n_heads=4, head_dim=16, d_ff=256,
                   dtype="float32")
    stage.update(tokens=a["tokens"] or 1_000_000, batch_size=32,
                 lr=dict(peak=3e-3, warmup_steps=50, final=3e-4))
    c.eval = dict(every_steps=250)
    c.train = dict(log_every=50)
  c.stages = [stage]  # one stage: no growth
  return c
