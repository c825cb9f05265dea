"""What training a model costs: FLOPs, FLOPs utilisation, memory per device.

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

Memory per device follows `growjax.parallel`'s sharding exactly, in
arithmetic: the same rules and the same rule walk (`growjax.logical`), on a
dict of mesh axis sizes instead of devices.
"""

from __future__ import annotations

import math

from growjax import checks
from growjax import logical
from growjax import model as model_lib
from growjax.config import ModelConfig


def _layer_norm_params(cfg: ModelConfig) -> int:
  return 4 * cfg.d_model * cfg.n_layers + 2 * cfg.d_model


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


# ---------------------------------------------------------------- memory
#
# A rule's mesh axes lose those of size 1 and those an earlier dimension took,
# then trailing axes are dropped until their product divides the dimension;
# none left: replicated. So a dimension that does not divide is replicated,
# not padded (`logical.spec`).

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


def local_param_count(cfg: ModelConfig, mesh: dict, rules=None) -> int:
  """Parameters one device holds under `growjax.parallel`'s sharding on a
  mesh of these axis sizes (`rules`: None for `logical.RULES`, or overrides
  as `c.mesh.rules` takes them): embed over fsdp, mlp/heads/vocab over
  tensor, a dimension that does not divide replicated."""
  sizes = logical.mesh_sizes(mesh)
  rules = logical.rules_from_config(rules)
  return sum(
      math.prod(d // n for d, n in
                zip(shape, logical.shard_counts(axes, shape, sizes, rules)))
      for axes, shape in param_shapes(cfg).values())


def local_batch_size(batch_size: int, mesh: dict, rules=None) -> int:
  """Sequences per device: rows split as `parallel.batch_sharding` splits
  them, over the `batch` rule's mesh axes (data x fsdp). A batch that does
  not divide raises, as it cannot be laid out."""
  batch_size = checks.positive_int("batch_size", batch_size)
  sizes = logical.mesh_sizes(mesh)
  n = math.prod(sizes[a] for a in
                logical.batch_axes(sizes, logical.rules_from_config(rules)))
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
  s = checks.positive_int("seq_len", seq_len)
  sizes = logical.mesh_sizes({} if mesh is None else mesh)
  rules = logical.rules_from_config(rules)
  checks.one_of("compute_dtype", compute_dtype,
                ("float32", "bfloat16", "float16"))
  a = 4 if compute_dtype == "float32" else 2
  d, hk, f, v = (cfg.d_model, cfg.n_heads * cfg.head_dim, cfg.d_ff,
                 cfg.vocab_size)
  # Each name alone: a mesh axis is used once per array, not across them.
  t_h, t_f, t_v = (
      logical.shard_counts((name,), (dim,), sizes, rules)[0]
      for name, dim in (("heads", cfg.n_heads), ("mlp", f), ("vocab", v)))
  residual = 4 * 2 * d  # float32: block input, LN2 input
  matmul_io = a * (2 * d + 4 * hk / t_h + 2 * f / t_f)
  softmax = a * cfg.n_heads * s / t_h
  layer = residual + matmul_io + softmax
  if remat:  # every block input, and one block's set while recomputed
    blocks = cfg.n_layers * 4 * d + layer
  else:
    blocks = cfg.n_layers * layer
  head = a * d + 2 * 4 * v / t_v  # final LN output; float32 logits and grad
  return blocks + head


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
  sizes = logical.mesh_sizes(mesh)
  seq_len = checks.positive_int("seq_len", seq_len)
  param_bytes = checks.positive_int("param_bytes", param_bytes)
  opt_bytes = checks.positive_int("opt_bytes", opt_bytes)
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
