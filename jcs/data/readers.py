"""Readers for CT slices, masks and volumes: PNG/JPEG slices and masks here, and
:func:`read_volume`, which finds what a path holds and hands it to the volume reader of its kind
(:mod:`jcs.data.dicom`, :mod:`jcs.data.nifti`, :mod:`jcs.data.nrrd`, or a folder of slices).

All readers raise a :class:`~jcs.data.errors.DataError` subclass that names the file and says what
to do. nibabel, pydicom, pynrrd and highdicom are imported only when such a file is read.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .dicom import read_dicom_series, read_multiframe
from .dicom_files import is_dicom_file, is_dicomdir, read_dicomdir, sort_folder, subfolders_with_dicom
from .errors import (CorruptFileError, DataError, DatasetNotFoundError, EmptyFolderError,
                     ShapeMismatchError)
from .nifti import read_nifti
from .nrrd import NRRD_SUFFIXES, read_nrrd
from .volume import Volume

__all__ = ["IMAGE_SUFFIXES", "Volume", "natural_key", "read_dicom_series", "read_label_map",
           "read_mask", "read_multiframe", "read_nifti", "read_nrrd", "read_pair_list",
           "read_slice", "read_slice_folder", "read_volume", "spacing_from_meta",
           "volume_to_uint8", "window"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_GRAY_CONVERTIBLE = {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr"}
_REFETCH = "Replace the file (re-download it with `jcs data fetch NAME`, then `jcs data verify NAME`)."


def _open_image(path: str | Path) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{path}: no such file. Check the path or the dataset copy "
                                   "(`jcs data verify NAME`).")
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise CorruptFileError(f"{path}: cannot decode image ({exc}); the file is truncated or "
                               f"not an image. {_REFETCH}") from exc


def read_slice(path: str | Path) -> np.ndarray:
    """Read a PNG/JPEG slice as uint8 H×W grayscale (RGB, RGBA and palette images are converted)."""
    image = _open_image(path)
    if image.mode not in _GRAY_CONVERTIBLE:
        raise DataError(f"{path}: image mode {image.mode!r} (e.g. 16-bit) is not an 8-bit slice; "
                        "convert it to 8-bit first (for HU data, apply a lung window: level -600, "
                        "width 1500).")
    return np.array(image.convert("L"), dtype=np.uint8)


def read_label_map(path: str | Path) -> np.ndarray:
    """Read a label PNG as uint8 class indices (palette indices for mode P, values for mode L/1)."""
    image = _open_image(path)
    if image.mode not in {"1", "L", "P"}:
        raise DataError(f"{path}: a label map must be a 1-bit, 8-bit gray or palette image, got "
                        f"mode {image.mode!r}.")
    return np.array(image, dtype=np.uint8)


def read_mask(path: str | Path) -> np.ndarray:
    """Read a binary mask as uint8 {0, 1}.

    Palette/label masks ({0, 1} or class indices) become ``value > 0``; 8-bit masks whose maximum
    exceeds 127 ({0, 255}, possibly JPEG-noisy) become ``value > 127``.
    """
    image = _open_image(path)
    if image.mode not in {"1", "L", "P"}:
        if image.mode not in _GRAY_CONVERTIBLE:
            raise DataError(f"{path}: unsupported mask image mode {image.mode!r}; save masks as "
                            "8-bit gray or palette PNG.")
        image = image.convert("L")
    values = np.asarray(image, dtype=np.uint8)
    threshold = 127 if values.max(initial=0) > 127 else 0
    return (values > threshold).astype(np.uint8)


def window(array: np.ndarray, level: float = -600.0, width: float = 1500.0) -> np.ndarray:
    """Map HU to uint8 with a display window (default: lung window WL -600 / WW 1500).

    ``round(clip((hu - (level - width/2)) / width * 255, 0, 255))``, so -1350 HU -> 0 and
    150 HU -> 255 (the conversion used for the COVID-CT-MD PNG slices).
    """
    low = level - width / 2.0
    scaled = (_float32_tensor(array) - low).div_(width).mul_(255.0)
    return scaled.clamp_(0.0, 255.0).round_().to(torch.uint8).numpy()


def _float32_tensor(array: np.ndarray) -> torch.Tensor:
    """A float32 CPU tensor of ``array`` (sharing its memory where it can). The uint8
    conversions run as torch ops, on every CPU thread, in the same float32 steps as NumPy
    (round half to even), so the result is the NumPy one, bit for bit."""
    array = np.asarray(array, dtype=np.float32)
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def volume_to_uint8(volume: Volume, level: float = -600.0, width: float = 1500.0) -> np.ndarray:
    """uint8 S×H×W of a volume: HU volumes are windowed, uint8 volumes rounded and clipped to
    0..255."""
    if volume.unit == "HU":
        return window(volume.array, level, width)
    return _float32_tensor(volume.array).round().clamp_(0, 255).to(torch.uint8).numpy()


def read_pair_list(path: str | Path) -> list[tuple[str, str]]:
    """Read a COVID-CS style list: one ``<image relpath> <label relpath>`` per line (CRLF allowed)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{path}: split list not found. COVID-CS lists come with the "
                                   "annotation archive (see `jcs data fetch covid-cs`).")
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise CorruptFileError(f"{path}, line {number}: expected '<image> <label>', got {line!r}.")
        pairs.append((fields[0], fields[1]))
    if not pairs:
        raise EmptyFolderError(f"{path} lists no images; expected '<image> <label>' lines.")
    return pairs


