"""Volume geometry shared by the DICOM and NRRD readers: put an array in the display orientation
of :class:`~jcs.data.volume.Volume`, and check the spacing of a stack of slices (gaps,
non-uniform steps, gantry tilt) so that no spacing is reported that the scan does not have.

Directions are in the DICOM patient system LPS (+x towards the patient's left, +y posterior, +z
superior). Reorientation uses nibabel's orientation tools: the closest axes, flips and
transposes only, never a resampling.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .volume import require

#: Display orientation of every Volume, as LPS axis codes of array axes 0, 1, 2: slices go to
#: Inferior (slice 0 superior), rows to Posterior (row 0 anterior), columns to the patient's Left
#: (column 0 the patient's right).
DISPLAY_AXES = ("I", "P", "L")
_LPS_LABELS = (("R", "L"), ("A", "P"), ("I", "S"))

#: Two steps between slices are the same step when they differ by less than this fraction of
#: the step plus :data:`STEP_ATOL_MM` (positions are stored as decimal strings).
STEP_RTOL = 0.02
STEP_ATOL_MM = 0.01
#: Slices whose offsets leave the slice normal by more than this are sheared (gantry tilt).
TILT_DEGREES = 0.5


def to_display(array: np.ndarray, directions: np.ndarray,
               spacing: tuple[float, float, float] | None) -> tuple[np.ndarray, tuple | None, bool]:
    """Reorient a 3-D array to :data:`DISPLAY_AXES`.

    ``array``: 3-D, any dtype. ``directions``: 3×3, row ``i`` the LPS direction (any length) in
    which array axis ``i`` runs. ``spacing``: mm per array axis, or None. Returns the reoriented
    array (a view where possible), the spacing in the new axis order, and whether axis 0 is still
    the input's axis 0 (slices stay slices, possibly reversed). Oblique axes go to the closest
    patient axis (nibabel ``io_orientation``)."""
    orientations = require("nibabel", "reorienting a volume").orientations
    transform = display_transform(directions)
    out = orientations.apply_orientation(array, transform)
    source_axis = [int(np.flatnonzero(transform[:, 0] == j)[0]) for j in range(3)]
    new_spacing = None if spacing is None else tuple(float(spacing[i]) for i in source_axis)
    return out, new_spacing, source_axis[0] == 0


def display_transform(directions: np.ndarray) -> np.ndarray:
    """The nibabel orientation (3×2: target axis, flip per input axis) that :func:`to_display`
    applies to an array whose axis ``i`` runs along the LPS direction ``directions[i]``."""
    orientations = require("nibabel", "reorienting a volume").orientations
    affine = np.eye(4)
    affine[:3, :3] = np.asarray(directions, dtype=np.float64).T
    start = orientations.io_orientation(affine)
    target = orientations.axcodes2ornt(DISPLAY_AXES, labels=_LPS_LABELS)
    return orientations.ornt_transform(start, target)


@dataclass
class StackSpacing:
    """What :func:`stack_spacing` found: ``spacing`` in mm between slice planes (None where the
    steps differ and no single spacing exists), ``warnings`` and ``tilt_degrees``."""

    spacing: float | None
    warnings: list[str] = field(default_factory=list)
    tilt_degrees: float = 0.0


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= STEP_RTOL * min(abs(a), abs(b)) + STEP_ATOL_MM


def stack_spacing(positions: np.ndarray, normal: np.ndarray, names: list[str],
                  source: str) -> StackSpacing:
    """Spacing of a stack of parallel slices, sorted along ``normal``.

    ``positions``: S×3 LPS positions (mm) of the slices' first voxel (ImagePositionPatient) in
    stack order, S ≥ 2, no two equal. ``normal``: unit slice normal. ``names``: one label per slice
    for the messages. Steps are measured along the normal. All steps equal (within
    :data:`STEP_RTOL`): that step. Every step a whole multiple of the smallest, which is at least
    half of the steps: missing slices; the smallest step, with a warning naming each gap.
    Otherwise: None and a warning (no single spacing). Offsets that leave the normal by more than
    :data:`TILT_DEGREES` are a gantry tilt: a warning (the spacing is still the distance between
    the planes)."""
    along = positions @ normal
    steps = np.diff(along)
    result = StackSpacing(None)
    offsets = positions[-1] - positions[0]
    sideways = float(np.linalg.norm(offsets - (offsets @ normal) * normal))
    result.tilt_degrees = float(np.degrees(np.arctan2(sideways, abs(offsets @ normal))))
    if result.tilt_degrees > TILT_DEGREES:
        result.warnings.append(
            f"{source}: gantry tilt: the slices are sheared by {result.tilt_degrees:.1f} degrees "
            f"(each slice is shifted {sideways / (len(steps) or 1):.2f} mm sideways from the "
            "previous one, off the slice normal). They are stacked as acquired, not resampled to "
            "an upright grid, so the anatomy leans across the volume; the slice spacing is the "
            "distance between the planes. For exact geometry, convert the series with a tool that "
            "corrects gantry tilt (e.g. dcm2niix) and read the NIfTI file.")
    smallest = float(steps.min())
    base = float(np.median([s for s in steps if _same(s, smallest)]))
    if all(_same(s, base) for s in steps):
        result.spacing = float(np.mean(steps))
        return result
    multiples = np.rint(steps / base)
    regular = sum(1 for s in steps if _same(s, base))
    if 2 * regular >= len(steps) and all(_same(s, k * base) for s, k in zip(steps, multiples)):
        gaps = [(i, s, int(k) - 1) for i, (s, k) in enumerate(zip(steps, multiples)) if k > 1]
        missing = sum(count for _, _, count in gaps)
        where = "; ".join(f"{s:g} mm between slice {i} ({names[i]}) and slice {i + 1} "
                          f"({names[i + 1]})" for i, s, _ in gaps[:5])
        more = f"; and {len(gaps) - 5} more gaps" if len(gaps) > 5 else ""
        result.spacing = base
        result.warnings.append(
            f"{source}: {missing} slice(s) missing: the series steps {base:g} mm but jumps {where}"
            f"{more}. The volume holds the {len(along)} slices that are there, {base:g} mm apart "
            "with nothing in the gaps, so lesion and lung volumes leave the gaps out. Check that "
            "the folder holds the whole series (export or copy it again).")
        return result
    distinct = sorted({round(float(s), 3) for s in steps})
    listed = ", ".join(f"{s:g}" for s in distinct[:6]) + (" ..." if len(distinct) > 6 else "")
    result.warnings.append(
        f"{source}: the slice spacing is not uniform (steps of {listed} mm between slices): no "
        "single spacing exists, so the volume has none: lesion volumes are not given in ml and "
        "the patient threshold is scaled by the slice count. Resample the series to a uniform "
        "spacing (e.g. with 3D Slicer or SimpleITK) to get volumes in ml.")
    return result
