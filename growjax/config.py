"""Typed model configuration.

`ModelConfig` is the one description of a model's shape: the model, growth,
sharding and cost accounting all read it. It is frozen (hashable, so it can be
a static argument of `jax.jit`) and checks itself on construction: an invalid
value raises one `ValueError` that names the field and the value.

Experiment files (ml_collections ConfigDicts) are validated separately, in
`growjax.experiment`.
"""

from __future__ import annotations

import dataclasses

from growjax import checks

POSITIONS = ("xpos", "rope")
DTYPES = ("float32", "bfloat16")
NORMS = ("layernorm", "rmsnorm")
MLPS = ("gelu", "swiglu")
PARAMETRIZATIONS = ("sp", "mup")


@dataclasses.dataclass(frozen=True)
class MupBase:
  """The base shape of a muP model (`ModelConfig.mup_base`): the widths at
  which muP equals the standard parametrization (its init and rates are the
  ones tuned there). Frozen, so a ModelConfig holding one stays hashable."""
  d_model: int  # base D
  n_heads: int  # base H
  d_ff: int  # base F
  head_dim: int | None = None  # base K; None: the model's head_dim

  @classmethod
  def of(cls, value, head_dim: int) -> "MupBase":
    """A MupBase from a MupBase, a dict (experiment files) or a tuple
    (d_model, n_heads, d_ff[, head_dim]), head_dim filled in; a ValueError
    naming ModelConfig.mup_base for anything else."""
    where = "ModelConfig.mup_base"
    if hasattr(value, "items"):
      names = [f.name for f in dataclasses.fields(cls)]
      unknown = sorted(set(dict(value.items())) - set(names))
      if unknown:
        raise ValueError(f"{where}: unknown keys {unknown} (expected {names})")
      value = cls(**dict(value.items()))
    elif isinstance(value, (tuple, list)) and 3 <= len(value) <= 4:
      value = cls(*value)
    elif not isinstance(value, cls):
      raise ValueError(
          f"{where}: {value!r} is not a dict(d_model=, n_heads=, d_ff=[, "
          "head_dim=]) or a tuple of them")
    if value.head_dim is None:
      value = dataclasses.replace(value, head_dim=head_dim)
    for f in dataclasses.fields(cls):
      checks.positive_int(f"{where}", getattr(value, f.name))
    return value

MLPS = ("gelu", "gelu_erf", "swiglu")
ROPE_SCALINGS = ("linear", "llama3")


