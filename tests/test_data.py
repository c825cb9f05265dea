"""growjax.data: corpora, tokenizer, packed batches, iterator state, the fixed
validation set, fingerprints, errors.

Two corpora are prepared once per session in the `data_dir` cache:
tinyshakespeare through text_files (or, on a machine without ../shared, a text
file this module writes), and python_source (the whole standard library,
tokenizer trained on a capped 1M characters). Other corpora are a few tmp files.
"""

import collections
import json
import logging
import math
import os
import pathlib
import re
import sysconfig

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


def _epoch_stream(it, rows, batch_size):
  """The first `rows` rows of `it`, put back in their epoch's window order
  and joined: the epoch's token stream (plus the wrapped tail)."""
  got = np.concatenate(
      [next(it) for _ in range(-(-rows // batch_size))])[:rows]
  epoch, window = it.stream.locate(np.arange(rows))
  assert (epoch == 0).all() and sorted(window) == list(range(rows))
  return got[np.argsort(window)].reshape(-1)


def test_train_epoch_holds_every_token_exactly_once(corpus):
  """Nothing is dropped: epoch e's rows are its windows, each once, in a
  shuffled order; put back in order they are every document once (whole,
  with its EOS), and the next epoch has the documents in another order."""
  split = corpus.split("train")
  n, eos = split.num_tokens, corpus.tokenizer.eos_id
  make = lambda seed: data.batches(corpus, "train", batch_size=64, seq_len=127,
                                   seed=seed, shard_index=0, shard_count=1)
  it = make(3)
  rows = it.stream.epoch_rows
  assert rows == math.ceil(n / 128)
  stream = _epoch_stream(it, rows, 64)
  assert _stream_docs(stream[:n], eos) == _docs(split)
  # The last window is completed from the epoch's own start.
  np.testing.assert_array_equal(stream[n:], stream[:len(stream) - n])
  assert not np.array_equal(stream[:n], split.tokens)  # shuffled at all
  other = _epoch_stream(make(4), rows, 64)
  assert _stream_docs(other[:n], eos) == _docs(split)
  assert not np.array_equal(stream[:n], other[:n])  # another seed, order


def test_batch_rows_come_from_across_the_epoch(shakespeare):
  """A batch's rows are windows from all over the epoch: almost no two rows
  of a batch are neighbouring windows (the old order made every pair
  neighbours), and each batch spans most of the epoch."""
  it = data.batches(shakespeare, "train", batch_size=16, seq_len=31, seed=5,
                    shard_index=0, shard_count=1)
  rows = it.stream.epoch_rows
  assert rows > 1000  # else neighbours would be likely by chance
  neighbours = spans = 0
  for b in range(50):
    _, window = it.stream.locate(np.arange(16 * b, 16 * (b + 1)))
    neighbours += (np.abs(np.diff(np.sort(window))) == 1).sum()
    spans += np.ptp(window) > rows / 2
  assert neighbours <= 10  # of 750 pairs; ~2 expected by chance
  assert spans >= 45  # of 50 batches; a span below half: P ~ 16 / 2**15


def test_validation_is_the_split_in_order_then_stops(corpus):
  """Unshuffled, rows are the split's consecutive windows, the last one
  completed from the split's start; one epoch, then the last batch is
  completed by wrapping to the first rows (no padding), then it stops."""
  tokens = np.asarray(corpus.split("validation").tokens, np.int32)
  make = lambda: data.batches(corpus, "validation", batch_size=4, seq_len=63,
                              num_epochs=1, shard_index=0, shard_count=1)
  rows = math.ceil(len(tokens) / 64)
  got = list(make())
  assert len(got) == math.ceil(rows / 4)
  every = np.concatenate(got)
  stream = every[:rows].reshape(-1)
  np.testing.assert_array_equal(stream[:len(tokens)], tokens)
  np.testing.assert_array_equal(stream[len(tokens):],
                                tokens[:len(stream) - len(tokens)])
  np.testing.assert_array_equal(every[rows:], every[:len(every) - rows])
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


@hypothesis.given(sizes=st.lists(st.sampled_from([1, 2, 3, 4, 8]), min_size=2,
                                 max_size=5),
                  seed=st.integers(0, 2**31))
def test_state_carries_over_to_a_new_batch_size(shakespeare, sizes, seed):
  """Growth stages with other batch sizes continue one row stream: batches
  drawn through resumed iterators of sizes `sizes` are that stream's rows."""
  make = lambda size: data.batches(shakespeare, "train", batch_size=size,
                                   seq_len=63, seed=seed, shard_index=0,
                                   shard_count=1)
  got, state = [], None
  for size in sizes:
    it = make(size)
    if state is not None:
      it.set_state(json.loads(json.dumps(state)))
    got.append(next(it))
    state = it.get_state()
  assert state["row"] == sum(sizes)
  one = make(1)
  want = np.concatenate([next(one) for _ in range(sum(sizes))])
  np.testing.assert_array_equal(np.concatenate(got), want)


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
  old = {k: v for k, v in it.get_state().items() if k != "row"}
  with pytest.raises(ValueError, match="no valid 'row'"):
    it.set_state({**old, "window": 64})  # consecutive windows: another stream


# The fixed validation set.


def test_validation_set_is_fixed_and_sized(corpus, caplog):
  """It takes no seed or batch size, so every run gets the same set: the
  asked number of predicted tokens in whole windows of the split, or every
  window the split holds (and a warning says so)."""
  tokens = np.asarray(corpus.split("validation").tokens, np.int32)
  available = len(tokens) // 32
  windows = data.validation_windows(corpus, seq_len=31, tokens=31 * 50 - 7)
  assert windows.shape == (50, 32) and windows.dtype == np.int32
  np.testing.assert_array_equal(
      windows, data.validation_windows(corpus, seq_len=31, tokens=31 * 50))
  with caplog.at_level(logging.WARNING):
    every = data.validation_windows(corpus, seq_len=31, tokens=10**9)
  np.testing.assert_array_equal(every, tokens[:available * 32].reshape(-1, 32))
  assert f"holds {available} windows of 32 tokens" in caplog.text


def test_validation_set_spreads_over_the_split(shakespeare):
  """Windows are disjoint, window-aligned pieces of the split, in its order,
  evenly spaced from its start to its end (not its first files only)."""
  tokens = np.asarray(shakespeare.split("validation").tokens, np.int32)
  available = len(tokens) // 32
  pieces = tokens[:available * 32].reshape(available, 32)
  windows = data.validation_windows(shakespeare, seq_len=31, tokens=31 * 20)
  where = [int(np.flatnonzero((pieces == w).all(1))[0]) for w in windows]
  assert where[0] == 0 and where[-1] >= available * 19 // 20 - 1
  gaps = np.diff(where)
  assert gaps.min() >= available // 20 - 1 and gaps.max() <= available // 20 + 1


def test_validation_split_without_a_whole_window_is_refused(shakespeare):
  n = shakespeare.num_tokens("validation")
  with pytest.raises(ValueError, match="holds no window"):
    data.validation_windows(shakespeare, seq_len=n, tokens=1)


def test_loss_stats_worked_example():
  # mean 2.5; sample std sqrt(5/3) = 1.29099; se = 1.29099 / sqrt(4).
  stats = data.loss_stats([1.0, 2.0, 3.0, 4.0], chunks=2)
  assert stats["loss"] == 2.5 and stats["windows"] == 4
  assert stats["se"] == pytest.approx(0.645497, abs=1e-6)
  assert stats["chunk_means"] == [1.5, 3.5]


@hypothesis.given(losses=st.lists(st.floats(0, 20), min_size=1, max_size=60),
                  chunks=st.integers(1, 25))
def test_loss_stats_chunks_are_equal_and_average_to_the_mean(losses, chunks):
  stats = data.loss_stats(losses, chunks=chunks)
  k = min(chunks, len(losses))
  sizes = [len(p) for p in np.array_split(np.arange(len(losses)), k)]
  assert len(stats["chunk_means"]) == k and max(sizes) - min(sizes) <= 1
  assert np.dot(sizes, stats["chunk_means"]) / len(losses) == pytest.approx(
      stats["loss"], abs=1e-9)


def test_loss_stats_refuses_non_finite_losses():
  with pytest.raises(ValueError, match="finite"):
    data.loss_stats([1.0, float("nan")])


# Fingerprint.


def _small_files(directory, n=3, lines=150):
  directory.mkdir(parents=True, exist_ok=True)
  for i in range(n):
    (directory / f"part{i}.txt").write_text("".join(
        f"file {i}, line {j}: some text to learn pieces from\n"
        for j in range(lines)))
  return sorted(directory.glob("*.txt"))


def test_fingerprint_counts_the_corpus_and_is_stable(tmp_path):
  files = _small_files(tmp_path / "a")
  cfg = data.DataConfig(name="text_files", paths=[str(tmp_path / "a/*.txt")],
                        seq_len=16, vocab_size=300, dir=str(tmp_path / "c1"))
  corpus = data.prepare(cfg)
  fp = corpus.fingerprint()
  assert set(fp) >= {"name", "files", "bytes", "tokens", "sha256"}
  assert fp["name"] == corpus.name and fp["files"] == 3
  assert fp["bytes"] == sum(f.stat().st_size for f in files)  # ASCII text
  assert fp["tokens"] == corpus.num_tokens("train")
  assert fp["validation_tokens"] == corpus.num_tokens("validation")
  assert data.prepare(cfg).fingerprint() == fp  # cached
  # The same files in another place and another cache: the same text.
  for f in files:
    (tmp_path / "b").mkdir(exist_ok=True)
    (tmp_path / "b" / f.name).write_bytes(f.read_bytes())
  moved = data.prepare(cfg.replace(paths=(str(tmp_path / "b/*.txt"),),
                                   dir=str(tmp_path / "c2")))
  assert moved.fingerprint()["sha256"] == fp["sha256"]


def test_fingerprint_changes_with_a_file(tmp_path):
  files = _small_files(tmp_path / "a")
  cfg = data.DataConfig(name="text_files", paths=[str(tmp_path / "a/*.txt")],
                        seq_len=16, vocab_size=300, dir=str(tmp_path / "c"))
  before = data.prepare(cfg).fingerprint()
  files[1].write_text(files[1].read_text().replace("line 7:", "line 7;"))
  after = data.prepare(cfg).fingerprint()
  assert after["name"] != before["name"]  # a new cache entry
  assert after["sha256"] != before["sha256"]
  assert after["bytes"] == before["bytes"]


# python_source roots.


def _py_tree(root, n=120):
  for i in range(n):
    path = root / f"pkg{i % 4}" / f"mod{i}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"def f{i}(x):\n  return x * {i}  # module {i}\n" * 20)
  (root / "pkg0" / "__pycache__").mkdir()
  (root / "pkg0" / "__pycache__" / "cached.py").write_text("x = 1\n")


def test_site_packages_root_resolves_here():
  purelib = pathlib.Path(sysconfig.get_paths()["purelib"])
  assert documents.python_root("site-packages") == purelib
  assert documents.python_root("stdlib") == pathlib.Path(
      sysconfig.get_paths()["stdlib"])
  cfg = data.DataConfig(name="python_source", seq_len=8, vocab_size=512,
                        paths=["site-packages"])
  assert cfg.paths == ("site-packages",)
  sources = documents.python_sources(cfg.paths)
  assert len(sources) > 100  # pytest, numpy, jax, ... are installed there
  key, path = sources[0]
  assert path == purelib / key and "__pycache__" not in key


def test_directory_root_is_a_corpus_keyed_by_relative_path(tmp_path):
  _py_tree(tmp_path / "src")
  cfg = data.DataConfig(name="python_source", paths=[str(tmp_path / "src")],
                        seq_len=16, vocab_size=300, dir=str(tmp_path / "c"))
  corpus = data.prepare(cfg)
  keys = {k for split in ("train", "validation")
          for k, _ in corpus.texts[split].items()}
  assert keys == {f"pkg{i % 4}/mod{i}.py" for i in range(120)}
  assert corpus.fingerprint()["files"] == 120
  # Several roots: keys name their root, and a file is read once.
  both = documents.python_sources(
      [str(tmp_path / "src"), str(tmp_path / "src" / "pkg1")])
  assert len(both) == 120
  assert both[0][0] == f"{tmp_path / 'src'}/pkg0/mod0.py"


def test_python_source_cache_key_follows_the_file_set(tmp_path):
  _py_tree(tmp_path / "src", n=8)
  cfg = data.DataConfig(name="python_source", paths=[str(tmp_path / "src")],
                        seq_len=16, vocab_size=300, dir=str(tmp_path / "c"))
  name = lambda: data.builders.corpus_name(data.builders.builder(cfg))
  first = name()
  assert name() == first
  (tmp_path / "src" / "new.py").write_text("y = 2\n")
  second = name()
  assert second != first
  (tmp_path / "src" / "new.py").unlink()
  assert name() == first


def test_root_missing_on_this_machine_is_named(tmp_path):
  root = tmp_path / "gone"
  root.mkdir()
  cfg = data.DataConfig(name="python_source", paths=[str(root)], seq_len=8,
                        vocab_size=512, dir=str(tmp_path / "c"))
  root.rmdir()
  with pytest.raises(ValueError, match=f"DataConfig.paths: python_source root "
                                       f"'{root}' .* is not a directory"):
    data.prepare(cfg)


# Tokenizer training sample.


def test_tokenizer_sample_is_spread_over_many_documents():
  """Within its character budget the sample reaches SAMPLE_DOCS documents,
  each a piece that starts at a line boundary, mostly not at the top."""
  docs = ["".join(f"line {j} of doc {i}\n" for j in range(3000))
          for i in range(400)]
  budget, used, seen, heads = 2_000_000, 0, set(), 0
  for piece in data.tokenizer.sample(docs, max_chars=budget):
    if used >= budget:
      break
    used += len(piece)
    first = re.match(r"line (\d+) of doc (\d+)\n", piece)
    assert first and piece in docs[int(first.group(2))]
    seen.add(int(first.group(2)))
    heads += first.group(1) == "0"
  assert len(seen) >= data.tokenizer.SAMPLE_DOCS
  assert heads <= 5


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


def test_first_prepare_built_everything(shakespeare, tmp_path):
  # A fresh directory of its own: other test files may have prepared the
  # session's shakespeare cache first.
  first = data.prepare(shakespeare.config.replace(dir=str(tmp_path)))
  assert first.built == ("dataset", "tokenizer", "tokens:train",
                         "tokens:validation", "fingerprint")


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
    ("seq_len", 0, "DataConfig.seq_len: 0 is not an integer >= 1"),
    ("vocab_size", 100, "DataConfig.vocab_size: 100 is not an integer >= 260"),
    ("vocab_size", 7.5, "vocab_size: 7.5 is not an integer"),
    ("tokenizer_chars", True, "tokenizer_chars: True is not an integer"),
    ("val_fraction", 0.9, "val_fraction: 0.9 is not a number > 0 and <= 0.5"),
    ("separator", "", "separator: '' is not"),
    ("paths", ("/no/such/dir",),
     "DataConfig.paths: python_source root '/no/such/dir' is not 'stdlib', "
     "'site-packages' or a directory"),
])
def test_invalid_config_value_is_named(field, value, message):
  fields = dict(name="python_source", seq_len=8, vocab_size=512)
  with pytest.raises(ValueError, match=message):
    data.DataConfig(**{**fields, field: value})


def test_paths_of_a_registry_dataset_are_refused():
  with pytest.raises(ValueError, match="paths: .* given for dataset 'lm1b'"):
    data.DataConfig(name="lm1b", seq_len=8, vocab_size=512, paths=["a.txt"])


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
  with pytest.raises(ValueError, match="batches: shard_index: 2 is not an "
                                       "integer >= 0 and <= 1"):
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
