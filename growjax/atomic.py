"""Files that are wholly written or not at all.

A run's small files (experiment.json, config.json, metrics.jsonl when it is
cut back on resume) are written to a temporary file beside the target, synced,
then renamed over it: POSIX rename is atomic, so a process killed mid-write
leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import pathlib


def write_bytes(path, data: bytes) -> None:
  path = pathlib.Path(path)
  tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
  try:
    with open(tmp, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  finally:
    tmp.unlink(missing_ok=True)


def write_text(path, text: str) -> None:
  write_bytes(path, text.encode("utf-8"))
