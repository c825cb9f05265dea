"""The optimizer: HyperCloning's learning-rate multipliers applied by the
trainer (on by default), and a schedule that continues across growth."""

import jax
import numpy as np
import optax
import pytest

from growjax import grow, loss
from growjax.experiment import Experiment
from growjax.train import optimizer as opt_lib

MODEL = dict(d_model=8, n_layers=2, n_heads=2, head_dim=4, d_ff=16, pos="rope")
WIDE = dict(d_model=16, n_heads=4, d_ff=32)


MUP = dict(param="mup", mup_base=dict(d_model=4, n_heads=1, d_ff=8))


def experiment(method="hyperclone", param="sp", **optimizer):
  grow1 = dict(method=method, **(dict(ramp_steps=2) if method == "msg" else {}))
  return Experiment.from_config(dict(
      data=dict(name="python_source", seq_len=8, vocab_size=300),
      model=dict(MODEL, **(MUP if param == "mup" else {})),
      stages=[dict(tokens=64, batch_size=2, lr=dict(peak=1e-2)),
              dict(model=WIDE, grow=grow1, tokens=64,
                   batch_size=2, lr=dict(peak=1e-2)),
              dict(model=dict(n_layers=4), grow=dict(method="zero"),
                   tokens=64, batch_size=2, lr=dict(peak=1e-2))],
      optimizer=dict(eps=1e-30, weight_decay=0.1, clip_norm=1e9, **optimizer)))


def test_hyperclone_multipliers_are_on_by_default_and_compose_over_stages():
  exp = experiment()
  assert opt_lib.multipliers(exp, exp.stages[0]) is None
  for stage in exp.stages[1:]:  # the later zero growth keeps them
    m = opt_lib.multipliers(exp, stage)
    assert m["blocks"]["attn"]["q"] == 0.5  # d_model doubled: q's input axis
    assert m["blocks"]["mlp"]["wo"] == 0.5  # d_ff doubled
    assert m["embed"] == 1.0 and m["unembed"] == 0.5
  assert opt_lib.multipliers(experiment(clone_lr_multipliers=False),
                             exp.stages[1]) is None
  assert opt_lib.multipliers(experiment("msg"), exp.stages[1]) is None


@pytest.mark.parametrize("method", ["hyperclone", "msg"])
@pytest.mark.parametrize("clone", [True, False])
def test_mup_multipliers_follow_the_width_through_growth(method, clone):
  """By hand: base (D, H, F, K) = (4, 1, 8, 4). Stage 0 (8, 2, 16, 4): every
  hidden matrix's fan-in is twice its base's, so q, k, v, wi (fan-in D),
  o (H K) and wo (F) take 1/2. Stages 1, 2 (16, 4, 32, 4): 1/4, whatever the
  growth method and whether hyperclone's multipliers are on (muP's already
  are hyperclone's); vectors and the unembedding 1."""
  exp = experiment(method, "mup", clone_lr_multipliers=clone)
  for stage, want in zip(exp.stages, (0.5, 0.25, 0.25)):
    m = opt_lib.multipliers(exp, stage)
    for path in (("attn", "q"), ("attn", "k"), ("attn", "v"), ("attn", "o"),
                 ("mlp", "wi"), ("mlp", "wo")):
      assert m["blocks"][path[0]][path[1]] == want, (stage.index, path)
    assert m["embed"] == m["unembed"] == m["ln_f"]["scale"] == 1.0
    assert m["blocks"]["ln1"]["bias"] == 1.0


@pytest.mark.parametrize("param", ["sp", "mup"])
def test_one_trainer_step_of_the_hypercloned_model_is_the_cloned_step(param):
  """grow(step(small)) == step(grow(small)) for the parameters, with the
  trainer's optimizer (AdamW, eps negligible, weight decay on): exact only
  with the multipliers; without them the cloned weights move n times too far.
  Under muP each step carries muP's multipliers of its own shape."""
  exp = experiment(param=param)
  small, big = exp.stages[0], exp.stages[1]
  params = jax.jit(lambda k: __import__("growjax").model.init(small.model, k))(
      jax.random.key(0))
  batch = np.random.default_rng(0).integers(0, 300, (2, 9)).astype(np.int32)
  lr = lambda count: 1e-2

  def one_step(cfg, params, opt):
    grads = jax.grad(lambda p: loss.cross_entropy(p, cfg, batch))(params)
    updates, _ = opt.update(grads, opt.init(params), params)
    return optax.apply_updates(params, updates)

  def cloned(p):
    return grow.grow(p, small.model, big.model, jax.random.key(1),
                     method="hyperclone").params

  want = cloned(one_step(small.model, params, opt_lib.make(
      exp.optimizer, lr, opt_lib.multipliers(exp, small))))
  got = one_step(big.model, cloned(params),
                 opt_lib.make(exp.optimizer, lr, opt_lib.multipliers(exp, big)))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
               want, got)
  if param == "mup":
    return
  plain = one_step(big.model, cloned(params), opt_lib.make(exp.optimizer, lr))
  q_want, q_plain = want["blocks"]["attn"]["q"], plain["blocks"]["attn"]["q"]
  q_start = cloned(params)["blocks"]["attn"]["q"]
  ratio = np.abs(q_plain - q_start).mean() / np.abs(q_want - q_start).mean()
  assert 1.9 < ratio < 2.1, ratio  # Adam's step ignores the halved weights


def test_a_stage_without_warmup_starts_at_its_peak():
  exp = experiment()
  stage = exp.stages[1]
  schedule = opt_lib.schedule(stage, 8, 4)
  assert abs(float(schedule(8)) - stage.lr.peak) < 1e-9
  assert float(schedule(9)) < stage.lr.peak
