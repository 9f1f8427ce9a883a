"""Where a Volume's voxels lie in the patient: the input file's own voxel grid, its affine and
the reorientation between that grid and the Volume's display array.

Every reader puts its volume in one display orientation (:class:`~jcs.data.volume.Volume`);
results computed on that display array (lesion and lung masks, probability maps) are written
back on the *input's* grid with :meth:`Grid.to_grid`, so that a NIfTI file written with
``Grid.affine`` overlays the scan in 3D Slicer or ITK-SNAP with no manual step.

Conventions are nibabel's: ``affine`` maps a voxel index (i, j, k) of the grid to RAS+ mm
(+x towards the patient's left is *negative*: x to the Right, y Anterior, z Superior);
``ornt`` is a nibabel orientation array (:mod:`nibabel.orientations`) taking the grid's axes to
the display array's. DICOM geometry (LPS) is turned into RAS with :data:`RAS_FROM_LPS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .geometry import display_transform
from .volume import require

#: 4×4 that turns DICOM patient coordinates (LPS) into RAS+ (and back: it is its own inverse).
RAS_FROM_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass
class Grid:
    """The input's voxel grid of a :class:`~jcs.data.volume.Volume`.

    ``affine``: float64 4×4, grid voxel (i, j, k) → RAS+ mm. ``shape``: (I, J, K) voxels of the
    grid. ``ornt``: nibabel orientation (3×2) with
    ``nibabel.orientations.apply_orientation(grid_array, ornt) == volume.array`` (the slices
    present; see ``planes``). ``basis``: where the affine comes from: ``"nifti"`` (the file's
    affine), ``"nrrd"`` (space origin and directions), ``"dicom"`` (ImagePositionPatient,
    ImageOrientationPatient, PixelSpacing of a single-frame series), ``"dicom-multiframe"`` (the
    frames' positions, via highdicom) or ``"assumed"`` (no geometry in the input: display axes,
    the spacing where known else 1 mm). ``planes``: int array, for each slice the volume holds,
    its index k on the grid, where the input misses slices (a DICOM series with gaps: the grid
    keeps the regular step and the gaps stay empty); None when the volume holds every grid
    slice. ``slice_files``: a single-frame DICOM series' files, one per slice present, in grid
    order (what a DICOM SEG references); None otherwise. ``notes``: where the affine is only
    an approximation (e.g. non-uniform slice steps), as sentences for the report.
    ``xform_codes``: a NIfTI input's (qform_code, sform_code), kept in the files written.
    """

    affine: np.ndarray
    shape: tuple[int, int, int]
    ornt: np.ndarray
    basis: str
    planes: np.ndarray | None = None
    slice_files: list[str] | None = None
    notes: list[str] = field(default_factory=list)
    xform_codes: tuple[int, int] | None = None

    @property
    def present_shape(self) -> tuple[int, int, int]:
        """(I, J, K') of the slices the volume holds (K' = len(planes) where slices are missing)."""
        if self.planes is None:
            return self.shape
        return self.shape[0], self.shape[1], len(self.planes)

    def to_grid(self, array: np.ndarray) -> np.ndarray:
        """A display-orientation array (S×H×W, any dtype, the Volume's shape) on the grid
        (I×J×K, same dtype, Fortran order; slices the input misses are 0). Raises ValueError
        on a shape that is not the Volume's."""
        orientations = require("nibabel", "writing results on the input's grid").orientations
        back = inverse_ornt(self.ornt)
        expected = tuple(int(n) for n in orientations.apply_orientation(
            np.empty(self.present_shape, dtype=bool), self.ornt).shape)
        if tuple(array.shape) != expected:
            raise ValueError(f"array of shape {tuple(array.shape)} is not on this volume's display "
                             f"grid {expected}")
        # Fortran order: what NIfTI stores (i fastest), and for an axial input the display
        # array's own memory order, so the copy is cheap and nibabel writes it as it is
        compact = np.asfortranarray(orientations.apply_orientation(array, back))
        if self.planes is None:
            return compact
        full = np.zeros(self.shape, dtype=array.dtype, order="F")
        full[:, :, self.planes] = compact
        return full

    def to_display(self, array: np.ndarray) -> np.ndarray:
        """A grid array (I×J×K', the slices present) in the display orientation (S×H×W)."""
        orientations = require("nibabel", "reorienting a volume").orientations
        return np.ascontiguousarray(orientations.apply_orientation(array, self.ornt))


def inverse_ornt(ornt: np.ndarray) -> np.ndarray:
    """The nibabel orientation that undoes ``ornt`` (input axis g went to axis ``ornt[g, 0]``,
    flipped by ``ornt[g, 1]``; the inverse takes that axis back to g with the same flip)."""
    out = np.zeros((3, 2))
    for axis, (target, flip) in enumerate(np.asarray(ornt)):
        out[int(target)] = (axis, flip)
    return out


def grid_from_lps(affine_lps: np.ndarray, shape, basis: str, **options) -> Grid:
    """A :class:`Grid` from an affine in DICOM patient coordinates (voxel → LPS mm): the
    reorientation to the display is :func:`jcs.data.geometry.display_transform` of the affine's
    axis directions, as the readers reorient."""
    affine_lps = np.asarray(affine_lps, dtype=np.float64)
    ornt = display_transform(affine_lps[:3, :3].T)
    return Grid(RAS_FROM_LPS @ affine_lps, tuple(int(n) for n in shape), ornt, basis, **options)


def assumed_grid(display_shape, spacing) -> Grid:
    """The grid of a volume whose input gives no geometry (PNG slices, an in-memory Volume): the
    display array itself (slices towards the feet, rows towards posterior, columns towards the
    patient's left), ``spacing`` (z, y, x) mm or 1 mm, origin 0."""
    z, y, x = spacing if spacing else (1.0, 1.0, 1.0)
    lps = np.zeros((4, 4))
    lps[:3, 0] = (0.0, 0.0, -z)
    lps[:3, 1] = (0.0, y, 0.0)
    lps[:3, 2] = (x, 0.0, 0.0)
    lps[3, 3] = 1.0
    grid = grid_from_lps(lps, display_shape, "assumed")
    note = ("the input gives no position in the patient: the masks are written in the display "
            "orientation (slice 0 superior, row 0 anterior, column 0 the patient's right) "
            + ("with the volume's spacing" if spacing else "with 1 mm voxels (no spacing known)")
            + " and origin 0, so they overlay the volume only in that frame")
    grid.notes.append(note)
    return grid
