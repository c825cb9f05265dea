"""The command line, as a user meets it: errors and dry runs, as real
subprocesses (tests/test_bad_input.py holds the table of mistakes; the toy
run end to end is tests/test_chaos.py's reference)."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def session_data_cache(data_dir, monkeypatch):
  """Runs prepare their corpora in the test session's cache, not ~/.cache."""
  monkeypatch.setenv("GROWJAX_DATA_DIR", str(data_dir))


def run(*args, cwd=REPO, timeout=600):
  env = dict(os.environ, XLA_FLAGS="", JAX_PLATFORMS="cpu",
             JAX_COMPILATION_CACHE_DIR=jax.config.jax_compilation_cache_dir,
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
  return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(result, *fragments):
  """Exit status 2 and exactly one line on stderr, the error (these run as
  real subprocesses, so whatever the imports print would show here too)."""
  assert result.returncode == 2, result.stderr
  lines = result.stderr.splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
  for f in fragments:
    assert f in lines[0], lines[0]


def test_missing_experiment_file(tmp_path):
  r = run("growjax.main", "--config", "experiments/nope.py", "--workdir", str(tmp_path / "w"))
  assert_one_line_error(r, "experiments/nope.py", "not found")
  assert not (tmp_path / "w").exists()


def test_shrinking_stage_is_refused_before_compute(tmp_path):
  workdir = tmp_path / "w"
  r = run("growjax.main", "--config", "experiments/toy.py",
          "--config.stages[1].model.d_model=32", "--workdir", str(workdir))
  assert_one_line_error(r, "stages[1].model.d_model: 32 < 64, a stage cannot shrink")
  assert not workdir.exists()


def test_verbose_shows_the_traceback(tmp_path):
  r = run("growjax.main", "--config", "experiments/toy.py",
          "--config.stages[1].model.d_model=32", "--workdir", str(tmp_path), "--verbose")
  assert r.returncode == 2 and "Traceback" in r.stderr


def test_flm101b_dry_run_agrees_with_the_papers_compute(tmp_path):
  r = run("growjax.main", "--config", "experiments/flm101b.py", "--workdir",
          str(tmp_path), "--dry_run")
  assert r.returncode == 0, r.stderr
  plan = json.loads((tmp_path / "plan.json").read_text())
  assert [round(s["params"] / 1e9) for s in plan["stages"]] == [16, 51, 102]
  from growjax import flm101b  # pylint: disable=g-import-not-at-top
  paper = [flm101b.flops_in(s["days"], flm101b.GPUS, s["tflops_per_gpu"])
           for s in flm101b.STAGES.values()]
  for stage, reported in zip(plan["stages"], paper):
    # wall-clock days include evaluation, checkpoints and growth: 5-13% more
    assert 1.0 <= reported / stage["train_flops"] <= 1.15
  assert plan["scratch_train_flops"] > plan["total_train_flops"]
  assert plan["mesh"] == {"data": 3, "fsdp": 16, "tensor": 4}
  assert "saving" in r.stdout and "16" in r.stdout
  # The comparison with the paper is printed and kept in plan.json: FLOPs
  # and GPU-hours per stage, the paper's figure beside each, the difference.
  compared = plan["paper"]
  for stage, reported in zip(compared["stages"], paper):
    assert stage["paper_flops"] == pytest.approx(reported)
    assert stage["flops_difference"] == pytest.approx(
        reported / stage["train_flops"] - 1)
  assert compared["total"]["paper_flops"] == flm101b.TOTAL_FLOPS
  assert round(compared["total"]["paper_gpu_hours"]) == 99_256
  assert "99,256" in r.stdout and "against the paper" in r.stdout
  assert f"{compared['stages'][1]['flops_difference']:+.1%}" in r.stdout


# The README's main command (the toy run) is tested end to end in
# tests/test_chaos.py, whose uninterrupted reference run it is.


def test_workdir_naming_a_file_is_one_line_and_the_file_is_untouched(tmp_path):
  """The issue's case: an OSError used to escape as a traceback."""
  f = tmp_path / "notes.txt"
  f.write_text("mine\n")
  r = run("growjax.main", "--config", "experiments/toy.py:runlocal",
          "--workdir", str(f))
  assert_one_line_error(r, f"workdir {f}: is a file, not a directory")
  assert f.read_text() == "mine\n"
