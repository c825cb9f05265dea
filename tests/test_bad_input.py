"""Bad input everywhere: refused in one line that names it, changing nothing.

One table of mistakes a user makes across experiment files, --config.*
overrides, data names and paths, tokenizer settings, meshes, growth
schedules, workdirs and the evaluate, sample, report and export commands.
Each must exit non-zero with exactly one line on stderr, naming the culprit,
without a traceback, and leave the workdir it names byte for byte as it was
(a hash of its tree before and after; a workdir that did not exist must
still not exist).

The commands run through tests/cli_batch.py: each in a child forked from one
warm interpreter, as `python -m ...` would run it, so the table costs
seconds rather than minutes.
"""

import json
import re
import os
import pathlib
import shutil
import subprocess
import sys

import jax
import pytest

from growjax import command
from growjax.experiment import Experiment
from growjax.train import loop

REPO = pathlib.Path(__file__).resolve().parents[1]

TINY = '''
import ml_collections
from growjax.experiment import parse_arg


def get_config(arg=None):
  a = parse_arg(arg, path={text!r}, dir="")
  c = ml_collections.ConfigDict()
  c.name = "tiny"
  c.seed = 0
  c.data = dict(name="text_files", paths=[a["path"]], seq_len=32,
                vocab_size=512, tokenizer_chars=300_000, dir=a["dir"] or None)
  c.model = dict(d_model=32, n_layers=1, n_heads=2, head_dim=16, d_ff=64)
  c.stages = [
      dict(tokens=4 * 8 * 32, batch_size=8, lr=dict(peak=1e-2, warmup_steps=1)),
      dict(model=dict(n_layers=2), grow=dict(method="msg", ramp_steps=2),
           tokens=4 * 8 * 32, batch_size=8, lr=dict(peak=5e-3))]
  c.mesh = dict(data=-1, fsdp=1, tensor=1)
  c.checkpoint = dict(every_steps=4, keep=2)
  c.eval = dict(every_steps=4, tokens=512)
  c.optimizer = dict(b1=0.9)
  c.train = dict(log_every=2, progress=False, remat="auto",
                 max_skipped_in_a_row=10)
  return c
'''

EXPERIMENT_FILES = {
    "nogetconfig.py": "x = 1\n",
    "syntax.py": "def get_config(:\n",
    "raises.py": "def get_config(arg=None):\n  return {}['missing']\n",
    "notdict.py": "def get_config(arg=None):\n  return 3\n",
    "unknownfield.py": ("from tiny import get_config as base\n"
                        "def get_config(arg=None):\n  c = base(arg)\n"
                        "  c.optimiser = dict(b1=0.9)\n  return c\n"),
    "nostages.py": ("from tiny import get_config as base\n"
                    "def get_config(arg=None):\n  c = base(arg)\n"
                    "  del c['stages']\n  return c\n"),
}

MAIN = ("growjax.main", "--config")
TOY = "experiments/toy.py"

