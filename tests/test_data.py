"""growjax.data: corpora, tokenizer, packed batches, iterator state, errors.

Two corpora are prepared once per session in the `data_dir` cache:
tinyshakespeare through text_files (or, on a machine without ../shared, a text
file this module writes), and python_source (the whole standard library,
tokenizer trained on a capped 1M characters).
"""

import collections
import json
import math
import os

from etils import epath
import grain
import hypothesis
from hypothesis import strategies as st
import numpy as np
import pytest
import tensorflow_datasets as tfds

from growjax import data
from growjax.data import documents

CODE = (
    "def f(x):\n\treturn  x  # tab, two spaces\n\n"
    "    indented = {'ключ': 'значение', 'emoji': '🦀'}\n"
    "\r\n\x00\x0b\x0c trailing   \n\n\n▁ literal U+2581 ▁▁\u00a0nbsp"
    "\u2028"
    "\n        deep = [1, 22, 333, 4444]  # digits\n")


@pytest.fixture(scope="session")
def shakespeare(text_path, data_dir):
  cfg = data.DataConfig(name="text_files", paths=[str(text_path)], seq_len=64,
                        vocab_size=512, dir=str(data_dir))
  return data.prepare(cfg)


@pytest.fixture(scope="session")
def python_source(data_dir):
  cfg = data.DataConfig(name="python_source", seq_len=128, vocab_size=1024,
                        tokenizer_chars=1_000_000, dir=str(data_dir))
  return data.prepare(cfg)


CORPORA = ["shakespeare", "python_source"]


@pytest.fixture(params=CORPORA)
def corpus(request):
  return request.getfixturevalue(request.param)


def _docs(split):
  """The split's documents (EOS included) as a multiset of byte strings."""
  return collections.Counter(
      split.document(i).astype(np.int32).tobytes()
      for i in range(split.num_docs))


def _stream_docs(stream, eos):
  """`stream` cut after every EOS, as a multiset of byte strings."""
  ends = np.flatnonzero(stream == eos) + 1
  assert ends[-1] == len(stream), "an epoch must end with a whole document"
  return collections.Counter(
      d.tobytes() for d in np.split(stream.astype(np.int32), ends[:-1]))


# Tokenizer.


def test_tokenizer_round_trips_code_exactly(corpus):
  tok = corpus.tokenizer
  ids = tok.encode(CODE)
  assert tok.decode(ids) == CODE
  assert all(0 <= i < tok.vocab_size for i in ids)
  assert tok.eos_id not in ids and tok.bos_id not in ids


@hypothesis.given(text=st.text(st.characters(codec="utf-8"), max_size=300))
def test_tokenizer_round_trips_any_unicode(shakespeare, python_source, text):
  for corpus in (shakespeare, python_source):
    assert corpus.tokenizer.decode(corpus.tokenizer.encode(text)) == text


def test_tokenizer_learns_code_whitespace(python_source):
  tok = python_source.tokenizer
  pieces = {tok.piece(i) for i in range(tok.vocab_size)}
  assert "    " in pieces  # an indent is one piece, not four
  assert len(tok.encode("        return self\n")) <= 4


def test_tokenizer_file_names_corpus_and_settings(shakespeare):
  name = shakespeare.tokenizer.path.name
  assert name.startswith("spm-text_files-files-")
  assert "-v512-" in name and "-c5000000-" in name
  assert shakespeare.tokenizer.path.exists()
  assert shakespeare.tokenizer.vocab_size == 512


def test_token_cache_is_the_tokenizer_on_each_document(corpus):
  for split_name in ("train", "validation"):
    split, texts = corpus.split(split_name), corpus.texts[split_name]
    assert split.num_docs == len(texts)
    for i in sorted({0, 1, split.num_docs - 1}):
      expected = corpus.tokenizer.encode(texts[i]) + [corpus.tokenizer.eos_id]
      np.testing.assert_array_equal(split.document(i), expected)
    assert corpus.num_tokens(split_name) == split.offsets[-1]


# Splits.


def test_validation_split_is_small_and_nonempty(corpus):
  train = corpus.split("train").num_docs
  val = corpus.split("validation").num_docs
  assert 1 <= val <= 0.05 * (train + val)
  b = data.builders.builder(corpus.config)
  keys = {s: {r["key"] for r in b.as_data_source(split=s)}
          for s in ("train", "validation")}
  assert len(keys["validation"]) == val
  assert not keys["train"] & keys["validation"]


@hypothesis.given(keys=st.lists(st.text(min_size=1), min_size=2, max_size=40,
                                unique=True),
                  fraction=st.floats(0.001, 0.5))
