"""The comparison report: speedups read off logged validation curves."""

import json

import pytest

from growjax import report


def write_run(path, rows):
  path.mkdir()
  (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  return path


def rows(points, growth_at=()):
  out = [{"step": s, "stage": 0, "loss": l + 0.1, "val_loss": l, "tokens": s,
          "train_flops": f, "time": t} for s, (f, t, l) in enumerate(points, 1)]
  out += [{"event": "growth", "step": s, "stage": 1, "loss_before": 1.0,
           "loss_after": 1.0} for s in growth_at]
  return out


def test_speedup_is_read_where_the_grown_run_reaches_the_final_scratch_loss(tmp_path):
  scratch = write_run(tmp_path / "scratch", rows([(10, 1, 5.0), (20, 2, 4.0), (40, 4, 3.0)]))
  grown = write_run(tmp_path / "grown", rows([(5, 1, 4.5), (10, 2, 3.5), (20, 3, 2.5)],
                                             growth_at=[2]))
  result = report.compare([str(grown), str(scratch)])
  assert result["baseline"] == "scratch" and result["target_val_loss"] == 3.0
  r = result["runs"]["grown"]
  # 3.0 is halfway between 3.5 (10 FLOPs, 2 s) and 2.5 (20 FLOPs, 3 s)
  assert r["flops_to_target"] == pytest.approx(15.0)
  assert r["time_to_target"] == pytest.approx(2.5)
  assert r["flops_speedup"] == pytest.approx(40 / 15)
  assert "2.67x fewer" in report.format_comparison(result)
  png = report.plot([str(grown), str(scratch)], tmp_path / "r.png")
  assert png.stat().st_size > 10_000


def test_a_run_that_never_reaches_the_target_says_so(tmp_path):
  scratch = write_run(tmp_path / "scratch", rows([(10, 1, 3.0)]))
  grown = write_run(tmp_path / "grown", rows([(5, 1, 3.5)], growth_at=[1]))
  result = report.compare([str(grown), str(scratch)])
  assert result["runs"]["grown"]["flops_to_target"] is None
  assert "never reached" in report.format_comparison(result)


def test_report_command_refuses_a_directory_without_metrics(tmp_path, capsys):
  assert report.main([str(tmp_path)]) == 2
  assert "no metrics.jsonl" in capsys.readouterr().err
