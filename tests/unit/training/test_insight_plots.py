"""Report plots from the exported model: first-layer filters (ONNX initializers) and mean saliency per class.
Also: the new serving-half modules never import torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from digitrec import load_model
from digitrec.inference.predictor import resolve_model_path


def test_first_conv_weights_come_from_the_onnx_file():
    from digitrec.training.insight_plots import first_conv_weights

    w = first_conv_weights(resolve_model_path(None))
    assert w.ndim == 4 and w.shape[1] == 1 and w.shape[2] == w.shape[3] and np.abs(w).sum() > 0


def test_filter_and_saliency_plots_are_written(tmp_path):
    from digitrec.inference.preprocess import to_mnist
    from digitrec.training.insight_plots import (
        mean_saliency_per_class,
        plot_first_layer_filters,
        plot_mean_saliency_per_class,
    )
    from digitrec.training.synth import render

    path = plot_first_layer_filters(resolve_model_path(None), tmp_path / "filters.png")
    assert Image.open(path).size[0] > 200
    model = load_model()
    rng = np.random.default_rng(4)
    labels = np.repeat(np.arange(10), 2)
    images = np.stack([to_mnist(render(int(d), rng, "canvas")) for d in labels])
    sal, mean = mean_saliency_per_class(model, images, labels, per_class=2)
    assert sal.shape == mean.shape == (10, 28, 28)
    assert sum(bool(sal[c].any()) for c in range(10)) >= 8  # classes the model got right have saliency
    out = plot_mean_saliency_per_class(model, images, labels, tmp_path / "saliency.png", per_class=2)
    assert Image.open(out).size[0] > 500


@pytest.mark.parametrize("module", ["inference.segment", "training.calibrate", "inference.explain", "cli.webcam"])
def test_serving_modules_do_not_import_torch(module):
    code = f"import sys, digitrec.{module}; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
