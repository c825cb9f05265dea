r"""FLM-101B's growth schedule: 16B -> 51B -> 101B on 192 GPUs (not trained here).

    python -m growjax.main --config experiments/flm101b.py --workdir runs/flm101b --dry_run

The dry run validates the schedule and prints each stage's parameters, tokens,
training FLOPs and memory per device, and the from-scratch equivalent; its
compute agrees with the paper's reported days x TFLOP/s x 192 GPUs within 5-13%
(wall-clock overhead; see growjax/flm101b.py).

Tokens, batch sizes, learning rates and warmups are the paper's (Li et al.
2023, Table 1; batches rounded to whole sequences that split over the mesh).
The final shape is the published one: hidden 10,240, 80 layers, 80 heads,
vocab 100,256, context 2,048. THE 16B AND 51B SHAPES ARE A RECONSTRUCTION:
the paper publishes only their parameter counts. They are chosen (in
growjax.flm101b.STAGES) to land within 2% of 16B and 51B and to grow into the
next stage with MSG: 16B -> 51B widens 5,632 -> 10,240, 51B -> 101B doubles
the depth 40 -> 80.
"""

import ml_collections

from growjax import flm101b
from growjax.experiment import parse_arg

SEQ_LEN = flm101b.SEQ_LEN


def _stage(name, batch_size, microbatches, final_lr, grow=None):
  s = flm101b.STAGES[name]
  stage = dict(tokens=int(s["tokens"]), batch_size=batch_size,
               microbatches=microbatches,
               lr=dict(peak=s["lr"], final=final_lr,
                       warmup_steps=round(s["warmup_samples"] / batch_size)))
  if grow is not None:
    shape = {k: s["model"][k] for k in ("d_model", "n_layers", "n_heads", "d_ff")}
    stage.update(model=shape, grow=grow)
  return stage


def get_config(arg=None):
  parse_arg(arg)
  c = ml_collections.ConfigDict()
  c.name = "flm101b"
  c.seed = 0
  first = flm101b.STAGES["16B"]["model"]
  c.data = dict(name="python_source", seq_len=SEQ_LEN,
                vocab_size=first["vocab_size"])
  c.model = {k: v for k, v in first.items() if k not in ("vocab_size", "max_len")}
  # Batches: 4.72M tokens = 2,304 x 2,048; 4.31M -> 2,112 x 2,048 (4.33M), so
  # that each microbatch splits over data x fsdp = 48 devices.
  c.stages = [
      _stage("16B", 2304, 12, 3.4e-4),
      _stage("51B", 2304, 12, 2e-4,
             grow=dict(method="msg", ramp_steps=500)),
      _stage("101B", 2112, 11, 6e-6,
             grow=dict(method="msg", ramp_steps=500, new_layers="interleave")),
  ]
  # 192 GPUs. The paper used TP/PP/DP 2-4/1-4/12-96; growjax has no pipeline
  # stages, so FSDP takes their place. 16 divides both hidden sizes.
  c.mesh = dict(data=3, fsdp=16, tensor=4)
  c.optimizer = dict(b1=0.9, b2=0.95, weight_decay=0.1, clip_norm=1.0)
  c.train = dict(remat="full", log_every=10)
  c.checkpoint = dict(every_steps=1000, keep=2)
  c.eval = dict(every_steps=1000, tokens=4_194_304)
  return c
