"""TFDS builders for the corpora, written as array_record (no TensorFlow).

`builder(cfg)` returns the builder of a `DataConfig`'s corpus and raises, before
any work, for a corpus that cannot exist (missing path, glob matching nothing,
empty files, unknown dataset, missing text feature); `prepare(builder)` writes
it to the cache unless it is already there. A local corpus's records hold a
document's text under "text" and where it came from under "key"; a registry
dataset's text is under the config's `text_key`.

The two local corpora get a builder config whose name hashes everything their
records depend on (the resolved files with their keys, sizes and modification
times, separator, validation share), so a changed corpus (a package installed
into site-packages, a file edited) gets its own cache entry and an unchanged
one is never rebuilt. Their records are written in document order, unshuffled:
training shuffles anyway, and skipping TFDS's shuffle keeps the build a single
sequential write.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import pathlib
import platform
import sys

import tensorflow_datasets as tfds

from growjax import progress
from growjax.data import documents
from growjax.data.config import PYTHON_SOURCE, STDLIB, TEXT_FILES, DataConfig

TEXT = "text"
# Bump when the documents a local config yields change for the same inputs.
# 1.1.0: records in document order (no TFDS shuffle).
DOCUMENTS_VERSION = "1.1.0"


@dataclasses.dataclass(eq=False)
class LocalConfig(tfds.core.BuilderConfig):
  """Inputs of a local corpus; `name` is a hash of them."""

  # Not in the repr: TFDS logs the config, and a corpus has thousands of files.
  files: tuple[str, ...] = dataclasses.field(default=(), repr=False)
  # python_source: each file's document key.
  keys: tuple[str, ...] = dataclasses.field(default=(), repr=False)
  separator: str | None = None
  val_fraction: float = 0.01


class _LocalCorpus(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """A corpus read from local files, split into train and validation."""

  VERSION = tfds.core.Version(DOCUMENTS_VERSION)
  # Nothing is downloaded, so there are no checksums to look up. Saying so
  # also skips TFDS's search for a checksums file, which imports
  # `importlib_resources`, a module tfds uses on Python >= 3.9 but does not
  # declare (tensorflow/datasets#11212).
  url_infos = None

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=self.builder_config.description,
        features=tfds.features.FeaturesDict({
            TEXT: tfds.features.Text(),
            "key": tfds.features.Text(),  # where the document comes from
        }),
        disable_shuffling=True)

  def _documents(self):
    raise NotImplementedError

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing to download
    config = self.builder_config
    corpus = f"{self.name}/{config.name} ({config.description})"
    split = documents.Split.of(
        (key for key, _ in self._documents()),
        config.val_fraction, corpus)
    return {"train": self._generate_examples(split, validation=False),
            "validation": self._generate_examples(split, validation=True)}

  def _generate_examples(self, split, validation):
    for key, text in self._documents():
      if split.is_validation(key) == validation:
        yield key, {TEXT: text, "key": key}


class PythonSource(_LocalCorpus, skip_registration=True):
  """Python source files under some roots, one record per .py file."""

  def _documents(self):
    # The split and then each split's records read every document: read the
    # files once and keep the text (site-packages: ~400 MB), which saves two
    # of the build's three passes over the files.
    if getattr(self, "_texts", None) is None:
      config = self.builder_config
      self._texts = list(documents.python_documents(
          zip(config.keys, map(pathlib.Path, config.files))))
    return self._texts


class TextFiles(_LocalCorpus, skip_registration=True):
  """Local text files, one record per document (see documents.py)."""

  def _documents(self):
    files = [pathlib.Path(f) for f in self.builder_config.files]
    return documents.text_documents(files, self.builder_config.separator)


def _config_name(prefix: str, inputs: dict) -> str:
  blob = json.dumps(inputs, sort_keys=True).encode("utf-8")
  return f"{prefix}-{hashlib.sha256(blob).hexdigest()[:12]}"


def _python_source(cfg: DataConfig, data_dir: pathlib.Path) -> PythonSource:
  entries = cfg.paths or (STDLIB,)
  sources = documents.python_sources(entries)
  if not sources:
    raise ValueError(
        f"DataConfig.paths: python_source roots {list(entries)!r} hold no "
        ".py file")
  keys, files = zip(*sources)
  stats = [f.stat() for f in files]
  version = (f"{platform.python_implementation().lower()}-"
             f"{platform.python_version()}")
  name = _config_name(version, dict(
      roots={e: str(documents.python_root(e)) for e in entries},
      files=[[k, str(f), s.st_size, s.st_mtime_ns]
             for k, f, s in zip(keys, files, stats)],
      version=sys.version, val_fraction=cfg.val_fraction))
  config = LocalConfig(
      name=name, files=tuple(map(str, files)), keys=keys,
      val_fraction=cfg.val_fraction,
      description=f"{len(files)} Python .py files of "
                  f"{' + '.join(entries)} ({sys.version.split()[0]})")
  return PythonSource(data_dir=data_dir, config=config,
                      file_format="array_record")


def _text_files(cfg: DataConfig, data_dir: pathlib.Path) -> TextFiles:
  files = documents.resolve_paths(cfg.paths)
  stats = [f.stat() for f in files]
  if not any(s.st_size for s in stats):
    raise ValueError(
        f"DataConfig.paths: {list(cfg.paths)!r} is an empty corpus: the "
        f"{len(files)} file(s) it matches hold no text")
  name = _config_name("files", dict(
      files=[[str(f), s.st_size, s.st_mtime_ns] for f, s in zip(files, stats)],
      separator=cfg.separator, val_fraction=cfg.val_fraction))
  shown = ", ".join(map(str, files[:3])) + (", ..." if len(files) > 3 else "")
  config = LocalConfig(
      name=name, files=tuple(map(str, files)), separator=cfg.separator,
      val_fraction=cfg.val_fraction,
      description=f"{len(files)} text file(s): {shown}")
  return TextFiles(data_dir=data_dir, config=config,
                   file_format="array_record")


def _registry(cfg: DataConfig, data_dir: pathlib.Path):
  base = cfg.name.split("/")[0].split(":")[0]
  known = tfds.list_builders(with_community_datasets=False)
  if base not in known:
    close = difflib.get_close_matches(base, known + [PYTHON_SOURCE, TEXT_FILES])
    hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
    raise ValueError(
        f"DataConfig.name: {cfg.name!r} is not {PYTHON_SOURCE!r}, "
        f"{TEXT_FILES!r} or a TFDS dataset{hint}")
  try:
    b = tfds.builder(cfg.name, data_dir=data_dir, file_format="array_record")
    features = b.info.features
  except Exception as e:  # registry code may import TensorFlow, etc.
    raise RuntimeError(
        f"TFDS dataset {cfg.name!r} cannot be loaded here: "
        f"{type(e).__name__}: {e}") from e
  if cfg.text_key not in features:
    raise ValueError(
        f"DataConfig.text_key: {cfg.text_key!r} is not a feature of TFDS "
        f"dataset {cfg.name!r}; it has {sorted(features.keys())}")
  return b


def builder(cfg: DataConfig) -> tfds.core.DatasetBuilder:
  """The (maybe not yet prepared) TFDS builder of `cfg`'s corpus."""
  data_dir = cfg.cache_dir()
  if cfg.name == PYTHON_SOURCE:
    return _python_source(cfg, data_dir)
  if cfg.name == TEXT_FILES:
    return _text_files(cfg, data_dir)
  return _registry(cfg, data_dir)


