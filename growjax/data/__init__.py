"""Text corpora, tokenizers and packed batches, cached and offline by default.

    from growjax import data
    dcfg = data.DataConfig(name="python_source", seq_len=256, vocab_size=4096)
    corpus = data.prepare(dcfg)          # built once, then read from the cache
    it = data.batches(corpus, "train", batch_size=32, seed=0)
    batch = next(it)                     # int32 [32 // processes, 257]
    state = it.get_state()               # JSON; it.set_state(state) resumes

Corpora: "python_source" (this interpreter's standard library, no download),
"text_files" (any local files, `paths=[...]`), or a TFDS registry name.

Files: config.py (DataConfig), documents.py (local documents and their split),
builders.py (TFDS array_record builders), tokenizer.py (sentencepiece),
tokens.py (token id cache), corpus.py (prepare), packing.py (the shuffled,
packed stream), pipeline.py (batches, sharding, iterator state).
"""

from growjax.data.config import DataConfig
from growjax.data.corpus import Corpus, prepare
from growjax.data.pipeline import BatchIterator, batches
from growjax.data.tokenizer import Tokenizer

__all__ = ["BatchIterator", "Corpus", "DataConfig", "Tokenizer", "batches",
           "prepare"]
