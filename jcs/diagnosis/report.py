"""The report folder of one patient: ``slices.csv``, ``probability.svg``, ``images/*.png``,
the NIfTI masks, the DICOM SEG (DICOM series input) and ``report.html``; the pipeline writes
``summary.json`` last."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from jcs.data import Volume

from .dicom_seg import (SEG_FILE, UnreferenceableSeriesError, dicom_seg_unavailable,
                        write_dicom_seg)
from .html_report import report_html
from .nifti_masks import geometry_summary, volume_grid, write_nifti_masks
from .pictures import write_pictures
from .plot import probability_svg


def write_slices_csv(path: Path, summary: Dict[str, Any], slice_ids, probs: np.ndarray,
                     preds: np.ndarray, masks: Dict[int, np.ndarray],
                     lungs: Optional[np.ndarray]) -> None:
    """One row per slice: index, slice id, P(COVID-19), positive, segmented, lesion pixels and
    ml (segmented slices), lung pixels."""
    spacing = summary["spacing_mm"]
    voxel_ml = spacing[0] * spacing[1] * spacing[2] / 1000.0 if spacing else None
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["index", "slice_id", "probability", "positive", "segmented",
                         "lesion_pixels", "lesion_ml", "lung_pixels"])
        for i, p in enumerate(probs):
            mask = masks.get(i)
            lesion = int(mask.sum()) if mask is not None else ""
            writer.writerow([i, slice_ids[i], f"{p:.6f}",
                             int(preds[i]), int(mask is not None), lesion,
                             "" if mask is None or voxel_ml is None else f"{lesion * voxel_ml:.4f}",
                             "" if lungs is None else int(lungs[i].sum())])


def _volume_of(slices: Dict[int, np.ndarray], keep, shape, dtype) -> np.ndarray:
    """S×H×W array with the given slices (those in ``keep``) filled in, zero elsewhere."""
    full = np.zeros(shape, dtype=dtype)
    for i, plane in slices.items():
        if i in keep:
            full[i] = plane
    return full


def write_report(out_dir: Path, summary: Dict[str, Any], volume: Volume, gray: np.ndarray,
                 probs: np.ndarray, preds: np.ndarray, masks: Dict[int, np.ndarray],
                 cams: Dict[int, np.ndarray], lungs: Optional[np.ndarray], *,
                 lesion_probability: Optional[Dict[int, np.ndarray]] = None,
                 nifti: bool = True, dicom_seg: bool = True) -> None:
    """Write the report folder (see the module docstring; ``summary.json`` is the caller's);
    adds ``files``, ``geometry``, ``dicom_seg`` and each top slice's ``images`` to ``summary``.

    ``gray``: uint8 S×H×W; ``masks``: bool H×W lesion masks per segmented slice (the NIfTI and
    SEG lesion masks keep the positive slices, the ones counted); ``cams``: Grad-CAM H×W per top
    slice; ``lungs``: bool S×H×W or None; ``lesion_probability``: float32 H×W per segmented slice
    (written as NIfTI when given). A DICOM SEG that highdicom cannot write is a warning in the
    summary, not an error: the other files are still written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_slices_csv(out_dir / "slices.csv", summary, volume.slice_ids, probs, preds, masks, lungs)
    highlight = [t["index"] for t in summary["top_slices"]]
    positives = set(int(i) for i in np.flatnonzero(preds))
    (out_dir / "probability.svg").write_text(
        probability_svg(probs, summary["rule"]["slice_threshold"], highlight, sorted(positives)))
    write_pictures(out_dir / "images", summary, gray, masks, cams, lungs)
    files: Dict[str, Any] = {"summary": "summary.json", "slices": "slices.csv",
                             "html": "report.html", "probability_plot": "probability.svg",
                             "masks": {}, "dicom_seg": None}
    summary["geometry"] = geometry_summary(volume)
    summary["dicom_seg"] = None
    segmented = summary["lesion"]["segmented"]
    lesion = _volume_of(masks, positives, volume.array.shape, bool) if segmented else None
    if nifti:
        probability = None
        if lesion_probability is not None:
            probability = _volume_of(lesion_probability, set(lesion_probability),
                                     volume.array.shape, np.float32)
        files["masks"] = write_nifti_masks(out_dir, volume, lesion, lungs, probability)
    if dicom_seg and segmented:
        grid = volume_grid(volume)
        reason = dicom_seg_unavailable(grid)
        if reason:
            summary["dicom_seg"] = {"reason": reason}
        else:
            try:
                summary["dicom_seg"] = write_dicom_seg(
                    out_dir / SEG_FILE, grid, lesion, lungs, summary["models"]["segmenter"],
                    summary["lesion"].get("lung_threshold_hu", -400.0))
                files["dicom_seg"] = SEG_FILE
            except UnreferenceableSeriesError as error:
                summary["dicom_seg"] = {"reason": str(error)}
                summary["warnings"].append(str(error))
            except Exception as error:  # highdicom refuses some source headers
                reason = (f"DICOM SEG not written: highdicom refused the series "
                          f"({type(error).__name__}: {error}); the NIfTI masks hold the same "
                          "masks")
                summary["dicom_seg"] = {"reason": reason}
                summary["warnings"].append(reason)
    summary["files"] = files
    (out_dir / "report.html").write_text(report_html(summary))