# (name, argv, what the one error line must hold, the workdir it must not change)
CASES = [
    # experiment files
    ("missing experiment file", [*MAIN, "{root}/nope.py", "--workdir", "{new}"],
     ["experiment file {root}/nope.py: not found"], "{new}"),
    ("file without get_config", [*MAIN, "{root}/nogetconfig.py", "--workdir", "{new}"],
     ["nogetconfig.py: defines no get_config"], "{new}"),
    ("file with a syntax error", [*MAIN, "{root}/syntax.py", "--workdir", "{new}"],
     ["syntax.py: fails to import (SyntaxError"], "{new}"),
    ("get_config raising", [*MAIN, "{root}/raises.py", "--workdir", "{new}"],
     ["raises.py: get_config", "fails (KeyError"], "{new}"),
    ("unknown variant", [*MAIN, f"{TOY}:runlcal", "--workdir", "{new}"],
     ["config argument 'runlcal': unknown"], "{new}"),
    ("get_config returning no dict", [*MAIN, "{root}/notdict.py", "--workdir", "{new}"],
     ["notdict.py: get_config('') returns 3, not a ConfigDict"], "{new}"),
    ("unknown top-level field", [*MAIN, "{root}/unknownfield.py", "--workdir", "{new}"],
     ["optimiser: unknown field"], "{new}"),
    ("no stages", [*MAIN, "{root}/nostages.py", "--workdir", "{new}"],
     ["stages: missing"], "{new}"),
    # --config.* overrides
    ("mistyped override", [*MAIN, TOY, "--config.stagse=1", "--workdir", "{new}"],
     ["--config.stagse: not a field"], "{new}"),
    ("override of the wrong type", [*MAIN, TOY, "--config.seed=abc", "--workdir", "{new}"],
     ["config.seed", "abc"], "{new}"),
    ("negative tokens", [*MAIN, TOY, "--config.stages[0].tokens=-5", "--workdir", "{new}"],
     ["stages[0].tokens: -5 is not an integer >= 1"], "{new}"),
    ("stage index out of range", [*MAIN, TOY, "--config.stages[7].tokens=1", "--workdir", "{new}"],
     ["--config.stages[7].tokens: not a field"], "{new}"),
    ("remat policy unknown", [*MAIN, "{tiny}", "--config.train.remat=sometimes", "--workdir", "{new}"],
     ["train.remat: 'sometimes' is not one of"], "{new}"),
    ("no checkpoint kept", [*MAIN, TOY, "--config.checkpoint.keep=0", "--workdir", "{new}"],
     ["checkpoint.keep: 0 is not an integer >= 1"], "{new}"),
    ("warmup longer than the stage",
     [*MAIN, TOY, "--config.stages[0].lr.warmup_steps=100000", "--workdir", "{new}"],
     ["stages[0].lr.warmup_steps: 100000 >"], "{new}"),
    ("optimizer decay of 1", [*MAIN, "{tiny}", "--config.optimizer.b1=1.0", "--workdir", "{new}"],
     ["optimizer.b1: 1.0 is not below 1"], "{new}"),
    ("no skipped step allowed",
     [*MAIN, "{tiny}", "--config.train.max_skipped_in_a_row=0", "--workdir", "{new}"],
     ["train.max_skipped_in_a_row: 0 is not an integer >= 1"], "{new}"),
    # data names and paths
    ("unknown dataset", [*MAIN, TOY, "--config.data.name=no_such_dataset", "--workdir", "{new}"],
     ["data", "no_such_dataset"], "{new}"),
    ("missing text file", [*MAIN, "{tiny}:path={root}/missing.txt", "--workdir", "{new}"],
     ["data", "missing.txt"], "{new}"),
    ("empty text file", [*MAIN, "{tiny}:path={root}/empty.txt", "--workdir", "{new}"],
     ["data", "empty.txt"], "{new}"),
    ("zero sequence length", [*MAIN, TOY, "--config.data.seq_len=0", "--workdir", "{new}"],
     ["data", "seq_len: 0"], "{new}"),
    ("data cache that is a file", [*MAIN, "{tiny}:dir={file}", "--workdir", "{new}"],
     ["data cache (data.dir, else $GROWJAX_DATA_DIR) {file}: is a file"], "{new}"),
    # tokenizer settings
    ("vocabulary too small", [*MAIN, "{tiny}", "--config.data.vocab_size=10", "--workdir", "{new}"],
     ["vocab_size: 10"], "{new}"),
    ("vocabulary too large for the text",
     [*MAIN, "{tiny}", "--config.data.vocab_size=60000", "--workdir", "{new}"],
     ["vocab_size", "60000"], "{new}"),
    ("negative tokenizer sample",
     [*MAIN, "{tiny}", "--config.data.tokenizer_chars=-1", "--workdir", "{new}"],
     ["tokenizer_chars: -1"], "{new}"),
    # meshes
    ("mesh needing more devices", [*MAIN, TOY, "--config.mesh.tensor=3", "--workdir", "{new}"],
     ["mesh: 1 devices do not split into a mesh with fixed axes of product 3"], "{new}"),
    ("mesh axis of zero", [*MAIN, TOY, "--config.mesh.fsdp=0", "--workdir", "{new}"],
     ["mesh.fsdp: 0 is not an integer >= 1"], "{new}"),
    ("two mesh axes of -1", [*MAIN, TOY, "--config.mesh.fsdp=-1", "--workdir", "{new}"],
     ["mesh", "-1 on more than one axis"], "{new}"),
    # growth schedules
    ("shrinking stage", [*MAIN, TOY, "--config.stages[1].model.d_model=32", "--workdir", "{new}"],
     ["stages[1].model.d_model: 32 < 64, a stage cannot shrink"], "{new}"),
    ("unknown growth method", [*MAIN, TOY, "--config.stages[1].grow.method=magic", "--workdir", "{new}"],
     ["stages[1].grow.method", "magic"], "{new}"),
    ("ramp longer than the stage",
     [*MAIN, TOY, "--config.stages[1].grow.ramp_steps=1000", "--workdir", "{new}"],
     ["stages[1].grow.ramp_steps: 1000 >"], "{new}"),
    ("unknown layer placement",
     [*MAIN, TOY, "--config.stages[1].grow.new_layers=sideways", "--workdir", "{new}"],
     ["stages[1].grow.new_layers", "sideways"], "{new}"),
    ("growth option the method lacks",
     [*MAIN, TOY, "--config.stages[1].grow.method=zero", "--workdir", "{new}"],
     ["stages[1].grow.ramp_steps: not an option of method 'zero'"], "{new}"),
    ("heads shrinking in a later stage",
     [*MAIN, TOY, "--config.stages[1].model.n_heads=2", "--workdir", "{new}"],
     ["stages[1].model.n_heads: 2 < 4"], "{new}"),
    # workdirs
    ("workdir that is a file", [*MAIN, "{tiny}", "--workdir", "{file}"],
     ["workdir {file}: is a file, not a directory"], "{file}"),
    ("workdir under a file", [*MAIN, "{tiny}", "--workdir", "{file}/run"],
     ["workdir {file}/run: {file} is a file, not a directory"], "{file}"),
    ("unwritable workdir", [*MAIN, "{tiny}", "--workdir", "{unwritable}"],
     ["workdir {unwritable}:", "not writable"], "{unwritable}"),
    ("another experiment's workdir", [*MAIN, "{tiny}", "--config.seed=1", "--workdir", "{trained}"],
     ["workdir {trained}: holds a different experiment (seed: 0 there, 1 here)"], "{trained}"),
    ("workdir with a garbled experiment.json", [*MAIN, "{tiny}", "--workdir", "{garbled}"],
     ["workdir {garbled}: its experiment.json is not JSON"], "{garbled}"),
    ("workdir with checkpoints and no record", [*MAIN, "{tiny}", "--workdir", "{orphan}"],
     ["workdir {orphan}: holds checkpoints but no experiment.json"], "{orphan}"),
    ("dry run into a file", [*MAIN, "{tiny}", "--workdir", "{file}", "--dry_run"],
     ["workdir {file}: is a file, not a directory"], "{file}"),
    ("no workdir flag", [*MAIN, "{tiny}"], ["--workdir"], "{new}"),
    ("stop step not a number", [*MAIN, "{tiny}", "--workdir", "{new}", "--stop_at_step=abc"],
     ["stop_at_step", "abc"], "{new}"),
    ("stray argument", [*MAIN, "{tiny}", "--workdir", "{new}", "extra"],
     ["unexpected arguments ['extra']"], "{new}"),
    # evaluate, sample, report, export
    ("evaluate a missing workdir", ["growjax.evaluate", "--workdir", "{new}", "--suite", "ppl"],
     ["workdir {new}: no such directory"], "{new}"),
    ("evaluate an unknown suite", ["growjax.evaluate", "--workdir", "{trained}", "--suite", "bleu"],
     ["--suite='bleu': unknown suite"], "{trained}"),
    ("evaluate a workdir without checkpoints",
     ["growjax.evaluate", "--workdir", "{empty}", "--suite", "ppl"],
     ["workdir {empty}: holds no checkpoint"], "{empty}"),
    ("evaluate zero tokens",
     ["growjax.evaluate", "--workdir", "{trained}", "--suite", "length", "--tokens", "0"],
     ["--tokens"], "{trained}"),
    ("evaluate a block that does not divide the length",
     ["growjax.evaluate", "--workdir", "{trained}", "--suite", "length", "--blocks", "causal,7"],
     ["--blocks"], "{trained}"),
    ("evaluate unknown IQ tasks",
     ["growjax.evaluate", "--workdir", "{trained}", "--suite", "iq", "--tasks", "nope"],
     ["--tasks: unknown IQ task(s) nope"], "{trained}"),
    ("sample with top_p above 1",
     ["growjax.sample", "--workdir", "{trained}", "--prompt", "To be", "--top_p", "2"],
     ["--top_p: 2"], "{trained}"),
    ("sample a workdir that is not a run",
     ["growjax.sample", "--workdir", "{empty}", "--prompt", "To be"],
     ["workdir {empty}: holds no checkpoint"], "{empty}"),
    ("report a directory without metrics", ["growjax.report", "{empty}"],
     ["{empty}: no metrics.jsonl"], "{empty}"),
    ("export an xPos model", ["growjax.export", "--workdir", "{trained}", "--out", "{new}"],
     ["xpos", "rope"], "{trained}"),
]


