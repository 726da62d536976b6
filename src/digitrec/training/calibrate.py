"""Calibrated confidence and "no digit": temperature scaling, a rejection threshold, a digit-likeness check.

A network's softmax is not a probability until it is calibrated: ours trains with label smoothing (under-
confident), others over-fit (over-confident). One temperature T, fitted on the validation split by minimising
the negative log-likelihood, fixes most of it (Guo et al. 2017). Calibrated, "confidence < threshold" means
what it says, so we refuse to guess below a threshold chosen on the validation split, never the test set.

A model trained only on digits still answers "7 (93%)" for noise or a letter, so a separate check asks
whether the input looks like a digit at all: simple ink statistics of the 28x28 image (how much ink, how many
pieces) and how typical the logit vector is for the predicted class (Mahalanobis distance to that class's mean
logits on the validation split: a letter that half resembles two digits gives an unusual mixture). Every
threshold is a quantile of real digits (MNIST validation and synthetic handwriting), so the false-rejection
rate is chosen, and the rejection rate on noise and letters is measured (benchmarks/calibration.py).
The fitted rules are applied at serve time by rules.py (NumPy only); `calibrate_model` also reads MNIST.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from digitrec.inference.rules import Rules, ink_features, softmax

ECE_BINS = 15
REJECT_FRACTION = 0.005  # low_confidence may reject at most this fraction of validation digits
FEATURE_QUANTILE = 0.001  # each digit-likeness test may reject at most this fraction of real digits


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true labels at a temperature."""
    z = np.asarray(logits, np.float64) / temperature
    m = z.max(axis=1, keepdims=True)
    log_z = (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]
    return float(np.mean(log_z - z[np.arange(len(z)), labels]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray, lo: float = 0.05, hi: float = 20.0) -> float:
    """T minimising the NLL: golden-section search on log T (NLL(T) is unimodal in practice)."""
    a, b = math.log(lo), math.log(hi)
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = nll(logits, labels, math.exp(c)), nll(logits, labels, math.exp(d))
    while b - a > 1e-4:
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = nll(logits, labels, math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = nll(logits, labels, math.exp(d))
    return float(math.exp((a + b) / 2))


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error: |accuracy - confidence| per equal-width confidence bin, size-weighted."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    which = np.minimum((conf * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            total += sel.sum() * abs(correct[sel].mean() - conf[sel].mean())
    return float(total / max(len(labels), 1))


def reject_threshold(confidence: np.ndarray, fraction: float = REJECT_FRACTION) -> float:
    """The largest threshold that rejects (confidence < t) at most `fraction` of these images."""
    c = np.sort(np.asarray(confidence, np.float64))
    k = int(math.floor(fraction * len(c)))
    return float(c[k]) if len(c) else 0.0


def fit_rules(logits: np.ndarray, labels: np.ndarray, images: np.ndarray,
              extra: list[tuple[np.ndarray, np.ndarray]] = ()) -> tuple[Rules, dict[str, Any]]:
    """Fit T and the thresholds on validation digits (`extra`: more real digits as (images, logits),
    e.g. synthetic handwriting, whose quantiles also bound the digit-likeness thresholds)."""
    t = fit_temperature(logits, labels)
    probs = softmax(logits, t)
    right = probs.argmax(1) == labels
    means = np.stack([logits[right & (labels == c)].mean(0) if (right & (labels == c)).any()
                      else np.zeros(10) for c in range(10)])
    resid = logits[right] - means[labels[right]]
    cov = np.cov(resid, rowvar=False) + 1e-3 * np.eye(10)
    partial = Rules(class_means=means.tolist(), precision=np.linalg.inv(cov).tolist())
    q = FEATURE_QUANTILE
    ink_lo, ink_hi, pieces_hi, dist_hi = [], [], [], []
    for ims, lg in [(images, logits), *extra]:
        ink, pieces = ink_features(ims)
        ink_lo.append(np.quantile(ink, q))
        ink_hi.append(np.quantile(ink, 1 - q))
        pieces_hi.append(np.quantile(pieces, 1 - q, method="higher"))
        dist_hi.append(np.quantile(partial.distance(lg), 1 - q))
    rules = Rules(
        temperature=t, reject_below=reject_threshold(probs.max(1)), ink_min=float(min(ink_lo)),
        ink_max=float(max(ink_hi)), max_pieces=int(max(pieces_hi)), max_distance=float(max(dist_hi)),
        class_means=partial.class_means, precision=partial.precision,
    )
    stats = {
        "temperature": t, "reject_below": rules.reject_below,
        "ece_before": ece(softmax(logits), labels), "ece_after": ece(probs, labels),
        "nll_before": nll(logits, labels), "nll_after": nll(logits, labels, t),
        "val_rejected": float(np.mean([r is not None for r in rules.reasons(images, logits)])),
    }
    return rules, stats


def onnx_logits(onnx_path: str | Path, images: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Raw logits of an ONNX model (its own session: the predictor's outputs are already calibrated)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    x = np.asarray(images, np.float32).reshape(-1, 1, 28, 28)
    if x.size and x.max() > 1.0:
        x = x / 255.0
    return np.concatenate([sess.run(None, {name: x[i : i + chunk]})[0] for i in range(0, len(x), chunk)]
                          or [np.zeros((0, 10), np.float32)]).astype(np.float64)


def synthetic_digits(n: int, seed: int = 2024) -> tuple[np.ndarray, np.ndarray]:
    """n synthetic handwritten digits (all styles) through `to_mnist`: what users send, not MNIST."""
    from digitrec.inference.preprocess import to_mnist
    from digitrec.training.synth import dataset

    images, labels = dataset(n, seed=seed)
    arrays = [to_mnist(im) for im in images]
    keep = [i for i, a in enumerate(arrays) if a is not None]
    return np.stack([arrays[i] for i in keep]), labels[keep]


def calibrate_model(onnx_path: str | Path, *, data_dir: Path | None = None, synthetic: int = 500) -> dict:
    """Fit temperature, rejection threshold and digit-likeness rules for a model on the validation split
    (plus `synthetic` generated handwritten digits). Returns the card's "calibration" entry."""
    from digitrec.training.data import load_mnist, stratified_split

    mnist = load_mnist(data_dir)
    val = stratified_split(mnist.train_labels).val
    images, labels = mnist.train_images[val].astype(np.float32) / 255.0, mnist.train_labels[val]
    extra = []
    if synthetic:
        syn_images, _ = synthetic_digits(synthetic)
        extra.append((syn_images, onnx_logits(onnx_path, syn_images)))
    rules, stats = fit_rules(onnx_logits(onnx_path, images), labels, images, extra)
    return {**rules.to_calibration(), **stats, "bins": ECE_BINS, "reject_fraction": REJECT_FRACTION,
            "feature_quantile": FEATURE_QUANTILE, "fitted_on": f"MNIST validation split ({len(val)} images)"
            + (f" + {synthetic} synthetic handwritten digits" if synthetic else "")}


def write_calibration(
    model: str | Path, *, data_dir: Path | None = None, synthetic: int = 500, command: str | None = None
) -> tuple[Path, dict]:
    """Calibrate a run folder or .onnx file and store the result under "calibration" in the model card beside
    it (created if missing). The ONNX file is untouched, so the card's sha256 of it stays valid. `command`
    (the command line that asked for it) is recorded, so the card says how its calibration was made."""
    from digitrec.card import CARD_FILE, ModelCard
    from digitrec.fileio import sha256_file
    from digitrec.inference.predictor import resolve_model_path

    onnx = resolve_model_path(model)
    card_path = onnx.parent / CARD_FILE
    card = ModelCard.read(card_path) if card_path.is_file() else ModelCard()
    calibration = calibrate_model(onnx, data_dir=data_dir, synthetic=synthetic)
    if command:
        calibration["command"] = command
    card = replace(card, onnx_sha256=card.onnx_sha256 or sha256_file(onnx), calibration=calibration)
    card.write(card_path)
    return card_path, calibration
