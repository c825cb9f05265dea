"""Runs a module as __main__ and records what it writes under a directory.

    GROWJAX_TEST_WRITES_UNDER=WORKDIR GROWJAX_TEST_WRITES_LOG=LOG \
        python tests/multihost_writes.py growjax.main --config ... --workdir WORKDIR

A Python audit hook (PEP 578) appends one JSON line to LOG.p<JAX_PROCESS_ID>
for every file opened for writing, and every directory made, renamed or
removed, under WORKDIR: how tests/test_multihost.py proves that only process 0
writes into a run's workdir (besides its own shards of each checkpoint, which
TensorStore writes from C++, out of the hook's sight).
"""

import json
import os
import runpy
import sys

UNDER = os.path.realpath(os.environ["GROWJAX_TEST_WRITES_UNDER"])
LOG = f"{os.environ['GROWJAX_TEST_WRITES_LOG']}.p{os.environ.get('JAX_PROCESS_ID', '0')}"
WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
EVENTS = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.truncate",
          "shutil.rmtree", "os.link", "os.symlink", "shutil.move"}
_log = open(LOG, "a", encoding="utf-8")  # opened before the hook: not recorded


def _inside(path) -> str | None:
  if isinstance(path, int) or path is None:
    return None
  try:
    real = os.path.realpath(os.fsdecode(path))
  except (TypeError, ValueError):
    return None
  return real if real == UNDER or real.startswith(UNDER + os.sep) else None


def _hook(event, args):
  if event == "open":
    path, mode, flags = args
    writes = (any(c in mode for c in "wax+") if isinstance(mode, str)
              else isinstance(flags, int) and flags & WRITING)
    paths = [path] if writes else []
  elif event in EVENTS:
    paths = [a for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))]
  else:
    return
  for p in filter(None, map(_inside, paths)):
    _log.write(json.dumps({"event": event, "path": os.path.relpath(p, UNDER)}) + "\n")
    _log.flush()


sys.addaudithook(_hook)
sys.argv = sys.argv[1:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
