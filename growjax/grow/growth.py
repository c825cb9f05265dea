"""grow(params, old_cfg, new_cfg, key, *, method): a grown model.

The plan's operators (one per axis that changes) become axis maps, and every
parameter and mask is grown along every axis the table gives it
(`growjax.params`, `model.MASK_AXES`). New entries are initialised like
`model.init` would initialise them for new_cfg (normal matrices with
`mup.init_std`, norm scales 1, biases 0), except the new structures' outgoing
weights under `zero`. Under muP the unembedding's copied values are also
multiplied by D1 / D0 (`mup.growth_compensation`), as the logits' multiplier
base/D falls, so the function is kept. Pure and jit-able:

    grow_fn = jax.jit(functools.partial(grow, old_cfg=a, new_cfg=b, method="msg"),
                      out_shardings=...)   # Grown(params=..., masks=..., config=b)
    grown = grow_fn(params, key=key)
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from growjax import model
from growjax import mup
from growjax import params as params_lib
from growjax.config import ModelConfig
from growjax.grow import axes as axes_lib
from growjax.grow import methods as methods_lib
from growjax.grow import operators as ops_lib
from growjax.grow.plan import plan

Params = dict[str, Any]
log = logging.getLogger("growjax")


@dataclasses.dataclass(frozen=True)
class Grown:
  """A grown model: `params`, `masks` (None unless the method masks new
  structures, or the model was already masked) and `config` (== new_cfg).
  A pytree (config is static), so a jitted growth can return it."""
  params: Params
  masks: dict[str, jax.Array] | None
  config: ModelConfig


jax.tree_util.register_dataclass(
    Grown, data_fields=["params", "masks"], meta_fields=["config"])


def grow(params: Params, old_cfg: ModelConfig, new_cfg: ModelConfig,
         key: jax.Array, *, method: str, masks: dict | None = None,
         **options) -> Grown:
  """Grows `params` (and MSG `masks`, if the model is mid-ramp) from `old_cfg`
  to `new_cfg` with `method` (see `METHODS`). A tied model grown into an
  untied one gets an output layer of its own, the embedding's transpose,
  before it grows (hyperclone needs that to grow a tied model's width).

  options (`methods.OPTIONS` documents each and holds its default):
  `new_layers` (msg, zero), `noise` (hyperclone). An option the method does
  not take is a ValueError naming it.
  """
  opts = methods_lib.check_options(method, options, for_grow=True)
  ops = plan(old_cfg, new_cfg, method=method)
  check_params(params, old_cfg)
  check_masks(masks, old_cfg)
  if axes_lib.unties(old_cfg, new_cfg):
    log.info("growth (%s): tie_embeddings True -> False: the output layer is "
             "untied, starting as the embedding's transpose (exact)", method)
    params = axes_lib.untie(params)
  maps = ops_lib.axis_maps(ops, method, opts)
  new_params = grow_params(params, maps, new_cfg, key, method=method,
                           noise=opts.get("noise", 0.0), old_cfg=old_cfg)
  new_masks = grow_masks(masks, maps, old_cfg, method=method)
  return Grown(new_params, new_masks, new_cfg)


def grow_params(params: Params, maps, new_cfg: ModelConfig, key: jax.Array, *,
                method: str, noise: float = 0.0,
                old_cfg: ModelConfig | None = None) -> Params:
  """Every parameter grown along its axes; fresh entries as `model.init` makes
  them (zero for a new structure's outgoing weights under `zero`); copied
  values times `mup.growth_compensation(p, old_cfg, new_cfg)` (1 when
  old_cfg is None).

  Randomness: arrays above `operators.CHUNK` entries draw their fresh values
  row by row inside the growth loop; smaller ones share draws of up to CHUNK
  entries (one PRNG call compiles much faster than one per array, and its
  temporaries stay bounded). The values depend only on `key`, the two configs
  and CHUNK.
  """
  leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
  paths = [params_lib.path_of(k) for k, _ in leaves]
  table = [params_lib.TABLE[p] for p in paths]
  shapes = [ops_lib.grown_shape(x.shape, model.AXES[p], maps)
            for p, (_, x) in zip(paths, leaves)]
  random = [t.init == "normal" and _has_fresh(p, maps)
            for p, t in zip(paths, table)]
  chunked = [r and ops_lib.chunks(s, model.AXES[p])
             for r, s, p in zip(random, shapes, paths)]
  keys = jax.random.split(key, len(leaves) + 2)
  normals = {}
  for g, group in enumerate(_groups(
      [(i, int(np.prod(shapes[i]))) for i in range(len(leaves))
       if random[i] and not chunked[i]], ops_lib.CHUNK)):
    normals.update(zip(group, ops_lib.draw_normals(
        jax.random.fold_in(keys[-1], g), [shapes[i] for i in group])))

  out = []
  for i, (path, (_, x)) in enumerate(zip(paths, leaves)):
    p = table[i]
    zero_axes = tuple(a for a in maps if method == "zero"
                      and ops_lib.OPERATORS[a].outgoing(path))
    fill = _init_fill(p.init, mup.init_std(p, new_cfg), zero_axes,
                      normals.get(i))
    compensation = (1.0 if old_cfg is None else
                    mup.growth_compensation(p, old_cfg, new_cfg))
    y = ops_lib.grow_array(x, p.axes, maps, fill=fill, key=keys[i],
                           scale=ops_lib.value_scale(path, maps, compensation),
                           chunk=ops_lib.CHUNK if chunked[i] else None)
    out.append(y)
  if noise:
    out = _add_noise(out, paths, maps, keys[-2],
                     [noise * mup.init_std(t, new_cfg) for t in table])
  return jax.tree_util.tree_unflatten(treedef, out)


def _groups(sized: list[tuple[int, int]], budget: int) -> list[list[int]]:
  """Consecutive indices grouped so each group's total size is at most
  `budget` (or is one item): one draw per group bounds the PRNG's temporaries."""
  groups, total = [], 0
  for i, size in sized:
    if not groups or total + size > budget:
      groups.append([])
      total = 0
    groups[-1].append(i)
    total += size
  return groups


def _has_fresh(path: str, maps) -> bool:
  return any(maps[n].fresh.any() for n in model.AXES[path] if n in maps)


def _add_noise(arrays, paths, maps, key, stds):
  """Hyperclone's symmetry breaking: normal(stds[i]) noise on every parameter
  tiled along an input axis, centred over each set of copies (the copies see
  equal inputs, so their outputs' sum, the function, is unchanged)."""
  targets = [(i, a) for i, p in enumerate(paths)
             for a, n in enumerate(model.AXES[p])
             if n in maps and maps[n].copies > 1 and n in params_lib.TABLE[p].inputs]
  if not targets:
    return arrays
  arrays = list(arrays)
  draws = ops_lib.draw_normals(key, [arrays[i].shape for i, _ in targets])
  for (i, a), z in zip(targets, draws):
    n = model.AXES[paths[i]][a]
    arrays[i] = arrays[i] + (ops_lib.zero_sum(z, a, maps[n].source) * stds[i]
                             ).astype(arrays[i].dtype)
  return arrays


def _init_fill(init: str, std: float, zero_axes, normal=None):
  """Fresh entries as model.init makes them (`normal`: pre-drawn normal(0, 1)
  values, else drawn from the key); zero where they are fresh along an axis in
  `zero_axes` (a new structure's outgoing weights, method zero)."""
  def fill(key, shape, dtype, fresh_by_axis):
    if init == "ones":
      values = jnp.ones(shape, dtype)
    elif init == "zeros":
      values = jnp.zeros(shape, dtype)
    else:
      z = normal if normal is not None else jax.random.normal(key, shape, dtype)
      values = z.astype(dtype) * jnp.asarray(std, dtype)
    zero = None
    for a in zero_axes:
      if a in fresh_by_axis:
        zero = (fresh_by_axis[a] if zero is None
                else jnp.logical_or(zero, fresh_by_axis[a]))
    return values if zero is None else jnp.where(zero, jnp.zeros((), dtype), values)
  return fill


def mask_names(old_cfg: ModelConfig, new_cfg: ModelConfig, *, method: str,
               masks=()) -> tuple[str, ...]:
  """The names of the masks `grow(..., method=method, masks=<masks>)`
  returns, without growing anything (the trainer lays out the grown state's
  shardings before it grows)."""
  ops = plan(old_cfg, new_cfg, method=method)
  return tuple(sorted(set(masks) | set(_new_masks(ops, method))))


def _new_masks(ops, method: str) -> list[str]:
  """The gating masks a method that uses masks adds: one per grown axis (msg
  places fresh entries on every axis it grows) that has its own mask (new
  key/value heads are gated by the heads mask of the query heads that read
  them). `ops`: a plan's operators or their axis maps (each names its
  `axis`)."""
  if not methods_lib.get(method).uses_masks:
    return []
  names = [ops_lib.OPERATORS[op.axis].mask for op in ops]
  return [name for name in names if name is not None]


def grow_masks(masks: dict | None, maps, old_cfg: ModelConfig, *,
               method: str) -> dict | None:
  """Masks grown along their axes. msg gates every structure it adds: the
  gating mask of each grown axis is created (ones over the old shape) if the
  model has none, and fresh entries start at 0; old values are kept. Other
  methods only carry existing masks: tiled or copied with the params, and
  fresh entries (zero's new units or layers) at 1, since those structures are
  exact without a mask."""
  masks = dict(masks or {})
  for name in _new_masks(maps.values(), method):
    if name not in masks:
      masks[name] = jnp.ones(axes_lib.mask_shape(name, old_cfg), jnp.float32)
  value = 0.0 if methods_lib.get(method).uses_masks else 1.0

  def fill(key, shape, dtype, fresh_by_axis):
    return jnp.full(shape, value, dtype)

  out = {name: ops_lib.grow_array(masks[name], names, maps, fill=fill)
         for name, names in model.MASK_AXES.items() if name in masks}
  return out or None


def check_params(params: Params, cfg: ModelConfig, what: str = "params") -> None:
  """ValueError naming the first entry of `params` whose path or shape does not
  match `cfg` (shapes are static: this runs at trace time)."""
  want = {params_lib.path_of(k): s.shape for k, s in
          jax.tree_util.tree_flatten_with_path(axes_lib.param_shapes(cfg))[0]}
  got = {params_lib.path_of(k): np.shape(x) for k, x in
         jax.tree_util.tree_flatten_with_path(params)[0]}
  if want.keys() != got.keys():
    raise ValueError(
        f"{what}: entries {sorted(set(got) ^ set(want))} do not match old_cfg "
        f"(expected {sorted(want)})")
  for path, shape in want.items():
    if tuple(got[path]) != tuple(shape):
      raise ValueError(
          f"{what}.{path}: shape {tuple(got[path])} is not {tuple(shape)}, the "
          "shape old_cfg gives it")


def check_masks(masks: dict | None, cfg: ModelConfig) -> None:
  for name, m in (masks or {}).items():
    if name not in model.MASK_AXES:
      raise ValueError(
          f"masks.{name}: not a mask (expected some of {list(model.MASK_AXES)})")
    if tuple(np.shape(m)) != axes_lib.mask_shape(name, cfg):
      raise ValueError(
          f"masks.{name}: shape {tuple(np.shape(m))} is not "
          f"{axes_lib.mask_shape(name, cfg)}, the shape old_cfg gives it")
