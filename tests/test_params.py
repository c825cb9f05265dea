"""The parameter table (`growjax.params`) is the only description of the
parameters: it matches what `model.init` creates for every option, and no
other module of growjax writes a parameter path."""

from __future__ import annotations

import ast
import pathlib

import jax
import pytest

import growjax
from growjax import model
from growjax import params as params_lib
from growjax.config import ModelConfig

GPT = ModelConfig(vocab_size=32, d_model=8, n_layers=2, n_heads=2, head_dim=4,
                  d_ff=16, max_len=8)
CONFIGS = [GPT, GPT.replace(tie_embeddings=True),
           GPT.replace(norm="rmsnorm", mlp="swiglu", n_kv_heads=1, pos="rope"),
           GPT.replace(norm="rmsnorm", mlp="swiglu", n_kv_heads=1, pos="rope",
                       qkv_bias=True)]


@pytest.mark.parametrize("cfg", CONFIGS, ids=["gpt", "tied", "llama", "qwen2"])
def test_table_rows_of_a_config_are_exactly_what_init_creates(cfg):
  shapes = jax.eval_shape(lambda k: model.init(cfg, k), jax.random.key(0))
  created = {params_lib.path_of(k): x.shape
             for k, x in jax.tree_util.tree_leaves_with_path(shapes)}
  assert created == {path: p.shape(cfg)
                     for path, p in params_lib.of(cfg).items()}
  tree = params_lib.tree(cfg, lambda p: p.path)
  assert jax.tree.structure(tree) == jax.tree.structure(shapes)
  for p in params_lib.of(cfg).values():
    assert p.get(tree) == p.path


def test_every_parameter_is_required_by_an_option_or_always_there():
  assert set(params_lib.TABLE) == set().union(
      *(params_lib.of(c) for c in CONFIGS))
  llama = CONFIGS[2]  # n_kv_heads = 1: every field can double
  sizes = params_lib.axis_sizes(llama)
  for axis, field in params_lib.AXIS_FIELDS.items():
    bigger = llama.replace(**{field: getattr(llama, field) * 2})
    assert {a for a, v in params_lib.axis_sizes(bigger).items()
            if v != sizes[a]} == {axis}


def _path_literals(source: str, paths: set[str], top: set[str]):
  """(line, text) of each string constant that is a parameter path with a
  "/", a prefix of one ("blocks/attn"), or (as a subscript or an `in` test)
  a top-level key that is not also a logical axis name ("unembed",
  "blocks")."""
  prefixes = {p.rsplit("/", i)[0] for p in paths for i in range(1, 3)
              if "/" in p}
  found = []
  for node in ast.walk(ast.parse(source)):
    keys = []
    if isinstance(node, ast.Subscript):
      keys = [node.slice]
    elif isinstance(node, ast.Compare) and any(
        isinstance(op, (ast.In, ast.NotIn)) for op in node.ops):
      keys = [node.left]
    for key in keys:
      if isinstance(key, ast.Constant) and key.value in top:
        found.append((key.lineno, key.value))
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
      text = node.value
      if "/" in text and (text in paths or text in prefixes
                          or any(text.startswith(p + "/") for p in paths)):
        found.append((node.lineno, text))
  return found


def test_no_module_but_the_table_writes_a_parameter_path():
  root = pathlib.Path(growjax.__file__).parent
  paths = set(params_lib.TABLE)
  axes = {a for p in params_lib.TABLE.values() for a in p.axes}
  top = {p.split("/")[0] for p in paths} - axes
  assert "unembed" in top and "blocks" in top
  offenders = []
  for file in sorted(root.rglob("*.py")):
    if file == root / "params.py":
      continue
    offenders += [f"{file.relative_to(root)}:{line}: {text!r}" for line, text
                  in _path_literals(file.read_text(), paths, top)]
  assert not offenders, "parameter paths outside growjax/params.py:\n" + (
      "\n".join(offenders))


def test_the_path_check_finds_the_ways_a_path_is_written():
  paths, top = set(params_lib.TABLE), {"unembed", "blocks", "ln_f"}
  source = ('a = "blocks/attn/q"\nb = params["unembed"]\nc = "blocks/mlp"\n'
            'd = "unembed" in rows\ne = {"unembed": 1.0}\nf = sizes["embed"]\n')
  assert [line for line, _ in _path_literals(source, paths, top)] == [1, 2, 3, 4]
