"""growjax.hf and growjax.export without transformers: the files round-trip
bitwise, their layout is transformers', a numpy GPT-NeoX and a numpy Llama
written from transformers' modeling code compute growjax's logits from the
exported tensors, the RoPE permutation keeps every attention score, the
tokenizer.json merges encode as sentencepiece does, and everything growjax
cannot represent is refused in one line naming the file and the field.
"""

import json
import math
import pathlib
import runpy
import subprocess
import sys
import textwrap

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors import safe_open

from growjax import ModelConfig, export, hf, hf_reference, model, positions

REPO = pathlib.Path(__file__).resolve().parents[1]
CFG = ModelConfig(vocab_size=61, d_model=32, n_layers=2, n_heads=2,
                  head_dim=16, d_ff=64, max_len=16, pos="rope")
# Llama-family: 4 query heads over 2 key/value heads, head_dim != d / heads,
# Llama 3's rope base.
LLAMA_CFG = ModelConfig(vocab_size=61, d_model=32, n_layers=2, n_heads=4,
                        n_kv_heads=2, head_dim=16, d_ff=48, max_len=16,
                        pos="rope", norm="rmsnorm", mlp="swiglu",
                        rope_theta=500_000.0)
TOKENS = np.random.default_rng(0).integers(0, CFG.vocab_size, (2, 12))


def _params(cfg: ModelConfig, seed: int = 0) -> dict:
  """Fresh params with norm scales (and LayerNorm biases) moved off 1 (and
  0), and matrices of order one, so a swapped or dropped parameter shows in
  the logits."""
  params = jax.tree.map(np.asarray, model.init(cfg, jax.random.key(seed)))
  rng = np.random.default_rng(seed)
  for ln in (params["blocks"]["ln1"], params["blocks"]["ln2"], params["ln_f"]):
    ln["scale"] = ln["scale"] + 0.3 * rng.standard_normal(ln["scale"].shape,
                                                          np.float32)
    if "bias" in ln:
      ln["bias"] = 0.3 * rng.standard_normal(ln["bias"].shape, np.float32)
  attn = params["blocks"]["attn"]
  for name in ("q_bias", "k_bias", "v_bias"):  # qkv_bias: off zero too
    if name in attn:
      attn[name] = 0.5 * rng.standard_normal(attn[name].shape, np.float32)
  if cfg.norm == "rmsnorm":  # no bias to move the logits: larger matrices
    for name in ("q", "k"):
      params["blocks"]["attn"][name] = params["blocks"]["attn"][name] * 20
    params["embed"] = params["embed"] * 10
  return params


@pytest.fixture(scope="module")
def params():
  return _params(CFG)


def _equal(a, b) -> bool:
  leaves_a, tree_a = jax.tree.flatten(a)
  leaves_b, tree_b = jax.tree.flatten(b)
  return tree_a == tree_b and all(
      x.dtype == np.float32 and np.array_equal(np.asarray(x), np.asarray(y))
      for x, y in zip(leaves_a, leaves_b))


# --- transformers' forward passes (growjax.hf_reference) --------------------


def _half_split_rope(x_TK, pos_T, theta=10000.0):
  """transformers' rotary: pairs (i, i + K/2) at position * theta^(-2i/K)."""
  inv = hf_reference.inv_freq({"rope_type": "default", "rope_theta": theta},
                              x_TK.shape[-1])
  return hf_reference.rope(x_TK, pos_T, inv)


_neox_logits = hf_reference.neox_logits
_llama_logits = hf_reference.llama_logits


@pytest.mark.parametrize("tie", [False, True])
def test_reference_gpt_neox_on_exported_tensors_gives_growjax_logits(tie):
  cfg = CFG.replace(tie_embeddings=tie)
  params = _params(cfg, seed=1)
  config, tensors = hf.to_hf(params, cfg)
  want = np.asarray(model.apply(params, cfg, TOKENS))
  got = _neox_logits(config, tensors, TOKENS)
  assert np.abs(want).max() > 0.1  # logits large enough to show a mistake
  np.testing.assert_allclose(got, want, atol=2e-5, rtol=0)


@pytest.mark.parametrize("tie", [False, True])
def test_reference_llama_on_exported_tensors_gives_growjax_logits(tie):
  cfg = LLAMA_CFG.replace(tie_embeddings=tie)
  params = _params(cfg, seed=3)
  config, tensors = hf.to_hf(params, cfg)
  assert config["architectures"] == ["LlamaForCausalLM"]
  want = np.asarray(model.apply(params, cfg, TOKENS))
  got = _llama_logits(config, tensors, TOKENS)
  assert np.abs(want).max() > 0.1  # logits large enough to show a mistake
  np.testing.assert_allclose(got, want, atol=2e-5, rtol=0)
  # theta matters at these positions: base 10000 gives other logits
  config["rope_parameters"]["rope_theta"] = 10000.0
  assert np.abs(_llama_logits(config, tensors, TOKENS) - want).max() > 1e-3


