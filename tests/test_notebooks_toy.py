"""notebooks/toy_growth.ipynb runs top to bottom in a clean kernel."""

import pathlib

import jax
import nbclient
import nbformat

NOTEBOOK = pathlib.Path(__file__).resolve().parents[1] / "notebooks" / "toy_growth.ipynb"


def test_toy_growth_notebook_executes(data_dir, monkeypatch):
  monkeypatch.setenv("GROWJAX_DATA_DIR", str(data_dir))
  monkeypatch.setenv("XLA_FLAGS", "")  # one device, as on a laptop
  monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", jax.config.jax_compilation_cache_dir)
  nb = nbformat.read(NOTEBOOK, as_version=4)
  nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                          resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
  outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                    for o in c.get("outputs", []))
  assert "max |logits change| at growth:" in outputs
  assert "fixed-batch loss" in outputs
  assert any("image/png" in o.get("data", {}) for c in nb.cells
             if c.cell_type == "code" for o in c.get("outputs", []))
