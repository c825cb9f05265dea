"""Runs many command lines in one warm interpreter (a test helper).

    python tests/cli_batch.py < cases.json > results.json

Each case, {"argv": ["growjax.main", "--config", ...], "watch": [path, ...]},
runs as `python -m growjax.main --config ...` would: in a child forked from
this process once the heavy libraries are imported (no JAX backend is started
before the fork, and no command's flags are defined), through
`runpy.run_module(..., run_name="__main__")`, with its own stdout and stderr.
A result holds the exit status, stdout, stderr and, for each watched path, a
hash of its tree (every name and every file's bytes) before and after.

Forking saves each case the ~3 s of imports; what those imports print is not
in a case's stderr, so tests/test_main.py runs a few cases as real
subprocesses too.
"""

import json
import os
import pathlib
import runpy
import sys
import tempfile
import traceback

# Libraries every command imports; none starts a thread or defines a flag.
import absl.app  # noqa: F401,E402  pylint: disable=unused-import
import flax  # noqa: F401  pylint: disable=unused-import
import jax  # noqa: F401  pylint: disable=unused-import
import ml_collections.config_flags  # noqa: F401  pylint: disable=unused-import
import optax  # noqa: F401  pylint: disable=unused-import
import orbax.checkpoint  # noqa: F401  pylint: disable=unused-import
import tensorboardX  # noqa: F401  pylint: disable=unused-import

import growjax.decode  # noqa: F401  pylint: disable=unused-import
import growjax.train.loop  # noqa: F401  pylint: disable=unused-import
import growjax.trained  # noqa: F401  pylint: disable=unused-import
from trees import tree_hash  # noqa: E402




def run_case(case: dict, out: str, err: str) -> int:
  """In the forked child: the command's exit status."""
  for fd, path in ((1, out), (2, err)):
    os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
  os.environ.update(case.get("env", {}))
  module, *args = case["argv"]
  sys.argv = [module, *args]
  try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    code = 0
  except SystemExit as e:  # as the interpreter treats it
    if e.code is None or isinstance(e.code, int):
      code = e.code or 0
    else:
      print(e.code, file=sys.stderr)
      code = 1
  except BaseException:  # pylint: disable=broad-except
    traceback.print_exc()
    code = 1
  sys.stdout.flush()
  sys.stderr.flush()
  return code


def main():
  cases = json.load(sys.stdin)
  results = []
  with tempfile.TemporaryDirectory() as tmp:
    out, err = os.path.join(tmp, "out"), os.path.join(tmp, "err")
    for case in cases:
      before = [tree_hash(p) for p in case.get("watch", [])]
      sys.stdout.flush()
      sys.stderr.flush()
      pid = os.fork()
      if pid == 0:
        os._exit(run_case(case, out, err))  # pylint: disable=protected-access
      _, status = os.waitpid(pid, 0)
      after = [tree_hash(p) for p in case.get("watch", [])]
      results.append({
          "status": os.waitstatus_to_exitcode(status),
          "stdout": pathlib.Path(out).read_text(),
          "stderr": pathlib.Path(err).read_text(),
          "unchanged": before == after})
  json.dump(results, sys.stdout)


if __name__ == "__main__":
  main()
