"""What growjax's train step communicates on an fsdp=2 mesh
(growjax.collectives; the 1.3B count: benchmarks/fsdp_collectives.py).

One compile of the real step (AdamW, remat "dots"), jitted as the loop jits
it, on 2 of the 8 simulated CPU devices; the parser itself is checked on a
hand-written module.
"""

import math

import jax
import jax.numpy as jnp
import optax
import pytest

from growjax import collectives, model, parallel
from growjax.config import ModelConfig
from growjax.train import optimizer as opt_lib
from growjax.train import state as state_lib
from growjax.train import step as step_lib

# Widths that no activation of this batch shares with a weight.
CFG = ModelConfig(vocab_size=384, d_model=48, n_layers=2, n_heads=4,
                  head_dim=16, d_ff=160, max_len=16, pos="xpos",
                  dtype="bfloat16")
BATCH = 4


def _layer_shape(path):
  sizes = model.axis_sizes(CFG)
  return tuple(sorted(sizes[a] for a in model.AXES[path] if a != "layers"))


@pytest.fixture(scope="module")
def fsdp_step_collectives():
  mesh = parallel.make_mesh(data=1, fsdp=2, tensor=1,
                            devices=jax.devices()[:2])
  lr = optax.constant_schedule(1e-4)
  optimizer = opt_lib.make(opt_lib.Optimizer(), lr)
  abstract, shardings = state_lib.abstract_state(CFG, optimizer, (), mesh,
                                                 parallel.RULES)
  batch_sh = parallel.batch_sharding(mesh)
  step = jax.jit(step_lib.make_train_step(CFG, optimizer, lr, remat="dots",
                                          mesh=mesh),
                 in_shardings=(shardings, batch_sh),
                 out_shardings=(shardings, None), donate_argnames=("state",))
  tokens = jax.ShapeDtypeStruct((BATCH, CFG.max_len + 1), jnp.int32,
                                sharding=batch_sh)
  return collectives.collectives(
      collectives.partitioned_hlo(step.lower(abstract, tokens)))


def test_fsdp_step_gathers_weights_in_bf16_and_reshards_no_activation(
    fsdp_step_collectives):
  """Every matmul weight is all-gathered in bfloat16, at most twice a layer
  per step (forward, and backward under remat), its gradient reduce-scattered
  once a layer; the only all-to-alls are the embedding lookup's; nothing
  else but scalar sums moves."""
  found = fsdp_step_collectives
  matmul = {p: _layer_shape(p) for p in model.param_axes(CFG)
            if len(_layer_shape(p)) > 1 and p != "embed"}
  norms = {_layer_shape(p) for p in model.param_axes(CFG)
           if len(_layer_shape(p)) == 1}
  shapes = {s: [p for p in matmul if matmul[p] == s]
            for s in set(matmul.values())}
  gathers, reductions = {}, {}
  for c in found:
    shape = tuple(sorted(c.shapes[0])) if len(c.shapes) == 1 else None
    if c.kind == "all-to-all":
      assert "_take" in c.op, f"an all-to-all outside the lookup: {c}"
    elif "_take" in c.op or all(s == () for s in c.shapes):
      continue  # the lookup's token gather; loss and norm sums
    elif c.kind == "all-gather" and shape in shapes:
      assert c.dtype == "bf16", f"a {c.dtype} weight all-gather: {c}"
      gathers[shape] = gathers.get(shape, 0) + c.per_call
    elif c.kind == "reduce-scatter" and shape in shapes:
      reductions[shape] = reductions.get(shape, 0) + c.per_call
    else:
      assert shape in norms and c.dtype == "f32", f"unexpected: {c}"
  for shape, paths in shapes.items():
    layers = sum(CFG.n_layers if model.AXES[p][0] == "layers" else 1
                 for p in paths)
    assert layers <= gathers.get(shape, 0) <= 2 * layers, (paths, gathers)
    assert reductions.get(shape, 0) == layers, (paths, reductions)


HLO = """HloModule m, entry_computation_layout={()->f32[8]{0}}

%add (a: bf16[], b: bf16[]) -> bf16[] {
  %a = bf16[] parameter(0)
  %b = bf16[] parameter(1)
  ROOT %s = bf16[] add(%a, %b)
}

%cond (p: (s32[], f32[8])) -> pred[] {
  %p = (s32[], f32[8]{0}) parameter(0)
  %i = s32[] get-tuple-element(%p), index=0
  %n = s32[] constant(24)
  ROOT %lt = pred[] compare(%i, %n), direction=LT
}

%body (p.1: (s32[], f32[8])) -> (s32[], f32[8]) {
  %p.1 = (s32[], f32[8]{0}) parameter(0)
  %w = bf16[4,6]{1,0} constant({...})
  %all-gather.1 = bf16[8,6]{1,0} all-gather(%w), channel_id=1, replica_groups=[1,2]<=[2], dimensions={0}, metadata={op_name="jit(f)/while/body/dot_general"}
  %all-reduce.2 = bf16[8,6]{1,0} all-reduce(%all-gather.1), channel_id=2, replica_groups={{0,1}}, to_apply=%add
  %ds = bf16[4,6]{1,0} dynamic-slice(%all-reduce.2, %i.1, %i.1), dynamic_slice_sizes={4,6}
  ROOT %t = (s32[], f32[8]{0}) tuple(%i.1, %x)
}

ENTRY %main () -> f32[8] {
  %x = f32[8]{0} constant({...})
  %all-reduce.3 = (f32[], f32[8]{0}) all-reduce(%y, %x), channel_id=3, replica_groups=mesh['axis_0'=2,'axis_1'=1] {'axis_0'}, to_apply=%add
  %while.4 = (s32[], f32[8]{0}) while(%t0), condition=%cond, body=%body
  ROOT %r = f32[8]{0} get-tuple-element(%while.4), index=1
}
"""


def test_collectives_count_loop_trips_and_find_reduce_scatters():
  found = {c.kind: c for c in collectives.collectives(HLO)}
  assert set(found) == {"all-gather", "reduce-scatter", "all-reduce"}
  gather, scatter, reduce = (found[k] for k in ("all-gather", "reduce-scatter",
                                                "all-reduce"))
  assert (gather.dtype, gather.shapes, gather.group, gather.per_call) == (
      "bf16", ((8, 6),), 2, 24)
  assert gather.op == "jit(f)/while/body/dot_general"
  assert gather.bytes == 96 and gather.traffic == 48
  # an all-reduce only sliced is a reduce-scatter (GPU XLA makes it one)
  assert (scatter.per_call, scatter.group) == (24, 2)
  assert (reduce.dtype, reduce.shapes, reduce.per_call) == (
      "f32", ((), (8,)), 1)
  assert reduce.bytes == 36 and math.isclose(reduce.traffic, 36)
