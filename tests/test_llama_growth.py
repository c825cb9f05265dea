"""experiments/llama_growth.py and `init_from = "hf:DIR"`: a Llama-family
model grows through every stage exactly and exports as LlamaForCausalLM; a
run that starts from a Hugging Face checkpoint starts from its weights, bit
for bit; a checkpoint the run cannot use is refused in one line naming the
file and the field, before any compute.
"""

import json
import pathlib

import jax
import numpy as np
import pytest

from growjax import ModelConfig, command, export, hf, model, parallel
from growjax import checkpoint as ckpt_lib
from growjax.experiment import Experiment, ExperimentError
from growjax.grow import axes as axes_lib

REPO = pathlib.Path(__file__).resolve().parents[1]
EXPERIMENT = REPO / "experiments" / "llama_growth.py"


def _config(text_path, data_dir, arg="runlocal"):
  """The experiment's `arg` variant on the test corpus (shared data cache)."""
  c = command.load_experiment(f"{EXPERIMENT}:{arg}")
  c.data = dict(name="text_files", paths=[str(text_path)], seq_len=32,
                vocab_size=512, dir=str(data_dir))
  c.train.progress = False
  c.checkpoint = dict(every_steps=100, keep=100)  # every stage start is kept
  return c


def _stage0_checkpoint(directory, text_path, data_dir, seed=7, **changes):
  """An HF checkpoint of the runlocal experiment's stage-0 shape (random
  weights, norm scales off 1), written by growjax; returns its params."""
  exp = Experiment.from_config(_config(text_path, data_dir))
  cfg = exp.stages[0].model.replace(**changes)
  params = jax.tree.map(np.asarray, model.init(cfg, jax.random.key(seed)))
  params["ln_f"]["scale"] = params["ln_f"]["scale"] + 0.5
  hf.save_pretrained(directory, params, cfg)
  return params


def _growth_events(workdir):
  rows = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text()
          .splitlines()]
  return [r for r in rows if r.get("event") == "growth"]


def _restore_params(workdir, exp, stage, step):
  cfg = exp.stages[stage].model
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  abstract = jax.tree.map(
      lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=device),
      axes_lib.param_shapes(cfg))
  with ckpt_lib.Checkpointer(workdir, keep=100) as ckpt:
    return ckpt.restore(stage, step, {"params": abstract})["params"]


def test_experiment_file_grows_a_llama_family_model_by_msg_then_hyperclone():
  exp = Experiment.from_config(command.load_experiment(str(EXPERIMENT)))
  first, *later = [s.model for s in exp.stages]
  assert (first.norm, first.mlp, first.pos, first.n_heads, first.kv_heads,
          first.rope_theta) == ("rmsnorm", "swiglu", "rope", 4, 2, 500_000.0)
  assert [s.grow.method for s in exp.stages[1:]] == ["msg", "hyperclone"]
  # stage 1: query heads within the 2 groups; stage 2: the groups too
  assert [(m.n_heads, m.kv_heads) for m in later] == [(8, 2), (16, 4)]
  assert hf.architecture_for(hf.growjax_fields(later[-1])).name == (
      "LlamaForCausalLM")


def test_runlocal_grows_exactly_through_every_stage_and_exports_as_llama(
    tmp_path, text_path, data_dir):
  from growjax.train import loop  # pylint: disable=g-import-not-at-top
  from growjax.trained import load_latest  # pylint: disable=g-import-not-at-top
  exp = Experiment.from_config(_config(text_path, data_dir))
  workdir = tmp_path / "run"
  loop.run(exp, workdir)
  growths = _growth_events(workdir)
  assert [g["method"] for g in growths] == ["msg", "hyperclone"]
  for g in growths:  # the same fixed batch, before and after each growth
    assert abs(g["loss_after"] - g["loss_before"]) <= 1e-5 * g["loss_before"]
  summary = export.export(workdir, tmp_path / "hf")
  assert summary["architecture"] == "LlamaForCausalLM"
  trained = load_latest(workdir)
  fields, params = hf.load_pretrained(tmp_path / "hf")
  assert ModelConfig(**fields) == trained.config == exp.stages[-1].model
  jax.tree.map(np.testing.assert_array_equal, params,
               jax.tree.map(np.asarray, trained.params))


