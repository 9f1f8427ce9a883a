"""Slice- and patient-level classification metrics (PAPER.md Tables III-IV, jcs_official.md §4.1).

Conventions: label 1 = COVID-19 (positive). A slice is predicted positive when
``score >= threshold`` (the ``roc_curve`` convention; for softmax probabilities and threshold 0.5
this is the authors' argmax except at an exact 0.5 tie). Undefined ratios (e.g. sensitivity
without positives, ROC AUC with one class) are NaN, never an exception.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch

__all__ = [
    "classification_metrics",
    "compute_group_aucs",
    "patient_positive",
    "patient_threshold_scale",
    "roc_auc",
    "roc_curve",
    "threshold_sweep",
]


def _vector(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().to(torch.float64).numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(
            f"{name} must be one-dimensional (one value per sample), got shape {x.shape}"
        )
    if np.isnan(x).any():
        raise ValueError(f"{name} contains NaN")
    return x


def _labels_scores(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    y, s = _vector(labels, "labels"), _vector(scores, "scores")
    if y.shape != s.shape:
        raise ValueError(f"labels shape {y.shape} and scores shape {s.shape} must be equal")
    if y.size == 0:
        raise ValueError("labels and scores are empty")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be 0 or 1 (1 = COVID-19), got values {np.unique(y)}")
    return y.astype(bool), s


def _div(num: float, den: float) -> float:
    return float(num) / den if den else float("nan")


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve from ranks (Mann-Whitney U): the probability that a random
    positive scores above a random negative, ties counting 1/2. NaN with only one class."""
    y, s = _labels_scores(labels, scores)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    mid_ranks = np.cumsum(counts) - (counts - 1) / 2.0  # average 1-based rank of each value
    rank_sum = mid_ranks[inverse][y].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_curve(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC points ``(fpr, tpr, thresholds)``: thresholds are ``inf`` then the distinct scores in
    decreasing order; point i predicts positive when ``score >= thresholds[i]``. The rate whose
    class is absent is NaN."""
    y, s = _labels_scores(labels, scores)
    thresholds = np.concatenate([[np.inf], np.unique(s)[::-1]])
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    # number of samples with score >= t = index of the last occurrence of t in s_sorted, plus 1
    n_above = np.searchsorted(-s_sorted, -thresholds, side="right")
    tp = np.concatenate([[0], np.cumsum(y_sorted)])[n_above]
    fp = n_above - tp
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    tpr = tp / n_pos if n_pos else np.full(tp.shape, np.nan)
    fpr = fp / n_neg if n_neg else np.full(fp.shape, np.nan)
    return fpr.astype(np.float64), tpr.astype(np.float64), thresholds


def classification_metrics(labels, scores, threshold: float = 0.5) -> dict[str, float]:
    """Binary metrics of ``scores >= threshold`` against ``labels`` (1 = COVID-19):
    ``sensitivity``, ``specificity``, ``accuracy``, ``precision``, ``f1``, ``roc_auc``,
    ``n_pos``, ``n_neg``, ``tp``, ``fn``, ``tn``, ``fp``."""
    y, s = _labels_scores(labels, scores)
    pred = s >= threshold
    tp, fn = int((pred & y).sum()), int((~pred & y).sum())
    tn, fp = int((~pred & ~y).sum()), int((pred & ~y).sum())
    return {
        "sensitivity": _div(tp, tp + fn),
        "specificity": _div(tn, tn + fp),
        "accuracy": _div(tp + tn, y.size),
        "precision": _div(tp, tp + fp),
        "f1": _div(2 * tp, 2 * tp + fp + fn),
        "roc_auc": roc_auc(y, s),
        "n_pos": tp + fn,
        "n_neg": tn + fp,
        "tp": tp,
        "fn": fn,
        "tn": tn,
        "fp": fp,
    }


def compute_group_aucs(labels, scores, groups) -> dict[str, dict[str, float | int | None]]:
    """Which negatives a classifier confuses with the positives: for every group of samples,
    ``{"n": count, "label": 0 or 1, "mean_score": mean score, "roc_auc": AUC of all positives
    against this group's samples}`` (None for a group of positives). ``groups``: one string per
    sample (e.g. :data:`jcs.data.ctmd_labels.GROUPS`); a group must not mix labels (ValueError).
    ``roc_auc`` is None for a group of positives and NaN when there are no positives at all
    (both are null once written to JSON; ``label`` tells them apart)."""
    y, s = _labels_scores(labels, scores)
    groups = [str(g) for g in groups]
    if len(groups) != y.size:
        raise ValueError(f"{len(groups)} groups for {y.size} labels")
    names = np.array(groups)
    out: dict[str, dict[str, float | int | None]] = {}
    for group in dict.fromkeys(groups):
        member = names == group
        if len(np.unique(y[member])) != 1:
            raise ValueError(f"group {group!r} holds both labels; groups must not mix them")
        positive = bool(y[member][0])
        pair = y | member
        out[group] = {"n": int(member.sum()), "label": int(positive),
                      "mean_score": float(s[member].mean()),
                      "roc_auc": None if positive else roc_auc(y[pair], s[pair])}
    return out


REFERENCE_SLICE_MM = 1.0  # COVID-CS slice thickness 0.75-1.25 mm (PAPER.md)
REFERENCE_SLICES = 300  # COVID-CS: 250-400 slices per patient, ~300 in the paper's runtime
THRESHOLD_SCALINGS = ("auto", "thickness", "count", "none")


def patient_threshold_scale(*, spacing_mm: float | None = None, n_slices: int | None = None,
                            scaling: str = "auto", reference_slice_mm: float = REFERENCE_SLICE_MM,
                            reference_slices: int = REFERENCE_SLICES) -> tuple[float, str]:
    """Factor that carries the paper's slice-count threshold T (Table IV, COVID-CS scans of ~300
    slices of ~1 mm) to another scan, and the basis used: ``(factor, basis)``, T_eff = T·factor.

    ``"thickness"``: ``reference_slice_mm / spacing_mm``, the same lesion extent along z (a 2 mm
    scan halves T). ``"count"``: ``n_slices / reference_slices``, the same share of the scan.
    ``"none"``: 1, T as an absolute count as in the paper. ``"auto"``: thickness where the slice
    spacing is known, else count. No rounding: "more than 12.5" means at least 13."""
    if scaling not in THRESHOLD_SCALINGS:
        raise ValueError(f"scaling must be one of {', '.join(THRESHOLD_SCALINGS)}, got {scaling!r}")
    if scaling == "auto":
        scaling = "thickness" if spacing_mm else "count"
    if scaling == "none":
        return 1.0, "none"
    if scaling == "thickness":
        if not spacing_mm or spacing_mm <= 0:
            raise ValueError("thickness scaling needs the slice spacing in mm (> 0); use "
                             "scaling='count' for volumes without spacing")
        return reference_slice_mm / float(spacing_mm), "thickness"
    if not n_slices or n_slices <= 0 or reference_slices <= 0:
        raise ValueError(f"count scaling needs n_slices > 0 and reference_slices > 0, got "
                         f"{n_slices} and {reference_slices}")
    return n_slices / reference_slices, "count"


def patient_positive(slice_predictions, threshold: float) -> bool:
    """A patient is positive when MORE THAN ``threshold`` slices are predicted positive
    (PAPER.md Table IV "exceeds"; the authors' code: ``> 18``). ``slice_predictions`` holds one
    0/1 (or bool) prediction per slice: binarise scores first."""
    preds = _vector(slice_predictions, "slice_predictions")
    if not np.isin(preds, (0, 1)).all():
        raise ValueError(
            "slice_predictions must be 0/1 per slice; binarise slice scores first "
            "(e.g. scores >= 0.5)"
        )
    return int(preds.sum()) > threshold


def threshold_sweep(patients: Mapping[str, tuple[int, object]], thresholds: Iterable[float],
                    scales: Mapping[str, float] | None = None) -> list[dict[str, float]]:
    """Patient-level sensitivity / specificity for each threshold (PAPER.md Table IV).

    ``patients`` maps a patient id to ``(label, slice_predictions)`` with label 1 = COVID-19 and
    one 0/1 prediction per slice. ``scales`` (optional) maps a patient id to the factor of
    :func:`patient_threshold_scale`: that patient is positive when more than ``T·scale`` slices
    are. Returns one dict per threshold with ``threshold`` (T), ``sensitivity``, ``specificity``,
    ``tp``, ``fn``, ``tn``, ``fp`` (NaN rate if a class is absent)."""
    if not patients:
        raise ValueError("patients is empty")
    labels = {}
    for pid, (label, _) in patients.items():
        if label not in (0, 1):
            raise ValueError(f"patient {pid!r}: label must be 0 or 1, got {label!r}")
        labels[pid] = bool(label)
    rows = []
    for t in thresholds:
        decided = {pid: patient_positive(preds, t * (scales[pid] if scales else 1.0))
                   for pid, (_, preds) in patients.items()}
        tp = sum(decided[p] and labels[p] for p in patients)
        fn = sum(not decided[p] and labels[p] for p in patients)
        tn = sum(not decided[p] and not labels[p] for p in patients)
        fp = sum(decided[p] and not labels[p] for p in patients)
        rows.append({"threshold": t, "sensitivity": _div(tp, tp + fn),
                     "specificity": _div(tn, tn + fp), "tp": tp, "fn": fn, "tn": tn, "fp": fp})
    return rows
