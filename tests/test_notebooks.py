"""The notebooks are committed with their outputs (written by
notebooks/execute.py), so a reader sees results without running them, and
each still runs top to bottom in a clean kernel."""

import pathlib
import re

import jax
import nbclient
import nbformat

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[1] / "notebooks"


def _outputs(nb):
  return [o for c in nb.cells if c.cell_type == "code"
          for o in c.get("outputs", [])]


def _text(nb) -> str:
  return "".join(o.get("text", "") for o in _outputs(nb))


def _pngs(nb) -> int:
  return sum("image/png" in o.get("data", {}) for o in _outputs(nb))


def _committed_then_executed(name, check, data_dir, tmp_path, monkeypatch,
                             timeout):
  """Checks the committed outputs, then runs the notebook in a fresh kernel
  (one device, as on a laptop; the session's data and compilation caches)
  and checks the new ones."""
  committed = nbformat.read(NOTEBOOKS / name, as_version=4)
  check(committed)
  assert all(c.get("outputs") for c in committed.cells[2:]
             if c.cell_type == "code")
  monkeypatch.setenv("GROWJAX_DATA_DIR", str(data_dir))
  monkeypatch.setenv("XLA_FLAGS", "")
  monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR",
                     jax.config.jax_compilation_cache_dir)
  nb = nbformat.read(NOTEBOOKS / name, as_version=4)
  nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                          resources={"metadata": {"path": str(tmp_path)}},
                          ).execute()  # raises on any failing cell
  check(nb)
  return nb


def _check_toy(nb):
  text = _text(nb)
  assert "max |logits change| at growth:" in text
  assert "fixed-batch loss" in text
  assert "growjax_notebook_" not in text  # no temp-dir names
  assert _pngs(nb) >= 1


def _check_xpos(nb):
  text = _text(nb)
  for model in ("RoPE", "xPos sb=16"):  # the summary: every model and reading
    for reading in ("causal", "blocks 16 (l/2)", "blocks 32 (l)"):
      assert re.search(rf"\n{re.escape(model)} +{re.escape(reading)} ", text)
  assert "xPos - RoPE, loss, paired by seed" in text
  assert "[96,128)" in text  # the 4x buckets
  assert "one seed: no interval" in text  # this notebook's single seed
  assert text.count("fewer than the") <= 1  # a short validation set, warned once
  assert _pngs(nb) >= 1


def test_toy_growth_notebook_is_committed_with_outputs_and_executes(
    data_dir, tmp_path, monkeypatch):
  _committed_then_executed("toy_growth.ipynb", _check_toy, data_dir, tmp_path,
                           monkeypatch, timeout=600)


def test_xpos_extrapolation_notebook_is_committed_with_outputs_and_executes(
    data_dir, tmp_path, monkeypatch):
  nb = _committed_then_executed("xpos_extrapolation.ipynb", _check_xpos,
                                data_dir, tmp_path, monkeypatch, timeout=300)
  assert "import growjax" in nb.cells[1].source  # the Colab install cell
  assert (tmp_path / "runs" / "xpos_notebook" / "rope" / "checkpoints").is_dir()