def natural_key(name: str) -> list:
    """Sort key that orders embedded numbers numerically (``2.png`` before ``10.png``)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


# ---------------------------------------------------------------------------------------------
# Volumes


def read_volume(path: str | Path) -> Volume:
    """Read a CT volume from what ``path`` holds (see :class:`Volume` for the result).

    A file: NIfTI (``.nii``, ``.nii.gz``), NRRD (``.nrrd``, ``.nhdr``), a DICOMDIR (followed to
    its series), or a DICOM file recognised by its content (a multi-frame file is a whole
    volume). A folder: the DICOM files in it, whatever their names (one series; other files are
    left out with a warning), else the series its DICOMDIR lists, else its PNG/JPEG slices.
    Raises a :class:`DataError` subclass that names the path and says what to do.
    """
    path = Path(path)
    if not path.exists():
        raise DatasetNotFoundError(f"{path}: no such file or folder.")
    if path.is_file():
        name = path.name.lower()
        if name.endswith((".nii", ".nii.gz")):
            return read_nifti(path)
        if name.endswith(NRRD_SUFFIXES):
            return read_nrrd(path)
        if is_dicomdir(path):
            return read_dicomdir(path, read_dicom_series)
        if is_dicom_file(path):
            return read_dicom_series([path], source=path)
        raise DataError(f"{path}: not a CT volume: give a DICOM folder, a DICOM, NIfTI or NRRD file, "
                        "or a folder of PNG/JPEG slices (a single image is a slice, not a volume).")
    dicoms, dicomdirs, others = sort_folder(path)
    if dicoms:
        notes = []
        if others:
            notes.append(f"{path}: left out {len(others)} file(s) that are not DICOM "
                         f"({', '.join(p.name for p in others[:5])}"
                         f"{' ...' if len(others) > 5 else ''}).")
        return read_dicom_series(dicoms, source=path, notes=notes)
    if dicomdirs:
        return read_dicomdir(dicomdirs[0], read_dicom_series)
    if any(p.suffix.lower() in IMAGE_SUFFIXES for p in others):
        return read_slice_folder(path)
    subfolders = subfolders_with_dicom(path)
    hint = (f" Its sub-folders hold DICOM files ({', '.join(str(p) for p in subfolders)}): give "
            "the folder of one series." if subfolders else
            " Give the folder of one DICOM series, a NIfTI or NRRD file, or a folder of slices.")
    raise EmptyFolderError(f"{path} holds no DICOM files and no PNG/JPEG slices.{hint}")


def read_slice_folder(folder: str | Path) -> Volume:
    """Folder of 8-bit slices as a volume, sorted by name; spacing from ``meta.json`` if present."""
    folder = Path(folder)
    paths = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                   key=lambda p: natural_key(p.name))
    if not paths:
        raise EmptyFolderError(f"{folder} holds no PNG/JPEG slices.")
    slices = [read_slice(p) for p in paths]
    for p, s in zip(paths, slices):
        if s.shape != slices[0].shape:
            raise ShapeMismatchError(f"{p}: slice size {s.shape} differs from {paths[0].name} "
                                     f"{slices[0].shape}; all slices of a volume must match.")
    meta_path = folder / "meta.json"
    spacing = spacing_from_meta(meta_path) if meta_path.is_file() else None
    return Volume(np.stack(slices).astype(np.float32), spacing, "uint8", str(folder),
                  [p.stem for p in paths])


def spacing_from_meta(meta_path: str | Path) -> tuple[float, float, float] | None:
    """(z, y, x) spacing from a ``meta.json``: key ``spacing`` [z, y, x], or the COVID-CT-MD keys
    ``png_pixel_spacing_mm`` with ``slice_location`` (median step) or ``slice_thickness_mm``."""
    meta_path = Path(meta_path)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CorruptFileError(f"{meta_path}: not valid JSON ({exc}). Fix or delete it.") from exc
    if "spacing" in meta:
        z, y, x = (float(v) for v in meta["spacing"])
        return z, y, x
    if "png_pixel_spacing_mm" not in meta:
        return None
    y, x = (float(v) for v in meta["png_pixel_spacing_mm"])
    locations = meta.get("slice_location") or []
    if len(locations) > 1:
        z = float(np.median(np.abs(np.diff(np.asarray(locations, dtype=np.float64)))))
    elif meta.get("slice_thickness_mm") is not None:
        z = float(meta["slice_thickness_mm"])
    else:
        return None
    return z, y, x