def test_split_puts_a_document_in_each_split(keys, fraction):
  split = documents.Split.of(keys, fraction, "test")
  in_val = [split.is_validation(k) for k in keys]
  assert any(in_val) and not all(in_val)


# Packing.


def test_train_epoch_holds_every_token_exactly_once(corpus):
  """Nothing is dropped: epochs follow each other in one stream, so the
  first num_tokens tokens are epoch 0, every document once (whole, with its
  EOS), and epoch 1 is the same documents in another order."""
  split = corpus.split("train")
  n, eos = split.num_tokens, corpus.tokenizer.eos_id
  it = data.batches(corpus, "train", batch_size=64, seq_len=127, seed=3,
                    shard_index=0, shard_count=1)
  steps = math.ceil(2 * n / (64 * 128))
  stream = np.concatenate([next(it).reshape(-1) for _ in range(steps)])
  docs = _docs(split)
  assert _stream_docs(stream[:n], eos) == docs
  assert _stream_docs(stream[n:2 * n], eos) == docs
  assert not np.array_equal(stream[:n], stream[n:2 * n])  # reshuffled
  assert not np.array_equal(stream[:n], split.tokens)  # shuffled at all


def test_validation_is_the_split_in_order_then_stops(corpus):
  """One epoch, unshuffled; the last batch is completed by wrapping to the
  split's start (every token seen, none dropped, no padding)."""
  tokens = np.asarray(corpus.split("validation").tokens, np.int32)
  make = lambda: data.batches(corpus, "validation", batch_size=4, seq_len=63,
                              num_epochs=1, shard_index=0, shard_count=1)
  got = list(make())
  assert len(got) == math.ceil(len(tokens) / (4 * 64))
  stream = np.concatenate([b.reshape(-1) for b in got])
  np.testing.assert_array_equal(stream[:len(tokens)], tokens)
  wrapped = np.resize(tokens, len(stream) - len(tokens))
  np.testing.assert_array_equal(stream[len(tokens):], wrapped)
  assert all(np.array_equal(a, b) for a, b in zip(got, make()))


def test_batches_have_the_documented_shape(shakespeare):
  it = data.batches(shakespeare, "train", batch_size=8, shard_index=1,
                    shard_count=2)
  batch = next(it)
  assert batch.dtype == np.int32 and batch.shape == (4, 65)  # config seq_len
  assert batch.min() >= 0 and batch.max() < shakespeare.tokenizer.vocab_size


@hypothesis.given(shard_count=st.sampled_from([1, 2, 4]),
                  rows=st.integers(1, 3), seed=st.integers(0, 2**31),
                  split=st.sampled_from(["train", "validation"]))
def test_shards_are_disjoint_and_cover_the_batch(shakespeare, shard_count,
                                                 rows, seed, split):
  batch_size = shard_count * rows
  make = lambda i, n: data.batches(shakespeare, split, batch_size=batch_size,
                                   seq_len=31, seed=seed, shard_index=i,
                                   shard_count=n)
  whole = make(0, 1)
  shards = [make(i, shard_count) for i in range(shard_count)]
  for _ in range(3):
    np.testing.assert_array_equal(
        np.concatenate([next(s) for s in shards]), next(whole))


# Iterator state.


@hypothesis.given(before=st.integers(0, 6), after=st.integers(1, 4),
                  seed=st.integers(0, 2**31),
                  shard_count=st.sampled_from([1, 2]),
                  corpus_name=st.sampled_from(CORPORA))
def test_restored_iterator_yields_the_same_batches(
    shakespeare, python_source, before, after, seed, shard_count, corpus_name):
  corpus = {"shakespeare": shakespeare, "python_source": python_source}[
      corpus_name]
  make = lambda: data.batches(corpus, "train", batch_size=4, seq_len=255,
                              seed=seed, shard_index=shard_count - 1,
                              shard_count=shard_count)
  it = make()
  for _ in range(before):
    next(it)
  state = json.loads(json.dumps(it.get_state()))  # survives a checkpoint
  expected = [next(it) for _ in range(after)]
  resumed = make()
  resumed.set_state(state)
  for want in expected:
    np.testing.assert_array_equal(next(resumed), want)


def test_state_carries_over_to_a_new_batch_size(shakespeare):
  """A growth stage that doubles the batch continues the same stream."""
  small = data.batches(shakespeare, "train", batch_size=4, seq_len=63,
                       shard_index=0, shard_count=1)
  for _ in range(5):
    next(small)
  big = data.batches(shakespeare, "train", batch_size=8, seq_len=63,
                     shard_index=0, shard_count=1)
  big.set_state(small.get_state())
  np.testing.assert_array_equal(next(big),
                                np.concatenate([next(small), next(small)]))


