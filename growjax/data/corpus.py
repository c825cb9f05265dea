"""`prepare`: a config in, a ready corpus out, from the cache when it can.

Three things are built once and reused after, each keyed by what it depends on:

  {dir}/{dataset}/{config}/{version}/          the TFDS corpus (array_record)
    tokenizers/spm-...-v{V}-c{chars}-....model sentencepiece, from train text
    tokens/{tokenizer name}/{split}.*          token ids of each split

A second `prepare` of the same config builds nothing (`Corpus.built == ()`).
Everything that can be checked without reading the corpus is checked first.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Mapping, Sequence

import numpy as np

from growjax.data import builders, tokenizer as tokenizer_lib, tokens
from growjax.data.config import DataConfig
from growjax.data.tokenizer import Tokenizer
from growjax.data.tokens import TokenSplit

SPLITS = ("train", "validation")
READ_BATCH = 256  # records per array_record read


class Texts(Sequence[str]):
  """A split's documents as strings, read lazily from the TFDS source."""

  def __init__(self, source, key: str):
    self._source = source
    self._key = key

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, i):
    if isinstance(i, slice):
      return self._read(range(*i.indices(len(self))))
    return self._text(self._source[i])

  def __iter__(self):
    for start in range(0, len(self), READ_BATCH):
      yield from self._read(range(start, min(start + READ_BATCH, len(self))))

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

  def num_tokens(self, split: str) -> int:
    """Tokens one epoch of `split` holds, one EOS after each document."""
    return self.split(split).num_tokens

  def split(self, split: str) -> TokenSplit:
    if split not in self.splits:
      raise ValueError(
          f"split {split!r} is not one of {tuple(self.splits)}")
    return self.splits[split]


def _sample(texts: Texts, seed: int = 0):
  """Documents in a fixed random order, so the tokenizer sees all kinds."""
  for i in np.random.default_rng(seed).permutation(len(texts)):
    yield texts[int(i)]


def prepare(cfg: DataConfig) -> Corpus:
  """Builds or loads `cfg`'s corpus, tokenizer and token ids."""
  b = builders.builder(cfg)  # raises for a corpus that cannot exist
  built = ["dataset"] if builders.prepare(b) else []
  name = builders.corpus_name(b)
  path = pathlib.Path(b.data_dir)
  texts = {}
  for split in SPLITS:
    source = b.as_data_source(split=builders.split_name(b, split))
    if len(source) == 0:
      raise ValueError(f"corpus {name} has an empty {split!r} split")
    texts[split] = Texts(source, builders.text_key(cfg))

  model = path / "tokenizers" / tokenizer_lib.file_name(
      name, cfg.vocab_size, cfg.tokenizer_chars)
  if model.exists():
    tok = Tokenizer(model)
  else:
    tok = tokenizer_lib.train(
        _sample(texts["train"]), model, vocab_size=cfg.vocab_size,
        max_chars=cfg.tokenizer_chars, corpus=name)
    built.append("tokenizer")

  token_dir = path / "tokens" / model.stem
  splits = {}
  for split in SPLITS:
    if tokens.exists(token_dir, split):
      splits[split] = tokens.load(token_dir, split)
    else:
      splits[split] = tokens.write(token_dir, split, texts[split], tok)
      built.append(f"tokens:{split}")
  return Corpus(config=cfg, name=name, path=path, tokenizer=tok,
                splits=splits, texts=texts, built=tuple(built))