def _unwritable(root: pathlib.Path) -> str:
  """A workdir path no one may create: under a read-only directory, or for
  root (whom permissions do not stop) under /proc/sys."""
  if os.geteuid() == 0:
    return "/proc/sys/growjax_workdir"
  ro = root / "readonly"
  ro.mkdir()
  ro.chmod(0o555)
  return str(ro / "run")


@pytest.fixture(scope="module")
def world(tmp_path_factory, text_path, data_dir):
  """The files the cases name, and a tiny trained run (two stages)."""
  root = tmp_path_factory.mktemp("bad_input")
  text = root / "text.txt"  # a corpus of its own: test_data's is built there
  shutil.copyfile(text_path, text)
  (root / "tiny.py").write_text(TINY.format(text=str(text)))
  for name, text in EXPERIMENT_FILES.items():
    (root / name).write_text(text)
  (root / "a_file").write_text("not a directory\n")
  (root / "empty.txt").write_text("")
  (root / "empty").mkdir()
  (root / "garbled").mkdir()
  (root / "garbled" / "experiment.json").write_text('{"seed": 0, "da')
  (root / "orphan" / "checkpoints" / "stage_0" / "5" / "meta").mkdir(parents=True)
  os.environ.setdefault("GROWJAX_DATA_DIR", str(data_dir))
  config = command.load_experiment(str(root / "tiny.py"))
  exp = Experiment.from_config(config, n_devices=1)
  loop.run(exp, root / "trained", devices=jax.devices()[:1])
  return {"root": str(root), "tiny": str(root / "tiny.py"),
          "trained": str(root / "trained"), "file": str(root / "a_file"),
          "empty": str(root / "empty"), "garbled": str(root / "garbled"),
          "orphan": str(root / "orphan"), "unwritable": _unwritable(root)}


