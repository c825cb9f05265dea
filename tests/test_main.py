"""The command line, as a user meets it: errors, dry runs, a whole toy run."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import pytest

from growjax import cost

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
  assert result.returncode == 2, result.stderr
  errors = [l for l in result.stderr.splitlines() if l.startswith("error: ")]
  assert len(errors) == 1, result.stderr
  assert "Traceback" not in result.stderr
  for f in fragments:
    assert f in errors[0], errors[0]


def test_missing_experiment_file(tmp_path):
  r = run("growjax.main", "--config", "experiments/nope.py", "--workdir", str(tmp_path / "w"))
  assert_one_line_error(r, "experiments/nope.py", "not found")
  assert not (tmp_path / "w").exists()


def test_experiment_without_get_config(tmp_path):
  f = tmp_path / "exp.py"
  f.write_text("x = 1\n")
  r = run("growjax.main", "--config", str(f), "--workdir", str(tmp_path / "w"))
  assert_one_line_error(r, str(f), "get_config")


def test_mistyped_override(tmp_path):
  r = run("growjax.main", "--config", "experiments/toy.py", "--config.stagse=1",
          "--workdir", str(tmp_path / "w"))
  assert_one_line_error(r, "stagse")


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


def test_toy_runlocal_trains_every_stage_and_reports(tmp_path):
  """The README's main command, shrunk by `runlocal`: progress, checkpoints,
  metrics, TensorBoard events and a plot; then the report command."""
  workdir = tmp_path / "toy"
  r = run("growjax.main", "--config", "experiments/toy.py:runlocal",
          "--workdir", str(workdir))
  assert r.returncode == 0, r.stderr[-3000:]
  for name in ("metrics.jsonl", "loss.png", "config.json", "experiment.json"):
    assert (workdir / name).exists(), name
  assert any((workdir / "tb").iterdir())
  assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == [
      "stage_0", "stage_1", "stage_2"]
  assert "checkpoints:" in r.stdout and "stage" in r.stdout
  growth = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()
            if '"growth"' in l]
  assert len(growth) == 2
  # the same command again resumes and finds nothing left to do
  again = run("growjax.main", "--config", "experiments/toy.py:runlocal",
              "--workdir", str(workdir))
  assert again.returncode == 0, again.stderr[-3000:]
  assert "resuming from stage 2" in again.stderr
  # another experiment in the same workdir is refused, nothing changes
  before = (workdir / "metrics.jsonl").read_text()
  other = run("growjax.main", "--config", "experiments/toy.py:runlocal,baseline",
              "--workdir", str(workdir))
  assert_one_line_error(other, "holds a different experiment")
  assert (workdir / "metrics.jsonl").read_text() == before
  rep = run("growjax.report", str(workdir), "--out", str(tmp_path / "r.png"),
            "--baseline", str(workdir))
  assert (tmp_path / "r.png").exists(), rep.stderr
