"""Inputs the reader tests build for each kind of real-world CT file: DICOM series from pydicom's
``CT_small.dcm`` (128×128, 0.661468 mm pixels, stored = HU + 1024), in any patient position,
with markers that tell the order a reader returns, and their NIfTI / NRRD conversions.

Every volume starts as a *display* volume (the orientation of ``jcs.data.Volume``: slice 0
superior, row 0 anterior, column 0 the patient's right); the builders store it the way a scanner
or a converter would, so a correct reader gives that display volume back exactly.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nibabel
import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

CT_SMALL = get_testdata_file("CT_small.dcm")
PIXEL_MM = 0.661468
SIZE = 128
INTERCEPT = -1024.0
ORIGIN = (-42.3, -42.3)  # LPS x, y of display pixel (0, 0)

#: Patient position -> (ImageOrientationPatient, display slice -> stored pixel order, where the
#: stored pixel (0, 0) lies: 0 = at display column / row 0, 1 = at the last one).
POSITIONS = {
    "HFS": ((1, 0, 0, 0, 1, 0), lambda s: s, (0, 0)),
    "HFP": ((-1, 0, 0, 0, -1, 0), lambda s: s[::-1, ::-1], (1, 1)),
    "FFS": ((-1, 0, 0, 0, 1, 0), lambda s: s[:, ::-1], (1, 0)),
    "FFP": ((1, 0, 0, 0, -1, 0), lambda s: s[::-1, :], (0, 1)),
}


def base_dataset():
    return pydicom.dcmread(CT_SMALL)


def display_volume(n: int) -> np.ndarray:
    """float32 n×128×128 HU: CT_small's slice (air about -1000, bone up to 1167) with the k-th
    slice's top-left 8×8 block at 100·(k+1) HU (the markers of shared/realworld) and a
    bottom-right 4×4 block at -1000 - k HU (an in-plane orientation check)."""
    base = base_dataset()
    hu = base.pixel_array.astype(np.float32) + INTERCEPT
    volume = np.repeat(hu[None], n, axis=0)
    for k in range(n):
        volume[k, :8, :8] = 100.0 * (k + 1)
        volume[k, -4:, -4:] = -1000.0 - k
    return volume


def markers(volume: np.ndarray) -> list[float]:
    return [float(v) for v in volume[:, :8, :8].mean(axis=(1, 2))]


def series_datasets(display: np.ndarray, position: str = "HFS", z0: float = -40.0,
                    dz: float = 5.0, series_uid: str | None = None) -> list:
    """One pydicom data set per display slice (superior first), stored as ``position`` would be,
    with slice k at z = z0 - k·dz, InstanceNumber k + 1, RescaleIntercept -1024."""
    iop, to_file, corner = POSITIONS[position]
    series_uid = series_uid or generate_uid()
    base = base_dataset()
    datasets = []
    for k, plane in enumerate(display):
        ds = copy.deepcopy(base)
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesInstanceUID = series_uid
        ds.PatientPosition = position
        z = z0 - k * dz
        ds.ImagePositionPatient = [ORIGIN[0] + corner[0] * (SIZE - 1) * PIXEL_MM,
                                   ORIGIN[1] + corner[1] * (SIZE - 1) * PIXEL_MM, z]
        ds.ImageOrientationPatient = list(iop)
        ds.SliceLocation = z
        ds.InstanceNumber = k + 1
        ds.SliceThickness = dz
        ds.SpacingBetweenSlices = dz
        stored = np.rint(to_file(plane) - INTERCEPT).astype(np.int16)
        ds.PixelData = np.ascontiguousarray(stored).tobytes()
        datasets.append(ds)
    return datasets


def write(datasets, folder: Path, names=None) -> list[Path]:
    """Save data sets into ``folder`` as ``IM0001.dcm``, ... (or ``names``)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, ds in enumerate(datasets):
        path = folder / (names[k] if names else f"IM{k + 1:04d}.dcm")
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def write_series(folder: Path, n: int = 5, position: str = "HFS", **options) -> np.ndarray:
    """Write an n-slice series into ``folder``; returns its display volume."""
    display = display_volume(n)
    write(series_datasets(display, position, **options), folder)
    return display


def nifti_conversion(datasets, path: Path) -> None:
    """What a DICOM-to-NIfTI converter writes for a single-frame series (dcm2niix's layout): the
    stored pixel order of each file (columns i, rows j, files k in the order given) with the
    affine of ImageOrientationPatient / ImagePositionPatient turned into RAS, int16 with
    scl_slope 1 and scl_inter the RescaleIntercept."""
    first, second = datasets[0], datasets[1]
    row = np.array([float(v) for v in first.ImageOrientationPatient[:3]])
    col = np.array([float(v) for v in first.ImageOrientationPatient[3:]])
    step = np.array([float(v) for v in second.ImagePositionPatient]) - \
        np.array([float(v) for v in first.ImagePositionPatient])
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2] = row * PIXEL_MM, col * PIXEL_MM, step
    lps[:3, 3] = [float(v) for v in first.ImagePositionPatient]
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    data = np.stack([ds.pixel_array.T for ds in datasets], axis=2)  # (columns, rows, files)
    image = nibabel.Nifti1Image(data.astype(np.int16), ras)
    image.header.set_slope_inter(1.0, INTERCEPT)
    image.set_qform(ras, code=1)
    image.set_sform(ras, code=1)
    nibabel.save(image, path)
