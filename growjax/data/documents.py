"""The documents of the local corpora, and which split each one is in.

python_source: every `.py` file under its roots, one document per file, read
in its declared encoding (PEP 263); the few test files that are deliberately
undecodable are skipped. A root is "stdlib" (`sysconfig.get_paths()["stdlib"]`,
its site-packages left out), "site-packages" (`sysconfig`'s purelib) or a
directory; a file under two roots is read once, from the first. Keys are paths
relative to the root, prefixed by the root as the config names it when there
are several ("site-packages/numpy/__init__.py"), so the split does not depend
on where the interpreter is installed.

text_files: the files `paths` names (globs expanded, sorted, deduplicated),
each cut into documents:
- with a `separator`: at every occurrence of it;
- without one: a file is one document, unless `paths` matches fewer than
  `MIN_FILES` files: then no ~1% validation split could exist, so each file is
  cut at line boundaries into documents of `CHUNK_LINES` lines
  (tinyshakespeare, 40k lines, gives 400 documents).
Empty documents are dropped. Keys are `relative/path#k`, paths taken relative
to the files' common directory, k the document's index within its file.

A document is in validation when the hash of its key, read as a number in
[0, 1), is below `val_fraction`: deterministic, independent of where the files
live, and stable when documents are added. Each split holds at least one
document: if hashing leaves one empty, the document nearest the threshold moves
over.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import io
import os
import pathlib
import sysconfig
import tokenize
from typing import Iterable, Iterator, Sequence

from growjax.data.config import SITE_PACKAGES, STDLIB

MIN_FILES = 100
CHUNK_LINES = 100


def unit_hash(key: str) -> float:
  """A stable pseudo-random number in [0, 1) for a document key."""
  digest = hashlib.sha256(key.encode("utf-8")).digest()
  return int.from_bytes(digest[:8], "big") / 2.0**64


@dataclasses.dataclass(frozen=True)
class Split:
  """Which documents are held out for validation."""

  val_fraction: float
  to_validation: str | None = None  # key moved over to fill validation
  to_train: str | None = None  # key moved over to fill train

  @classmethod
  def of(cls, keys: Iterable[str], val_fraction: float, corpus: str) -> Split:
    """Splits `keys` by hash, moving one over if a split would be empty."""
    n = n_val = 0
    lowest = highest = None  # (hash, key)
    for key in keys:
      h = (unit_hash(key), key)
      n += 1
      n_val += h[0] < val_fraction
      lowest = min(lowest or h, h)
      highest = max(highest or h, h)
    if n == 0:
      raise ValueError(f"corpus {corpus} is empty: it has no non-empty "
                       "document")
    if n < 2:
      raise ValueError(
          f"corpus {corpus} has {n} non-empty document(s); a train and a "
          "validation split need at least 2")
    split = cls(val_fraction)
    if n_val == 0:
      split = cls(val_fraction, to_validation=lowest[1])
    elif n_val == n:
      split = cls(val_fraction, to_train=highest[1])
    return split

  def is_validation(self, key: str) -> bool:
    if key == self.to_validation:
      return True
    if key == self.to_train:
      return False
    return unit_hash(key) < self.val_fraction


# python_source.


def stdlib_root() -> pathlib.Path:
  return pathlib.Path(sysconfig.get_paths()["stdlib"])


def python_root(entry: str) -> pathlib.Path:
  """The directory a python_source root names, on this machine."""
  if entry == STDLIB:
    return stdlib_root()
  if entry == SITE_PACKAGES:
    return pathlib.Path(sysconfig.get_paths()["purelib"])
  return pathlib.Path(os.path.expanduser(entry))


def _python_relpaths(root: pathlib.Path, packages: bool) -> list[str]:
  """Paths of `root`'s `.py` files relative to it, posix, sorted by parts."""
  skip = {"__pycache__"} if packages else {
      "site-packages", "dist-packages", "__pycache__"}
  found = []
  for directory, dirs, files in os.walk(root):  # ~3x faster than rglob
    dirs[:] = [d for d in dirs if d not in skip]
    rel = os.path.relpath(directory, root)
    for name in files:
      if name.endswith(".py") and os.path.isfile(os.path.join(directory, name)):
        found.append(name if rel == "." else os.path.join(rel, name))
  found = [f.replace(os.sep, "/") for f in found]
  return sorted(found, key=lambda f: f.split("/"))


