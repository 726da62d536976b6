"""The notebook is committed without outputs (that it runs: tests/e2e/mnist/test_notebook_run.py)."""

from __future__ import annotations

import pytest

from tests import ROOT

NOTEBOOK = ROOT / "notebooks" / "mnist_digit_recognition.ipynb"


def test_notebook_is_committed_without_outputs():
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
