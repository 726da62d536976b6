"""Report plots that look inside a trained model: its first-layer filters and its mean saliency per class.

Both read the exported ONNX model, so they show exactly what is served (the first Conv's weights come from
the ONNX initializers, after any BatchNorm folding, through the `onnx` package; saliency comes from
`explain.occlusion` through ONNX Runtime). Training half: matplotlib and onnx are imported inside.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from digitrec.errors import DigitrecError


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def first_conv_weights(onnx_path: str | Path) -> np.ndarray:
    """The first Conv node's weights, (out_channels, in_channels, k, k), from an ONNX file."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    tensors = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:  # Constant nodes can hold weights too
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            tensors[node.output[0]] = node.attribute[0].t
    conv = next((n for n in model.graph.node if n.op_type == "Conv"), None)
    if conv is None or len(conv.input) < 2 or conv.input[1] not in tensors:
        raise DigitrecError(f"{onnx_path} has no Conv layer with constant weights to plot.")
    return numpy_helper.to_array(tensors[conv.input[1]]).astype(np.float32)


def plot_first_layer_filters(onnx_path: str | Path, path: str | Path) -> Path:
    """A grid of the first convolution's kernels (one per output channel, summed over input channels), each
    scaled symmetrically around zero: red excites on ink, blue inhibits."""
    w = first_conv_weights(onnx_path)
    kernels = w.sum(axis=1)
    n = len(kernels)
    cols = min(n, 8)
    rows = -(-n // cols)
    plt = _pyplot()
    fig, axes = plt.subplots(rows, cols, figsize=(1.1 * cols, 1.1 * rows + 0.5), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.set_axis_off()
        if i < n:
            k = kernels[i]
            lim = float(np.abs(k).max()) or 1.0
            ax.imshow(k, cmap="bwr", vmin=-lim, vmax=lim, interpolation="nearest")
            ax.set_title(str(i), fontsize=7)
    fig.suptitle(f"First-layer filters ({n} x {w.shape[2]}x{w.shape[3]})", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def mean_saliency_per_class(model: Any, images: np.ndarray, labels: np.ndarray,
                            per_class: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """(10, 28, 28) mean occlusion saliency of the first `per_class` images of each class that the model
    gets right, and (10, 28, 28) the mean of those images. `model` has `predict_proba` (a Predictor)."""
    from digitrec.inference.explain import occlusion

    x = np.asarray(images)
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    labels = np.asarray(labels)
    sal = np.zeros((10, 28, 28), np.float32)
    mean = np.zeros((10, 28, 28), np.float32)
    for c in range(10):
        idx = np.flatnonzero(labels == c)
        pred = model.predict(x[idx[: 3 * per_class]]) if len(idx) else np.array([], int)
        chosen = idx[: 3 * per_class][pred == c][:per_class]
        for i in chosen:
            sal[c] += occlusion(model, x[i], c)[2]
            mean[c] += x[i]
        if len(chosen):
            sal[c] /= len(chosen)
            mean[c] /= len(chosen)
    return sal, mean


def plot_mean_saliency_per_class(model: Any, images: np.ndarray, labels: np.ndarray, path: str | Path,
                                 per_class: int = 20) -> Path:
    """Two rows of ten: each class's mean image, and the mean saliency (what the model looks at) over it."""
    sal, mean = mean_saliency_per_class(model, images, labels, per_class)
    plt = _pyplot()
    fig, axes = plt.subplots(2, 10, figsize=(12, 2.9))
    for c in range(10):
        axes[0, c].imshow(mean[c], cmap="gray", vmin=0, vmax=max(float(mean[c].max()), 1e-6))
        axes[0, c].set_title(str(c))
        axes[1, c].imshow(mean[c], cmap="gray", vmin=0, vmax=max(float(mean[c].max()), 1e-6))
        axes[1, c].imshow(sal[c], cmap="inferno", alpha=0.65, vmin=0, vmax=max(float(sal[c].max()), 1e-6))
    for ax in axes.ravel():
        ax.set_axis_off()
    title = f"Mean image (top) and mean occlusion saliency (bottom), {per_class} correct images per class"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
