"""The dry run: what an experiment will cost, before any compute.

`report(exp, workdir, n_devices=...)` prints one row per stage (shape,
parameters, tokens, steps, training FLOPs, estimated memory per device on the
configured mesh) and the from-scratch equivalent (the final shape trained on
the same total tokens), and writes WORKDIR/plan.json (`plan`'s dict).

It prices the tokens the trainer trains, `steps x batch_size x seq_len` with
`steps = floor(tokens / (batch_size x seq_len))`, not the tokens a stage
declares: the plan and the run agree. Where the two differ, both are shown.

Memory: each stage is priced under every remat policy (`cost.REMAT`), with
the policy the run takes (`train.remat`, or for 'auto' `cost.fastest_remat`
against the device's limit) and, for a stage that fits under none, the
one-line refusal `cost.fit_or_explain` gives, which the trainer raises too.
"""

from __future__ import annotations

import json
import pathlib

from growjax import cost, flm101b
from growjax.experiment import Experiment

GIB = 2.0**30


def train_options(exp: Experiment) -> tuple[str, int | None]:
  """(remat, loss_chunk) of an experiment: remat 'auto' or a policy of
  `cost.REMAT`; loss_chunk None for the whole [B, T, V] logits."""
  return exp.train.remat, exp.train.loss_chunk


def stage_memory(m, *, batch_size: int, microbatches: int, seq_len: int,
                 mesh: dict, rules, remat: str, loss_chunk: int | None,
                 device_bytes: float | None) -> dict:
  """One stage's memory: `memory_by_remat` (total bytes per device of each
  policy), the policy the run takes (`remat`: the set one, or for 'auto'
  `cost.fastest_remat`), its `memory_per_device`, and `refusal`
  (`cost.fit_or_explain`'s line, None when it fits)."""
  kw = dict(batch_size=batch_size, seq_len=seq_len, mesh=mesh, rules=rules,
            loss_chunk=loss_chunk, microbatches=microbatches)
  chosen = (cost.fastest_remat(m, device_bytes=device_bytes, **kw)
            if remat == "auto" else remat)
  return {
      "remat": chosen,
      "memory_per_device": cost.memory_per_device(m, remat=chosen, **kw),
      "memory_by_remat": {p: cost.memory_per_device(m, remat=p, **kw)["total"]
                          for p in cost.REMAT},
      "refusal": cost.fit_or_explain(m, device_bytes=device_bytes,
                                     remat=remat, **kw),
  }


def plan(exp: Experiment, n_devices: int,
         device_bytes: float | None = None) -> dict:
  """`cost.schedule_summary` of the trained tokens, each stage's row with its
  shape, growth method, steps, batch size, declared tokens and
  `stage_memory` against `device_bytes` (None: no limit known); plus
  seq_len, the mesh, the device count, the device limit and the
  experiment's name."""
  mesh = exp.mesh.shape(n_devices)
  remat, loss_chunk = train_options(exp)
  seq_len = exp.seq_len
  trained = [s.steps(seq_len) * s.batch_size * seq_len for s in exp.stages]
  summary = cost.schedule_summary(
      [(s.model, t) for s, t in zip(exp.stages, trained)], seq_len)
  for stage, row in zip(exp.stages, summary["stages"]):
    m = stage.model
    row["shape"] = {k: getattr(m, k) for k in
                    ("d_model", "n_layers", "n_heads", "head_dim", "d_ff",
                     "vocab_size", "max_len")}
    row["grow"] = stage.grow.method if stage.grow else None
    row["steps"] = stage.steps(seq_len)
    row["batch_size"] = stage.batch_size
    row["declared_tokens"] = stage.tokens
    row.update(stage_memory(
        m, batch_size=stage.batch_size, microbatches=stage.microbatches,
        seq_len=seq_len, mesh=mesh, rules=exp.mesh.rules or None,
        remat=remat, loss_chunk=loss_chunk, device_bytes=device_bytes))
  summary["seq_len"] = seq_len
  summary["mesh"] = mesh
  summary["n_devices"] = n_devices
  summary["device_bytes"] = device_bytes
  summary["experiment"] = exp.name
  return summary


def format_plan(p: dict) -> str:
  head = (f"{'stage':>5} {'grow':>10} {'d_model':>7} {'layers':>6} "
          f"{'heads':>5} {'d_ff':>6} {'params':>10} {'tokens':>10} "
          f"{'steps':>8} {'train FLOPs':>11} {'mem/dev GiB (p+opt+act)':>24} "
          f"{'remat':>7}")
  lines = [f"{p['experiment']}: mesh {p['mesh']} on {p['n_devices']} devices",
           head]
  for i, s in enumerate(p["stages"]):
    sh, mem = s["shape"], s["memory_per_device"]
    lines.append(
        f"{i:>5} {s['grow'] or '-':>10} {sh['d_model']:>7} "
        f"{sh['n_layers']:>6} {sh['n_heads']:>5} {sh['d_ff']:>6} "
        f"{s['params']:>10.4g} {s['tokens']:>10.4g} {s['steps']:>8} "
        f"{s['train_flops']:>11.4g} "
        f"{mem['params'] / GIB:>7.2f}+{mem['optimizer'] / GIB:.2f}+"
        f"{mem['activations'] / GIB:.2f} {s['remat']:>7}")
  limit = ("no device limit known" if p["device_bytes"] is None else
           f"device limit {p['device_bytes'] / GIB:.1f} GiB")
  for i, s in enumerate(p["stages"]):
    by = ", ".join(f"{k} {v / GIB:.2f}"
                   for k, v in s["memory_by_remat"].items())
    lines.append(f"stage {i} GiB per device by remat: {by} ({limit}; takes "
                 f"{s['remat']!r})")
    if s["refusal"]:
      lines.append(f"stage {i} does not fit: {s['refusal']}")
  for i, s in enumerate(p["stages"]):
    if s["declared_tokens"] != s["tokens"]:
      lines.append(
          f"stage {i} declares {s['declared_tokens']:,} tokens and trains "
          f"{s['tokens']:,.0f} ({s['steps']} steps x batch {s['batch_size']} "
          f"x seq_len {p['seq_len']})")
  lines.append(
      f"total {p['total_train_flops']:.4g} FLOPs on {p['total_tokens']:.4g} "
      f"tokens; from scratch (final shape, same tokens) "
      f"{p['scratch_train_flops']:.4g}: saving {p['saving']:.1%} "
      f"({p['speedup']:.2f}x)")
  return "\n".join(lines)


def report(exp: Experiment, workdir, *, n_devices: int,
           device_bytes: float | None | str = "here") -> str:
  """Print-ready plan; writes WORKDIR/plan.json. `device_bytes` "here": the
  limit of this machine's device (`cost.device_memory_bytes`)."""
  if device_bytes == "here":
    device_bytes = cost.device_memory_bytes()
  p = plan(exp, n_devices, device_bytes)
  paper = flm101b.paper_comparison(p)  # None unless it is FLM-101B's schedule
  if paper is not None:
    p["paper"] = paper
  out = pathlib.Path(workdir)
  out.mkdir(parents=True, exist_ok=True)
  (out / "plan.json").write_text(json.dumps(p, indent=1))
  table = format_plan(p)
  if paper is not None:
    table += "\n" + flm101b.format_comparison(paper)
  return table + f"\nplan: {out / 'plan.json'}"
