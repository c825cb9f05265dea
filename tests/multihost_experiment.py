r"""The multi-host tests' experiment: two tiny stages and one growth, in seconds.

    python -m growjax.launch --processes 2 --devices 4 -- \
        python -m growjax.main --config tests/multihost_experiment.py --workdir /tmp/mh

Stage 0 trains a one-layer model for 4 steps; stage 1 grows it by `zero`
(no masks, so no second compile when they fold) to two layers and twice the
MLP and trains 4 more. A batch of 8 rows over a (data 8) mesh: each of 8
devices, in one process or spread over two, holds one row. The data is the
toy's runlocal corpus, so a test session prepares it once for both.
"""

import ml_collections

SEQ_LEN, BATCH = 32, 8


def get_config(arg=None):
  del arg
  c = ml_collections.ConfigDict()
  c.name = "multihost"
  c.seed = 0
  c.data = dict(name="python_source", seq_len=SEQ_LEN, vocab_size=512,
                tokenizer_chars=200_000, val_fraction=0.02)
  c.model = dict(d_model=32, n_layers=1, n_heads=2, head_dim=16, d_ff=64, pos="xpos")
  lr = dict(peak=1e-2, warmup_steps=1, final=1e-3)
  c.stages = [
      dict(tokens=4 * BATCH * SEQ_LEN, batch_size=BATCH, lr=lr),
      dict(model=dict(n_layers=2, d_ff=128), grow=dict(method="zero"),
           tokens=4 * BATCH * SEQ_LEN, batch_size=BATCH, lr=lr),
  ]
  c.mesh = dict(data=-1, fsdp=1, tensor=1)
  c.checkpoint = dict(every_steps=2, keep=3)
  c.eval = dict(every_steps=4, tokens=256)
  c.train = dict(log_every=1, progress=False)
  return c
