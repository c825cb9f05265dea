"""FLM-101B's published figures, and what growjax's FLOP count makes of them.

FLM-101B (Li et al. 2023, arXiv 2309.03852) grew a GPT-style model 16B ->
51B -> 101B on 192 A800 GPUs (24 nodes x 8, bf16, context 2,048) in 21.54
days, for about $100K. This module holds the paper's figures (`STAGES`: per
stage tokens, batch, learning rate, warmup, parallelism, days and TFLOP/s per
GPU), a reconstruction of the stage shapes (`configs`), and `report`, which
sets the figures against `growjax.cost`'s FLOP count. experiments/flm101b.py
builds its experiment from them.

Time and money live here, not in growjax.cost: the only days, GPU-hours and
dollars in growjax are the paper's, and `flops_in` / `days_on` convert its
days x GPUs x TFLOP/s into FLOPs and back.

Megatron-LM (which FLM-101B trained with) reports TFLOP/s with
`megatron_flops_per_token`, a formula for the same model FLOPs whose factor
goes from 3 to 4 with full activation recomputation. The paper's table
matches the factor-3 (no recomputation) count, growjax's, not the factor-4
one: see `STAGES`.
"""

from __future__ import annotations

from growjax import checks
from growjax import cost
from growjax.config import ModelConfig

PEAK_TFLOPS = 312.0  # A800 dense bf16 peak per GPU (the paper's % use it)
GPUS = 192
SEQ_LEN = 2048
DAYS = 21.54  # the whole run, wall clock
SCRATCH_DAYS = 76.74  # the paper's estimate for 101B trained from scratch
TOTAL_FLOPS = 52.76e21  # the paper's overall training cost, 52.76 zettaFLOPs
BUDGET_DOLLARS = 100_000.0  # the title's "$100K budget"
SECONDS_PER_DAY = 86_400.0


