"""A hash of a directory tree: its paths and file bytes (tests that check a
run never writes into a folder compare it before and after)."""

import hashlib
import pathlib


def tree_hash(path) -> str:
  """sha256 over every path below `path` (itself included) and each file's
  bytes; "absent" when it does not exist."""
  root = pathlib.Path(path)
  if not root.exists():
    return "absent"
  h = hashlib.sha256()
  for p in sorted([root, *root.rglob("*")]):
    h.update(str(p.relative_to(root.parent)).encode() + b"\0")
    if p.is_file():
      h.update(p.read_bytes())
  return h.hexdigest()
