r"""Length extrapolation: xPos against RoPE, trained short, evaluated long.

Two small models, identical but for their positions, are trained on 64-token
windows of the embedded python_source corpus and then read windows of 1x, 2x,
4x and 8x that length (xPos with blockwise causal attention, block = the
training length; RoPE with plain causal attention). FLM-101B chose xPos so a
model keeps working past its training length; this is that claim, CPU-sized
(each training takes a couple of minutes on 2 cores).

Both models, the length evaluation, benchmarks/results/extrapolation.json and
its plot, in one command:

  python benchmarks/extrapolation.py --workdir runs/extrapolation

One model by hand:

  python -m growjax.main --config experiments/extrapolation.py:pos=rope \
      --workdir runs/extrapolation/rope
  python -m growjax.evaluate --workdir runs/extrapolation/rope --suite length

Arguments (`experiments/extrapolation.py:pos=xpos,seq_len=64,runlocal`):
  pos        "xpos" or "rope"
  seq_len    training length in tokens
  tokens     training tokens
  runlocal   a few steps only, for a smoke test

What to expect (every length reads the same validation text): at 1x the two
losses are close; RoPE's loss rises past the training length, the more the
further a token sits from its window's start (ratio_4x a few percent above
1); xPos's stays at its 1x loss (ratio_4x about 1.00). The run also reads
RoPE with xPos's blockwise attention ("rope_blockwise"), which recovers most
but not all of the gap. benchmarks/results/extrapolation.json holds a
measured run.

xPos's scale_base is set to seq_len / 2, the ratio of the xPos paper
(scale_base 512 at training length 1024); the default 512 would leave a
64-token model with almost no distance decay.
"""

import ml_collections

from growjax.experiment import parse_arg


def get_config(arg=None):
  a = parse_arg(arg, pos="xpos", seq_len=64, tokens=2_000_000,
                runlocal=False)
  c = ml_collections.ConfigDict()
  c.name = f"extrapolation-{a['pos']}"
  c.seed = 0
  c.data = dict(name="python_source",     # the embedded stdlib corpus, offline
                seq_len=a["seq_len"],     # training length, tokens
                vocab_size=512,           # sentencepiece pieces (256 are bytes)
                tokenizer_chars=2_000_000)  # characters to train the tokenizer on
  c.model = dict(d_model=64, n_layers=2, n_heads=4, head_dim=16, d_ff=256,
                 pos=a["pos"],                          # "xpos" or "rope"
                 xpos_scale_base=float(a["seq_len"]) / 2)  # xpos only
  stage = dict(tokens=a["tokens"],        # training tokens
               batch_size=32,             # windows per step
               lr=dict(peak=3e-3, warmup_steps=50, final=3e-4))
  c.mesh = dict(data=-1, fsdp=1, tensor=1)  # data parallel over what there is
  c.checkpoint = dict(every_steps=1000, keep=1)
  c.eval = dict(every_steps=500, tokens=32_768)
  c.train = dict(log_every=50)
  if a["runlocal"]:  # 20 steps
    stage.update(tokens=32 * a["seq_len"] * 20,
                 lr=dict(peak=3e-3, warmup_steps=5, final=3e-4))
    c.checkpoint.every_steps = 10
    c.eval = dict(every_steps=10, tokens=2_048)
    c.train = dict(log_every=5)
  c.stages = [stage]  # one stage: no growth
  return c