def _model(d_model: int, n_layers: int) -> dict:
  return dict(vocab_size=100_256, d_model=d_model, n_layers=n_layers,
              n_heads=d_model // 128, head_dim=128, d_ff=4 * d_model,
              max_len=SEQ_LEN, pos="xpos", tie_embeddings=True,
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
# `cost.train_flops_per_token(cfg, 2048) x tokens`): 1.052 (16B), 1.130
# (51B), 1.070 (101B). Above 1, as it must be for wall-clock days that include
# evaluation, checkpointing and growth. Megatron's recompute formula (factor
# 4) would give 0.80 / 0.85 / 0.80, i.e. more work than the GPUs could have
# done in the days reported, so the paper's TFLOP/s are the factor-3 (no
# recomputation) model FLOPs. The paper's 76.74 scratch days are the 101B
# stage's days per token (6.54 d / 26.54B) times all 311.55B tokens.
STAGES: dict[str, dict] = {
    "16B": dict(
        model=_model(5_632, 40),
        tokens=245.37e9, batch_tokens=4.72e6, lr=4e-4,
        warmup_samples=4_608_000, tp=2, pp=1, dp=96,
        days=9.63, tflops_per_gpu=162.0),
    "51B": dict(
        model=_model(10_240, 40),
        tokens=39.64e9, batch_tokens=4.72e6, lr=3.4e-4,
        warmup_samples=230_400, tp=4, pp=2, dp=24,
        days=5.37, tflops_per_gpu=160.0),
    "101B": dict(
        model=_model(10_240, 80),
        tokens=26.54e9, batch_tokens=4.31e6, lr=2e-4,
        warmup_samples=230_400, tp=4, pp=4, dp=12,
        days=6.54, tflops_per_gpu=165.0),
}


def configs() -> dict[str, ModelConfig]:
  """Stage name -> ModelConfig of the (reconstructed) schedule."""
  return {name: ModelConfig(**stage["model"]) for name, stage in
          STAGES.items()}


def megatron_flops_per_token(cfg: ModelConfig, seq_len: int, *,
                             recompute: bool = True) -> float:
  """FLOPs per token as Megatron-LM reports them (Narayanan et al. 2021):
  24 k L h^2 (1 + s/(6h) + V/(16 L h)), k = 4 with full activation
  recomputation (one more forward), k = 3 without (the logit term then
  scales with k too, as Megatron-DeepSpeed's throughput calculator does).

  The formula assumes d_ff = 4h and n_heads * head_dim = h, with h = d_model;
  it is given for configs of that shape (FLM-101B's) and raises otherwise.
  Without recomputation it equals `cost.train_flops_per_token` up to the
  logit term's 6 D V vs 4.5 D V.
  """
  s = checks.positive_int("seq_len", seq_len)
  h, n, v = cfg.d_model, cfg.n_layers, cfg.vocab_size
  if cfg.d_ff != 4 * h or cfg.n_heads * cfg.head_dim != h:
    raise ValueError(
        f"megatron_flops_per_token: needs d_ff = 4 d_model and n_heads * "
        f"head_dim = d_model, got d_model={h}, d_ff={cfg.d_ff}, "
        f"n_heads*head_dim={cfg.n_heads * cfg.head_dim}")
  k = 4 if recompute else 3
  return 24.0 * k * n * h * h * (1 + s / (6 * h) + v / (16 * n * h))


# ---------------------------------------------------------------- time, money

def flops_in(days: float, n_gpus: int, tflops_per_gpu: float) -> float:
  """FLOPs that `n_gpus` sustaining `tflops_per_gpu` do in `days` (a
  paper's days x TFLOP/s x GPUs)."""
  return (checks.positive_number("days", days) * SECONDS_PER_DAY
          * checks.positive_int("n_gpus", n_gpus)
          * checks.positive_number("tflops_per_gpu", tflops_per_gpu) * 1e12)


def days_on(flops: float, n_gpus: int, tflops_per_gpu: float) -> float:
  """Wall-clock days for `flops` on `n_gpus` that each sustain
  `tflops_per_gpu` (achieved, not peak): the inverse of `flops_in`."""
  return checks.positive_number("flops", flops) / flops_in(
      1.0, n_gpus, tflops_per_gpu)


def report() -> dict:
  """The paper's figures against growjax's FLOP count.

  stages: per stage, `cost.stage_summary` plus paper_flops (days x TFLOP/s
    x 192 GPUs), ratio (paper_flops / train_flops), megatron_ratio (the same
    with Megatron's recompute formula), mfu (reported TFLOP/s over the A800
    peak);
  schedule: `cost.schedule_summary` of the three stages, whose
    total_train_flops compares with the paper's `TOTAL_FLOPS`;
  gpu_hours: 21.54 days x 192 GPUs x 24; price_per_gpu_hour: the $100K
    budget over them;
  scratch_days_paper_rate: the 101B stage's days per token x all tokens;
  scratch_days_model: scratch FLOPs at the 101B stage's TFLOP/s, no overhead;
  time_saving: 1 - 21.54 / 76.74.
  """
  cfgs = configs()
  stages = {}
  for name, stage in STAGES.items():
    cfg = cfgs[name]
    summary = cost.stage_summary(cfg, stage["tokens"], SEQ_LEN)
    paper = flops_in(stage["days"], GPUS, stage["tflops_per_gpu"])
    megatron = megatron_flops_per_token(cfg, SEQ_LEN) * stage["tokens"]
    stages[name] = {**summary, "paper_flops": paper,
                    "ratio": paper / summary["train_flops"],
                    "megatron_ratio": paper / megatron,
                    "mfu": stage["tflops_per_gpu"] / PEAK_TFLOPS}
  schedule = cost.schedule_summary(
      [(cfgs[n], s["tokens"]) for n, s in STAGES.items()], SEQ_LEN)
  final = STAGES["101B"]
  hours = DAYS * GPUS * 24.0
  return {
      "stages": stages, "schedule": schedule, "gpu_hours": hours,
      "price_per_gpu_hour": BUDGET_DOLLARS / hours,
      "scratch_days_paper_rate":
          final["days"] / final["tokens"] * schedule["total_tokens"],
      "scratch_days_model": days_on(schedule["scratch_train_flops"], GPUS,
                                    final["tflops_per_gpu"]),
      "time_saving": 1.0 - DAYS / SCRATCH_DAYS,
  }


def paper_comparison(plan: dict) -> dict | None:
  """A dry run's plan (`growjax.dry_run.plan`) beside the paper's figures,
  when its stages are the schedule of `STAGES` (same shapes, seq_len 2,048);
  else None.

  Per stage: the plan's training FLOPs against the paper's days x TFLOP/s x
  192 GPUs, and the plan's GPU-hours (its FLOPs at the paper's sustained
  TFLOP/s per GPU) against the paper's days x 24 x 192, each with the
  difference (paper / plan - 1: the paper's wall clock also holds evaluation,
  checkpointing and growth). In all: the plan's total FLOPs against the
  paper's 52.76 ZFLOPs, and GPU-hours against 21.54 days x 24 x 192.
  """
  keys = ("d_model", "n_layers", "n_heads", "head_dim", "d_ff", "vocab_size")
  cfgs = list(configs().values())
  if plan.get("seq_len") != SEQ_LEN or len(plan["stages"]) != len(cfgs) or any(
      any(row["shape"][k] != getattr(cfg, k) for k in keys)
      for row, cfg in zip(plan["stages"], cfgs)):
    return None
  stages = []
  for (name, paper), row in zip(STAGES.items(), plan["stages"]):
    flops = row["train_flops"]
    paper_flops = flops_in(paper["days"], GPUS, paper["tflops_per_gpu"])
    hours = flops / (paper["tflops_per_gpu"] * 1e12) / 3600.0
    paper_hours = paper["days"] * 24.0 * GPUS
    stages.append({"stage": name, "train_flops": flops,
                   "paper_flops": paper_flops,
                   "flops_difference": paper_flops / flops - 1.0,
                   "gpu_hours": hours, "paper_gpu_hours": paper_hours,
                   "gpu_hours_difference": paper_hours / hours - 1.0,
                   "tflops_per_gpu": paper["tflops_per_gpu"]})
  flops = sum(s["train_flops"] for s in stages)
  hours = sum(s["gpu_hours"] for s in stages)
  paper_hours = DAYS * 24.0 * GPUS
  return {"source": "Li et al. 2023 (arXiv 2309.03852), growjax/flm101b.py",
          "gpus": GPUS, "stages": stages,
          "total": {"train_flops": flops, "paper_flops": TOTAL_FLOPS,
                    "flops_difference": TOTAL_FLOPS / flops - 1.0,
                    "gpu_hours": hours, "paper_gpu_hours": paper_hours,
                    "gpu_hours_difference": paper_hours / hours - 1.0},
          "budget_dollars": BUDGET_DOLLARS,
          "paper_price_per_gpu_hour": BUDGET_DOLLARS / paper_hours}


def format_comparison(c: dict) -> str:
  """`paper_comparison` as a table: plan, paper and difference, per stage."""
  lines = [f"against the paper ({c['source']}; GPU-hours: FLOPs at the "
           f"paper's TFLOP/s per GPU on {c['gpus']} GPUs):",
           f"{'stage':>6} {'train FLOPs':>11} {'paper':>10} {'diff':>7} "
           f"{'GPU-hours':>10} {'paper':>10} {'diff':>7}"]
  for s in [*c["stages"], {"stage": "total", **c["total"]}]:
    lines.append(
        f"{s['stage']:>6} {s['train_flops']:>11.4g} {s['paper_flops']:>10.4g} "
        f"{s['flops_difference']:>+7.1%} {s['gpu_hours']:>10,.0f} "
        f"{s['paper_gpu_hours']:>10,.0f} {s['gpu_hours_difference']:>+7.1%}")
  lines.append(f"diff: paper / plan - 1 (the paper's days hold evaluation, "
               f"checkpoints and growth too); ${c['budget_dollars']:,.0f} over "
               f"{c['total']['paper_gpu_hours']:,.0f} GPU-hours is "
               f"${c['paper_price_per_gpu_hour']:.2f} per GPU-hour")
  return "\n".join(lines)
