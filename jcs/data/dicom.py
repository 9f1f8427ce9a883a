"""DICOM series to :class:`~jcs.data.volume.Volume`: slice geometry and Hounsfield units.

One series (single-frame files):

1. files without an image (DICOMDIR, reports, ...) and localizer / scout images (ImageType
   LOCALIZER) are left out, with a warning naming them;
2. one SeriesInstanceUID, else :class:`MixedSeriesError`; images whose orientation or size
   differs from most of the series (scouts, reformats) are left out with a warning;
3. exact duplicates (same SOPInstanceUID, or same position and same pixel data) are dropped with
   a warning; two different images at one position are refused (several volumes in one series);
4. slices are ordered by their position along the slice normal (the cross product of the
   ImageOrientationPatient row and column directions), not by z alone nor InstanceNumber, which
   is used only where positions are missing (with a warning);
5. the spacing is the step between slice planes; gaps, non-uniform steps and gantry tilt are
   warned about (:func:`jcs.data.geometry.stack_spacing`), and no spacing is reported that the
   scan does not have;
6. values are HU through the modality transform (RescaleSlope / RescaleIntercept, or a Modality
   LUT; :mod:`jcs.data.dicom_pixels`); files without one are read as stored, with a warning;
   pixel padding (PixelPaddingValue, or anything below -1024 HU) becomes air;
7. the volume is put in the display orientation of :class:`Volume` whatever the patient position
   (:func:`jcs.data.geometry.to_display`).

Enhanced (multi-frame) CT is read with highdicom in frame position order
(:func:`jcs.data.dicom_multiframe.read_multiframe`), or refused with how to convert it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .dicom_files import DICOMDIR_CLASS
from .dicom_multiframe import read_multiframe
from .dicom_pixels import pixel_bytes, read_pixels, rescale_warnings
from .errors import CorruptFileError, EmptyFolderError, MixedSeriesError
from .geometry import STEP_ATOL_MM, stack_spacing, to_display
from .grid import Grid, grid_from_lps
from .volume import Volume, padding_to_air, require

_MAX_LISTED = 5


def _names(paths, limit: int = _MAX_LISTED) -> str:
    names = [Path(p).name for p in paths]
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _image_type(header) -> list[str]:
    value = header.get("ImageType")
    if value is None:
        return []
    return [str(v).upper() for v in ([value] if isinstance(value, str) else value)]


def _read_headers(files: list[Path], pydicom) -> list[tuple[Path, object]]:
    from pydicom.errors import InvalidDicomError
    from .readers import natural_key

    headers = []
    for path in sorted(files, key=lambda p: natural_key(p.name)):
        try:
            headers.append((path, pydicom.dcmread(path, stop_before_pixels=True, force=True)))
        except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError) as exc:
            raise CorruptFileError(f"{path}: not a readable DICOM file ({exc}). "
                                   "Remove it from the folder or replace it.") from exc
    return headers


def _orientation(header) -> tuple[np.ndarray, np.ndarray] | None:
    """(row direction, column direction) unit vectors of ImageOrientationPatient, or None."""
    if "ImageOrientationPatient" not in header or len(header.ImageOrientationPatient) != 6:
        return None
    values = np.array([float(v) for v in header.ImageOrientationPatient])
    row, col = values[:3], values[3:]
    if not (np.linalg.norm(row) > 0 and np.linalg.norm(col) > 0):
        return None
    return row / np.linalg.norm(row), col / np.linalg.norm(col)


def _same_layout(a, b) -> bool:
    """Same image size and the same orientation (direction cosines within 1e-3)."""
    def size(header):
        return int(header.get("Rows", 0)), int(header.get("Columns", 0))

    if size(a) != size(b):
        return False
    first, second = _orientation(a), _orientation(b)
    if first is None or second is None:
        return first is None and second is None
    return bool(np.abs(np.concatenate(first) - np.concatenate(second)).max() <= 1e-3)


def read_dicom_series(files: list[Path], source: str | Path,
                      notes: list[str] | None = None) -> Volume:
    """Read one DICOM series (its files; names do not matter) into a Volume in HU.

    ``files``: paths of DICOM files (DICOMDIR and files without an image are left out).
    ``notes``: warnings found before (e.g. ignored non-DICOM files), put first in the Volume's
    ``warnings``. See the module docstring for the rules. Raises :class:`EmptyFolderError` (no
    image), :class:`MixedSeriesError` (several series, orientations or volumes in one series),
    :class:`CorruptFileError` (unreadable file or pixel data), :class:`MissingDependencyError`
    (compressed pixel data without its decoder), :class:`ShapeMismatchError`.
    Compressed transfer syntaxes (e.g. JPEG lossless) need pylibjpeg + pylibjpeg-libjpeg or GDCM.
    """
    pydicom = require("pydicom", f"reading the DICOM series in {source}")
    notes = list(notes or [])
    if not files:
        raise EmptyFolderError(f"{source} holds no DICOM files.")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Invalid value for VR", category=UserWarning)
        warnings.filterwarnings("ignore", message="End of file reached", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*ambiguous VR", category=UserWarning)
        headers = _select_images(_read_headers(files, pydicom), source, notes)
        multiframe = [(p, h) for p, h in headers if int(h.get("NumberOfFrames", 1) or 1) > 1]
        if multiframe:
            if len(headers) == 1:
                return read_multiframe(headers[0][0], source, notes)
            raise MixedSeriesError(f"{source} mixes {len(multiframe)} multi-frame file(s) "
                                   f"({_names(p for p, _ in multiframe)}) with single-frame files; "
                                   "put each in a folder of its own and read them separately.")
        _check_one_series(headers, source)
        headers = _drop_other_layouts(headers, source, notes)
        headers = _drop_duplicate_uids(headers, source, notes, pydicom)
        headers, geometry = _order(headers, source, notes, pydicom)
        array, rescaled, padding = read_pixels(headers, pydicom)
    return _assemble(headers, geometry, array, rescaled, padding, source, notes)


def _select_images(headers, source, notes):
    """Leave out DICOMDIRs, files without an image and localizer (scout) images, saying so."""
    headers = [(p, h) for p, h in headers
               if str(getattr(h, "file_meta", {}).get("MediaStorageSOPClassUID", "")) != DICOMDIR_CLASS]
    no_image = [p for p, h in headers if "Rows" not in h]
    if no_image:
        notes.append(f"{source}: left out {len(no_image)} DICOM file(s) that hold no image "
                     f"({_names(no_image)}).")
    headers = [(p, h) for p, h in headers if "Rows" in h]
    scouts = [p for p, h in headers if "LOCALIZER" in _image_type(h)]
    if scouts:
        notes.append(f"{source}: left out {len(scouts)} localizer (scout) image(s) "
                     f"({_names(scouts)}): they are not slices of the volume.")
    headers = [(p, h) for p, h in headers if "LOCALIZER" not in _image_type(h)]
    if not headers:
        raise EmptyFolderError(f"{source} holds no CT slices (only "
                               f"{'localizer images' if scouts else 'files without an image'}); "
                               "give the folder of the axial series.")
    return headers


def _assemble(headers, geometry, array, rescaled, padding, source, notes) -> Volume:
    """The Volume of a stack: display orientation, spacing, slice ids, padding and units."""
    names = [p.name for p, _ in headers]
    spacing, directions = geometry
    first = headers[0][1]
    if "PixelSpacing" in first:
        row_mm, col_mm = (float(v) for v in first.PixelSpacing)
    else:
        row_mm = col_mm = None
        notes.append(f"{source}: no PixelSpacing: the volume has no spacing, so lesion volumes "
                     "are not given in ml.")
    full = None if spacing is None or row_mm is None else (spacing, row_mm, col_mm)
    order = np.arange(len(headers)).reshape(-1, 1, 1)
    array, full, slices_kept = to_display(array, directions, full)
    if slices_kept:
        ids = [names[i] for i in to_display(order, directions, None)[0].ravel()]
    else:
        ids = [f"{Path(source).name}:{k}" for k in range(array.shape[0])]
    ppv = first.get("PixelPaddingValue")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if padding is not None:
        padding = np.ascontiguousarray(to_display(padding, directions, None)[0])
    notes += padding_to_air(array, padding, f"PixelPaddingValue {ppv}" if ppv is not None else "")
    notes += rescale_warnings(array, str(source), rescaled, "the files have no RescaleSlope / "
                              "RescaleIntercept (nor a Modality LUT)")
    grid = _series_grid(headers, directions, spacing, (row_mm, col_mm))
    return Volume(array, full, "HU", str(source), ids, notes, grid)


def _series_grid(headers, directions, spacing, pixel_mm) -> Grid | None:
    """The series' own voxel grid (:class:`~jcs.data.grid.Grid`, basis "dicom"): i along the
    rows' direction (columns of the image), j along the columns' direction (rows of the image),
    k the slices in increasing position along row × column (the DICOM slice normal), the
    origin at the first such slice's ImagePositionPatient. The k step is the mean offset between
    consecutive slice positions (so a gantry tilt's shear is kept); where slices are missing the
    grid keeps the regular step and ``planes`` says where each slice present lies. None without
    ImagePositionPatient on every slice or without PixelSpacing."""
    if pixel_mm[0] is None or not all("ImagePositionPatient" in h for _, h in headers):
        return None
    stack_normal, col, row = (np.asarray(v, dtype=np.float64) for v in directions)
    cross = np.cross(row, col)
    cross /= np.linalg.norm(cross)
    order = list(range(len(headers)))
    if float(stack_normal @ cross) < 0:
        order.reverse()
    positions = np.array([[float(v) for v in headers[i][1].ImagePositionPatient] for i in order])
    along = (positions - positions[0]) @ cross
    notes, planes = [], None
    if len(order) == 1:
        step = cross * (spacing or 1.0)
    elif spacing is None:
        step = (positions[-1] - positions[0]) / (len(order) - 1)
        notes.append("the slice steps are not uniform, so no affine maps every slice exactly: the "
                     f"NIfTI files use the mean step ({float(np.linalg.norm(step)):.3g} mm); the "
                     "DICOM SEG, which places each frame on its source slice, is exact")
    else:
        index = np.rint(along / spacing).astype(np.int64)
        if not np.array_equal(index, np.arange(len(order))):
            planes = index
        step = (positions[-1] - positions[0]) / max(int(index[-1]), 1)
    affine = np.eye(4)
    affine[:3, 0] = row * pixel_mm[1]
    affine[:3, 1] = col * pixel_mm[0]
    affine[:3, 2] = step
    affine[:3, 3] = positions[0]
    first = headers[0][1]
    n_planes = len(order) if planes is None else int(planes[-1]) + 1
    shape = (int(first.Columns), int(first.Rows), n_planes)
    return grid_from_lps(affine, shape, "dicom", planes=planes,
                         slice_files=[str(headers[i][0]) for i in order], notes=notes)


def _check_one_series(headers, source) -> None:
    series: dict[str, list[Path]] = {}
    for path, header in headers:
        series.setdefault(str(header.get("SeriesInstanceUID", "<none>")), []).append(path)
    if len(series) > 1:
        listing = "; ".join(f"{uid} ({len(paths)} files, e.g. {paths[0].name})"
                            for uid, paths in series.items())
        raise MixedSeriesError(f"{source} mixes {len(series)} DICOM series: {listing}. Put each "
                               "series (SeriesInstanceUID) in its own folder and read them "
                               "separately.")


def _drop_other_layouts(headers, source, notes):
    """Leave out images whose orientation or size differs from most of the series."""
    groups: list[list] = []
    for item in headers:
        group = next((g for g in groups if _same_layout(g[0][1], item[1])), None)
        if group is None:
            groups.append([item])
        else:
            group.append(item)
    groups.sort(key=len, reverse=True)
    if len(groups) > 1 and len(groups[1]) == len(groups[0]):
        raise MixedSeriesError(
            f"{source} holds as many images of one orientation/size as of another "
            f"({len(groups[0])} each): it is not one stack of slices. Put the axial series alone "
            "in a folder.")
    odd = [path for group in groups[1:] for path, _ in group]
    if odd:
        notes.append(f"{source}: left out {len(odd)} image(s) whose orientation or size differs "
                     f"from the other {len(groups[0])} slices of the series ({_names(sorted(odd))}): "
                     "scout or reformatted images are not slices of this volume.")
    kept = {id(item) for item in groups[0]}
    return [item for item in headers if id(item) in kept]


def _drop_duplicate_uids(headers, source, notes, pydicom):
    """Keep one file per SOPInstanceUID (the shortest name: ``IM1.dcm`` before ``IM1 (1).dcm``).
    Files that share a UID but not their pixels (UIDs blanked or reused by an anonymiser) are
    kept, with a warning."""
    kept: list = []
    where: dict[str, int] = {}
    dropped, clashes = [], []
    for path, header in headers:
        uid = str(header.get("SOPInstanceUID", "") or "").strip()
        if not uid or uid not in where:
            if uid:
                where[uid] = len(kept)
            kept.append((path, header))
            continue
        index = where[uid]
        original = kept[index][0]
        if pixel_bytes(path, pydicom) != pixel_bytes(original, pydicom):
            clashes.append(path)
            kept.append((path, header))
            continue
        if len(path.name) < len(original.name):
            kept[index], path = (path, header), original
        dropped.append(path)
    if dropped:
        notes.append(f"{source}: dropped {len(dropped)} duplicate file(s) ({_names(dropped)}): "
                     "each is a second copy of another file of the series (same SOPInstanceUID).")
    if clashes:
        notes.append(f"{source}: {len(clashes)} file(s) ({_names(clashes)}) share their "
                     "SOPInstanceUID with another file but hold different pixels (UIDs reused, e.g. "
                     "by an anonymiser); they are kept as different images.")
    return kept


def _order(headers, source, notes, pydicom):
    """Headers in stack order and (spacing between the slice planes in mm or None, 3×3 LPS
    directions of array axes 0, 1, 2). The stack runs along the slice normal, oriented towards
    the feet (superior slice first), so that slice numbers in the warnings are the Volume's."""
    orientation = _orientation(headers[0][1])
    if orientation is None:
        notes.append(f"{source}: no ImageOrientationPatient: the slices are taken as axial "
                     "(rows towards posterior, columns towards the patient's left).")
        orientation = (np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]))
    row, col = orientation
    normal = np.cross(row, col)
    normal /= np.linalg.norm(normal)
    if normal[2] > 0:  # LPS +z is superior: run the stack towards the feet
        normal = -normal
    if all("ImagePositionPatient" in h for _, h in headers):
        positions = np.array([[float(v) for v in h.ImagePositionPatient] for _, h in headers])
    elif all("SliceLocation" in h for _, h in headers):
        notes.append(f"{source}: no ImagePositionPatient: slices ordered by SliceLocation (larger "
                     "= more superior).")
        positions = np.array([float(h.SliceLocation) for _, h in headers])[:, None] * np.array([0, 0, 1.0])
    else:
        return _order_without_positions(headers, source, notes, normal, row, col)
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    headers, positions, along = [headers[i] for i in order], positions[order], along[order]
    keep = [0]
    dropped, pixel_cache = [], {}
    for i in range(1, len(headers)):
        j = keep[-1]
        if abs(along[i] - along[j]) > STEP_ATOL_MM:
            keep.append(i)
            continue
        same = [k for k in keep if abs(along[k] - along[i]) <= STEP_ATOL_MM]
        mine = pixel_cache.setdefault(i, pixel_bytes(headers[i][0], pydicom))
        if any(pixel_cache.setdefault(k, pixel_bytes(headers[k][0], pydicom)) == mine for k in same):
            dropped.append(headers[i][0])
            continue
        acquisitions = [headers[k][1].get("AcquisitionNumber", "?") for k in (i, j)]
        raise MixedSeriesError(
            f"{source}: {headers[i][0].name} and {headers[j][0].name} are different images at the "
            f"same position ({along[i]:g} mm along the slice normal): the series holds more than "
            "one volume (e.g. several phases, echoes or reconstructions; AcquisitionNumber "
            f"{acquisitions[0]} and {acquisitions[1]}). Put each volume in a folder of its own.")
    if dropped:
        notes.append(f"{source}: dropped {len(dropped)} duplicate file(s) ({_names(dropped)}): same "
                     "position and same pixels as another file of the series.")
    headers, positions = [headers[i] for i in keep], positions[keep]
    directions = np.stack([normal, col, row])
    if len(headers) == 1:
        return headers, (_nominal_spacing(headers[0][1]), directions)
    found = stack_spacing(positions, normal, [p.name for p, _ in headers], str(source))
    notes += found.warnings
    return headers, (found.spacing, directions)


def _order_without_positions(headers, source, notes, normal, row, col):
    """Neither ImagePositionPatient nor SliceLocation: InstanceNumber order (or file names)."""
    if all("InstanceNumber" in h for _, h in headers):
        headers = sorted(headers, key=lambda item: int(item[1].InstanceNumber))
        how = "InstanceNumber"
    else:
        how = "file name"
    spacing = _nominal_spacing(headers[0][1])
    notes.append(f"{source}: the files give no slice positions (ImagePositionPatient, "
                 f"SliceLocation): slices ordered by {how}, the first taken as the most superior, "
                 + (f"{spacing:g} mm apart (SpacingBetweenSlices / SliceThickness). " if spacing else
                    "with no slice spacing. ")
                 + "Duplicates and gaps cannot be detected; check the order in the report.")
    # InstanceNumber order is taken as superior -> inferior, as the normal runs (see _order)
    return headers, (spacing, np.stack([normal, col, row]))


def _nominal_spacing(header) -> float | None:
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        value = header.get(keyword)
        if value not in (None, "") and float(value) > 0:
            return float(value)
    return None


