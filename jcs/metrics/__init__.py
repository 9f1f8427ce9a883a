"""Evaluation metrics (numpy + torch only): segmentation (Dice, IoU, sensitivity, specificity,
MAE, E-measure, S-measure, 256-threshold curves) and slice / patient-level classification
(models_and_metrics.md §8, jcs_official.md §4.5, PAPER.md Tables III-IV)."""
from jcs.metrics.classification import (
    classification_metrics,
    compute_group_aucs,
    patient_positive,
    patient_threshold_scale,
    roc_auc,
    roc_curve,
    threshold_sweep,
)
from jcs.metrics.segmentation import (
    THRESHOLDS,
    SegmentationMetrics,
    adaptive_binarize,
    compute_curves,
    compute_dice,
    compute_emeasure,
    compute_iou,
    compute_mae,
    compute_sensitivity,
    compute_smeasure,
    compute_specificity,
    normalize_prediction,
)

__all__ = [
    "THRESHOLDS",
    "SegmentationMetrics",
    "adaptive_binarize",
    "classification_metrics",
    "compute_group_aucs",
    "compute_curves",
    "compute_dice",
    "compute_emeasure",
    "compute_iou",
    "compute_mae",
    "compute_sensitivity",
    "compute_smeasure",
    "compute_specificity",
    "normalize_prediction",
    "patient_positive",
    "patient_threshold_scale",
    "roc_auc",
    "roc_curve",
    "threshold_sweep",
]
