"""The dry run: what an experiment will cost, before any compute.

`report(exp, workdir, n_devices=...)` prints one row per stage (shape,
parameters, tokens, steps, training FLOPs, estimated memory per device on the
configured mesh) and the from-scratch equivalent (the final shape trained on
the same total tokens), and writes WORKDIR/plan.json (`plan`'s dict).

It prices the tokens the trainer trains, `steps x batch_size x seq_len` with
`steps = floor(tokens / (batch_size x seq_len))`, not the tokens a stage
declares: the plan and the run agree. Where the two differ, both are shown.
"""

from __future__ import annotations

import json
import pathlib

from growjax import cost
from growjax.experiment import Experiment

GIB = 2.0**30


def plan(exp: Experiment, n_devices: int) -> dict:
  """`cost.schedule_summary` of the trained tokens, each stage's row with its
  shape, growth method, steps, batch size, declared tokens and memory per
  device; plus seq_len, the mesh, the device count and the experiment's
  name."""
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
    row["memory_per_device"] = cost.memory_per_device(
        m, batch_size=stage.batch_size // stage.microbatches,
        seq_len=seq_len, mesh=mesh, compute_dtype=m.dtype,
        remat=exp.train.remat, rules=exp.mesh.rules or None)
  summary["seq_len"] = seq_len
  summary["mesh"] = mesh
  summary["n_devices"] = n_devices
  summary["experiment"] = exp.name
  return summary


def format_plan(p: dict) -> str:
  head = (f"{'stage':>5} {'grow':>10} {'d_model':>7} {'layers':>6} {'heads':>5} "
          f"{'d_ff':>6} {'params':>10} {'tokens':>10} {'steps':>8} "
          f"{'train FLOPs':>11} {'mem/dev GiB (p+opt+act)':>24}")
  lines = [f"{p['experiment']}: mesh {p['mesh']} on {p['n_devices']} devices", head]
  for i, s in enumerate(p["stages"]):
    sh, mem = s["shape"], s["memory_per_device"]
    lines.append(
        f"{i:>5} {s['grow'] or '-':>10} {sh['d_model']:>7} {sh['n_layers']:>6} "
        f"{sh['n_heads']:>5} {sh['d_ff']:>6} {s['params']:>10.4g} "
        f"{s['tokens']:>10.4g} {s['steps']:>8} {s['train_flops']:>11.4g} "
        f"{mem['params'] / GIB:>7.2f}+{mem['optimizer'] / GIB:.2f}+"
        f"{mem['activations'] / GIB:.2f}")
  for i, s in enumerate(p["stages"]):
    if s["declared_tokens"] != s["tokens"]:
      lines.append(
          f"stage {i} declares {s['declared_tokens']:,} tokens and trains "
          f"{s['tokens']:,.0f} ({s['steps']} steps x batch {s['batch_size']} "
          f"x seq_len {p['seq_len']})")
  lines.append(
      f"total {p['total_train_flops']:.4g} FLOPs on {p['total_tokens']:.4g} tokens; "
      f"from scratch (final shape, same tokens) {p['scratch_train_flops']:.4g}: "
      f"saving {p['saving']:.1%} ({p['speedup']:.2f}x)")
  return "\n".join(lines)


def report(exp: Experiment, workdir, *, n_devices: int) -> str:
  p = plan(exp, n_devices)
  out = pathlib.Path(workdir)
  out.mkdir(parents=True, exist_ok=True)
  (out / "plan.json").write_text(json.dumps(p, indent=1))
  return format_plan(p) + f"\nplan: {out / 'plan.json'}"
