"""The Hugging Face families growjax converts, at real proportions and tiny
width: import, growth and export checked against transformers' logits (see
hf_interop.py --families, which runs this).

Each case is a config.json written out by hand in the style of the real
checkpoint's (no hub access): its heads per key/value head, head_dim
relative to the width, d_ff ratio, norm epsilon, rope base, type and
scaling, partial rotary, biases and tied embeddings, at a width of 48-64
and 2 layers:

  pythia-160m   GPTNeoXForCausalLM: parallel residual, rotary_pct 0.25, the
                erf GeLU, q/k/v biases (attention_bias), untied
  llama-3.2-1b  LlamaForCausalLM: 4 heads per key/value head, rope base
                500000 with llama3 scaling (factor 32, original 8192), tied
  smollm2-135m  LlamaForCausalLM: 3 heads per key/value head, rope base
                100000, tied
  qwen2.5-0.5b  Qwen2ForCausalLM: 7 heads per key/value head, q/k/v biases,
                rms_norm_eps 1e-6, rope base 1e6, tied, sliding window off
  mistral-7b    MistralForCausalLM (v0.3): 4 heads per key/value head, rope
                base 1e6, sliding_window null, untied

Weights are redrawn so every logit is of order one (norm scales off 1, q/k/v
biases off 0; the biases growjax has no parameter for, zero). For each case
and each reference (the numpy re-implementation of transformers' modeling
code, `growjax.hf_reference`, always; transformers itself where importable,
in float32 and bfloat16):

  import      growjax.hf reads the files; growjax's logits against the
              reference's on the original
  grow        msg (width x2, query heads x2 within their groups, d_ff x2,
              one new layer) and hyperclone (width, heads with their groups
              and d_ff x2; a tied model's output layer is untied): the grown
              model's logits against the reference's on the original
  export      the grown model trained a few steps (masks ramped to 1 and
              folded), written by hf.save_pretrained as the original's
              architecture, read by the reference; its logits against
              growjax's
"""

from __future__ import annotations

import json
import pathlib
import tempfile
import time

import numpy as np

TRAIN_STEPS, RAMP_STEPS = 3, 2

# config.json of each case, as the real checkpoint spells it (older
# transformers keys: rope_scaling and rope_theta at the top level).
CASES = {
    "pythia-160m": {
        "architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox",
        "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2,
        "intermediate_size": 256, "hidden_act": "gelu", "rotary_pct": 0.25,
        "rotary_emb_base": 10000, "use_parallel_residual": True,
        "layer_norm_eps": 1e-5, "tie_word_embeddings": False,
        "max_position_embeddings": 2048, "initializer_range": 0.02,
        "vocab_size": 256, "bos_token_id": 0, "eos_token_id": 0},
    "llama-3.2-1b": {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 1,
        "head_dim": 16, "num_hidden_layers": 2, "intermediate_size": 256,
        "hidden_act": "silu", "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
        "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0,
                         "low_freq_factor": 1.0,
                         "original_max_position_embeddings": 8192,
                         "rope_type": "llama3"},
        "attention_bias": False, "mlp_bias": False,
        "tie_word_embeddings": True, "max_position_embeddings": 131072,
        "initializer_range": 0.02, "vocab_size": 256},
    "smollm2-135m": {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": 48, "num_attention_heads": 6, "num_key_value_heads": 2,
        "head_dim": 8, "num_hidden_layers": 2, "intermediate_size": 128,
        "hidden_act": "silu", "rms_norm_eps": 1e-5, "rope_theta": 100000,
        "rope_scaling": None, "attention_bias": False, "mlp_bias": False,
        "tie_word_embeddings": True, "max_position_embeddings": 8192,
        "initializer_range": 0.041666666666666664, "vocab_size": 256},
    "qwen2.5-0.5b": {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
        "hidden_size": 56, "num_attention_heads": 7, "num_key_value_heads": 1,
        "num_hidden_layers": 2, "intermediate_size": 304,
        "hidden_act": "silu", "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
        "sliding_window": 32768, "use_sliding_window": False,
        "max_window_layers": 2, "tie_word_embeddings": True,
        "max_position_embeddings": 32768, "initializer_range": 0.02,
        "vocab_size": 256},
    "mistral-7b": {
        "architectures": ["MistralForCausalLM"], "model_type": "mistral",
        "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 1,
        "head_dim": 16, "num_hidden_layers": 2, "intermediate_size": 224,
        "hidden_act": "silu", "rms_norm_eps": 1e-5, "rope_theta": 1000000.0,
        "sliding_window": None, "tie_word_embeddings": False,
        "max_position_embeddings": 32768, "initializer_range": 0.02,
        "vocab_size": 256},
}


