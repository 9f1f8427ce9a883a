"""The data of each experiment, assembled from :mod:`jcs.data` (no other data source is used).

* Segmentation: ``SegmentationSlices`` (MedSeg, Inf-Net split: 50 train / 48 test) at the
  recipe's size; test masks at ``seg_eval_size`` (512 = MedSeg's native size: predictions are
  bilinearly resized to the label size, as the authors' ``test_joint.py``, jcs_official.md §4.5).
* Classification: the union of the profile's ``cls_datasets`` (default UCSD COVID-CT, official
  split, + the real-scan SARS-CoV-2 CT sample, split by blocks of file numbers): train, val (model
  selection), and each dataset's test split on its own; plus ``cls_cross_tests`` (default the
  labelled slices of the COVID-CT-MD patients: another country's scanners, never trained on).
  The pixel-supervised classifier (paper Fig. 9) also trains on the MedSeg TRAIN slices as
  COVID-19 positives with their lesion masks; MedSeg test slices are never trained on.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset, Subset

from jcs.data import (ClassificationSlices, CTMDSlices, SegmentationSlices, data_root,
                      get_dataset_info, list_datasets, read_slice)
from jcs.data.transforms import resize_center_crop

from .profiles import Profile, Recipe
from .provenance import hash_files

DEFAULT_DATASET = {"segmentation": "medseg", "classification": "ucsd-covid-ct"}


def task_of(model_name: str) -> str:
    """``"classification"`` for the classifiers (``jcs-classifier*``), else ``"segmentation"``."""
    return "classification" if "classifier" in model_name else "segmentation"


def evenly_spaced(total: int, count: Optional[int]) -> Optional[List[int]]:
    """``count`` indices spread evenly over ``range(total)`` (both ends included), or None for
    all. Classification splits list COVID first, so a small subset still has both classes."""
    if count is None or count >= total:
        return None
    return [int(i) for i in np.linspace(0, total - 1, count).round()]


class MemoryDataset(Dataset):
    """All items of a (non-augmented) dataset read once and kept in memory."""

    def __init__(self, dataset: Dataset):
        self.source = dataset
        self.items = [dataset[i] for i in range(len(dataset))]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return self.items[index]


class SizedMasks(Dataset):
    """Images of ``inputs`` with the masks of ``targets`` (the same slices at another size)."""

    def __init__(self, inputs: Dataset, targets: Dataset):
        if len(inputs) != len(targets):
            raise ValueError(f"inputs ({len(inputs)}) and targets ({len(targets)}) differ in length")
        self.inputs, self.targets = inputs, targets

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> dict:
        item = dict(self.inputs[index])
        item["mask"] = self.targets[index]["mask"]
        return item


class WithEmptyMask(Dataset):
    """Classification items plus an all-zero ``mask`` (no pixel supervision for them)."""

    def __init__(self, dataset: Dataset, size: int):
        self.dataset, self.size = dataset, size

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        item = dict(self.dataset[index])
        item["mask"] = torch.zeros(1, self.size, self.size)
        return item


class LesionSlicesAsPositives(Dataset):
    """Segmentation items as COVID-19 classification items: ``label`` 1, mask kept, name
    prefixed with the dataset name."""

    def __init__(self, dataset: Dataset, prefix: str):
        self.dataset, self.prefix = dataset, prefix

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        item = self.dataset[index]
        return {"image": item["image"], "label": 1, "mask": item["mask"],
                "name": f"{self.prefix}/{item['name']}"}


class PatientSlices(Dataset):
    """The slices of one patient (file paths, superior → inferior) as classifier input: the
    evaluation transform of ``ClassificationSlices`` (Resize + CenterCrop, scaled to ``size``)."""

    def __init__(self, paths: Sequence[Path], size: int):
        self.samples = [(Path(p).stem, Path(p)) for p in paths]
        self.size = size

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        name, path = self.samples[index]
        return {"image": resize_center_crop(read_slice(path), self.size), "label": -1, "name": name}


def data_files(dataset: Dataset) -> List[Path]:
    """Files read by ``dataset`` (jcs.data datasets, the wrappers above, ConcatDataset)."""
    if isinstance(dataset, MemoryDataset):
        return data_files(dataset.source)
    if isinstance(dataset, SizedMasks):
        return data_files(dataset.inputs) + data_files(dataset.targets)
    if isinstance(dataset, (WithEmptyMask, LesionSlicesAsPositives)):
        return data_files(dataset.dataset)
    if isinstance(dataset, ConcatDataset):
        return [f for part in dataset.datasets for f in data_files(part)]
    if isinstance(dataset, Subset):
        files = data_files(dataset.dataset)
        return [files[i] for i in dataset.indices] if len(files) == len(dataset.dataset) else files
    samples = getattr(dataset, "samples", [])
    return [Path(v) for sample in samples for v in sample if isinstance(v, Path)]


def item_names(dataset: Dataset) -> List[str]:
    """Item names without loading images where the dataset lists them."""
    if isinstance(dataset, MemoryDataset):
        return [item["name"] for item in dataset.items]
    if isinstance(dataset, SizedMasks):
        return item_names(dataset.inputs)
    if isinstance(dataset, WithEmptyMask):
        return item_names(dataset.dataset)
    if isinstance(dataset, LesionSlicesAsPositives):
        return [f"{dataset.prefix}/{n}" for n in item_names(dataset.dataset)]
    if isinstance(dataset, ConcatDataset):
        return [n for part in dataset.datasets for n in item_names(part)]
    if isinstance(dataset, Subset):
        names = item_names(dataset.dataset)
        return [names[i] for i in dataset.indices]
    samples = getattr(dataset, "samples", None)
    if samples is not None:
        return [str(sample[0]) for sample in samples]
    return [dataset[i]["name"] for i in range(len(dataset))]


def _manifest() -> Dict[str, str]:
    """``{path under the data root: sha256}`` from the jcs.data registry manifests."""
    out: Dict[str, str] = {}
    for name in list_datasets():
        info = get_dataset_info(name)
        out.update({f"{info.folder}/{path}": digest for path, digest in info.manifest().items()})
    return out


def describe_data(dataset_name: str, splits: Mapping[str, Dataset],
                  root: Optional[Path] = None) -> Dict[str, object]:
    """The ``data`` block of a results file: dataset, split names, sha256 of every file read
    (relative to the data root) and whether they all match the registry manifest."""
    files: List[Path] = []
    for split in splits.values():
        files += data_files(split)
    root = Path(root) if root is not None else data_root()
    hashed = hash_files(files, root=root)
    manifest = _manifest()
    mismatched = [k for k, v in hashed["files"].items() if manifest.get(k) not in (None, v)]
    unknown = [k for k in hashed["files"] if k not in manifest]
    return {"dataset": dataset_name, "root": str(root),
            "splits": {k: item_names(v) for k, v in splits.items()},
            "files": hashed["files"], "digest": hashed["digest"],
            "manifest_match": not mismatched and not unknown,
            "manifest_mismatched": mismatched, "not_in_manifest": unknown}


@dataclass
class Splits:
    """Datasets of one training run: ``train``; ``val`` (classifier selection) or None; ``test``
    (the metrics of the results file); ``calibration``: training images without augmentation for
    BN recalibration, or None; ``extra_tests``: more test sets by name (classifiers: the other
    datasets' test splits and the cross-source tests), evaluated after ``test``."""

    train: Dataset
    val: Optional[Dataset]
    test: Dataset
    calibration: Optional[Dataset] = None
    extra_tests: Dict[str, Dataset] = field(default_factory=dict)
    test_name: Optional[str] = None  # the dataset of ``test`` where there are several

    def as_dict(self) -> Dict[str, Dataset]:
        parts = {k: v for k, v in (("train", self.train), ("val", self.val), ("test", self.test))
                 if v is not None}
        parts.update({f"test:{name}": data for name, data in self.extra_tests.items()})
        return parts


def _calibration(unaugmented: Dataset, profile: Profile) -> Optional[Dataset]:
    """Up to ``profile.bn_recalibration`` evenly spaced training images, in memory."""
    if not profile.bn_recalibration:
        return None
    keep = evenly_spaced(len(unaugmented), profile.bn_recalibration)
    return MemoryDataset(unaugmented if keep is None else Subset(unaugmented, keep))


def _maybe_preload(dataset: Dataset, profile: Profile) -> Dataset:
    return MemoryDataset(dataset) if profile.preload else dataset


def segmentation_splits(name: str, recipe: Recipe, profile: Profile, root=None) -> Splits:
    """MedSeg (or another segmentation dataset) train/test at the recipe's size."""
    size = recipe.size
    n_train = len(SegmentationSlices(name, "train", size, root=root))
    n_test = len(SegmentationSlices(name, "test", size, root=root))
    train_idx, test_idx = evenly_spaced(n_train, recipe.max_train), evenly_spaced(n_test, recipe.max_eval)
    train = SegmentationSlices(name, "train", size, augment=recipe.augment, root=root,
                               indices=train_idx)
    if not recipe.augment:
        train = _maybe_preload(train, profile)
    test: Dataset = SegmentationSlices(name, "test", size, root=root, indices=test_idx)
    gt_size = profile.seg_eval_size or size
    if gt_size != size:
        test = SizedMasks(test, SegmentationSlices(name, "test", gt_size, root=root, indices=test_idx))
    plain = SegmentationSlices(name, "train", size, root=root, indices=train_idx)
    return Splits(train=train, val=None, test=_maybe_preload(test, profile),
                  calibration=_calibration(plain, profile))


def classification_splits(names: Union[str, Sequence[str]], recipe: Recipe, profile: Profile,
                          pixel_supervised: bool, lesion_dataset: str = "medseg", root=None,
                          cross_tests: Sequence[str] = ()) -> Splits:
    """Classifier splits at the recipe's size: ``train`` / ``val`` = the union of the train / val
    splits of the datasets ``names`` (``recipe.max_train`` / ``max_eval`` evenly spaced images of
    each); ``test`` = the first dataset's test split, ``extra_tests`` = the other datasets' test
    splits and the ``cross_tests`` (``"covid-ct-md"``: the labelled slices of its patients and every
    slice of its normal patients, :class:`~jcs.data.CTMDSlices`). With ``pixel_supervised`` the
    training set also holds the ``lesion_dataset`` TRAIN slices (label 1, with masks)."""
    names = [names] if isinstance(names, str) else list(names)
    size = recipe.size

    def split(name: str, part: str, count: Optional[int], augment: bool) -> ClassificationSlices:
        total = len(ClassificationSlices(name, part, size, root=root))
        return ClassificationSlices(name, part, size, augment=augment, root=root,
                                    indices=evenly_spaced(total, count))

    def union(part: str, count: Optional[int], augment: bool) -> Dataset:
        parts = [split(name, part, count, augment) for name in names]
        return parts[0] if len(parts) == 1 else ConcatDataset(parts)

    def training_set(augment: bool) -> Dataset:
        train: Dataset = union("train", recipe.max_train, augment)
        if pixel_supervised:
            n_lesion = len(SegmentationSlices(lesion_dataset, "train", size, root=root))
            lesions = SegmentationSlices(lesion_dataset, "train", size, augment=augment, root=root,
                                         indices=evenly_spaced(n_lesion, recipe.max_train))
            train = ConcatDataset([WithEmptyMask(train, size),
                                   LesionSlicesAsPositives(lesions, lesion_dataset)])
        return train

    def cross_test(name: str) -> Dataset:
        if name != "covid-ct-md":
            raise ValueError(f"cross-source test {name!r}: only 'covid-ct-md' is known")
        slices = CTMDSlices(size=size, root=root)
        keep = evenly_spaced(len(slices), recipe.max_eval)
        return slices if keep is None else Subset(slices, keep)

    train = training_set(recipe.augment)
    if not recipe.augment:
        train = _maybe_preload(train, profile)
    val = _maybe_preload(union("val", recipe.max_eval, False), profile)
    tests = {name: split(name, "test", recipe.max_eval, False) for name in names}
    tests.update({name: cross_test(name) for name in cross_tests})
    tests = {name: _maybe_preload(data, profile) for name, data in tests.items()}
    first = names[0]
    return Splits(train=train, val=val, test=tests.pop(first), test_name=first,
                  calibration=_calibration(training_set(False), profile), extra_tests=tests)


def build_splits(task: str, dataset: Optional[str], recipe: Recipe, profile: Profile,
                 pixel_supervised: bool = False, root=None) -> Splits:
    """The splits of a run of ``task`` on registry dataset ``dataset`` (default per task)."""
    name = dataset or DEFAULT_DATASET[task]
    if task == "segmentation":
        if pixel_supervised:
            raise ValueError("pixel_supervised applies to classifiers only")
        return segmentation_splits(name, recipe, profile, root)
    return classification_splits(name.split("+"), recipe, profile, pixel_supervised, root=root,
                                 cross_tests=profile.cls_cross_tests)


def custom_splits(splits: Mapping[str, Dataset]) -> Splits:
    """Splits given directly as ``{"train": ..., "test": ..., "val": ...}`` (e.g. synthetic data)."""
    missing = [k for k in ("train", "test") if k not in splits]
    if missing:
        raise ValueError(f"dataset dict needs keys 'train' and 'test' (missing {missing}); "
                         f"got {sorted(splits)}")
    return Splits(train=splits["train"], val=splits.get("val"), test=splits["test"])


def fixed_names(names: Sequence[str], count: int) -> List[str]:
    """``count`` names spread evenly over ``names`` (the slices previewed as PNG)."""
    idx = evenly_spaced(len(names), count)
    return list(names) if idx is None else [names[i] for i in idx]
