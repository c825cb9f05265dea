"""What a model, a stage and a growth schedule cost: FLOPs, memory, days, dollars.

Plain arithmetic on a `ModelConfig`: nothing here traces or runs a model, so a
whole schedule (FLM-101B's included) is priced on a laptop before any compute.

FLOP convention (PaLM, Chowdhery et al. 2022, appendix B): the model FLOPs of
one training token are

    6 * (matmul weights of the blocks)       forward 2, backward 4 per weight
  + 6 * d_model * vocab                      the unembedding matmul
  + 12 * n_layers * n_heads * head_dim * s   QK^T and AV, forward + backward

- The attention term is the full (non-causal) s x s count, as PaLM and
  Megatron-LM count it; a causal kernel that skips the upper triangle does
  about half of it. Model FLOPs count no recomputation (remat does not change
  them), so MFU compares like with like.
- The embedding lookup is a gather: no FLOPs. A tied unembedding still costs
  its matmul.
- LayerNorm scales and biases (4 * d_model per layer + 2 * d_model) are
  elementwise, not matmul weights, so they are left out: "6N" here is 6 x
  (`model.non_embedding_param_count` minus those), which makes the count
  exact against the dot_generals of `jax.grad` of the loss (tests/test_cost.py
  walks the jaxpr). They would add about 1 / (3 d_model) of 6N (0.003% at
  d_model 10,240).
- Elementwise work (softmax, GeLU, LayerNorm, xPos, the optimizer) is ignored.

Megatron-LM (which FLM-101B trained with) reports TFLOP/s with
`megatron_flops_per_token`, a formula for the same model FLOPs whose factor
goes from 3 to 4 with full activation recomputation. FLM-101B's table (days x
TFLOP/s x 192 GPUs) matches the factor-3 (no recomputation) count, not the
factor-4 one: see `FLM101B` below.
"""

from __future__ import annotations

import math

from growjax import model as model_lib
from growjax import parallel
from growjax.config import ModelConfig

SECONDS_PER_DAY = 86_400.0


def _positive_int(name: str, value) -> int:
  if isinstance(value, bool) or not isinstance(value, int) or value < 1:
    raise ValueError(f"{name}: {value!r} is not a positive integer")
  return value


def _positive_number(name: str, value) -> float:
  if isinstance(value, bool) or not isinstance(value, (int, float)) or (
      not value > 0):
    raise ValueError(f"{name}: {value!r} is not a positive number")
  return float(value)


def _layer_norm_params(cfg: ModelConfig) -> int:
  return 4 * cfg.d_model * cfg.n_layers + 2 * cfg.d_model


def matmul_params(cfg: ModelConfig) -> int:
  """Weights of the blocks' matmuls (q, k, v, o, mlp in/out): the N of 6N."""
  return model_lib.non_embedding_param_count(cfg) - _layer_norm_params(cfg)


# ---------------------------------------------------------------- FLOPs

def train_flops_breakdown(cfg: ModelConfig, seq_len: int) -> dict[str, float]:
  """Training FLOPs per token by part: `blocks` (6 x matmul weights),
  `unembed` (6 D V) and `attention` (12 L H K s); see the module docstring."""
  s = _positive_int("seq_len", seq_len)
  return {
      "blocks": 6.0 * matmul_params(cfg),
      "unembed": 6.0 * cfg.d_model * cfg.vocab_size,
      "attention": 12.0 * cfg.n_layers * cfg.n_heads * cfg.head_dim * s,
  }


def train_flops_per_token(cfg: ModelConfig, seq_len: int) -> float:
  """Model FLOPs (forward + backward) of one training token at context
  `seq_len` (PaLM convention; see the module docstring)."""
  return sum(train_flops_breakdown(cfg, seq_len).values())


