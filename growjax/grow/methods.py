"""The growth methods: what each grows, whether it keeps the function, and the
options it takes.

  msg         masked structural growth (Yao et al., 2024): any axis, any size.
              New structures are gated by masks that start at 0 and ramp to 1
              (`growjax.grow.ramp`); at 0 the model computes the old function
              whatever the new weights are. New weights are drawn like
              `model.init` draws them. Exact.
  zero        new structures whose outgoing weights are zero (new MLP units:
              their `wo` rows; new heads: their `o` slices; new layers: the
              attention-out and MLP-out matrices), incoming weights drawn like
              `model.init`. Exact for mlp, heads, layers, with no masks. Hidden
              width is refused: plain LayerNorm takes its mean and variance
              over all channels, so zero (or any input-independent) new
              channels change every old channel's normalised value.
  hyperclone  HyperCloning (Samragh et al., 2024): a width grows by an integer
              factor n by tiling every array along it; parameters are divided
              by n along grown input (fan-in) axes; norms are repeated. Exact
              with plain or masked LayerNorm (untied embeddings). Option
              `noise` adds a perturbation that sums to zero over the copies of
              each weight (still exact), so copies stop receiving equal
              gradients.
  stack       G_stack (Du et al., 2024): depth grows by stacking cyclic copies
              of the layer stack (layer j copies old layer j % L). Not
              function-preserving.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence


@dataclasses.dataclass(frozen=True)
class Method:
  name: str
  axes: tuple[str, ...]  # logical axes it can grow
  exact: bool  # keeps the function on every axis it grows
  uses_masks: bool  # returns MSG masks that the trainer must ramp
  options: tuple[str, ...]  # keyword options `grow` accepts
  description: str


METHODS: dict[str, Method] = {
    "msg": Method(
        "msg", ("embed", "heads", "mlp", "layers"), exact=True, uses_masks=True,
        options=("new_layers", "ramp_steps"),
        description="masked structural growth: any axis; new structures are "
                    "masked (0 -> 1 ramp), exact for any new weights"),
    "zero": Method(
        "zero", ("heads", "mlp", "layers"), exact=True, uses_masks=False,
        options=("new_layers",),
        description="new structures with zero outgoing weights; exact for "
                    "mlp, heads, layers (hidden width refused)"),
    "hyperclone": Method(
        "hyperclone", ("embed", "heads", "mlp"), exact=True, uses_masks=False,
        options=("noise",),
        description="integer-multiple width by tiling, divided by n along "
                    "input axes; exact with plain LayerNorm"),
    "stack": Method(
        "stack", ("layers",), exact=False, uses_masks=False, options=(),
        description="depth by cyclic copies of the layer stack (G_stack); "
                    "not function-preserving"),
}

# Documentation of each option (also used in error messages).
OPTIONS: dict[str, str] = {
    "new_layers": 'where new layers go: "top" (default), "bottom", '
                  '"interleave", or a list of their indices in the grown stack',
    "ramp_steps": "steps of the mask ramp (read by the trainer's `ramp`; "
                  "`grow` only checks it is a positive int)",
    "noise": "std, in units of new_cfg.init_std, of a zero-sum perturbation "
             "of hypercloned weights across their copies (default 0)",
}

DEFAULTS: dict[str, Any] = {"new_layers": "top", "ramp_steps": None, "noise": 0.0}


def get(method: str) -> Method:
  if method not in METHODS:
    raise ValueError(
        f"method: {method!r} is not a growth method; expected one of "
        f"{sorted(METHODS)}")
  return METHODS[method]


def check_options(method: str, options: dict[str, Any]) -> dict[str, Any]:
  """The method's options with defaults filled in; a ValueError naming any
  option the method does not take, or a malformed value."""
  m = get(method)
  for name in options:
    if name not in m.options:
      known = (f"it takes {', '.join(m.options)}" if m.options
               else "it takes no options")
      what = OPTIONS.get(name, "an unknown option")
      raise ValueError(
          f"{name}: not an option of method {method!r} ({what}); {known}")
  out = {name: options.get(name, DEFAULTS[name]) for name in m.options}
  if "new_layers" in out:
    _check_new_layers(out["new_layers"])
  if "ramp_steps" in out and out["ramp_steps"] is not None:
    r = out["ramp_steps"]
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
      raise ValueError(f"ramp_steps: {r!r} is not a positive int")
  if "noise" in out:
    n = out["noise"]
    if isinstance(n, bool) or not isinstance(n, (int, float)) or not n >= 0:
      raise ValueError(f"noise: {n!r} is not a number >= 0")
  return out


def _check_new_layers(value: Any) -> None:
  if isinstance(value, str):
    if value not in ("top", "bottom", "interleave"):
      raise ValueError(
          f"new_layers: {value!r} is not 'top', 'bottom', 'interleave' or a "
          "list of layer indices")
    return
  if not isinstance(value, Sequence) or not all(
      isinstance(i, int) and not isinstance(i, bool) for i in value):
    raise ValueError(
        f"new_layers: {value!r} is not 'top', 'bottom', 'interleave' or a "
        "list of layer indices")
