"""The package's shape: the layer table in growjax's docstring is the rule,
and every module's growjax imports, those inside functions too, point down
it (or along a row, left to right); the train step and the optimizer import
without the data stack or plotting; the trainer is read in short functions."""

import ast
import os
import pathlib
import subprocess
import sys

import growjax

PACKAGE = pathlib.Path(growjax.__file__).parent
HEADER = "The modules, each importing only those listed below it"


def layer_table() -> dict[str, tuple[int, int]]:
  """Name (a module, or a package as "grow/") -> (row, column) in the
  package docstring's table: the names before each row's description."""
  text = growjax.__doc__.split(HEADER, 1)[1].split("\n\n")[1]
  rows = [l for l in text.splitlines() if l[:2] == "  " and l[2:3] != " "]
  return {name.strip(): (row, col)
          for row, line in enumerate(rows)
          for col, name in enumerate(line.strip().split("  ")[0].split(","))}


def unit(module: str) -> str | None:
  """The table's name for a growjax module ("growjax.grow.plan" -> "grow/");
  None for the package itself."""
  parts = module.split(".")[1:]
  if not parts:
    return None
  return parts[0] + "/" if (PACKAGE / parts[0]).is_dir() else parts[0]


def growjax_imports(path: pathlib.Path, module: str):
  """(line, imported growjax module) of every import in `path`, at module
  top, in functions and under `if`s alike."""
  package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:  # relative: from the module's own package
        up = package.split(".")[:len(package.split(".")) - node.level + 1]
        base = ".".join(up + ([base] if base else []))
      names = [f"{base}.{a.name}" if (base == "growjax" and unit(
          f"{base}.{a.name}") and _is_module(f"{base}.{a.name}")) else base
               for a in node.names]
    else:
      continue
    for name in names:
      if name == "growjax" or name.startswith("growjax."):
        yield node.lineno, name


def _is_module(name: str) -> bool:
  rel = pathlib.Path(*name.split(".")[1:])
  return (PACKAGE / rel).is_dir() or (PACKAGE / rel).with_suffix(".py").exists()


def modules():
  """(path, dotted name) of every module of the package."""
  for path in sorted(PACKAGE.rglob("*.py")):
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
      parts.pop()
    yield path, ".".join(parts)


def test_every_module_has_a_row_in_the_layer_table():
  table = layer_table()
  missing = sorted({unit(m) for _, m in modules()} - set(table) - {None})
  assert not missing, f"add to growjax/__init__.py's layer table: {missing}"


def test_imports_point_down_the_layer_table():
  """An import of a module listed below (or to the right in the same row)
  is allowed, and any import within one package; a `__main__` is a command
  line that nothing imports, so it may import anything. Everything else is
  listed, file by line."""
  table = layer_table()
  wrong = []
  for path, module in modules():
    here = unit(module)
    if here is None or module.endswith(".__main__"):
      continue
    for line, name in growjax_imports(path, module):
      there = unit(name)
      if there is None or there == here:
        continue
      if name.endswith(".__main__") or table[there] <= table[here]:
        wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({here}) "
                     f"imports {name} ({there}), listed above it")
  assert not wrong, "\n".join(wrong)


def test_the_train_step_and_optimizer_import_without_data_or_plots():
  """A benchmark of the train step runs where JAX is and TFDS is not."""
  heavy = ("tensorflow_datasets", "grain", "matplotlib")
  code = ("import sys, growjax.train.step, growjax.train.optimizer; "
          f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
  done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                        text=True, timeout=300, cwd=PACKAGE.parent,
                        env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert done.returncode == 0, done.stderr
  assert done.stdout.strip() == "[]"


def test_no_function_in_the_trainer_is_longer_than_80_lines():
  """Each part of the loop (stage entry, step loop, hooks) reads on one
  screen, docstring included."""
  long = [f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}: "
          f"{node.end_lineno - node.lineno + 1} lines"
          for path in sorted((PACKAGE / "train").rglob("*.py"))
          for node in ast.walk(ast.parse(path.read_text()))
          if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
          and node.end_lineno - node.lineno + 1 > 80]
  assert not long, "\n".join(long)
