"""notebooks/toy_growth.ipynb is committed with its outputs (written by
notebooks/execute.py) and still runs top to bottom in a clean kernel."""

import pathlib

import jax
import nbclient
import nbformat

NOTEBOOK = pathlib.Path(__file__).resolve().parents[1] / "notebooks" / "toy_growth.ipynb"


def _check_outputs(nb):
  outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                    for o in c.get("outputs", []))
  assert "max |logits change| at growth:" in outputs
  assert "fixed-batch loss" in outputs
  assert "growjax_notebook_" not in outputs  # no temp-dir names
  assert any("image/png" in o.get("data", {}) for c in nb.cells
             if c.cell_type == "code" for o in c.get("outputs", []))


def test_toy_growth_notebook_is_committed_with_outputs_and_executes(
    data_dir, tmp_path, monkeypatch):
  committed = nbformat.read(NOTEBOOK, as_version=4)
  _check_outputs(committed)  # a reader sees results without running it
  assert all(c.get("outputs") for c in committed.cells[2:]
             if c.cell_type == "code")
  monkeypatch.setenv("GROWJAX_DATA_DIR", str(data_dir))
  monkeypatch.setenv("XLA_FLAGS", "")  # one device, as on a laptop
  monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", jax.config.jax_compilation_cache_dir)
  nb = nbformat.read(NOTEBOOK, as_version=4)
  nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                          resources={"metadata": {"path": str(tmp_path)}}).execute()
  _check_outputs(nb)
