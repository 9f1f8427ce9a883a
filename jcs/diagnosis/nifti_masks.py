"""The diagnosis' masks as NIfTI files on the input's own voxel grid (nibabel), so that they
overlay the scan in 3D Slicer or ITK-SNAP with no manual step.

The grid and affine are the Volume's :class:`jcs.data.grid.Grid`: a NIfTI input's own affine
(and its qform / sform codes), a NRRD input's space origin and directions, a DICOM series'
ImagePositionPatient / ImageOrientationPatient / PixelSpacing (slices in increasing position
along the DICOM slice normal, missing slices left empty), a multi-frame DICOM's frame positions.
An input without any position (PNG slices, an in-memory Volume) gets the display orientation
with its spacing (:func:`jcs.data.grid.assumed_grid`), and the summary says so.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

import numpy as np

from jcs.data import Volume
from jcs.data.grid import Grid, assumed_grid
from jcs.data.volume import require

#: File names of the masks in the report folder.
LESION_FILE = "lesion_mask.nii.gz"
LUNG_FILE = "lung_mask.nii.gz"
PROBABILITY_FILE = "lesion_probability.nii.gz"


def volume_grid(volume: Volume) -> Grid:
    """The volume's input grid, or the assumed display grid where the input gives none."""
    return volume.grid if volume.grid is not None else assumed_grid(volume.array.shape, volume.spacing)


def save_on_grid(array: np.ndarray, grid: Grid, path: Path) -> Path:
    """Write a display-orientation array (S×H×W, the Volume's shape; uint8 or float32) as a
    NIfTI file on ``grid``: the array reoriented to the grid (:meth:`Grid.to_grid`), the grid's
    affine as qform and sform (with a NIfTI input's codes, else 1 = scanner), units mm.
    Raises ValueError when the array is not on the volume's display grid."""
    nibabel = require("nibabel", "writing NIfTI masks")
    data = grid.to_grid(np.asarray(array))
    image = nibabel.Nifti1Image(data, grid.affine)
    qform_code, sform_code = grid.xform_codes or (1, 1)
    image.set_sform(grid.affine, code=int(sform_code))
    image.set_qform(grid.affine, code=int(qform_code))
    image.header.set_xyzt_units("mm")
    image.header.set_data_dtype(data.dtype)
    nibabel.save(image, str(path))
    return path


def write_nifti_masks(out_dir: Path, volume: Volume, lesion: Optional[np.ndarray],
                      lungs: Optional[np.ndarray],
                      lesion_probability: Optional[np.ndarray] = None) -> Dict[str, str]:
    """Write the masks that exist into ``out_dir``: ``lesion_mask.nii.gz`` (uint8, 1 = lesion;
    ``lesion``: bool S×H×W in the display orientation), ``lung_mask.nii.gz`` (uint8, 1 = lung)
    and ``lesion_probability.nii.gz`` (float32 in [0, 1]). Returns ``{"lesion_mask": name, ...}``
    of the files written."""
    grid = volume_grid(volume)
    written = {}
    for key, name, array, dtype in (("lesion_mask", LESION_FILE, lesion, np.uint8),
                                    ("lung_mask", LUNG_FILE, lungs, np.uint8),
                                    ("lesion_probability", PROBABILITY_FILE, lesion_probability,
                                     np.float32)):
        if array is not None:
            save_on_grid(np.asarray(array).astype(dtype, copy=False), grid, out_dir / name)
            written[key] = name
    return written


def geometry_summary(volume: Volume) -> Dict[str, object]:
    """What ``summary.json`` says about the grid the NIfTI files use: basis, shape, affine (RAS+
    mm, rows) and notes (where the geometry is assumed or approximate)."""
    grid = volume_grid(volume)
    return {"basis": grid.basis, "shape": list(grid.shape),
            "affine_ras": np.round(grid.affine, 6).tolist(),
            "missing_slices": None if grid.planes is None else
            int(grid.shape[2] - len(grid.planes)), "notes": list(grid.notes)}
