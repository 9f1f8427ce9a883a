"""Finding DICOM data: a file is DICOM by its content, not its name (no extension, ``.IMA``,
UID names, files without the 128-byte preamble), and a DICOMDIR at the root of a disc is followed
to the series it lists (:func:`read_dicomdir`), or the choice is explained.
"""

from __future__ import annotations

import struct
from pathlib import Path

from .errors import DatasetNotFoundError, DataError, EmptyFolderError, MixedSeriesError
from .volume import Volume, require

#: MediaStorageSOPClassUID of a DICOMDIR (Media Storage Directory Storage).
DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
_MAX_LISTED = 5


def is_dicom_file(path: Path) -> bool:
    """Whether ``path`` holds DICOM, judged by its first bytes (never by its name): the ``DICM``
    prefix after the 128-byte preamble, ``DICM`` at the start (no preamble), or a data set that
    starts directly with a file-meta (0002,xxxx) or identifying (0008,xxxx) element, as written
    by old scanners and some converters."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    if head[128:132] == b"DICM" or head[:4] == b"DICM":
        return True
    if len(head) < 8:
        return False
    group, element = struct.unpack("<HH", head[:4])
    if group not in (0x0002, 0x0008) or element > 0x0100:
        return False
    vr = head[4:6]
    if vr.isalpha() and vr.isupper():  # explicit VR little endian
        return True
    length = struct.unpack("<I", head[4:8])[0]  # implicit VR: a short first element
    return 0 < length < 1024


def is_dicomdir(path: Path) -> bool:
    """A DICOMDIR file (by name, the standard's, or by its media storage class)."""
    if path.name.upper() == "DICOMDIR":
        return True
    if not is_dicom_file(path):
        return False
    pydicom = require("pydicom", f"reading {path}")
    try:
        meta = pydicom.filereader.read_file_meta_info(path)
    except Exception:  # not readable as DICOM with file meta: not a DICOMDIR
        return False
    return str(meta.get("MediaStorageSOPClassUID", "")) == DICOMDIR_CLASS


def sort_folder(folder: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """The visible files directly in ``folder`` as (DICOM files, DICOMDIR files, other files);
    hidden files (``.DS_Store``, ...) are left out."""
    dicoms, dicomdirs, others = [], [], []
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        if path.name.upper() == "DICOMDIR":
            dicomdirs.append(path)
        elif is_dicom_file(path):
            dicoms.append(path)
        else:
            others.append(path)
    return dicoms, dicomdirs, others


def subfolders_with_dicom(folder: Path, limit: int = _MAX_LISTED) -> list[Path]:
    """Up to ``limit`` sub-folders (two levels down at most) holding DICOM files, for messages."""
    found: list[Path] = []
    for depth in ("*", "*/*"):
        for sub in sorted(p for p in folder.glob(depth) if p.is_dir()):
            if len(found) >= limit:
                return found
            if any(is_dicom_file(f) for f in list(sub.iterdir())[:20] if f.is_file()):
                found.append(sub)
    return found


def read_dicomdir(path: Path, read_series) -> Volume:
    """Follow a DICOMDIR (a file, or the folder holding it): read its one image series with
    ``read_series(files, source)``, or raise a :class:`MixedSeriesError` that lists the series
    (number, description, modality, image count, folder) and says which folder to give.

    Files the DICOMDIR lists but that are missing raise :class:`DatasetNotFoundError`."""
    pydicom = require("pydicom", f"reading the DICOMDIR {path}")
    from pydicom.fileset import FileSet

    dicomdir = path / "DICOMDIR" if path.is_dir() else path
    try:
        file_set = FileSet(pydicom.dcmread(dicomdir))
    except Exception as exc:  # pydicom raises ValueError, InvalidDicomError, KeyError, ...
        raise DataError(f"{dicomdir}: not a readable DICOMDIR ({exc}). Give the folder of one "
                        "series instead (the folder that holds its image files).") from exc
    series: dict[str, list] = {}
    for instance in file_set:
        if instance.node.record_type == "IMAGE":
            series.setdefault(str(instance.SeriesInstanceUID), []).append(instance)
    if not series:
        raise EmptyFolderError(f"{dicomdir} lists no images. Give the folder of one series instead "
                               "(the folder that holds its image files).")
    files = {uid: [Path(instance.path) for instance in instances]
             for uid, instances in series.items()}
    missing = [p for paths in files.values() for p in paths if not p.is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"{dicomdir} lists {len(missing)} image file(s) that are missing, e.g. {missing[0]}. "
            "Copy the whole disc again, or give the folder of one complete series.")
    if len(series) == 1:
        (uid, paths), = files.items()
        return read_series(paths, dicomdir.parent)
    raise MixedSeriesError(f"{dicomdir} lists {len(series)} image series; a volume is one series. "
                           + _series_listing(series, files))


def _series_listing(series: dict[str, list], files: dict[str, list[Path]]) -> str:
    """One line per series with the folder to give, or how to make one."""
    folders = {uid: {p.parent for p in paths} for uid, paths in files.items()}
    lines = []
    for uid, instances in series.items():
        first = instances[0]
        number = _record_value(first, "SeriesNumber")
        text = _record_value(first, "SeriesDescription")
        modality = _record_value(first, "Modality")
        where = folders[uid]
        shared = any(where & folders[other] for other in folders if other != uid)
        place = (f"in {next(iter(where))}" if len(where) == 1 and not shared else
                 f"in {len(where)} folder(s) shared with other series, e.g. {sorted(where)[0]}")
        lines.append(f"series {number or '?'} '{text or ''}' ({modality or '?'}, "
                     f"{len(instances)} images) {place}")
    return ("The series: " + "; ".join(lines) + ". Diagnose one series by giving its folder; where "
            "a series shares its folder with others, copy its files into a folder of their own.")


def _record_value(instance, keyword: str):
    try:
        return getattr(instance, keyword)
    except AttributeError:
        return None
