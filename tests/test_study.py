"""The growth study: its file is validated before any compute, every arm kind
runs on a CPU, a killed study resumes without rerunning finished arms."""

import json
import os
import pathlib
import re
import subprocess
import sys

import jax
import pytest

from growjax import frontier as frontier_lib
from growjax import study as study_lib

REPO = pathlib.Path(__file__).resolve().parents[1]
STUDY = REPO / "experiments" / "growth_study.py"
STUDY_V2 = REPO / "experiments" / "growth_study_v2.py"


@pytest.fixture(autouse=True)
def session_data_cache(data_dir, monkeypatch):
  monkeypatch.setenv("GROWJAX_DATA_DIR", str(data_dir))


def _config(arg="runlocal", path=STUDY):
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location("growth_study", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg).to_dict()


def _run(*args, timeout=900):
  env = dict(os.environ, XLA_FLAGS="", JAX_PLATFORMS="cpu",
             JAX_COMPILATION_CACHE_DIR=jax.config.jax_compilation_cache_dir,
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
  return subprocess.run([sys.executable, "-m", "growjax.study", *args], cwd=REPO,
                        env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("change, field", [
    (lambda c: c["arms"][0].update(colour="red"), "arms[0].colour"),
    (lambda c: c["arms"][0].update(lrs=[]), "arms[0].lrs"),
    (lambda c: c["arms"][1].update(seeds=[0, 0]), "arms[1].seeds"),
    (lambda c: c["arms"][1].update(kind="grow"), "arms[1].kind"),
    (lambda c: c["arms"][1]["stages"][1]["lr"].update(peak=1.0), "arms[1].stages[1].lr.peak"),
    (lambda c: c["arms"][1]["stages"][1].update(flops=2.0), "arms[1].stages[1].flops"),
    (lambda c: c.update(arms=[a for a in c["arms"] if a["kind"] != "scratch"]), "arms"),
    (lambda c: c["arms"][2].update(name="msg"), "arms[2].name"),
    (lambda c: c.update(budget_tokens=0), "budget_tokens"),
    # a grown arm sweeps its rate only under a run-level schedule
    (lambda c: c["arms"][1].update(lrs=[1e-3, 2e-3]), "arms[1].lrs"),
    (lambda c: c["arms"][-1].update(lrs=[1e-3, 1e-3]), "arms[-1].lrs"),
    (lambda c: c["arms"][-1].update(lrs=[1e-3]), "arms[-1].schedule.peak"),
])
def test_a_bad_study_file_is_named_before_any_compute(change, field):
  config = _config()
  change(config)
  field = field.replace("[-1]", f"[{len(config['arms']) - 1}]")
  with pytest.raises(study_lib.StudyError) as e:
    study_lib.Study.from_config(config)
  assert str(e.value).startswith(field + ":") or f" {field}" in str(e.value), str(e.value)
  assert "\n" not in str(e.value)


def test_runs_cover_every_arm_kind_within_the_budget():
  from growjax.experiment import Experiment  # pylint: disable=g-import-not-at-top
  study = study_lib.Study.from_config(_config())
  runs = study.runs()
  kinds = {r.kind for r in runs}
  assert kinds == {"scratch", "msg", "hyperclone", "stack", "small_only"}
  # the sweep lists each rate at the first seed; later seeds wait for the best
  assert sorted(r.lr for r in runs if r.arm == "scratch") == sorted(
      study.arms[0]["lrs"])
  # a run-level schedule with a re-warm, and decay branches from each trunk
  branches = {r.name: r.branch for r in runs if r.branch}
  assert branches == {
      "scratch_wsd_lr0.01_s0_decay0.5": dict(trunk="scratch_wsd_lr0.01_s0",
                                             at=0.5, start=24, end=30),
      "msg_wsd_s0_decay0.75": dict(trunk="msg_wsd_s0", at=0.75, start=67, end=84)}
  msg_wsd = Experiment.from_config(next(r for r in runs if r.name == "msg_wsd_s0").config)
  assert msg_wsd.schedule.rewarm_steps > 0 and msg_wsd.stages[1].lr_multiplier == 0.8
  assert len(study.runs({"scratch": study.arms[0]["lrs"][0]})) == len(runs) + 1
  from growjax import cost  # pylint: disable=g-import-not-at-top
  budget = study.budget_flops()
  for run in runs:
    exp = Experiment.from_config(run.config)
    flops = sum(cost.train_flops_per_token(s.model, exp.seq_len)
                * s.steps(exp.seq_len) * s.batch_size * exp.seq_len
                for s in exp.stages)
    assert flops <= budget * (1 + 1e-9), run.name


@pytest.mark.parametrize("arg", ["regime=1", "regime=2", "runlocal"])
def test_study_v2_declares_every_arm_within_the_budget_under_one_schedule(arg):
  from growjax import cost  # pylint: disable=g-import-not-at-top
  from growjax.experiment import Experiment  # pylint: disable=g-import-not-at-top
  study = study_lib.Study.from_config(_config(arg, STUDY_V2))
  best = {a["name"]: a["lrs"][-1] for a in study.arms}
  runs = study.runs(best)
  names = {r.arm for r in runs}
  assert names >= {"scratch", "small_only", "stack", "msg", "msg_late_depth", "flm"}
  # regime 2 is cut as the issue allows, short of device time: no HyperCloning
  # or cosine scratch, msg_late_depth at one rate and seed
  cut = {"hyperclone", "scratch_cosine"}
  assert names.isdisjoint(cut) if arg == "regime=2" else names >= cut
  if arg == "regime=2":
    assert sorted((r.seed, r.lr) for r in runs if r.arm == "msg_late_depth"
                  and r.branch is None) == [(0, 8e-3)]
  assert ("stack4" in names) == (arg == "regime=2")
  assert ("half_depth_only" in names) == (arg != "runlocal")
  if arg != "runlocal":  # stack's first stage alone, pooled with small-only
    half = next(a for a in study.arms if a["name"] == "half_depth_only")
    assert half["kind"] == "small_only" and half["model"] == {
        "n_layers": study.base["model"]["n_layers"] // 2}
    # its best sat at its grid's lower edge in both regimes: one rate lower
    assert half["lrs"][0] == {"regime=1": 1e-3, "regime=2": 4e-3}[arg]
    # regime 1's answer rests on stack against it: a third seed of each
    stack = next(a for a in study.arms if a["name"] == "stack")
    assert half["seeds"] == stack["seeds"] == (
        [0, 1, 2] if arg == "regime=1" else [0, 1])
  budget = study.budget_flops()
  for run in runs:
    exp = Experiment.from_config(run.config)
    steps = [s.steps(exp.seq_len) for s in exp.stages]
    flops = sum(cost.train_flops_per_token(s.model, exp.seq_len) * n * s.batch_size
                * exp.seq_len for s, n in zip(exp.stages, steps))
    assert flops <= budget * (1 + 1e-9), run.name
    if run.branch is None and run.arm != "scratch_cosine":
      # one WSD schedule per run, spanning its growths, the same shape for all
      assert (exp.schedule.kind, exp.schedule.decay_fraction) == ("wsd", 0.2)
      assert exp.schedule.peak == run.lr
    if run.arm == "flm" and run.branch is None:  # FLM-101B's token shares
      tokens = [n / sum(steps) for n in steps]
      assert tokens == pytest.approx([0.788, 0.127, 0.085], abs=0.002)
      assert [s.model.n_layers for s in exp.stages][1:] == [
          exp.stages[0].model.n_layers, 2 * exp.stages[0].model.n_layers]
  # each grown arm sweeps its rate at its first seed, then runs its best at
  # the others, every one of them with its decay branches
  msg = [r for r in runs if r.arm == "msg" and r.branch is None]
  lrs = next(a for a in study.arms if a["name"] == "msg")["lrs"]
  assert sorted((r.seed, r.lr) for r in msg) == sorted(
      [(0, lr) for lr in lrs] + [(s, lrs[-1]) for s in
                                 next(a for a in study.arms if a["name"] == "msg")["seeds"][1:]])
  # every trunk branches, a sweep's too (a split study can't wait for the
  # best rate: the trunk's checkpoints die with its machine)
  trunks = {r.branch["trunk"] for r in runs if r.branch and r.arm == "msg"}
  assert trunks == {r.name for r in msg}
  if arg == "regime=1":  # stack's and msg's best sat at their grid's edge
    assert {a["name"]: a["lrs"][0] for a in study.arms
            if a["name"] in ("stack", "msg", "flm")} == {
                "stack": 1e-3, "msg": 1e-3, "flm": 2e-3}
  if arg == "regime=2":  # muP relative to the small width; stack's edge
    assert {a["name"]: a["lrs"][0] for a in study.arms
            if a["name"] in ("stack", "msg", "stack4")} == {
                "stack": 4e-3, "msg": 8e-3, "stack4": 8e-3}
    assert all(Experiment.from_config(r.config).stages[-1].model.param == "mup"
               for r in runs)


def test_bad_study_file_on_the_command_line_is_one_line(tmp_path):
  r = _run("--config", f"{STUDY}:runlocal", "--config.arms[1].kind=grow",
           "--workdir", str(tmp_path / "w"))
  assert r.returncode == 2, r.stderr
  errors = [l for l in r.stderr.splitlines() if l.startswith("error: ")]
  assert len(errors) == 1 and "arms[1].kind: 'grow' is not one of" in errors[0], r.stderr
  assert "Traceback" not in r.stderr
  assert not (tmp_path / "w").exists()


@pytest.mark.slow
def test_runlocal_study_runs_every_arm_and_resumes(tmp_path):
  workdir = tmp_path / "study"
  # A study cut short after its first run: the rerun skips that run.
  first = study_lib.Study.from_config(_config()).runs()[0].name
  r = _run("--config", f"{STUDY}:runlocal", "--workdir", str(workdir), "--only", first)
  assert r.returncode == 0, r.stderr[-3000:]
  done = (workdir / "runs" / first / "metrics.jsonl").read_text()
  r = _run("--config", f"{STUDY}:runlocal", "--workdir", str(workdir))
  assert r.returncode == 0, r.stderr[-3000:]
  assert (workdir / "runs" / first / "metrics.jsonl").read_text() == done
  result = json.loads((workdir / "study.json").read_text())
  assert {a["kind"] for a in result["arms"]} == {
      "scratch", "msg", "hyperclone", "stack", "small_only"}
  for key in ("name", "files", "bytes", "tokens", "sha256"):
    assert key in result["corpus"]
  for arm in result["arms"]:
    rows = [json.loads(l) for l in (workdir / "runs" / arm["name"] / "metrics.jsonl")
            .read_text().splitlines()]
    steps = [row["step"] for row in rows if "event" not in row]
    assert steps == sorted(set(steps)), arm["name"]  # no step twice
  # decay branches ran from their trunks, and the frontier reads them
  branches = {a["name"]: a["trunk"] for a in result["arms"] if a["branch"]}
  assert branches == {"scratch_wsd_lr0.01_s0_decay0.5": "scratch_wsd_lr0.01_s0",
                      "msg_wsd_s0_decay0.75": "msg_wsd_s0"}
  assert {a["name"]: a["decay_at"] for a in result["arms"] if a["branch"]} == {
      "scratch_wsd_lr0.01_s0_decay0.5": 0.5, "msg_wsd_s0_decay0.75": 0.75}
  assert {a["param"] for a in result["arms"]} == {"sp"}
  frontier = result["frontier"]
  assert all(p["se"] > 0 for a in frontier["arms"] for p in a["points"])
  assert frontier["verdict"]["answer"] in frontier_lib.ANSWERS
  assert frontier["verdict"]["pending"] == []  # every planned run finished
  assert frontier["reading"].startswith("compute frontier")
  assert {(s["arm"], s["against"]) for s in frontier["speedups"]} >= {
      ("msg_wsd", "scratch"), ("msg_wsd", "small_only")}
  assert "compute frontier" in r.stdout
  levels = {s["level"] for s in result["speedups"]}
  assert len(levels) == 3 and all(
      s["flops_ratio"] is None or s["flops_ratio"] > 0 for s in result["speedups"])
  assert (workdir / "study.png").stat().st_size > 0
  assert "FLOPs ratio" in r.stdout
  # every arm family's sweep, stored and printed
  assert {e["family"] for e in result["rates"]} == {
      a["arm"].split("_lr")[0] for a in result["arms"]}
  assert "learning-rate sweeps" in r.stdout
  # each run alone on its device: the same reading in seconds, printed too
  assert result["frontier_seconds"]["cost"] == "seconds"
  assert "time frontier" in r.stdout
  # Off a terminal, progress is plain lines: the study's over runs, each
  # stage's over steps, never glued to a log line.
  lines = r.stderr.splitlines()
  assert any(re.match(r"study: \d+/\d+ run \(\d+%\) \[", l) for l in lines)
  assert any(re.match(r"stage 1: \d+/\d+ step", l) for l in lines)
  assert not any(re.search(r"\]\S", l) for l in lines if l.startswith("stage "))
  assert not result["notes"]  # one run at a time: nothing shared
  # each row names the devices its seconds are a fact about
  assert len({a["device"] for a in result["arms"]}) == 1
  assert result["arms"][0]["device"].endswith(" x cpu")
  assert {a["runs_at_once"] for a in result["arms"]} == {1}
  # Runs on another kind of device are left out of the seconds reading and
  # named beside it; with one sharing its device, no seconds are read.
  from growjax.study import results  # pylint: disable=g-import-not-at-top
  study = study_lib.Study.from_config(_config())
  done_json = workdir / "runs" / first / "done.json"
  record = json.loads(done_json.read_text())
  assert record["runs_at_once"] == 1  # as run_all's schedule.json said
  done_json.write_text(json.dumps(dict(record, device="1 x NVIDIA H200")))
  other = results.finish(study, workdir, n_boot=10)
  assert [n for n in other["notes"] if "different devices" in n and "H200" in n
          and n.endswith(first)]
  timed = other["frontier_seconds"]
  assert [n for n in timed["notes"] if "left out" in n and first in n]
  seeds = {k: {a["arm"]: a["seeds"] for a in other[k]["arms"]}
           for k in ("frontier", "frontier_seconds")}
  arm = next(a["arm"] for a in other["arms"] if a["name"] == first)
  assert 0 in seeds["frontier"][arm] and 0 not in seeds["frontier_seconds"].get(arm, [])
  done_json.write_text(json.dumps(dict(record, runs_at_once=2)))
  again = results.finish(study, workdir, n_boot=10)
  assert [n for n in again["notes"] if "shared their device" in n and first in n]
  # a run that shared its device is left out of the seconds, like one on
  # another kind, and kept in FLOPs
  shared = {a["arm"]: a["seeds"] for a in again["frontier_seconds"]["arms"]}
  assert arm in shared and 0 not in shared[arm] and 0 in seeds["frontier"][arm]
  # and the export keeps each study's metrics apart
  results.export(again, workdir, tmp_path / "out", stem=study.name)
  assert (tmp_path / "out" / "metrics" / study.name / f"{first}.jsonl").read_text() == done
  assert all(a["metrics"] == f"benchmarks/results/metrics/{study.name}/{a['name']}.jsonl"
             for a in again["arms"])
  # A study split over machines that share no disk: a fresh workdir resumes
  # from the export, with nothing left to train.
  r = _run("--config", f"{STUDY}:runlocal", "--workdir", str(tmp_path / "next"),
           "--arms", "nothing")
  assert r.returncode == 2 and "--arms: ['nothing'] are not arms" in r.stderr
  r = _run("--config", f"{STUDY}:runlocal", "--workdir", str(tmp_path / "next"),
           "--resume_from", str(tmp_path / "out"), "--arms", "scratch,msg")
  assert r.returncode == 0, r.stderr[-3000:]
  assert f"restored {len(again['arms'])} finished runs" in r.stdout
  assert not re.search(r"study: run \S+ \(", r.stderr)  # none trained
  # done.json names the study's arm, as a run trained here would
  done = [json.loads(p.read_text()) for p in (tmp_path / "next").glob("runs/*/done.json")]
  assert done and all("_lr" not in d["arm"] for d in done), done
  resumed = json.loads((tmp_path / "next" / "study.json").read_text())
  assert [a["name"] for a in resumed["arms"]] == [a["name"] for a in again["arms"]]
  # where each run trained, and with how many others, survives the export
  assert ([(a["device"], a["runs_at_once"]) for a in resumed["arms"]]
          == [(a["device"], a["runs_at_once"]) for a in again["arms"]])
  assert resumed["notes"] == again["notes"]
  assert resumed["frontier_seconds"]["notes"] == again["frontier_seconds"]["notes"]
  assert ([s["flops_ratio"] for s in resumed["frontier"]["speedups"]]
          == [s["flops_ratio"] for s in again["frontier"]["speedups"]])
  # A call whose scratch trunks have not finished still exports what did
  # finish (the next call resumes from it), with nothing read against.
  for d in workdir.glob("runs/scratch*/done.json"):
    d.unlink()
  partial = results.finish(study, workdir, n_boot=10)
  assert partial["arms"] and {a["kind"] for a in partial["arms"]} == {
      "msg", "hyperclone", "stack", "small_only"}
  assert partial["speedups"] == [] and "frontier" not in partial
  assert [n for n in partial["notes"] if "no scratch trunk" in n]
  results.export(partial, workdir, tmp_path / "partial", stem=study.name)
  assert "baseline None" in results.format_result(partial)


def test_seconds_compare_over_the_runs_alone_on_the_kind_most_trained_on():
  from growjax.study import results  # pylint: disable=g-import-not-at-top
  def row(name, kind="scratch", device="1 x H100", at_once=1, trunk=None):
    return dict(name=name, kind=kind, device=device, runs_at_once=at_once,
                trunk=trunk, branch="decay" if trunk else None)
  alone = [row("s0"), row("s1"), row("m0", "msg"), row("m0_d", "msg", trunk="m0")]
  assert results.seconds_rows(alone) == ({"s0", "s1", "m0", "m0_d"}, None)
  # shared runs and runs on another kind are left out and named; so is a
  # branch whose trunk is left out
  mixed = alone + [row("s2", at_once=2), row("h0", "msg", device="1 x H200"),
                   row("h0_d", "msg", at_once=1, trunk="h0")]
  names, note = results.seconds_rows(mixed)
  assert names == {"s0", "s1", "m0", "m0_d"}
  assert "1 of 7 runs shared their device" in note and "different devices" in note
  assert note.endswith("left out of it (the compute frontier has every run): "
                       "h0, h0_d, s2")
  # no scratch trunk left: no time frontier
  names, note = results.seconds_rows([row("s0", at_once=2), row("m0", "msg")])
  assert names is None and "compare FLOPs. Left out: s0" in note


def test_a_run_is_claimed_once_and_a_dead_owners_claim_is_taken_over(tmp_path):
  from growjax.study import runner  # pylint: disable=g-import-not-at-top
  run_dir = tmp_path / "runs" / "a"
  assert runner._claim(run_dir)
  assert not runner._claim(run_dir)  # held by a live process (this one)
  import socket  # pylint: disable=g-import-not-at-top
  (run_dir / "claim").write_text(f"{socket.gethostname()} 999999999")
  assert runner._claim(run_dir)  # its owner is gone
  runner._release(run_dir)
  assert not (run_dir / "claim").exists()


# Stand-in workers: each says it is up, notes every SIGTERM, and exits 0
# (as a preempted run does, having saved) half a second after the first.
_WORKER = """import pathlib, signal, sys, time
up, saved = map(pathlib.Path, sys.argv[1:])
signal.signal(signal.SIGTERM, lambda *a: saved.open("a").write("SIGTERM\\n"))
up.write_text("up")
while not saved.exists():
  time.sleep(0.01)
time.sleep(0.5)
"""


def test_a_signal_to_the_scheduler_reaches_each_worker_once_and_starts_nothing_more(
    tmp_path, monkeypatch):
  import signal  # pylint: disable=g-import-not-at-top
  import threading  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  from growjax.study import runner  # pylint: disable=g-import-not-at-top
  signals = tmp_path / "signals"
  signals.mkdir()
  monkeypatch.setattr(runner, "_worker_command", lambda args, name, target: [
      sys.executable, "-c", _WORKER, str(signals / f"{name}.up"),
      str(signals / f"{name}.saved")])

  def term_once_two_are_up():  # as study_call.sh's guard does
    give_up = time.time() + 120
    while len(list(signals.glob("*.up"))) < 2 and time.time() < give_up:
      time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGTERM)

  before = signal.getsignal(signal.SIGTERM)
  threading.Thread(target=term_once_two_are_up, daemon=True).start()
  workdir = tmp_path / "study"
  failures = runner.run_all(study_lib.Study.from_config(_config()), [], workdir,
                            parallel=2)
  up = sorted(p.stem for p in signals.glob("*.up"))
  assert len(up) == 2 and failures == []
  saved = {p.stem: p.read_text() for p in signals.glob("*.saved")}
  assert saved == {name: "SIGTERM\n" for name in up}  # each once
  assert not list(workdir.glob("runs/*/claim"))  # and its run released
  assert signal.getsignal(signal.SIGTERM) == before


def test_a_signal_between_runs_lets_the_run_finish_and_starts_nothing_more(
    tmp_path, monkeypatch):
  # A signal that lands outside a trainer's own handlers (a run's setup, its
  # last save) used to kill the study before its export (rc 143, a device
  # call's runs lost): the scheduler's handler now hears it.
  import signal  # pylint: disable=g-import-not-at-top
  from growjax.study import runner  # pylint: disable=g-import-not-at-top
  from growjax.train import preempt  # pylint: disable=g-import-not-at-top
  ran = []

  def run_one(study, run, workdir, target):
    ran.append(run.name)
    os.kill(os.getpid(), signal.SIGTERM)  # no trainer's handler installed
    (workdir / "runs" / run.name / "done.json").write_text("{}")
    return {"preempted": None}

  monkeypatch.setattr(runner, "run_one", run_one)
  before = signal.getsignal(signal.SIGTERM)
  study = study_lib.Study.from_config(_config())
  with preempt.Preemption(hosts=1) as stop:  # as the study's main holds it
    assert runner.run_all(study, [], tmp_path / "study") == []
    assert stop.signal == "SIGTERM" and len(ran) == 1  # that run, no other
    # while the study reads and exports, a signal is still heard, not fatal
    assert signal.getsignal(signal.SIGTERM) == stop._handle  # pylint: disable=protected-access
  assert signal.getsignal(signal.SIGTERM) == before
  ran.clear()  # without the caller's handlers, run_all's own hear it
  assert runner.run_all(study, [], tmp_path / "again") == [] and len(ran) == 1
  assert signal.getsignal(signal.SIGTERM) == before


def test_workers_get_the_study_flags_without_the_schedulers():
  import importlib  # pylint: disable=g-import-not-at-top
  main = importlib.import_module("growjax.study.__main__")
  argv = ["--config", "s.py:cpu", "--config.name=x", "--workdir", "w",
          "--parallel", "4", "--devices=0,1", "--export", "out", "--n_boot=10"]
  assert main._worker_args(argv) == ["--config", "s.py:cpu", "--config.name=x",
                                     "--workdir", "w"]


def _speedup(arm, ratio, low, high):
  return {"level": 3.5, "arm": arm, "flops_ratio": ratio, "ci_low": low,
          "ci_high": high, "reached": ratio is not None}


@pytest.mark.parametrize("ci_over", [["seeds"], ["seeds", "validation chunks"]])
def test_study_table_prints_a_dash_for_a_missing_bound_and_no_interval_from_one_seed(ci_over):
  from growjax.study import results  # pylint: disable=g-import-not-at-top
  result = {"baseline": "scratch", "levels": [3.5], "speedups": [
      _speedup("msg", 0.86, None, 1.21), _speedup("stack", 8.0, 8.0, 8.0),
      _speedup("hyperclone", None, None, None)],
            "comparison": {"ci_over": ci_over, "arm_stats": [
                {"arm": "scratch", "seeds": [0]}, {"arm": "msg", "seeds": [0, 1]},
                {"arm": "stack", "seeds": [0]}, {"arm": "hyperclone", "seeds": [0]}]}}
  rows = {line.split()[1]: line for line in results.format_result(result).splitlines()[2:]}
  assert "None" not in "".join(rows.values())
  assert "[-, 1.21]" in rows["msg"]
  if "validation chunks" in ci_over:  # chunks vary even one seed's ratio
    assert "[8.00, 8.00]" in rows["stack"]
  else:
    assert "one seed" in rows["stack"] and "[" not in rows["stack"]
  assert "not reached" in rows["hyperclone"] and "[" not in rows["hyperclone"]