# The families growjax converts, tiny, each with the options its real
# configurations need (benchmarks/hf_interop.py has them at real
# proportions): (config, architecture to export as, a change of config.json
# that must change transformers' logits, showing the option is exercised).
def _config_change(**values):
  def change(config):
    config.update(values)
  return change


def _rope_change(**values):
  def change(config):
    config["rope_parameters"] = {**config["rope_parameters"], **values}
  return change


FAMILIES = {
    # Pythia: parallel residual, rotary on 25% of each head, the erf GeLU,
    # q/k/v biases
    "pythia": (CFG.replace(d_ff=128, mlp="gelu_erf", parallel_residual=True,
                           rotary_fraction=0.25, qkv_bias=True), None,
               _config_change(use_parallel_residual=False)),
    # Llama 3.2: tied, llama3 rope scaling (original length 8 < these 12
    # positions, so every band of frequencies is in play)
    "llama-3.2": (LLAMA_CFG.replace(tie_embeddings=True, rope_scaling=dict(
        kind="llama3", factor=32.0, low_freq_factor=1.0, high_freq_factor=4.0,
        original_max_len=8), rope_theta=100.0), None,
                  _rope_change(rope_type="default")),
    # SmolLM2: tied, 3 query heads per key/value head, rope base 100000
    "smollm2": (LLAMA_CFG.replace(d_model=48, n_heads=6, n_kv_heads=2,
                                  head_dim=8, d_ff=128, tie_embeddings=True,
                                  rope_theta=100_000.0), None,
                _config_change(rms_norm_eps=1e-2)),
    # Qwen2.5: q/k/v biases, rms_norm_eps 1e-6, tied, 7 query heads per
    # key/value head, rope base 1e6
    "qwen2.5": (LLAMA_CFG.replace(d_model=56, n_heads=7, n_kv_heads=1,
                                  head_dim=8, d_ff=152, qkv_bias=True,
                                  norm_eps=1e-6, tie_embeddings=True,
                                  rope_theta=1e6), None,
                lambda c: [c.update(architectures=["LlamaForCausalLM"]),
                           None][1]),
    # Mistral: untied, no sliding window (here with linear rope scaling)
    "mistral": (LLAMA_CFG.replace(rope_scaling=dict(kind="linear",
                                                    factor=4.0)),
                "MistralForCausalLM", _rope_change(rope_type="default")),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_exports_to_transformers_logits_and_imports_bitwise(
    family):
  cfg, arch, change = FAMILIES[family]
  params = _params(cfg, seed=4)
  config, tensors = hf.to_hf(params, cfg, architecture=arch)
  want = np.asarray(model.apply(params, cfg, TOKENS))
  got = hf_reference.logits(config, tensors, TOKENS)
  assert np.abs(want).max() > 0.1  # logits large enough to show a mistake
  np.testing.assert_allclose(got, want, atol=2e-5, rtol=0)
  fields, back = hf.from_hf(json.loads(json.dumps(config)), tensors)
  assert ModelConfig(**fields) == cfg and _equal(back, jax.tree.map(
      np.asarray, params))
  if family == "qwen2.5":  # Llama reads the same tensors but no q/k/v bias
    del tensors["model.layers.0.self_attn.q_proj.bias"]
  change(config)
  assert np.abs(hf_reference.logits(config, tensors, TOKENS) - want).max() > 1e-3


@hypothesis.given(heads=st.integers(1, 3), head_dim=st.sampled_from([2, 4, 16]),
                  start=st.integers(0, 5000), seed=st.integers(0, 2**16))
@pytest.mark.parametrize("layout", ["qkv_fused", "heads_in_rope"])
def test_rope_permutation_keeps_every_attention_score(layout, heads, head_dim,
                                                      start, seed):
  """Half-split rotary (transformers) on the exported q and k weights gives
  the scores growjax's interleaved rotary gives on its own weights."""
  rng = np.random.default_rng(seed)
  d, n = 8, 5
  w_q, w_k, w_v = (rng.standard_normal((d, heads, head_dim), np.float32)
                   for _ in range(3))
  x_TD = rng.standard_normal((n, d), np.float32)
  pos_T = start + np.arange(n)
  q, k = (jnp.einsum("TD,DHK->THK", x_TD, w)[None] for w in (w_q, w_k))
  q, k = positions.encode(q, k, pos_T[None], pos_T[None], kind="rope")
  want_HTS = np.einsum("THK,SHK->HTS", q[0], k[0])

  table = hf.LAYOUTS[layout]
  if layout == "qkv_fused":  # GPT-NeoX: rows [heads, 3, head_dim]
    arrays = [w_q, w_k, w_v]
    qkv = (x_TD @ table.to_hf(arrays, head_dim).T.astype(np.float64))
    qkv = qkv.reshape(n, heads, 3 * head_dim)
    q_THK, k_THK = qkv[..., :head_dim], qkv[..., head_dim:2 * head_dim]
  else:  # Llama's q_proj and k_proj
    arrays = [w_q]
    q_THK, k_THK = ((x_TD @ table.to_hf([w], head_dim).T.astype(np.float64))
                    .reshape(n, heads, head_dim) for w in (w_q, w_k))
  q_HTK, k_HTK = (np.stack([_half_split_rope(a[:, j], pos_T)
                            for j in range(heads)]) for a in (q_THK, k_THK))
  got_HTS = q_HTK @ k_HTK.transpose(0, 2, 1)
  np.testing.assert_allclose(got_HTS, want_HTS, rtol=0, atol=2e-3 * max(
      1.0, np.abs(want_HTS).max()))  # float32 angles at positions ~5000
  back = table.from_hf(table.to_hf(arrays, head_dim), head_dim)
  assert all(np.array_equal(a, b) for a, b in zip(back, arrays))


# --- Files -------------------------------------------------------------------


@pytest.mark.parametrize("base,tie", [
    (CFG, False), (CFG, True), (CFG.replace(rope_theta=25_000.0), False),
    (LLAMA_CFG, False), (LLAMA_CFG, True)])
def test_save_then_load_is_bitwise_and_keeps_logits(tmp_path, base, tie):
  cfg = base.replace(tie_embeddings=tie)
  params = _params(cfg, seed=2)
  hf.save_pretrained(tmp_path, params, cfg)
  fields, loaded = hf.load_pretrained(tmp_path)
  assert ModelConfig(**fields) == cfg
  assert _equal(loaded, params)
  np.testing.assert_array_equal(
      np.asarray(model.apply(loaded, ModelConfig(**fields), TOKENS)),
      np.asarray(model.apply(params, cfg, TOKENS)))


def test_files_have_transformers_layout_and_config_fields(tmp_path, params):
  hf.save_pretrained(tmp_path, params, CFG)
  assert sorted(p.name for p in tmp_path.iterdir()) == [
      "config.json", "model.safetensors"]
  config = json.loads((tmp_path / "config.json").read_text())
  assert config["architectures"] == ["GPTNeoXForCausalLM"]
  assert {k: config[k] for k in (
      "model_type", "hidden_size", "num_hidden_layers", "num_attention_heads",
      "intermediate_size", "vocab_size", "max_position_embeddings",
      "hidden_act", "rotary_pct", "rotary_emb_base", "use_parallel_residual",
      "layer_norm_eps", "tie_word_embeddings", "attention_bias")} == {
          "model_type": "gpt_neox", "hidden_size": 32, "num_hidden_layers": 2,
          "num_attention_heads": 2, "intermediate_size": 64, "vocab_size": 61,
          "max_position_embeddings": 16, "hidden_act": "gelu_new",
          "rotary_pct": 1.0, "rotary_emb_base": 10000.0,
          "use_parallel_residual": False, "layer_norm_eps": 1e-5,
          "tie_word_embeddings": False, "attention_bias": False}
  assert config["rope_parameters"] == {
      "rope_type": "default", "rope_theta": 10000.0,
      "partial_rotary_factor": 1.0}
  # no q/k/v biases (qkv_bias=False): attention_bias=false, so neither
  # query_key_value nor dense has one
  layer = {"input_layernorm.weight": (32,), "input_layernorm.bias": (32,),
           "attention.query_key_value.weight": (96, 32),
           "attention.dense.weight": (32, 32),
           "post_attention_layernorm.weight": (32,),
           "post_attention_layernorm.bias": (32,),
           "mlp.dense_h_to_4h.weight": (64, 32),
           "mlp.dense_h_to_4h.bias": (64,),
           "mlp.dense_4h_to_h.weight": (32, 64),
           "mlp.dense_4h_to_h.bias": (32,)}
  want = {"gpt_neox.embed_in.weight": (61, 32),
          "gpt_neox.final_layer_norm.weight": (32,),
          "gpt_neox.final_layer_norm.bias": (32,), "embed_out.weight": (61, 32),
          **{f"gpt_neox.layers.{i}.{n}": s for i in range(2)
             for n, s in layer.items()}}
  with safe_open(tmp_path / "model.safetensors", framework="np") as f:
    assert f.metadata() == {"format": "pt"}
    got = {n: f.get_tensor(n) for n in f.keys()}
  assert {n: t.shape for n, t in got.items()} == want
  assert all(t.dtype == np.float32 for t in got.values())
  assert not any(np.any(t) for n, t in got.items() if n.endswith(".bias")
                 and "layernorm" not in n and "layer_norm" not in n)
  np.testing.assert_array_equal(
      got["gpt_neox.layers.1.mlp.dense_4h_to_h.weight"],
      params["blocks"]["mlp"]["wo"][1].T)


def test_shards_hold_at_most_max_bytes_and_index_maps_every_tensor(tmp_path,
                                                                   params):
  limit = 8 * 1024  # the [96, 32] qkv weight alone is 12 KiB
  written = hf.save_pretrained(tmp_path, params, CFG, max_shard_bytes=limit)
  index = json.loads((tmp_path / hf.INDEX).read_text())
  files = sorted(set(index["weight_map"].values()))
  assert len(files) > 2 and files == sorted(
      p.name for p in written if p.name.startswith("model-"))
  assert files[0] == f"model-00001-of-{len(files):05d}.safetensors"
  _, tensors = hf.to_hf(params, CFG)
  assert set(index["weight_map"]) == set(tensors)
  assert index["metadata"]["total_size"] == sum(t.nbytes
                                                for t in tensors.values())
  for file in files:
    with safe_open(tmp_path / file, framework="np") as f:
      names = list(f.keys())
      size = sum(f.get_tensor(n).nbytes for n in names)
    assert {n for n, v in index["weight_map"].items() if v == file} == set(
        names)
    assert size <= limit or len(names) == 1
  assert _equal(hf.load_pretrained(tmp_path)[1], params)
  # a later unsharded export replaces the shards and the index
  hf.save_pretrained(tmp_path, params, CFG)
  assert sorted(p.name for p in tmp_path.iterdir()) == [
      "config.json", "model.safetensors"]


def test_bfloat16_checkpoint_loads_as_float32(tmp_path, params):
  import ml_dtypes  # pylint: disable=g-import-not-at-top
  from safetensors import numpy as stn  # pylint: disable=g-import-not-at-top
  config, tensors = hf.to_hf(params, CFG)
  (tmp_path / "config.json").write_text(json.dumps(config))
  stn.save_file({n: t.astype(ml_dtypes.bfloat16) for n, t in tensors.items()},
                tmp_path / "model.safetensors")
  _, loaded = hf.load_pretrained(tmp_path)
  want = jax.tree.map(lambda a: np.asarray(a).astype(ml_dtypes.bfloat16)
                      .astype(np.float32), params)
  assert _equal(loaded, want)


# --- Llama -------------------------------------------------------------------


def test_llama_files_have_transformers_layout_and_config_fields(tmp_path):
  params = _params(LLAMA_CFG)
  hf.save_pretrained(tmp_path, params, LLAMA_CFG)
  config = json.loads((tmp_path / "config.json").read_text())
  assert {k: config[k] for k in (
      "architectures", "model_type", "hidden_size", "num_hidden_layers",
      "num_attention_heads", "num_key_value_heads", "head_dim",
      "intermediate_size", "hidden_act", "rms_norm_eps", "rope_theta",
      "attention_bias", "mlp_bias", "tie_word_embeddings")} == {
          "architectures": ["LlamaForCausalLM"], "model_type": "llama",
          "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
          "num_key_value_heads": 2, "head_dim": 16, "intermediate_size": 48,
          "hidden_act": "silu", "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
          "attention_bias": False, "mlp_bias": False,
          "tie_word_embeddings": False}
  assert config["rope_parameters"] == {
      "rope_type": "default", "rope_theta": 500000.0,
      "partial_rotary_factor": 1.0}
  layer = {"input_layernorm.weight": (32,),
           "self_attn.q_proj.weight": (64, 32),
           "self_attn.k_proj.weight": (32, 32),
           "self_attn.v_proj.weight": (32, 32),
           "self_attn.o_proj.weight": (32, 64),
           "post_attention_layernorm.weight": (32,),
           "mlp.gate_proj.weight": (48, 32), "mlp.up_proj.weight": (48, 32),
           "mlp.down_proj.weight": (32, 48)}
  want = {"model.embed_tokens.weight": (61, 32), "model.norm.weight": (32,),
          "lm_head.weight": (61, 32),
          **{f"model.layers.{i}.{n}": s for i in range(2)
             for n, s in layer.items()}}
  with safe_open(tmp_path / "model.safetensors", framework="np") as f:
    got = {n: f.get_tensor(n) for n in f.keys()}
  assert {n: t.shape for n, t in got.items()} == want
  np.testing.assert_array_equal(got["model.layers.1.mlp.gate_proj.weight"],
                                params["blocks"]["mlp"]["wg"][1].T)
  np.testing.assert_array_equal(
      got["model.layers.0.self_attn.v_proj.weight"],
      params["blocks"]["attn"]["v"][0].reshape(32, -1).T)  # not rotated


def test_llama_with_one_kv_head_per_query_head_loads_as_plain_heads(tmp_path):
  """num_key_value_heads == num_attention_heads is n_kv_heads=None, so a
  growth of n_heads grows the key/value heads with them."""
  cfg = LLAMA_CFG.replace(n_kv_heads=None)
  hf.save_pretrained(tmp_path, _params(cfg), cfg)
  config = json.loads((tmp_path / "config.json").read_text())
  assert config["num_key_value_heads"] == 4
  fields, _ = hf.load_pretrained(tmp_path)
  assert fields["n_kv_heads"] is None and ModelConfig(**fields) == cfg


def test_check_pretrained_reads_only_config_and_headers(tmp_path, monkeypatch):
  cfg = LLAMA_CFG.replace(tie_embeddings=True)
  hf.save_pretrained(tmp_path, _params(cfg), cfg, max_shard_bytes=16 * 1024)
  assert (tmp_path / hf.INDEX).exists()
  monkeypatch.setattr(hf, "read_tensors", None)  # any tensor read would fail
  assert ModelConfig(**hf.check_pretrained(tmp_path)) == cfg
  config = json.loads((tmp_path / "config.json").read_text())
  config["intermediate_size"] = 64
  (tmp_path / "config.json").write_text(json.dumps(config))
  with pytest.raises(hf.ConversionError, match=(
      r"model-0000\d-of-0000\d.safetensors: model.layers.0.mlp.gate_proj.weight "
      r"has shape \(48, 32\), but .*config.json gives \(64, 32\) "
      r"\(intermediate_size=64, hidden_size=32\)$")):
    hf.check_pretrained(tmp_path)


def test_check_pretrained_refuses_a_non_zero_bias_as_loading_would(
    tmp_path):
  """GPT-NeoX's MLP biases have no growjax parameter: a non-zero one is
  refused by the check a dry run makes (not only when the run loads the
  weights), naming the file with its directory."""
  from safetensors import numpy as stn  # pylint: disable=g-import-not-at-top
  cfg = FAMILIES["pythia"][0]
  hf.save_pretrained(tmp_path, _params(cfg), cfg)
  tensors, _ = hf.read_tensors(tmp_path)
  assert ModelConfig(**hf.check_pretrained(tmp_path)) == cfg
  tensors["gpt_neox.layers.1.mlp.dense_h_to_4h.bias"][7] = 0.125
  stn.save_file(tensors, tmp_path / "model.safetensors")
  message = (f"{tmp_path / 'model.safetensors'}: gpt_neox.layers.1.mlp."
             "dense_h_to_4h.bias is not zero (max |b| 0.125)")
  for check in (hf.check_pretrained, hf.load_pretrained):
    with pytest.raises(hf.ConversionError) as e:
      check(tmp_path)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_save_pretrained_refuses_masks_mid_ramp_and_writes_nothing(tmp_path):
  from growjax import grow  # pylint: disable=g-import-not-at-top
  big = LLAMA_CFG.replace(d_model=48, n_layers=3)
  grown = grow.grow(_params(LLAMA_CFG), LLAMA_CFG, big, jax.random.key(0),
                    method="msg")
  with pytest.raises(hf.ConversionError, match=(
      r"^masks.hidden: 16 of 48 entries are not 1 \(min 0.5\); a masked "
      r"model has no Hugging Face equivalent: ramp the masks to 1")):
    hf.save_pretrained(tmp_path / "mid", grown.params, big,
                       masks=grow.ramp(grown.masks, 0.5))
  assert not (tmp_path / "mid").exists()
  hf.save_pretrained(tmp_path / "done", grown.params, big,
                     masks=grow.ramp(grown.masks, 1.0))
  assert ModelConfig(**hf.load_pretrained(tmp_path / "done")[0]) == big


def test_export_options_name_architecture_positions_and_length(tmp_path):
  """Mistral exports as Mistral (its tensors are Llama's), keeping the
  imported max_position_embeddings; a transformers 5 file spells the rope
  as rope_parameters, which import reads."""
  cfg = FAMILIES["mistral"][0]
  hf.save_pretrained(tmp_path, _params(cfg), cfg,
                     architecture="MistralForCausalLM",
                     max_position_embeddings=4096,
                     notes={"stage_1": "untied"})
  config = json.loads((tmp_path / "config.json").read_text())
  assert (config["architectures"], config["model_type"],
          config["sliding_window"], config["max_position_embeddings"],
          config["growjax"]) == (["MistralForCausalLM"], "mistral", None,
                                 4096, {"stage_1": "untied"})
  assert config["rope_parameters"] == {
      "rope_type": "linear", "rope_theta": 500000.0,
      "partial_rotary_factor": 1.0, "factor": 4.0}
  fields, _ = hf.load_pretrained(tmp_path)
  assert ModelConfig(**fields) == cfg.replace(max_len=4096)
  with pytest.raises(hf.ConversionError, match=r"^model: qkv_bias=True: "
                     "MistralForCausalLM has no biases"):
    hf.to_hf(_params(FAMILIES["qwen2.5"][0]), FAMILIES["qwen2.5"][0],
             architecture="MistralForCausalLM")
  with pytest.raises(hf.ConversionError, match=r"^model: parallel_residual="
                     "True: Qwen2ForCausalLM has sequential blocks"):
    pythia = FAMILIES["pythia"][0]
    hf.to_hf(_params(pythia), pythia.replace(norm="rmsnorm", mlp="swiglu"))


# --- Refusals ----------------------------------------------------------------


def _set(key, value):
  def change(config, tensors):
    config[key] = value
  return change


def _rope(**values):
  def change(config, tensors):
    config["rope_parameters"].update(values)
  return change


def _drop(*keys):
  def change(config, tensors):
    for key in keys:
      config.pop(key, None)
  return change


def _bias(config, tensors):
  tensors["gpt_neox.layers.1.mlp.dense_4h_to_h.bias"][3] = 0.25


def _extra(config, tensors):
  tensors["gpt_neox.layers.0.attention.q_norm.weight"] = np.ones(16, np.float32)


REFUSALS = {
    "bias": (_bias, "model.safetensors: gpt_neox.layers.1.mlp.dense_4h_to_h."
                    "bias is not zero (max |b| 0.25); growjax has no such "
                    "bias"),
    "rope scaling": (_set("rope_scaling", {"type": "dynamic", "factor": 2.0}),
                     "config.json: rope_scaling.type='dynamic': growjax's "
                     "rope converts only 'default', 'linear', 'llama3'"),
    "rope scaling, transformers 5": (_rope(rope_type="yarn", factor=4.0),
                                     "config.json: rope_parameters.rope_type="
                                     "'yarn'"),
    "rope scaling without its factor": (_rope(rope_type="linear"),
                                        "config.json: rope_parameters.factor "
                                        "is missing"),
    # named as the file spells it (transformers 5: inside rope_parameters)
    "rope base": (_rope(rope_theta=-1.0),
                  "config.json: rope_parameters.rope_theta=-1.0 is not a "
                  "positive number"),
    "partial rotary": (_rope(partial_rotary_factor=0.1),
                       "config.json: rope_parameters.partial_rotary_factor="
                       "0.1 of head_dim 16 rotates 1 channels, not a "
                       "positive even number"),
    "activation": (_set("hidden_act", "relu"),
                   "config.json: hidden_act='relu': growjax's MLP has the erf "
                   "GeLU (gelu) and the tanh GeLU"),
    "norm epsilon": (_set("layer_norm_eps", -1.0),
                     "config.json: layer_norm_eps=-1.0 is not a positive "
                     "number"),
    "unknown architecture": (_set("architectures", ["FalconForCausalLM"]),
                             "config.json: architectures=['FalconForCausalLM']"
                             ": growjax converts only GPTNeoXForCausalLM, "
                             "LlamaForCausalLM, Qwen2ForCausalLM, "
                             "MistralForCausalLM"),
    "shape": (_set("vocab_size", 60),
              "model.safetensors: gpt_neox.embed_in.weight has shape (61, 32), "
              "but config.json gives (60, 32) (vocab_size=60, "
              "hidden_size=32)"),
    "missing tensor": (lambda c, t: t.pop("embed_out.weight"),
                       "model.safetensors: embed_out.weight is missing"),
    "extra layer": (_set("num_hidden_layers", 1),
                    "model.safetensors: gpt_neox.layers.1.input_layernorm."
                    "weight is not a tensor of GPTNeoXForCausalLM with "
                    "num_hidden_layers=1"),
    "unknown tensor": (_extra, "gpt_neox.layers.0.attention.q_norm.weight is "
                              "not a tensor of GPTNeoXForCausalLM"),
    "missing size": (_drop("hidden_size"), "config.json: hidden_size is "
                                           "missing"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_what_growjax_cannot_represent_is_refused_in_one_line(params, case):
  change, message = REFUSALS[case]
  config, tensors = hf.to_hf(params, CFG)
  change(config, tensors)
  with pytest.raises(hf.ConversionError) as e:
    hf.from_hf(config, tensors)
  assert message in str(e.value) and "\n" not in str(e.value)


def _llama_set(key, value):
  def change(config):
    config[key] = value
  return change


LLAMA_REFUSALS = {
    "yarn rope scaling": (
        _llama_set("rope_scaling", {"rope_type": "yarn", "factor": 8.0}),
        "config.json: rope_scaling.rope_type='yarn': growjax's rope converts "
        "only 'default', 'linear', 'llama3'"),
    "llama3 rope scaling without its factors": (
        _llama_set("rope_scaling", {"rope_type": "llama3", "factor": 8.0}),
        "config.json: rope_scaling.low_freq_factor is missing"),
    "partial rotary": (
        _llama_set("rope_parameters", {"rope_type": "default",
                                       "rope_theta": 1e4,
                                       "partial_rotary_factor": 0.5}),
        "config.json: rope_parameters.partial_rotary_factor=0.5: this "
        "architecture rotates every channel of a head"),
    "mistral sliding window": (
        lambda c: c.update(architectures=["MistralForCausalLM"],
                           sliding_window=4096),
        "config.json: sliding_window=4096: sliding-window attention is not "
        "supported"),
    "mistral sliding window by default": (
        lambda c: c.update(architectures=["MistralForCausalLM"]),
        "config.json: sliding_window=4096: sliding-window attention"),
    "qwen2 sliding window": (
        lambda c: c.update(architectures=["Qwen2ForCausalLM"],
                           use_sliding_window=True, sliding_window=8,
                           max_window_layers=1),
        "config.json: use_sliding_window / layer_types: layer 1 has "
        "sliding-window attention, which is not supported"),
    "mlp bias": (_llama_set("mlp_bias", True), "config.json: mlp_bias=True"),
    "activation": (_llama_set("hidden_act", "gelu"),
                   "config.json: hidden_act='gelu': growjax's SwiGLU gates "
                   "with silu"),
    "norm epsilon": (_llama_set("rms_norm_eps", 0),
                     "config.json: rms_norm_eps=0 is not a positive number"),
    "kv heads": (_llama_set("num_key_value_heads", 3),
                 "config.json: num_key_value_heads=3 does not divide "
                 "num_attention_heads=4"),
}


@pytest.mark.parametrize("case", sorted(LLAMA_REFUSALS))
def test_llama_checkpoints_growjax_cannot_represent_are_refused_before_reading(
    tmp_path, case):
  change, message = LLAMA_REFUSALS[case]
  config = hf.to_hf(_params(LLAMA_CFG), LLAMA_CFG)[0]
  change(config)
  (tmp_path / "config.json").write_text(json.dumps(config))
  for check in (hf.load_pretrained, hf.check_pretrained):
    with pytest.raises(hf.ConversionError) as e:  # no safetensors: never read
      check(tmp_path)
    assert str(e.value).startswith(f"{tmp_path}/{message}")
    assert "\n" not in str(e.value)


def test_export_refuses_xpos_and_models_gpt_neox_cannot_hold(params):
  with pytest.raises(hf.ConversionError, match=r"^model\.pos='xpos': no "
                     "standard architecture has xPos"):
    hf.to_hf(params, CFG.replace(pos="xpos"))
  wide = CFG.replace(head_dim=8)
  with pytest.raises(hf.ConversionError, match=r"n_heads \* head_dim == "
                     r"d_model \(2 \* 8 != 32\)"):
    hf.to_hf(model.init(wide, jax.random.key(0)), wide)
  gqa = CFG.replace(n_heads=4, head_dim=8, n_kv_heads=2)
  with pytest.raises(hf.ConversionError, match=r"^model: n_kv_heads=2: "
                     "GPTNeoXForCausalLM has no grouped-query attention"):
    hf.to_hf(model.init(gqa, jax.random.key(0)), gqa)
  mixed = CFG.replace(norm="rmsnorm")
  with pytest.raises(hf.ConversionError, match=r"^model: norm='rmsnorm' with "
                     "mlp='gelu' has no standard architecture"):
    hf.to_hf(model.init(mixed, jax.random.key(0)), mixed)
  with pytest.raises(hf.ConversionError, match="params: blocks/extra/w has no "
                     "place in GPTNeoXForCausalLM's table"):
    hf.to_hf({**params, "blocks": {**params["blocks"],
                                   "extra": {"w": np.zeros(2)}}}, CFG)


def test_load_names_a_directory_without_a_checkpoint(tmp_path, params):
  with pytest.raises(FileNotFoundError, match="no such directory"):
    hf.load_pretrained(tmp_path / "nothing")
  with pytest.raises(FileNotFoundError, match="config.json: no such file"):
    hf.load_pretrained(tmp_path)
  config, _ = hf.to_hf(params, CFG)
  (tmp_path / "config.json").write_text(json.dumps(config))
  with pytest.raises(hf.ConversionError, match="holds no model.safetensors or "
                     "model.safetensors.index.json"):
    hf.load_pretrained(tmp_path)


# --- Tokenizer ---------------------------------------------------------------


@pytest.fixture(scope="module")
def spm_model(text_path, tmp_path_factory):
  from growjax.data import tokenizer  # pylint: disable=g-import-not-at-top
  text = pathlib.Path(text_path).read_text(encoding="utf-8")
  path = tmp_path_factory.mktemp("tok") / "spm.model"
  return tokenizer.train([text], path, vocab_size=400, max_chars=100_000,
                         corpus="test"), text


def _bpe(tokenizer_json: dict, text: str) -> list[int]:
  """tokenizers' BPE with byte fallback: merge the lowest-ranked adjacent
  pair until none is in the merges."""
  vocab = tokenizer_json["model"]["vocab"]
  ranks = {tuple(m): r for r, m in enumerate(tokenizer_json["model"]["merges"])}
  symbols = []
  for ch in text:
    symbols += [ch] if ch in vocab else [f"<0x{b:02X}>" for b in ch.encode()]
  while True:
    pairs = [(ranks[p], j) for j, p in enumerate(zip(symbols, symbols[1:]))
             if p in ranks]
    if not pairs:
      return [vocab[s] for s in symbols]
    _, j = min(pairs)
    symbols[j:j + 2] = [symbols[j] + symbols[j + 1]]


def test_tokenizer_json_merges_encode_as_sentencepiece(spm_model, tmp_path):
  tok, text = spm_model
  written = hf.save_tokenizer(tmp_path, tok.path, max_len=16)
  assert sorted(p.name for p in written) == [
      "special_tokens_map.json", "tokenizer.json", "tokenizer.model",
      "tokenizer_config.json"]
  assert (tmp_path / "tokenizer.model").read_bytes() == tok.path.read_bytes()
  tj = json.loads((tmp_path / "tokenizer.json").read_text(encoding="utf-8"))
  assert tj["model"]["byte_fallback"] and tj["normalizer"] is None
  assert [(t["id"], t["content"]) for t in tj["added_tokens"]] == [
      (0, "<unk>"), (1, "<s>"), (2, "</s>")]
  config = json.loads((tmp_path / "tokenizer_config.json").read_text())
  assert config == {
      "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>",
      "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": False,
      "add_eos_token": False, "split_special_tokens": True,
      "clean_up_tokenization_spaces": False, "model_max_length": 16}
  sample = text[5000:6500] + "  tabs\t\tand ünïcödé 🙂 12345\n\n  </s>x"
  assert _bpe(tj, sample) == tok.encode(sample)


# --- python -m growjax.export ------------------------------------------------


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, text_path, data_dir):
  """A two-stage rope run (msg growth, 2-step ramp), stopped mid-ramp at
  step 3; the test resumes it."""
  from growjax.experiment import Experiment  # pylint: disable=g-import-not-at-top
  from growjax.train import loop  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp("export")
  file = root / "tiny.py"
  file.write_text(textwrap.dedent(f"""
      import ml_collections

      def get_config(arg=None):
        c = ml_collections.ConfigDict()
        c.name = "hf-export"
        c.data = dict(name="text_files", paths=[{str(text_path)!r}],
                      seq_len=8, vocab_size=512,
                      dir={str(data_dir)!r})
        c.model = dict(d_model=16, n_layers=1, n_heads=2, head_dim=8,
                       d_ff=32, pos="rope")
        lr = dict(peak=1e-2, warmup_steps=1, final=1e-3)
        c.stages = [dict(tokens=2 * 8 * 8, batch_size=8, lr=lr),
                    dict(model=dict(d_model=32, n_heads=4, n_layers=2,
                                    d_ff=64),
                         grow=dict(method="msg", ramp_steps=2),
                         tokens=3 * 8 * 8, batch_size=8, lr=lr)]
        c.checkpoint = dict(every_steps=1, keep=10)
        c.eval = dict(every_steps=100, tokens=512)
        c.train = dict(progress=False)
        return c
      """))
  exp = Experiment.from_config(runpy.run_path(str(file))["get_config"]())
  workdir = root / "run"
  loop.run(exp, workdir, stop_at_step=3)
  return workdir, exp


def test_export_refuses_mid_ramp_then_exports_the_folded_model(run_dir,
                                                               tmp_path):
  from growjax.train import loop  # pylint: disable=g-import-not-at-top
  from growjax.trained import load_latest  # pylint: disable=g-import-not-at-top
  workdir, exp = run_dir
  with pytest.raises(hf.ConversionError) as e:
    export.export(workdir, tmp_path / "mid")
  assert str(e.value).startswith(
      f"workdir {workdir}: the checkpoint at step 3 is mid-ramp (masks.")
  assert str(e.value).endswith("export a checkpoint from step 4 on")
  assert not (tmp_path / "mid").exists()
  loop.run(exp, workdir)  # to the end: the ramp is over, masks folded
  summary = export.export(workdir, tmp_path / "hf")
  assert (summary["stage"], summary["step"], summary["architecture"]) == (
      1, 5, "GPTNeoXForCausalLM")
  names = sorted(pathlib.Path(f).name for f in summary["files"])
  assert names == ["config.json", "model.safetensors",
                   "special_tokens_map.json", "tokenizer.json",
                   "tokenizer.model", "tokenizer_config.json"]
  config = json.loads((tmp_path / "hf" / "config.json").read_text())
  assert (config["bos_token_id"], config["eos_token_id"]) == (1, 2)
  trained = load_latest(workdir)
  fields, params = hf.load_pretrained(tmp_path / "hf")
  assert ModelConfig(**fields) == trained.config
  assert _equal(params, jax.tree.map(np.asarray, trained.params))


def test_export_cli_errors_are_one_line_and_exit_2(run_dir, tmp_path, capsys):
  workdir, _ = run_dir
  xpos = tmp_path / "xpos"
  xpos.mkdir()
  config = json.loads((workdir / "config.json").read_text())
  config["model"]["pos"] = "xpos"
  (xpos / "config.json").write_text(json.dumps(config))
  empty = tmp_path / "fresh"
  empty.mkdir()
  (empty / "config.json").write_text((workdir / "config.json").read_text())
  cases = [(tmp_path / "none", "error: workdir "
            f"{tmp_path / 'none'}: no such directory"),
           (tmp_path, f"error: workdir {tmp_path}: is not a growjax run"),
           (empty, f"error: workdir {empty}: holds no checkpoint"),
           (xpos, f"error: workdir {xpos}: stages[0].model.pos='xpos': no "
                  "standard architecture has xPos")]
  for where, message in cases:
    assert export.run(where, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err
  done = subprocess.run(
      [sys.executable, "-m", "growjax.export", "--workdir", str(tmp_path),
       "--out", str(tmp_path / "out")], capture_output=True, text=True,
      cwd=REPO, timeout=120)
  assert done.returncode == 2, done.stderr
  assert done.stderr.strip() == (
      f"error: workdir {tmp_path}: is not a growjax run (no config.json; runs "
      f"are made by python -m growjax.main --config ... --workdir {tmp_path})")
