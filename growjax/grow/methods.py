"""The growth methods: what each grows, whether it keeps the function, and the
options it takes, each with its one default and its one check.

  msg         masked structural growth (Yao et al., 2024): any axis, any size.
              New structures are gated by masks that start at 0 and ramp to 1
              over `ramp_steps` (`growjax.grow.Ramp`); at 0 the model computes
              the old function whatever the new weights are. New weights are
              drawn like `model.init` draws them. Exact with either norm (the
              masked LayerNorm's mean and variance, or RMSNorm's mean square,
              are taken over the live channels only), either MLP (SwiGLU's
              new units are masked after the gate product), either residual
              kind, and q/k/v biases (a new head's start at zero and are
              masked with it). Rotary options (rotary_fraction,
              rope_scaling) and norm_eps act within a head or a channel's
              statistics, which growth keeps: every method is as exact with
              them as without.
  zero        new structures whose outgoing weights are zero (new MLP units:
              their `wo` rows; new heads: their `o` slices; new layers: the
              attention-out and MLP-out matrices), incoming weights drawn like
              `model.init`. Exact for mlp, heads, kv_heads, layers, with no
              masks. Hidden width is refused: LayerNorm takes its mean and
              variance, RMSNorm its mean square, over all channels, so zero
              (or any input-independent) new channels change every old
              channel's normalised value.
  hyperclone  HyperCloning (Samragh et al., 2024): a width grows by an integer
              factor n by tiling every array along it; parameters are divided
              by n along grown input (fan-in) axes; norms are repeated. Exact
              with LayerNorm and RMSNorm, plain or masked (n copies of every
              channel keep the mean, variance and mean square), with GeLU and
              SwiGLU (a unit's copies gate equal inputs), q/k/v biases
              (tiled with their heads), either residual kind. A tied table
              cannot be both repeated (input) and divided by n (output), so
              a tied model's width grows into an untied one
              (new_cfg.tie_embeddings=False): the output layer starts as the
              embedding's transpose, then grows (`axes.untie`).
              Option `noise` adds a perturbation that sums to zero over the
              copies of each weight (still exact), so copies stop receiving
              equal gradients.
  stack       G_stack (Du et al., 2024): depth grows by stacking cyclic copies
              of the layer stack (layer j copies old layer j % L). Not
              function-preserving.

An experiment's `grow=dict(method=..., **options)` is checked here
(`check_options`), so an option's default and its check exist once.

Grouped-query attention (n_kv_heads = G < n_heads = H): query heads grow
within their key/value groups. Each old group keeps its key/value head and
its query heads (in the first slots of the group), new query heads fill the
group's further slots and the new groups, and new key/value heads (groups)
come after the old ones; so H and G may grow by the same factor (groups of the
same size), H alone (larger groups), or both, as long as a group does not
shrink (H'/G' >= H/G). msg and zero are exact for any such growth (a new
key/value head is read only by new query heads); hyperclone needs integer
factors of G and of H/G, and copies whole groups and heads within groups. Every
method that uses masks takes `ramp_steps`, which the trainer reads; `grow()`
takes the others (`Method.grow_options`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

from growjax import checks


@dataclasses.dataclass(frozen=True)
class Method:
  name: str
  axes: tuple[str, ...]  # logical axes it can grow
  exact: bool  # keeps the function on every axis it grows
  uses_masks: bool  # returns MSG masks that the trainer must ramp
  grow_options: tuple[str, ...]  # keyword options `grow` accepts
  description: str

  @property
  def options(self) -> tuple[str, ...]:
    """Every option an experiment may set: grow()'s, and for a method that
    uses masks, the length of their ramp."""
    return self.grow_options + (("ramp_steps",) if self.uses_masks else ())


METHODS: dict[str, Method] = {
    "msg": Method(
        "msg", ("embed", "heads", "kv_heads", "mlp", "layers"), exact=True,
        uses_masks=True,
        grow_options=("new_layers",),
        description="masked structural growth: any axis; new structures are "
                    "masked (0 -> 1 ramp), exact for any new weights"),
    "zero": Method(
        "zero", ("heads", "kv_heads", "mlp", "layers"), exact=True,
        uses_masks=False, grow_options=("new_layers",),
        description="new structures with zero outgoing weights; exact for "
                    "mlp, heads, kv_heads, layers (hidden width refused)"),
    "hyperclone": Method(
        "hyperclone", ("embed", "heads", "kv_heads", "mlp"), exact=True,
        uses_masks=False, grow_options=("noise",),
        description="integer-multiple width by tiling, divided by n along "
                    "input axes; exact with LayerNorm or RMSNorm, GeLU or "
                    "SwiGLU"),
    "stack": Method(
        "stack", ("layers",), exact=False, uses_masks=False, grow_options=(),
        description="depth by cyclic copies of the layer stack (G_stack); "
                    "not function-preserving"),
}

LAYER_PLACES = ("interleave", "top", "bottom")


def _new_layers(name: str, value: Any) -> Any:
  if isinstance(value, str):
    checks.one_of(name, value, LAYER_PLACES)
    return value
  if not isinstance(value, Sequence) or not all(
      checks.is_int(i) and i >= 0 for i in value):
    raise ValueError(
        f"{name}: {value!r} is not 'interleave', 'top', 'bottom' or a list of "
        "layer indices")
  return tuple(int(i) for i in value)


def _ramp_steps(name: str, value: Any) -> int:
  if checks.is_int(value) and value == 0:
    raise ValueError(
        f"{name}: 0 leaves the masks no steps to rise from 0 to 1: the new "
        "structures would appear at full strength and the growth would not "
        "keep the function; give it >= 1 steps")
  return checks.positive_int(name, value)


@dataclasses.dataclass(frozen=True)
class Option:
  default: Any
  check: Callable[[str, Any], Any]  # (name, value) -> value, ValueError naming it
  doc: str


OPTIONS: dict[str, Option] = {
    "new_layers": Option(
        "interleave", _new_layers,
        'where new layers go: "interleave" (spread evenly among the old '
        'ones), "top", "bottom", or a list of their indices in the grown '
        "stack"),
    "noise": Option(
        0.0, lambda name, v: checks.number(name, v, low=0.0),
        "std, in units of new_cfg.init_std, of a zero-sum perturbation of "
        "hypercloned weights across their copies"),
    "ramp_steps": Option(
        100, _ramp_steps,
        "optimizer steps over which the masks rise from their growth values "
        "to 1, after which they fold away (read by the trainer, not grow())"),
}


def get(method: str) -> Method:
  if method not in METHODS:
    raise ValueError(
        f"method: {method!r} is not a growth method; expected one of "
        f"{sorted(METHODS)}")
  return METHODS[method]


def check_options(method: str, options: dict[str, Any], *,
                  for_grow: bool = False) -> dict[str, Any]:
  """Every option of `method` (only grow()'s with `for_grow`), checked, with
  its default where not given; a ValueError naming an option the method does
  not take or a malformed value."""
  m = get(method)
  known = m.grow_options if for_grow else m.options
  for name in options:
    if name in known:
      continue
    if name in m.options:
      raise ValueError(
          f"{name}: an option of the trainer, not of grow() ({OPTIONS[name].doc})")
    takes = f"it takes {', '.join(known)}" if known else "it takes no options"
    what = OPTIONS[name].doc if name in OPTIONS else "an unknown option"
    raise ValueError(
        f"{name}: not an option of method {method!r} ({what}); {takes}")
  return {name: OPTIONS[name].check(name, options.get(name, OPTIONS[name].default))
          for name in known}
