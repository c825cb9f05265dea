"""Multi-host, proven on one machine: two JAX processes of 4 CPU devices each.

`python -m growjax.launch --processes 2 --devices 4` runs the trainer as two
processes that find each other through a coordinator on localhost and
all-reduce through JAX's CPU collectives (gloo): the runtime of a TPU pod or
a GPU cluster, with the (data 8) mesh spanning both processes. One tiny
experiment (tests/multihost_experiment.py: 4 steps, a growth, 4 steps) is
trained four ways that share one workdir, to keep CI's cost to two
two-process runs:

  1. two processes, killed (SIGKILL, both) mid-stage 0;
  2. two processes again: resumes, grows, and SIGTERM reaches process 1 only:
     both agree on a step, save and exit 0;
  3. one process of 8 devices (this pytest process) restores that checkpoint
     across the different process layout and finishes;

and the metrics of 1-3 must be those of one uninterrupted run of one process
with 8 devices, to float32 rounding. Process 1's writes are recorded by an
audit hook (tests/multihost_writes.py): it writes nothing into the workdir
but its own shards of each checkpoint.
"""

import json
import os
import pathlib
import queue
import signal
import subprocess
import sys
import threading
import time
import types

import jax
import numpy as np
import pytest

from growjax import checkpoint, command, data, lock, parallel
from growjax.experiment import Experiment
from growjax.train import loop
from growjax.train import metrics as metrics_lib

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIG = "tests/multihost_experiment.py"
# What a run computes; the rest of a metrics line is timing.
COMPUTED = ("step", "stage", "event", "loss", "lr", "grad_norm", "tokens",
            "train_flops", "skipped_steps", "val_loss", "val_loss_se",
            "val_chunks", "method", "loss_before", "loss_after")

pytestmark = pytest.mark.slow


# ------------------------------------------------------------- launcher --
def launcher(*args, **kw):
  return subprocess.run([sys.executable, "-m", "growjax.launch", *args],
                        cwd=REPO, capture_output=True, text=True, timeout=120, **kw)


def test_launch_sets_each_process_its_place_and_prefixes_its_lines():
  show = ("import os; print(*(os.environ[k] for k in ('JAX_COORDINATOR_ADDRESS', "
          "'JAX_NUM_PROCESSES', 'JAX_PROCESS_ID', 'JAX_NUM_CPU_DEVICES', "
          "'JAX_PLATFORMS')))")
  out = launcher("--processes", "3", "--devices", "2", "--", sys.executable, "-c", show)
  assert out.returncode == 0, out.stderr
  lines = sorted(out.stdout.splitlines())
  assert [l.split()[0] for l in lines] == ["[p0]", "[p1]", "[p2]"]
  address = lines[0].split()[1]
  assert address.startswith("127.0.0.1:")
  assert lines == [f"[p{k}] {address} 3 {k} 2 cpu" for k in range(3)]
  assert "growjax.launch: 3 processes of 2 cpu devices" in out.stderr


def test_launch_stops_the_others_when_one_fails_and_exits_with_its_status():
  body = ("import os, sys, time; k = int(os.environ['JAX_PROCESS_ID']); "
          "print('up', flush=True); time.sleep(0.5); "
          "sys.exit(3) if k == 1 else time.sleep(120)")
  began = time.monotonic()
  out = launcher("--processes", "3", "--devices", "1", "--grace", "2", "--",
                 sys.executable, "-c", body)
  assert out.returncode == 3
  assert time.monotonic() - began < 60  # the sleepers were stopped
  assert sorted(out.stdout.split()) == ["[p0]", "[p1]", "[p2]", "up", "up", "up"]
  assert "process 1 exited with status 3; stopping the 2 still running" in out.stderr


def test_ctrl_c_reaches_every_process_as_sigterm():
  body = ("import signal, sys, time; signal.signal(signal.SIGTERM, lambda *a: "
          "(print('SIGTERM', flush=True), sys.exit(0))); print('up', flush=True); "
          "time.sleep(120)")
  p = subprocess.Popen(
      [sys.executable, "-m", "growjax.launch", "--processes", "2", "--devices", "1",
       "--", sys.executable, "-c", body], cwd=REPO, stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True)
  assert sorted(p.stdout.readline() for _ in range(2)) == ["[p0] up\n", "[p1] up\n"]
  p.send_signal(signal.SIGINT)
  out, err = p.communicate(timeout=60)
  assert p.returncode == 0, err
  assert sorted(out.split()) == ["SIGTERM", "SIGTERM", "[p0]", "[p1]"]


