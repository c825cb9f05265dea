"""Growing a model: function-preserving transforms between two configs.

    import growjax
    from growjax import grow

    grown = grow.grow(params, small_cfg, big_cfg, key, method="msg")
    opt_state = grow.grow_opt_state(opt_state, small_cfg, big_cfg, method="msg")
    logits = growjax.model.apply(grown.params, big_cfg, tokens, masks=grown.masks)
    # then, each step: masks = grow.Ramp(start, ramp_steps).masks(grown.masks, step)
    # (= grow.ramp(grown.masks, (step - start) / ramp_steps));
    # once the ramp is done: masks = grow.fold(masks)  (None)

Growth speaks the model's axis names (`growjax.params`, `model.MASK_AXES`): an
operator grows one logical axis (`embed`, `heads`, `kv_heads`, `mlp`,
`layers`) in every array that has it; with grouped-query attention, query
heads grow within their key/value groups (`methods` says how). Modules, one
idea each:

  axes.py       the growable axes, the frozen config fields, shapes
  operators.py  the operators (one per axis kind) and the array engine
  methods.py    METHODS: msg, zero, hyperclone, stack; OPTIONS with their defaults
  plan.py       plan(old_cfg, new_cfg, method): ordered operators, every error
  growth.py     grow(...) -> Grown(params, masks, config); mask_names(...)
  masks.py      Ramp, ramp and fold of MSG masks
  opt_state.py  grow_opt_state(...), lr_multipliers(...)
"""

from growjax.grow.growth import Grown, grow, mask_names
from growjax.grow.masks import Ramp, fold, foldable, ramp
from growjax.grow.methods import METHODS, OPTIONS, Method
from growjax.grow.operators import OPERATORS, AxisMap, GrowthOp, axis_maps
from growjax.grow.opt_state import grow_opt_state, lr_multipliers
from growjax.grow.plan import PlanError, plan

__all__ = [
    "METHODS", "Method", "OPERATORS", "OPTIONS", "AxisMap",
    "GrowthOp", "Grown", "PlanError", "Ramp", "axis_maps", "fold", "foldable",
    "grow", "grow_opt_state", "lr_multipliers", "mask_names", "plan", "ramp",
]