def megatron_flops_per_token(cfg: ModelConfig, seq_len: int, *,
                             recompute: bool = True) -> float:
  """FLOPs per token as Megatron-LM reports them (Narayanan et al. 2021):
  24 k L h^2 (1 + s/(6h) + V/(16 L h)), k = 4 with full activation
  recomputation (one more forward), k = 3 without (the logit term then
  scales with k too, as Megatron-DeepSpeed's throughput calculator does).

  The formula assumes d_ff = 4h and n_heads * head_dim = h, with h = d_model;
  it is given for configs of that shape (FLM-101B's) and raises otherwise.
  Without recomputation it equals `train_flops_per_token` up to the logit
  term's 6 D V vs 4.5 D V.
  """
  s = _positive_int("seq_len", seq_len)
  h, n, v = cfg.d_model, cfg.n_layers, cfg.vocab_size
  if cfg.d_ff != 4 * h or cfg.n_heads * cfg.head_dim != h:
    raise ValueError(
        f"megatron_flops_per_token: needs d_ff = 4 d_model and n_heads * "
        f"head_dim = d_model, got d_model={h}, d_ff={cfg.d_ff}, "
        f"n_heads*head_dim={cfg.n_heads * cfg.head_dim}")
  k = 4 if recompute else 3
  return 24.0 * k * n * h * h * (1 + s / (6 * h) + v / (16 * n * h))


def model_tflops_per_s(cfg: ModelConfig, seq_len: int,
                       tokens_per_s: float) -> float:
  """Model TFLOP/s of a run that trains `tokens_per_s` tokens per second
  (all devices together)."""
  tokens_per_s = _positive_number("tokens_per_s", tokens_per_s)
  return train_flops_per_token(cfg, seq_len) * tokens_per_s / 1e12


def mfu(cfg: ModelConfig, seq_len: int, tokens_per_s: float,
        peak_tflops_per_device: float, n_devices: int) -> float:
  """Model FLOPs utilisation: model TFLOP/s over the devices' peak TFLOP/s
  (`tokens_per_s` is the whole run's rate, over `n_devices`)."""
  peak = _positive_number("peak_tflops_per_device", peak_tflops_per_device)
  n_devices = _positive_int("n_devices", n_devices)
  return model_tflops_per_s(cfg, seq_len, tokens_per_s) / (peak * n_devices)


# ---------------------------------------------------------------- memory
#
# Sharding follows `growjax.parallel` exactly, in arithmetic: the same rules
# (`parallel.RULES`, or overrides as `c.mesh.rules` gives them) and the same
# choice per dimension (`parallel.logical_to_spec`): a rule's mesh axes lose
# those of size 1 and those an earlier dimension took, then trailing axes are
# dropped until their product divides the dimension; none left: replicated.
# So a dimension that does not divide is replicated, not padded.

def param_shapes(cfg: ModelConfig) -> dict[str, tuple[tuple[str, ...],
                                                      tuple[int, ...]]]:
  """Path -> (logical axes, shape) of every parameter `model.init` creates,
  read from `model.AXES`."""
  sizes = model_lib.axis_sizes(cfg)
  out = {}
  for path, axes in model_lib.AXES.items():
    if path == "unembed" and cfg.tie_embeddings:
      continue
    out[path] = (axes, tuple(sizes[a] for a in axes))
  return out


def _mesh_sizes(mesh: dict) -> dict[str, int]:
  if not isinstance(mesh, dict):
    raise ValueError(f"mesh: {mesh!r} is not a dict of {parallel.MESH_AXES}")
  unknown = sorted(set(mesh) - set(parallel.MESH_AXES))
  if unknown:
    raise ValueError(
        f"mesh: unknown axes {unknown}; expected {parallel.MESH_AXES}")
  return {a: _positive_int(f"mesh[{a!r}]", mesh.get(a, 1))
          for a in parallel.MESH_AXES}


def _shards(axes, shape, sizes: dict[str, int], rules) -> list[int]:
  """How many ways each dimension is split, as growjax.parallel shards it."""
  spec = parallel.logical_to_spec(axes, shape, sizes, rules)
  return [math.prod(sizes[a] for a in ((entry,) if isinstance(entry, str) else entry or ()))
          for entry in spec]


