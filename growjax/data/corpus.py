"""`prepare`: a config in, a ready corpus out, from the cache when it can.

Three things are built once and reused after, each keyed by what it depends on:

  {dir}/{dataset}/{config}/{version}/          the TFDS corpus (array_record)
    tokenizers/spm-...-v{V}-c{chars}-....model sentencepiece, from train text
    tokens/{tokenizer name}/{split}.*          token ids of each split
    tokens/{tokenizer name}/fingerprint.json   the corpus's identity

A second `prepare` of the same config builds nothing (`Corpus.built == ()`).
Everything that can be checked without reading the corpus is checked first.
Each split's text is read once more after the build, to tokenize it (on every
core) and to fingerprint it in the same pass.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
import time
from typing import Iterable, Iterator, Mapping, Sequence

from growjax import progress
from growjax.data import builders, fingerprint as fingerprint_lib
from growjax.data import tokenizer as tokenizer_lib, tokens
from growjax.data.config import DataConfig
from growjax.data.tokenizer import Tokenizer
from growjax.data.tokens import TokenSplit

log = logging.getLogger(__name__)

SPLITS = ("train", "validation")
READ_BATCH = 256  # records per array_record read


class Texts(Sequence[str]):
  """A split's documents as strings, read lazily from the TFDS source."""

  def __init__(self, source, key: str, keyed: bool):
    self._source = source
    self._key = key
    self._keyed = keyed  # records hold their document's key (local corpora)

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, i):
    if isinstance(i, slice):
      return self._read(range(*i.indices(len(self))))
    return self._text(self._source[i])

  def __iter__(self):
    for _, text in self.items():
      yield text

  def items(self) -> Iterator[tuple[str, str]]:
    """(key, text) of every document in order; key "" where records have
    none (registry datasets)."""
    for start in range(0, len(self), READ_BATCH):
      indices = range(start, min(start + READ_BATCH, len(self)))
      for r in self._source.__getitems__(list(indices)):
        key = r["key"] if self._keyed else b""
        yield (key.decode("utf-8") if isinstance(key, bytes) else key,
               self._text(r))

  def _read(self, indices: range) -> list[str]:
    return [self._text(r) for r in self._source.__getitems__(list(indices))]

  def _text(self, record) -> str:
    text = record[self._key]
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else text


@dataclasses.dataclass(frozen=True)
class Corpus:
  """A prepared corpus: its documents, tokenizer and token ids per split."""

  config: DataConfig
  name: str  # dataset/config/version, e.g. "python_source/cpython-.../1.0.0"
  path: pathlib.Path  # the TFDS data directory
  tokenizer: Tokenizer
  splits: Mapping[str, TokenSplit]  # "train", "validation"
  texts: Mapping[str, Texts]  # the same documents, as text
  built: tuple[str, ...]  # what this prepare() had to build, () if cached
  token_dir: pathlib.Path  # token ids and fingerprint.json
  seconds: Mapping[str, float]  # how long each part of `built` took

  def fingerprint(self) -> dict:
    """{"name", "files", "documents", "bytes", "tokens", "validation_tokens",
    "tokenizer", "sha256"}: see fingerprint.py."""
    return fingerprint_lib.load(self.token_dir)

  def num_tokens(self, split: str) -> int:
    """Tokens one epoch of `split` holds, one EOS after each document."""
    return self.split(split).num_tokens

  def split(self, split: str) -> TokenSplit:
    if split not in self.splits:
      raise ValueError(
          f"split {split!r} is not one of {tuple(self.splits)}")
    return self.splits[split]


def _built(seconds: dict, part: str, start: float, corpus: str) -> None:
  seconds[part] = round(time.perf_counter() - start, 2)
  log.info("prepare %s: %s built in %.1f s", corpus, part, seconds[part])


def _counted(items: Iterable, bar) -> Iterator:
  """`items`, advancing a progress bar by one for each."""
  for item in items:
    yield item
    bar.update()


def prepare(cfg: DataConfig) -> Corpus:
  """Builds or loads `cfg`'s corpus, tokenizer and token ids; what it builds
  (once: later calls load it) it says, with a progress bar over documents."""
  seconds = {}  # part built -> seconds it took
  start = time.perf_counter()
  b = builders.builder(cfg)  # raises for a corpus that cannot exist
  name = builders.corpus_name(b)
  if not b.is_prepared():
    log.info("prepare %s: building the dataset in %s (once)", name, b.data_dir)
  if builders.prepare(b):
    _built(seconds, "dataset", start, name)
  path = pathlib.Path(b.data_dir)
  texts = {}
  for split in SPLITS:
    source = b.as_data_source(split=builders.split_name(b, split))
    if len(source) == 0:
      raise ValueError(f"corpus {name} has an empty {split!r} split")
    texts[split] = Texts(source, builders.text_key(cfg),
                         keyed=builders.is_local(cfg))

  model = path / "tokenizers" / tokenizer_lib.file_name(
      name, cfg.vocab_size, cfg.tokenizer_chars)
  if model.exists():
    tok = Tokenizer(model)
  else:
    start = time.perf_counter()
    log.info("prepare %s: training a %d-piece tokenizer on %s characters "
             "(once)", name, cfg.vocab_size, f"{cfg.tokenizer_chars:,}")
    tok = tokenizer_lib.train(
        tokenizer_lib.sample(texts["train"], cfg.tokenizer_chars), model,
        vocab_size=cfg.vocab_size, max_chars=cfg.tokenizer_chars, corpus=name)
    _built(seconds, "tokenizer", start, name)

  # Tokenizing reads each split's text once; the fingerprint hashes it on
  # the way.
  token_dir = path / "tokens" / model.stem
  splits, digests = {}, {}
  for split in SPLITS:
    if tokens.exists(token_dir, split):
      splits[split] = tokens.load(token_dir, split)
    else:
      start = time.perf_counter()
      digests[split] = fingerprint_lib.Digests()
      with progress.bar(total=len(texts[split]), desc=f"tokenize {split}",
                        unit="doc") as bar:
        splits[split] = tokens.write(
            token_dir, split, _counted(digests[split].texts(
                texts[split].items()), bar), tok)
      _built(seconds, f"tokens:{split}", start, name)
  if digests or not fingerprint_lib.exists(token_dir):
    start = time.perf_counter()
    for split in SPLITS:
      if split not in digests:  # tokens cached from before: read once more
        digests[split] = fingerprint_lib.Digests()
        with progress.bar(total=len(texts[split]),
                          desc=f"fingerprint {split}", unit="doc") as bar:
          for _ in _counted(digests[split].texts(texts[split].items()), bar):
            pass
    fingerprint_lib.write(
        token_dir, name=name, tokenizer=model.name, digests=digests,
        num_tokens={s: splits[s].num_tokens for s in SPLITS})
    _built(seconds, "fingerprint", start, name)
  return Corpus(config=cfg, name=name, path=path, tokenizer=tok,
                splits=splits, texts=texts, built=tuple(seconds),
                token_dir=token_dir, seconds=seconds)
