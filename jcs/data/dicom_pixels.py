"""DICOM pixel values to Hounsfield units: decode each file's pixel data (pydicom; compressed
transfer syntaxes need pylibjpeg or GDCM), apply its modality transform (RescaleSlope /
RescaleIntercept or Modality LUT), mark its pixel padding (PixelPaddingValue, up to
PixelPaddingRangeLimit), and word the warnings on units (a missing rescale, values that do not
look like HU).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import CorruptFileError, DataError, MissingDependencyError, ShapeMismatchError
from .volume import raw_values_finding

_REFETCH = "Replace the file (re-download it with `jcs data fetch NAME`, then `jcs data verify NAME`)."
RESCALE_FIX = ("If they are stored values, add the scanner's rescale to the files (for most CT "
               "scanners RescaleIntercept -1024 and RescaleSlope 1, e.g. with DCMTK: "
               "dcmodify -i \"(0028,1052)=-1024\" -i \"(0028,1053)=1\" FILES) and read the series "
               "again.")


def pixel_bytes(path: Path, pydicom) -> bytes:
    """The raw PixelData of a file (to compare files for exact duplicates)."""
    return bytes(pydicom.dcmread(path, force=True).get("PixelData", b""))


def _dataset_with_pixels(path: Path, pydicom):
    """The full data set, with a transfer syntax set from the encoding where the file has no file
    meta (files without preamble), so that pydicom can decode its pixels."""
    from pydicom import uid

    dataset = pydicom.dcmread(path, force=True)
    meta = getattr(dataset, "file_meta", None)
    if meta is None:
        meta = dataset.file_meta = pydicom.dataset.FileMetaDataset()
    if "TransferSyntaxUID" not in meta:
        implicit, little = dataset.original_encoding
        meta.TransferSyntaxUID = (uid.ImplicitVRLittleEndian if implicit else
                                  uid.ExplicitVRLittleEndian if little else uid.ExplicitVRBigEndian)
    return dataset


def read_pixels(headers, pydicom):
    """Pixels of ``headers`` ((path, header) pairs of one series, in stack order): float32 S×H×W
    through each file's modality transform; whether every file had one; the bool S×H×W padding
    mask (PixelPaddingValue on stored values) or None. Raises :class:`MissingDependencyError`
    (no decoder for a compressed transfer syntax), :class:`CorruptFileError`,
    :class:`ShapeMismatchError`."""
    from pydicom.pixels import apply_modality_lut, get_decoder

    slices, pads, rescaled = [], [], True
    for path, header in headers:
        syntax = getattr(header, "file_meta", {}).get("TransferSyntaxUID")
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
            dataset = _dataset_with_pixels(path, pydicom)
            stored = dataset.pixel_array
        except Exception as exc:  # decoders raise many types on truncated/corrupt pixel data
            raise CorruptFileError(f"{path}: cannot decode DICOM pixel data ({exc}). "
                                   f"{_REFETCH}") from exc
        if stored.ndim != 2:
            raise ShapeMismatchError(f"{path}: expected one 2-D slice, got shape {stored.shape}.")
        if slices and stored.shape != slices[0].shape:
            raise ShapeMismatchError(f"{path}: slice size {stored.shape} differs from "
                                     f"{headers[0][0].name} {slices[0].shape} in the same series.")
        has_transform = "RescaleIntercept" in dataset or "ModalityLUTSequence" in dataset
        rescaled &= has_transform
        pads.append(_padding(stored, dataset))
        slices.append(np.asarray(apply_modality_lut(stored, dataset) if has_transform else stored,
                                 dtype=np.float32))
    padding = None
    if any(p is not None for p in pads):
        padding = np.stack([p if p is not None else np.zeros(s.shape, bool) for p, s in zip(pads, slices)])
    return np.stack(slices), rescaled, padding


def _padding(stored: np.ndarray, dataset) -> np.ndarray | None:
    """Stored values declared as padding: PixelPaddingValue, up to PixelPaddingRangeLimit."""
    if "PixelPaddingValue" not in dataset:
        return None
    value = int(dataset.PixelPaddingValue)
    limit = dataset.get("PixelPaddingRangeLimit")
    if limit is None:
        return stored == value
    low, high = sorted((value, int(limit)))
    return (stored >= low) & (stored <= high)


def rescale_warnings(hu: np.ndarray, source: str, rescaled: bool, missing: str) -> list[str]:
    """The warnings on the units of a DICOM volume: values that do not look like HU, and a missing
    rescale (the stored values are then taken as HU as they are)."""
    finding = raw_values_finding(hu)
    if rescaled:
        return [] if finding is None else [
            f"{source}: {finding} Check the rescale (RescaleIntercept / RescaleSlope) of the files."]
    return [f"{source}: {missing}, so the stored values are taken as HU as they are"
            + (f"; but {finding}" if finding else " (they do look like HU: air near -1000).")
            + f" {RESCALE_FIX}"]
