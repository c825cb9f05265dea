"""growjax.evaluate end to end: the extrapolation benchmark trains tiny RoPE
and xPos runs, two seeds each (once per session); then the ppl, length and
iq suites, several runs side by side, the sampling CLI and the CLIs'
one-line errors run on them.

The runs read tinyshakespeare (or, without ../shared, a stdlib text) at a
training length of 16 tokens, 20 steps: enough to check every number's
bookkeeping, not to learn anything.
"""

import ast
import dataclasses
import importlib.util
import json
import math
import os
import pathlib
import subprocess
import sys
import textwrap

import hypothesis
from hypothesis import strategies as st
import numpy as np
import optax
import pytest

from growjax import data, model, sample, trained
from growjax.command import UsageError
from growjax import evaluate_cli as cli
from growjax.evaluate import extrapolation, iq, lm, suites
from growjax.experiment import Eval
from growjax.train import metrics

REPO = pathlib.Path(__file__).resolve().parents[1]
TRAIN_LEN = 16
SEEDS = (0, 1)
SCALE_BASE = 8.0
EVAL_TOKENS = 2048
BLOCKS = (None, TRAIN_LEN // 2, TRAIN_LEN)


def _benchmark():
  """benchmarks/extrapolation.py, a script, as a module."""
  path = REPO / "benchmarks" / "extrapolation.py"
  spec = importlib.util.spec_from_file_location("extrapolation_benchmark", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.fixture(scope="session")
def runs(tmp_path_factory, text_path, data_dir):
  """The extrapolation benchmark on a tiny variant of
  experiments/extrapolation.py: trains RUNS/rope/seed{0,1} and
  RUNS/xpos_sb8/seed{0,1}, writes RUNS/extrapolation.json + .png."""
  root = tmp_path_factory.mktemp("extrapolation")
  config = root / "tiny_extrapolation.py"
  experiment = REPO / "experiments" / "extrapolation.py"
  config.write_text(textwrap.dedent(f"""
      from growjax import command

      def get_config(arg=None):
        c = command.load_experiment(
            "{experiment}:" + arg + ",runlocal,seq_len={TRAIN_LEN},"
            "tokens={32 * TRAIN_LEN * 20}")
        c.data = dict(name="text_files", paths=[{str(text_path)!r}],
                      seq_len={TRAIN_LEN}, vocab_size=512,
                      dir={str(data_dir)!r})
        c.stages[0]["lr"]["warmup_steps"] = 5
        c.train.progress = False
        c.checkpoint.every_steps = c.eval.every_steps = 1000  # at the end only
        return c
      """))
  results = _benchmark().run(root, config=config, seeds=SEEDS,
                             scale_bases=[SCALE_BASE], eval_tokens=EVAL_TOKENS,
                             out=root / "extrapolation.json")
  return root, results


def _workdir(runs, kind="xpos_sb8", seed=0):
  return runs[0] / kind / f"seed{seed}"


def test_extrapolation_benchmark_writes_every_arm_seed_interval_and_plot(runs):
  root, results = runs
  written = json.loads((root / "extrapolation.json").read_text())
  assert (root / "extrapolation.png").stat().st_size > 0
  assert written["train_len"] == TRAIN_LEN and written["machine"]
  arms = written["arms"]
  expected = {(pos, sb, seed, block)
              for pos, sb in (("rope", None), ("xpos", SCALE_BASE))
              for seed in SEEDS for block in BLOCKS}
  assert {(a["pos"], a["scale_base"], a["seed"], a["block"])
          for a in arms} == expected and len(arms) == len(expected)
  for a in arms:
    assert a["attention"] == ("causal" if a["block"] is None else "blockwise")
    assert (a["train_len"], a["n_layers"], a["d_model"]) == (TRAIN_LEN, 2, 64)
    assert list(a["loss"]) == ["1x", "2x", "4x", "8x"]
    assert all(math.isfinite(v) for v in a["loss"].values())
    assert len(a["curve"]["loss"]) * a["curve"]["bin"] == 8 * TRAIN_LEN
  assert len(written["summary"]) == 2 * len(BLOCKS)
  for s in written["summary"]:
    assert s["seeds"] == list(SEEDS)
    for m, e in s["loss"].items():
      losses = [a["loss"][m] for a in arms if all(
          a[k] == s[k] for k in extrapolation.GROUP)]
      assert e["mean"] == pytest.approx(np.mean(losses))
      assert e["low"] < e["mean"] < e["high"]
  assert len(written["differences"]) == len(BLOCKS)
  assert "xPos - RoPE, loss, paired by seed" in results["table"]


def test_blocks_of_l_read_2x_as_causal_and_every_reading_agrees_at_1x(runs):
  """The issue's point: with blocks of l a 2x window is two blocks, each
  seeing the other, i.e. plain causal attention; blocks of l/2 differ."""
  arms = json.loads((runs[0] / "extrapolation.json").read_text())["arms"]
  by = {(a["pos"], a["seed"], a["block"]): a["loss"] for a in arms}
  for pos in ("rope", "xpos"):
    for seed in SEEDS:
      causal, half, full = (by[(pos, seed, b)] for b in BLOCKS)
      assert half["1x"] == pytest.approx(causal["1x"], rel=1e-6)
      assert full["1x"] == pytest.approx(causal["1x"], rel=1e-6)
      assert full["2x"] == pytest.approx(causal["2x"], rel=1e-6)
      assert half["2x"] != pytest.approx(causal["2x"], rel=1e-7)


def test_benchmark_rerun_trains_and_reads_nothing_again(runs, monkeypatch):
  from growjax import cli as train_cli  # pylint: disable=g-import-not-at-top
  root, first = runs
  called = []
  monkeypatch.setattr(train_cli, "train", lambda *a, **k: called.append(a))
  monkeypatch.setattr(suites, "length", lambda *a, **k: called.append(a))
  again = _benchmark().run(root, config=root / "tiny_extrapolation.py",
                           seeds=SEEDS, scale_bases=[SCALE_BASE],
                           eval_tokens=EVAL_TOKENS, out=root / "again.json")
  assert not called
  assert again["arms"] == json.loads(
      (root / "extrapolation.json").read_text())["arms"]


@hypothesis.given(n=st.integers(1, 3), longest=st.sampled_from([4, 8, 12]),
                  length=st.sampled_from([1, 2, 4]))
def test_pieces_predict_exactly_the_tokens_of_their_windows(n, longest,
                                                            length):
  hypothesis.assume(longest % length == 0)
  windows = np.arange(n * (longest + 1)).reshape(n, longest + 1)
  cut = lm.pieces(windows, length)
  assert cut.shape == (n * longest // length, length + 1)
  # the targets (all but the first token of each piece) tile the windows'
  assert (cut[:, 1:].reshape(n, longest) == windows[:, 1:]).all()
  assert (cut[:, :-1].reshape(n, longest) == windows[:, :-1]).all()


def test_t_interval_worked_example():
  e = extrapolation.t_interval([1.0, 2.0, 3.0])
  half = 4.302652729911275 / math.sqrt(3)  # t(0.975, 2) x sd 1 / sqrt(3)
  assert (e["mean"], e["sd"], e["n"]) == (2.0, 1.0, 3)
  assert (e["low"], e["high"]) == pytest.approx((2 - half, 2 + half))
  assert extrapolation.t_interval([5.0])["low"] is None


def test_ppl_suite_scores_the_fixed_validation_set(runs, capsys):
  workdir = _workdir(runs)
  assert cli.run(workdir, "ppl", tokens=160) == 0
  result = json.loads((workdir / "eval_ppl.json").read_text())
  run = trained.load_latest(workdir)
  windows = data.validation_windows(data.prepare(run.experiment.data),
                                    TRAIN_LEN, 160)
  logits = model.apply(run.params, run.config, windows[:, :-1])
  per_window = np.asarray(optax.softmax_cross_entropy_with_integer_labels(
      logits, windows[:, 1:])).mean(1)
  assert result["windows"] == len(windows) == 10
  assert result["tokens"] == 160 and result["seq_len"] == TRAIN_LEN
  assert result["loss"] == pytest.approx(per_window.mean(), rel=1e-5)
  assert result["se"] == pytest.approx(
      per_window.std(ddof=1) / math.sqrt(10), rel=1e-4)
  assert result["perplexity"] == pytest.approx(math.exp(result["loss"]))
  assert "perplexity" in capsys.readouterr().out


@pytest.mark.skipif(
    "tokens" not in {f.name for f in dataclasses.fields(Eval)},
    reason="the trainer validates on data.validation_windows once "
           "eval.tokens lands")
def test_ppl_suite_reproduces_the_trainers_validation_loss(runs):
  workdir = _workdir(runs, "rope")
  result = cli.evaluate(workdir, "ppl")
  last_val = [r["val_loss"] for r in metrics.read(workdir)
              if "val_loss" in r][-1]
  assert result["loss"] == pytest.approx(last_val, rel=1e-5)


def test_length_suite_reads_each_length_three_ways_on_the_same_text(
    runs, tmp_path, capsys):
  workdir, out = _workdir(runs, "rope"), tmp_path / "length.json"
  assert cli.run(workdir, "length", out=out, multiples="1,2,4",
                 tokens=EVAL_TOKENS) == 0
  result = json.loads(out.read_text())
  assert list(result["readings"]) == ["causal", "blockwise_8", "blockwise_16"]
  assert result["pos"] == "rope" and result["scale_base"] is None
  texts = set()
  for name, curve in result["readings"].items():
    assert curve["block_len"] == (None if name == "causal"
                                  else int(name.split("_")[1]))
    for m, entry in zip((1, 2, 4), curve["lengths"].values()):
      assert entry["context"] == m * TRAIN_LEN
      assert entry["pieces"] * m * TRAIN_LEN == curve["tokens"]
      assert entry["loss"] == pytest.approx(np.mean(entry["buckets"]))
      assert entry["loss"] == pytest.approx(np.mean(entry["window_losses"]))
      texts.add(entry["text"])
  assert len(texts) == 1  # every length and reading scored the same tokens
  table = capsys.readouterr().out
  assert "[32,48)" in table and "blocks 8 (l/2)" in table


def test_iq_suite_scores_per_token_beside_chance_and_floor_and_exports(
    runs, tmp_path, capsys):
  workdir = _workdir(runs)
  out, jsonl = tmp_path / "iq.json", "tasks_5.jsonl"  # relative: the workdir's
  assert cli.run(workdir, "iq", out=out, export_jsonl=jsonl, n_per_task=3,
                 tasks="parity,head_tail", iq_seed=5) == 0
  jsonl = workdir / jsonl
  result = json.loads(out.read_text())
  assert result["normalisation"] == "per token"
  assert set(result["tasks"]) == {"parity", "head_tail"}
  assert result["tasks"]["parity"]["chance"] == 0.5
  for entry in result["tasks"].values():
    assert entry["n"] == 3 and 0 <= entry["accuracy"] <= 1
    assert 0 <= entry["floor"] <= 1 and len(entry["accuracy_ci"]) == 2
  assert iq.load_jsonl(jsonl) == iq.generate(5, 3,
                                             names=["parity", "head_tail"])
  printed = capsys.readouterr().out
  assert "chance" in printed and f"tasks: {jsonl}" in printed


@pytest.mark.parametrize("suite", ["ppl", "length", "iq"])
def test_several_workdirs_give_one_table_with_a_column_each(runs, tmp_path,
                                                            suite):
  a, b = _workdir(runs, "rope"), _workdir(runs, "xpos_sb8")
  out = tmp_path / f"{suite}.json"
  options = {"ppl": dict(tokens=160),
             "length": dict(tokens=EVAL_TOKENS, multiples="1,2"),
             "iq": dict(n_per_task=2, tasks="parity")}[suite]
  result = cli.evaluate([a, b], suite, out=out, **options)
  written = json.loads(out.read_text())
  names = ["rope/seed0", "xpos_sb8/seed0"]  # base names repeat: the paths
  assert [m["name"] for m in written["models"]] == names
  assert list(written["results"]) == names
  header = result["table"].splitlines()[0]
  assert all(n in header for n in names)
  for n, w in zip(names, (a, b)):  # each model's own result, in its workdir
    own = json.loads((w / f"eval_{suite}.json").read_text())
    assert own["step"] == written["results"][n]["step"]
  if suite == "ppl":  # paired over the same windows: the losses' difference
    r = [written["results"][n] for n in names]
    d = written["differences"][f"{names[1]} - {names[0]}"]
    assert d["mean"] == pytest.approx(r[1]["loss"] - r[0]["loss"])
    assert d["windows"] == r[0]["windows"]
  if suite == "length":
    d = written["differences"][f"{names[1]} - {names[0]}"]["blockwise_8"]
    r = [written["results"][n]["readings"]["blockwise_8"]["lengths"]["2x"]
         for n in names]
    assert d["2x"]["mean"] == pytest.approx(r[1]["loss"] - r[0]["loss"])


@pytest.mark.parametrize("options, message", [
    (dict(blocks="5"), "--blocks: block 5: not a positive divisor of the "
                       f"read length {TRAIN_LEN}"),
    (dict(blocks="causal,0"), "--blocks: block 0: not a positive integer"),
    (dict(blocks="half"), "--blocks='half': 'half' is neither 'causal' nor"),
    (dict(multiples="1,3,4"), "--multiples: 3 do not divide the largest, 4"),
    (dict(multiples="1,65536"), "--multiples: 65536x the training length 16"),
])
def test_length_suite_bad_readings_are_usage_errors(runs, options, message):
  with pytest.raises(UsageError) as e:
    cli.evaluate(_workdir(runs), "length", **options)
  assert str(e.value).startswith(message), str(e.value)
  assert "\n" not in str(e.value)


def test_sample_command_continues_the_prompt(runs):
  assert sample.sample(_workdir(runs), "ROMEO:", max_new_tokens=6,
                       temperature=0.0).startswith("ROMEO:")


def _cli(module, *args):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  return subprocess.run([sys.executable, "-m", module, *map(str, args)],
                        capture_output=True, text=True, env=env, cwd=REPO,
                        timeout=120)


@pytest.mark.parametrize("case", ["no checkpoint", "unknown suite"])
def test_evaluate_cli_user_errors_are_one_line_and_exit_2(runs, tmp_path,
                                                          case):
  if case == "no checkpoint":
    args, message = (["--workdir", _workdir(runs), "--workdir", tmp_path,
                      "--suite", "ppl"],
                     f"error: workdir {tmp_path}: holds no checkpoint")
  else:
    args, message = (["--workdir", _workdir(runs), "--suite", "bleu"],
                     "error: --suite='bleu': unknown suite (one of ppl, "
                     "length, iq)")
  done = _cli("growjax.evaluate", *args)
  assert done.returncode == 2, done.stderr
  assert done.stderr.strip().startswith(message), done.stderr
  assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_sample_cli_prompt_longer_than_the_cache_is_one_line_exit_2(runs):
  done = _cli("growjax.sample", "--workdir", _workdir(runs, "rope"),
              "--prompt", "ROMEO: " * 20, "--max_new_tokens", 8,
              "--cache_len", 16)
  assert done.returncode == 2, done.stderr
  assert done.stderr.strip().splitlines()[-1].endswith(
      "exceeds the cache of 16 positions; shorten the prompt or lower "
      "max_new_tokens"), done.stderr
  assert "Traceback" not in done.stderr


def _within(module: str, packages) -> bool:
  return any(module == p or module.startswith(p + ".") for p in packages)


def test_evaluation_never_imports_training():
  """No module under growjax/evaluate imports growjax.train, or a module
  (growjax.cli) that does: evaluation reads checkpoints, it never trains."""
  training = ("growjax.train", "growjax.cli")
  for path in sorted((REPO / "growjax" / "evaluate").rglob("*.py")):
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
      elif isinstance(node, ast.ImportFrom) and node.module:
        names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
      else:
        continue
      for name in names:
        assert not _within(name, training), f"{path}: imports {name}"
  # Nor does anything they import on the way (the CLI's lazy imports too).
  code = ("import sys, growjax.evaluate_cli, growjax.evaluate.suites, "
          "growjax.evaluate.extrapolation, growjax.evaluate.side_by_side, "
          "growjax.trained, growjax.decode; "
          "print(sorted(m for m in sys.modules if m.split('.')[:2] in %r))"
          % ([t.split(".") for t in training],))
  done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                        text=True, cwd=REPO, timeout=120,
                        env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert done.returncode == 0 and done.stdout.strip() == "[]", done


def test_extrapolation_results_of_disjoint_seeds_merge_into_one(tmp_path):
  """Seeds trained apart (one per GPU) join into the file one run would
  have written: the committed CPU results, split by seed and merged."""
  whole = json.loads((REPO / "benchmarks" / "results" /
                      "extrapolation_cpu.json").read_text())
  paths = []
  for seed in whole["seeds"]:
    part = dict(whole, seeds=[seed], seconds=1.0,
                arms=[a for a in whole["arms"] if a["seed"] == seed])
    paths.append(tmp_path / f"s{seed}.json")
    paths[-1].write_text(json.dumps(part))
  bench = _benchmark()
  merged = bench.merge([str(p) for p in paths], tmp_path / "all.json")
  written = json.loads((tmp_path / "all.json").read_text())
  assert written["seeds"] == whole["seeds"] and len(written["arms"]) == len(whole["arms"])
  assert written["summary"] == whole["summary"]
  assert written["differences"] == whole["differences"]
  assert written["seconds"] == len(paths) and len(written["parts"]) == len(paths)
  assert (tmp_path / "all.png").stat().st_size > 0 and merged["table"]
  with pytest.raises(ValueError, match="seed appears twice"):
    bench.merge([str(paths[0]), str(paths[0])], tmp_path / "x.json")
  other = json.loads(paths[1].read_text()) | {"train_len": 7}
  paths[1].write_text(json.dumps(other))
  with pytest.raises(ValueError, match="another train_len"):
    bench.merge([str(p) for p in paths], tmp_path / "x.json")
