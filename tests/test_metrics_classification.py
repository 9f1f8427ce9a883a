"""jcs.metrics.classification on hand-computed cases."""
import itertools
import math

import numpy as np
import pytest
import torch

from jcs.metrics import (
    classification_metrics,
    patient_positive,
    roc_auc,
    roc_curve,
    patient_threshold_scale,
    threshold_sweep,
)


def pairwise_auc(labels, scores):
    """Brute force: fraction of (positive, negative) pairs ranked correctly, ties 1/2."""
    pos = [s for y, s in zip(labels, scores) if y == 1]
    neg = [s for y, s in zip(labels, scores) if y == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_confusion_counts_and_rates():
    labels = [1, 1, 1, 0, 0, 0, 0, 1]
    scores = [0.9, 0.6, 0.2, 0.1, 0.7, 0.3, 0.5, 0.5]
    # >= 0.5: predicted 1 at indices 0, 1, 4, 6, 7 → TP 3 (0, 1, 7), FP 2 (4, 6), FN 1, TN 2
    m = classification_metrics(labels, scores)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (3, 2, 1, 2)
    assert (m["n_pos"], m["n_neg"]) == (4, 4)
    assert m["sensitivity"] == pytest.approx(3 / 4)
    assert m["specificity"] == pytest.approx(2 / 4)
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert m["precision"] == pytest.approx(3 / 5)
    assert m["f1"] == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
    assert m["roc_auc"] == pytest.approx(pairwise_auc(labels, scores))
    assert classification_metrics(labels, scores, threshold=0.55)["tp"] == 2


def test_auc_with_ties_matches_pairwise_count():
    labels = [1, 0, 1, 0, 1, 0, 0]
    scores = [0.4, 0.4, 0.8, 0.1, 0.4, 0.8, 0.2]
    # positives 0.4, 0.8, 0.4 vs negatives 0.4, 0.1, 0.8, 0.2:
    # wins 0.5+1+0+1 + 1+1+0.5+1 + 0.5+1+0+1
    assert roc_auc(labels, scores) == pytest.approx(8.5 / 12)
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.integers(0, 2, 30)
        y[:2] = [0, 1]
        s = rng.integers(0, 5, 30) / 4  # many ties
        assert roc_auc(y, s) == pytest.approx(pairwise_auc(y, s))


def test_auc_extremes():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert roc_auc([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4]) == 0.0
    assert roc_auc([0, 1, 0, 1], [0.5] * 4) == 0.5


def test_roc_curve_points_and_area():
    labels = [1, 0, 1, 0, 1, 0, 0]
    scores = [0.4, 0.4, 0.8, 0.1, 0.4, 0.8, 0.2]
    fpr, tpr, thr = roc_curve(labels, scores)
    np.testing.assert_array_equal(thr, [np.inf, 0.8, 0.4, 0.2, 0.1])
    np.testing.assert_allclose(tpr, [0, 1 / 3, 1, 1, 1])
    np.testing.assert_allclose(fpr, [0, 1 / 4, 2 / 4, 3 / 4, 1])
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))  # trapezoids
    assert area == pytest.approx(roc_auc(labels, scores))
    for t, f, s in zip(thr[1:], fpr[1:], tpr[1:]):
        m = classification_metrics(labels, scores, threshold=t)
        assert (m["sensitivity"], 1 - m["specificity"]) == pytest.approx((s, f))


def test_one_class_gives_nan():
    m = classification_metrics([1, 1, 1], [0.9, 0.2, 0.7])
    assert math.isnan(m["roc_auc"]) and math.isnan(m["specificity"])
    assert m["sensitivity"] == pytest.approx(2 / 3)
    fpr, tpr, _ = roc_curve([1, 1, 1], [0.9, 0.2, 0.7])
    assert np.isnan(fpr).all() and not np.isnan(tpr).any()
    assert math.isnan(roc_auc([0, 0], [0.1, 0.2]))


def test_torch_inputs():
    labels, scores = torch.tensor([0, 1, 1, 0]), torch.tensor([0.2, 0.9, 0.4, 0.6])
    assert classification_metrics(labels, scores) == classification_metrics(
        labels.numpy(), scores.numpy())


def test_bad_inputs():
    with pytest.raises(ValueError, match="shape"):
        classification_metrics([0, 1], [0.5])
    with pytest.raises(ValueError, match="0 or 1"):
        classification_metrics([0, 2], [0.5, 0.5])
    with pytest.raises(ValueError, match="empty"):
        classification_metrics([], [])


def test_patient_positive_needs_more_than_threshold_slices():
    slices = np.array([1, 0, 1, 1, 0])  # 3 positive slices
    assert patient_positive(slices, 2)
    assert not patient_positive(slices, 3)  # "exceeds": 3 > 3 is false
    assert patient_positive(slices.astype(bool), 0)
    with pytest.raises(ValueError, match="binarise"):
        patient_positive([0.2, 0.9], 0)


def test_threshold_sweep():
    patients = {
        "a": (1, [1] * 5),  # 5 positive slices
        "b": (1, [1, 1, 0, 0]),  # 2
        "c": (0, [0, 0, 0]),  # 0
        "d": (0, [1, 0, 1, 0]),  # 2
        "e": (0, [1, 1, 1, 0]),  # 3
    }
    rows = threshold_sweep(patients, [0, 2, 4, 5])
    got = [(r["threshold"], r["tp"], r["fn"], r["tn"], r["fp"]) for r in rows]
    assert got == [(0, 2, 0, 1, 2), (2, 1, 1, 2, 1), (4, 1, 1, 3, 0), (5, 0, 2, 3, 0)]
    assert rows[1]["sensitivity"] == pytest.approx(1 / 2)
    assert rows[1]["specificity"] == pytest.approx(2 / 3)
    only_negative = threshold_sweep({"c": (0, [0, 1])}, [0])[0]
    assert math.isnan(only_negative["sensitivity"]) and only_negative["specificity"] == 0.0


def test_threshold_sweep_per_patient_scales():
    patients = {"a": (1, [1] * 8 + [0] * 142), "b": (0, [1] * 15 + [0] * 285)}
    rows = threshold_sweep(patients, [15], {"a": 0.5, "b": 1.0})
    assert (rows[0]["tp"], rows[0]["tn"]) == (1, 1)  # 8 > 7.5, 15 is not > 15
    assert rows[0]["threshold"] == 15


def test_patient_threshold_scale():
    assert patient_threshold_scale(spacing_mm=2.0, n_slices=150) == (0.5, "thickness")
    assert patient_threshold_scale(n_slices=150) == (0.5, "count")
    assert patient_threshold_scale(spacing_mm=2.0, scaling="none") == (1.0, "none")
    with pytest.raises(ValueError, match="n_slices"):
        patient_threshold_scale()
