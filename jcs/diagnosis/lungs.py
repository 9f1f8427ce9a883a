"""Lung mask and Hounsfield units: a threshold segmentation of the lungs (air below −400 HU not
connected to the air outside the body, the largest 3-D components, holes filled per slice), and
8-bit lung-window volumes mapped back to HU (WL −600 / WW 1500, :func:`jcs.data.window`)."""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from jcs.data import Volume, volume_to_uint8

LUNG_WINDOW = (-600.0, 1500.0)  # level, width of the 8-bit volumes (jcs.data.window)


def _uint8_to_hu(values: np.ndarray) -> np.ndarray:
    """float32 HU of 8-bit lung-window values: ``v/255·1500 − 1350`` (see :func:`to_hu`)."""
    level, width = LUNG_WINDOW
    return np.asarray(values).astype(np.float32) / 255.0 * width + (level - width / 2.0)


def to_hu(volume: Volume) -> np.ndarray:
    """HU array of a volume; 8-bit volumes are mapped back through the lung window
    (``v/255·1500 − 1350``), an approximation clipped to [−1350, 150] HU."""
    if volume.unit == "HU":
        return volume.array.astype(np.float32, copy=False)
    return _uint8_to_hu(volume.array)


def air_mask(volume: Volume, threshold: float = -400.0, gray: Optional[np.ndarray] = None) -> np.ndarray:
    """bool S×H×W: the voxels below ``threshold`` HU. HU volumes are compared directly; 8-bit
    volumes through a 256-entry table of :func:`to_hu` indexed by their uint8 values (``gray``,
    default :func:`jcs.data.volume_to_uint8` of the volume): the same mask as
    ``to_hu(volume) < threshold`` without a float copy of the volume."""
    if volume.unit == "HU":
        return volume.array < threshold
    table = _uint8_to_hu(np.arange(256)) < threshold
    return table[volume_to_uint8(volume) if gray is None else gray]


def _in_plane_structure() -> np.ndarray:
    """3×3×3 connectivity that links 4-neighbours within a slice and nothing across slices."""
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    return structure


def _touching_border(mask: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` (S×H×W) whose 2-D component, within its slice, touches the slice's border."""
    from scipy import ndimage  # lazy: scipy is needed by the lung mask only

    labels, count = ndimage.label(mask, structure=_in_plane_structure())
    edge = np.zeros(count + 1, dtype=bool)
    for border in (labels[:, 0], labels[:, -1], labels[:, :, 0], labels[:, :, -1]):
        edge[border.ravel()] = True
    edge[0] = False
    return edge[labels]


def _bounding_box(mask: np.ndarray) -> Tuple[slice, ...]:
    """The smallest box (one slice per axis) holding every True voxel of a non-empty mask."""
    box = []
    for axis in range(mask.ndim):
        hits = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(int(hits[0]), int(hits[-1]) + 1))
    return tuple(box)


def _component_sizes(labels: np.ndarray, count: int, chunk: int = 8) -> np.ndarray:
    """Voxels per label 1..count, counted ``chunk`` slices at a time (``np.bincount`` holds the
    GIL: small chunks let :meth:`DiagnosisPipeline.run`'s other thread work meanwhile)."""
    sizes = np.zeros(count + 1, dtype=np.int64)
    for start in range(0, labels.shape[0], chunk):
        sizes += np.bincount(labels[start:start + chunk].ravel(), minlength=count + 1)
    return sizes[1:]


def lungs_from_air(air: np.ndarray, keep: int = 2, min_fraction: float = 0.1) -> np.ndarray:
    """Threshold lung segmentation from the air mask of an S×H×W volume (bool S×H×W).

    1. per slice, drop the air components touching the image border (outside the body); 2. keep
    the ``keep`` largest 3-D components of the rest that have at least ``min_fraction`` of the
    largest one's voxels (both lungs, or one component when the trachea joins them; bowel gas and
    small pockets are dropped); 3. fill holes per slice (vessels, and lesions surrounded by lung:
    background not connected to the slice border). Lesions touching the chest wall stay outside
    the mask, hence :func:`diagnose` reports lesion / (lung ∪ lesion).

    Steps 2 and 3 work inside the bounding box of the air left by step 1, which gives the same
    mask as on the whole volume: outside a rectangle holding every lung pixel, the background
    is connected to the slice border, so a background pixel on the box's edge is too."""
    from scipy import ndimage

    inside = air & ~_touching_border(air)
    lungs = np.zeros_like(inside)
    if not inside.any():
        return lungs
    box = _bounding_box(inside)
    labels, count = ndimage.label(inside[box])
    sizes = _component_sizes(labels, count)
    order = np.argsort(sizes)[::-1][:keep]
    kept = np.zeros(count + 1, dtype=bool)
    kept[[index + 1 for index in order if sizes[index] >= min_fraction * sizes[order[0]]]] = True
    lungs[box] = ~_touching_border(~kept[labels])
    return lungs


def lung_mask(hu: np.ndarray, threshold: float = -400.0, keep: int = 2,
              min_fraction: float = 0.1) -> np.ndarray:
    """Threshold lung segmentation of an S×H×W HU volume (bool S×H×W): the air below
    ``threshold`` HU given to :func:`lungs_from_air` (see there for the steps)."""
    return lungs_from_air(np.asarray(hu) < threshold, keep, min_fraction)
