r"""Hugging Face interop checked against transformers itself.

    python benchmarks/hf_interop.py           # GPU < 2 minutes, CPU a few
    python benchmarks/hf_interop.py --tiny    # a CPU smoke run, seconds
    python benchmarks/hf_interop.py --families  # the families, below

--families runs the cases of `hf_families.py` (Pythia, Llama 3.2, SmolLM2,
Qwen2.5 and Mistral configurations at tiny width): import, msg and
hyperclone growth, export, each against the numpy re-implementation of
transformers (`growjax.hf_reference`, float32, always) and, where torch and
transformers are importable, against transformers in float32 and bfloat16.
Its rows go under "families" in the results file (hf_interop.json on a GPU,
hf_interop_cpu.json elsewhere; --out to choose), beside the rows of the
default mode, which stay. Exits 1 if a row is over its tolerance: float32
--tolerance (1e-4), bfloat16 --bf16_tolerance (0.05) times the largest
|logit|.

Needs torch and transformers (growjax itself needs neither); without them it
prints why and exits 0. For each architecture, transformers builds a small
random model (weights redrawn so every logit is of order one: norm scales
and biases off 1 and 0, linear biases zero, which growjax requires), saves it
with `save_pretrained`, and then:

  import      growjax.hf.load_pretrained reads the files; growjax's logits
              against transformers' on the same tokens
  roundtrip   the imported params exported again and loaded by transformers
  grow        growjax.grow.grow with msg (width x2 and two new layers,
              interleaved; Llama's query heads x2 within their key/value
              groups) and hyperclone (width x2, Llama's key/value heads too;
              tied embeddings: no hidden width, which hyperclone cannot give a
              tied table, so GPT-NeoX's heads, d_model / n_heads wide, stay
              too); the grown model's logits against transformers' original
              logits
  export      the grown model trained a few steps (optax.adam, the msg masks
              ramped to 1 and folded), exported, loaded by
              `AutoModelForCausalLM.from_pretrained`; its logits against
              growjax's, and no missing or unexpected tensors

Logits are float32 on both sides (TF32 off in torch, "highest" matmul
precision in JAX); every row must be within --tolerance (1e-4) of its
reference. The models: GPTNeoXForCausalLM (LayerNorm, tanh GeLU, sequential
residual) and LlamaForCausalLM (RMSNorm, SwiGLU, 2 query heads per key/value
head, rope base 500000 as in Llama 3), each untied and tied. The exported
tokenizer is checked too: transformers' AutoTokenizer on the exported files
against growjax's sentencepiece model, on held-out text.

Writes benchmarks/results/hf_interop.json (--tiny: hf_interop_tiny.json),
one row per (architecture, direction, method) with max_abs_diff and the
largest |value| it is measured against (max_abs_ref); exits 1 if any row
is over the tolerance or the tokenizer disagrees.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import tempfile
import time

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # torch too
# GEMM autotuning costs most of the compile time of these small programs.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_gpu_autotune_level=0").strip()

RESULTS = pathlib.Path(__file__).parent / "results"
SIZES = {  # vocab, d_model, layers, heads, d_ff, tokens (batch, length)
    "tiny": dict(vocab=256, d_model=32, layers=2, heads=2, d_ff=64,
                 batch=2, length=16),
    "full": dict(vocab=2048, d_model=256, layers=4, heads=4, d_ff=1024,
                 batch=4, length=128),
}
TRAIN_STEPS, RAMP_STEPS = 4, 2


def _imports():
  try:
    import torch  # pylint: disable=g-import-not-at-top
    import transformers  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    return None, f"needs torch and transformers ({e})"
  return (torch, transformers), None


def _device(torch):
  return "cuda" if torch.cuda.is_available() else "cpu"


def _randomize(model, torch, seed, tied):
  """Weights of order one so logits are too; linear biases zero."""
  g = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for name, p in model.named_parameters():
      norm = "norm" in name
      if name.endswith(".bias") and not norm:
        p.zero_()
      elif norm:
        base = 0.0 if name.endswith(".bias") else 1.0
        p.copy_(base + 0.2 * torch.randn(p.shape, generator=g))
      else:
        # An untied input table is 4x larger (its rows feed a norm); a tied
        # one is also the output projection, scaled like one: logits of
        # order 20 would put float32's own rounding in both libraries (2e-5
        # to 5e-5 against float64 at this size) near the tolerance.
        table = "embed_in" in name or "embed_tokens" in name
        scale = (4.0 if table and not tied else 1.0) * p.shape[-1] ** -0.5
        p.copy_(scale * torch.randn(p.shape, generator=g))


def _hf_config(transformers, arch: str, s: dict, tie: bool):
  k = s["d_model"] // s["heads"]
  common = dict(vocab_size=s["vocab"], hidden_size=s["d_model"],
                num_hidden_layers=s["layers"], num_attention_heads=s["heads"],
                intermediate_size=s["d_ff"],
                max_position_embeddings=s["length"],
                tie_word_embeddings=tie)
  if arch == "GPTNeoXForCausalLM":
    return transformers.GPTNeoXConfig(
        **common, hidden_act="gelu_new", rotary_pct=1.0,
        rotary_emb_base=10000, use_parallel_residual=False,
        layer_norm_eps=1e-5, attention_bias=True)
  return transformers.LlamaConfig(
      **common, num_key_value_heads=s["heads"] // 2, head_dim=k,
      hidden_act="silu", rms_norm_eps=1e-5, rope_theta=500000.0,
      attention_bias=False, mlp_bias=False)


def _hf_logits(model, tokens, torch):
  with torch.no_grad():
    out = model(torch.as_tensor(tokens, device=_device(torch)))
  return out.logits.float().cpu().numpy()


def _load_hf(transformers, directory, torch):
  model, info = transformers.AutoModelForCausalLM.from_pretrained(
      directory, attn_implementation="eager", output_loading_info=True)
  return model.to(_device(torch)).float().eval(), {
      k: sorted(map(str, v)) for k, v in info.items() if v}


def _diff(a, b):
  import numpy as np  # pylint: disable=g-import-not-at-top
  return float(np.abs(np.asarray(a, np.float64) - np.asarray(b)).max())


def _train(params, cfg, masks, tokens):
  """hf_families' few Adam steps, at this benchmark's step counts."""
  import hf_families  # pylint: disable=g-import-not-at-top
  return hf_families.train_briefly(params, cfg, masks, tokens,
                                   TRAIN_STEPS, RAMP_STEPS)


def _architecture(arch, tie, s, libs, work, tol) -> list[dict]:
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from growjax import ModelConfig, grow, hf, model  # pylint: disable=g-import-not-at-top
  torch, transformers = libs
  apply = jax.jit(model.apply, static_argnums=1)  # one compile per shape
  label = arch + (" (tied)" if tie else "")
  rows = []
  clock = [time.time()]

  def row(direction, method, diff, ref, **extra):
    """`ref`: what the difference is measured against (logits or tensors);
    a checkpoint that transformers loads with missing or unexpected tensors
    fails whatever its logits."""
    rows.append({"architecture": label, "direction": direction,
                 "method": method, "max_abs_diff": diff,
                 "max_abs_ref": float(np.abs(ref).max()),
                 "ok": diff <= tol and not extra.get("loading_info"),
                 "seconds": round(time.time() - clock[0], 1), **extra})
    clock[0] = time.time()

  tokens = np.random.default_rng(0).integers(
      0, s["vocab"], (s["batch"], s["length"]))
  config = _hf_config(transformers, arch, s, tie)
  torch.manual_seed(0)
  reference = transformers.AutoModelForCausalLM.from_config(
      config, attn_implementation="eager")
  _randomize(reference, torch, seed=1, tied=tie)
  reference = reference.to(_device(torch)).float().eval()
  original = work / f"{label}-original"
  reference.save_pretrained(original)
  want = _hf_logits(reference, tokens, torch)

  # The Llama table at the tensor level: files -> growjax -> tensors.
  hf_config = json.loads((original / "config.json").read_text())
  table = hf.architecture_of(hf_config)
  fields = table.to_fields(hf_config, "config.json")
  tensors, _ = hf.read_tensors(original)
  back = hf.params_to_tensors(
      table, fields, hf.tensors_to_params(table, fields, tensors))
  row("tensor_roundtrip", "none",
      max(_diff(tensors[n], back[n]) for n in back),
      np.concatenate([t.ravel() for t in tensors.values()]),
      tensors=len(back), hf_tensors=len(tensors))

  try:
    fields, params = hf.load_pretrained(original)
  except hf.ConversionError as e:
    for direction, method in (("import", "none"), ("grow", "msg"),
                              ("grow", "hyperclone"), ("export", "msg"),
                              ("export", "hyperclone")):
      rows.append({"architecture": label, "direction": direction,
                   "method": method, "max_abs_diff": None,
                   "skipped": str(e).split(": ", 1)[1]})
    return rows
  cfg = ModelConfig(**fields)
  got = np.asarray(apply(params, cfg, tokens))
  row("import", "none", _diff(got, want), want)

  out = work / f"{label}-roundtrip"
  hf.save_pretrained(out, params, cfg)
  again, info = _load_hf(transformers, out, torch)
  row("roundtrip", "none", _diff(_hf_logits(again, tokens, torch), want),
      want, loading_info=info)

  d, h, f, layers = s["d_model"], s["heads"], s["d_ff"], s["layers"]
  kv = None if cfg.n_kv_heads is None else 2 * cfg.n_kv_heads
  growths = {
      # Llama: n_kv_heads kept, so query heads grow within their groups
      "msg": (cfg.replace(d_model=2 * d, n_heads=2 * h, d_ff=2 * f,
                          n_layers=layers + 2), {"new_layers": "interleave"}),
      # Llama: the groups are copied too. Tied: the table cannot be widened,
      # and GPT-NeoX's heads are d_model / n_heads wide, so only its MLP grows
      "hyperclone": (cfg.replace(
          d_model=d if tie else 2 * d, d_ff=2 * f,
          n_heads=h if tie and cfg.norm == "layernorm" else 2 * h,
          n_kv_heads=kv), {}),
  }
  for method, (big, options) in growths.items():
    try:
      grown = jax.jit(lambda p, k: grow.grow(p, cfg, big, k, method=method,
                                             **options))(
                                                 params, jax.random.key(2))
    except ValueError as e:
      for direction in ("grow", "export"):
        rows.append({"architecture": label, "direction": direction,
                     "method": method, "max_abs_diff": None,
                     "skipped": str(e)})
      continue
    logits = np.asarray(apply(grown.params, big, tokens, masks=grown.masks))
    row("grow", method, _diff(logits, want), want,
        grown={k: getattr(big, k) for k in ("d_model", "n_layers", "n_heads",
                                            "kv_heads", "d_ff")})
    trained, losses = _train(grown.params, big, grown.masks, tokens)
    out = work / f"{label}-{method}"
    hf.save_pretrained(out, trained, big)
    exported, info = _load_hf(transformers, out, torch)
    ours = np.asarray(apply(trained, big, tokens))
    row("export", method, _diff(_hf_logits(exported, tokens, torch), ours),
        ours, loading_info=info, train_losses=losses)
  return rows


def _tokenizer(libs, work, tiny: bool) -> dict:
  """AutoTokenizer on the exported files against growjax's sentencepiece
  model, on standard-library source it was not trained on."""
  _, transformers = libs
  try:
    from growjax.data import documents, tokenizer  # pylint: disable=g-import-not-at-top
  except Exception as e:  # pylint: disable=broad-except
    # growjax's data stack (tensorflow-datasets, grain) is not installed
    return {"skipped": f"growjax.data cannot be imported "
                       f"({type(e).__name__}: {e})"}
  files = documents.python_files(documents.stdlib_root())
  train_text = "".join(p.read_text(encoding="utf-8", errors="replace")
                       for p in files[:40])
  held_out = "".join(p.read_text(encoding="utf-8", errors="replace")
                     for p in files[-(5 if tiny else 60):])
  held_out += "  ünïcödé ▁ 🙂 \t\t\n\n"
  tok = tokenizer.train([train_text], work / "spm.model", vocab_size=512,
                        max_chars=300_000, corpus="stdlib")
  from growjax import hf  # pylint: disable=g-import-not-at-top
  hf.save_tokenizer(work / "tok", tok.path, max_len=128)
  fast = transformers.AutoTokenizer.from_pretrained(
      work / "tok", model_max_length=10**9)
  ids, want = fast(held_out)["input_ids"], tok.encode(held_out)
  return {"class": type(fast).__name__, "chars": len(held_out),
          "tokens": len(want), "ids_equal": ids == want,
          "mismatched_positions": sum(a != b for a, b in zip(ids, want))
                                  + abs(len(ids) - len(want)),
          "decode_equal": fast.decode(want) == held_out,
          "special_ids": [fast.unk_token_id, fast.bos_token_id,
                          fast.eos_token_id]}


def _machine() -> dict:
  """This host and JAX's first device, as the results record them."""
  import jax  # pylint: disable=g-import-not-at-top
  return {"platform": platform.platform(), "cpu": _cpu_name(),
          "cpu_count": os.cpu_count(), "jax_backend": jax.default_backend(),
          "devices": [str(d) for d in jax.devices()][:1]}


