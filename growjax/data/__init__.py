"""Text corpora, tokenizers and packed batches, cached and offline by default.

    from growjax import data
    dcfg = data.DataConfig(name="python_source", seq_len=256, vocab_size=4096)
    corpus = data.prepare(dcfg)          # built once, then read from the cache
    corpus.fingerprint()                 # {"name", "files", "bytes", ...}
    it = data.batches(corpus, "train", batch_size=32, seed=0)
    batch = next(it)                     # int32 [32 // processes, 257]
    state = it.get_state()               # JSON; it.set_state(state) resumes
    val = data.validation_windows(corpus, 256, tokens=1_000_000)  # fixed set
    data.loss_stats(per_window_losses)   # mean, standard error, chunk means

Corpora: "python_source" (this interpreter's Python source: `paths` roots
"stdlib" (default), "site-packages" or directories; no download),
"text_files" (any local files, `paths=[...]`), or a TFDS registry name.

Files: config.py (DataConfig), documents.py (local documents and their split),
builders.py (TFDS array_record builders), tokenizer.py (sentencepiece),
tokens.py (token id cache), fingerprint.py (the corpus's identity),
corpus.py (prepare), packing.py (rows from across each shuffled epoch),
pipeline.py (batches, sharding, iterator state), validation.py (the fixed
validation set and its statistics).
"""

import importlib

from growjax.data.config import DataConfig

# Everything but DataConfig loads TFDS, grain and sentencepiece (seconds, and
# not installed on a machine that only benchmarks a train step), so it is
# imported on first use: reading an experiment needs DataConfig alone.
_LAZY = {"Corpus": "corpus", "prepare": "corpus", "BatchIterator": "pipeline",
         "batches": "pipeline", "Tokenizer": "tokenizer",
         "loss_stats": "validation", "validation_windows": "validation"}
_MODULES = ("builders", "corpus", "documents", "fingerprint", "packing",
            "pipeline", "tokenizer", "tokens", "validation")

__all__ = ["BatchIterator", "Corpus", "DataConfig", "Tokenizer", "batches",
           "loss_stats", "prepare", "validation_windows"]


def __getattr__(name: str):
  if name in _LAZY:
    return getattr(importlib.import_module(f"growjax.data.{_LAZY[name]}"), name)
  if name in _MODULES:
    return importlib.import_module(f"growjax.data.{name}")
  raise AttributeError(f"module 'growjax.data' has no attribute {name!r}")


def __dir__():
  return sorted(set(globals()) | set(_LAZY) | set(_MODULES))
