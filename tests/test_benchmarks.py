"""The benchmark scripts' --tiny smoke runs: they run and write their JSON."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO
from growjax import frontier
from growjax.study import rates


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


def test_hf_families_case_rows_against_the_numpy_reference(tmp_path):
  """One case of `hf_interop.py --families` in process: its random tensors
  come from the parameter table, and every row (import, msg and hyperclone
  growth, export) is within float32 tolerance. The GPU run found this script
  broken by a rename no test caught."""
  sys.path.insert(0, str(REPO / "benchmarks"))
  try:
    import hf_families  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.remove(str(REPO / "benchmarks"))
  import numpy as np  # pylint: disable=g-import-not-at-top
  tokens = np.random.default_rng(0).integers(0, 256, (2, 16))
  rows = hf_families.run_case("qwen2.5-0.5b", hf_families.NumpyReference(),
                              tokens=tokens, tolerance=1e-4,
                              bf16_tolerance=0.05, work=tmp_path)
  assert [(r["direction"], r["method"]) for r in rows] == [
      ("import", "none"), ("grow", "msg"), ("export", "msg"),
      ("grow", "hyperclone"), ("export", "hyperclone")]
  assert all(r["ok"] for r in rows), rows


def test_reread_frontier_reads_a_committed_export_again(tmp_path):
  # the committed regime-1 export, copied: its frontier read again from its
  # metrics alone gives one level per scratch FLOPs and keeps every run row
  import shutil  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, str(REPO / "benchmarks"))
  try:
    import reread_frontier  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.remove(str(REPO / "benchmarks"))
  stem = "growth_study_v2_r1"
  results = REPO / "benchmarks" / "results"
  shutil.copy(results / f"{stem}.json", tmp_path)
  shutil.copytree(results / "metrics" / stem, tmp_path / "metrics" / stem)
  before = json.loads((tmp_path / f"{stem}.json").read_text())
  after = reread_frontier.reread(tmp_path / f"{stem}.json", n_boot=20)
  f = after["frontier"]
  assert len(f["level_flops"]) == len(set(f["level_flops"])) == 3
  assert after["arms"] == before["arms"]
  assert after["rates"] == rates.sweeps(after["arms"])  # as the study stores it
  assert [e["family"] for e in after["rates"]][:3] == ["scratch", "scratch_cosine", "small_only"]
  assert f["notes"][-1] == reread_frontier.NOTE
  # branches at 50% and 75% and the finals: three scratch FLOPs, each once
  assert f["level_flops"] == sorted(f["level_flops"])
  assert f["verdict"]["answer"] in frontier.ANSWERS
  assert (tmp_path / f"{stem}.png").stat().st_size > 0
  # every run had the GPU to itself: the same reading in seconds, whose
  # levels are the FLOPs reading's (near-equal seconds count once)
  t = after["frontier_seconds"]
  assert t["cost"] == "seconds" and t["notes"][-1] == reread_frontier.NOTE
  assert t["levels"] == pytest.approx(f["levels"])
  # --plot_only redraws the png (2 x 2 panels: FLOPs and seconds, each
  # zoomed on the frontiers at the right) and leaves the JSON byte for byte
  text = (tmp_path / f"{stem}.json").read_text()
  (tmp_path / f"{stem}.png").unlink()
  reread_frontier.reread(tmp_path / f"{stem}.json", plot_only=True)
  assert (tmp_path / f"{stem}.json").read_text() == text
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(tmp_path / f"{stem}.png") as png:
    # 14 x 10 inches with the seconds' panels, 19 x 4.8 (4:1) without them
    assert 1.3 < png.size[0] / png.size[1] < 1.5
  # --config: the runs the study file plans and the export lacks (here
  # scratch's third seed, taken out of the copy) make the verdict provisional
  path = tmp_path / f"{stem}.json"
  gone = [a for a in before["arms"] if a["name"].startswith("scratch_lr0.002_s2")]
  assert len(gone) == 3  # the trunk and its two branches
  path.write_text(json.dumps(dict(before, arms=[a for a in before["arms"]
                                                if a not in gone])))
  v = reread_frontier.reread(path, n_boot=20, config=(
      f"{REPO / 'experiments' / 'growth_study_v2.py'}:regime=1"))["frontier"]["verdict"]
  assert set(v["pending"]) >= {a["name"] for a in gone}
  assert v["reasons"][0].startswith(f"provisional: {len(v['pending'])} planned")
  assert "scratch_lr0.002_s2," in v["reasons"][0]
  assert "scratch_lr0.002_s2_decay" not in v["reasons"][0]  # named by its trunk
  from growjax import report  # pylint: disable=g-import-not-at-top
  assert any(l.startswith(f"verdict: {v['answer']}, provisional") for l in
             report.frontier_lines(json.loads(path.read_text())["frontier"]))
