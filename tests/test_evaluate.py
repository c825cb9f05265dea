"""growjax.evaluate end to end: the extrapolation benchmark trains a tiny xPos
and a tiny RoPE run (once per session), then the ppl, length and iq suites,
the sampling CLI, and the CLIs' one-line errors run on them.

The runs read tinyshakespeare (or, without ../shared, a stdlib text) at a
training length of 16 tokens, 20 steps: enough to check every number's
bookkeeping, not to learn anything.
"""

import ast
import importlib.util
import json
import math
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from growjax import sample
from growjax.evaluate import cli, iq
from growjax.train import metrics

REPO = pathlib.Path(__file__).resolve().parents[1]
TRAIN_LEN = 16


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
  experiments/extrapolation.py: trains RUNS/xpos and RUNS/rope, writes
  RUNS/extrapolation.json + .png."""
  root = tmp_path_factory.mktemp("extrapolation")
  text = text_path
  config = root / "tiny_extrapolation.py"
  experiment = REPO / "experiments" / "extrapolation.py"
  config.write_text(textwrap.dedent(f"""
      from growjax import command

      def get_config(arg=None):
        c = command.load_experiment(
            "{experiment}:" + arg + ",runlocal,seq_len={TRAIN_LEN}")
        c.data = dict(name="text_files", paths=[{str(text)!r}],
                      seq_len={TRAIN_LEN}, vocab_size=512,
                      dir={str(data_dir)!r})
        c.train.progress = False
        c.checkpoint.every_steps = c.eval.every_steps = 1000  # at the end only
        return c
      """))
  results = _benchmark().run(root, config=config,
                             out=root / "extrapolation.json")
  return root, results


def test_extrapolation_benchmark_writes_both_runs_ratios_and_a_plot(runs):
  root, results = runs
  written = json.loads((root / "extrapolation.json").read_text())
  assert (root / "extrapolation.png").stat().st_size > 0
  assert written["train_len"] == TRAIN_LEN and written["machine"]
  for pos, block_len in (("xpos", TRAIN_LEN), ("rope", None)):
    r = written[pos]
    for m in (1, 2, 4, 8):
      assert math.isfinite(r[f"loss_{m}x"])
      assert len(r["buckets"][f"{m}x"]) == m
    assert r["ratio_4x"] == pytest.approx(r["loss_4x"] / r["loss_1x"])
    assert r["block_len"] == block_len
  assert "ratio_4x" in results["table"]


def test_ppl_suite_reproduces_the_trainers_validation_loss(runs, capsys):
  workdir = runs[0] / "xpos"
  assert cli.run(workdir, "ppl") == 0
  result = json.loads((workdir / "eval_ppl.json").read_text())
  last_val = [r["val_loss"] for r in metrics.read(workdir) if "val_loss" in r][-1]
  assert result["loss"] == pytest.approx(last_val, rel=1e-5)
  assert result["perplexity"] == pytest.approx(math.exp(result["loss"]))
  assert result["seq_len"] == TRAIN_LEN and result["windows"] == 2 * 32
  assert "perplexity" in capsys.readouterr().out


def test_length_suite_gives_each_length_and_position_bucket(runs, tmp_path,
                                                            capsys):
  workdir, out = runs[0] / "rope", tmp_path / "length.json"
  assert cli.run(workdir, "length", out=out, multiples="1,2,4") == 0
  result = json.loads(out.read_text())
  assert list(result["lengths"]) == ["1x", "2x", "4x"]
  assert result["block_len"] is None and result["pos"] == "rope"
  for m, entry in zip((1, 2, 4), result["lengths"].values()):
    assert entry["context"] == m * TRAIN_LEN
    # every length reads the same stretch of text, in windows of its own
    assert entry["windows"] == result["tokens"] // (m * TRAIN_LEN + 1)
    assert entry["loss"] == pytest.approx(np.mean(entry["buckets"]))
  assert result["ratio_4x"] == pytest.approx(result["loss_4x"]
                                             / result["loss_1x"])
  table = capsys.readouterr().out
  assert "[32,48)" in table and "causal attention" in table


def test_iq_suite_scores_each_task_beside_chance_and_exports_them(
    runs, tmp_path, capsys):
  workdir = runs[0] / "xpos"
  out, jsonl = tmp_path / "iq.json", tmp_path / "tasks.jsonl"
  assert cli.run(workdir, "iq", out=out, export_jsonl=jsonl, n_per_task=3,
                 tasks="parity,head_tail", iq_seed=5) == 0
  result = json.loads(out.read_text())
  assert set(result["tasks"]) == {"parity", "head_tail"}
  assert result["tasks"]["parity"]["chance"] == 0.5
  for entry in result["tasks"].values():
    assert entry["n"] == 3 and 0 <= entry["accuracy"] <= 1
  assert iq.load_jsonl(jsonl) == iq.generate(5, 3,
                                             names=["parity", "head_tail"])
  assert "chance" in capsys.readouterr().out


def test_sample_command_continues_the_prompt(runs):
  assert sample.sample(runs[0] / "xpos", "ROMEO:", max_new_tokens=6,
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
    args, message = (["--workdir", tmp_path, "--suite", "ppl"],
                     f"error: workdir {tmp_path}: holds no checkpoint")
  else:
    args, message = (["--workdir", runs[0] / "xpos", "--suite", "bleu"],
                     "error: --suite='bleu': unknown suite (one of ppl, "
                     "length, iq)")
  done = _cli("growjax.evaluate", *args)
  assert done.returncode == 2, done.stderr
  assert done.stderr.strip().startswith(message), done.stderr
  assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_sample_cli_prompt_longer_than_the_cache_is_one_line_exit_2(runs):
  done = _cli("growjax.sample", "--workdir", runs[0] / "rope", "--prompt",
              "ROMEO: " * 20, "--max_new_tokens", 8, "--cache_len", 16)
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
  code = ("import sys, growjax.evaluate.cli, growjax.evaluate.suites, "
          "growjax.evaluate.extrapolation, growjax.trained, growjax.decode; "
          "print(sorted(m for m in sys.modules if m.split('.')[:2] in %r))"
          % ([t.split(".") for t in training],))
  done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                        text=True, cwd=REPO, timeout=120,
                        env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert done.returncode == 0 and done.stdout.strip() == "[]", done
