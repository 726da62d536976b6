"""Report artefacts: model summary, training curves, confusion matrix, misclassified grid, architecture diagram.

matplotlib (Agg backend, files only) is imported inside each function so importing this module is free.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ---------------------------------------------------------------- model summary (torch)


def layer_table(model) -> list[dict]:
    """One row per leaf layer: name, type, output shape for one 1x28x28 image, parameter count."""
    import torch

    rows: list[dict] = []
    hooks = []
    for name, module in model.named_modules():
        if list(module.children()):
            continue
        def hook(mod, _inp, out, name=name):
            params = sum(p.numel() for p in mod.parameters(recurse=False))
            rows.append({"name": name, "type": type(mod).__name__,
                         "shape": tuple(out.shape[1:]), "params": params})
        hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 1, 28, 28))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return rows


def model_summary(model) -> str:
    """The Keras-style table: layers with output shapes and parameters, then the totals."""
    from digitrec.training.models import count_parameters

    rows = layer_table(model)
    trainable, total = count_parameters(model)
    width = max(len(f"{r['name']} ({r['type']})") for r in rows) + 2
    lines = [f"{'Layer (type)':<{width}}{'Output shape':<20}{'Params':>10}", "=" * (width + 30)]
    for r in rows:
        shape = "(None, " + ", ".join(str(s) for s in r["shape"]) + ")"
        lines.append(f"{r['name'] + ' (' + r['type'] + ')':<{width}}{shape:<20}{r['params']:>10,}")
    lines += ["=" * (width + 30),
              f"Total params (with batch-norm running statistics): {total:,}",
              f"Trainable params: {trainable:,}",
              f"Non-trainable params (batch-norm running statistics): {total - trainable:,}"]
    return "\n".join(lines) + "\n"


def plot_architecture(model, path: Path) -> None:
    """A vertical diagram of the layers, coloured by kind, with output shapes."""
    rows = [r for r in layer_table(model) if r["type"] not in ("ReLU",)]
    plt = _pyplot()
    colours = {"Conv2d": "#4C78A8", "BatchNorm2d": "#9ECAE9", "BatchNorm1d": "#9ECAE9", "MaxPool2d": "#F58518",
               "Dropout": "#BAB0AC", "Linear": "#54A24B", "Normalize": "#E45756"}
    fig, ax = plt.subplots(figsize=(6, 0.42 * len(rows) + 0.8))
    for i, r in enumerate(rows):
        y = len(rows) - i
        ax.add_patch(plt.Rectangle((0.05, y - 0.4), 0.9, 0.8, color=colours.get(r["type"], "#D3D3D3")))
        shape = "x".join(str(s) for s in r["shape"])
        label = f"{r['type']}  ->  {shape}" + (f"   ({r['params']:,} params)" if r["params"] else "")
        ax.text(0.5, y, label, ha="center", va="center", fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0.3, len(rows) + 0.7)
    ax.axis("off")
    ax.set_title("input 1x28x28 (top) to 10 logits (bottom)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- plots from files and arrays


def plot_training_curves(log_csv: Path, path: Path) -> None:
    with open(log_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return
    col = {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(col["epoch"], col["train_loss"], label="train")
    axes[0].plot(col["epoch"], col["val_loss"], label="validation")
    axes[0].set_title("loss")
    axes[1].plot(col["epoch"], 100 * col["train_acc"], label="train (augmented)")
    axes[1].plot(col["epoch"], 100 * col["val_acc"], label="validation")
    axes[1].set_title("accuracy (%)")
    axes[2].plot(col["epoch"], col["lr"])
    axes[2].set_yscale("log")
    axes[2].set_title("learning rate (last step of the epoch)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].legend()
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_confusion(cm: np.ndarray, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    off = cm.copy()
    np.fill_diagonal(off, 0)
    ax.imshow(np.log1p(off), cmap="Reds")  # the errors are what a reader looks for
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                    color="black" if i != j else "#1f4e99", fontweight="bold" if i == j else "normal")
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"confusion matrix ({int(cm.sum() - np.trace(cm))} errors in {int(cm.sum())})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_misclassified(images: np.ndarray, true: np.ndarray, pred: np.ndarray, conf: np.ndarray,
                       path: Path, limit: int = 64) -> None:
    """A grid of test errors, each titled 'true -> predicted (confidence)'."""
    plt = _pyplot()
    n = min(len(images), limit)
    cols = 8
    rows = max(1, int(np.ceil(n / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, rows * 1.5), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < n:
            ax.imshow(images[k], cmap="gray_r")
            ax.set_title(f"{true[k]} -> {pred[k]} ({conf[k] * 100:.0f}%)", fontsize=8, color="#B22222")
    fig.suptitle(f"misclassified test images: true -> predicted ({len(images)} in all, first {n} shown)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
