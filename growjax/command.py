"""One way to start a command: flags, logging, and a user's mistake in one line.

Every entry point (`python -m growjax.main`, `growjax.evaluate`,
`growjax.sample`, `benchmarks/extrapolation.py`) defines its absl flags and
ends with

    if __name__ == "__main__":
      command.run(main)                    # main() -> exit status (None: 0)

`run` parses the flags, sets up logging (growjax's progress lines on stderr,
without absl's and JAX's chatter) and calls `main()`. A user's mistake (an
experiment field, a checkpoint, a flag, a workdir: `USER_ERRORS`) and a run
that diverged are printed as one `error: ...` line on stderr with exit status
2; `--verbose` adds the traceback. Anything else is a bug and shows its
traceback: the set holds growjax's own error classes only, never a builtin
like ValueError or OSError, which JAX, numpy or a bug may raise.

`run(main, experiment=True)` adds the experiment flag, `--config FILE[:ARG]`
with `--config.FIELD=VALUE` overrides (ml_collections' syntax): the file is
loaded here, so a missing file, a missing `get_config` and an unknown field
are each named, and only then does `config_flags` apply the overrides.
`FLAGS.config` is the ConfigDict.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import pathlib
import re
import shlex
import sys
import traceback
from typing import Callable, Mapping

from absl import app, flags
import ml_collections
from ml_collections import config_flags
from ml_collections.config_flags import config_path

from growjax import blame
from growjax.checkpoint import CheckpointError
from growjax.experiment import ExperimentError
from growjax.hf import ConversionError
from growjax.lock import WorkdirError

FLAGS = flags.FLAGS
if "verbose" not in FLAGS:  # a command that defines its own (growjax.export)
  flags.DEFINE_bool("verbose", False, "Full tracebacks for errors.")


class UsageError(ValueError):
  """A flag, argument or path a user gave that does not fit; names it."""


# Mistakes a user makes, reported in one line (a run that diverged is an
# ExperimentError: its settings need a change); anything else is a bug.
USER_ERRORS = (ExperimentError, CheckpointError, UsageError, WorkdirError,
               ConversionError, flags.Error)


def setup_logging():
  """growjax's progress lines on stderr, without absl's and JAX's chatter."""
  from growjax import progress  # pylint: disable=g-import-not-at-top
  handler = progress.LogHandler(sys.stderr)  # never on a progress bar's line
  handler.setFormatter(logging.Formatter("%(message)s"))
  logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
  logging.getLogger("absl").setLevel(logging.ERROR)  # orbax's INFO lines
  logging.getLogger("jax").setLevel(logging.WARNING)  # backend probing


def use_compilation_cache():
  """JAX's persistent compilation cache in $GROWJAX_JAX_CACHE (default
  ~/.cache/growjax/jax; "off": none), unless JAX's own setting names one:
  a command run again loads its compiled programs instead of compiling."""
  import os  # pylint: disable=g-import-not-at-top
  where = os.environ.get("GROWJAX_JAX_CACHE",
                         str(pathlib.Path.home() / ".cache" / "growjax" / "jax"))
  if where == "off" or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    return
  import jax  # pylint: disable=g-import-not-at-top
  if not jax.config.jax_compilation_cache_dir:
    jax.config.update("jax_compilation_cache_dir", where)


@contextlib.contextmanager
def user_input(what: str = ""):
  """ValueErrors that growjax's checks raise while checking what a user gave
  become UsageErrors (prefixed by `what`); one raised inside a library (JAX,
  numpy) stays a bug with its traceback. Wrap argument checks, not
  computations."""
  try:
    yield
  except ValueError as e:
    if isinstance(e, USER_ERRORS) or not blame.raised_by_growjax(e):
      raise
    raise UsageError(f"{what}{e}") from e


def run(main: Callable[[], int | None], *, experiment: bool = False):
  """Parses the flags (and the experiment, with `experiment`), sets up
  logging, runs `main()` and exits with its status; 2 after a user error."""
  verbose = any(a in ("--verbose", "--verbose=true", "--verbose=True")
                for a in sys.argv)

  def parse(argv):
    with reported(verbose):
      if experiment:
        argv = _experiment_flag(argv)
      return FLAGS(argv)

  def body(argv):
    with reported(verbose):
      if len(argv) > 1:
        raise UsageError(f"unexpected arguments {argv[1:]}")
      setup_logging()
      use_compilation_cache()
      return main()

  app.run(body, flags_parser=parse)


@contextlib.contextmanager
def reported(verbose: bool = False):
  """A user error inside becomes one `error: ...` line on stderr and exit
  status 2 (after its traceback, when `verbose`); anything else propagates."""
  try:
    yield
  except USER_ERRORS as e:
    if verbose:
      traceback.print_exc()
    print("error: " + " ".join(str(e).split()), file=sys.stderr)
    sys.exit(2)


