r"""xPos against RoPE past the training length: every arm trained, read three
ways, summarised over seeds, in one resumable command.

    python benchmarks/extrapolation.py --workdir runs/extrapolation
    python benchmarks/extrapolation.py --workdir runs/extrapolation_cpu \
        --arg runlocal --out benchmarks/results/extrapolation_cpu.json
    python benchmarks/extrapolation.py --merge s0.json,s1.json,s2.json \
        --out benchmarks/results/extrapolation.json   # seeds run apart, joined

Trains experiments/extrapolation.py (the H200 size by default; `--arg
runlocal` the CPU size) as RoPE and as xPos at each `--scale_bases` value
(default l/2, the paper's ratio; 512, the paper's value; and 4 l), each with
every `--seeds` seed, in WORKDIR/<rope|xpos_sb<value>>/seed<seed>, through
growjax.main's library path (`growjax.cli.train`). A model whose final
checkpoint exists is not trained again, and one whose evaluation is already
in its eval_length.json (same step and settings) is not read again, so
re-running after an interruption continues where it stopped.

Each model is read by the `length` suite of `python -m growjax.evaluate`:
losses at 1x, 2x, 4x, 8x the training length l, every length scoring the
same `--eval_tokens` validation tokens, with causal attention and with
blockwise attention at blocks of l/2 and l. The results file holds

  {"arms": [one row per model and reading: pos, attention, block, seed,
            train_len, n_layers, d_model, scale_base, loss {"1x", ..., "8x"},
            se, buckets, curve, ...],
   "summary": [per model kind and reading: loss and rise over 1x, mean and
               95% t-interval over seeds],
   "differences": [xPos - RoPE per scale_base and reading, paired by seed],
   "train_len", "model", "machine", "seconds", ...}

with the figure (growjax.evaluate.extrapolation.figure) beside it as a PNG.
The H200 default was sized from its FLOPs for about 8 minutes on one H200
(experiments/extrapolation.py says how); measured: about 4.5 minutes per
seed with three seeds' processes sharing two H200s (extrapolation.json). Compiles are
cached in WORKDIR/jax_cache, so the seeds of one model kind share them; a run
cut short by a time limit continues when the command is run again.
"""

from __future__ import annotations

import json
import os
import pathlib
import platform
import time

from absl import flags

from growjax import command
from growjax.evaluate import extrapolation

REPO = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "experiments" / "extrapolation.py"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "extrapolation.json"
SEEDS = (0, 1, 2)
PAPER_SCALE_BASE = 512.0  # xPos paper, at training length 1024
EVAL_TOKENS = 131_072  # validation tokens every length and reading scores
MULTIPLES = (1, 2, 4, 8)


def define_flags():
  """The script's flags (not at import: tests import `run`)."""
  flags.DEFINE_string("workdir", None, "Parent of every model's run.")
  flags.DEFINE_string("config", str(DEFAULT_CONFIG), "The experiment file.")
  flags.DEFINE_string("arg", "", "More get_config arguments, e.g. runlocal "
                      "or tokens=1000000 (pos, seed and scale_base are set "
                      "per model).")
  flags.DEFINE_string("out", str(DEFAULT_OUT), "Results JSON; the PNG goes "
                      "beside it.")
  flags.DEFINE_list("seeds", [str(s) for s in SEEDS], "Seeds of every model "
                    "kind.")
  flags.DEFINE_list("scale_bases", [], "xPos scale_base values (default: "
                    "l/2, 512 and 4 l).")
  flags.DEFINE_integer("eval_tokens", EVAL_TOKENS, "Validation tokens each "
                       "length scores.")
  flags.DEFINE_list("merge", [], "Results files of disjoint seeds to join "
                    "into --out instead of training (no --workdir).")


FLAGS = flags.FLAGS


def machine() -> str:
  import jax  # pylint: disable=g-import-not-at-top
  device = jax.devices()[0]
  return (f"{platform.machine()}, {os.cpu_count()} cores, "
          f"{platform.platform()}; jax {jax.__version__} on "
          f"{device.platform} ({device.device_kind})")


