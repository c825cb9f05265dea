"""Experiment validation: every mistake is refused before compute, by name."""

import copy

import pytest

from growjax.experiment import Experiment, ExperimentError, parse_arg

BASE = dict(
    name="t", seed=0,
    data=dict(name="python_source", seq_len=32, vocab_size=512),
    model=dict(d_model=64, n_layers=2, n_heads=4, head_dim=16, d_ff=256),
    stages=[
        dict(tokens=100 * 8 * 32, batch_size=8, lr=dict(peak=1e-3, warmup_steps=5)),
        dict(model=dict(d_model=128, n_heads=8, n_layers=4),
             grow=dict(method="msg", ramp_steps=10), tokens=50 * 8 * 32,
             batch_size=8, lr=dict(peak=1e-3, warmup_steps=5, final=1e-4)),
    ])


def with_change(path, value):
  c = copy.deepcopy(BASE)
  *parents, last = path
  node = c
  for p in parents:
    node = node[p]
  if value is KeyError:
    del node[last]
  else:
    node[last] = value
  return c


def test_valid_experiment_reads_into_typed_stages():
  exp = Experiment.from_config(BASE, n_devices=8)
  assert [s.model.d_model for s in exp.stages] == [64, 128]
  assert exp.stages[1].model.d_ff == 256  # inherited from the previous stage
  assert exp.stages[1].model.vocab_size == 512 and exp.stages[1].model.max_len == 32
  assert exp.stage_starts() == [0, 100, 150]


@pytest.mark.parametrize("old,policy", [(True, "full"), (False, "none")])
def test_old_boolean_remat_reads_as_its_policy_with_a_deprecation(old, policy):
  c = with_change(("train",), dict(remat=old))
  with pytest.warns(FutureWarning, match=rf"train\.remat: {old} is deprecated; "
                    rf"write remat='{policy}'"):
    exp = Experiment.from_config(c, n_devices=8)
  assert exp.train.remat == policy


BAD = [
    (("stages", 1, "model", "d_model"), 48, r"stages\[1\]\.model\.d_model: 48 < 64, a stage cannot shrink"),
    (("stages", 1, "model", "n_layers"), 1, r"stages\[1\]\.model\.n_layers: 1 < 2, a stage cannot shrink"),
    (("stages", 1, "model", "head_dim"), 32, r"stages\[1\]\.model\.head_dim: 16 -> 32, cannot change it"),
    (("stages", 1, "grow", "method"), "magic", r"stages\[1\]\.grow\.method: 'magic' is not a growth method"),
    (("stages", 1, "grow"), KeyError, r"stages\[1\]\.grow: missing"),
    (("stages", 1, "grow", "ramp_stesp"), 3, r"stages\[1\]\.grow\.ramp_stesp: not an option of method 'msg'"),
    (("stages", 1, "grow", "ramp_steps"), 0, r"stages\[1\]\.grow\.ramp_steps: 0 leaves the masks no steps"),
    (("stages", 1, "grow", "ramp_steps"), 51, r"stages\[1\]\.grow\.ramp_steps: 51 > the stage's 50 steps"),
    (("stages", 1, "grow", "noise"), 0.1, r"stages\[1\]\.grow\.noise: not an option of method 'msg'"),
    (("stages", 1, "tokens"), KeyError, r"stages\[1\]\.tokens: missing"),
    (("stages", 1, "tokens"), -5, r"stages\[1\]\.tokens: -5 is not an integer >= 1"),
    (("stages", 1, "microbatches"), 3, r"stages\[1\]\.microbatches: 3 does not divide batch_size 8"),
    (("stages", 1, "tokens"), 10, r"stages\[1\]\.tokens: 10 tokens make no step"),
    (("stages", 0, "batch_size"), 6, r"stages\[0\]\.batch_size: 6 .* does not split over the mesh's data x fsdp = 8"),
    (("stages", 0, "lr", "peak"), 0, r"stages\[0\]\.lr\.peak: 0 is not a positive number"),
    (("stages", 0, "lr", "final"), 1.0, r"stages\[0\]\.lr\.final: 1.0 is not a number >= 0 and <= 0.001"),
    (("stages", 0, "lr", "peek"), 1e-3, r"stages\[0\]\.lr\.peek: unknown field"),
    (("stages", 0, "lr", "warmup_steps"), 1000, r"stages\[0\]\.lr\.warmup_steps: 1000 > the stage's 100 steps"),
    (("stages", 0, "grow"), dict(method="msg"), r"stages\[0\]\.grow: stage 0 has nothing to grow from"),
    (("stages", 1, "model", "vocab_size"), 1024, r"stages\[1\]\.model\.vocab_size: comes from data"),
    (("model", "pos"), "alibi", r"stages\[0\]\.model\.pos: 'alibi' is not one of"),
    (("model", "d_modle"), 64, r"stages\[0\]\.model\.d_modle: unknown field"),
    (("data", "name"), "", r"data: DataConfig\.name"),
    (("data", "vocab_sise"), 3, r"data: .*vocab_sise"),
    (("mesh",), dict(data=3, fsdp=1, tensor=1), r"mesh: .*3"),
    (("checkpoint",), dict(every_steps=0), r"checkpoint\.every_steps: 0 is not an integer >= 1"),
    (("train",), dict(remat="yes"), r"train\.remat: 'yes' is not one of \['auto', 'none'"),
    (("train",), dict(loss_chunk=0), r"train\.loss_chunk: 0 is not an integer >= 1"),
    (("eval",), dict(tokens=0), r"eval\.tokens: 0 is not an integer >= 1"),
    (("eval",), dict(batches=8), r"eval\.batches: unknown field"),
    (("optimizer",), dict(clone_lr_multipliers=1), r"optimizer\.clone_lr_multipliers: 1 is not a bool"),
    (("optimizer",), dict(b2=1.0), r"optimizer\.b2: 1.0 is not below 1"),
    (("optimizer",), dict(eps=0), r"optimizer\.eps: 0 is not a positive number"),
    (("optimizer",), dict(weight_decay=-0.1), r"optimizer\.weight_decay: -0.1 is not a number >= 0"),
    (("mesh",), dict(data=-1, fsdp=-1), r"mesh\.data: \[-1, -1, 1\] uses -1 on more than one axis"),
    (("mesh",), dict(rules=[("mlp", "model")]), r"mesh\.rules\[0\]: mesh axis 'model' of 'mlp' is not one of"),
    (("mesh",), dict(rules="embed"), r"mesh\.rules: 'embed' is not a list"),
    (("optimiser",), dict(), r"optimiser: unknown field"),
    (("stages",), [], r"stages: \[\] is not a non-empty list"),
]


