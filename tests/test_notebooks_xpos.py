"""notebooks/xpos_extrapolation.ipynb is committed with its outputs (written
by notebooks/execute.py) and still runs top to bottom in a clean kernel."""

import pathlib
import re

import jax
import nbclient
import nbformat

NOTEBOOK = (pathlib.Path(__file__).resolve().parents[1] / "notebooks"
            / "xpos_extrapolation.ipynb")


def _outputs(nb):
  return [o for c in nb.cells if c.cell_type == "code"
          for o in c.get("outputs", [])]


def _check_outputs(nb):
  text = "".join(o.get("text", "") for o in _outputs(nb))
  for model in ("RoPE", "xPos sb=16"):  # the summary: every model and reading
    for reading in ("causal", "blocks 16 (l/2)", "blocks 32 (l)"):
      assert re.search(rf"\n{re.escape(model)} +{re.escape(reading)} ", text)
  assert "xPos - RoPE, loss, paired by seed" in text
  assert "[96,128)" in text  # the 4x buckets
  assert "one seed: no interval" in text  # this notebook's single seed
  assert text.count("fewer than the") <= 1  # a short validation set, warned once
  pngs = sum("image/png" in o.get("data", {}) for o in _outputs(nb))
  assert pngs >= 1


def test_xpos_extrapolation_notebook_is_committed_with_outputs_and_executes(
    data_dir, tmp_path, monkeypatch):
  committed = nbformat.read(NOTEBOOK, as_version=4)
  _check_outputs(committed)  # a reader sees results without running it
  assert all(c.get("outputs") for c in committed.cells[2:]
             if c.cell_type == "code")
  monkeypatch.setenv("GROWJAX_DATA_DIR", str(data_dir))
  monkeypatch.setenv("XLA_FLAGS", "")  # one device, as on a laptop
  monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR",
                     jax.config.jax_compilation_cache_dir)
  nb = nbformat.read(NOTEBOOK, as_version=4)
  assert "import growjax" in nb.cells[1].source  # the Colab install cell
  nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                          resources={"metadata": {"path": str(tmp_path)}},
                          ).execute()  # raises on any failing cell
  _check_outputs(nb)
  assert (tmp_path / "runs" / "xpos_notebook" / "rope" / "checkpoints").is_dir()
