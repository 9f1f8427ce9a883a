"""NRRD (.nrrd / .nhdr, 3D Slicer's format) to :class:`~jcs.data.volume.Volume` with pynrrd.

The ``space`` and ``space directions`` fields give each axis' direction (LPS, RAS or LAS
spaces); the volume is put in the display orientation of :class:`Volume`. Non-spatial axes
(``space directions`` "none", e.g. a list of volumes) of size 1 are dropped; more than one volume
is refused. 8-bit files hold display values (unit "uint8"); other types are read as HU, with a
warning when they do not look like HU, and pixel padding (below -1024 HU) becomes air. The Volume's ``grid`` is the file's voxel grid
with the affine of ``space origin`` and ``space directions`` (none without directions).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import CorruptFileError, ShapeMismatchError
from .geometry import to_display
from .grid import grid_from_lps
from .volume import Volume, hounsfield_warnings, padding_to_air, require

NRRD_SUFFIXES = (".nrrd", ".nhdr")
#: Sign that turns each NRRD space into LPS, per axis.
_TO_LPS = {"left-posterior-superior": (1, 1, 1), "right-anterior-superior": (-1, -1, 1),
           "left-anterior-superior": (1, -1, 1), "scanner-xyz": (1, 1, 1),
           "3d-right-handed": (1, 1, 1)}
_FIX = ("If the file holds stored CT values, convert it again keeping the rescale to HU (e.g. "
        "load the DICOM series in 3D Slicer and save the volume as NRRD).")


def read_nrrd(path: str | Path) -> Volume:
    """Read a NRRD volume (see the module docstring).

    Returns a Volume with float32 S×H×W ``array``, ``spacing`` (z, y, x) mm (the lengths of the
    ``space directions``; None without them), ``unit`` and ``warnings``. Raises
    :class:`CorruptFileError` (unreadable file) and :class:`ShapeMismatchError` (not one 3-D
    volume)."""
    nrrd = require("nrrd", f"reading the NRRD file {path}")
    path = Path(path)
    try:
        data, header = nrrd.read(str(path))
    except Exception as exc:  # pynrrd raises NRRDError, zlib.error, ValueError, OSError, ...
        raise CorruptFileError(f"{path}: cannot read NRRD ({exc}). Replace the file, or save the "
                               "volume again (e.g. from 3D Slicer).") from exc
    notes: list[str] = []
    directions = header.get("space directions")
    spatial = list(range(data.ndim))
    if directions is not None:
        rows = [np.asarray(row, dtype=np.float64) if row is not None else None for row in directions]
        spatial = [i for i, row in enumerate(rows) if row is not None and np.all(np.isfinite(row))]
    other = [i for i in range(data.ndim) if i not in spatial]
    count = int(np.prod([data.shape[i] for i in other], dtype=np.int64))
    if len(spatial) != 3 or count != 1:
        raise ShapeMismatchError(
            f"{path}: expected one 3-D volume, got shape {data.shape} with {len(spatial)} spatial "
            f"axes and {count} volume(s). Save the volume to diagnose as a file of its own (e.g. "
            "from 3D Slicer) and give that file.")
    data = data.reshape([data.shape[i] for i in spatial]) if other else data
    grid = None
    if directions is None:
        notes.append(f"{path}: no space directions: the axes are taken as x towards the patient's "
                     "left, y posterior, z superior, with no spacing.")
        matrix, spacing = np.eye(3), None
    else:
        space = str(header.get("space", "left-posterior-superior")).lower()
        if space not in _TO_LPS:
            notes.append(f"{path}: space {space!r} is not a patient space: taken as "
                         "left-posterior-superior.")
        matrix = np.stack([rows[i] for i in spatial]) * np.asarray(_TO_LPS.get(space, (1, 1, 1)))
        spacing = tuple(float(np.linalg.norm(row)) for row in matrix)
        origin = header.get("space origin")
        origin = np.zeros(3) if origin is None else np.asarray(origin, dtype=np.float64)
        if np.all(np.isfinite(origin)):
            affine = np.eye(4)
            affine[:3, :3] = matrix.T
            affine[:3, 3] = origin * np.asarray(_TO_LPS.get(space, (1, 1, 1)))
            grid = grid_from_lps(affine, data.shape, "nrrd")
    array, spacing, _ = to_display(data, matrix, spacing)
    array = np.ascontiguousarray(array, dtype=np.float32)
    unit = "uint8" if data.dtype == np.uint8 else "HU"
    if unit == "HU":
        notes += padding_to_air(array)
        notes += hounsfield_warnings(array, str(path), _FIX)
    return Volume(array, spacing, unit, str(path),
                  [f"{path.name}:{k}" for k in range(array.shape[0])], notes, grid)
