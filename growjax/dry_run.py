"""The dry run: what an experiment will cost, before any compute.

`report(exp, workdir, n_devices=...)` prints one row per stage (shape,
parameters, tokens, steps, training FLOPs, estimated memory per device on the
configured mesh) and the from-scratch equivalent (the final shape trained on
the same total tokens), and writes WORKDIR/plan.json (`plan`'s dict).

It prices the tokens the trainer trains, `steps x batch_size x seq_len` with
`steps = floor(tokens / (batch_size x seq_len))`, not the tokens a stage
declares: the plan and the run agree. Where the two differ, both are shown.

Memory: each stage is priced under every remat policy (`model.REMAT`), with
the policy the run takes and, for a stage that fits under none, the one-line
refusal the trainer raises too: both from `stage_remat`, which the trainer
calls as well, so the plan and the run take the same policy.

Schedule: the learning rate per stage (`growjax.schedule.describe`: the rate
at each stage's first and last step and where a phase changes) and each decay
branch with the FLOPs it is charged.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

from growjax import cost, flm101b, memory, mup
from growjax import params as params_lib
from growjax import schedule as schedule_lib
from growjax.experiment import Experiment, Stage, lr_multipliers
from growjax.model import REMAT

GIB = memory.GIB


def workload(exp: Experiment, stage: Stage, mesh: dict) -> memory.Workload:
  """One stage's train step on a mesh of these axis sizes, with the
  experiment's `train.remat` ('auto' or a policy)."""
  return memory.Workload(
      stage.model, batch_size=stage.batch_size, seq_len=exp.seq_len,
      mesh=mesh, rules=exp.mesh.rules or None,
      microbatches=stage.microbatches, remat=exp.train.remat,
      loss_chunk=exp.train.loss_chunk)


def stage_remat(exp: Experiment, stage: Stage, mesh: dict,
                device_bytes: float | None) -> tuple[str, str | None]:
  """(the remat policy `stage` trains with, the one-line refusal when it fits
  under none or None): `train.remat`, or for 'auto' the fastest that fits
  `device_bytes` (`memory.resolve_remat`). The trainer and the plan ask
  here."""
  return memory.resolve_remat(workload(exp, stage, mesh), device_bytes)


def stage_memory(exp: Experiment, stage: Stage, mesh: dict,
                 device_bytes: float | None) -> dict:
  """One stage's memory: `memory_by_remat` (total bytes per device of each
  policy), the policy the run takes (`remat`, from `stage_remat`), its
  `memory_per_device`, and `refusal` (None when it fits)."""
  work = workload(exp, stage, mesh)
  chosen, refusal = stage_remat(exp, stage, mesh, device_bytes)
  def under(policy):
    return memory.memory_per_device(dataclasses.replace(work, remat=policy))
  return {
      "remat": chosen,
      "memory_per_device": under(chosen),
      "memory_by_remat": {p: under(p)["total"] for p in REMAT},
      "refusal": refusal,
  }


def multipliers(exp: Experiment, stage) -> dict | None:
  """What the optimizer and muP do per parameter in `stage`: {path: {lr (the
  Adam multiplier the trainer applies: muP's times hyperclone's),
  init_std, forward}}, plus the logits' and attention's factors; None for
  an sp stage whose multipliers are all 1."""
  m = stage.model
  mults = lr_multipliers(exp, stage)
  if mults is None and m.param == "sp":
    return None
  groups = mup.groups(m)
  for path, p in params_lib.of(m).items():
    groups[path]["lr"] = 1.0 if mults is None else float(p.get(mults))
  return {"param": m.param, "base": m.mup_base and dict(vars(m.mup_base)),
          "logits": mup.output_multiplier(m),
          "attention_scale": mup.attention_scale(m), "params": groups}


def format_multipliers(i: int, g: dict) -> list[str]:
  """Lines of `multipliers`: each value once, with the parameters that take
  it."""
  def by_value(key):
    values = {}
    for path, row in g["params"].items():
      if row[key] is not None:
        values.setdefault(f"{row[key]:.4g}", []).append(path)
    return "; ".join(f"x{v}: {' '.join(paths)}" if key == "lr" else
                     f"{v}: {' '.join(paths)}" for v, paths in values.items())
  base = ("" if not g["base"] else " (base " + ", ".join(
      f"{k} {v}" for k, v in g["base"].items()) + ")")
  return [f"stage {i} {g['param']}{base}: logits x{g['logits']:.4g}, "
          f"attention scale {g['attention_scale']:.4g}",
          f"stage {i} Adam rate {by_value('lr')}",
          f"stage {i} init std {by_value('init_std')}"]


def plan(exp: Experiment, n_devices: int,
         device_bytes: float | None = None) -> dict:
  """`cost.schedule_summary` of the trained tokens, each stage's row with its
  shape, growth method, steps, batch size, declared tokens and
  `stage_memory` against `device_bytes` (None: no limit known); plus
  seq_len, the mesh, the device count, the device limit and the
  experiment's name."""
  mesh = exp.mesh.shape(n_devices)
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
    row["multipliers"] = multipliers(exp, stage)
    row.update(stage_memory(exp, stage, mesh, device_bytes))
  summary["seq_len"] = seq_len
  summary["mesh"] = mesh
  summary["n_devices"] = n_devices
  summary["device_bytes"] = device_bytes
  summary["experiment"] = exp.name
  summary["schedule"] = schedule_lib.describe(exp)
  summary["branches"] = [
      {"decay_at": b.at, "start_step": b.start, "end_step": b.end,
       "train_flops": _branch_flops(exp, b)} for b in schedule_lib.branches(exp)]
  return summary


def _branch_flops(exp: Experiment, b) -> float:
  """FLOPs a decay branch is charged: its trunk's up to the branch point
  plus its own, i.e. those of a run of the trunk's stages cut at its end."""
  cut = Experiment.from_config(b.config)
  return sum(cost.train_flops_per_token(s.model, exp.seq_len)
             * s.steps(exp.seq_len) * s.batch_size * exp.seq_len for s in cut.stages)


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
    if s.get("multipliers"):
      lines += format_multipliers(i, s["multipliers"])
  for i, s in enumerate(p["stages"]):
    if s["declared_tokens"] != s["tokens"]:
      lines.append(
          f"stage {i} declares {s['declared_tokens']:,} tokens and trains "
          f"{s['tokens']:,.0f} ({s['steps']} steps x batch {s['batch_size']} "
          f"x seq_len {p['seq_len']})")
  lines += p.get("schedule", [])
  for b in p.get("branches", []):
    lines.append(f"branch decay_at {b['decay_at']:g}: from the trunk's step "
                 f"{b['start_step']}, decayed by step {b['end_step']}, "
                 f"{b['train_flops']:.4g} FLOPs (the trunk's to step "
                 f"{b['start_step']} included)")
  lines.append(
      f"total {p['total_train_flops']:.4g} FLOPs on {p['total_tokens']:.4g} "
      f"tokens; from scratch (final shape, same tokens) "
      f"{p['scratch_train_flops']:.4g}: saving {p['saving']:.1%} "
      f"({p['speedup']:.2f}x)")
  return "\n".join(lines)


def report(exp: Experiment, workdir, *, n_devices: int,
           device_bytes: float | None | str = "here") -> str:
  """Print-ready plan; writes WORKDIR/plan.json. `device_bytes` "here": the
  limit of this machine's device (`memory.device_memory_bytes`)."""
  if device_bytes == "here":
    device_bytes = memory.device_memory_bytes()
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
