"""The collectives of a jitted program: kind, dtype, bytes, times per call.

Read from the HLO right after SPMD partitioning, which is what the
partitioner decided and the same on every backend. The final compiled text
(`lowered.compile().as_text()`) is the backend's: the CPU backend there turns
every bfloat16 collective into a float32 one (its float normalization) and
keeps an all-reduce whose result is only sliced as an all-reduce, where GPU
XLA makes it a reduce-scatter (ReduceScatterCreator) and combines small
collectives. So `partitioned_hlo` compiles once with that pass dumped, and
`collectives` counts there, calling an all-reduce whose every user is a
dynamic-slice a reduce-scatter. A collective inside a loop (the scan over
layers) counts once per trip: the loop's trip count is read from its
condition (`i < N`, as `lax.scan` lowers).

    lowered = jax.jit(step, in_shardings=..., out_shardings=...).lower(*args)
    for c in collectives.collectives(collectives.partitioned_hlo(lowered)):
      print(c.kind, c.dtype, c.shapes, c.per_call, c.op)
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import re
import tempfile

import jax

KINDS = ("all-gather", "reduce-scatter", "all-reduce", "all-to-all",
         "collective-permute")

_HEADER = re.compile(r"^(?:ENTRY )?%([\w.\-]+) \(.*\{$")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%([\w.\-]+) = (.*)$")
_COLLECTIVE = re.compile(
    r"^(.*?) (" + "|".join(KINDS) + r")(?:-start)?\((.*)$")
_ARRAY = re.compile(r"\b([a-z]+\d*)\[([\d,]*)\]")
_CALLS = re.compile(r"\b(condition|body|to_apply|calls)=%([\w.\-]+)")
_BRANCHES = re.compile(r"\bbranch_computations=\{([^}]*)\}")
_OP_NAME = re.compile(r'op_name="([^"]*)"')
_USE = re.compile(r"%([\w.\-]+)")


@dataclasses.dataclass(frozen=True)
class Collective:
  """One collective instruction of the partitioned program."""
  kind: str  # one of KINDS
  dtype: str  # HLO element type of its (first) array: bf16, f32, s32, ...
  shapes: tuple[tuple[int, ...], ...]  # its whole buffers (before a scatter, after a gather)
  group: int  # devices in each replica group
  op: str  # the JAX op it partitions (op_name metadata)
  per_call: int  # times it runs per call of the program (loop trips)

  @property
  def bytes(self) -> int:
    """Bytes of its whole buffers, once."""
    return sum(math.prod(s) for s in self.shapes) * _itemsize(self.dtype)

  @property
  def traffic(self) -> float:
    """Bytes each device sends, once, by the ring algorithm: (g-1)/g of the
    buffer for a gather, scatter or all-to-all, twice that for an
    all-reduce, the whole buffer for a permute."""
    share = (self.group - 1) / self.group if self.group else 0.0
    factor = {"all-reduce": 2 * share, "collective-permute": 1.0}.get(
        self.kind, share)
    return self.bytes * factor


_ITEMSIZE = {"pred": 1, "s8": 1, "u8": 1, "bf16": 2, "f16": 2, "s16": 2,
             "u16": 2, "f32": 4, "s32": 4, "u32": 4, "f64": 8, "s64": 8,
             "u64": 8}


def _itemsize(dtype: str) -> int:
  if dtype not in _ITEMSIZE:
    raise ValueError(f"hlo: element type {dtype!r} has no size here")
  return _ITEMSIZE[dtype]


def partitioned_hlo(lowered) -> str:
  """The HLO text of `lowered` (a `jax.jit(...).lower(...)`) right after
  SPMD partitioning. Compiles it once more, with the persistent compilation
  cache off (a cache hit would dump nothing)."""
  enabled = jax.config.jax_enable_compilation_cache
  with tempfile.TemporaryDirectory(prefix="growjax_hlo_") as tmp:
    jax.config.update("jax_enable_compilation_cache", False)
    try:
      lowered.compile(compiler_options={
          "xla_dump_to": tmp, "xla_dump_hlo_as_text": True,
          "xla_dump_hlo_pass_re": "spmd-partitioning"})
    finally:
      jax.config.update("jax_enable_compilation_cache", enabled)
    dumps = sorted(pathlib.Path(tmp).glob("*after_spmd-partitioning*.txt"))
    if not dumps:
      raise RuntimeError(
          f"partitioned_hlo: XLA dumped no HLO after spmd-partitioning (files: "
          f"{sorted(p.name for p in pathlib.Path(tmp).iterdir())[:5]})")
    return dumps[-1].read_text()


def _computations(text: str) -> tuple[dict[str, list[str]], str]:
  """{computation name: its instruction lines}, and the entry's name."""
  comps, entry, current = {}, None, None
  for line in text.splitlines():
    header = _HEADER.match(line)
    if header:
      current = comps.setdefault(header.group(1), [])
      if line.startswith("ENTRY"):
        entry = header.group(1)
    elif line.startswith("}"):
      current = None
    elif current is not None and _INSTRUCTION.match(line):
      current.append(line)
  if entry is None:
    raise ValueError("hlo: no ENTRY computation")
  return comps, entry


