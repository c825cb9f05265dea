"""A corpus's fingerprint: what a result was trained on, so it can be redone.

    {"name": "python_source/cpython-3.11.7-.../1.1.0",
     "files": 16888,        source files (local corpora), else records
     "documents": 16910,    records of both splits
     "bytes": 201234567,    UTF-8 bytes of their text
     "tokens": 51234567,    tokens of the train split (EOS included)
     "validation_tokens": 512345,
     "tokenizer": "spm-....model",
     "sha256": "..."}

`sha256` identifies the text and its split, not the tokenizer (named beside)
nor the order TFDS stored the records in. Each document gives
sha256(key + "\\0" + text) (key "" for registry records, which have none);
the fingerprint hashes "train", then that split's document digests sorted,
then "validation" and its sorted digests. Two machines that hold the same
files under the same keys therefore agree, whatever their paths.

It is computed at prepare time, while the text is read for tokenizing, and
kept as `fingerprint.json` beside the token ids.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
from typing import Iterable, Iterator, Mapping

FILE = "fingerprint.json"


class Digests:
  """Document digests of one split, gathered while its text streams by."""

  def __init__(self):
    self.digests: list[bytes] = []
    self.files: set[str] = set()  # "path" of keys "path" and "path#k"
    self.keyless = 0  # records without a key, each counted as a file
    self.bytes = 0

  def texts(self, items: Iterable[tuple[str, str]]) -> Iterator[str]:
    """Yields each (key, text)'s text, recording its digest on the way."""
    for key, text in items:
      data = text.encode("utf-8")
      self.bytes += len(data)
      self.digests.append(hashlib.sha256(
          key.encode("utf-8") + b"\0" + data).digest())
      if key:
        self.files.add(key.split("#")[0])
      else:
        self.keyless += 1
      yield text


def exists(directory: pathlib.Path) -> bool:
  return (directory / FILE).exists()


def load(directory: pathlib.Path) -> dict:
  return json.loads((directory / FILE).read_text())


def write(directory: pathlib.Path, *, name: str, tokenizer: str,
          digests: Mapping[str, Digests],
          num_tokens: Mapping[str, int]) -> dict:
  """Saves the fingerprint of splits "train" and "validation"."""
  total = hashlib.sha256()
  for split in ("train", "validation"):
    total.update(split.encode("utf-8"))
    for digest in sorted(digests[split].digests):
      total.update(digest)
  result = dict(
      name=name,
      files=len(digests["train"].files | digests["validation"].files) + sum(
          d.keyless for d in digests.values()),
      documents=sum(len(d.digests) for d in digests.values()),
      bytes=sum(d.bytes for d in digests.values()),
      tokens=int(num_tokens["train"]),
      validation_tokens=int(num_tokens["validation"]),
      tokenizer=tokenizer,
      sha256=total.hexdigest())
  directory.mkdir(parents=True, exist_ok=True)
  tmp = directory / f"{FILE}.{os.getpid()}.tmp"
  tmp.write_text(json.dumps(result, indent=2) + "\n")
  os.replace(tmp, directory / FILE)
  return result