@pytest.mark.parametrize("path,value,message", BAD, ids=[".".join(map(str, b[0])) + f"={b[1]}" for b in BAD])
def test_bad_experiment_is_refused_naming_the_field(path, value, message):
  with pytest.raises(ExperimentError, match=message):
    Experiment.from_config(with_change(path, value), n_devices=8)


def test_hyperclone_needs_integer_multiples():
  c = with_change(("stages", 1, "grow"), dict(method="hyperclone"))
  c["stages"][1]["model"] = dict(d_model=96, n_heads=4)
  with pytest.raises(ExperimentError, match=r"stages\[1\]\.grow: .*embed"):
    Experiment.from_config(c, n_devices=8)


def test_config_arguments_parse_and_refuse_unknown_names():
  assert parse_arg("runlocal,size=3", runlocal=False, size=1) == {"runlocal": True, "size": 3}
  with pytest.raises(ExperimentError, match="'runlocl': unknown"):
    parse_arg("runlocl", runlocal=False)


def test_hyperclone_noise_is_an_experiment_option():
  c = with_change(("stages", 1, "grow"), dict(method="hyperclone", noise=0.01))
  c["stages"][1]["model"] = dict(d_model=128, n_heads=8)
  growth = Experiment.from_config(c, n_devices=8).stages[1].grow
  assert growth.grow_options() == {"noise": 0.01}


@pytest.mark.parametrize("method", ["msg", "zero", "hyperclone", "stack"])
def test_growth_defaults_are_the_methods_own(method):
  """Every growth option's default is defined once, in grow.methods: an
  experiment that names only the method gets exactly those, grow() uses the
  same ones, and the trainer's ramp is the msg default."""
  from growjax import grow
  c = copy.deepcopy(BASE)
  c["stages"][1]["grow"] = dict(method=method)
  c["stages"][1]["tokens"] = 200 * 8 * 32
  c["stages"][1]["model"] = {"hyperclone": dict(d_model=128, n_heads=8),
                             "stack": dict(n_layers=4)}.get(method, dict(n_layers=4, n_heads=8))
  stage = Experiment.from_config(c, n_devices=8).stages[1]
  m = grow.METHODS[method]
  assert stage.grow.options == {k: grow.OPTIONS[k].default for k in m.options}
  assert grow.methods.check_options(method, {}, for_grow=True) == stage.grow.grow_options()
  ramp = stage.ramp(start=100)
  assert (ramp is not None) == m.uses_masks == ("ramp_steps" in m.options)
  if ramp is not None:
    assert ramp == grow.Ramp(start=100, steps=grow.OPTIONS["ramp_steps"].default)