def prepare(b: tfds.core.DatasetBuilder) -> bool:
  """Writes the corpus as array_record unless cached; True if it built."""
  if b.is_prepared():
    return False
  if not progress.is_terminal(sys.stderr):
    tfds.disable_progress_bar()  # its redrawn bars garble a log file
  try:
    b.download_and_prepare(
        file_format="array_record",
        download_config=tfds.download.DownloadConfig(try_download_gcs=False))
  except ValueError:
    raise  # our own errors (empty corpus, undecodable file) name the problem
  except ModuleNotFoundError as e:
    raise RuntimeError(
        f"TFDS dataset {b.name!r} could not be prepared: {e}. TFDS needs it "
        f"to download (pip install {e.name}; for importlib_resources see "
        "tensorflow/datasets#11212)") from e
  except Exception as e:
    raise RuntimeError(
        f"TFDS dataset {b.name!r} could not be prepared as array_record in "
        f"{b.data_dir}: {type(e).__name__}: {e}. Registry datasets download "
        "their sources, which needs network access (and some need "
        "TensorFlow to be prepared at all); prepare it where that works and "
        "copy the directory, or use text_files") from e
  return True


def is_local(cfg: DataConfig) -> bool:
  """Whether `cfg` is a local corpus (records hold "text" and "key")."""
  return cfg.name in (PYTHON_SOURCE, TEXT_FILES)


def text_key(cfg: DataConfig) -> str:
  """The record feature that holds a document's text."""
  return TEXT if is_local(cfg) else cfg.text_key


def split_name(b: tfds.core.DatasetBuilder, split: str) -> str:
  """The builder's split for "train" / "validation" (else "test")."""
  splits = b.info.splits
  if split in splits:
    return split
  if split == "validation" and "test" in splits:
    return "test"
  raise ValueError(
      f"TFDS dataset {b.name!r} has no {split!r} split; it has "
      f"{sorted(splits.keys())}")


def corpus_name(b: tfds.core.DatasetBuilder) -> str:
  """`name/config/version`, the corpus's identity in the cache."""
  config = b.builder_config.name if b.builder_config else "default"
  return f"{b.name}/{config}/{b.version}"
