"""The :class:`Volume` every volume reader returns, and the Hounsfield-unit checks they share:
pixel padding becomes air, and values that do not look like HU are reported.

Only numpy is imported here; the readers import nibabel / pydicom / pynrrd / highdicom when a
file of that kind is read (:func:`require`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from .errors import MissingDependencyError

if TYPE_CHECKING:
    from .grid import Grid

#: HU given to pixel padding and to anything below it: air (CT scanners' lowest value).
AIR_HU = -1024.0
#: A chest CT in HU has air (about -1000 HU) in its darkest percent of voxels; a darkest percent
#: above this is not HU (raw stored values, a missing RescaleIntercept / scl_inter).
RAW_VALUES_ABOVE_HU = -500.0


@dataclass
class Volume:
    """A CT volume.

    ``array``: float32 S×H×W in one orientation whatever the input: slice 0 the most superior,
    row 0 the most anterior, column 0 the patient's right (a radiological axial display; oblique
    scans are put on their closest axes, not resampled). ``spacing``: (z, y, x) in mm, or None
    where the input gives none or no single one (``warnings`` says why). ``unit``: "HU", or
    "uint8" for 8-bit display values (lung-windowed PNG slices, 8-bit NIfTI/NRRD without a
    scaling). ``source``: the path read. ``slice_ids``: one per slice (DICOM file names where
    slices are files). ``warnings``: every non-fatal finding of the reader (dropped duplicates
    or scout images, gaps, gantry tilt, values that do not look like HU, pixel padding, ...), each
    a sentence saying what was found, what the reader did and how to fix the input. ``grid``:
    the input's own voxel grid and affine (:class:`jcs.data.grid.Grid`), to write results that
    overlay the scan; None where the input gives no position in the patient (PNG slices).
    """

    array: np.ndarray
    spacing: tuple[float, float, float] | None
    unit: Literal["HU", "uint8"]
    source: str
    slice_ids: list[str]
    warnings: list[str] = field(default_factory=list)
    grid: Grid | None = None

    def __len__(self) -> int:
        return self.array.shape[0]


def require(module: str, purpose: str):
    """Import an optional reader dependency, or raise :class:`MissingDependencyError` saying how
    to install it."""
    try:
        return __import__(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module} is needed for {purpose}; install it with `pip install 'jcs[io]'` "
            "(nibabel, pydicom, pylibjpeg, pylibjpeg-libjpeg, pynrrd, highdicom).") from exc


def padding_to_air(hu: np.ndarray, padding: np.ndarray | None = None,
                   what: str = "") -> list[str]:
    """Set pixel padding to air, in place, and say so.

    ``hu``: float32 array in HU. ``padding``: bool array of the same shape marking the voxels the
    file declares as padding (DICOM PixelPaddingValue), or None. Those voxels, and every voxel
    below :data:`AIR_HU` (the -2000 / -3024 fill outside the scan circle: no tissue is below
    air), become :data:`AIR_HU`. Returns one warning when any voxel changed, else none; ``what``
    names the padding value in it."""
    changed = hu < AIR_HU
    if padding is not None:
        changed |= padding & (hu != AIR_HU)
    count = int(np.count_nonzero(changed))
    if not count:
        return []
    lowest = float(hu[changed].min())
    hu[changed] = AIR_HU
    return [f"{count} voxels ({100.0 * count / hu.size:.1f}%) were pixel padding "
            f"({what or f'values down to {lowest:g} HU'}, the fill outside the scan circle) and "
            f"were set to air ({AIR_HU:g} HU) so that they are not read as tissue."]


def raw_values_finding(hu: np.ndarray) -> str | None:
    """What is wrong when an array read as HU does not look like HU (its darkest percent of voxels,
    on every 4th row and column, above :data:`RAW_VALUES_ABOVE_HU`: no air near -1000 HU, as raw
    stored values that miss their intercept), as a clause for a warning; None when it looks like
    HU."""
    if not hu.size:
        return None
    sample = hu[..., ::4, ::4] if hu.ndim == 3 and min(hu.shape[1:]) >= 64 else hu
    darkest = float(np.percentile(sample, 1))
    if darkest <= RAW_VALUES_ABOVE_HU:
        return None
    return (f"the values do not look like Hounsfield units: the darkest 1% of voxels is at "
            f"{darkest:g} instead of about -1000 (air), as raw stored values that miss their "
            "intercept (usually -1024). The lung mask and the lung window assume HU, so results on "
            "this volume are unreliable.")


def hounsfield_warnings(hu: np.ndarray, source: str, fix: str) -> list[str]:
    """``[f"{source}: {finding} {fix}"]`` when :func:`raw_values_finding` finds the values are not
    HU, else ``[]``; ``fix`` says how to correct the file."""
    finding = raw_values_finding(hu)
    return [] if finding is None else [f"{source}: {finding} {fix}"]
