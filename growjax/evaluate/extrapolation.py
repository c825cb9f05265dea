r"""xPos against RoPE past the training length, trained and measured in one go.

    python -m growjax.evaluate.extrapolation --workdir runs/extrapolation \
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
bucket at the longest length) beside it as a PNG.

A control, "rope_blockwise", reads the RoPE model with the same blockwise
attention as xPos: it tells how much of xPos's advantage is the attention
pattern and how much the position encoding.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import platform
import sys
import time

POSITIONS = ("xpos", "rope")
VARIANTS = ("xpos", "rope", "rope_blockwise")  # results keys, plot order
REPO = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO / "experiments" / "extrapolation.py"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "extrapolation.json"
KEYS = ("loss_1x", "loss_2x", "loss_4x", "loss_8x", "ratio_2x", "ratio_4x",
        "ratio_8x")


def load_config(path, arg: str | None):
  """`get_config(arg)` of an experiment file."""
  path = pathlib.Path(path)
  if not path.exists():
    raise FileNotFoundError(f"--config {path}: no such file")
  spec = importlib.util.spec_from_file_location(f"_exp_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


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
  import jax  # pylint: disable=g-import-not-at-top
  from growjax import data  # pylint: disable=g-import-not-at-top
  from growjax.evaluate import suites  # pylint: disable=g-import-not-at-top
  from growjax.experiment import Experiment  # pylint: disable=g-import-not-at-top
  from growjax import trained as trained_lib  # pylint: disable=g-import-not-at-top
  from growjax.train import loop  # pylint: disable=g-import-not-at-top

  workdir = pathlib.Path(workdir)
  results: dict = {}
  tables = []
  begin = time.perf_counter()

  def record(name, r, **extra):
    results[name] = {**entry(r), **extra}
    tables.append(f"[{name}] " + r["table"])

  for pos in positions:
    full_arg = ",".join(filter(None, [f"pos={pos}", arg]))
    exp = Experiment.from_config(load_config(config, full_arg),
                                 n_devices=jax.device_count())
    start = time.perf_counter()
    loop.run(exp, workdir / pos)
    train_s = time.perf_counter() - start
    trained = trained_lib.load_latest(workdir / pos)
    corpus = data.prepare(exp.data)
    start = time.perf_counter()
    r = suites.length(trained, corpus, windows=windows)
    extra = dict(step=trained.step, train_tokens=exp.stages[0].tokens,
                 train_s=round(train_s, 1),
                 eval_s=round(time.perf_counter() - start, 1))
    if pos == "xpos":
      extra["xpos_scale_base"] = trained.config.xpos_scale_base
    record(pos, r, **extra)
    if pos == "rope":  # the control: RoPE read the way xPos is
      record("rope_blockwise", suites.length(
          trained, corpus, windows=windows, block_len=exp.seq_len),
             step=trained.step)
    results.update(
        train_len=exp.seq_len, eval_tokens_per_length=r["tokens"],
        model={k: getattr(trained.config, k) for k in
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


def entry(length_result: dict) -> dict:
  """The numbers the results file keeps of a `suites.length` result."""
  r = length_result
  return {**{k: r[k] for k in KEYS if k in r},
          "buckets": {k: e["buckets"] for k, e in r["lengths"].items()},
          "block_len": r["block_len"]}


def summary_table(results: dict) -> str:
  """One row per variant: loss at each length and its ratio to 1x."""
  present = [p for p in VARIANTS if p in results]
  lines = [f"{'':<15}" + "".join(f"{k:>10}" for k in KEYS)]
  for pos in present:
    lines.append(f"{pos:<15}" + "".join(
        f"{results[pos].get(k, float('nan')):>10.4f}" for k in KEYS))
  return "\n".join(lines)


def figure(results: dict):
  """A matplotlib figure: loss against context length for each variant, and
  loss per position bucket at the longest length."""
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  train_len = results["train_len"]
  fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
  styles = {"xpos": "o-", "rope": "s-", "rope_blockwise": "s--"}
  for name in [v for v in VARIANTS if v in results]:
    r = results[name]
    names = sorted((k for k in r if k.startswith("loss_")),
                   key=lambda k: int(k[5:-1]))
    x = [int(k[5:-1]) * train_len for k in names]
    label = {"xpos": "xPos (blockwise)", "rope": "RoPE",
             "rope_blockwise": "RoPE (blockwise)"}[name]
    left.plot(x, [r[k] for k in names], styles[name], label=label)
    longest = max(r["buckets"], key=lambda k: int(k[:-1]))
    b = r["buckets"][longest]
    right.plot([(i + 0.5) * train_len for i in range(len(b))], b,
               styles[name], label=f"{label}, {longest}")
  left.set_xscale("log", base=2)
  for ax in (left, right):
    ax.axvline(train_len, color="gray", ls=":", lw=1)
    ax.legend()
    ax.grid(alpha=0.3)
  left.set(xlabel="context length (tokens)", ylabel="validation loss (nats)",
           title=f"loss vs. context length (trained on {train_len})")
  right.set(xlabel="position in the window (bucket centre)",
            ylabel="validation loss (nats)",
            title="loss per position bucket, longest context")
  fig.tight_layout()
  return fig


def plot(results: dict, path) -> pathlib.Path:
  """`figure(results)` saved as a PNG at `path`."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig = figure(results)
  path = pathlib.Path(path)
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


def main(argv):
  from absl import flags  # pylint: disable=g-import-not-at-top
  f = flags.FLAGS
  if len(argv) > 1:
    print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
    return 2
  from growjax import cli as growjax_cli  # pylint: disable=g-import-not-at-top
  growjax_cli.setup_logging()
  from growjax.evaluate import cli  # pylint: disable=g-import-not-at-top
  try:
    results = run(f.workdir, config=f.config, arg=f.arg, out=f.out,
                  windows=f.windows)
  except cli.USER_ERRORS as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(results["table"])
  print("written: " + ", ".join(results["files"]))
  return 0


if __name__ == "__main__":
  from absl import app, flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string("workdir", None, "Parent of the two runs (xpos/, rope/).")
  flags.DEFINE_string("config", str(DEFAULT_CONFIG), "The experiment file.")
  flags.DEFINE_string("arg", "", "More get_config arguments, e.g. "
                      "tokens=1000000 or runlocal (pos is set per run).")
  flags.DEFINE_string("out", str(DEFAULT_OUT), "Results JSON; the PNG goes "
                      "beside it.")
  flags.DEFINE_integer("windows", None, "Validation windows of the longest "
                       "length (default: eval.batches x batch_size).")
  flags.mark_flags_as_required(["workdir"])
  app.run(main)
