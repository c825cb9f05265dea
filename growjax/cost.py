"""What training a model costs: FLOPs, FLOPs utilisation, a schedule's price.

Plain arithmetic on a `ModelConfig`: nothing here traces or runs a model, so a
whole growth schedule (FLM-101B's included: `growjax.flm101b` holds the
paper's figures and compares them with these counts) is priced on a laptop
before any compute, and the dry run (`growjax.dry_run`) prints it.

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
  walks the jaxpr, and checks XLA's own count of the compiled gradient).
  They would add about 1 / (3 d_model) of 6N (0.003% at d_model 10,240).
- Elementwise work (softmax, GeLU, LayerNorm, xPos, the optimizer) is ignored.

Memory per device, the remat policy and the mesh a run needs are the memory
model's (`growjax.memory`).
"""

from __future__ import annotations

from growjax import checks
from growjax import model as model_lib
from growjax.config import ModelConfig


def _layer_norm_params(cfg: ModelConfig) -> int:
  return model_lib.norm_param_count(cfg)


def matmul_params(cfg: ModelConfig) -> int:
  """Weights of the blocks' matmuls (q, k, v, o, mlp in/out): the N of 6N."""
  return model_lib.non_embedding_param_count(cfg) - _layer_norm_params(cfg)


# ---------------------------------------------------------------- FLOPs

def train_flops_breakdown(cfg: ModelConfig, seq_len: int) -> dict[str, float]:
  """Training FLOPs per token by part: `blocks` (6 x matmul weights),
  `unembed` (6 D V) and `attention` (12 L H K s); see the module docstring."""
  s = checks.positive_int("seq_len", seq_len)
  return {
      "blocks": 6.0 * matmul_params(cfg),
      "unembed": 6.0 * cfg.d_model * cfg.vocab_size,
      "attention": 12.0 * cfg.n_layers * cfg.n_heads * cfg.head_dim * s,
  }


def train_flops_per_token(cfg: ModelConfig, seq_len: int) -> float:
  """Model FLOPs (forward + backward) of one training token at context
  `seq_len` (PaLM convention; see the module docstring)."""
  return sum(train_flops_breakdown(cfg, seq_len).values())


def model_tflops_per_s(cfg: ModelConfig, seq_len: int,
                       tokens_per_s: float) -> float:
  """Model TFLOP/s of a run that trains `tokens_per_s` tokens per second
  (all devices together)."""
  tokens_per_s = checks.positive_number("tokens_per_s", tokens_per_s)
  return train_flops_per_token(cfg, seq_len) * tokens_per_s / 1e12


def mfu(cfg: ModelConfig, seq_len: int, tokens_per_s: float,
        peak_tflops_per_device: float, n_devices: int) -> float:
  """Model FLOPs utilisation: model TFLOP/s over the devices' peak TFLOP/s
  (`tokens_per_s` is the whole run's rate, over `n_devices`)."""
  peak = checks.positive_number("peak_tflops_per_device",
                                peak_tflops_per_device)
  n_devices = checks.positive_int("n_devices", n_devices)
  return model_tflops_per_s(cfg, seq_len, tokens_per_s) / (peak * n_devices)


# ---------------------------------------------------------------- schedules

def stage_summary(cfg: ModelConfig, tokens: float,
                  seq_len: int) -> dict[str, float]:
  """params, non_embedding_params, tokens and train_flops of one stage."""
  tokens = checks.positive_number("tokens", tokens)
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