def test_grain_checkpoint_handler_saves_and_restores(shakespeare, tmp_path):
  make = lambda: data.batches(shakespeare, "train", batch_size=4,
                              shard_index=0, shard_count=1)
  it = make()
  next(it)
  grain.checkpoint.CheckpointHandler().save(epath.Path(tmp_path), item=it)
  want = next(it)
  restored = grain.checkpoint.CheckpointHandler().restore(
      epath.Path(tmp_path), item=make())
  np.testing.assert_array_equal(next(restored), want)


def test_state_from_another_pipeline_is_refused(shakespeare):
  it = data.batches(shakespeare, "train", batch_size=4, seed=0,
                    shard_index=0, shard_count=1)
  other = data.batches(shakespeare, "train", batch_size=4, seed=1,
                       shard_index=0, shard_count=1)
  with pytest.raises(ValueError, match="seed"):
    other.set_state(it.get_state())


# Cache.


def test_second_prepare_builds_nothing(shakespeare, python_source):
  for corpus in (shakespeare, python_source):
    files = [p for p in corpus.path.rglob("*") if p.is_file()]
    mtimes = {p: p.stat().st_mtime_ns for p in files}
    again = data.prepare(corpus.config)
    assert again.built == ()
    assert again.name == corpus.name
    assert {p: p.stat().st_mtime_ns for p in files} == mtimes
    assert again.num_tokens("train") == corpus.num_tokens("train")


def test_first_prepare_built_everything(shakespeare):
  # Session fixtures prepare into a fresh directory.
  assert shakespeare.built == ("dataset", "tokenizer", "tokens:train",
                               "tokens:validation")


def test_different_paths_get_different_caches(tmp_path, data_dir):
  a, b = tmp_path / "a.txt", tmp_path / "b.txt"
  text = "".join(f"line {i} of a small corpus\n" for i in range(300))
  a.write_text(text)
  b.write_text(text)
  names = set()
  for paths, sep in (([a], None), ([b], None), ([a, b], None), ([a], "of")):
    cfg = data.DataConfig(name="text_files", paths=[str(p) for p in paths],
                          separator=sep, seq_len=16, vocab_size=300,
                          dir=str(data_dir))
    names.add(data.prepare(cfg).name)
  assert len(names) == 4


# Errors: each names what is wrong.


def _cfg(data_dir, **kw):
  kw = {"name": "text_files", "seq_len": 16, "vocab_size": 300,
        "dir": str(data_dir), **kw}
  return data.DataConfig(**kw)


def test_missing_path_is_named(data_dir):
  with pytest.raises(ValueError, match="'/no/such/file.txt' does not exist"):
    data.prepare(_cfg(data_dir, paths=["/no/such/file.txt"]))


def test_glob_matching_nothing_is_named(data_dir, tmp_path):
  pattern = str(tmp_path / "*.nothing")
  with pytest.raises(ValueError, match="matches no file"):
    data.prepare(_cfg(data_dir, paths=[pattern]))


def test_empty_corpus_is_named(data_dir, tmp_path):
  (tmp_path / "empty.txt").write_text("")
  with pytest.raises(ValueError, match="empty corpus"):
    data.prepare(_cfg(data_dir, paths=[str(tmp_path / "empty.txt")]))
  (tmp_path / "seps.txt").write_text("@@" * 10)
  with pytest.raises(ValueError, match="is empty"):
    data.prepare(_cfg(data_dir, paths=[str(tmp_path / "seps.txt")],
                      separator="@@"))


def test_too_large_vocab_is_named(data_dir, tmp_path):
  path = tmp_path / "tiny.txt"
  path.write_text("".join(f"a tiny corpus, line {i}\n" for i in range(300)))
  with pytest.raises(ValueError,
                     match="vocab_size: 5000 is too large for corpus "
                           "text_files/"):
    data.prepare(_cfg(data_dir, paths=[str(path)], vocab_size=5000))


def test_too_small_vocab_is_named(shakespeare):
  cfg = shakespeare.config.replace(vocab_size=260)
  with pytest.raises(ValueError, match="vocab_size: 260 is too small"):
    data.prepare(cfg)


def test_unknown_dataset_is_named(data_dir):
  with pytest.raises(ValueError, match="'tiny_shakespare' is not .*did you "
                                       "mean 'tiny_shakespeare'"):
    data.prepare(data.DataConfig(name="tiny_shakespare", seq_len=8,
                                 vocab_size=300, dir=str(data_dir)))


