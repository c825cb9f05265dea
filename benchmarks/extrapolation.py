r"""xPos against RoPE past the training length, trained and measured in one go.

    python benchmarks/extrapolation.py --workdir runs/extrapolation \
        [--config experiments/extrapolation.py] [--arg tokens=3000000] \
        [--out benchmarks/results/extrapolation.json]

Trains experiments/extrapolation.py twice, with pos=xpos and pos=rope, in
WORKDIR/xpos and WORKDIR/rope (a finished run is only resumed, so re-running
just re-evaluates), evaluates both with the `length` suite (1x, 2x, 4x, 8x the
training length; xPos with blockwise causal attention), prints a table and
writes

  {"xpos": {"loss_1x", "loss_2x", "loss_4x", "loss_8x", "ratio_4x", ...},
   "rope": {...}, "train_len": ..., "machine": ..., ...}

to --out, and the plot (loss against context length, and loss per position
bucket at the longest length) beside it as a PNG. Each run trains through
growjax.main's library path (`growjax.cli.train`), is read back with
`growjax.trained.load_latest` and measured by the `length` suite of
`python -m growjax.evaluate`; growjax.evaluate.extrapolation holds the
table and the figure.

A control, "rope_blockwise", reads the RoPE model with the same blockwise
attention as xPos: it tells how much of xPos's advantage is the attention
pattern and how much the position encoding.
"""

from __future__ import annotations

import json
import os
import pathlib
import platform
import time

from absl import flags

from growjax import command
from growjax.evaluate.extrapolation import entry, plot, summary_table

POSITIONS = ("xpos", "rope")
REPO = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "experiments" / "extrapolation.py"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "extrapolation.json"


def define_flags():
  """The script's flags (not at import: tests import `run`)."""
  flags.DEFINE_string("workdir", None, "Parent of the two runs (xpos/, rope/).")
  flags.DEFINE_string("config", str(DEFAULT_CONFIG), "The experiment file.")
  flags.DEFINE_string("arg", "", "More get_config arguments, e.g. "
                      "tokens=1000000 or runlocal (pos is set per run).")
  flags.DEFINE_string("out", str(DEFAULT_OUT), "Results JSON; the PNG goes "
                      "beside it.")
  flags.DEFINE_integer("windows", None, "Validation windows of the longest "
                       "length (default: eval.batches x batch_size).")
  flags.mark_flags_as_required(["workdir"])


FLAGS = flags.FLAGS


def machine() -> str:
  import jax  # pylint: disable=g-import-not-at-top
  device = jax.devices()[0]
  return (f"{platform.machine()}, {os.cpu_count()} cores, "
          f"{platform.platform()}; jax {jax.__version__} on "
          f"{device.platform} ({device.device_kind})")


def run(workdir, *, config=DEFAULT_CONFIG, arg: str = "",
        out=DEFAULT_OUT, positions=POSITIONS, windows: int | None = None,
        ) -> dict:
  """Trains (or resumes) one run per position kind, evaluates `length` on
  each, writes `out` and its PNG. Returns the results dict."""
  from growjax import cli, data, trained  # pylint: disable=g-import-not-at-top
  from growjax.evaluate import suites  # pylint: disable=g-import-not-at-top

  workdir = pathlib.Path(workdir)
  results: dict = {}
  tables = []
  begin = time.perf_counter()

  def record(name, r, **extra):
    results[name] = {**entry(r), **extra}
    tables.append(f"[{name}] " + r["table"])

  for pos in positions:
    full_arg = ",".join(filter(None, [f"pos={pos}", arg]))
    start = time.perf_counter()
    cli.train(command.load_experiment(f"{config}:{full_arg}"), workdir / pos)
    train_s = time.perf_counter() - start
    arm = trained.load_latest(workdir / pos)
    exp = arm.experiment
    corpus = data.prepare(exp.data)
    start = time.perf_counter()
    r = suites.length(arm, corpus, windows=windows)
    extra = dict(step=arm.step, train_tokens=exp.stages[0].tokens,
                 train_s=round(train_s, 1),
                 eval_s=round(time.perf_counter() - start, 1))
    if pos == "xpos":
      extra["xpos_scale_base"] = arm.config.xpos_scale_base
    record(pos, r, **extra)
    if pos == "rope":  # the control: RoPE read the way xPos is
      record("rope_blockwise", suites.length(
          arm, corpus, windows=windows, block_len=exp.seq_len),
             step=arm.step)
    results.update(
        train_len=exp.seq_len, eval_tokens_per_length=r["tokens"],
        model={k: getattr(arm.config, k) for k in
               ("d_model", "n_layers", "n_heads", "head_dim", "d_ff",
                "vocab_size")},
        data=exp.data.name)
  results["config"] = f"{pathlib.Path(config).name}:{arg}".rstrip(":")
  results["machine"] = machine()
  results["total_s"] = round(time.perf_counter() - begin, 1)
  out = pathlib.Path(out)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(results, indent=1) + "\n")
  png = plot(results, out.with_suffix(".png"))
  results["table"] = "\n\n".join(tables + [summary_table(results)])
  results["files"] = [str(out), str(png)]
  return results


def main():
  results = run(FLAGS.workdir, config=FLAGS.config, arg=FLAGS.arg,
                out=FLAGS.out, windows=FLAGS.windows)
  print(results["table"])
  print("written: " + ", ".join(results["files"]))


if __name__ == "__main__":
  define_flags()
  command.run(main)