def test_init_from_starts_stage_0_from_the_checkpoint_bit_for_bit(
    tmp_path, text_path, data_dir):
  from growjax.train import loop  # pylint: disable=g-import-not-at-top
  pretrained = _stage0_checkpoint(tmp_path / "hf", text_path, data_dir)
  exp = Experiment.from_config(
      _config(text_path, data_dir, f"runlocal,hf={tmp_path / 'hf'}"))
  assert exp.init_from == f"hf:{tmp_path / 'hf'}"
  assert exp.fingerprint()["init_from"] == exp.init_from
  workdir = tmp_path / "run"
  loop.run(exp, workdir)
  start = _restore_params(workdir, exp, 0, 0)
  jax.tree.map(np.testing.assert_array_equal, jax.tree.map(np.asarray, start),
               pretrained)
  assert [g["method"] for g in _growth_events(workdir)] == ["msg", "hyperclone"]


def test_state_from_params_lays_the_params_out_on_the_mesh(tmp_path):
  import optax  # pylint: disable=g-import-not-at-top
  from growjax.train import state as state_lib  # pylint: disable=g-import-not-at-top
  cfg = ModelConfig(vocab_size=64, d_model=16, n_layers=2, n_heads=4,
                    n_kv_heads=2, head_dim=8, d_ff=32, max_len=8, pos="rope",
                    norm="rmsnorm", mlp="swiglu")
  params = jax.tree.map(np.asarray, model.init(cfg, jax.random.key(1)))
  mesh = parallel.make_mesh(data=2, fsdp=2, tensor=2)
  optimizer = optax.adamw(1e-3)
  _, shardings = state_lib.abstract_state(cfg, optimizer, (), mesh,
                                          parallel.RULES)
  state = state_lib.state_from_params(cfg, optimizer, params, shardings)
  for x, y, sh in zip(*(jax.tree.leaves(t) for t in (
      state["params"], params, shardings["params"]))):
    np.testing.assert_array_equal(x, y)
    assert x.sharding.is_equivalent_to(sh, x.ndim)
  k = state["params"]["blocks"]["attn"]["k"]  # [L, D, G, K]: G over tensor
  assert k.sharding.spec == jax.sharding.PartitionSpec(None, "fsdp", "tensor",
                                                       None)
  assert all(not np.any(np.asarray(m)) for m in
             jax.tree.leaves(state["opt_state"][0].mu))
  with pytest.raises(ValueError, match=r"init_from.blocks/attn/k: shape"):
    state_lib.state_from_params(cfg.replace(n_kv_heads=4), optimizer, params,
                                state_lib.abstract_state(
                                    cfg.replace(n_kv_heads=4), optimizer, (),
                                    mesh, parallel.RULES)[1])


def _refused(c, message):
  with pytest.raises(ExperimentError) as e:
    Experiment.from_config(c)
  assert str(e.value).startswith(message), str(e.value)
  assert "\n" not in str(e.value)


