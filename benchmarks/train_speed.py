r"""Training throughput of growjax's train step beside a plain JAX step, in one run.

    python benchmarks/train_speed.py           # one H200; rows start until --budget_s
    python benchmarks/train_speed.py --tiny    # CPU smoke run
    python benchmarks/train_speed.py --sizes 1.3B --seq_lens 2048 \
        --remats dots --impls growjax --profile /tmp/trace   # one config traced

Each row is one jitted AdamW train step on random tokens: growjax's
(growjax.train.step.make_train_step with growjax.train.optimizer.make) or the
plain step of benchmarks/plain_step.py, with the same shapes, FLOPs, optimizer
and bfloat16 compute. Sizes 125M, 350M and 1.3B (vocab 32,000) at seq 1024 and
2048 with 32,768 tokens per step (32 x 1024, 16 x 2048), each with the remat
policies that matter (growjax.model.REMAT). A row compiles ahead of time, is
refused if its compiled program needs more than the device's memory, warms up
for 2 steps and times `--steps` steps (block_until_ready at the end). A row
that fails (out of memory included) is recorded with its error; rows that the
time budget (`--budget_s`) would not cover are recorded as skipped, the most
informative rows (each size's first policy, both steps) first.

FLOPs: growjax.cost.train_flops_per_token, PaLM's convention (6 x matmul
weights + 6 D V + 12 L H K s, full non-causal attention, no recomputation).
`causal_tflops` halves the attention term (what a causal kernel does).
MFU against 989 TFLOP/s (H100/H200 dense bf16) and against the bf16
8192^3 matmul rate measured at the start of the same run. JAX may use 95% of
the GPU's memory (XLA_PYTHON_CLIENT_MEM_FRACTION, unless set).
`peak_memory_gib` is the compiled program's own peak (XLA's memory analysis:
arguments, outputs and temporaries), not the process-wide allocator peak,
which only ever grows over a run.

Writes benchmarks/results/train_speed_h200.json (`--out` to change):
machine, jax, matmul_bf16_tflops, runs (one row per impl, size, seq_len,
remat). `--loss_chunk N` gives growjax's rows growjax.loss's chunked
cross-entropy (no [B, T, V] logits). `--profile DIR` writes a jax.profiler
trace of 3 steps of the first row and prints its top device ops by time
(read from the trace's perfetto JSON; no xprof needed).
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.95")  # before jax

import argparse  # noqa: E402
import collections  # noqa: E402
import gc  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import plain_step  # noqa: E402  (benchmarks/, beside this file)

from growjax import ModelConfig, cost, model  # noqa: E402
from growjax.train import optimizer as opt_lib  # noqa: E402
from growjax.train import step as step_lib  # noqa: E402

SIZES = {  # name: (d_model, n_layers, n_heads, head_dim, d_ff)
    "tiny": (64, 2, 4, 16, 256),
    "125M": (768, 12, 12, 64, 3072),
    "350M": (1024, 24, 16, 64, 4096),
    "1.3B": (2048, 24, 16, 128, 8192),
    "study": (512, 8, 8, 64, 2048),  # experiments/growth_study.py's final shape
}
# Policies per size, the expected fastest first.
REMATS = {"tiny": ("dots",), "study": ("none",), "125M": ("none", "dots"),
          "350M": ("none", "dots"), "1.3B": ("dots", "none", "full")}
VOCAB = 32_000  # the tiny smoke model uses 512
SEQ_LENS = {"study": (512,)}  # sizes measured at their own lengths only
TOKENS_PER_STEP = 32_768
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0}  # dense bf16, datasheet
RESULTS = pathlib.Path(__file__).parent / "results"


def use_compilation_cache():
  """Compiled programs persist, so a rerun on the same machine skips them."""
  jax.config.update("jax_compilation_cache_dir", os.environ.get(
      "GROWJAX_BENCH_CACHE", "/tmp/growjax_bench_jax_cache"))


def matmul_tflops(n: int = 8192, reps: int = 20) -> float:
  """bf16 n^3 matmul rate on random data: the ceiling a model step can reach."""
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.bfloat16)
  b = jax.random.normal(jax.random.key(1), (n, n), jnp.bfloat16)
  f = jax.jit(lambda a, b: a @ b)
  f(a, b).block_until_ready()
  start = time.perf_counter()
  for _ in range(reps):
    out = f(a, b)
  out.block_until_ready()
  return 2 * n**3 * reps / (time.perf_counter() - start) / 1e12


def vocab(size: str) -> int:
  return {"tiny": 512, "study": 8192}.get(size, VOCAB)


def growjax_config(size: str, seq_len: int) -> ModelConfig:
  d, layers, heads, k, f = SIZES[size]
  return ModelConfig(vocab_size=vocab(size), d_model=d, n_layers=layers,
                     n_heads=heads, head_dim=k, d_ff=f, max_len=seq_len,
                     pos="xpos", dtype="bfloat16")


def build(impl: str, size: str, seq_len: int, remat: str,
          loss_chunk: int | None = None):
  """(init(key) -> state, train_step(state, batch) -> (state, out))."""
  if impl == "plain":
    d, layers, heads, k, f = SIZES[size]
    return plain_step.make(plain_step.Config(
        vocab=vocab(size), d_model=d, n_layers=layers, n_heads=heads,
        head_dim=k, d_ff=f, remat=remat))
  cfg = growjax_config(size, seq_len)
  lr = optax.constant_schedule(1e-4)
  optimizer = opt_lib.make(opt_lib.Optimizer(), lr)

  def init(key):
    params = model.init(cfg, key)
    return {"params": params, "opt_state": optimizer.init(params),
            "step": jnp.zeros((), jnp.int32)}

  return init, step_lib.make_train_step(cfg, optimizer, lr, remat=remat,
                                       loss_chunk=loss_chunk)


def program_bytes(compiled) -> int | None:
  m = compiled.memory_analysis()
  if m is None:
    return None
  peak = getattr(m, "peak_memory_in_bytes", 0)
  return peak or (m.argument_size_in_bytes + m.output_size_in_bytes
                  - m.alias_size_in_bytes + m.temp_size_in_bytes)


_INITS = {}


def measure(impl, size, seq_len, remat, *, steps, warmup, profile=None,
            loss_chunk=None):
  batch_size = TOKENS_PER_STEP // seq_len if size != "tiny" else 8
  init, train_step = build(impl, size, seq_len, remat, loss_chunk)
  key = jax.random.key(0)
  tokens = jax.random.randint(jax.random.key(1), (batch_size, seq_len + 1), 0,
                              vocab(size), jnp.int32)
  start = time.perf_counter()
  compiled = jax.jit(train_step, donate_argnames=("state",)).lower(
      jax.eval_shape(init, key), tokens).compile()
  row = {"batch": batch_size, "compile_s": time.perf_counter() - start}
  need = program_bytes(compiled)
  row["peak_memory_gib"] = None if need is None else need / 2**30
  limit = (jax.devices()[0].memory_stats() or {}).get("bytes_limit")
  if need and limit and need > limit:
    raise MemoryError(f"needs {need / 2**30:.1f} GiB of {limit / 2**30:.1f}")
  # one compiled init per (impl, size): seq_len and remat leave the state alone
  state = _INITS.setdefault((impl, size), jax.jit(init))(key)
  for _ in range(warmup):
    state, out = compiled(state, tokens)
  jax.block_until_ready(out)
  start = time.perf_counter()
  for _ in range(steps):
    state, out = compiled(state, tokens)
  jax.block_until_ready((state, out))
  row["step_s"] = (time.perf_counter() - start) / steps
  row["loss"] = float(out["loss"] if isinstance(out, dict) else out)
  if profile:
    jax.profiler.start_trace(profile, create_perfetto_trace=True)
    for _ in range(3):
      state, out = compiled(state, tokens)
    jax.block_until_ready((state, out))
    jax.profiler.stop_trace()
  del state, out
  return row


def top_ops(trace_dir: str, n: int = 15) -> list[tuple[str, float, float]]:
  """(op, ms, share) of the most expensive device ops in the newest perfetto
  trace under `trace_dir` (GPU: the "XLA Ops" line, else its streams; CPU:
  every host event)."""
  traces = sorted(pathlib.Path(trace_dir).glob("**/perfetto_trace.json.gz"),
                  key=os.path.getmtime)
  if not traces:
    return []
  data = json.load(gzip.open(traces[-1]))
  events = data["traceEvents"] if isinstance(data, dict) else data
  procs, threads = {}, {}
  for e in events:
    if e.get("ph") == "M" and e.get("name") == "process_name":
      procs[e["pid"]] = e["args"]["name"]
    if e.get("ph") == "M" and e.get("name") == "thread_name":
      threads[(e["pid"], e["tid"])] = e["args"]["name"]
  gpus = {p for p, name in procs.items() if "GPU" in name or "device:" in name}
  lines = {t for t in threads if t[0] in gpus}
  ops_lines = {t for t in lines if threads[t] == "XLA Ops"}
  keep = ops_lines or {t for t in lines if threads[t].startswith("Stream")}
  times = collections.Counter()
  for e in events:
    if e.get("ph") == "X" and (not gpus or (e["pid"], e["tid"]) in keep):
      times[e["name"]] += e.get("dur", 0.0) / 1e3
  total = sum(times.values()) or 1.0
  return [(name, ms, ms / total) for name, ms in times.most_common(n)]


def plan(sizes, seq_lens, impls, remats):
  """Rows in the order they run: each size's first policy (both impls) at
  every seq_len, then the other policies, largest size and seq_len first (the
  rows a time budget drops are the small models' second choices)."""
  rows = [(i, impl, size, seq, remat) for size in sizes
          for seq in SEQ_LENS.get(size, seq_lens)
          for i, remat in enumerate(remats or REMATS[size]) for impl in impls]
  first = [r[1:] for r in rows if r[0] == 0]
  rest = [r[1:] for r in rows if r[0] > 0]
  rest.sort(key=lambda r: (-sizes.index(r[1]), -r[2]))  # stable: keeps impls
  return first + rest


def print_table(rows):
  print(f"\n{'impl':>7} {'size':>5} {'seq':>5} {'batch':>5} {'remat':>8} "
        f"{'tok/s':>9} {'TFLOP/s':>8} {'MFU':>6} {'/matmul':>7} "
        f"{'causal':>6} {'GiB':>6} {'compile':>7}")
  for r in rows:
    remat = r["remat"] + (f"/c{r['loss_chunk']}" if r.get("loss_chunk")
                          else "")
    head = (f"{r['impl']:>7} {r['size']:>5} {r['seq_len']:>5} "
            f"{r['batch'] or 0:>5} {remat:>8}")
    if r.get("error"):
      print(f"{head}  {r['error']}")
      continue
    pct = lambda v: f"{v:6.1%}" if v is not None else "     -"
    print(f"{head} {r['tokens_per_s']:>9,.0f} {r['model_tflops']:>8.1f} "
          f"{pct(r['mfu_vs_peak'])} {pct(r['mfu_vs_matmul']):>7} "
          f"{pct(r['mfu_causal_vs_peak'])} {r['peak_memory_gib'] or 0:>6.1f} "
          f"{r['compile_s']:>6.1f}s")
  best = {}
  for r in rows:
    if not r.get("error"):
      k = (r["size"], r["seq_len"], r["impl"])
      if r["tokens_per_s"] > best.get(k, {"tokens_per_s": 0})["tokens_per_s"]:
        best[k] = r
  print("\nbest policy per impl: growjax / plain")
  for (size, seq, impl), g in sorted(best.items()):
    p = best.get((size, seq, "plain"))
    if impl == "growjax" and p:
      print(f"{size:>5} seq {seq:>5}: growjax {g['tokens_per_s']:>9,.0f} tok/s "
            f"({g['remat']}), plain {p['tokens_per_s']:>9,.0f} ({p['remat']}): "
            f"{g['tokens_per_s'] / p['tokens_per_s']:.3f}x")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--sizes", default=None, help="default 125M,350M,1.3B")
  parser.add_argument("--seq_lens", default=None, help="default 1024,2048")
  parser.add_argument("--impls", default="growjax,plain")
  parser.add_argument("--remats", default=None,
                      help="policies for every size (default: REMATS)")
  parser.add_argument("--steps", type=int, default=None, help="default 10")
  parser.add_argument("--budget_s", type=float, default=420.0,
                      help="skip rows that would start past this many seconds")
  parser.add_argument("--out", default=None)
  parser.add_argument("--profile", default=None, metavar="DIR")
  parser.add_argument("--loss_chunk", type=int, default=None,
                      help="growjax rows use growjax.loss's chunked "
                           "cross-entropy, this many positions per chunk")
  parser.add_argument("--tiny", action="store_true",
                      help="a CPU smoke run (tiny model, seq 32)")
  args = parser.parse_args(argv)
  tiny = args.tiny
  sizes = (args.sizes or ("tiny" if tiny else "125M,350M,1.3B")).split(",")
  seq_lens = [int(s) for s in (args.seq_lens or ("32" if tiny else
                                                 "1024,2048")).split(",")]
  steps = args.steps or (2 if tiny else 10)
  impls = args.impls.split(",")
  remats = args.remats.split(",") if args.remats else None
  for name in sizes:
    if name not in SIZES:
      parser.error(f"--sizes: {name!r} is not one of {list(SIZES)}")
  for impl in impls:
    if impl not in ("growjax", "plain"):
      parser.error(f"--impls: {impl!r} is not 'growjax' or 'plain'")
  for remat in remats or ():
    if remat not in model.REMAT or (remat == "offload" and "plain" in impls):
      parser.error(f"--remats: {remat!r} is not one of {list(model.REMAT)} "
                   "(offload: growjax only)")
  out = pathlib.Path(args.out) if args.out else (
      pathlib.Path("/tmp/train_speed_tiny.json") if tiny
      else RESULTS / "train_speed_h200.json")

  use_compilation_cache()
  device = jax.devices()[0]
  kind = device.device_kind
  peak = next((v for k, v in PEAK_TFLOPS.items() if k in kind), None)
  matmul = matmul_tflops(256 if tiny else 8192, 2 if tiny else 20)
  print(f"{kind} ({device.platform}), jax {jax.__version__}: bf16 matmul "
        f"{matmul:.1f} TFLOP/s, peak {peak} TFLOP/s", flush=True)
  started, rows, last_s = time.perf_counter(), [], {}
  for impl, size, seq, remat in plan(sizes, seq_lens, impls, remats):
    cfg = growjax_config(size, seq)
    chunk = args.loss_chunk if impl == "growjax" else None
    row = {"impl": impl, "size": size, "params": model.param_count(cfg),
           "seq_len": seq, "batch": None, "remat": remat, "loss_chunk": chunk}
    guess = last_s.get(size, 0.0)
    if time.perf_counter() - started + guess > args.budget_s:
      rows.append({**row, "error": "skipped: time budget"})
      continue
    row_start = time.perf_counter()
    try:
      row.update(measure(impl, size, seq, remat, steps=steps,
                         warmup=1 if tiny else 2, profile=args.profile,
                         loss_chunk=chunk))
      if args.profile:
        print(f"trace of {impl} {size} seq {seq} {remat}: {args.profile}")
        ops = top_ops(args.profile)
        for name, ms, share in ops:
          print(f"  {ms / 3:9.2f} ms/step {share:6.1%}  {name[:90]}")
        if not ops:
          print("  (no perfetto trace found: open the trace with xprof)")
        args.profile = None
    except Exception as e:  # pylint: disable=broad-except
      msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else repr(e)
      oom = isinstance(e, MemoryError) or "RESOURCE_EXHAUSTED" in str(e)
      row["error"] = ("OOM: " if oom else f"{type(e).__name__}: ") + msg
    gc.collect()
    last_s[size] = max(last_s.get(size, 0.0), time.perf_counter() - row_start)
    if "step_s" in row:
      tok_s = row["batch"] * seq / row["step_s"]
      flops = cost.train_flops_breakdown(cfg, seq)
      causal = sum(flops.values()) - flops["attention"] / 2
      row.update(
          tokens_per_s=tok_s,
          model_tflops=cost.model_tflops_per_s(cfg, seq, tok_s),
          causal_tflops=causal * tok_s / 1e12)
      row.update(
          mfu_vs_peak=row["model_tflops"] / peak if peak else None,
          mfu_vs_matmul=row["model_tflops"] / matmul,
          mfu_causal_vs_peak=row["causal_tflops"] / peak if peak else None)
    rows.append(row)
    print(f"[{time.perf_counter() - started:5.0f}s] {impl} {size} {seq} "
          f"{remat}: " + (row.get("error") or
                          f"{row['tokens_per_s']:,.0f} tok/s, loss "
                          f"{row['loss']:.3f}"), flush=True)
  print_table(rows)
  result = {
      "machine": f"{kind} ({device.platform}), "
                 f"{platform.processor() or platform.machine()}",
      "jax": jax.__version__, "matmul_bf16_tflops": matmul,
      "peak_bf16_tflops": peak, "tokens_per_step": TOKENS_PER_STEP,
      "flops": "PaLM: 6 x matmul weights + 6 D V + 12 L H K s per token "
               "(full attention); causal_tflops halves the attention term",
      "wall_s": time.perf_counter() - started, "runs": rows}
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(result, indent=1))
  print(f"wrote {out} ({result['wall_s']:.0f} s)")


if __name__ == "__main__":
  main()