def local_param_count(cfg: ModelConfig, mesh: dict, rules=None) -> int:
  """Parameters one device holds under `growjax.parallel`'s sharding
  (`rules`: None for `parallel.RULES`, or overrides as `c.mesh.rules`
  takes them): embed over fsdp, mlp/heads/vocab over tensor, a dimension
  that does not divide replicated."""
  sizes = _mesh_sizes(mesh)
  rules = parallel.rules_from_config(rules)
  total = 0
  for axes, shape in param_shapes(cfg).values():
    total += math.prod(
        d // n for d, n in zip(shape, _shards(axes, shape, sizes, rules)))
  return total


def local_batch_size(batch_size: int, mesh: dict, rules=None) -> int:
  """Sequences per device: rows split as `parallel.batch_sharding` splits
  them, over the `batch` rule's mesh axes (data x fsdp). A batch that does
  not divide raises, as it cannot be laid out."""
  batch_size = _positive_int("batch_size", batch_size)
  sizes = _mesh_sizes(mesh)
  n = 1
  for name, mesh_axes in parallel.rules_from_config(rules):
    if name != "batch":
      continue
    if mesh_axes is None:
      break
    axes = [a for a in mesh_axes if sizes[a] > 1]
    if axes:
      n = math.prod(sizes[a] for a in axes)
      break
  if batch_size % n:
    raise ValueError(
        f"batch_size: {batch_size} does not divide over the {n} devices of "
        "the batch's mesh axes (data x fsdp)")
  return batch_size // n


def activation_bytes_per_token(cfg: ModelConfig, seq_len: int, *,
                               mesh: dict | None = None,
                               compute_dtype: str = "bfloat16",
                               remat: bool = False, rules=None) -> float:
  """Bytes kept for the backward pass per token of the local batch: a rough
  model after Korthikanti et al. 2022 ("Reducing activation recomputation",
  eq. 2: 34 s b h + 5 a s^2 b bytes per layer at 16 bits, tensor-parallel
  parts / t), adapted to growjax's block, which has no dropout (their masks
  and dropout outputs are dropped) and a float32 residual stream.

  Per layer and token, without remat (t_H, t_F, t_V: how many ways the mesh
  splits heads, mlp and vocab; 1 where the dimension does not divide):
    float32 residual:    2 D              (block input = LN1 input; LN2 input)
    compute dtype:       2 D              (LN1, LN2 outputs: matmul inputs)
                       + 4 H K / t_H      (q, k, v; attention output)
                       + 2 F / t_F        (GeLU input and output)
                       + H s / t_H        (softmax probabilities: the XLA
                                           attention path stores them)
  With remat (each block recomputed in the backward pass): the float32 block
  input of every layer (4 D bytes), plus one layer's full set while it is
  recomputed. Always: the final LN output (D, compute dtype) and the float32
  logits and their gradient (2 x 4 V / t_V). Temporaries of the backward pass
  and XLA's own buffers are not modelled: treat the result as a floor.
  """
  s = _positive_int("seq_len", seq_len)
  sizes = _mesh_sizes({} if mesh is None else mesh)
  rules = parallel.rules_from_config(rules)
  if compute_dtype not in ("float32", "bfloat16", "float16"):
    raise ValueError(f"compute_dtype: {compute_dtype!r} is not one of "
                     "('float32', 'bfloat16', 'float16')")
  a = 4 if compute_dtype == "float32" else 2
  d, hk, f, v = (cfg.d_model, cfg.n_heads * cfg.head_dim, cfg.d_ff,
                 cfg.vocab_size)
  # Each name alone: a mesh axis is used once per array, not across them.
  t_h, t_f, t_v = (_shards((name,), (dim,), sizes, rules)[0] for name, dim in
                   (("heads", cfg.n_heads), ("mlp", f), ("vocab", v)))
  layer = 4 * 2 * d + a * (2 * d + (4 * hk + cfg.n_heads * s) / t_h
                           + 2 * f / t_f)
  if remat:
    blocks = cfg.n_layers * 4 * d + layer
  else:
    blocks = cfg.n_layers * layer
  return blocks + a * d + 2 * 4 * v / t_v


def memory_per_device(cfg: ModelConfig, *, batch_size: int, seq_len: int,
                      mesh: dict, param_bytes: int = 4, opt_bytes: int = 8,
                      compute_dtype: str = "bfloat16", remat: bool = False,
                      rules=None) -> dict[str, float]:
  """Estimated bytes per device of training `cfg` on `mesh`
  (dict(data=, fsdp=, tensor=); a missing axis is 1), sharded as
  `growjax.parallel` shards (`rules` as in `local_param_count`).

  params, gradients: `local_param_count` x param_bytes (float32 master
    weights and their gradients, sharded like the weights: embed over fsdp,
    mlp/heads/vocab over tensor, so LayerNorm vectors only over fsdp);
  optimizer: the same count x opt_bytes (Adam's two float32 moments: 8);
  activations: `activation_bytes_per_token` x seq_len x `local_batch_size`
    (the batch split over data x fsdp; hidden dims over tensor).
  total: the sum. An estimate, not an allocator trace.
  """
  sizes = _mesh_sizes(mesh)
  seq_len = _positive_int("seq_len", seq_len)
  param_bytes = _positive_int("param_bytes", param_bytes)
  opt_bytes = _positive_int("opt_bytes", opt_bytes)
  n = local_param_count(cfg, sizes, rules)
  out = {
      "params": float(n * param_bytes),
      "optimizer": float(n * opt_bytes),
      "gradients": float(n * param_bytes),
      "activations": local_batch_size(batch_size, sizes, rules) * seq_len
                     * activation_bytes_per_token(
                         cfg, seq_len, mesh=sizes, compute_dtype=compute_dtype,
                         remat=remat, rules=rules),
  }
  out["total"] = sum(out.values())
  return out


# ---------------------------------------------------------------- schedules

def stage_summary(cfg: ModelConfig, tokens: float,
                  seq_len: int) -> dict[str, float]:
  """params, non_embedding_params, tokens and train_flops of one stage."""
  tokens = _positive_number("tokens", tokens)
  return {
      "params": model_lib.param_count(cfg),
      "non_embedding_params": model_lib.non_embedding_param_count(cfg),
      "tokens": tokens,
      "train_flops": train_flops_per_token(cfg, seq_len) * tokens,
  }


def schedule_summary(stage_cfgs_and_tokens, seq_len: int) -> dict:
  """Price a growth schedule: a sequence of (ModelConfig, tokens).

  stages: `stage_summary` of each; total_tokens; total_train_flops;
  scratch_train_flops: the final shape trained on the same total tokens;
  saving = 1 - total / scratch; speedup = scratch / total.
  """
  pairs = list(stage_cfgs_and_tokens)
  if not pairs:
    raise ValueError("stage_cfgs_and_tokens: no stages")
  stages = [stage_summary(cfg, tokens, seq_len) for cfg, tokens in pairs]
  total_tokens = sum(s["tokens"] for s in stages)
  total = sum(s["train_flops"] for s in stages)
  scratch = train_flops_per_token(pairs[-1][0], seq_len) * total_tokens
  return {"stages": stages, "total_tokens": total_tokens,
          "total_train_flops": total, "scratch_train_flops": scratch,
          "saving": 1.0 - total / scratch, "speedup": scratch / total}


# ---------------------------------------------------------------- time, money

def gpu_hours(flops: float, *, peak_tflops_per_gpu: float,
              mfu: float) -> float:
  """GPU-hours to do `flops` at utilisation `mfu` of a peak TFLOP/s."""
  flops = _positive_number("flops", flops)
  rate = _positive_number("peak_tflops_per_gpu", peak_tflops_per_gpu) * 1e12
  return flops / (rate * _positive_number("mfu", mfu)) / 3600.0


def dollars(flops: float, *, peak_tflops_per_gpu: float, mfu: float,
            price_per_gpu_hour: float) -> float:
  """`gpu_hours` x a price per GPU-hour."""
  price = _positive_number("price_per_gpu_hour", price_per_gpu_hour)
  return gpu_hours(flops, peak_tflops_per_gpu=peak_tflops_per_gpu,
                   mfu=mfu) * price


def days_on(flops: float, n_gpus: int, tflops_per_gpu: float) -> float:
  """Wall-clock days for `flops` on `n_gpus` that each sustain
  `tflops_per_gpu` (achieved, not peak)."""
  flops = _positive_number("flops", flops)
  n_gpus = _positive_int("n_gpus", n_gpus)
  rate = _positive_number("tflops_per_gpu", tflops_per_gpu) * 1e12
  return flops / (n_gpus * rate) / SECONDS_PER_DAY


def flops_in(days: float, n_gpus: int, tflops_per_gpu: float) -> float:
  """FLOPs that `n_gpus` sustaining `tflops_per_gpu` do in `days`: the
  inverse of `days_on` (a paper's days x TFLOP/s x GPUs)."""
  return (_positive_number("days", days) * SECONDS_PER_DAY
          * _positive_int("n_gpus", n_gpus)
          * _positive_number("tflops_per_gpu", tflops_per_gpu) * 1e12)


# ---------------------------------------------------------------- FLM-101B

# FLM-101B (Li et al. 2023, arXiv 2309.03852), as /work/shared/REFERENCE.md
# records it: 192 A800 GPUs (24 nodes x 8), bf16, context 2,048.
A800_BF16_PEAK_TFLOPS = 312.0  # dense bf16 peak (the paper's % figures use it)
FLM101B_GPUS = 192
FLM101B_DAYS = 21.54  # whole run, wall clock
FLM101B_SCRATCH_DAYS = 76.74  # the paper's estimate for 101B from scratch
FLM101B_SEQ_LEN = 2048


def _flm_model(d_model: int, n_layers: int) -> dict:
  return dict(vocab_size=100_256, d_model=d_model, n_layers=n_layers,
              n_heads=d_model // 128, head_dim=128, d_ff=4 * d_model,
              max_len=FLM101B_SEQ_LEN, pos="xpos", tie_embeddings=True,
              dtype="bfloat16")


# Stage -> ModelConfig kwargs and the paper's per-stage figures.
#
# The 16B and 51B SHAPES ARE A RECONSTRUCTION: the paper publishes only their
# parameter counts. Only the final shape is published (hidden 10,240, 80
# layers, 80 heads, vocab 100,256, context 2,048; d_ff = 4 x hidden). Chosen
# so that each stage grows into the next with growth operators (only d_model,
# d_ff, n_heads and n_layers grow; head_dim 128, vocab, context fixed; every
# dimension non-decreasing):
#   16B  -> 51B : width  5,632 -> 10,240 (44 -> 80 heads, d_ff 4x), 40 layers
#   51B  -> 101B: depth  40 -> 80 layers (exactly a doubling)
# Parameter counts (`model.param_count`): 15.79B (-1.3%), 51.36B (+0.7%),
# 101.69B (+0.7%).
#
# Embeddings are TIED here. Neither the paper nor the model card says; tied is
# Megatron-LM's default (untying needs --untie-embeddings-and-output-weights)
# and fits the name: tied, the final shape has 101.69B parameters, untied
# 102.72B. Untied, these 16B / 51B shapes would count 16.36B / 52.39B (over
# 2%). growjax's blocks have no linear biases, unlike Megatron's GPT (9 x
# d_model per layer, 7.4M in all at 101B: negligible).
#
# Per-stage agreement (`flops_in(days, 192, tflops_per_gpu)` over
# `train_flops_per_token(cfg, 2048) x tokens`): 1.052 (16B), 1.130 (51B),
# 1.070 (101B). Above 1, as it must be for wall-clock days that include
# evaluation, checkpointing and growth. Megatron's recompute formula (factor
# 4) would give 0.80 / 0.85 / 0.80, i.e. more work than the GPUs could have
# done in the days reported, so the paper's TFLOP/s are the factor-3 (no
# recomputation) model FLOPs. The paper's 76.74 scratch days are the 101B
# stage's days per token (6.54 d / 26.54B) times all 311.55B tokens.
FLM101B: dict[str, dict] = {
    "16B": dict(
        model=_flm_model(5_632, 40),
        tokens=245.37e9, batch_tokens=4.72e6, lr=4e-4,
        warmup_samples=4_608_000, tp=2, pp=1, dp=96,
        days=9.63, tflops_per_gpu=162.0),
    "51B": dict(
        model=_flm_model(10_240, 40),
        tokens=39.64e9, batch_tokens=4.72e6, lr=3.4e-4,
        warmup_samples=230_400, tp=4, pp=2, dp=24,
        days=5.37, tflops_per_gpu=160.0),
    "101B": dict(
        model=_flm_model(10_240, 80),
        tokens=26.54e9, batch_tokens=4.31e6, lr=2e-4,
        warmup_samples=230_400, tp=4, pp=4, dp=12,
        days=6.54, tflops_per_gpu=165.0),
}


def flm101b_configs() -> dict[str, ModelConfig]:
  """Stage name -> ModelConfig of the (reconstructed) FLM-101B schedule."""
  return {name: ModelConfig(**stage["model"]) for name, stage in
          FLM101B.items()}


def flm101b_report(prices_per_gpu_hour=(1.0, 1.5, 2.0)) -> dict:
  """FLM-101B's figures against this module's counts.

  stages: per stage, `stage_summary` plus paper_flops (days x TFLOP/s x 192
    GPUs), ratio (paper_flops / train_flops), megatron_ratio (the same with
    Megatron's recompute formula), mfu (reported TFLOP/s over the A800 peak);
  schedule: `schedule_summary` of the three stages;
  gpu_hours: 21.54 days x 192 GPUs x 24; dollars: at each price;
  scratch_days_paper_rate: the 101B stage's days per token x all tokens;
  scratch_days_model: scratch FLOPs at the 101B stage's TFLOP/s, no overhead;
  time_saving: 1 - 21.54 / 76.74.
  """
  cfgs = flm101b_configs()
  stages = {}
  for name, stage in FLM101B.items():
    cfg = cfgs[name]
    summary = stage_summary(cfg, stage["tokens"], FLM101B_SEQ_LEN)
    paper = flops_in(stage["days"], FLM101B_GPUS, stage["tflops_per_gpu"])
    megatron = megatron_flops_per_token(cfg, FLM101B_SEQ_LEN) * stage["tokens"]
    stages[name] = {**summary, "paper_flops": paper,
                    "ratio": paper / summary["train_flops"],
                    "megatron_ratio": paper / megatron,
                    "mfu": stage["tflops_per_gpu"] / A800_BF16_PEAK_TFLOPS}
  schedule = schedule_summary(
      [(cfgs[n], s["tokens"]) for n, s in FLM101B.items()], FLM101B_SEQ_LEN)
  final = FLM101B["101B"]
  hours = FLM101B_DAYS * FLM101B_GPUS * 24.0
  return {
      "stages": stages, "schedule": schedule, "gpu_hours": hours,
      "dollars": {p: hours * p for p in prices_per_gpu_hour},
      "scratch_days_paper_rate":
          final["days"] / final["tokens"] * schedule["total_tokens"],
      "scratch_days_model": days_on(schedule["scratch_train_flops"],
                                    FLM101B_GPUS, final["tflops_per_gpu"]),
      "time_saving": 1.0 - FLM101B_DAYS / FLM101B_SCRATCH_DAYS,
  }
