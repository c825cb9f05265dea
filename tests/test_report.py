"""The report command and its plots, on run directories written by hand."""

import json

import numpy as np

from growjax import report


def write_run(path, rows, config=None):
  path.mkdir()
  (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  if config is not None:
    (path / "config.json").write_text(json.dumps(config))
  return path


def rows(flops, losses, *, growth_at=(), chunks=True):
  """Training rows every step, validation (with se and 4 chunks) on each."""
  out = []
  for step, (f, l) in enumerate(zip(flops, losses), 1):
    r = {"step": step, "stage": 0, "loss": l + 0.1, "tokens": step,
         "train_flops": f, "time": 2.0 * step, "val_loss": l}
    if chunks:
      r.update(val_loss_se=0.01, val_chunks=[l - 0.02, l - 0.01, l + 0.01, l + 0.02],
               train_time=1.5 * step, compile_time=0.4)
    out.append(r)
    for g in growth_at:
      if g == step:
        out.append({"event": "growth", "step": g, "stage": 1, "method": "msg",
                    "loss_before": 1.0, "loss_after": 1.0, "seconds": 0.1})
  return out


FLOPS = list(np.arange(1, 9) * 10.0)
CURVE = [6.0, 5.0, 4.4, 4.0, 3.7, 3.5, 3.35, 3.3]


def test_report_command_compares_runs_and_writes_plot_and_json(tmp_path, capsys):
  scratch = write_run(tmp_path / "scratch", rows(FLOPS, CURVE),
                      {"seed": 0, "stages": [{"lr": {"peak": 1e-3}}]})
  grown = write_run(tmp_path / "grown", rows([f / 2 for f in FLOPS], CURVE, growth_at=[3]))
  out = tmp_path / "cmp.png"
  assert report.main([str(grown), str(scratch), "--out", str(out)]) == 0
  text = capsys.readouterr().out
  assert "interval over validation chunks" in text and "2.00x" in text
  result = json.loads(out.with_suffix(".json").read_text())
  assert result["baseline"] == "scratch"
  assert [s["flops_ratio"] for s in result["speedups"]] == [2.0, 2.0, 2.0]
  assert result["wall_clock"]["basis"] == "train_time"
  kinds = {a["name"]: (a["kind"], a["seed"], a["lr"]) for a in result["arms"]}
  assert kinds == {"grown": ("msg", None, None), "scratch": ("scratch", 0, 1e-3)}
  assert out.stat().st_size > 10_000


def test_baseline_is_the_only_scratch_arm_and_may_be_the_only_run(tmp_path):
  base = write_run(tmp_path / "base", rows(FLOPS, CURVE, chunks=False))
  small = write_run(tmp_path / "small", rows(FLOPS, [c + 0.2 for c in CURVE], chunks=False))
  result = report.compare([str(small)], baseline=str(base))
  assert {a["name"]: a["kind"] for a in result["arms"]} == {
      "small": "no_growth", "base": "scratch"}
  alone = report.compare([str(base)], baseline=str(base))
  assert alone["speedups"] == [] and alone["baseline"] == "base"


def test_report_command_without_a_scratch_run_asks_for_a_baseline(tmp_path, capsys):
  grown = write_run(tmp_path / "grown", rows(FLOPS, CURVE, growth_at=[3]))
  assert report.main([str(grown), "--out", str(tmp_path / "r.png")]) == 2
  assert "pass --baseline" in capsys.readouterr().err


def test_report_command_refuses_a_directory_without_metrics(tmp_path, capsys):
  assert report.main([str(tmp_path)]) == 2
  assert "no metrics.jsonl" in capsys.readouterr().err


def test_single_run_plot_draws_new_and_old_metrics(tmp_path):
  new = write_run(tmp_path / "new", rows(FLOPS, CURVE, growth_at=[3]))
  old = write_run(tmp_path / "old", rows(FLOPS, CURVE, chunks=False))
  for run in (new, old):
    png = report.plot_run(run, tmp_path / f"{run.name}.png")
    assert png.stat().st_size > 10_000


def test_best_per_family_picks_each_arms_best_rate_by_name_not_kind():
  def arm(name, kind, final, seeds=(0,)):
    return {"arm": name, "kind": kind, "seeds": list(seeds),
            "points": [{"flops": 1.0, "loss": final + 0.2}, {"flops": 2.0, "loss": final}]}
  frontier = {"arms": [
      arm("scratch_lr0.001", "scratch", 1.70), arm("scratch_lr0.002", "scratch", 1.66),
      arm("scratch_cosine", "scratch", 1.69),
      arm("msg_lr0.002", "msg", 1.67), arm("msg_lr0.004", "msg", 1.69),
      # flm grows by msg too: a family of its own, not msg's better rate
      arm("flm_lr0.002", "msg", 1.64),
      # a tie goes to the arm with more seeds
      arm("stack_lr0.002", "stack", 1.62), arm("stack_lr0.004", "stack", 1.62, (0, 1))]}
  assert report.best_per_family(frontier) == {
      "scratch_lr0.002", "scratch_cosine", "msg_lr0.002", "flm_lr0.002", "stack_lr0.004"}
