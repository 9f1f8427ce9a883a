"""Data hub of the companion: dataset registry, fetch/verify, readers, network-input transforms,
PyTorch datasets and a synthetic CT generator (ARCHITECTURE.md, ``jcs.data``).

Only numpy, Pillow and torch are needed to import it; nibabel / pydicom (+ pylibjpeg) / pynrrd /
highdicom are imported when a NIfTI / DICOM / NRRD / multi-frame DICOM file is read.
"""

from .datasets import ClassificationSlices, CTMDPatients, CTMDSlices, SegmentationSlices
from .errors import (CorruptFileError, DataError, DatasetNotFoundError, EmptyFolderError, FetchError,
                     MissingDependencyError, MixedSeriesError, ShapeMismatchError)
from .hub import VerifyReport, fetch, make_infnet_split, verify
from .readers import (Volume, read_label_map, read_mask, read_pair_list, read_slice, read_volume,
                      volume_to_uint8, window)
from .registry import (DATASETS, DatasetFile, DatasetInfo, data_root, dataset_path,
                       get_dataset_info, list_datasets)
from .synthetic import synthetic_ct
from .transforms import mask_to_tensor, to_network_input

__all__ = [
    "DATASETS", "ClassificationSlices", "CTMDPatients", "CTMDSlices", "CorruptFileError", "DataError",
    "DatasetFile", "DatasetInfo", "DatasetNotFoundError", "EmptyFolderError", "FetchError",
    "MissingDependencyError", "MixedSeriesError", "SegmentationSlices", "ShapeMismatchError",
    "VerifyReport", "Volume", "data_root", "dataset_path", "fetch", "get_dataset_info",
    "list_datasets", "make_infnet_split", "mask_to_tensor", "read_label_map", "read_mask",
    "read_pair_list", "read_slice", "read_volume", "synthetic_ct", "to_network_input", "verify",
    "volume_to_uint8", "window",
]
