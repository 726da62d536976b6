import numpy as np
import pytest

from digitrec.training.evaluate import classification_metrics, confusion_matrix, format_table, paired_delta


def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    cm = confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), k=3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]


def test_metrics_match_hand_computed_precision_recall_f1():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 2, 2])
    m = classification_metrics(y_true, y_pred, k=3)
    assert m["accuracy"] == round(4 / 6, 6) and m["errors"] == 2
    assert m["per_class"]["0"] == {"precision": 1.0, "recall": round(2 / 3, 6), "f1": 0.8, "support": 3}
    assert m["per_class"]["1"]["precision"] == 0.5 and m["per_class"]["1"]["recall"] == 0.5
    assert m["per_class"]["2"]["precision"] == 0.5 and m["per_class"]["2"]["recall"] == 1.0


def test_a_class_never_predicted_has_zero_precision_not_nan():
    m = classification_metrics(np.array([0, 1]), np.array([0, 0]), k=2)
    assert m["per_class"]["1"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


def test_format_table_lists_every_class_and_the_accuracy():
    m = classification_metrics(np.arange(10), np.arange(10))
    text = format_table(m)
    assert text.count("\n") == 11 and "accuracy 100.00%" in text


def test_paired_delta_resolves_a_large_gap_and_not_a_small_one():
    n = 6000
    chosen = np.ones(n)
    worse_by_60 = chosen.copy()
    worse_by_60[:60] = 0  # 1 point: far outside what resampling 6,000 images moves
    mean, lo, hi = paired_delta(worse_by_60, chosen)
    assert mean == pytest.approx(-0.01) and hi < 0 and lo < mean < hi
    swapped = chosen.copy()
    swapped[:2] = 0  # two images lost, two others gained: a difference of zero, and an interval around it
    other = chosen.copy()
    other[2:4] = 0
    mean, lo, hi = paired_delta(swapped, other)
    assert mean == 0 and lo < 0 < hi
    assert paired_delta(chosen, chosen) == (0.0, 0.0, 0.0)
    assert paired_delta(worse_by_60, chosen) == paired_delta(worse_by_60, chosen)  # a fixed seed: reruns agree
