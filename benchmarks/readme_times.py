r"""How long each README command takes on this machine, as a newcomer runs it.

    python benchmarks/readme_times.py                     # every command
    python benchmarks/readme_times.py --only runlocal,dry_run

Runs the README's commands in order from the repository root, their runs/
under a temporary directory, with an empty JAX compilation cache and (unless
--data-dir names one) an empty data directory, as on a fresh clone. For each:
its wall-clock and CPU seconds, its exit status and, for a training run, the
compile seconds and wall-clock time it logged (metrics.jsonl). Also times
`runlocal` a second time on the warm compilation cache, and the notebooks
(notebooks/execute.py, outputs not written back).

Writes benchmarks/results/readme_times.json (merging into the commands
already there, so a subset can be rerun) with the machine: CPU model, cores,
and the load average before and after each command, since a shared machine's
load stretches every time here.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "readme_times.json"

# (name, the README's command line). RUNS is the temporary runs/ directory.
COMMANDS = [  # in an order that lets a cut-short run time the most
    ("runlocal", "python -m growjax.main --config experiments/toy.py:runlocal "
                 "--workdir RUNS/toy_runlocal"),
    ("runlocal_again", "python -m growjax.main --config experiments/toy.py:runlocal "
                       "--workdir RUNS/toy_runlocal_again"),
    ("dry_run", "python -m growjax.main --config experiments/flm101b.py "
                "--workdir RUNS/flm101b --dry_run"),
    ("toy", "python -m growjax.main --config experiments/toy.py --workdir RUNS/toy"),
    ("eval_ppl", "python -m growjax.evaluate --workdir RUNS/toy --suite ppl"),
    ("eval_iq", "python -m growjax.evaluate --workdir RUNS/toy --suite iq "
                "--export-jsonl iq.jsonl"),
    ("sample", "python -m growjax.sample --workdir RUNS/toy --prompt 'def fib(n):' "
               "--max_new_tokens 64 --top_p 0.9"),
    ("eval_length", "python -m growjax.evaluate --workdir RUNS/toy --suite length"),
    ("notebook_toy", "python notebooks/execute.py notebooks/toy_growth.ipynb --no-write"),
    ("notebook_xpos", "python notebooks/execute.py "
                      "notebooks/xpos_extrapolation.ipynb --no-write"),
    ("study_runlocal", "python -m growjax.study --config "
                       "experiments/growth_study.py:runlocal --workdir RUNS/study"),
    ("toy_baseline", "python -m growjax.main --config experiments/toy.py:baseline "
                     "--workdir RUNS/toy_baseline"),
    ("report", "python -m growjax.report RUNS/toy RUNS/toy_baseline"),
]


def machine() -> dict:
  cpu = platform.processor()
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
  except OSError:
    pass
  return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
          "python": platform.python_version()}


def logged_times(workdir: pathlib.Path) -> dict:
  """compile_time and time of a run's last metrics line, if it has one."""
  path = workdir / "metrics.jsonl"
  if not path.exists():
    return {}
  rows = [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
  last = next((r for r in reversed(rows) if "compile_time" in r), None)
  return {} if last is None else {
      "compile_seconds": round(last["compile_time"], 1),
      "run_seconds_logged": round(last["time"], 1)}


def run(name: str, line: str, runs: pathlib.Path, env: dict) -> dict:
  argv = shlex.split(line.replace("RUNS", str(runs)))
  argv[0] = sys.executable if argv[0] == "python" else argv[0]
  load_before = os.getloadavg()
  cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
  began = time.perf_counter()
  done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True)
  seconds = time.perf_counter() - began
  cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
  entry = {"command": line.replace("RUNS/", "runs/"), "exit": done.returncode,
           "seconds": round(seconds, 1),
           "cpu_seconds": round(cpu.ru_utime - cpu_before.ru_utime
                                + cpu.ru_stime - cpu_before.ru_stime, 1),
           "load_before": [round(x, 2) for x in load_before],
           "load_after": [round(x, 2) for x in os.getloadavg()]}
  workdir = next((pathlib.Path(a) for a in argv if a.startswith(str(runs))), None)
  if workdir is not None and "growjax.main" in argv:  # a training run
    entry.update(logged_times(workdir))
  if done.returncode:
    entry["stderr_tail"] = done.stderr[-2000:]
  return entry


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--only", help="comma-separated command names "
                      f"(of {', '.join(n for n, _ in COMMANDS)})")
  parser.add_argument("--data-dir", help="reuse this data directory (default: "
                      "an empty one, as on a fresh clone)")
  parser.add_argument("--runs", help="keep the runs here (default: a "
                      "temporary directory, removed after)")
  parser.add_argument("--note", help="a word on the machine (e.g. that it "
                      "was shared), kept in the JSON")
  args = parser.parse_args(argv)
  names = [n for n, _ in COMMANDS]
  only = args.only.split(",") if args.only else names
  unknown = sorted(set(only) - set(names))
  if unknown:
    parser.error(f"--only: unknown {', '.join(unknown)} (known: {', '.join(names)})")
  results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
  commands = results.get("commands", {})
  with tempfile.TemporaryDirectory(prefix="growjax_readme_") as tmp:
    runs = pathlib.Path(args.runs or tmp) / "runs"
    env = dict(os.environ, GROWJAX_JAX_CACHE=str(pathlib.Path(tmp) / "jax_cache"),
               GROWJAX_DATA_DIR=args.data_dir or str(pathlib.Path(tmp) / "data"))
    env.pop("JAX_COMPILATION_CACHE_DIR", None)  # growjax's own cache, empty
    for name, line in COMMANDS:
      if name not in only:
        continue
      entry = run(name, line, runs, env)
      entry["when"] = datetime.datetime.now(datetime.timezone.utc).isoformat(
          timespec="seconds")
      entry["data"] = "reused" if args.data_dir else "prepared from scratch"
      commands[name] = entry
      print(f"{name:>15}: {entry['seconds']:>7.1f} s wall, "
            f"{entry['cpu_seconds']:>7.1f} s CPU, load {entry['load_before'][0]:.1f}"
            + (f", compile {entry['compile_seconds']} s"
               if "compile_seconds" in entry else "")
            + (f"  EXIT {entry['exit']}" if entry["exit"] else ""), flush=True)
      results = {"machine": {**machine(), **(
          {"note": args.note} if args.note else
          {"note": results.get("machine", {}).get("note")})},
                 "commands": {
          n: commands[n] for n in names if n in commands}}
      RESULTS.parent.mkdir(parents=True, exist_ok=True)
      RESULTS.write_text(json.dumps(results, indent=1) + "\n")
  print(f"written: {RESULTS}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
