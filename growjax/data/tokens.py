"""Token ids of a whole split, computed once and memory-mapped after.

Encoding with sentencepiece runs at a few million characters a second, far
below what training eats, so each split is encoded once, at prepare time, into
three files in the token directory (named after the tokenizer):

  {split}.tokens        every document's ids then EOS, back to back (raw
                        little-endian uint16, or uint32 past 65,536 pieces);
                        this is the split's unshuffled token stream
  {split}.offsets.npy   int64 [documents + 1]: where each document starts
  {split}.json          sizes and dtype; written last, so it marks the split
                        complete (an interrupted run is redone, never reused)

Document i of the split is `tokens[offsets[i]:offsets[i + 1]]`, its last id
EOS, in the order of the TFDS split.

Sentencepiece encodes a chunk of documents on every core at once
(`Tokenizer.encode_batch`); one core encodes ~2.5M characters/s, so this
suits corpora up to a few GB of text (lm1b's 4 GB: minutes on 16 cores).
C4-sized corpora would need tokenizing on the fly instead.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from typing import Iterable

import numpy as np

from growjax.data.tokenizer import Tokenizer

CHUNK_CHARS = 16_000_000  # characters per call, shared among the cores


@dataclasses.dataclass(frozen=True)
class TokenSplit:
  """A split's token stream and its document boundaries."""

  tokens: np.ndarray  # [num_tokens] uint16/uint32, memory-mapped
  offsets: np.ndarray  # [num_docs + 1] int64, offsets[0] == 0

  @property
  def num_tokens(self) -> int:
    return len(self.tokens)

  @property
  def num_docs(self) -> int:
    return len(self.offsets) - 1

  def document(self, i: int) -> np.ndarray:
    return self.tokens[self.offsets[i]:self.offsets[i + 1]]


def _paths(directory: pathlib.Path, split: str):
  return (directory / f"{split}.tokens", directory / f"{split}.offsets.npy",
          directory / f"{split}.json")


def exists(directory: pathlib.Path, split: str) -> bool:
  return _paths(directory, split)[2].exists()


def load(directory: pathlib.Path, split: str) -> TokenSplit:
  tokens_path, offsets_path, meta_path = _paths(directory, split)
  meta = json.loads(meta_path.read_text())
  offsets = np.load(offsets_path)
  if meta["num_tokens"] == 0:
    return TokenSplit(np.zeros(0, meta["dtype"]), offsets)
  tokens = np.memmap(tokens_path, dtype=meta["dtype"], mode="r",
                     shape=(meta["num_tokens"],))
  return TokenSplit(tokens, offsets)


def _replace(tmp: pathlib.Path, path: pathlib.Path, write) -> None:
  """Writes `path` through a temporary file, so it exists only complete."""
  with open(tmp, "wb") as f:
    write(f)
  os.replace(tmp, path)


def write(directory: pathlib.Path, split: str, texts: Iterable[str],
          tokenizer: Tokenizer) -> TokenSplit:
  """Encodes `texts` (the split's documents, in order) and saves them."""
  dtype = np.dtype("<u2" if tokenizer.vocab_size <= 1 << 16 else "<u4")
  directory.mkdir(parents=True, exist_ok=True)
  tokens_path, offsets_path, meta_path = _paths(directory, split)
  tmp = lambda p: p.with_name(f"{p.name}.{os.getpid()}.tmp")
  lengths = []

  def encode(batch, out):
    eos = np.array([tokenizer.eos_id], np.int32)
    pieces = []
    for doc in tokenizer.encode_batch(batch):  # on every core
      pieces += (doc, eos)
      lengths.append(len(doc) + 1)
    if pieces:
      np.concatenate(pieces).astype(dtype).tofile(out)

  def write_tokens(out):
    batch, size = [], 0
    for text in texts:
      batch.append(text)
      size += len(text)
      if size >= CHUNK_CHARS:
        encode(batch, out)
        batch, size = [], 0
    encode(batch, out)

  _replace(tmp(tokens_path), tokens_path, write_tokens)
  offsets = np.zeros(len(lengths) + 1, np.int64)
  np.cumsum(lengths, out=offsets[1:])
  _replace(tmp(offsets_path), offsets_path, lambda f: np.save(f, offsets))
  meta = dict(dtype=dtype.str, num_tokens=int(offsets[-1]),
              num_docs=len(lengths), tokenizer=tokenizer.path.name)
  _replace(tmp(meta_path), meta_path,
           lambda f: f.write(json.dumps(meta, indent=2).encode("utf-8")))
  return load(directory, split)
