"""Test-set metrics from the exported model: accuracy, per-class precision/recall/F1, confusion matrix.

It runs the ONNX model through the same predictor users get, so the figures describe what ships.
NumPy only: the serving half can compute them too.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from digitrec.errors import DigitrecError

NUM_CLASSES = 10


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, k: int = NUM_CLASSES) -> np.ndarray:
    """cm[i, j] = how many images of true class i were predicted as j."""
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, k: int = NUM_CLASSES) -> dict:
    cm = confusion_matrix(y_true, y_pred, k)
    tp = np.diag(cm).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(cm.sum(0) > 0, tp / cm.sum(0), 0.0)
        recall = np.where(cm.sum(1) > 0, tp / cm.sum(1), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    per_class = {
        str(c): {"precision": round(float(precision[c]), 6), "recall": round(float(recall[c]), 6),
                 "f1": round(float(f1[c]), 6), "support": int(cm[c].sum())}
        for c in range(k)
    }
    return {
        "accuracy": round(float(tp.sum() / max(cm.sum(), 1)), 6),
        "errors": int(cm.sum() - tp.sum()),
        "count": int(cm.sum()),
        "macro_f1": round(float(f1.mean()), 6),
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
    }


def format_table(metrics: dict) -> str:
    """The per-class table the CLI prints."""
    lines = [f"{'digit':>5} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>7}"]
    for c, m in metrics["per_class"].items():
        lines.append(f"{c:>5} {m['precision']:>9.4f} {m['recall']:>7.4f} {m['f1']:>7.4f} {m['support']:>7}")
    lines.append(f"accuracy {metrics['accuracy'] * 100:.2f}% ({metrics['errors']} errors in {metrics['count']})")
    return "\n".join(lines)


def resolve_model_path(path: Path) -> tuple[Path, Path | None]:
    """(model.onnx, run folder or None) for a run folder or an ONNX file."""
    if path.is_dir():
        onnx = path / "model.onnx"
        if not onnx.is_file():
            raise DigitrecError(f"{path} has no model.onnx; run `digitrec export {path}` first")
        return onnx, path
    if path.suffix == ".onnx" and path.is_file():
        return path, None
    raise DigitrecError(f"{path} is neither a run folder nor an .onnx file")


def evaluate_model(path: Path, *, out_dir: Path | None = None, data_dir: Path | None = None,
                   plots: bool = True) -> dict:
    """Score a run folder or ONNX file on the 10k test set; write metrics.json and the report plots."""
    from digitrec.inference.predictor import load_model
    from digitrec.training import data as mnist

    onnx, run = resolve_model_path(path)
    out_dir = out_dir or run or onnx.parent
    ds = mnist.load_mnist(data_dir)
    probs = load_model(onnx).predict_proba(ds.test_images)
    pred = probs.argmax(1)
    metrics = classification_metrics(ds.test_labels, pred)
    metrics["model"] = str(onnx)
    wrong = np.flatnonzero(pred != ds.test_labels)
    metrics["misclassified"] = [
        {"index": int(i), "label": int(ds.test_labels[i]), "predicted": int(pred[i]),
         "confidence": round(float(probs[i, pred[i]]), 4)}
        for i in wrong
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    if plots:
        from digitrec.training import report

        report.plot_confusion(np.array(metrics["confusion_matrix"]), out_dir / "confusion_matrix.png")
        report.plot_misclassified(ds.test_images[wrong], ds.test_labels[wrong], pred[wrong],
                                  probs[wrong, pred[wrong]], out_dir / "misclassified.png")
        if run is not None and (run / "training_log.csv").is_file():
            report.plot_training_curves(run / "training_log.csv", out_dir / "training_curves.png")
    return metrics


def val_accuracy(onnx: Path, data_dir: Path | None = None) -> float:
    """Accuracy on the 6k validation split: what choices between models may look at."""
    from digitrec.inference.predictor import load_model
    from digitrec.training import data as mnist

    ds = mnist.load_mnist(data_dir)
    val = mnist.stratified_split(ds.train_labels).val
    pred = load_model(onnx, verify=False).predict_proba(ds.train_images[val]).argmax(1)
    return round(float((pred == ds.train_labels[val]).mean()), 6)


def paired_delta(a: np.ndarray, b: np.ndarray, rounds: int = 2000) -> tuple[float, float, float]:
    """Mean of a - b and its 95 % bootstrap interval, resampling images (both rows are scored on the same ones).

    a and b are per-image accuracy (each averaged over its candidate's seeds). The interval answers whether a
    split of this size can tell the two recipes apart at all; the spread over seeds is the table's ± column.
    """
    d = a - b
    rng = np.random.default_rng(0)
    boot = [d[rng.integers(0, len(d), len(d))].mean() for _ in range(rounds)]
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return float(d.mean()), float(lo), float(hi)
