r"""Trains an experiment: python -m growjax.main --config experiments/toy.py --workdir runs/toy

    --config experiments/toy.py:runlocal     a variant, through get_config(arg)
    --config.stages[0].tokens=100000         override any field
    --dry_run                                validate, print the plan, write WORKDIR/plan.json
    --stop_at_step N                         save and stop at global step N (resume by re-running)

A mistake in the experiment or the workdir is one line on stderr and exit
status 2 (the traceback with --verbose); nothing in the workdir changes.
"""

import importlib.util
import pathlib
import sys

from absl import app, flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Experiment file (experiments/X.py[:arg]).",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Where checkpoints, metrics and plots go.")
flags.DEFINE_bool("dry_run", False, "Validate and print the plan; train nothing.")
flags.DEFINE_integer("stop_at_step", None, "Save and stop at this global step.")
flags.DEFINE_bool("verbose", False, "Full tracebacks for errors.")
flags.mark_flags_as_required(["config", "workdir"])


def _config_path(argv) -> str | None:
  for i, arg in enumerate(argv):
    if arg.startswith("--config="):
      return arg.split("=", 1)[1]
    if arg == "--config" and i + 1 < len(argv):
      return argv[i + 1]
  return None


def _check_experiment_file(argv):
  """Names the file when it is missing or has no get_config."""
  spec = _config_path(argv)
  if spec is None:
    return
  path = pathlib.Path(spec.split(":", 1)[0])
  if not path.is_file():
    raise FileNotFoundError(f"experiment file {path}: not found")
  module_spec = importlib.util.spec_from_file_location("_experiment", path)
  module = importlib.util.module_from_spec(module_spec)
  try:
    module_spec.loader.exec_module(module)
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f"experiment file {path}: fails to import "
                     f"({type(e).__name__}: {e})") from e
  if not callable(getattr(module, "get_config", None)):
    raise ValueError(f"experiment file {path}: defines no get_config(arg=None)")


def _one_line(e: BaseException) -> str:
  """An error as one readable line (flag parsing nests and re-quotes it)."""
  text = str(e)
  for _ in range(3):  # undo the repr() that each re-raise wraps around it
    text = text.replace("\\\\n", "\n").replace("\\n", "\n").replace("\\'", "'")
    text = text.strip("'\"")
  lines = [l.strip().strip("'\"") for l in text.splitlines() if l.strip()]
  if isinstance(e, (KeyError, AttributeError)) and len(lines) == 1 and (
      " " not in lines[0]):  # ml_collections names only the missing key
    return f"--config override: {lines[0]!r} is not a field of the experiment"
  return " ".join(lines) or type(e).__name__


def parse_flags(argv):
  """absl's parser, with a one-line error for a bad --config (exit 2)."""
  verbose = any(a in ("--verbose", "--verbose=true", "--verbose=True") for a in argv)
  try:
    _check_experiment_file(argv)
    return FLAGS(argv)
  except Exception as e:  # pylint: disable=broad-except
    if verbose:
      raise
    message = str(e) if isinstance(e, (FileNotFoundError, ValueError)) and (
        str(e).startswith("experiment file")) else _one_line(e)
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv):
  del argv
  from growjax import cli  # pylint: disable=g-import-not-at-top
  cli.setup_logging()
  return cli.run(FLAGS.config, FLAGS.workdir, dry_run=FLAGS.dry_run,
                 stop_at_step=FLAGS.stop_at_step, verbose=FLAGS.verbose)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
