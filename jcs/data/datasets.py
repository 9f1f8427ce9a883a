"""PyTorch datasets over the local copies. Items are dicts (see ARCHITECTURE.md).

Splits are fixed lists read from the dataset files (no random splitting), so every run sees the
same images in the same order.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .ctmd_labels import covid_slice_labels, slice_groups
from .errors import DataError, DatasetNotFoundError, EmptyFolderError, ShapeMismatchError
from .readers import natural_key, read_mask, read_pair_list, read_slice, spacing_from_meta
from .registry import SARSCOV2_BLOCKS, dataset_path
from .transforms import (mask_to_tensor, normalize, random_resized_crop_flip, resize_center_crop,
                         resize_gray, segmentation_augment)

PathLike = str | os.PathLike


def _check_choice(value: str, choices: Sequence[str], what: str) -> None:
    if value not in choices:
        raise ValueError(f"{what} must be one of {', '.join(map(repr, choices))}, got {value!r}.")


def _require_files(paths: Sequence[Path], name: str) -> None:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"{len(missing)} file(s) of dataset {name!r} are missing, e.g. {missing[0]}. Check the "
            f"copy with `jcs data verify {name}` and restore it with `jcs data fetch {name}`.")


def _subset(items: list, indices: Sequence[int] | None) -> list:
    return items if indices is None else [items[i] for i in indices]


# ---------------------------------------------------------------------------------------------
# Segmentation


def _medseg_pairs(folder: Path, split: str) -> list[tuple[str, Path, Path]]:
    table = folder / "splits" / "infnet_split.csv"
    if not table.is_file():
        raise DatasetNotFoundError(
            f"{table} is missing. It is derived from covid-semiseg: run `jcs data fetch covid-semiseg` "
            "then `jcs data fetch medseg` (or call jcs.data.make_infnet_split()).")
    with open(table, newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["infnet_split"] == split]
    return [(Path(row["image"]).stem, folder / row["image"], folder / row["mask_binary"]) for row in rows]


def _semiseg_pairs(folder: Path, split: str) -> list[tuple[str, Path, Path]]:
    images = sorted((folder / split / "Imgs").glob("*.jpg"), key=lambda p: natural_key(p.name))
    return [(p.stem, p, folder / split / "GT" / f"{p.stem}.png") for p in images]


def _covid_cs_pairs(folder: Path, split: str) -> list[tuple[str, Path, Path]]:
    return [(Path(image).stem, folder / image, folder / label)
            for image, label in read_pair_list(folder / f"{split}.txt")]


_SEGMENTATION_SOURCES = {"medseg": _medseg_pairs, "covid-semiseg": _semiseg_pairs,
                         "covid-cs": _covid_cs_pairs}


class SegmentationSlices(Dataset):
    """CT slices with binary lesion masks: ``{"image": 3×S×S, "mask": 1×S×S {0,1}, "name"}``.

    ``medseg``: the Inf-Net split (train 50 / test 48, slices 22 and 48 unused) of the 512×512
    MedSeg slices; ``covid-semiseg``: Inf-Net's cropped copies (train/test folders);
    ``covid-cs``: the authors' layout (``train.txt`` / ``test.txt``). Images are resized bilinearly
    and masks by nearest neighbour to ``size``; ``augment`` applies the authors' training
    augmentation (:func:`~jcs.data.transforms.segmentation_augment`). ``indices`` selects a subset
    of the split, in the given order.
    """

    def __init__(self, name: str = "medseg", split: str = "train", size: int = 512,
                 augment: bool = False, root: PathLike | None = None,
                 indices: Sequence[int] | None = None):
        _check_choice(name, list(_SEGMENTATION_SOURCES), "name")
        _check_choice(split, ("train", "test"), "split")
        folder = dataset_path(name, root)
        pairs = _SEGMENTATION_SOURCES[name](folder, split)
        if not pairs:
            raise EmptyFolderError(f"Dataset {name!r} has no {split} images under {folder}; check "
                                   f"it with `jcs data verify {name}`.")
        _require_files([p for _, image, mask in pairs for p in (image, mask)], name)
        self.name, self.split, self.size, self.augment = name, split, size, augment
        self.samples = _subset(pairs, indices)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        name, image_path, mask_path = self.samples[index]
        image, mask = read_slice(image_path), read_mask(mask_path)
        if image.shape != mask.shape:
            raise ShapeMismatchError(
                f"{mask_path}: mask size {mask.shape} differs from image {image_path} "
                f"{image.shape}; the pair must have the same height and width (fix or remove it).")
        x, m = resize_gray(image, self.size), mask_to_tensor(mask, self.size)
        if self.augment:
            x, m = segmentation_augment(x, m)
        return {"image": normalize(x), "mask": m, "name": name}


# ---------------------------------------------------------------------------------------------
# Classification


def _classify(slice_uint8: np.ndarray, size: int, augment: bool) -> torch.Tensor:
    if augment:
        return random_resized_crop_flip(slice_uint8, size)
    return resize_center_crop(slice_uint8, size)


def _read_name_list(path: Path) -> list[str]:
    if not path.is_file():
        raise DatasetNotFoundError(f"{path}: split file missing. Check the copy with "
                                   "`jcs data verify ucsd-covid-ct`.")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


_SARSCOV2_NAME = re.compile(r".*\((\d+)\)\.png", re.IGNORECASE | re.DOTALL)


def sarscov2_number(path: PathLike) -> int:
    """File number N of a ``sarscov2-ct`` slice named ``... (N).png``; any other name is a
    :class:`DataError` naming the file (the split depends on N)."""
    match = _SARSCOV2_NAME.fullmatch(Path(path).name)
    if match is None:
        raise DataError(f"{path}: sarscov2-ct file names must end in '(N).png' (e.g. 'Covid (5).png'); "
                        "the file number N decides the split. Rename or remove the file and check the "
                        "copy with `jcs data verify sarscov2-ct`.")
    return int(match.group(1))


def sarscov2_split_of(number: int) -> str:
    """Split (``train`` / ``val`` / ``test``) of the ``sarscov2-ct`` file number ``number``: the
    block of :data:`jcs.data.registry.SARSCOV2_BLOCKS` that holds it (both classes alike)."""
    for split, (low, high) in SARSCOV2_BLOCKS.items():
        if number >= low and (high is None or number <= high):
            return split
    raise DataError(f"sarscov2-ct file number {number} lies in no block of SARSCOV2_BLOCKS "
                    f"({SARSCOV2_BLOCKS}).")


def _sarscov2_samples(folder: Path, split: str) -> list[tuple[str, Path, int]]:
    samples = []
    for image_dir, label in (("COVID", 1), ("NonCOVID", 0)):
        class_dir = folder / image_dir
        paths = ([p for p in class_dir.iterdir() if p.suffix.lower() == ".png" and p.is_file()]
                 if class_dir.is_dir() else [])
        if not paths:
            raise DatasetNotFoundError(
                f"{class_dir} holds no PNG slices of dataset 'sarscov2-ct'. Check the copy with "
                "`jcs data verify sarscov2-ct` and restore it with `jcs data fetch sarscov2-ct`.")
        numbered = sorted((sarscov2_number(p), p.name, p) for p in paths)
        samples += [(f"{image_dir}/{n}", p, label) for number, n, p in numbered
                    if sarscov2_split_of(number) == split]
    return samples


class ClassificationSlices(Dataset):
    """CT slices with image labels: ``{"image": 3×S×S, "label": int (1 = COVID), "name"}``.
    COVID images come first, then non-COVID.

    ``ucsd-covid-ct``: UCSD-AI4H COVID-CT with the official split, in split-file order;
    ``sarscov2-ct``: the SARS-CoV-2 CT-scan sample split by blocks of the file number N
    (:data:`~jcs.data.registry.SARSCOV2_BLOCKS`: train N <= 800, val 801-900, test N > 900), in
    increasing N; ``name`` = path relative to the dataset folder (``"COVID/Covid (5).png"``).
    Evaluation input = Resize(256)+CenterCrop(224) scaled to ``size`` (the authors' classifier,
    jcs_official.md §4.1); ``augment`` = random resized crop + horizontal flip. ``indices``
    selects a subset of the split, in the given order.
    """

    CLASSES = (("COVID", "CT_COVID", 1), ("NonCOVID", "CT_NonCOVID", 0))  # ucsd-covid-ct

    def __init__(self, name: str = "ucsd-covid-ct", split: str = "train", size: int = 224,
                 augment: bool = False, root: PathLike | None = None,
                 indices: Sequence[int] | None = None):
        _check_choice(name, ("ucsd-covid-ct", "sarscov2-ct"), "name")
        _check_choice(split, ("train", "val", "test"), "split")
        folder = dataset_path(name, root)
        if name == "sarscov2-ct":
            samples = _sarscov2_samples(folder, split)
        else:
            samples = []
            for group, image_dir, label in self.CLASSES:
                names = _read_name_list(folder / "Data-split" / group / f"{split}CT_{group}.txt")
                samples += [(f"{image_dir}/{n}", folder / image_dir / n, label) for n in names]
        _require_files([path for _, path, _ in samples], name)
        self.split, self.size, self.augment = split, size, augment
        self.samples = _subset(samples, indices)

    @property
    def labels(self) -> list[int]:
        return [label for _, _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        name, path, label = self.samples[index]
        return {"image": _classify(read_slice(path), self.size, self.augment), "label": label,
                "name": name}


# ---------------------------------------------------------------------------------------------
# COVID-CT-MD


class CTMDPatients(Dataset):
    """The COVID-CT-MD patients. Items are dicts: ``id``, ``diagnosis`` ("COVID-19", "CAP",
    "Normal"), ``label`` (1 = COVID-19), ``slice_paths`` (superior -> inferior), ``slice_labels``
    (int64 infection flag per slice, or None where unlabelled), ``spacing`` (z, y, x) mm of the PNG
    slices or None, ``dicom_dir`` (original DICOM folder or None)."""

    def __init__(self, root: PathLike | None = None):
        folder = dataset_path("covid-ct-md", root)
        table = folder / "labels" / "patients.csv"
        _require_files([table, folder / "labels" / "slice_labels.csv"], "covid-ct-md")
        labels = self._slice_labels(folder / "labels" / "slice_labels.csv")
        with open(table, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        self.patients = [self._patient(folder, row, labels.get(row["patient_id"])) for row in rows]

    @staticmethod
    def _slice_labels(path: Path) -> dict[str, np.ndarray]:
        per_patient: dict[str, dict[int, int]] = {}
        with open(path, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                per_patient.setdefault(row["patient_id"], {})[int(row["slice_index"])] = int(row["infection"])
        return {pid: np.array([flags[k] for k in sorted(flags)], dtype=np.int64)
                for pid, flags in per_patient.items()}

    @staticmethod
    def _patient(folder: Path, row: dict, slice_labels: np.ndarray | None) -> dict:
        pid, diagnosis = row["patient_id"], row["diagnosis"]
        patient_dir = folder / diagnosis / pid
        paths = sorted(patient_dir.glob("slice_*.png"), key=lambda p: natural_key(p.name))
        if not paths:
            raise EmptyFolderError(f"{patient_dir} holds no slice_*.png files; check the copy with "
                                   "`jcs data verify covid-ct-md`.")
        if slice_labels is not None and len(slice_labels) != len(paths):
            raise ShapeMismatchError(f"{patient_dir}: {len(paths)} slices but {len(slice_labels)} "
                                     "slice labels in labels/slice_labels.csv.")
        meta = patient_dir / "meta.json"
        dicom_dir = folder / "dicom" / pid
        return {"id": pid, "diagnosis": diagnosis, "label": int(diagnosis == "COVID-19"),
                "slice_paths": paths, "slice_labels": slice_labels,
                "spacing": spacing_from_meta(meta) if meta.is_file() else None,
                "dicom_dir": dicom_dir if dicom_dir.is_dir() else None}

    @property
    def ids(self) -> list[str]:
        return [p["id"] for p in self.patients]

    def get(self, patient_id: str) -> dict:
        for patient in self.patients:
            if patient["id"] == patient_id:
                return patient
        raise ValueError(f"Unknown COVID-CT-MD patient {patient_id!r}; known: {', '.join(self.ids)}.")

    def __len__(self) -> int:
        return len(self.patients)

    def __getitem__(self, index: int) -> dict:
        return self.patients[index]


class CTMDSlices(Dataset):
    """Slice-level classification on COVID-CT-MD: ``{"image": 3×S×S, "label": int (1 = COVID-19
    infection, :mod:`jcs.data.ctmd_labels`), "group": str (:data:`~jcs.data.ctmd_labels.GROUPS`),
    "name": "<patient>/<slice>", "patient": id}``. CAP slices, infected or not, are 0: the
    classifiers separate COVID-19 from non-COVID-19. COVID/CAP patients need slice labels; all
    slices of normal patients are 0. ``patients`` = ids (default: every usable patient)."""

    def __init__(self, patients: Sequence[str] | None = None, size: int = 224, augment: bool = False,
                 root: PathLike | None = None):
        table = CTMDPatients(root)
        if patients is None:
            chosen = [p for p in table.patients
                      if p["slice_labels"] is not None or p["diagnosis"] == "Normal"]
        else:
            chosen = [table.get(pid) for pid in patients]
        samples = []
        for patient in chosen:
            try:
                groups = slice_groups(patient["diagnosis"], patient["slice_labels"],
                                      len(patient["slice_paths"]))
            except DataError as err:
                raise type(err)(f"Patient {patient['id']}: {err}") from None
            labels = covid_slice_labels(groups)
            samples += [(f"{patient['id']}/{path.stem}", path, int(label), patient["id"], group)
                        for path, label, group in zip(patient["slice_paths"], labels, groups)]
        self.size, self.augment, self.samples = size, augment, samples

    @property
    def labels(self) -> list[int]:
        return [sample[2] for sample in self.samples]

    @property
    def groups(self) -> list[str]:
        return [sample[4] for sample in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        name, path, label, patient, group = self.samples[index]
        return {"image": _classify(read_slice(path), self.size, self.augment), "label": label,
                "group": group, "name": name, "patient": patient}
