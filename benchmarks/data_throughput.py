"""Tokens per second the data pipeline delivers on one CPU core, and what
preparing its corpus cost.

    python benchmarks/data_throughput.py [--dir DIR] [--seconds 5] \
        [--paths site-packages]

Prepares python_source (seq_len 256, vocab 4096; `--paths` its roots, default
the stdlib; from the cache when it is there, else timed as a cold prepare on
every core, each part apart), pins the process to one core, warms up, then
draws shuffled batches of 32 (every row from anywhere in the epoch) for a
fixed time. Target: >= 1,000,000 tokens/s.

For comparison it also times grain's own per-document packing
(`ConcatThenSplitIterDataset` over shuffled token arrays, from the same token
cache): the gap is why growjax cuts windows from the token stream with
vectorised numpy instead (growjax/data/packing.py).

Prints a table and writes benchmarks/results/data_throughput.json.
"""

import argparse
import json
import os
import pathlib
import platform
import time

import grain
import numpy as np

from growjax import data

RESULTS = pathlib.Path(__file__).parent / "results" / "data_throughput.json"


def _rate(it, seconds: float, warmup: int = 20) -> float:
  """Tokens per second drawn from `it` after `warmup` batches."""
  for _ in range(warmup):
    next(it)
  tokens, start = 0, time.perf_counter()
  while time.perf_counter() - start < seconds:
    for _ in range(10):
      tokens += next(it).size
  return tokens / (time.perf_counter() - start)


def _grain_reference(corpus, seq_len: int, batch_size: int):
  """grain's per-document pipeline: shuffle documents, pack, batch."""
  split = corpus.split("train")
  docs = grain.MapDataset.range(split.num_docs).map(
      lambda i: {"tokens": np.asarray(split.document(i), np.int32)})
  ds = docs.shuffle(seed=0).repeat().to_iter_dataset(
      grain.ReadOptions(num_threads=0, prefetch_buffer_size=0))
  ds = grain.experimental.ConcatThenSplitIterDataset(
      ds, length_struct={"tokens": seq_len + 1})
  return iter(ds.map(lambda x: x["tokens"]).batch(batch_size))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--dir", default=None, help="data cache directory")
  parser.add_argument("--seconds", type=float, default=5.0)
  parser.add_argument("--seq_len", type=int, default=256)
  parser.add_argument("--batch_size", type=int, default=32)
  parser.add_argument("--vocab_size", type=int, default=4096)
  parser.add_argument("--paths", nargs="*", default=[],
                      help="python_source roots: stdlib, site-packages, dirs")
  args = parser.parse_args()

  cfg = data.DataConfig(name="python_source", seq_len=args.seq_len,
                        vocab_size=args.vocab_size, paths=args.paths,
                        dir=args.dir)
  cores = len(os.sched_getaffinity(0))
  start = time.perf_counter()
  corpus = data.prepare(cfg)
  prepare_s = time.perf_counter() - start

  core = min(os.sched_getaffinity(0))
  os.sched_setaffinity(0, {core})  # one core, whatever the machine has
  it = data.batches(corpus, "train", seq_len=args.seq_len,
                    batch_size=args.batch_size, seed=0, shard_index=0,
                    shard_count=1)
  rate = _rate(it, args.seconds)
  reference = _rate(_grain_reference(corpus, args.seq_len, args.batch_size),
                    args.seconds)

  result = {
      "tokens_per_s": round(rate),
      "target_tokens_per_s": 1_000_000,
      "grain_concat_then_split_tokens_per_s": round(reference),
      "seq_len": args.seq_len,
      "batch_size": args.batch_size,
      "worker_count": 0,
      "cpu_cores_used": 1,
      "corpus": corpus.fingerprint(),
      "paths": list(cfg.paths) or ["stdlib"],
      "vocab_size": corpus.tokenizer.vocab_size,
      "train_tokens": corpus.num_tokens("train"),
      "validation_tokens": corpus.num_tokens("validation"),
      "prepare_s": round(prepare_s, 2),
      "prepare_part_s": dict(corpus.seconds),
      "prepare_cores": cores,
      "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                 f"{platform.processor() or platform.platform()}",
      "python": platform.python_version(),
      "grain": grain.__version__,
  }
  rows = [("growjax packed stream (this pipeline)", rate),
          ("grain ConcatThenSplit per document", reference)]
  print(f"{'pipeline':40s} {'tokens/s':>14s}")
  for name, value in rows:
    print(f"{name:40s} {value:14,.0f}")
  fp = corpus.fingerprint()
  parts = ", ".join(f"{k} {v:.1f}s" for k, v in corpus.seconds.items())
  print(f"prepare {prepare_s:.1f}s on {cores} cores ({parts or 'cached'}); "
        f"{fp['files']:,} files, {fp['bytes']:,} bytes, "
        f"{corpus.num_tokens('train'):,} train tokens; seq_len "
        f"{args.seq_len}, batch {args.batch_size}, 1 core")
  RESULTS.parent.mkdir(parents=True, exist_ok=True)
  RESULTS.write_text(json.dumps(result, indent=2) + "\n")
  print(f"wrote {RESULTS}")


if __name__ == "__main__":
  main()
