"""The patient-level rule of ``jcs diagnose``: a slice is positive when P(COVID-19) ≥ the slice
threshold; the patient when MORE than ``T_eff`` slices are. ``T_eff`` is T scaled to the scan by
:func:`jcs.metrics.patient_threshold_scale`, and the decision is :func:`jcs.metrics.patient_positive`:
the same two functions the engine's Table IV uses (:func:`jcs.engine.experiments.scaled_thresholds`,
:func:`jcs.metrics.threshold_sweep`), so both decide every patient alike."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from jcs.metrics import patient_positive, patient_threshold_scale

from .config import DEFAULT_THRESHOLD


def effective_threshold(threshold: float = DEFAULT_THRESHOLD, *, n_slices: Optional[int] = None,
                        spacing_mm: Optional[float] = None,
                        scaling: str = "auto") -> Tuple[float, str]:
    """``(T_eff, basis)`` of the patient rule for one volume (see the module docstring):
    ``T · factor`` with the factor of :func:`jcs.metrics.patient_threshold_scale`."""
    if threshold < 0:
        raise ValueError(f"the patient threshold T must be >= 0, got {threshold}")
    factor, basis = patient_threshold_scale(spacing_mm=spacing_mm, n_slices=n_slices,
                                            scaling=scaling)
    return float(threshold) * factor, basis


def slice_predictions(probabilities: Sequence[float], slice_threshold: float = 0.5) -> np.ndarray:
    """0/1 per slice: ``probability >= slice_threshold`` (the :mod:`jcs.metrics` convention)."""
    return (np.asarray(probabilities, dtype=np.float64) >= slice_threshold).astype(np.int64)


def rule_text(t_eff: float, basis: str, n_slices: int, slice_threshold: float, threshold: float,
              slice_mm: Optional[float]) -> str:
    """The rule of one patient in words, e.g. ``positive when more than 12.50 of 133 slices have
    P(COVID-19) >= 0.5 (T = 25, scaled by 1 mm / 2 mm slices)``."""
    scaled = {"thickness": f"scaled by 1 mm / {slice_mm or 0:g} mm slices",
              "count": f"scaled by {n_slices} / 300 slices", "none": "not scaled"}[basis]
    return (f"positive when more than {t_eff:.2f} of {n_slices} slices have P(COVID-19) >= "
            f"{slice_threshold} (T = {threshold:g}, {scaled})")


__all__ = ["effective_threshold", "patient_positive", "rule_text", "slice_predictions"]