def _cpu_name() -> str:
  """The CPU's model name (Linux), else what platform knows."""
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name"):
        return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor()


def _print(r: dict) -> None:
  diff = ("skipped: " + r["skipped"]) if r["max_abs_diff"] is None else (
      f"{r['max_abs_diff']:12.3g} {r['max_abs_ref']:10.3g} "
      f"{r['seconds']:6.1f} s" + ("" if r["ok"] else "  OVER"))
  print(f"{r['architecture']:28} {r['direction']:16} {r['method']:10} {diff}",
        flush=True)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--tiny", action="store_true",
                      help="tiny shapes: a CPU smoke run")
  parser.add_argument("--tolerance", type=float, default=1e-4)
  parser.add_argument("--out", type=pathlib.Path, default=None)
  parser.add_argument("--families", action="store_true",
                      help="the hf_families cases against the numpy "
                           "reference and, if importable, transformers")
  parser.add_argument("--references", default="numpy-float32,"
                      "transformers-float32,transformers-bfloat16",
                      help="--families: which references, comma-separated "
                           "(rows of the others already in --out are kept)")
  parser.add_argument("--bf16_tolerance", type=float, default=0.05,
                      help="bfloat16 rows: largest |difference| over the "
                           "largest |logit|")
  args = parser.parse_args(argv)
  if args.families:
    return families(args)
  libs, why = _imports()
  if libs is None:
    print(f"hf_interop: skipped: {why}")
    return 0
  torch, transformers = libs
  import flax  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import safetensors  # pylint: disable=g-import-not-at-top
  jax.config.update("jax_default_matmul_precision", "highest")
  torch.backends.cuda.matmul.allow_tf32 = False
  torch.backends.cudnn.allow_tf32 = False
  mode = "tiny" if args.tiny else "full"
  s = SIZES[mode]
  start = time.time()
  rows = []
  print(f"{'architecture':28} {'direction':16} {'method':10} "
        f"{'max_abs_diff':>12} {'max|ref|':>10}")
  from growjax import progress  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as tmp, progress.bar(
      total=4, desc="hf_interop", unit="model") as bar:
    work = pathlib.Path(tmp)
    for arch in ("GPTNeoXForCausalLM", "LlamaForCausalLM"):
      for tie in (False, True):
        t0 = time.time()
        new = _architecture(arch, tie, s, libs, work, args.tolerance)
        for r in new:
          _print(r)
        print(f"  ({time.time() - t0:.1f} s)")
        rows += new
        bar.update()
    tok = _tokenizer(libs, work, args.tiny)
  ok = all(r.get("ok", True) for r in rows) and tok.get("ids_equal", True)
  result = {
      "mode": mode, "sizes": s, "tolerance": args.tolerance,
      "train_steps": TRAIN_STEPS, "ramp_steps": RAMP_STEPS,
      "machine": dict(_machine(), torch_device=_device(torch)),
      "versions": {"python": platform.python_version(),
                   "jax": jax.__version__, "flax": flax.__version__,
                   "numpy": np.__version__, "torch": torch.__version__,
                   "transformers": transformers.__version__,
                   "safetensors": safetensors.__version__},
      "seconds": round(time.time() - start, 1),
      "all_within_tolerance": ok, "rows": rows, "tokenizer": tok,
  }
  out = args.out or RESULTS / ("hf_interop_tiny.json" if args.tiny
                               else "hf_interop.json")
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(result, indent=1) + "\n")
  if "skipped" in tok:
    print(f"tokenizer: skipped: {tok['skipped']}")
  else:
    print(f"tokenizer ({tok['class']}): ids equal {tok['ids_equal']} on "
          f"{tok['tokens']} tokens, decode equal {tok['decode_equal']}")
  print(f"written: {out} ({result['seconds']} s)")
  return 0 if ok else 1


