"""Refusing to guess, at serve time: the rules a model card stores under "calibration", applied to each answer.

Fitted by calibrate.py on the validation split (temperature, a confidence threshold, digit-likeness limits);
applied here with NumPy alone, by the predictor, on every prediction. Split from the fitting so that the
serving half reads a card without importing what writes one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from digitrec.inference.components import piece_sizes

REASONS = ("blank", "not_digit_like", "low_confidence")


def softmax(logits: np.ndarray, temperature: float = 1.0, dtype=np.float64) -> np.ndarray:
    """Row-wise softmax of logits / temperature, computed in place on a copy: float64 to fit the calibration,
    float32 on the serving path (the predictor's)."""
    z = np.array(logits, dtype=dtype)
    if temperature != 1.0:
        z /= z.dtype.type(temperature)
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def ink_features(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per 28x28 image: mean ink (0..1) and the number of ink pieces (> 0.5, at least 3 pixels)."""
    x = np.asarray(images, np.float32).reshape(-1, 28, 28)
    if x.size and x.max() > 1.0:
        x = x / 255.0
    pieces = np.array([np.count_nonzero(piece_sizes(im > 0.5) >= 3) for im in x], np.int64)
    return x.mean(axis=(1, 2)), pieces


@dataclass(frozen=True)
class Rules:
    """What the model card stores under "calibration"; `reasons` applies it. Defaults change nothing."""

    temperature: float = 1.0
    reject_below: float = 0.0
    ink_min: float = 0.0
    ink_max: float = 1.0
    max_pieces: int = 1_000
    max_distance: float = math.inf
    class_means: list[list[float]] | None = field(default=None, repr=False)
    precision: list[list[float]] | None = field(default=None, repr=False)

    @classmethod
    def from_calibration(cls, cal: dict[str, Any] | None) -> Rules:
        """From a model card's "calibration" (ModelCard.calibration); missing parts change nothing."""
        cal = cal or {}
        like = cal.get("digit_like") or {}
        return cls(
            temperature=float(cal.get("temperature", 1.0)),
            reject_below=float(cal.get("reject_below", 0.0)),
            ink_min=float(like.get("ink_min", 0.0)),
            ink_max=float(like.get("ink_max", 1.0)),
            max_pieces=int(like.get("max_pieces", 1_000)),
            max_distance=float(like.get("max_distance", math.inf)),
            class_means=like.get("class_means"),
            precision=like.get("precision"),
        )

    def distance(self, logits: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of each logit vector to its predicted class's mean (0 if not fitted)."""
        z = np.asarray(logits, np.float64).reshape(-1, 10)
        if self._arrays is None:
            return np.zeros(len(z))
        means, precision = self._arrays
        d = z - means[z.argmax(axis=1)]
        return np.sqrt(np.maximum(np.einsum("ni,ij,nj->n", d, precision, d), 0))

    @cached_property
    def _arrays(self) -> tuple[np.ndarray, np.ndarray] | None:
        """class_means and precision as arrays, made once: `distance` runs on every prediction."""
        if self.class_means is None or self.precision is None:
            return None
        return np.asarray(self.class_means, np.float64), np.asarray(self.precision, np.float64)

    def reasons(self, images: np.ndarray, logits: np.ndarray) -> list[str | None]:
        """Per image (28x28, MNIST form) and its raw logits: None to answer, else why not."""
        ink, pieces = ink_features(images)
        dist = self.distance(logits)
        conf = softmax(logits, self.temperature).max(axis=1)
        out: list[str | None] = []
        for i in range(len(conf)):
            if not (self.ink_min <= ink[i] <= self.ink_max) or pieces[i] > self.max_pieces or (
                dist[i] > self.max_distance
            ):
                out.append("not_digit_like")
            elif conf[i] < self.reject_below:
                out.append("low_confidence")
            else:
                out.append(None)
        return out

    def to_calibration(self) -> dict[str, Any]:
        d = asdict(self)
        like = {k: d.pop(k) for k in ("ink_min", "ink_max", "max_pieces", "max_distance", "class_means",
                                      "precision")}
        return {**d, "digit_like": like}