def test_launch_on_gpus_gives_each_process_its_own_gpus():
  from growjax import launch  # pylint: disable=g-import-not-at-top
  envs = [launch.process_env({"JAX_PROCESS_ID": "7", "PATH": "/bin"}, index=k,
                             processes=2, devices=4, port=1234, platform="gpu")
          for k in range(2)]
  assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["0,1,2,3", "4,5,6,7"]
  assert [e["JAX_PROCESS_ID"] for e in envs] == ["0", "1"]
  assert all(e["PATH"] == "/bin" and "JAX_PLATFORMS" not in e for e in envs)


def test_launch_without_a_command_is_a_usage_error():
  out = launcher("--processes", "2", "--devices", "4")
  assert out.returncode == 2
  assert "no command" in out.stderr
  out = launcher("--processes", "2", "--devices", "4", "--", "no-such-command-here")
  assert out.returncode == 127
  assert out.stderr.splitlines() == [
      "growjax.launch: cannot start 'no-such-command-here': No such file or directory"]


# ------------------------------------------------- each process's rows --
def fake_mesh(processes, **shape):
  """A mesh's shape, axis names and devices (each with its process_index,
  laid process-major as make_mesh lays them), without the devices."""
  n = int(np.prod(list(shape.values())))
  devices = np.array([types.SimpleNamespace(process_index=i * processes // n)
                      for i in range(n)], dtype=object)
  return types.SimpleNamespace(shape=dict(shape), axis_names=tuple(shape),
                               devices=devices.reshape(tuple(shape.values())))


@pytest.mark.parametrize("processes, shape", [
    (2, dict(data=8, fsdp=1, tensor=1)),
    (2, dict(data=2, fsdp=1, tensor=4)),
    (2, dict(data=1, fsdp=4, tensor=2)),
    (4, dict(data=2, fsdp=2, tensor=2)),
    (8, dict(data=8, fsdp=1, tensor=1)),
])
def test_each_process_feeds_the_block_of_rows_its_devices_hold(processes, shape):
  mesh = fake_mesh(processes, **shape)
  assert [parallel.process_rows(mesh, process=k) for k in range(processes)] == [
      (k, processes) for k in range(processes)]


def test_a_mesh_whose_processes_would_feed_the_same_rows_is_refused():
  with pytest.raises(ValueError, match=r"processes 0 and 1 would feed the same "
                     r"rows.*keep mesh.tensor within one process's 4 devices"):
    parallel.process_rows(fake_mesh(2, data=1, fsdp=1, tensor=8))
  interleaved = fake_mesh(2, data=4, fsdp=1, tensor=2)
  for i, d in enumerate(interleaved.devices.flat):
    d.process_index = (i // 2) % 2  # process 0 holds data rows 0 and 2
  with pytest.raises(ValueError, match=r"batch shards \[0, 2\] are not one block"):
    parallel.process_rows(interleaved)


@pytest.fixture(scope="module")
def exp_config(data_dir):
  """The experiment, its data in the session's cache ($GROWJAX_DATA_DIR: a
  data.dir would make it another experiment than the launched runs')."""
  with pytest.MonkeyPatch.context() as mp:
    mp.setenv("GROWJAX_DATA_DIR", str(data_dir))
    yield command.load_experiment(str(REPO / CONFIG))


def test_each_process_reads_its_rows_and_together_they_are_the_whole_batch(
    exp_config):
  """Every process of 2, 4 and 8 reads only its block of each global batch
  (data.batches at process_rows' block) and the blocks, in process order,
  are the single-process batches row for row, across a change of batch
  size as between stages."""
  exp = Experiment.from_config(exp_config, n_devices=8)
  corpus = data.prepare(exp.data)

  def stream(index, count, batch_size, state=None):
    it = data.batches(corpus, "train", seq_len=exp.seq_len, batch_size=batch_size,
                      seed=exp.seed, shard_index=index, shard_count=count)
    if state:
      it.set_state(state)
    return it

  single = stream(0, 1, 8)
  want = [next(single) for _ in range(3)]
  state = single.get_state()
  want += [next(stream(0, 1, 16, state))]
  for processes in (2, 4, 8):
    mesh = fake_mesh(processes, data=8, fsdp=1, tensor=1)
    blocks = [parallel.process_rows(mesh, process=k) for k in range(processes)]
    its = [stream(k, n, 8) for k, n in blocks]
    got = [np.concatenate([next(it) for it in its]) for _ in range(3)]
    assert all(it.get_state() == state for it in its)
    got += [np.concatenate([next(stream(k, n, 16, state)) for k, n in blocks])]
    for g, w in zip(got, want):
      assert g.shape == w.shape and (g == w).all()
    assert next(its[0]).shape == (8 // processes, exp.seq_len + 1)


# ------------------------------------------------------- two processes --
def child_env(data_dir, workdir, writes_log, pause_at=None):
  # the children share a compilation cache of their own, not the pytest
  # process's (several processes writing one cache while it compiles too)
  out = dict(os.environ, XLA_FLAGS="", GROWJAX_DATA_DIR=str(data_dir),
             JAX_COMPILATION_CACHE_DIR=str(pathlib.Path(
                 jax.config.jax_compilation_cache_dir) / "multihost_children"),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
             GROWJAX_TEST_WRITES_UNDER=str(workdir),
             GROWJAX_TEST_WRITES_LOG=str(writes_log))
  out.pop("GROWJAX_TEST_PAUSE_AT", None)
  if pause_at:
    out["GROWJAX_TEST_PAUSE_AT"] = pause_at
  return out


class Launched:
  """`growjax.launch --processes 2 --devices 4` of the trainer, its stderr
  read line by line (each line prefixed by its process)."""

  def __init__(self, env, workdir, *flags):
    self.proc = subprocess.Popen(
        [sys.executable, "-m", "growjax.launch", "--processes", "2",
         "--devices", "4", "--", sys.executable, "tests/multihost_writes.py",
         "growjax.main", "--config", CONFIG, "--workdir", str(workdir), *flags],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    self.lines, self.stderr = queue.Queue(), []
    threading.Thread(target=self._read, daemon=True).start()
    self.wait_for("growjax.launch: 2 processes")
    self.pids = [int(p) for p in self.stderr[-1].split("pids")[1].split()]

  def _read(self):
    for line in self.proc.stderr:
      self.lines.put(line)
    self.lines.put(None)

  def wait_for(self, *markers, timeout=600):
    """Reads stderr until a line has held each of `markers`."""
    left = set(markers)
    while left:
      line = self.lines.get(timeout=timeout)
      if line is None:
        raise AssertionError(f"ended before {left}:\n" + "".join(self.stderr[-40:]))
      self.stderr.append(line)
      left = {m for m in left if m not in line}

  def finish(self, timeout=600):
    out = self.proc.stdout.read()
    rc = self.proc.wait(timeout=timeout)
    while (line := self.lines.get(timeout=60)) is not None:
      self.stderr.append(line)
    return rc, out, "".join(self.stderr)


def computed(workdir):
  return [{k: r[k] for k in COMPUTED if k in r} for r in metrics_lib.read(workdir)]


@pytest.fixture(scope="module")
def reference(exp_config, tmp_path_factory):
  """One uninterrupted run: one process, 8 devices (this one)."""
  workdir = tmp_path_factory.mktemp("multihost") / "reference"
  loop.run(Experiment.from_config(exp_config, n_devices=8), workdir)
  return workdir


@pytest.fixture(scope="module")
def interrupted(data_dir, exp_config, tmp_path_factory):
  """Two processes killed mid-stage 0; two processes resumed and stopped by
  SIGTERM to process 1 in stage 1; one process of 8 devices to the end."""
  root = tmp_path_factory.mktemp("multihost")
  workdir, writes = root / "run", root / "writes"
  began = time.perf_counter()
  run = Launched(child_env(data_dir, workdir, writes, pause_at="step@3"), workdir)
  run.wait_for("[p0] GROWJAX_PAUSED step@3", "[p1] GROWJAX_PAUSED step@3")
  for pid in run.pids:  # both hosts lost at once, mid-stage
    os.kill(pid, signal.SIGKILL)
  killed = run.finish()
  run = Launched(child_env(data_dir, workdir, writes), workdir)
  run.wait_for("[p1] grew into stage 1")
  os.kill(run.pids[1], signal.SIGTERM)  # one host is preempted
  preempted = run.finish()
  two_processes = time.perf_counter() - began
  summary = loop.run(Experiment.from_config(exp_config, n_devices=8), workdir)
  return types.SimpleNamespace(
      workdir=workdir, killed=killed, preempted=preempted, summary=summary,
      seconds=two_processes,
      writes={k: [json.loads(l) for l in pathlib.Path(f"{writes}.p{k}").read_text().splitlines()]
              for k in (0, 1)})


def test_two_processes_killed_resumed_and_finished_on_one_match_one_process(
    reference, interrupted):
  """Losses, gradients, validation and growth of the two-process run (killed,
  resumed, preempted, finished on one process) are the one-process run's to
  float32 rounding, each step logged once."""
  rc, _, err = interrupted.killed
  assert rc == 128 + signal.SIGKILL, err[-3000:]
  _, _, err = interrupted.preempted
  # from the newest checkpoint written before the kill: step 0, or 2 when
  # its asynchronous save had finished
  resumed = sorted(l for l in err.splitlines() if "resuming from" in l)
  assert resumed in ([f"[p0] resuming from stage 0 step {s}",
                      f"[p1] resuming from stage 0 step {s}"] for s in (0, 2)), resumed
  assert interrupted.summary["stopped"] is False
  got, want = computed(interrupted.workdir), computed(reference)
  assert [(r["step"], r.get("event")) for r in got] == [
      (r["step"], r.get("event")) for r in want]
  for g, w in zip(got, want):
    assert g.keys() == w.keys()
    for key in g:
      if isinstance(g[key], str):
        assert g[key] == w[key]
      else:
        np.testing.assert_allclose(g[key], w[key], rtol=2e-6, err_msg=f"{key} {g}")
  print(f"two-process runs: {interrupted.seconds:.0f} s")


def test_sigterm_to_one_process_stops_both_at_one_step_saved_exit_0(interrupted):
  rc, out, err = interrupted.preempted
  assert rc == 0, err[-3000:]
  stopped = [l for l in out.splitlines() if "by SIGTERM, checkpoint saved" in l]
  assert sorted(l[:4] for l in stopped) == ["[p0]", "[p1]"]
  step = int(stopped[0].split("stopped at step ")[1].split()[0])
  assert stopped[1].split("] ", 1)[1] == stopped[0].split("] ", 1)[1]
  assert 4 <= step < 8  # in stage 1, before its end
  assert (checkpoint.stage_dir(interrupted.workdir, 1) / str(step) / "meta").exists()
  assert f"[p0] stage 1: SIGTERM at step {step}: saved, stopping" in err
  assert f"[p1] stage 1: SIGTERM at step {step}: saved, stopping" in err


def test_only_process_0_writes_into_the_workdir(interrupted):
  """Process 1 writes only its own shards' metadata inside checkpoints being
  written; metrics, plots, the lock, experiment.json are process 0's."""
  theirs = interrupted.writes[1]
  assert theirs  # the hook ran
  for w in theirs:
    parts = pathlib.PurePath(w["path"]).parts
    assert parts[0] == "checkpoints" and parts[2].endswith(".orbax-checkpoint-tmp"), w
    assert parts[-1] == "process_1", w
  mine = {w["path"] for w in interrupted.writes[0]}
  assert {lock.NAME, "metrics.jsonl", "experiment.json", "config.json"} <= mine
  assert any(p.startswith("tb/") for p in mine)
  assert not (interrupted.workdir / lock.NAME).exists()


def test_a_tensor_axis_across_processes_is_refused_in_one_line_before_compiling(
    data_dir, tmp_path):
  workdir = tmp_path / "run"
  run = Launched(child_env(data_dir, workdir, tmp_path / "writes"), workdir,
                 "--config.mesh.data=1", "--config.mesh.tensor=8")
  rc, out, err = run.finish()
  assert rc == 2
  mine = {k: [l.split("] ", 1)[1] for l in err.splitlines()
              if l.startswith(f"[p{k}]") and "Gloo" not in l] for k in (0, 1)}
  want = ("error: mesh {'data': 1, 'fsdp': 1, 'tensor': 8} over 2 processes of 4 "
          "devices: processes 0 and 1 would feed the same rows of the batch, as an "
          "axis other than data and fsdp spans processes; keep mesh.tensor within "
          "one process's 4 devices")
  assert mine[0] == [want], err
  assert mine[1] in ([want], []), err  # [] where process 0's exit stopped it first
  assert not workdir.exists()
