r"""Executes the notebooks top to bottom and writes their outputs back, so the
repository's web page shows their results and plots.

    python notebooks/execute.py                       # every notebook here
    python notebooks/execute.py notebooks/toy_growth.ipynb --no-write

Each runs in a clean kernel in a fresh temporary directory (its runs/ go
there, not into the repository), with growjax imported from this checkout.
Timing metadata is left out, so a notebook's diff shows only what changed.
Prints each notebook's wall-clock seconds.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
import time

import nbclient
import nbformat

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent


def execute(path: pathlib.Path, *, timeout: int = 1800):
  """(the executed notebook, seconds) of the notebook at `path`."""
  nb = nbformat.read(path, as_version=4)
  env = {"PYTHONPATH": os.pathsep.join(
      p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
  with tempfile.TemporaryDirectory(prefix="growjax_execute_") as cwd:
    began = time.perf_counter()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits it: this checkout's growjax
    try:
      nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                              record_timing=False,
                              resources={"metadata": {"path": cwd}}).execute()
    finally:
      for k, v in saved.items():
        if v is None:
          os.environ.pop(k, None)
        else:
          os.environ[k] = v
    seconds = time.perf_counter() - began
  return nb, seconds


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("notebooks", nargs="*", type=pathlib.Path,
                      default=sorted(HERE.glob("*.ipynb")))
  parser.add_argument("--no-write", action="store_true",
                      help="execute only; leave the files as they are")
  args = parser.parse_args(argv)
  for path in args.notebooks:
    nb, seconds = execute(path)
    if not args.no_write:
      nbformat.write(nb, path)
    print(f"{path}: executed in {seconds:.0f} s"
          + ("" if args.no_write else ", outputs written"), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
