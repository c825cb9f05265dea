"""A sentencepiece tokenizer that round-trips any text exactly.

BPE with byte fallback: a character the vocabulary lacks becomes its UTF-8
bytes, so every string encodes and decodes back to itself. What the usual
settings would change is switched off: no normalization (`identity`), no
dummy space before the text, no collapsing of repeated spaces. Newlines, tabs
and indentation are ordinary characters, and whitespace-only pieces ("    ",
"\n\n") are allowed, which code needs. Digits are split one per piece.

Sentencepiece writes a space as U+2581 ("▁") inside pieces, so a literal "▁"
in the text would come back as a space. After training, the pieces are
rewritten with real spaces and that escaping is turned off: a literal "▁" then
falls back to its three bytes, and the pieces the model learnt are unchanged.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import re
from typing import Iterable, Iterator, Sequence

import numpy as np
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as model_pb2

UNK_ID, BOS_ID, EOS_ID = 0, 1, 2
TRAINER = dict(
    model_type="bpe",
    byte_fallback=True,
    normalization_rule_name="identity",
    remove_extra_whitespaces=False,
    add_dummy_prefix=False,
    split_digits=True,
    allow_whitespace_only_pieces=True,
    character_coverage=0.9995,  # rarer characters fall back to bytes
    max_sentencepiece_length=16,
    unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID, pad_id=-1,
)
# The trainer reads "sentences"; we cut documents at line boundaries into
# pieces of about this many characters, so pieces can span newlines.
SENTENCE_CHARS = 4096
# How the training characters are drawn from the corpus (corpus.py's sample);
# part of the model's file name, so a changed sampling retrains.
SAMPLING = "spread-v2"
SAMPLE_DOCS = 200  # documents the training characters come from, at least


def threads() -> int:
  """The cores this process may use: sentencepiece encodes and trains on all
  of them (the GPU machine has 16-32, prepare's heavy part is encoding)."""
  return len(os.sched_getaffinity(0)) if hasattr(
      os, "sched_getaffinity") else os.cpu_count() or 1


def file_name(corpus: str, vocab_size: int, chars: int) -> str:
  """A model file name naming the corpus and every training setting."""
  settings = json.dumps(dict(TRAINER, sampling=SAMPLING),
                        sort_keys=True).encode("utf-8")
  corpus = re.sub(r"[^A-Za-z0-9_.=-]+", "-", corpus)
  return (f"spm-{corpus}-{TRAINER['model_type']}-v{vocab_size}-c{chars}-"
          f"{hashlib.sha256(settings).hexdigest()[:8]}.model")


class Tokenizer:
  """Encodes text to token ids and back; `bos_id`, `eos_id` are reserved."""

  def __init__(self, path: str | os.PathLike):
    self.path = pathlib.Path(path)
    self._sp = spm.SentencePieceProcessor(model_file=str(self.path))
    self.vocab_size = self._sp.vocab_size()
    self.bos_id = self._sp.bos_id()
    self.eos_id = self._sp.eos_id()

  def encode(self, text: str) -> list[int]:
    return self._sp.encode(text)

  def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
    """Each text's ids, int32, encoded on every core."""
    texts = list(texts)
    try:
      return self._sp.encode(texts, num_threads=threads(), return_type="numpy")
    except (TypeError, ValueError):  # a sentencepiece without numpy output
      return [np.asarray(ids, np.int32)
              for ids in self._sp.encode(texts, num_threads=threads())]

  def decode(self, ids: Iterable[int]) -> str:
    return self._sp.decode([int(i) for i in ids])

  def piece(self, i: int) -> str:
    return self._sp.id_to_piece(int(i))

  def __repr__(self):
    return f"Tokenizer({str(self.path)!r}, vocab_size={self.vocab_size})"


def sample(texts: Sequence[str], max_chars: int, seed: int = 0
           ) -> Iterator[str]:
  """About `max_chars` characters spread across `texts` (documents).

  Documents come in a random order, and each gives at most
  `max_chars / SAMPLE_DOCS` characters (at least one sentence), from a random
  line boundary: so at least SAMPLE_DOCS documents shape the vocabulary,
  however large a few of them are, and not only their first lines (licence
  headers, imports).
  """
  rng = np.random.default_rng(seed)
  cap = max(SENTENCE_CHARS, max_chars // SAMPLE_DOCS)
  for i in rng.permutation(len(texts)):
    text = texts[int(i)]
    if len(text) > cap:
      start = int(rng.integers(0, len(text) - cap + 1))
      start = 0 if start == 0 else text.find("\n", start - 1) + 1
      text = text[start:start + cap]
    yield text


def _sentences(texts: Iterable[str], max_chars: int) -> Iterator[str]:
  """`texts` cut at line ends into sentences, `max_chars` characters in all."""
  left = max_chars
  for text in texts:
    text = text[:left]
    left -= len(text)
    sentence = []
    size = 0
    for line in text.splitlines(keepends=True):
      for start in range(0, len(line), SENTENCE_CHARS):  # cut huge lines
        part = line[start:start + SENTENCE_CHARS]
        if size + len(part) > SENTENCE_CHARS and sentence:
          yield "".join(sentence)
          sentence, size = [], 0
        sentence.append(part)
        size += len(part)
    if sentence:
      yield "".join(sentence)
    if left <= 0:
      return


def _exact_spaces(model: bytes) -> bytes:
  proto = model_pb2.ModelProto.FromString(model)
  for piece in proto.pieces:
    if piece.type == model_pb2.ModelProto.SentencePiece.NORMAL:
      piece.piece = piece.piece.replace("\u2581", " ")
  proto.normalizer_spec.escape_whitespaces = False
  return proto.SerializeToString()


def _vocab_error(e: RuntimeError, vocab_size: int, corpus: str,
                 chars: int) -> Exception:
  """Sentencepiece's terse failure, restated as what to change."""
  message = str(e)
  high = re.search(r"Vocabulary size too high \((\d+)\).*<= (\d+)", message)
  if high:
    return ValueError(
        f"DataConfig.vocab_size: {vocab_size} is too large for corpus "
        f"{corpus}: its {chars:,} training characters give at most "
        f"{high.group(2)} pieces; lower vocab_size or raise tokenizer_chars")
  low = re.search(r"smaller than required_chars\. (\d+) vs (\d+)", message)
  if low:
    return ValueError(
        f"DataConfig.vocab_size: {vocab_size} is too small for corpus "
        f"{corpus}: its characters, 256 byte pieces and 3 special pieces "
        f"need at least {low.group(2)}")
  return RuntimeError(f"sentencepiece failed on corpus {corpus}: {message}")


def train(texts: Iterable[str], path: pathlib.Path, *, vocab_size: int,
          max_chars: int, corpus: str) -> Tokenizer:
  """Trains on the first `max_chars` characters of `texts`, saves to `path`."""
  sentences = list(_sentences(texts, max_chars))
  chars = sum(map(len, sentences))
  model = io.BytesIO()
  try:
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_writer=model,
        vocab_size=vocab_size, num_threads=threads(), minloglevel=2,
        max_sentence_length=4 * SENTENCE_CHARS,  # bytes
        **TRAINER)
  except RuntimeError as e:
    raise _vocab_error(e, vocab_size, corpus, chars) from None
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
  tmp.write_bytes(_exact_spaces(model.getvalue()))
  os.replace(tmp, path)  # a model file that exists is complete
  return Tokenizer(path)