def random_tensors(config: dict, seed: int) -> dict:
  """The case's tensors, in transformers' names and layout, of order one:
  matrices normal / sqrt(fan-in) (an untied input table 4x), norm scales
  1 + 0.2 n, LayerNorm biases and q/k/v biases 0.2 n, other biases 0."""
  import jax  # pylint: disable=g-import-not-at-top
  from growjax import ModelConfig, hf, model, params as params_lib  # pylint: disable=g-import-not-at-top
  arch = hf.architecture_of(config)
  fields = arch.to_fields(config, "config.json")
  cfg = ModelConfig(**fields)
  rng = np.random.default_rng(seed)

  def draw(path, x):
    path = params_lib.path_of(path)
    role = params_lib.TABLE[path]
    z = rng.standard_normal(x.shape).astype(np.float32)
    if role.init == "ones":
      return 1 + 0.2 * z
    if role.init == "zeros":
      return 0.2 * z
    names = role.axes
    fan_in = np.prod([x.shape[names.index(a)] for a in role.inputs]
                     or [x.shape[-1]])
    table = 4.0 if path == "embed" and not cfg.tie_embeddings else 1.0
    return table * z / np.sqrt(fan_in)

  params = jax.tree_util.tree_map_with_path(
      draw, jax.eval_shape(lambda k: model.init(cfg, k), jax.random.key(0)))
  return hf.params_to_tensors(arch, fields, params)


def _growths(cfg):
  """{method: (grown config, grow options)}: msg and hyperclone."""
  kv = cfg.n_kv_heads
  return {
      "msg": (cfg.replace(d_model=2 * cfg.d_model, n_heads=2 * cfg.n_heads,
                          d_ff=2 * cfg.d_ff, n_layers=cfg.n_layers + 1),
              {"new_layers": "interleave"}),
      "hyperclone": (cfg.replace(
          d_model=2 * cfg.d_model, n_heads=2 * cfg.n_heads, d_ff=2 * cfg.d_ff,
          n_kv_heads=None if kv is None else 2 * kv,
          tie_embeddings=False), {}),
  }


def train_briefly(params, cfg, masks, tokens, steps=TRAIN_STEPS,
                  ramp_steps=RAMP_STEPS):
  """A few optax.adam steps on next-token loss, msg masks ramped to 1;
  returns the trained parameters and each step's loss (hf_interop.py trains
  its cases the same way)."""
  import jax  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from growjax import grow, model  # pylint: disable=g-import-not-at-top
  opt = optax.adam(1e-3)

  @jax.jit
  def step(params, opt_state, masks):
    def loss_fn(p):
      logits = model.apply(p, cfg, tokens[:, :-1], masks=masks)
      return optax.softmax_cross_entropy_with_integer_labels(
          logits, tokens[:, 1:]).mean()
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  opt_state = opt.init(params)
  losses = []
  for s in range(steps):
    params, opt_state, loss = step(params, opt_state,
                                   grow.ramp(masks, s / ramp_steps))
    losses.append(float(loss))
  grow.fold(grow.ramp(masks, steps / ramp_steps))  # all ones: none
  return params, losses


class NumpyReference:
  """growjax.hf_reference: transformers' modeling code in numpy float64."""
  name, dtype = "numpy", "float32"

  def logits(self, directory: pathlib.Path, tokens) -> np.ndarray:
    from growjax import hf, hf_reference  # pylint: disable=g-import-not-at-top
    config = json.loads((directory / "config.json").read_text())
    return hf_reference.logits(config, hf.read_tensors(directory)[0], tokens)


class TransformersReference:
  """transformers' own model, eager attention, in `dtype`."""
  name = "transformers"

  def __init__(self, torch, transformers, dtype: str):
    self.torch, self.transformers, self.dtype = torch, transformers, dtype
    self.device = "cuda" if torch.cuda.is_available() else "cpu"

  def load(self, directory, dtype=None):
    model, info = self.transformers.AutoModelForCausalLM.from_pretrained(
        directory, attn_implementation="eager", output_loading_info=True,
        dtype=getattr(self.torch, dtype or self.dtype))
    return model.to(self.device).eval(), {
        k: sorted(map(str, v)) for k, v in info.items() if v}

  def logits(self, directory: pathlib.Path, tokens) -> np.ndarray:
    model, info = self.load(directory)
    if info:
      raise ValueError(f"transformers loaded {directory} with {info}")
    with self.torch.no_grad():
      out = model(self.torch.as_tensor(np.asarray(tokens),
                                       device=self.device))
    return out.logits.float().cpu().numpy()

  def resave(self, directory: pathlib.Path, out: pathlib.Path) -> None:
    """The checkpoint as transformers itself writes it (float32)."""
    model, info = self.load(directory, "float32")
    if info:
      raise ValueError(f"transformers loaded {directory} with {info}")
    model.save_pretrained(out)


