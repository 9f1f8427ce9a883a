"""Readers for CT slices, masks and volumes (PNG/JPEG, DICOM series, NIfTI, folders of slices).

All readers raise a :class:`~jcs.data.errors.DataError` subclass that names the file and says what
to do. nibabel and pydicom are imported only when a NIfTI / DICOM file is read.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .errors import (CorruptFileError, DataError, DatasetNotFoundError, EmptyFolderError,
                     MissingDependencyError, MixedSeriesError, ShapeMismatchError)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_GRAY_CONVERTIBLE = {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr"}
_REFETCH = "Replace the file (re-download it with `jcs data fetch NAME`, then `jcs data verify NAME`)."


@dataclass
class Volume:
    """A CT volume: ``array`` float32 S×H×W (slice 0 = most superior for DICOM/NIfTI), ``spacing``
    (z, y, x) in mm or None, ``unit`` "HU" or "uint8" (8-bit display values), ``source`` path and
    one ``slice_ids`` entry per slice."""

    array: np.ndarray
    spacing: tuple[float, float, float] | None
    unit: Literal["HU", "uint8"]
    source: str
    slice_ids: list[str]

    def __len__(self) -> int:
        return self.array.shape[0]


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
                        "convert it to 8-bit first (for HU data use jcs.data.window).")
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
    """Read a CT volume: a DICOM series folder, a NIfTI file (.nii/.nii.gz) or a folder of slices."""
    path = Path(path)
    if not path.exists():
        raise DatasetNotFoundError(f"{path}: no such file or folder.")
    if path.is_file():
        if path.name.lower().endswith((".nii", ".nii.gz")):
            return read_nifti(path)
        if _is_dicom(path):
            return read_dicom_series([path], source=path)
        raise DataError(f"{path}: read_volume expects a DICOM folder, a NIfTI file or a folder of "
                        "slices; use read_slice for a single image.")
    files = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
    dicoms = [p for p in files if _is_dicom(p)]
    if dicoms:
        return read_dicom_series(dicoms, source=path)
    if any(p.suffix.lower() in IMAGE_SUFFIXES for p in files):
        return read_slice_folder(path)
    raise EmptyFolderError(f"{path} holds no DICOM files and no PNG/JPEG slices; point read_volume "
                           "at the folder of one series.")


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


def _require(module: str, purpose: str):
    try:
        return __import__(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module} is needed for {purpose}; install it with `pip install 'jcs[io]'` "
            "(nibabel, pydicom, pylibjpeg, pylibjpeg-libjpeg).") from exc


def read_nifti(path: str | Path) -> Volume:
    """Read a NIfTI volume in radiological display orientation.

    The image is reoriented to the closest RAS+ axes and flipped so that slice 0 is the most
    superior, row 0 anterior and column 0 the patient's right (as a DICOM axial display).
    Values are scaled by the header's slope/intercept; unit "uint8" for 8-bit files, else "HU".
    """
    nibabel = _require("nibabel", f"reading the NIfTI file {path}")
    path = Path(path)
    try:
        image = nibabel.load(str(path))
        canonical = nibabel.as_closest_canonical(image)
        data = canonical.get_fdata(dtype=np.float32)
    except Exception as exc:  # nibabel raises many types (ImageFileError, EOFError, zlib.error)
        raise CorruptFileError(f"{path}: cannot read NIfTI ({exc}). {_REFETCH}") from exc
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ShapeMismatchError(f"{path}: expected a 3-D volume, got shape {data.shape}.")
    array = np.ascontiguousarray(data.transpose(2, 1, 0)[::-1, ::-1, ::-1])
    zoom_x, zoom_y, zoom_z = (float(v) for v in canonical.header.get_zooms()[:3])
    unit = "uint8" if image.get_data_dtype() == np.uint8 else "HU"
    return Volume(array, (zoom_z, zoom_y, zoom_x), unit, str(path),
                  [f"{path.name}:{k}" for k in range(array.shape[0])])


def _is_dicom(path: Path) -> bool:
    if path.suffix.lower() == ".dcm":
        return True
    if path.suffix:
        return False
    with open(path, "rb") as handle:
        return handle.read(132)[128:] == b"DICM"


def _dicom_position(header) -> float | None:
    """Superior-inferior coordinate of a slice (LPS z, larger = more superior)."""
    if "ImagePositionPatient" in header:
        return float(header.ImagePositionPatient[2])
    if "SliceLocation" in header:
        return float(header.SliceLocation)
    return None


def read_dicom_series(files: list[Path], source: str | Path) -> Volume:
    """Read one DICOM series into HU (``pixel * RescaleSlope + RescaleIntercept``).

    Slices are ordered superior -> inferior (ImagePositionPatient z, else SliceLocation,
    descending; else InstanceNumber ascending), the order of the COVID-CT-MD slice labels.
    Compressed transfer syntaxes (e.g. JPEG lossless) need pylibjpeg + pylibjpeg-libjpeg or GDCM.
    """
    pydicom = _require("pydicom", f"reading the DICOM series in {source}")
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import get_decoder

    if not files:
        raise EmptyFolderError(f"{source} holds no DICOM files.")
    headers = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Invalid value for VR", category=UserWarning)
        warnings.filterwarnings("ignore", message="End of file reached", category=UserWarning)
        for path in sorted(files, key=lambda p: natural_key(p.name)):
            try:
                headers.append((path, pydicom.dcmread(path, stop_before_pixels=True)))
            except (InvalidDicomError, OSError, ValueError, EOFError, KeyError) as exc:
                raise CorruptFileError(f"{path}: not a readable DICOM file ({exc}). "
                                       "Remove it from the folder or replace it.") from exc
        series: dict[str, list[Path]] = {}
        for path, header in headers:
            series.setdefault(str(header.get("SeriesInstanceUID", "<none>")), []).append(path)
        if len(series) > 1:
            listing = "; ".join(f"{uid} ({len(paths)} files, e.g. {paths[0].name})"
                                for uid, paths in series.items())
            raise MixedSeriesError(f"{source} mixes {len(series)} DICOM series: {listing}. Put each "
                                   "series (SeriesInstanceUID) in its own folder and read them "
                                   "separately.")
        positions = [_dicom_position(h) for _, h in headers]
        if all(p is not None for p in positions) and len(set(positions)) == len(positions):
            order = sorted(range(len(headers)), key=lambda i: -positions[i])
        else:
            order = sorted(range(len(headers)), key=lambda i: int(headers[i][1].get("InstanceNumber", i)))
        headers = [headers[i] for i in order]
        slices = []
        for path, header in headers:
            syntax = header.file_meta.get("TransferSyntaxUID")
            try:
                available = syntax is None or get_decoder(syntax).is_available
            except NotImplementedError as exc:
                raise DataError(f"{path}: pydicom cannot decode transfer syntax {syntax} ({exc}); "
                                "convert the series to uncompressed DICOM (e.g. gdcmconv --raw).") from exc
            if not available:
                raise MissingDependencyError(
                    f"{path}: pixel data is compressed ({syntax.name}); install pylibjpeg and "
                    "pylibjpeg-libjpeg (`pip install 'jcs[io]'`) or GDCM to decode it.")
            try:
                pixels = pydicom.dcmread(path).pixel_array
            except Exception as exc:  # decoders raise many types on truncated/corrupt pixel data
                raise CorruptFileError(f"{path}: cannot decode DICOM pixel data ({exc}). "
                                       f"{_REFETCH}") from exc
            if pixels.ndim != 2:
                raise ShapeMismatchError(f"{path}: expected one 2-D slice, got shape {pixels.shape}.")
            slope = float(header.get("RescaleSlope", 1.0))
            intercept = float(header.get("RescaleIntercept", 0.0))
            slices.append(pixels.astype(np.float32) * slope + intercept)
    for (path, _), s in zip(headers, slices):
        if s.shape != slices[0].shape:
            raise ShapeMismatchError(f"{path}: slice size {s.shape} differs from "
                                     f"{headers[0][0].name} {slices[0].shape} in the same series.")
    return Volume(np.stack(slices), _dicom_spacing([h for _, h in headers], positions, order),
                  "HU", str(source), [p.name for p, _ in headers])


def _dicom_spacing(headers, positions, order) -> tuple[float, float, float] | None:
    first = headers[0]
    if "PixelSpacing" not in first:
        return None
    y, x = (float(v) for v in first.PixelSpacing)
    ordered = [positions[i] for i in order]
    if len(ordered) > 1 and all(p is not None for p in ordered):
        z = float(np.median(np.abs(np.diff(ordered))))
    elif "SliceThickness" in first:
        z = float(first.SliceThickness)
    else:
        return None
    return z, y, x