@dataclasses.dataclass(frozen=True)
class RopeScaling:
  """Rotary frequencies rescaled for a longer context (positions only: the
  parameters, hence growth, are unaffected), as transformers computes them:

    linear  every frequency divided by `factor` (position interpolation);
    llama3  Llama 3.1's: wavelengths above original_max_len / low_freq_factor
            divided by `factor`, below original_max_len / high_freq_factor
            kept, and a smooth interpolation between.
  """
  kind: str  # "linear" or "llama3"
  factor: float  # > 0, how much longer the context gets
  low_freq_factor: float = 1.0  # llama3 only (> 0)
  high_freq_factor: float = 4.0  # llama3 only (> low_freq_factor)
  original_max_len: int = 8192  # llama3 only: the pretraining context

  def __post_init__(self):
    checks.one_of("ModelConfig.rope_scaling.kind", self.kind, ROPE_SCALINGS)
    for field in ("factor", "low_freq_factor", "high_freq_factor"):
      checks.positive_number(f"ModelConfig.rope_scaling.{field}",
                             getattr(self, field))
    checks.positive_int("ModelConfig.rope_scaling.original_max_len",
                        self.original_max_len)
    if self.high_freq_factor <= self.low_freq_factor:
      raise ValueError(
          f"ModelConfig.rope_scaling.high_freq_factor: {self.high_freq_factor}"
          f" <= low_freq_factor {self.low_freq_factor}; llama3 scaling "
          "interpolates between them")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Shape and numerics of a decoder-only transformer.

  Shape letters used across growjax: B batch, T time, D d_model, F d_ff,
  H n_heads, G key/value heads (`kv_heads`), K head_dim, L n_layers,
  V vocab_size.

  The defaults are growjax's GPT (LayerNorm, GeLU, one key/value head per
  query head); norm="rmsnorm", mlp="swiglu", pos="rope" and n_kv_heads < H
  make a Llama-family model.
  """

  vocab_size: int  # V, tokens in the vocabulary (> 1)
  d_model: int  # D, width of the residual stream
  n_layers: int  # L, transformer blocks
  n_heads: int  # H, attention heads
  head_dim: int  # K, width of one head (even: rotary positions pair channels)
  d_ff: int  # F, hidden units of the MLP
  max_len: int  # training context length in tokens
  pos: str = "xpos"  # "xpos" or "rope"
  xpos_scale_base: float = 512.0  # positions per factor zeta of xPos decay
  xpos_gamma: float = 0.4  # xPos zeta_i = (2i/K + gamma) / (1 + gamma)
  tie_embeddings: bool = False  # unembed with the embedding's transpose
  dtype: str = "float32"  # compute dtype; parameters always stay float32
  init_std: float = 0.02  # std of the normal init of every matrix
  norm: str = "layernorm"  # "layernorm" (scale, bias) or "rmsnorm" (scale)
  # "gelu" (tanh GeLU), "gelu_erf" (the exact, erf GeLU) or "swiglu"
  # (silu(x wg) * x wi)
  mlp: str = "gelu"
  # G, key/value heads (grouped-query attention): query head h reads key/value
  # head h // (H / G); None: n_heads (and grows with it); must divide n_heads
  n_kv_heads: int | None = None
  rope_theta: float = 10000.0  # rotary base: pair i turns by theta^(-2i/K)
  norm_eps: float = 1e-5  # epsilon of every norm (> 0): added to the variance or mean square
  # attention and MLP both read the block's input, each through its own norm:
  # h + attn(ln1(h)) + mlp(ln2(h)) (GPT-NeoX, Pythia); False: sequential
  parallel_residual: bool = False
  # rotary on the first fraction of each head's channels, the rest unrotated
  # (Pythia 0.25); in (0, 1], fraction * head_dim an even integer; rope only
  rotary_fraction: float = 1.0
  qkv_bias: bool = False  # q, k and v projections have biases (Qwen2)
  # rotary frequencies rescaled (a RopeScaling, or its dict); rope only
  rope_scaling: RopeScaling | None = None
  # "sp" (standard: every matrix normal(init_std), one learning rate) or "mup"
  # (maximal update, relative to `mup_base`: growjax.mup)
  param: str = "sp"
  # muP's base shape (a MupBase, or a dict / tuple of d_model, n_heads, d_ff
  # and optionally head_dim); required by param="mup", ignored by "sp"
  mup_base: MupBase | None = None

  def __post_init__(self):
    for field in ("vocab_size", "d_model", "n_layers", "n_heads", "head_dim",
                  "d_ff", "max_len"):
      checks.positive_int(f"ModelConfig.{field}", getattr(self, field))
    if self.vocab_size < 2:
      raise ValueError(
          f"ModelConfig.vocab_size: {self.vocab_size} < 2, a vocabulary "
          "needs at least two tokens")
    if self.head_dim % 2:
      raise ValueError(
          f"ModelConfig.head_dim: {self.head_dim} is odd; rotary positions "
          "rotate channel pairs, so head_dim must be even")
    checks.one_of("ModelConfig.pos", self.pos, POSITIONS)
    checks.one_of("ModelConfig.dtype", self.dtype, DTYPES)
    checks.one_of("ModelConfig.norm", self.norm, NORMS)
    checks.one_of("ModelConfig.mlp", self.mlp, MLPS)
    checks.boolean("ModelConfig.tie_embeddings", self.tie_embeddings)
    for field in ("xpos_scale_base", "xpos_gamma", "init_std", "rope_theta",
                  "norm_eps"):
      checks.positive_number(f"ModelConfig.{field}", getattr(self, field))
    checks.boolean("ModelConfig.parallel_residual", self.parallel_residual)
    checks.boolean("ModelConfig.qkv_bias", self.qkv_bias)
    fraction = checks.number("ModelConfig.rotary_fraction",
                             self.rotary_fraction, low=0.0, high=1.0)
    dims = fraction * self.head_dim
    if fraction == 0 or dims != int(dims) or int(dims) % 2:
      raise ValueError(
          f"ModelConfig.rotary_fraction: {self.rotary_fraction} of head_dim "
          f"{self.head_dim} is {dims:g} channels, not a positive even number "
          "(rotary positions rotate channel pairs)")
    if isinstance(self.rope_scaling, dict):  # from an experiment file or JSON
      try:
        object.__setattr__(self, "rope_scaling",
                           RopeScaling(**self.rope_scaling))
      except TypeError as e:
        raise ValueError(f"ModelConfig.rope_scaling: {self.rope_scaling!r}: "
                         f"{str(e).split('__init__() ')[-1]}") from None
    elif not isinstance(self.rope_scaling, (RopeScaling, type(None))):
      raise ValueError(f"ModelConfig.rope_scaling: {self.rope_scaling!r} is "
                       "not None or a dict of RopeScaling's fields")
    for field, off in (("rotary_fraction", self.rotary_fraction == 1.0),
                       ("rope_scaling", self.rope_scaling is None)):
      if self.pos != "rope" and not off:
        raise ValueError(f"ModelConfig.{field}: {getattr(self, field)!r} "
                         f"needs pos='rope' (pos is {self.pos!r})")
    if self.n_kv_heads is not None:
      checks.positive_int("ModelConfig.n_kv_heads", self.n_kv_heads)
      if self.n_heads % self.n_kv_heads:
        raise ValueError(
            f"ModelConfig.n_kv_heads: {self.n_kv_heads} does not divide "
            f"n_heads {self.n_heads}; each key/value head serves n_heads / "
            "n_kv_heads query heads")
    checks.one_of("ModelConfig.param", self.param, PARAMETRIZATIONS)
    if self.mup_base is not None:
      object.__setattr__(self, "mup_base",
                         MupBase.of(self.mup_base, self.head_dim))
    if self.param == "mup":
      self._check_mup()

  def _check_mup(self):
    if self.mup_base is None:
      raise ValueError(
          "ModelConfig.mup_base: required by param='mup' (the base shape "
          "dict(d_model=, n_heads=, d_ff=) at which muP equals 'sp')")
    for field in ("d_model", "n_heads", "d_ff", "head_dim"):
      base, own = getattr(self.mup_base, field), getattr(self, field)
      if base > own:
        raise ValueError(
            f"ModelConfig.mup_base: {field} {base} is larger than the model's "
            f"{field} {own}; the base is the small shape the rates were "
            "tuned at")
    if self.tie_embeddings:
      raise ValueError(
          "ModelConfig.tie_embeddings: True is not supported with param='mup' "
          "(muP gives the embedding and the unembedding different multipliers)")

  @property
  def rotary_dims(self) -> int:
    """Channels of each head that rotary positions rotate (the first ones)."""
    return int(self.rotary_fraction * self.head_dim)

  @property
  def kv_heads(self) -> int:
    """G, the number of key/value heads (n_heads unless n_kv_heads is set)."""
    return self.n_heads if self.n_kv_heads is None else self.n_kv_heads

  def replace(self, **changes) -> "ModelConfig":
    """A copy with `changes` applied (and validated)."""
    return dataclasses.replace(self, **changes)

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def fields(cls) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))