def _fill(text: str, world: dict, case: int) -> str:
  return text.format(**world, new=f"{world['root']}/new_{case}")


@pytest.fixture(scope="module")
def results(world, data_dir):
  """Every case's result, from one batch."""
  cases = [{"argv": [_fill(a, world, i) for a in argv],
            "watch": [_fill(watched, world, i)]}
           for i, (_, argv, _, watched) in enumerate(CASES)]
  env = dict(os.environ, XLA_FLAGS="", JAX_PLATFORMS="cpu",
             GROWJAX_DATA_DIR=str(data_dir), PYTHONPATH=os.pathsep.join(
                 [str(REPO), world["root"], os.environ.get("PYTHONPATH", "")]),
             JAX_COMPILATION_CACHE_DIR=jax.config.jax_compilation_cache_dir)
  done = subprocess.run([sys.executable, str(REPO / "tests" / "cli_batch.py")],
                        input=json.dumps(cases), cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=900)
  assert done.returncode == 0, done.stderr[-3000:]
  return json.loads(done.stdout)


PREPARING = re.compile(r"^prepare \S+: .* \(once\)$")


def test_the_table_covers_thirty_mistakes_in_every_area():
  assert len(CASES) >= 30


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c[0] for c in CASES])
def test_bad_input_is_refused_in_one_line_that_names_it_and_changes_nothing(
    index, world, results):
  name, _, fragments, _ = CASES[index]
  result = results[index]
  assert result["status"] != 0, (name, result)
  # data preparation announces its one-off work before it can fail: a
  # progress line, not part of the error
  lines = [l for l in result["stderr"].splitlines() if not PREPARING.match(l)]
  assert len(lines) == 1 and lines[0].startswith("error: "), (name, result["stderr"])
  for fragment in fragments:
    assert _fill(fragment, world, index) in lines[0], (name, lines[0])
  assert result["unchanged"], (name, "the workdir changed")
