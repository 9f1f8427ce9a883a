"""Enhanced (multi-frame) CT to :class:`~jcs.data.volume.Volume` with highdicom: the frames in
position order (Per-frame Functional Groups), HU through the Pixel Value Transformation, in the
display orientation of :class:`Volume`; files whose frames are not one regularly spaced stack
are refused with how to convert them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .dicom_pixels import rescale_warnings
from .errors import CorruptFileError, DataError
from .geometry import to_display
from .grid import grid_from_lps
from .volume import Volume, padding_to_air, require

_CONVERT = ("Convert it to a NIfTI file (e.g. `dcm2niix -z y -o OUT FOLDER`) or to single-frame "
            "DICOM files (e.g. dcm4che's emf2sf) and give that instead.")


def read_multiframe(path: Path, source: str | Path, notes: list[str] | None = None) -> Volume:
    """Read an enhanced (multi-frame) CT file with highdicom: the frames in position order, HU
    through its Pixel Value Transformation, in the display orientation of :class:`Volume`.

    Raises :class:`DataError` saying how to convert the file when its frames are not one
    regularly spaced stack (highdicom refuses them)."""
    highdicom = require("highdicom", f"reading the multi-frame DICOM file {path}")
    notes = list(notes or [])
    try:
        image = highdicom.imread(str(path))
    except Exception as exc:  # highdicom / pydicom raise many types
        raise CorruptFileError(f"{path}: not a readable multi-frame DICOM file ({exc}). "
                               f"{_CONVERT}") from exc
    frames = int(image.get("NumberOfFrames", 1))
    try:
        volume = image.get_volume(dtype=np.float32, apply_voi_transform=False)
    except Exception as exc:
        raise DataError(f"{path}: an enhanced (multi-frame) DICOM image of {frames} frames that do "
                        f"not form one regularly spaced stack of slices ({exc}). {_CONVERT}") from exc
    directions = volume.affine[:3, :3].T
    array, spacing, _ = to_display(volume.array, directions, tuple(volume.spacing))
    array = np.ascontiguousarray(array, dtype=np.float32)
    notes += padding_to_air(array)
    notes += rescale_warnings(array, str(path), _has_pixel_value_transformation(image),
                               "the file has no Pixel Value Transformation (rescale)")
    grid = grid_from_lps(volume.affine, volume.array.shape, "dicom-multiframe")
    return Volume(array, spacing, "HU", str(source),
                  [f"{path.name}:{k}" for k in range(array.shape[0])], notes, grid)


def _has_pixel_value_transformation(image) -> bool:
    groups = []
    for keyword in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        if keyword in image and len(image.get(keyword)):
            groups.append(image.get(keyword)[0])
    return any("PixelValueTransformationSequence" in g or "RescaleIntercept" in g for g in groups) \
        or "RescaleIntercept" in image
