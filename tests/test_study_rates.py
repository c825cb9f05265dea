"""The rate-sweep table of a study's runs (growjax.study.rates)."""

from growjax.study import rates


def _row(arm, lr, seed, final, smoothed=None, branch=None, kind="stack"):
  return {"arm": arm, "kind": kind, "param": "mup", "lr": lr, "seed": seed,
          "final_val_loss": final, "branch": branch,
          "smoothed_final_val_loss": final if smoothed is None else smoothed}


def test_sweeps_pick_the_studys_best_rate_and_name_the_grids_edge():
  rows = [
      _row("stack_lr0.001", 1e-3, 0, 1.70), _row("stack_lr0.002", 2e-3, 0, 1.62),
      _row("stack_lr0.004", 4e-3, 0, 1.65), _row("stack_lr0.002", 2e-3, 1, 1.64),
      # a decay branch is no sweep point, however low it ends
      _row("stack_lr0.001", 1e-3, 0, 1.50, branch="decay_at 0.5"),
      # the pick is by the smoothed final, as progress.best_lrs picks
      _row("msg_lr0.002", 2e-3, 0, 1.66, smoothed=1.70, kind="msg"),
      _row("msg_lr0.004", 4e-3, 0, 1.68, smoothed=1.67, kind="msg"),
      _row("scratch_cosine", 2e-3, 0, 1.69, kind="scratch")]
  stack, msg, cosine = rates.sweeps(rows)
  assert stack["family"] == "stack" and stack["best_lr"] == 2e-3
  assert stack["best_arm"] == "stack_lr0.002"  # the frontier's name: the plot bolds it
  assert stack["edge"] == "inside"
  assert [r["lr"] for r in stack["rates"]] == [1e-3, 2e-3, 4e-3]
  assert stack["rates"][0]["final"] == 1.70  # the trunk's, not the branch's
  assert stack["seeds"] == [0, 1] and abs(stack["mean"] - 1.63) < 1e-12
  assert msg["best_lr"] == 4e-3 and msg["edge"] == "high"
  assert cosine["edge"] is None and cosine["param"] == "mup"
  text = "\n".join(rates.lines([stack, msg, cosine]))
  assert "[0.002 1.6200]" in text and "2, 1.6300" in text
  assert "highest tried: higher untried" in text and "one rate" in text


def test_a_low_edge_and_no_rows():
  rows = [_row("flm_lr0.002", 2e-3, 0, 1.64), _row("flm_lr0.004", 4e-3, 0, 1.65)]
  assert rates.sweeps(rows)[0]["edge"] == "low"
  assert "lowest tried: lower untried" in "\n".join(rates.lines(rates.sweeps(rows)))
  assert rates.sweeps([]) == [] and rates.lines([]) == []
