"""The benchmark scripts' --tiny smoke runs: they run and write their JSON."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO


# Smoke runs measure nothing: compile fast rather than well.
FAST_COMPILE = (" --xla_backend_optimization_level=0"
                " --xla_llvm_disable_expensive_passes=true")


def run_tiny(script, out):
  env = {**os.environ, "PYTHONPATH": str(REPO),
         "XLA_FLAGS": os.environ.get("XLA_FLAGS", "") + FAST_COMPILE}
  subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "--tiny",
                  "--out", str(out)], check=True, env=env, cwd=REPO,
                 timeout=600)
  return json.loads(out.read_text())


@pytest.mark.slow
def test_benchmarks_tiny_runs_write_every_field(tmp_path):
  speed = run_tiny("train_speed.py", tmp_path / "speed.json")
  assert {"machine", "jax", "matmul_bf16_tflops", "runs"} <= set(speed)
  assert {r["impl"] for r in speed["runs"]} == {"growjax", "plain"}
  for r in speed["runs"]:
    assert not r.get("error"), r
    assert {"impl", "size", "params", "seq_len", "batch", "remat",
            "tokens_per_s", "model_tflops", "mfu_vs_peak", "mfu_vs_matmul",
            "peak_memory_gib"} <= set(r)
    assert r["tokens_per_s"] > 0 and r["loss"] > 0
  scaling = run_tiny("scaling.py", tmp_path / "scaling.json")
  runs = scaling["runs"]
  assert [(r["gpus"], r["mesh"]["data"], r["mesh"]["fsdp"]) for r in runs] == [
      (1, 1, 1), (2, 2, 1), (2, 1, 2)]
  for r in runs:
    assert not r.get("error"), r
    assert {"size", "tokens_per_s", "mfu_vs_peak",
            "scaling_efficiency"} <= set(r)
  assert runs[0]["scaling_efficiency"] is None
  assert all(r["scaling_efficiency"] > 0 for r in runs[1:])
  largest = scaling["largest_fsdp2"]
  assert largest["trained"] == largest["predicted"] == "tiny-2x"
  assert not largest["next_size"]["fits"]
  grown = scaling["growth"]
  # msg at mask 0 keeps the function: float32 up to rounding
  assert abs(grown["loss_after_float32"] - grown["loss_before_float32"]) < 1e-4