def families(args) -> int:
  """--families: hf_families' cases, merged into the results file under
  "families"."""
  import flax  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import hf_families  # pylint: disable=g-import-not-at-top
  unknown = set(args.references.split(",")) - set(hf_families.REFERENCES)
  if unknown:
    raise SystemExit(f"--references: {', '.join(sorted(unknown))}: not one of "
                     f"{', '.join(hf_families.REFERENCES)}")
  jax.config.update("jax_default_matmul_precision", "highest")
  libs, why = _imports()
  versions = {"jax": jax.__version__, "flax": flax.__version__,
              "numpy": np.__version__}
  if libs is not None:
    torch, transformers = libs
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    versions.update(torch=torch.__version__,
                    transformers=transformers.__version__)
  else:
    print(f"transformers: skipped ({why}); numpy reference only")
  batch, length = (2, 16) if args.tiny else (2, 64)
  tokens = np.random.default_rng(0).integers(0, 256, (batch, length))
  start = time.time()
  print(f"{'case':14} {'reference':12} {'dtype':8} {'direction':9} "
        f"{'method':10} {'max_abs_diff':>12} {'max|ref|':>9}")

  def print_row(r):
    head = (f"{r['case']:14} {r['reference']:12} {r['dtype']:8} "
            f"{r['direction']:9} {r['method']:10} ")
    if "error" in r:
      print(head + r["error"], flush=True)
      return
    print(head + f"{r['max_abs_diff']:12.3g} {r['max_abs_ref']:9.3g} "
          f"{r['seconds']:6.1f} s" + ("" if r["ok"] else "  OVER"),
          flush=True)

  out = args.out or RESULTS / ("hf_interop.json" if jax.default_backend()
                               == "gpu" else "hf_interop_cpu.json")
  merged = json.loads(out.read_text()) if out.exists() else {}
  chosen = [r for r in args.references.split(",")
            if r and (libs is not None or not r.startswith("transformers"))]
  # rows of references not rerun here (an earlier call's) are kept
  kept = [r for r in merged.get("families", {}).get("rows", [])
          if f"{r['reference']}-{r['dtype']}" not in chosen]
  machine = _machine()
  rows: list[dict] = []

  def write(new=()):  # after every case: a run cut short keeps its rows
    rows.extend(dict(r, machine=machine["devices"][0]) for r in new)
    every = kept + rows
    merged["families"] = {
        "mode": "tiny" if args.tiny else "full", "tokens": [batch, length],
        "tolerance": args.tolerance, "bf16_tolerance": args.bf16_tolerance,
        "train_steps": hf_families.TRAIN_STEPS,
        "ramp_steps": hf_families.RAMP_STEPS,
        "cases": hf_families.CASES, "machine": machine,
        "versions": {"python": platform.python_version(), **versions},
        "commands": sorted(set(merged.get("families", {}).get("commands", []))
                           | {" ".join(["python benchmarks/hf_interop.py",
                                        *sys.argv[1:]])}),
        "seconds": round(time.time() - start, 1),
        "all_within_tolerance": all(r["ok"] for r in every), "rows": every,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(merged, indent=1) + "\n")

  hf_families.run(libs=libs, tokens=tokens, tolerance=args.tolerance,
                  bf16_tolerance=args.bf16_tolerance, print_row=print_row,
                  references=chosen, on_case=write)
  write()
  ok = merged["families"]["all_within_tolerance"]
  print(f"written: {out} (families, {merged['families']['seconds']} s, "
        f"{len(rows)} new rows, {len(kept)} kept, all within tolerance: {ok})")
  return 0 if ok else 1


if __name__ == "__main__":
  sys.exit(main())
