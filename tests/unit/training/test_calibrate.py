"""Calibration: temperature fitting recovers a known temperature, ECE measures miscalibration, the rejection
threshold keeps its budget, the card round-trips, fitted rules reject noise (on synthetic data; the real model on
the real data set is tests/e2e/mnist/test_calibrate_real.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from digitrec.training.calibrate import (
    Rules,
    ece,
    fit_rules,
    fit_temperature,
    ink_features,
    nll,
    reject_threshold,
    softmax,
)


def _sampled(t_true: float, n: int = 20000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose labels are drawn from softmax(logits / t_true): calibrated exactly at t_true."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1, (n, 10)) * 3
    logits[np.arange(n), rng.integers(0, 10, n)] += 6
    p = softmax(logits, t_true)
    labels = (p.cumsum(1) > rng.random((n, 1))).argmax(1)
    return logits, labels


@pytest.mark.parametrize("t_true", [0.5, 1.0, 2.5])
def test_fit_temperature_recovers_the_true_temperature(t_true):
    logits, labels = _sampled(t_true)
    t = fit_temperature(logits, labels)
    assert t == pytest.approx(t_true, rel=0.08)
    # It is the minimum: a little either way is worse.
    assert nll(logits, labels, t) <= min(nll(logits, labels, t * 1.1), nll(logits, labels, t / 1.1))


def test_ece_is_small_when_calibrated_and_drops_after_scaling():
    logits, labels = _sampled(2.5)
    before = ece(softmax(logits), labels)  # over-confident by a factor 2.5 in the logits
    after = ece(softmax(logits, fit_temperature(logits, labels)), labels)
    assert before > 0.05
    assert after < 0.015 and after < before / 4


def test_ece_by_hand():
    # Two bins: conf 0.9 (right, wrong) -> |0.5 - 0.9|; conf 0.6 (right, right) -> |1 - 0.6|.
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    labels = np.array([0, 1, 0, 0])
    assert ece(probs, labels) == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)


def test_reject_threshold_keeps_its_budget():
    rng = np.random.default_rng(1)
    conf = rng.random(10_000)
    t = reject_threshold(conf, 0.005)
    assert (conf < t).mean() <= 0.005
    assert (conf < np.nextafter(t, 2)).mean() > 0.004  # and is not needlessly low


def test_ink_features_count_pieces_and_ink():
    im = np.zeros((28, 28), np.float32)
    im[4:24, 10:13] = 1.0  # a stroke
    ink, pieces = ink_features(im[None])
    assert pieces[0] == 1 and ink[0] == pytest.approx(60 / 784)
    im[2, 2] = im[2, 25] = 1.0  # specks under 3 pixels are not pieces
    im[20:24, 20:24] = 1.0
    assert ink_features(im[None])[1][0] == 2


def test_default_rules_never_reject_and_round_trip_through_the_card():
    rng = np.random.default_rng(2)
    images = rng.random((5, 28, 28)).astype(np.float32)
    logits = rng.normal(0, 1, (5, 10))
    assert Rules().reasons(images, logits) == [None] * 5
    assert Rules.from_calibration(None) == Rules()
    r = Rules(temperature=1.3, reject_below=0.6, ink_min=0.02, ink_max=0.3, max_pieces=4, max_distance=7.5,
              class_means=np.eye(10).tolist(), precision=np.eye(10).tolist())
    assert Rules.from_calibration(r.to_calibration()) == r


def _digit_like_data(n: int = 3000, seed: int = 3):
    """Stand-in digits: a vertical bar whose position encodes the class, with logits that are right most of
    the time (and calibrated at T = 1.5)."""
    logits, labels = _sampled(1.5, n, seed)
    images = np.zeros((n, 28, 28), np.float32)
    for i, c in enumerate(labels):
        images[i, 4:24, 4 + 2 * c : 6 + 2 * c] = 1.0
    return images, labels, logits


def test_fitted_rules_reject_noise_and_few_digits():
    images, labels, logits = _digit_like_data()
    rules, stats = fit_rules(logits, labels, images)
    assert stats["val_rejected"] <= 0.01
    assert stats["ece_after"] <= stats["ece_before"] + 1e-9
    assert 0 < rules.reject_below < 1 and math.isfinite(rules.max_distance)
    rng = np.random.default_rng(4)
    noise = (rng.random((50, 28, 28)) > 0.5).astype(np.float32)  # half the pixels inked, many pieces
    flat_logits = rng.normal(0, 1, (50, 10))  # no class stands out
    reasons = rules.reasons(noise, flat_logits)
    assert all(r == "not_digit_like" for r in reasons)
    blurred = rules.reasons(images[:50], logits[:50] / 40)  # digits, but the model is unsure
    assert sum(r == "low_confidence" for r in blurred) >= 45
