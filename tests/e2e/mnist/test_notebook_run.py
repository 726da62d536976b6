"""The notebook runs top to bottom with its tiny default configuration on the real MNIST (split from
tests/unit/project/test_notebook.py, which checks it is committed without outputs)."""

from __future__ import annotations

import os

import pytest

from tests import ROOT

NOTEBOOK = ROOT / "notebooks" / "mnist_digit_recognition.ipynb"


@pytest.mark.slow
def test_notebook_runs_end_to_end_with_the_tiny_configuration(mnist_cache, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("DIGITREC_NOTEBOOK_TINY", "1")
    monkeypatch.setenv("DIGITREC_NOTEBOOK_RUN", str(tmp_path / "run"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "2"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "test accuracy" in text and "number:" in text and "temperature" in text
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    run = tmp_path / "run"
    assert all((run / name).is_file() for name in ("model.onnx", "model_card.json", "filters.png"))
