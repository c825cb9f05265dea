r"""python -m growjax.study --config STUDY.py[:ARG] --workdir DIR [--parallel N --devices 0,1]

Trains every run of a study (see growjax.study), then prints the speedup
table and writes DIR/study.json and DIR/study.png. A mistake in the study file
is one line and exit status 2, before any compute.
"""

from __future__ import annotations

import pathlib
import sys
import time

from absl import flags

from growjax import command
from growjax.train import preempt
from growjax.study.progress import best_lrs
from growjax.study.results import export, finish, format_result, restore
from growjax.study.runner import _claim, _release, run_all, run_one
from growjax.study.spec import Study

def _flags():
  flags.DEFINE_string("workdir", None, "The study's directory (runs/NAME/ per run).")
  flags.DEFINE_integer("parallel", 1, "Runs at once, each in its own process "
                       "(1: one after the other, in this process).")
  flags.DEFINE_string("devices", None, "Comma-separated CUDA device ids; slot i "
                      "uses devices[i % n] (e.g. 0,1,0,1: two runs per GPU).")
  flags.DEFINE_float("deadline_s", None, "Start no trunk after this many seconds "
                     "(a finished trunk's decay branches still run).")
  flags.DEFINE_string("only", None, "Train this one run (by name) and stop.")
  flags.DEFINE_bool("claimed", False, "(--only) the scheduler already claimed it.")
  flags.DEFINE_float("target", None, "(--only) stop at this smoothed loss.")
  flags.DEFINE_integer("n_boot", 1000, "Bootstrap samples of the speedup CIs.")
  flags.DEFINE_string("export", None, "Also copy study.json/png and the runs' "
                      "metrics here (e.g. benchmarks/results).")
  flags.DEFINE_string("resume_from", None, "Mark done the runs an earlier "
                      "--export to this folder holds, then go on (a study "
                      "split over machines that share no disk).")
  flags.DEFINE_list("arms", None, "Train only these arms (comma-separated "
                    "names); the table reads every finished run.")
  flags.mark_flags_as_required(["workdir"])
  return flags.FLAGS


def _worker_args(argv: list[str]) -> list[str]:
  """This command's arguments for a worker: the study's own, without the
  scheduler's."""
  skip = ("--parallel", "--devices", "--deadline_s", "--export", "--only",
          "--claimed", "--target", "--n_boot", "--resume_from", "--arms")
  out, i = [], 0
  while i < len(argv):
    a = argv[i]
    name = a.split("=", 1)[0]
    if name in skip:
      i += 1 if "=" in a or name == "--claimed" else 2
      continue
    out.append(a)
    i += 1
  return out


def main() -> int:
  """python -m growjax.study: every run, then the table and study.json."""
  flags = FLAGS
  study = Study.from_config(flags.config)
  workdir = pathlib.Path(flags.workdir)
  if flags.only:
    run = next((r for r in study.runs(best_lrs(study, workdir))
                if r.name == flags.only), None)
    if run is None:
      raise command.UsageError(f"--only: {flags.only!r} is not a run of this study")
    run_dir = workdir / "runs" / run.name
    if not flags.claimed and not _claim(run_dir):
      raise command.UsageError(f"--only: {run.name} is being trained by "
                               f"{(run_dir / 'claim').read_text()}")
    try:
      run_one(study, run, workdir, flags.target)
    finally:
      if not flags.claimed:
        _release(run_dir)
    return 0
  unknown = set(flags.arms or ()) - {a["name"] for a in study.arms}
  if unknown:
    raise command.UsageError(f"--arms: {sorted(unknown)} are not arms of this "
                             f"study (its arms: {[a['name'] for a in study.arms]})")
  if flags.resume_from:
    try:
      restored = restore(study, workdir, pathlib.Path(flags.resume_from))
    except FileNotFoundError as e:
      raise command.UsageError(str(e)) from None
    print(f"restored {len(restored)} finished runs from {flags.resume_from}")
  devices = [d for d in (flags.devices or "").split(",") if d]
  deadline = time.time() + flags.deadline_s if flags.deadline_s else None
  # A signal stops the runs (run_all) but not the reading and the export:
  # the finished runs are what a preempted call brings back.
  with preempt.Preemption(hosts=1):
    failures = run_all(study, _worker_args(sys.argv[1:]), workdir,
                       parallel=flags.parallel, devices=devices, deadline=deadline,
                       arms=flags.arms)
    result = finish(study, workdir, n_boot=flags.n_boot)
    print(format_result(result))
    print(f"written: {workdir / 'study.json'}, {workdir / 'study.png'}")
    if flags.export:
      export(result, workdir, pathlib.Path(flags.export), stem=study.name)
      print(f"exported to {flags.export}")
  if failures:
    print(f"runs that failed (see runs/NAME/log.txt): {', '.join(failures)}",
          file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  FLAGS = _flags()
  command.run(main, experiment=True)
