r"""A growth study: every arm of a growth-vs-scratch comparison, in one command.

    python -m growjax.study --config experiments/growth_study.py --workdir runs/study
    python -m growjax.study --config experiments/growth_study.py:runlocal --workdir /tmp/s

One study file (see experiments/growth_study.py) declares the shared setup
(`base`: data, the final model, batch size, mesh, eval, ...), the primary
budget (`budget_tokens` of the final shape, i.e. a FLOPs budget) and the arms:

  scratch     the final shape from scratch: a learning-rate sweep over `lrs`
              at the first seed, then the best rate at every other seed
  msg, stack, hyperclone, zero, ...
              grown arms: `model` is stage 0's shape, `stages` the growths;
              each stage spends a fraction (`flops`) of the budget
  small_only  stage 0's shape alone, trained for the whole budget: the control
              that says how much of a speedup is a small model being cheap,
              not growth

Each run trains in its own sub-workdir (WORKDIR/runs/NAME) through the same
trainer as `growjax.main`, one after the other or `--parallel N` at a time
(each in its own process, on the devices of `--devices`). A killed study
picks up where it stopped: finished runs are skipped, an unfinished one
resumes from its checkpoint. Grown and small-only runs stop early once their
smoothed validation loss reaches the best scratch run's final loss (when that
is known), or when the budget is spent, whichever comes first.

At the end it writes WORKDIR/study.json (the corpus's fingerprint, one row per
run, the speedup table per loss level with bootstrap CIs; see growjax.compare)
and WORKDIR/study.png.

The package, one idea per module:

  spec.py      the study file -> a validated `Study` and its `Run`s
  progress.py  what is done: the sweep's best rate, the target loss
  runner.py    training the runs: one in this process or several at once
  results.py   study.json, the speedup table and study.png
  __main__.py  the command
"""

from growjax.study.progress import best_lrs, is_done, smoothed_final, target_loss
from growjax.study.results import export, finish, format_result
from growjax.study.runner import run_all, run_one
from growjax.study.spec import GROWN, KINDS, Run, Study, StudyError

__all__ = ["GROWN", "KINDS", "Run", "Study", "StudyError", "best_lrs",
           "export", "finish", "format_result", "is_done", "run_all",
           "run_one", "smoothed_final", "target_loss"]