def python_files(root: pathlib.Path, *,
                 packages: bool = False) -> list[pathlib.Path]:
  """`root`'s `.py` files, sorted; installed packages only if `packages`."""
  return [root / f for f in _python_relpaths(root, packages)]


def python_sources(entries: Sequence[str]
                   ) -> list[tuple[str, pathlib.Path]]:
  """(key, file) of every `.py` file under the roots `entries` name.

  Errors name the root that is missing here (a config checked on another
  machine, or a directory removed since).
  """
  seen, out = set(), []
  for entry in entries:
    root = python_root(entry)
    if not root.is_dir():
      raise ValueError(
          f"DataConfig.paths: python_source root {entry!r} ({root}) is not a "
          "directory on this machine")
    prefix = f"{entry}/" if len(entries) > 1 else ""
    for rel in _python_relpaths(root, packages=entry != STDLIB):
      path = root / rel
      if len(entries) > 1:  # roots may overlap: read a file once
        real = path.resolve()
        if real in seen:
          continue
        seen.add(real)
      out.append((prefix + rel, path))
  return out


def python_text(path: pathlib.Path) -> str | None:
  """A source file's text in its declared encoding; None if undecodable."""
  data = path.read_bytes()
  try:
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    text = data.decode(encoding)
  except (SyntaxError, LookupError, UnicodeDecodeError):
    return None  # test data that is undecodable on purpose
  return text[1:] if text.startswith("\ufeff") else text


def python_documents(sources: Iterable[tuple[str, pathlib.Path]]
                     ) -> Iterator[tuple[str, str]]:
  for key, path in sources:
    text = python_text(path)
    if text:
      yield key, text


# text_files.


def resolve_paths(patterns: Iterable[str]) -> list[pathlib.Path]:
  """The files `patterns` name, sorted; errors name a pattern that fails."""
  files = set()
  for pattern in patterns:
    expanded = os.path.expanduser(pattern)
    if glob.has_magic(expanded):
      matches = [pathlib.Path(p) for p in glob.glob(expanded, recursive=True)]
      matches = [p for p in matches if p.is_file()]
      if not matches:
        raise ValueError(
            f"DataConfig.paths: glob {pattern!r} matches no file")
    else:
      path = pathlib.Path(expanded)
      if not path.exists():
        raise ValueError(f"DataConfig.paths: {pattern!r} does not exist")
      if not path.is_file():
        raise ValueError(
            f"DataConfig.paths: {pattern!r} is not a file (use a glob such "
            f"as '{pattern.rstrip('/')}/**/*.txt' for a directory)")
      matches = [path]
    files.update(p.resolve() for p in matches)
  return sorted(files)


def _lines_in_chunks(text: str, lines: int) -> Iterator[str]:
  split = text.splitlines(keepends=True)
  for start in range(0, len(split), lines):
    yield "".join(split[start:start + lines])


def text_documents(files: list[pathlib.Path], separator: str | None
                   ) -> Iterator[tuple[str, str]]:
  root = pathlib.Path(os.path.commonpath(files))
  if len(files) == 1:
    root = root.parent
  for path in files:
    try:
      text = path.read_bytes().decode("utf-8")  # as is: "\r\n" stays
    except UnicodeDecodeError as e:
      raise ValueError(
          f"DataConfig.paths: {str(path)!r} is not UTF-8 text ({e})") from None
    if separator is not None:
      parts = text.split(separator)
    elif len(files) < MIN_FILES:
      parts = _lines_in_chunks(text, CHUNK_LINES)
    else:
      parts = [text]
    name = path.relative_to(root).as_posix()
    for k, part in enumerate(parts):
      if part:
        yield f"{name}#{k}", part
