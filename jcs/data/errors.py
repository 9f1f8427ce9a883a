"""Errors raised by :mod:`jcs.data`.

Every error names the file or folder concerned and says what to do about it; catch
:class:`DataError` to handle all of them.
"""


class DataError(Exception):
    """Base class of all data errors."""


class DatasetNotFoundError(DataError, FileNotFoundError):
    """A dataset folder, or a file a dataset needs, is not on disk."""


class CorruptFileError(DataError, ValueError):
    """A file exists but cannot be decoded, or its checksum does not match the manifest."""


class ShapeMismatchError(DataError, ValueError):
    """Arrays that must have the same size do not (mask vs image, slices of one volume)."""


class MixedSeriesError(DataError, ValueError):
    """A DICOM folder holds slices of more than one series."""


class EmptyFolderError(DataError, FileNotFoundError):
    """A folder that should hold images, slices or dataset files is empty."""


class FetchError(DataError, OSError):
    """A dataset could not be downloaded (no internet, moved URL, or not downloadable)."""


class MissingDependencyError(DataError, ImportError):
    """An optional package (nibabel, pydicom, pylibjpeg) is needed to read a file."""
