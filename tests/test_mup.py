"""muP (`growjax.mup`): equal to sp at its base shape, scaled by role away
from it, refused in one line where it cannot apply, and exported to Hugging
Face as the sp model computing the same function."""

from __future__ import annotations

import functools
import math

import jax
import numpy as np
import pytest

from growjax import hf, model, mup
from growjax import params as params_lib
from growjax.config import ModelConfig

GPT = ModelConfig(vocab_size=32, d_model=8, n_layers=2, n_heads=2, head_dim=4,
                  d_ff=16, max_len=8)
LLAMA = GPT.replace(pos="rope", norm="rmsnorm", mlp="swiglu", n_kv_heads=1)
BASE = dict(d_model=8, n_heads=2, d_ff=16)
SMALL_BASE = dict(d_model=4, n_heads=1, d_ff=8, head_dim=2)


@functools.partial(jax.jit, static_argnames="cfg")
def forward(params, tokens, cfg):
  return model.apply(params, cfg, tokens)


def tokens_of(seed):
  return jax.random.randint(jax.random.key(seed), (2, 8), 0, GPT.vocab_size)


@pytest.mark.parametrize("cfg", [GPT, LLAMA], ids=["gpt", "llama"])
def test_mup_at_its_base_shape_is_sp(cfg):
  at_base = cfg.replace(param="mup", mup_base=BASE)
  key = jax.random.key(3)
  sp_params, mup_params = model.init(cfg, key), model.init(at_base, key)
  jax.tree.map(np.testing.assert_array_equal, sp_params, mup_params)
  tokens = tokens_of(0)
  np.testing.assert_array_equal(forward(sp_params, tokens, cfg=cfg),
                                forward(mup_params, tokens, cfg=at_base))
  assert set(jax.tree.leaves(mup.lr_multipliers(at_base))) == {1.0}
  assert mup.attention_scale(at_base) == mup.attention_scale(cfg)


def test_mup_factors_by_role_against_the_base():
  """Base (D, H, F, K) = (4, 1, 8, 2), model (8, 2, 16, 4): fan-in ratios
  q, k, v, wi: 2; o: H K / (H0 K0) = 8 / 2 = 4; wo: 2."""
  cfg = GPT.replace(param="mup", mup_base=SMALL_BASE)
  ratio = {"blocks/attn/q": 2, "blocks/attn/k": 2, "blocks/attn/v": 2,
           "blocks/attn/o": 4, "blocks/mlp/wi": 2, "blocks/mlp/wo": 2}
  for path, p in params_lib.of(cfg).items():
    r = ratio.get(path, 1)
    assert mup.lr_multiplier(p, cfg) == 1 / r, path
    assert mup.init_std(p, cfg) == pytest.approx(cfg.init_std / math.sqrt(r))
  assert mup.output_multiplier(cfg) == 0.5
  assert mup.attention_scale(cfg) == pytest.approx(math.sqrt(2) / 4)
  groups = mup.groups(cfg)
  assert groups["unembed"] == {"init_std": cfg.init_std, "lr": 1.0,
                               "forward": 0.5}
  assert groups["blocks/ln1/scale"]["init_std"] is None


@pytest.mark.parametrize("changes,match", [
    (dict(param="mup"), r"^ModelConfig\.mup_base: required by param='mup'"),
    (dict(param="mup", mup_base=dict(d_model=16, n_heads=2, d_ff=16)),
     r"^ModelConfig\.mup_base: d_model 16 is larger than the model's d_model 8"),
    (dict(param="mup", mup_base=dict(d_model=8, n_heads=2, d_ff=16,
                                     head_dim=8)),
     r"^ModelConfig\.mup_base: head_dim 8 is larger"),
    (dict(param="mup", mup_base=BASE, tie_embeddings=True),
     r"^ModelConfig\.tie_embeddings: True is not supported with param='mup'"),
    (dict(mup_base=dict(d_model=8, heads=2, d_ff=16)),
     r"^ModelConfig\.mup_base: unknown keys \['heads'\]"),
    (dict(mup_base=(8, 2)), r"^ModelConfig\.mup_base: \(8, 2\) is not"),
])
def test_bad_mup_config_is_one_line_naming_the_field(changes, match):
  with pytest.raises(ValueError, match=match) as e:
    GPT.replace(**changes)
  assert "\n" not in str(e.value)


