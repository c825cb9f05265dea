"""The parameter table: one `Param` per parameter of `growjax.model`.

Every fact about a parameter that more than one part of growjax needs is
declared here, once, in one row:

  path      its place in the params dict ("blocks/attn/q"); the only place a
            parameter path is written (`tests/test_params.py` fails if another
            module of growjax writes one);
  axes      its logical axes: sharding maps them to the mesh
            (`growjax.logical`), growth grows every array along them
            (`growjax.grow`), the memory model sizes it by them;
  inputs    the axes contracted with its incoming activation (fan-in):
            HyperCloning divides a parameter by n along a grown input axis,
            the `zero` method zeroes a new structure's outgoing weights there,
            muP scales a hidden matrix's init and rate by the fan-in;
  init      how a fresh entry starts: "normal" (a normal draw; std from
            `growjax.mup.init_std`), "ones" (a norm's scale), "zeros" (a
            bias);
  mup       its muP role (`growjax.mup`): "vector" (embedding, norm scales,
            biases: width-independent), "hidden" (a matrix between two widths),
            "output" (the unembedding);
  requires  (config field, value) for a parameter only some configs have.

Adding a parameter is adding a row here (and to `TABLE`), then creating it in
`growjax.model`; `tests/test_params.py` checks the table against `model.init`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

from growjax.config import ModelConfig

INITS = ("normal", "ones", "zeros")
MUP_ROLES = ("vector", "hidden", "output")


@dataclasses.dataclass(frozen=True)
class Param:
  path: str  # "/"-joined keys in the params dict
  axes: tuple[str, ...]  # logical axis of each dimension
  inputs: tuple[str, ...] = ()  # axes contracted with the incoming activation
  init: str = "normal"  # one of INITS: a fresh entry, as model.init makes it
  mup: str = "hidden"  # one of MUP_ROLES
  requires: tuple[str, Any] | None = None  # (config field, value), else always

  def __post_init__(self):
    assert set(self.inputs) <= set(self.axes), self
    assert self.init in INITS and self.mup in MUP_ROLES, self

  @property
  def keys(self) -> tuple[str, ...]:
    return tuple(self.path.split("/"))

  def exists(self, cfg: ModelConfig) -> bool:
    """Whether `model.init(cfg, key)` creates this parameter."""
    return (self.requires is None
            or getattr(cfg, self.requires[0]) == self.requires[1])

  def get(self, tree: dict) -> Any:
    """This parameter's entry of a params-shaped nested dict."""
    for k in self.keys:
      tree = tree[k]
    return tree

  def shape(self, cfg: ModelConfig) -> tuple[int, ...]:
    sizes = axis_sizes(cfg)
    return tuple(sizes[a] for a in self.axes)

  def fan_in(self, sizes: dict[str, int]) -> int:
    """Entries summed into each output: the product of the input axes."""
    return math.prod(sizes[a] for a in self.inputs)


def _norm(name: str, axes: tuple[str, ...]) -> tuple[Param, Param]:
  """A norm's scale and (LayerNorm only) bias."""
  return (Param(f"{name}/scale", axes, init="ones", mup="vector"),
          Param(f"{name}/bias", axes, init="zeros", mup="vector",
                requires=("norm", "layernorm")))


EMBED = Param("embed", ("vocab", "embed"), mup="vector")  # a lookup: no fan-in
LN1_SCALE, LN1_BIAS = _norm("blocks/ln1", ("layers", "embed"))
Q = Param("blocks/attn/q", ("layers", "embed", "heads", "head_dim"),
          inputs=("embed",))
K = Param("blocks/attn/k", ("layers", "embed", "kv_heads", "head_dim"),
          inputs=("embed",))
V = Param("blocks/attn/v", ("layers", "embed", "kv_heads", "head_dim"),
          inputs=("embed",))
O = Param("blocks/attn/o", ("layers", "heads", "head_dim", "embed"),
          inputs=("heads", "head_dim"))
# Added to a head's projection (Qwen2); a new head's bias starts at zero.
Q_BIAS, K_BIAS, V_BIAS = (
    Param(f"blocks/attn/{n}_bias", ("layers", heads, "head_dim"), init="zeros",
          mup="vector", requires=("qkv_bias", True))
    for n, heads in (("q", "heads"), ("k", "kv_heads"), ("v", "kv_heads")))
LN2_SCALE, LN2_BIAS = _norm("blocks/ln2", ("layers", "embed"))
WG = Param("blocks/mlp/wg", ("layers", "embed", "mlp"), inputs=("embed",),
           requires=("mlp", "swiglu"))
WI = Param("blocks/mlp/wi", ("layers", "embed", "mlp"), inputs=("embed",))
WO = Param("blocks/mlp/wo", ("layers", "mlp", "embed"), inputs=("mlp",))
LN_F_SCALE, LN_F_BIAS = _norm("ln_f", ("embed",))
UNEMBED = Param("unembed", ("embed", "vocab"), inputs=("embed",), mup="output",
                requires=("tie_embeddings", False))

# Every parameter, by path, in the order of the model.
TABLE: dict[str, Param] = {p.path: p for p in (
    EMBED, LN1_SCALE, LN1_BIAS, Q, K, V, O, Q_BIAS, K_BIAS, V_BIAS, LN2_SCALE,
    LN2_BIAS, WG, WI, WO,
    LN_F_SCALE, LN_F_BIAS, UNEMBED)}

# The config field that sets each logical axis's size.
AXIS_FIELDS: dict[str, str] = {
    "vocab": "vocab_size", "embed": "d_model", "layers": "n_layers",
    "heads": "n_heads", "kv_heads": "n_kv_heads", "head_dim": "head_dim",
    "mlp": "d_ff"}


def axis_sizes(cfg: ModelConfig) -> dict[str, int]:
  """Size of each logical axis in a config (kv_heads: `cfg.kv_heads`, which
  is n_heads when n_kv_heads is None)."""
  return {a: cfg.kv_heads if a == "kv_heads" else getattr(cfg, f)
          for a, f in AXIS_FIELDS.items()}


def of(cfg: ModelConfig) -> dict[str, Param]:
  """The rows of `TABLE` whose parameters `model.init(cfg, key)` creates."""
  return {path: p for path, p in TABLE.items() if p.exists(cfg)}


def path_of(keys) -> str:
  """The table path of a pytree key path (DictKey, GetAttrKey or str keys)."""
  return "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in keys)


def tree(cfg: ModelConfig, value: Callable[[Param], Any]) -> dict:
  """A params-shaped nested dict of `value(param)` for every parameter of
  `cfg`."""
  out: dict = {}
  for p in of(cfg).values():
    node = out
    for k in p.keys[:-1]:
      node = node.setdefault(k, {})
    node[p.keys[-1]] = value(p)
  return out