def default_scale_bases(train_len: int) -> tuple[float, ...]:
  """l/2 (the paper's ratio), 512 (the paper's value) and 4 l."""
  return tuple(sorted({train_len / 2, PAPER_SCALE_BASE, 4.0 * train_len}))


def kinds(scale_bases) -> list[tuple[str, float | None]]:
  """(pos, scale_base) of every model kind: RoPE, then xPos per value."""
  return [("rope", None)] + [("xpos", float(s)) for s in scale_bases]


def kind_dir(pos: str, scale_base: float | None) -> str:
  return pos if scale_base is None else f"{pos}_sb{scale_base:g}"


def _finished(exp, workdir: pathlib.Path) -> bool:
  from growjax import checkpoint  # pylint: disable=g-import-not-at-top
  return checkpoint.latest(workdir) == (len(exp.stages) - 1,
                                        exp.stage_starts()[-1])


def _use_compilation_cache(workdir: pathlib.Path) -> None:
  """Caches compiles in WORKDIR/jax_cache unless a cache is set already."""
  import jax  # pylint: disable=g-import-not-at-top
  if not jax.config.jax_compilation_cache_dir:
    jax.config.update("jax_compilation_cache_dir", str(workdir / "jax_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def _number(text, kind):
  """A flag's list item as a number (a non-number is left for the check to
  name)."""
  try:
    return kind(text)
  except (TypeError, ValueError):
    return text


def run(workdir, *, config=DEFAULT_CONFIG, arg: str = "", out=DEFAULT_OUT,
        seeds=SEEDS, scale_bases=None, eval_tokens: int = EVAL_TOKENS,
        multiples=MULTIPLES) -> dict:
  """Trains (or resumes) and evaluates every model, writes `out` and its PNG.
  Returns the results dict, with its text under "table"."""
  from growjax import checks, cli, data, trained  # pylint: disable=g-import-not-at-top
  from growjax.evaluate import suites  # pylint: disable=g-import-not-at-top
  from growjax.experiment import Experiment  # pylint: disable=g-import-not-at-top
  from growjax.train import metrics  # pylint: disable=g-import-not-at-top

  with command.user_input("--"):
    seeds = [checks.integer("seeds", _number(s, int), low=0) for s in seeds]
    eval_tokens = checks.positive_int("eval_tokens", eval_tokens)
    scale_bases = [checks.positive_number("scale_bases", _number(s, float))
                   for s in scale_bases or ()]
  workdir = pathlib.Path(workdir)
  _use_compilation_cache(workdir)

  def experiment(**values):
    given = ",".join(f"{k}={v}" for k, v in values.items() if v is not None)
    config_dict = command.load_experiment(
        f"{config}:{','.join(filter(None, [arg, given]))}")
    return config_dict, Experiment.from_config(config_dict)

  train_len = experiment()[1].seq_len
  scale_bases = scale_bases or default_scale_bases(train_len)
  begin = time.perf_counter()
  arms, log = [], []
  for pos, scale_base in kinds(scale_bases):
    for seed in seeds:
      config_dict, exp = experiment(pos=pos, seed=seed, scale_base=scale_base)
      where = workdir / kind_dir(pos, scale_base) / f"seed{seed}"
      if not _finished(exp, where):
        cli.train(config_dict, where)
      train_s = [r["time"] for r in metrics.read(where) if "time" in r][-1]
      model = trained.load_latest(where)
      settings = {"step": model.step, "tokens": eval_tokens,
                  "multiples": list(multiples),
                  "blocks": list(suites.default_blocks(exp.seq_len))}
      cached = where / "eval_length.json"
      result = json.loads(cached.read_text()) if cached.exists() else None
      if result is None or result.get("settings") != settings:
        start = time.perf_counter()
        result = suites.length(model, data.prepare(exp.data),
                               multiples=multiples, tokens=eval_tokens)
        result.update(settings=settings,
                      eval_s=round(time.perf_counter() - start, 1))
        cached.write_text(json.dumps(
            {k: v for k, v in result.items() if k != "table"}) + "\n")
      eval_s = result.get("eval_s")
      arms += extrapolation.rows(
          result, seed=seed, step=model.step,
          train_tokens=exp.stages[0].tokens, train_s=round(train_s, 1),
          eval_s=eval_s)
      log.append(f"{kind_dir(pos, scale_base)}/seed{seed}: step {model.step}, "
                 f"train {train_s:.0f} s, evaluation {eval_s} s")
  cfg = model.config
  results = {
      "arms": arms,
      "summary": extrapolation.summarise(arms),
      "differences": extrapolation.differences(arms),
      "confidence": extrapolation.CONFIDENCE,
      "interval": "two-sided Student t-interval over seeds (n - 1 degrees "
                  "of freedom); differences paired by seed",
      "train_len": train_len, "seeds": seeds,
      "scale_bases": list(scale_bases), "eval_tokens": eval_tokens,
      "model": {k: getattr(cfg, k) for k in
                ("d_model", "n_layers", "n_heads", "head_dim", "d_ff",
                 "vocab_size", "dtype")},
      "train_tokens": exp.stages[0].tokens, "data": exp.data.name,
      "config": f"{pathlib.Path(config).name}:{arg}".rstrip(":"),
      "machine": machine(),
      "seconds": round(time.perf_counter() - begin, 1),  # this invocation
  }
  out = pathlib.Path(out)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(results, indent=1) + "\n")
  png = extrapolation.plot(results, out.with_suffix(".png"))
  results["table"] = "\n".join(log) + "\n\n" + extrapolation.summary_table(
      results)
  results["files"] = [str(out), str(png)]
  return results


SAME = ("train_len", "scale_bases", "eval_tokens", "model", "train_tokens",
        "data", "config")  # what every merged file must share


def merge(paths, out) -> dict:
  """One results file from several runs of this script that trained disjoint
  seeds of the same models (e.g. one seed per GPU, each on its own machine
  or device): the arms joined, the summary, differences and plot made again
  over every seed. `seconds` is the sum; `parts` keeps each file's seeds,
  seconds and machine."""
  parts = [json.loads(pathlib.Path(p).read_text()) for p in paths]
  if len(parts) < 2:
    raise command.UsageError("--merge: name at least two results files")
  for p, part in zip(paths[1:], parts[1:]):
    for key in SAME:
      if part.get(key) != parts[0].get(key):
        raise command.UsageError(f"--merge: {p} has another {key} than {paths[0]}")
  seeds = [s for part in parts for s in part["seeds"]]
  if len(set(seeds)) != len(seeds):
    raise command.UsageError(f"--merge: a seed appears twice: {seeds}")
  arms = [a for part in parts for a in part["arms"]]
  results = dict(parts[0], arms=arms, seeds=sorted(seeds),
                 summary=extrapolation.summarise(arms),
                 differences=extrapolation.differences(arms),
                 seconds=round(sum(p["seconds"] for p in parts), 1),
                 parts=[{"file": pathlib.Path(p).name, "seeds": part["seeds"],
                         "seconds": part["seconds"], "machine": part["machine"]}
                        for p, part in zip(paths, parts)])
  out = pathlib.Path(out)
  out.write_text(json.dumps(results, indent=1) + "\n")
  png = extrapolation.plot(results, out.with_suffix(".png"))
  results["table"] = extrapolation.summary_table(results)
  results["files"] = [str(out), str(png)]
  return results


def main():
  if FLAGS.merge:
    results = merge(FLAGS.merge, FLAGS.out)
    print(results["table"])
    print("written: " + ", ".join(results["files"]))
    return
  if not FLAGS.workdir:
    raise command.UsageError("--workdir: required (unless --merge)")
  results = run(FLAGS.workdir, config=FLAGS.config, arg=FLAGS.arg,
                out=FLAGS.out, seeds=FLAGS.seeds,
                scale_bases=FLAGS.scale_bases, eval_tokens=FLAGS.eval_tokens)
  print(results["table"])
  print("written: " + ", ".join(results["files"]))


if __name__ == "__main__":
  define_flags()
  command.run(main)