def run_case(name: str, reference, *, tokens, tolerance: float,
             bf16_tolerance: float, work: pathlib.Path) -> list[dict]:
  """The rows of one case against one reference."""
  import jax  # pylint: disable=g-import-not-at-top
  from growjax import ModelConfig, grow, hf, model  # pylint: disable=g-import-not-at-top
  from safetensors import numpy as stn  # pylint: disable=g-import-not-at-top
  config = CASES[name]
  bf16 = reference.dtype == "bfloat16"
  rows, clock = [], [time.time()]

  def row(direction, method, got, want, **extra):
    diff = float(np.abs(np.asarray(got, np.float64) - want).max())
    ref = float(np.abs(want).max())
    limit = bf16_tolerance * ref if bf16 else tolerance
    rows.append({"case": name, "architecture": config["architectures"][0],
                 "reference": reference.name, "dtype": reference.dtype,
                 "direction": direction, "method": method,
                 "max_abs_diff": diff, "max_abs_ref": ref, "tolerance": limit,
                 "ok": diff <= limit,
                 "seconds": round(time.time() - clock[0], 1), **extra})
    clock[0] = time.time()

  original = work / f"{name}-{reference.name}-{reference.dtype}"
  original.mkdir(parents=True)
  (original / "config.json").write_text(json.dumps(config, indent=1))
  stn.save_file(random_tensors(config, seed=1), original / "model.safetensors",
                metadata={"format": "pt"})
  source = original
  if hasattr(reference, "resave"):  # import what transformers writes
    source = work / f"{original.name}-resaved"
    reference.resave(original, source)
  want = reference.logits(source, tokens)

  def apply(params, cfg, masks=None):
    cfg = cfg.replace(dtype=reference.dtype)
    return np.asarray(jax.jit(model.apply, static_argnums=1)(
        params, cfg, tokens, masks=masks))

  fields, params = hf.load_pretrained(source)
  cfg = ModelConfig(**fields)
  row("import", "none", apply(params, cfg), want)
  for method, (big, options) in _growths(cfg).items():
    grown = jax.jit(lambda p, k, big=big, method=method, options=options:
                    grow.grow(p, cfg, big, k, method=method, **options))(
                        params, jax.random.key(2))
    row("grow", method, apply(grown.params, big, grown.masks), want,
        grown={k: getattr(big, k) for k in (
            "d_model", "n_layers", "n_heads", "kv_heads", "d_ff",
            "tie_embeddings")})
    trained, _ = train_briefly(grown.params, big, grown.masks, tokens)
    out = work / f"{original.name}-{method}"
    hf.save_pretrained(out, trained, big, architecture=config[
        "architectures"][0], max_position_embeddings=config[
            "max_position_embeddings"])
    ours = apply(trained, big)
    row("export", method, reference.logits(out, tokens), ours)
  return rows


REFERENCES = ("numpy-float32", "transformers-float32", "transformers-bfloat16")


def run(*, libs, tokens, tolerance: float, bf16_tolerance: float,
        print_row, references=REFERENCES, on_case=None) -> list[dict]:
  """Every case against each of `references` (names from REFERENCES; the
  transformers ones need `libs`, torch and transformers): the numpy
  re-implementation, transformers in float32 and in bfloat16.
  `on_case(rows)`, if given, sees each case's rows as they come (a caller
  saves them, so a run cut short keeps what it measured)."""
  from growjax import progress  # pylint: disable=g-import-not-at-top
  chosen = []
  for ref in references:
    if ref not in REFERENCES:
      raise ValueError(f"reference {ref!r}: one of {', '.join(REFERENCES)}")
    if ref == "numpy-float32":
      chosen.append(NumpyReference())
    elif libs is not None:
      chosen.append(TransformersReference(*libs, ref.split("-")[1]))
  rows = []
  with tempfile.TemporaryDirectory() as tmp, progress.bar(
      total=len(chosen) * len(CASES), desc="families", unit="case") as bar:
    for reference in chosen:
      for name in CASES:
        try:
          new = run_case(name, reference, tokens=tokens, tolerance=tolerance,
                         bf16_tolerance=bf16_tolerance,
                         work=pathlib.Path(tmp))
        except Exception as e:  # pylint: disable=broad-except
          # one failing case must not hide the others' rows
          new = [{"case": name, "reference": reference.name,
                  "dtype": reference.dtype, "direction": "error",
                  "method": "none", "max_abs_diff": None,
                  "max_abs_ref": None, "ok": False, "seconds": 0.0,
                  "error": f"{type(e).__name__}: {e}"}]
        for r in new:
          print_row(r)
        rows += new
        if on_case is not None:
          on_case(new)
        bar.update()
  return rows
