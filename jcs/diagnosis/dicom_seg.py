"""The diagnosis' masks as a DICOM Segmentation (SEG) of a DICOM series input, written with
highdicom: what a PACS viewer or 3D Slicer (QuantitativeReporting) overlays on the series.

Two binary segments: 1 = the COVID-19 lesions (the segmenter on the slices counted, as
``lesion_mask.nii.gz``), 2 = the lungs (the threshold lung mask). One frame per source slice and
segment (empty frames kept, so every source image is referenced); each frame references its
source image (SOP Instance UID) and lies on its plane. Each segment's algorithm identification
names the model, the ``jcs`` version and the checkpoint (or "random weights"). The series
description says it is a research result, not a medical device.
"""
from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

import jcs
from jcs.data.grid import Grid
from jcs.data.volume import require

SEG_FILE = "segmentation.dcm"
SERIES_DESCRIPTION = "JCS lesions + lungs (research, not a medical device)"
CONTENT_DESCRIPTION = "Research reproduction; not a medical device"
#: Patient and study attributes a SEG copies from its sources (Type 2: present, may be empty);
#: absent ones (anonymised series) are copied as empty.
_TYPE2_PATIENT_STUDY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                        "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID",
                        "AccessionNumber")


def dicom_seg_unavailable(grid: Optional[Grid]) -> Optional[str]:
    """Why no DICOM SEG can be written for a volume of this grid (a sentence), or None."""
    if grid is None or grid.basis != "dicom" or not grid.slice_files:
        kind = "a multi-frame DICOM file" if grid is not None and grid.basis == "dicom-multiframe" \
            else "not a single-frame DICOM series"
        return (f"no DICOM SEG: the input is {kind}; the masks are in the NIfTI files "
                "(a SEG references the slices of a single-frame DICOM series)")
    return None


class UnreferenceableSeriesError(ValueError):
    """The source series cannot be referenced by a SEG: its files lack distinct SOP Instance
    UIDs (anonymisers sometimes blank them), so a SEG would point at no image."""


def check_references(sources, files) -> None:
    """Raise :class:`UnreferenceableSeriesError` when a source file (pydicom datasets ``sources``
    read from ``files``) has no SOP Instance UID or two files share one: a SEG's frames reference
    their source images by this UID, and a viewer could not place them."""
    uids = [str(source.get("SOPInstanceUID", "") or "").strip() for source in sources]
    empty = [Path(f).name for f, uid in zip(files, uids) if not uid]
    if empty:
        raise UnreferenceableSeriesError(
            f"no DICOM SEG: {len(empty)} of {len(uids)} source files have no SOP Instance UID "
            f"(e.g. {empty[0]}; an anonymiser removed it) and a SEG must reference each source "
            "image; the NIfTI masks hold the same masks")
    shared = [uid for uid, count in Counter(uids).items() if count > 1]
    if shared:
        raise UnreferenceableSeriesError(
            f"no DICOM SEG: {len(shared)} SOP Instance UID(s) are shared by several source files "
            f"(e.g. {shared[0]}), so a SEG could not tell its source images apart; the NIfTI "
            "masks hold the same masks")


def _algorithm(highdicom, codes, name: str, family, parameters: Dict[str, str]):
    return highdicom.AlgorithmIdentificationSequence(
        name=name[:64], family=family, version=jcs.__version__[:16],
        parameters={k: str(v)[:64] for k, v in parameters.items()})


def write_dicom_seg(path: Path, grid: Grid, lesion: np.ndarray, lungs: Optional[np.ndarray],
                    segmenter: Dict[str, Any], lung_threshold_hu: float,
                    series_number: int = 9901) -> Dict[str, Any]:
    """Write the SEG of a single-frame DICOM series volume to ``path``.

    ``grid``: the Volume's grid (basis "dicom", with ``slice_files``). ``lesion`` / ``lungs``:
    bool S×H×W in the Volume's display orientation (``lungs`` None: an empty lung segment).
    ``segmenter``: the summary's segmenter info (``name``, ``checkpoint``, ``random_init``).
    Returns ``{"file", "frames", "segments", "sop_instance_uid", "series_instance_uid"}``.
    Raises ValueError when the grid is not a DICOM series' (:func:`dicom_seg_unavailable`), and
    :class:`UnreferenceableSeriesError` when its files lack distinct SOP Instance UIDs."""
    reason = dicom_seg_unavailable(grid)
    if reason:
        raise ValueError(reason)
    highdicom = require("highdicom", "writing a DICOM SEG")
    pydicom = require("pydicom", "writing a DICOM SEG")
    from pydicom.sr.codedict import codes

    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in grid.slice_files]
    check_references(sources, grid.slice_files)
    for source in sources:  # anonymised series often drop these; the SEG needs them (Type 2)
        for keyword in _TYPE2_PATIENT_STUDY:
            if keyword not in source:
                setattr(source, keyword, "")
    present = np.arange(grid.shape[2]) if grid.planes is None else grid.planes
    lung_array = np.zeros_like(lesion, dtype=bool) if lungs is None else lungs

    def frames(array: np.ndarray) -> np.ndarray:  # grid (i=column, j=row, k) -> k × rows × columns
        return grid.to_grid(array.astype(np.uint8))[:, :, present].transpose(2, 1, 0)

    pixels = np.stack([frames(lesion), frames(lung_array)], axis=-1)
    checkpoint = segmenter.get("checkpoint") or "none: random weights"
    descriptions = [
        highdicom.seg.SegmentDescription(
            segment_number=1, segment_label="COVID-19 lesion",
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Lesion,
            algorithm_type=highdicom.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=_algorithm(
                highdicom, codes, f"jcs {segmenter.get('name')}", codes.cid7162.ArtificialIntelligence,
                {"checkpoint": Path(str(checkpoint)).name if segmenter.get("checkpoint") else checkpoint,
                 "random_weights": "yes" if segmenter.get("random_init") else "no",
                 "slices": "positive slices only"}),
            tracking_uid=highdicom.UID(), tracking_id="JCS lesion"),
        highdicom.seg.SegmentDescription(
            segment_number=2, segment_label="Lung",
            segmented_property_category=codes.SCT.AnatomicalStructure,
            segmented_property_type=codes.SCT.Lung,
            algorithm_type=highdicom.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=_algorithm(
                highdicom, codes, "jcs threshold lung mask", codes.cid7162.MorphologicalOperations,
                {"threshold_hu": f"{lung_threshold_hu:g}"}),
            tracking_uid=highdicom.UID(), tracking_id="JCS lung"),
    ]
    with warnings.catch_warnings():  # highdicom warns about optional attributes of the sources
        warnings.simplefilter("ignore", UserWarning)
        seg = highdicom.seg.Segmentation(
            source_images=sources, pixel_array=pixels,
            segmentation_type=highdicom.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions, series_instance_uid=highdicom.UID(),
            series_number=series_number, sop_instance_uid=highdicom.UID(), instance_number=1,
            manufacturer="jcs-companion", manufacturer_model_name="JCS reproduction (research)",
            software_versions=f"jcs {jcs.__version__}", device_serial_number="none",
            content_description=CONTENT_DESCRIPTION, content_label="JCS",
            omit_empty_frames=False)
        seg.SeriesDescription = SERIES_DESCRIPTION
        seg.save_as(str(path))
    return {"file": path.name, "frames": int(seg.NumberOfFrames), "segments": 2,
            "sop_instance_uid": str(seg.SOPInstanceUID),
            "series_instance_uid": str(seg.SeriesInstanceUID),
            "referenced_images": len(sources)}