def _trip_count(cond: list[str]) -> int:
  """N of a loop condition `i < N` (the counter starts at 0, as lax.scan
  and fori_loop lower)."""
  consts = [int(m.group(1)) for line in cond
            for m in [re.search(r"= s32\[\] constant\((-?\d+)\)", line)] if m]
  if len(consts) != 1 or not any("direction=LT" in l for l in cond):
    raise ValueError(f"hlo: a loop condition that is not i < N: {cond}")
  return consts[0]


def _multiplicities(comps, entry) -> dict[str, int]:
  """Times each computation runs per call of the entry."""
  times: dict[str, int] = {}

  def visit(name, n):
    times[name] = times.get(name, 0) + n
    for line in comps.get(name, ()):
      trips = None
      for role, callee in _CALLS.findall(line):
        if role == "to_apply":  # a reduction's scalar body: no collectives
          continue
        if role in ("condition", "body"):
          if trips is None:
            cond = re.search(r"\bcondition=%([\w.\-]+)", line).group(1)
            trips = _trip_count(comps[cond])
          visit(callee, n * trips)
        else:
          visit(callee, n)
      for group in _BRANCHES.findall(line):
        for callee in _USE.findall(group):
          visit(callee, n)

  visit(entry, 1)
  return times


def _group_size(attrs: str) -> int:
  """Devices per replica group, from any of HLO's spellings."""
  m = re.search(r"replica_groups=\{\{([\d,]*)\}", attrs)
  if m:
    return len(m.group(1).split(","))
  m = re.search(r"replica_groups=\[\d+,(\d+)\]<=", attrs)
  if m:
    return int(m.group(1))
  m = re.search(r"replica_groups=mesh\[([^\]]*)\] \{([^}]*)\}", attrs)
  if m:
    sizes = dict(re.findall(r"'(\w+)'=(\d+)", m.group(1)))
    return math.prod(int(sizes[a]) for a in re.findall(r"'(\w+)'", m.group(2)))
  m = re.search(r"source_target_pairs=\{([^}]*)\}", attrs)
  if m:  # a permute: each device talks to one other
    return 2
  return 1


def collectives(text: str) -> list[Collective]:
  """Every collective of the HLO module `text` (`partitioned_hlo`), with the
  times it runs per call."""
  comps, entry = _computations(text)
  times = _multiplicities(comps, entry)
  out = []
  for name, lines in comps.items():
    if not times.get(name):
      continue
    users: dict[str, list[str]] = {}
    for line in lines:
      target, rest = _INSTRUCTION.match(line).groups()
      for used in _USE.findall(rest.split("metadata=")[0]):
        users.setdefault(used, []).append(rest)
    for line in lines:
      target, rest = _INSTRUCTION.match(line).groups()
      m = _COLLECTIVE.match(rest)
      if not m:
        continue
      result, kind, attrs = m.groups()
      arrays = _ARRAY.findall(result)
      shapes = tuple(tuple(int(d) for d in dims.split(",") if d)
                     for _, dims in arrays)
      if kind == "all-reduce" and users.get(target) and all(
          " dynamic-slice(" in u for u in users[target]):
        kind = "reduce-scatter"  # all-reduce + slice: GPU XLA fuses the two
      op = _OP_NAME.search(attrs)
      out.append(Collective(
          kind=kind, dtype=arrays[0][0] if arrays else "token", shapes=shapes,
          group=_group_size(attrs), op=op.group(1) if op else "",
          per_call=times[name]))
  return out
