"""What corpus to train on and how to tokenize it.

`DataConfig` is frozen and checks itself on construction: an invalid value
raises one `ValueError` naming the field and the value. Experiment files give
it as a plain dict (`c.data = dict(...)`); `DataConfig.from_dict` reads that and
names any field it does not know.

`paths` means one thing per corpus: for text_files the files (or globs) to
read; for python_source the roots whose `.py` files make the corpus, each
"stdlib" (the running interpreter's standard library, the default),
"site-packages" (its purelib directory) or a directory. The two names resolve
on the machine that prepares the corpus, so one experiment file names "the
site-packages of wherever it runs".
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Any, Mapping

from growjax import checks

PYTHON_SOURCE = "python_source"
TEXT_FILES = "text_files"
# Byte fallback reserves 256 byte pieces, plus <unk>, <s> and </s>; a few more
# are needed for the corpus's own characters.
MIN_VOCAB = 260
MAX_VOCAB = 1 << 20
# python_source roots that name a directory of the machine that prepares.
STDLIB = "stdlib"
SITE_PACKAGES = "site-packages"
PYTHON_ROOTS = (STDLIB, SITE_PACKAGES)


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """A corpus, its splits and its tokenizer."""

  # "python_source", "text_files" or a TFDS registry name ("lm1b", "c4/en").
  name: str
  seq_len: int  # tokens per training sequence (the model's context), >= 1
  vocab_size: int  # sentencepiece pieces (256 are bytes), >= 260
  # text_files: files or globs (~, **); python_source: roots, each "stdlib",
  # "site-packages" or a directory (empty: "stdlib").
  paths: tuple[str, ...] = ()
  separator: str | None = None  # text_files only: text between documents
  text_key: str = "text"  # registry datasets: the feature holding the text
  val_fraction: float = 0.01  # documents held out (local corpora), (0, 0.5]
  tokenizer_chars: int = 5_000_000  # training chars for sentencepiece, >= 1
  dir: str | None = None  # cache; None: $GROWJAX_DATA_DIR or ~/.cache/...

  def __post_init__(self):
    # Experiment files write lists (and sometimes one string): store a tuple,
    # so the config stays hashable.
    paths = self.paths
    if isinstance(paths, (str, os.PathLike)):
      paths = (paths,)
    if isinstance(paths, (list, tuple)):
      object.__setattr__(self, "paths", tuple(os.fspath(p) for p in paths))
    self._check()

  def _check(self):
    if not isinstance(self.name, str) or not self.name:
      raise ValueError(f"DataConfig.name: {self.name!r} is not a dataset name")
    checks.positive_int("DataConfig.seq_len", self.seq_len)
    checks.integer("DataConfig.vocab_size", self.vocab_size, low=MIN_VOCAB,
                   high=MAX_VOCAB)
    checks.positive_int("DataConfig.tokenizer_chars", self.tokenizer_chars)
    checks.number("DataConfig.val_fraction", self.val_fraction, low=0,
                  high=0.5, low_open=True)
    if not isinstance(self.paths, tuple) or not all(
        isinstance(p, str) and p for p in self.paths):
      raise ValueError(
          f"DataConfig.paths: {self.paths!r} is not a list of file paths")
    if self.name == TEXT_FILES and not self.paths:
      raise ValueError(
          "DataConfig.paths: empty; text_files needs the files to read, "
          "e.g. paths=['notes/*.txt']")
    if self.name == PYTHON_SOURCE:
      for root in self.paths:
        if root not in PYTHON_ROOTS and not os.path.isdir(
            os.path.expanduser(root)):
          raise ValueError(
              f"DataConfig.paths: python_source root {root!r} is not "
              f"{STDLIB!r}, {SITE_PACKAGES!r} or a directory")
    elif self.name != TEXT_FILES and self.paths:
      raise ValueError(
          f"DataConfig.paths: {self.paths!r} given for dataset "
          f"{self.name!r}; only text_files and python_source read paths")
    if self.separator is not None:
      if not isinstance(self.separator, str) or not self.separator:
        raise ValueError(
            f"DataConfig.separator: {self.separator!r} is not a non-empty "
            "string")
      if self.name != TEXT_FILES:
        raise ValueError(
            f"DataConfig.separator: given for dataset {self.name!r}; only "
            "text_files splits files on a separator")
    if not isinstance(self.text_key, str) or not self.text_key:
      raise ValueError(
          f"DataConfig.text_key: {self.text_key!r} is not a feature name")
    if self.dir is not None and (not isinstance(self.dir, (str, os.PathLike))
                                 or not os.fspath(self.dir)):
      raise ValueError(f"DataConfig.dir: {self.dir!r} is not a directory")

  @classmethod
  def from_dict(cls, d: Mapping[str, Any]) -> DataConfig:
    """Builds a config from an experiment file's dict (or ConfigDict)."""
    if hasattr(d, "to_dict"):  # ml_collections.ConfigDict
      d = d.to_dict()
    known = cls.fields()
    unknown = sorted(set(d) - set(known))
    if unknown:
      raise ValueError(
          f"DataConfig: unknown field(s) {', '.join(map(repr, unknown))}; "
          f"known fields: {', '.join(known)}")
    missing = [f.name for f in dataclasses.fields(cls)
               if f.default is dataclasses.MISSING and f.name not in d]
    if missing:
      raise ValueError(
          f"DataConfig: missing field(s) {', '.join(map(repr, missing))}")
    return cls(**d)

  @classmethod
  def fields(cls) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))

  def replace(self, **changes) -> DataConfig:
    """A copy with `changes` applied (and validated)."""
    return dataclasses.replace(self, **changes)

  def cache_dir(self) -> pathlib.Path:
    """Where prepared corpora, tokenizers and token ids are kept."""
    if self.dir is not None:
      return pathlib.Path(self.dir).expanduser()
    env = os.environ.get("GROWJAX_DATA_DIR")
    if env:
      return pathlib.Path(env).expanduser()
    return pathlib.Path.home() / ".cache" / "growjax" / "data"