def test_mup_config_is_hashable_and_round_trips_through_a_dict():
  cfg = GPT.replace(param="mup", mup_base=SMALL_BASE)
  again = ModelConfig(**cfg.to_dict())
  assert again == cfg and hash(again) == hash(cfg)
  assert cfg.replace(mup_base=(4, 1, 8, 2)) == cfg


@pytest.mark.parametrize("cfg", [LLAMA, GPT.replace(pos="rope")],
                         ids=["llama", "neox"])
def test_hugging_face_export_of_a_mup_model_is_exact(cfg):
  """The logits multiplier and the attention scale's difference folded into
  unembed and q: the exported sp model computes the mup model's logits."""
  cfg = cfg.replace(param="mup", mup_base=SMALL_BASE)
  params = model.init(cfg, jax.random.key(1))
  config, tensors = hf.to_hf(params, cfg)
  fields, back = hf.from_hf(config, tensors)
  sp = ModelConfig(**fields)
  assert sp.param == "sp"
  tokens = tokens_of(2)
  want = forward(params, tokens, cfg=cfg)
  got = forward(jax.tree.map(np.asarray, back), tokens, cfg=sp)
  np.testing.assert_allclose(got, want, rtol=1e-5,
                             atol=1e-5 * float(np.abs(want).max()))


def _experiment(**model_fields):
  from growjax.experiment import Experiment  # noqa: PLC0415
  return Experiment.from_config(dict(
      data=dict(name="python_source", seq_len=8, vocab_size=300),
      model=dict(d_model=8, n_layers=2, n_heads=2, head_dim=4, d_ff=16,
                 pos="rope", **model_fields),
      stages=[dict(tokens=64, batch_size=2, lr=dict(peak=1e-2)),
              dict(model=dict(d_model=16, n_heads=4, d_ff=32),
                   grow=dict(method="hyperclone"), tokens=64, batch_size=2,
                   lr=dict(peak=1e-2))]))


def test_dry_run_shows_the_multipliers_of_each_stage():
  from growjax import dry_run  # noqa: PLC0415
  exp = _experiment(param="mup", mup_base=dict(d_model=4, n_heads=1, d_ff=8))
  lines = [line for i, s in enumerate(exp.stages)
           for line in dry_run.format_multipliers(
               i, dry_run.multipliers(exp, s))]
  assert lines[0].startswith("stage 0 mup (base d_model 4, n_heads 1, d_ff 8, "
                             "head_dim 4): logits x0.5")
  assert "x0.5: blocks/attn/q" in lines[1] and "x0.25: blocks/attn/q" in lines[4]
  # sp: only hyperclone's multipliers, after its growth
  sp = _experiment()
  assert dry_run.multipliers(sp, sp.stages[0]) is None
  assert dry_run.multipliers(sp, sp.stages[1])["params"]["unembed"]["lr"] == 0.5


def test_experiment_file_errors_name_the_model_field():
  from growjax.experiment import ExperimentError  # noqa: PLC0415
  with pytest.raises(ExperimentError, match=r"^stages\[0\]\.model\.mup_base: "
                                            "required by param='mup'"):
    _experiment(param="mup")


def test_coordinate_check_is_flat_under_mup_and_grows_under_sp():
  """The benchmark's coordinate check at tiny widths (32 and 128, 3 Adam
  steps): the slope of log RMS against log width of the attention and MLP
  outputs and the logits is clearly positive under sp and near 0 under mup."""
  import importlib.util  # noqa: PLC0415
  import pathlib  # noqa: PLC0415
  path = (pathlib.Path(__file__).parents[1] / "benchmarks"
          / "mup_coord_check.py")
  spec = importlib.util.spec_from_file_location("mup_coord_check", path)
  bench = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(bench)
  result = bench.coord_check([32, 128], steps=3, lr=1e-2, batch_size=4,
                             seq_len=16, head_dim=16)
  sp, mu = result["slopes"]["sp"], result["slopes"]["mup"]
  for part in ("attn", "mlp", "logits"):
    assert sp[part] > 0.8, (part, sp)
    assert abs(mu[part]) < 0.5 and sp[part] - mu[part] > 0.6, (part, mu)
  assert abs(sp["embed"]) < 0.1 and abs(mu["embed"]) < 0.1