def test_unknown_config_field_is_named():
  with pytest.raises(ValueError, match="unknown field.*'vocab'"):
    data.DataConfig.from_dict(dict(name="python_source", seq_len=8,
                                   vocab_size=512, vocab=3))


@pytest.mark.parametrize("field, value, message", [
    ("seq_len", 0, "seq_len: 0 < 1"),
    ("vocab_size", 100, "vocab_size: 100 < 260"),
    ("vocab_size", 7.5, "vocab_size: 7.5 is not an integer"),
    ("val_fraction", 0.9, r"val_fraction: 0.9 is not in \(0, 0.5\]"),
    ("separator", "", "separator: '' is not"),
    ("paths", ("a.txt",), "paths: .* given for dataset 'python_source'"),
])
def test_invalid_config_value_is_named(field, value, message):
  fields = dict(name="python_source", seq_len=8, vocab_size=512)
  with pytest.raises(ValueError, match=message):
    data.DataConfig(**{**fields, field: value})


def test_config_from_dict_makes_lists_tuples():
  cfg = data.DataConfig.from_dict(dict(name="text_files", seq_len=8,
                                       vocab_size=512, paths=["a", "b"]))
  assert cfg.paths == ("a", "b") and hash(cfg)
  with pytest.raises(ValueError, match="text_files needs the files"):
    data.DataConfig(name="text_files", seq_len=8, vocab_size=512)


def test_bad_batch_arguments_are_named(shakespeare):
  with pytest.raises(ValueError, match="batch_size=6 does not divide into "
                                       "shard_count=4"):
    data.batches(shakespeare, "train", batch_size=6, shard_index=0,
                 shard_count=4)
  with pytest.raises(ValueError, match="shard_index=2 is not below"):
    data.batches(shakespeare, "train", batch_size=4, shard_index=2,
                 shard_count=2)
  with pytest.raises(ValueError, match="split 'test' is not one of"):
    data.batches(shakespeare, "test", batch_size=4, shard_index=0,
                 shard_count=1)


# TFDS registry datasets, offline: a registered test builder stands in.


class GrowjaxTestRegistry(tfds.core.GeneratorBasedBuilder):
  """A registry dataset with its text under "content" and a test split."""

  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self,
        features=tfds.features.FeaturesDict({
            "content": tfds.features.Text(), "n": np.int32}))

  def _split_generators(self, dl_manager):
    return {"train": self._generate_examples(range(300)),
            "test": self._generate_examples(range(300, 320))}

  def _generate_examples(self, numbers):
    for i in numbers:
      yield i, {"content": f"record {i}: {'spam ' * (i % 7)}eggs\n", "n": i}


class GrowjaxTestOffline(tfds.core.GeneratorBasedBuilder):
  """A registry dataset whose download fails, as it does without network."""

  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self, features=tfds.features.FeaturesDict(
            {"text": tfds.features.Text()}))

  def _split_generators(self, dl_manager):
    raise ConnectionError("no network")

  def _generate_examples(self):
    yield from ()


def test_registry_dataset_by_name_and_text_key(data_dir):
  cfg = data.DataConfig(name="growjax_test_registry", text_key="content",
                        seq_len=16, vocab_size=300, dir=str(data_dir))
  corpus = data.prepare(cfg)
  assert corpus.split("validation").num_docs == 20  # its "test" split
  assert corpus.texts["train"][0].startswith("record ")
  batch = next(data.batches(corpus, "train", batch_size=2, shard_index=0,
                            shard_count=1))
  assert batch.shape == (2, 17)
  assert data.prepare(cfg).built == ()


def test_registry_missing_text_key_is_named(data_dir):
  cfg = data.DataConfig(name="growjax_test_registry", seq_len=16,
                        vocab_size=300, dir=str(data_dir))
  with pytest.raises(ValueError, match="text_key: 'text' is not a feature .*"
                                       "'content'"):
    data.prepare(cfg)


def test_registry_dataset_that_cannot_be_prepared_is_named(data_dir):
  cfg = data.DataConfig(name="growjax_test_offline", seq_len=16,
                        vocab_size=300, dir=str(data_dir))
  with pytest.raises(RuntimeError, match="'growjax_test_offline' could not "
                                         "be prepared.*no network"):
    data.prepare(cfg)


def test_real_registry_names_are_known_offline(data_dir):
  # Checks the name and text feature only: nothing is downloaded.
  cfg = data.DataConfig(name="tiny_shakespeare", seq_len=16, vocab_size=300,
                        dir=str(data_dir))
  assert data.builders.builder(cfg).name == "tiny_shakespeare"
  assert not os.path.exists(os.path.join(data_dir, "tiny_shakespeare", "1.0.0",
                                         "dataset_info.json"))
