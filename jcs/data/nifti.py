"""NIfTI (.nii / .nii.gz) to :class:`~jcs.data.volume.Volume` with nibabel.

Orientation: the image is put on its closest RAS+ axes (``nibabel.as_closest_canonical``: RAS,
LPS, LAS, reversed z, qform-only files alike) and flipped to the display orientation of
:class:`Volume`. Shape: trailing singleton dimensions (x, y, z, 1, 1) are dropped; two or more
volumes in one file are refused. Units: values are scaled by ``scl_slope`` / ``scl_inter``; an
8-bit file (uint8 / int8) with a scaling holds HU after it, an unscaled uint8 file holds 8-bit
display values (unit "uint8"); values read as HU that do not look like HU are warned about, and
pixel padding (below -1024 HU) becomes air. The Volume's ``grid`` is the file's voxel grid
with its affine (``image.affine``: the sform, else the qform) and header codes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import CorruptFileError, ShapeMismatchError
from .grid import RAS_FROM_LPS, grid_from_lps
from .volume import Volume, hounsfield_warnings, padding_to_air, require

_REFETCH = "Replace the file (re-download it with `jcs data fetch NAME`, then `jcs data verify NAME`)."
_SCALING_FIX = ("If the file holds stored CT values, convert the DICOM series again with a tool "
                "that keeps the rescale (e.g. dcm2niix, which writes scl_slope / scl_inter), or "
                "set the header's scl_slope to 1 and scl_inter to the series' RescaleIntercept "
                "(usually -1024).")


def volume_count(shape: tuple[int, ...]) -> int:
    """Number of 3-D volumes of a NIfTI shape (x, y, z, ...): the product of dimensions 4+."""
    return int(np.prod(shape[3:], dtype=np.int64)) if len(shape) > 3 else 1


def read_nifti(path: str | Path) -> Volume:
    """Read a NIfTI volume (see the module docstring).

    Returns a Volume with float32 S×H×W ``array``, ``spacing`` (z, y, x) mm from the header's
    zooms, ``unit`` "HU" or "uint8" and ``warnings``. Raises :class:`CorruptFileError` (unreadable
    file) and :class:`ShapeMismatchError` (not one 3-D volume)."""
    nibabel = require("nibabel", f"reading the NIfTI file {path}")
    path = Path(path)
    try:
        image = nibabel.load(str(path))
        shape = tuple(int(n) for n in image.shape)
    except Exception as exc:  # nibabel raises many types (ImageFileError, EOFError, zlib.error)
        raise CorruptFileError(f"{path}: cannot read NIfTI ({exc}). {_REFETCH}") from exc
    count = volume_count(shape)
    if len(shape) < 3:
        raise ShapeMismatchError(f"{path}: expected a 3-D volume, got shape {shape}; give single "
                                 "slices as PNG/JPEG images in a folder.")
    if count > 1:
        raise ShapeMismatchError(
            f"{path}: holds {count} volumes of {' x '.join(map(str, shape[:3]))} voxels (shape "
            f"{' x '.join(map(str, shape))}); a CT scan is one 3-D volume. Pick the one "
            f"to diagnose (volumes 0 to {count - 1}; for a CT series usually the first) and save "
            f"it as a file of its own, e.g. volume 0 with FSL: fslroi {path.name} volume0.nii.gz "
            "0 1, then give that file.")
    stored = np.dtype(image.get_data_dtype())
    slope = float(getattr(image.dataobj, "slope", 1.0))
    inter = float(getattr(image.dataobj, "inter", 0.0))
    try:
        if len(shape) > 3:  # (x, y, z, 1, 1): drop the trailing singleton dimensions
            image = nibabel.funcs.squeeze_image(image)
        canonical = nibabel.as_closest_canonical(image)
        data = canonical.get_fdata(dtype=np.float32)
    except Exception as exc:
        raise CorruptFileError(f"{path}: cannot read NIfTI ({exc}). {_REFETCH}") from exc
    array = np.ascontiguousarray(data.transpose(2, 1, 0)[::-1, ::-1, ::-1])
    grid = grid_from_lps(RAS_FROM_LPS @ image.affine, image.shape[:3], "nifti",
                         xform_codes=(int(image.header["qform_code"]), int(image.header["sform_code"])))
    zoom_x, zoom_y, zoom_z = (float(v) for v in canonical.header.get_zooms()[:3])
    scaled = (slope, inter) != (1.0, 0.0)
    notes: list[str] = []
    unit = "uint8" if stored == np.uint8 and not scaled else "HU"
    if unit == "HU":
        notes += padding_to_air(array)
        notes += hounsfield_warnings(array, str(path), _SCALING_FIX)
    return Volume(array, (zoom_z, zoom_y, zoom_x), unit, str(path),
                  [f"{path.name}:{k}" for k in range(array.shape[0])], notes, grid)