def test_init_from_that_cannot_be_used_is_one_line_naming_file_and_field(
    tmp_path, text_path, data_dir):
  good = tmp_path / "good"
  _stage0_checkpoint(good, text_path, data_dir)
  config = json.loads((good / "config.json").read_text())

  def with_init(value, **model):
    c = _config(text_path, data_dir)
    c.init_from, c.model = value, model
    return c

  _refused(with_init(str(good)), f"init_from: {str(good)!r} is not \"hf:DIR\"")
  _refused(with_init(f"hf:{tmp_path / 'none'}"),
           f"init_from: {tmp_path / 'none'}: no such directory")
  empty = tmp_path / "empty"
  empty.mkdir()
  _refused(with_init(f"hf:{empty}"),
           f"init_from: {empty / 'config.json'}: no such file")
  no_tensors = tmp_path / "no_tensors"
  no_tensors.mkdir()
  (no_tensors / "config.json").write_text(json.dumps(config))
  _refused(with_init(f"hf:{no_tensors}"),
           f"init_from: {no_tensors}: holds no model.safetensors or "
           "model.safetensors.index.json")

  def variant(name, **changes):
    d = tmp_path / name
    d.mkdir()
    (d / "config.json").write_text(json.dumps({**config, **changes}))
    (d / "model.safetensors").symlink_to(good / "model.safetensors")
    return f"hf:{d}"

  _refused(with_init(variant("shape", intermediate_size=64)),
           f"init_from: {tmp_path / 'shape' / 'model.safetensors'}: "
           "model.layers.0.mlp.gate_proj.weight has shape (192, 64), but "
           f"{tmp_path / 'shape' / 'config.json'} gives (64, 64)")
  _refused(with_init(variant("scaling", rope_parameters={
      "rope_type": "yarn", "rope_theta": 500000.0, "factor": 8.0})),
           f"init_from: {tmp_path / 'scaling' / 'config.json'}: "
           "rope_parameters.rope_type='yarn': growjax's rope converts only "
           "'default', 'linear', 'llama3'")
  # a missing tensor is named with the file it should be in, and its directory
  _refused(with_init(variant("bias", attention_bias=True)),
           f"init_from: {tmp_path / 'bias' / 'model.safetensors'}: "
           "model.layers.0.self_attn.q_proj.bias is missing")
  _refused(with_init(variant("mistral", architectures=["MistralForCausalLM"])),
           f"init_from: {tmp_path / 'mistral' / 'config.json'}: "
           "sliding_window=4096: sliding-window attention is not supported")
  # a bias growjax has no parameter for, not zero: refused before any compute
  # (the dry run's check), naming the file with its directory
  from safetensors import numpy as stn  # pylint: disable=g-import-not-at-top
  tensors, _ = hf.read_tensors(good)
  for name in (f"{i}.self_attn.{p}_proj" for i in (0, 1) for p in "qkvo"):
    rows = tensors[f"model.layers.{name}.weight"].shape[0]
    tensors[f"model.layers.{name}.bias"] = np.zeros(rows, np.float32)
  tensors["model.layers.1.self_attn.o_proj.bias"][5] = -0.5
  biased = tmp_path / "biased"
  biased.mkdir()
  (biased / "config.json").write_text(json.dumps(
      {**config, "attention_bias": True}))
  stn.save_file(tensors, biased / "model.safetensors")
  _refused(with_init(f"hf:{biased}"),
           f"init_from: {biased / 'model.safetensors'}: "
           "model.layers.1.self_attn.o_proj.bias is not zero (max |b| 0.5)")
  _refused(with_init(variant("vocab", vocab_size=600)),
           f"init_from: {tmp_path / 'vocab' / 'model.safetensors'}: "
           "model.embed_tokens.weight has shape (512, 64), but")
  _refused(with_init(f"hf:{good}", d_model=32),
           "model.d_model: 32, but init_from's checkpoint has 64")
  # muP is the checkpoint's function only with the checkpoint as its base
  _refused(with_init(f"hf:{good}", param="mup",
                     mup_base=dict(d_model=32, n_heads=4, d_ff=96)),
           "model.mup_base: {'d_model': 32, 'n_heads': 4, 'd_ff': 96}, but "
           "init_from's checkpoint is standard-parametrized")
  c = with_init(f"hf:{good}", dtype="bfloat16")  # a compute setting: allowed
  c.data["vocab_size"] = 600
  _refused(c, f"init_from: hf:{good}: the checkpoint's vocab_size 512 is not "
           "data.vocab_size 600")
  c = with_init(f"hf:{good}")
  c.stages[1]["model"]["d_model"] = 32
  _refused(c, "stages[1].model.d_model: 32 < 64, a stage cannot shrink")
  c = with_init(f"hf:{good}")
  c.stages[2]["model"]["n_kv_heads"] = 8
  _refused(c, "stages[2].model.n_kv_heads: 2 -> 8 with n_heads 8 -> 16 leaves "
           "2 query heads per key/value head, fewer than 4")


def test_export_keeps_the_checkpoint_s_architecture_and_length_and_notes_an_untie(
    tmp_path, text_path, data_dir):
  """A run from a tied Mistral-format checkpoint whose last stage grows the
  width by hyperclone: that stage is untied (exact: the output layer starts
  as the embedding's transpose), the export is Mistral again with the
  checkpoint's max_position_embeddings (the run's seq_len is 32), and
  config.json says which growth untied the embeddings."""
  exp = Experiment.from_config(_config(text_path, data_dir))
  cfg = exp.stages[0].model.replace(tie_embeddings=True)
  hf.save_pretrained(tmp_path / "hf", model.init(cfg, jax.random.key(0)), cfg,
                     architecture="MistralForCausalLM",
                     max_position_embeddings=4096)
  c = _config(text_path, data_dir, f"runlocal,hf={tmp_path / 'hf'}")
  c.stages[2]["model"]["d_model"] = 256
  exp = Experiment.from_config(c)
  assert [s.model.tie_embeddings for s in exp.stages] == [True, True, False]
  options = export.hf_options(exp, 2)
  assert (options["architecture"], options["max_position_embeddings"]) == (
      "MistralForCausalLM", 4096)
  assert options["notes"] == {"stage_2": (
      "hyperclone growth (d_model 128 -> 256) untied the embeddings: the "
      "output layer started as the embedding's transpose, so the growth kept "
      "the function exactly")}
  assert export.hf_options(exp, 1)["notes"] is None
