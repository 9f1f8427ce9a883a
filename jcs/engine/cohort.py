"""The patients of Table IV: the COVID-CT-MD sample patients (slices stored as lung-window PNG)
and, where a local copy exists, the two real chest CT volumes of the PyRadiomics 3.0.1 archive
(``pyradiomics-lungs``, NRRD in HU), counted as non-COVID patients: the archive gives no
diagnosis for them (PyRadiomics' lung test cases), so "non-COVID" is this project's assumption
and every table that lists them says so.

A patient is a dict: ``id``, ``diagnosis``, ``label`` (1 = COVID-19), ``source`` (dataset name),
``slices`` (a Dataset of classifier inputs, superior → inferior, built by :func:`patient_slices`),
``n_slices``, ``slice_labels`` (or None), ``spacing`` ((z, y, x) mm or None), ``files`` (paths
read, for the provenance hashes).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from torch.utils.data import Dataset

from jcs.data import CTMDPatients, DatasetNotFoundError, dataset_path, read_volume, window
from jcs.data.registry import REPO_ROOT
from jcs.data.transforms import resize_center_crop

PYRADIOMICS = "pyradiomics-lungs"
PYRADIOMICS_VOLUMES = ("lung1_image.nrrd", "lung2_image.nrrd")
PYRADIOMICS_DIAGNOSIS = "non-COVID (assumed)"


class VolumeSlices(Dataset):
    """The slices of a HU volume as classifier input: lung window (WL −600 / WW 1500, the
    conversion of the COVID-CT-MD PNG slices) to 8 bits, then the evaluation transform of the
    classifiers (Resize + CenterCrop scaled to ``size``). ``array``: S×H×W HU, slice 0 superior."""

    def __init__(self, array: np.ndarray, size: int, name: str):
        self.slices = window(array)
        self.size, self.name = size, name

    def __len__(self) -> int:
        return len(self.slices)

    def __getitem__(self, index: int) -> dict:
        return {"image": resize_center_crop(self.slices[index], self.size), "label": -1,
                "name": f"{self.name}/{index:03d}"}


def _pyradiomics_folder(data_root) -> Optional[Path]:
    """The local copy of ``pyradiomics-lungs``: under ``data_root``, else the repository's
    ``data/`` (where ``jcs data fetch pyradiomics-lungs`` puts it by default), else None."""
    for root in (data_root, REPO_ROOT / "data"):
        try:
            folder = dataset_path(PYRADIOMICS, root)
        except DatasetNotFoundError:
            continue
        if all((folder / name).is_file() for name in PYRADIOMICS_VOLUMES):
            return folder
    return None


def table4_cohort(data_root=None, with_pyradiomics: bool = True) -> Tuple[List[Dict[str, Any]], List[str]]:
    """``(patients, notes)``: the COVID-CT-MD patients, then the PyRadiomics volumes when
    ``with_pyradiomics`` and a local copy exists (otherwise a note says how to get them). Slices
    are not read yet; :func:`patient_slices` makes each patient's Dataset."""
    patients: List[Dict[str, Any]] = []
    for p in CTMDPatients(data_root).patients:
        patients.append({"id": p["id"], "diagnosis": p["diagnosis"], "label": p["label"],
                         "source": "covid-ct-md", "slice_paths": p["slice_paths"],
                         "n_slices": len(p["slice_paths"]), "slice_labels": p["slice_labels"],
                         "spacing": p["spacing"], "files": list(p["slice_paths"])})
    notes: List[str] = []
    if with_pyradiomics:
        folder = _pyradiomics_folder(data_root)
        if folder is None:
            notes.append("The two PyRadiomics chest CT volumes are not in this cohort: no local "
                         "copy (run `jcs data fetch pyradiomics-lungs`).")
        else:
            for name in PYRADIOMICS_VOLUMES:
                path = folder / name
                patients.append({"id": name.split("_")[0], "diagnosis": PYRADIOMICS_DIAGNOSIS,
                                 "label": 0, "source": PYRADIOMICS, "volume": path,
                                 "n_slices": None, "slice_labels": None, "spacing": None,
                                 "files": [path]})
    return patients, notes


def patient_slices(patient: Dict[str, Any], size: int) -> Dataset:
    """The classifier inputs of one cohort patient (reads a volume patient's file and fills in
    its ``n_slices`` and ``spacing``)."""
    from .datasets import PatientSlices  # noqa: PLC0415 - avoids an import cycle

    if "volume" not in patient:
        return PatientSlices(patient["slice_paths"], size)
    volume = read_volume(patient["volume"])
    if volume.unit != "HU":
        raise ValueError(f"{patient['volume']}: expected Hounsfield units, got {volume.unit}")
    patient["n_slices"], patient["spacing"] = len(volume), volume.spacing
    return VolumeSlices(volume.array, size, patient["id"])