# ------------------------------------------------------------- experiment --
def load_experiment(spec: str):
  """`get_config(arg)` of an experiment file `FILE[:ARG]` (get_config() without
  ARG), each problem named: the file, then what is wrong with it."""
  path_text, sep, arg = spec.partition(":")
  path = pathlib.Path(path_text)
  if not path.is_file():
    raise UsageError(f"experiment file {path}: not found")
  module_spec = importlib.util.spec_from_file_location(
      f"growjax_experiment_{path.stem}", path)
  module = importlib.util.module_from_spec(module_spec)
  try:
    module_spec.loader.exec_module(module)
  except Exception as e:  # pylint: disable=broad-except
    raise UsageError(f"experiment file {path}: fails to import "
                     f"({type(e).__name__}: {e})") from e
  get_config = getattr(module, "get_config", None)
  if not callable(get_config):
    raise UsageError(f"experiment file {path}: defines no get_config(arg=None)")
  try:
    config = get_config(arg) if sep else get_config()
  except ExperimentError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise UsageError(f"experiment file {path}: get_config({arg!r}) fails "
                     f"({type(e).__name__}: {e})") from e
  if isinstance(config, ml_collections.ConfigDict):
    return config
  if isinstance(config, Mapping):
    return ml_collections.ConfigDict(config)
  raise UsageError(f"experiment file {path}: get_config({arg!r}) returns "
                   f"{config!r}, not a ConfigDict")


_OVERRIDE = re.compile(r"--config\.([^=\s]+)(?:=.*)?$")


def _experiment_flag(argv: list[str]) -> list[str]:
  """Loads `--config FILE[:ARG]`, checks that every `--config.FIELD`
  override names a field, and defines FLAGS.config with the overrides;
  returns argv without `--config FILE`."""
  spec, rest, i = None, [], 0
  while i < len(argv):
    arg = argv[i]
    if arg == "--config" and i + 1 < len(argv):
      spec, i = argv[i + 1], i + 2
      continue
    if arg.startswith("--config="):
      spec = arg.split("=", 1)[1]
    else:
      rest.append(arg)
    i += 1
  if spec is None:
    if any(a.split("=")[0] in ("--help", "--helpshort", "--helpfull")
           for a in rest):
      return rest  # absl prints the other flags
    raise UsageError("--config: missing (an experiment file, e.g. "
                     "--config experiments/toy.py)")
  config = load_experiment(spec)
  for arg in rest:
    match = _OVERRIDE.match(arg)
    if match:
      try:
        config_path.get_type(match.group(1), config)
      except (KeyError, AttributeError, IndexError) as e:
        raise UsageError(f"--config.{match.group(1)}: not a field of the "
                         f"experiment ({_missing(match.group(1), config) or _reason(e)})"
                         ) from None
  config_flags.DEFINE_config_dict("config", config, "The experiment.",
                                  lock_config=True, sys_argv=rest)
  return rest


def under(workdir, path) -> pathlib.Path | None:
  """Where a file a command writes goes: `path` if absolute, else under
  `workdir` (so nothing lands in the directory the command was run from)."""
  if path is None:
    return None
  path = pathlib.Path(path)
  return path if path.is_absolute() else pathlib.Path(workdir) / path


def invocation(*, without: tuple[str, ...] = ()) -> str:
  """The command line this process was started with, as a user would type
  it again (`python -m MODULE ARGS`), less the flags named in `without`."""
  main = sys.modules.get("__main__")
  module = getattr(getattr(main, "__spec__", None), "name", None)
  args, rest = [], iter(sys.argv[1:])
  for arg in rest:
    name = arg.split("=", 1)[0]
    if name in without:
      if "=" not in arg:
        next(rest, None)  # its value
      continue
    args.append(arg)
  head = ["python", "-m", module] if module else ["python", sys.argv[0]]
  return shlex.join(head + args)


def _missing(path: str, config) -> str | None:
  """The first part of a dotted `path` (`stages[1].model.d_mdoel`) that
  `config` lacks, with the closest names at that depth; None if none is
  missing."""
  import difflib  # pylint: disable=g-import-not-at-top
  node, walked = config, ""
  for name, index in re.findall(r"([^.\[\]]+)|\[(-?\d+)\]", path):
    where = walked or "the experiment"
    if name:
      if not hasattr(node, "keys"):
        return f"{where} is {type(node).__name__}, with no field {name!r}"
      keys = [str(k) for k in node.keys()]
      if name not in keys:
        close = difflib.get_close_matches(name, keys, n=1)
        hint = (f"; did you mean --config.{walked + '.' if walked else ''}{close[0]}?"
                if close else f" (its fields: {', '.join(sorted(keys))})")
        return f"{where} has no field {name!r}{hint}"
      node, walked = node[name], f"{walked}.{name}" if walked else name
    else:
      i = int(index)
      if not isinstance(node, (list, tuple)):
        return f"{where} is {type(node).__name__}, not a list"
      if not -len(node) <= i < len(node):
        return (f"{where} has {len(node)} entries ([0] to [{len(node) - 1}]), "
                f"no [{i}]")
      node, walked = node[i], f"{walked}[{i}]"
  return None


def _reason(e: BaseException) -> str:
  """The message inside an exception that wraps others (config_dict raises
  AttributeError(KeyError(message)))."""
  while e.args and isinstance(e.args[0], BaseException):
    e = e.args[0]
  text = e.args[0] if e.args and isinstance(e.args[0], str) else str(e)
  return "; ".join(" ".join(line.split()) for line in text.splitlines()
                   if line.strip())
