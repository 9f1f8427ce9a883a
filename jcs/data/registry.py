"""Registry of the datasets used by the companion: where each comes from, its licence, citation,
how to read it, and the sha256 of every file of the local copy (``manifests/<name>.sha256``).

Local copies live under :func:`data_root` (``$JCS_DATA_DIR``, else ``<repo>/data``), one folder per
dataset (``DatasetInfo.folder``). Files that are byte-identical to a file of a public GitHub
repository at a pinned commit get a raw-file URL; files that were converted or written when the copy
was prepared are "derived" and carry a note on how they were made (see ``data/README.md``). Files
that ship inside a package's source archive on PyPI (``pyradiomics-lungs``) are fetched through pip,
the archive pinned by version and sha256.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from .errors import DatasetNotFoundError, EmptyFolderError

REPO_ROOT = Path(__file__).resolve().parents[2]
RAW_URL = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"

_COPY_NOTES = "notes written when the local copy was prepared (not upstream files; see data/README.md)"


@dataclass(frozen=True)
class DatasetFile:
    """One file of a dataset copy: ``path`` relative to the dataset folder (``/`` separators)."""

    path: str
    sha256: str
    url: str | None
    derivation: str | None


@dataclass(frozen=True, eq=False)
class DatasetInfo:
    """What the registry knows about one dataset.

    ``upstream`` maps a local path prefix to the path prefix of the byte-identical file in
    ``repo`` at ``commit``; ``derived`` maps a local fnmatch pattern to how such files were made
    (checked first). ``how_to_get`` explains how to obtain data that cannot be downloaded.
    ``package`` (a pip requirement, ``name==version``), ``package_sha256`` and ``members`` (local
    path -> path inside the package's source archive) describe data fetched through pip.
    """

    name: str
    folder: str
    title: str
    description: str
    source: str
    licence: str
    citation: str
    reader: str
    repo: str | None = None
    commit: str | None = None
    upstream: dict[str, str] = field(default_factory=dict)
    derived: dict[str, str] = field(default_factory=dict)
    how_to_get: str | None = None
    package: str | None = None
    package_sha256: str | None = None
    members: dict[str, str] = field(default_factory=dict)

    @property
    def downloadable(self) -> bool:
        return self.repo is not None or self.package is not None

    def derivation_of(self, path: str) -> str | None:
        """How the local file ``path`` was made, or None if it is an upstream file."""
        for pattern, note in self.derived.items():
            if fnmatch.fnmatchcase(path, pattern):
                return note
        return None

    def upstream_path(self, path: str) -> str | None:
        """Path of ``path``'s byte-identical file in ``repo``, or None if it is derived."""
        if self.derivation_of(path) is not None:
            return None
        for prefix in sorted(self.upstream, key=len, reverse=True):
            if path.startswith(prefix):
                return self.upstream[prefix] + path[len(prefix):]
        return None

    def url_for(self, path: str) -> str | None:
        """Raw-file URL of ``path`` at the pinned commit, or None if it is derived."""
        upstream = self.upstream_path(path)
        if upstream is None or self.repo is None:
            return None
        return RAW_URL.format(repo=self.repo, commit=self.commit, path=quote(upstream, safe="/"))

    def manifest(self) -> dict[str, str]:
        """``{relative path: sha256}`` of every file of the local copy (empty for ``covid-cs``)."""
        return dict(_load_manifest(self.name)) if self.downloadable else {}

    def files(self) -> list[DatasetFile]:
        return [DatasetFile(path, digest, self.url_for(path), self.derivation_of(path))
                for path, digest in self.manifest().items()]


@lru_cache(maxsize=None)
def _load_manifest(name: str) -> tuple[tuple[str, str], ...]:
    text = resources.files(__package__).joinpath("manifests", f"{name}.sha256").read_text("utf-8")
    entries = []
    for line in text.splitlines():
        if line.strip():
            digest, path = line.split("  ", 1)
            entries.append((path, digest))
    return tuple(entries)


_JCS_REPO, _JCS_COMMIT = "yuhuan-wu/JCS", "fa4bb6ae452c6aa042db8c762822e72df65d9519"
_INFNET_REPO, _INFNET_COMMIT = "DengPingFan/Inf-Net", "fb3a03b5b2f70642fbf2a12cde9e5c41b5ebd28e"
_INFNET_TRAIN = "Dataset/TrainingSet/"
_INFNET_TEST = "Dataset/TestingSet/"
_CVT_REPO = "Coronavirus-Visualization-Team/CVT_COVID-CT-CNN"
_SARSCOV2_COMMIT = "24d2b4890756bf6bdbda8236a89518ccbaf7dabd"

#: The split of ``sarscov2-ct``, the one place it is defined: split -> (first, last) file number N
#: of ``COVID/Covid (N).png`` and ``NonCOVID/Non-Covid (N).png``, bounds inclusive, ``None`` = no
#: upper bound; the same blocks for both classes. The files carry no patient ID and neighbouring
#: numbers are often slices of one patient, so the split is by blocks of numbers, never random (a
#: random split would put slices of one patient in both train and test). Read by
#: ``ClassificationSlices("sarscov2-ct", split)`` (:func:`jcs.data.datasets.sarscov2_split_of`).
SARSCOV2_BLOCKS: dict[str, tuple[int, int | None]] = {
    "train": (1, 800), "val": (801, 900), "test": (901, None)}


def _describe_blocks(blocks: dict[str, tuple[int, int | None]]) -> str:
    return ", ".join(f"{split} N {low}-{high}" if high is not None else f"{split} N >= {low}"
                     for split, (low, high) in blocks.items())


_JCS_CITATION = ("Y.-H. Wu, S.-H. Gao, J. Mei, J. Xu, D.-P. Fan, R.-G. Zhang, M.-M. Cheng. JCS: An "
                 "explainable COVID-19 diagnosis system by joint classification and segmentation. "
                 "IEEE TIP 30:3113-3126, 2021. doi:10.1109/TIP.2021.3058783")

DATASETS: dict[str, DatasetInfo] = {info.name: info for info in [
    DatasetInfo(
        name="medseg",
        folder="medseg_covid19_ct100",
        title="MedSeg COVID-19 CT segmentation dataset (100 axial slices), PNG copy of the JCS repo",
        description=(
            "100 chest-CT slices (512x512, 8-bit) of >40 COVID-19 patients with radiologist lesion "
            "masks: masks_binary/ {0,1} (GGO, consolidation, pleural effusion merged) and, for the 98 "
            "slices also in Inf-Net, masks_multiclass_reconstructed/ (1 GGO, 2 consolidation, 3 other). "
            "Default split: Inf-Net's 50 train / 48 test (splits/infnet_split.csv; slices 22 and 48 unused)."),
        source=("MedSeg, http://medicalsegmentation.com/covid19/ ; Figshare 'MedSeg Covid Dataset 1', "
                "https://doi.org/10.6084/m9.figshare.13521488 (tr_im.nii.gz, tr_mask.nii.gz); PNG copy: "
                f"https://github.com/{_JCS_REPO}/tree/{_JCS_COMMIT}/data/COVID-19-CT100"),
        licence=("Unverified: MedSeg data reportedly CC0; the JCS repo states no licence; the multi-class "
                 "masks derive from Inf-Net's COVID-SemiSeg (non-commercial use only)."),
        citation=("MedSeg COVID-19 CT segmentation dataset, http://medicalsegmentation.com/covid19/ ; "
                  + _JCS_CITATION),
        reader="SegmentationSlices('medseg', split); read_slice / read_mask / read_label_map",
        repo=_JCS_REPO,
        commit=_JCS_COMMIT,
        upstream={"images/": "data/COVID-19-CT100/tr_im/",
                  "masks_binary/": "data/COVID-19-CT100/tr_mask_new/"},
        derived={
            "splits/infnet_split.csv": (
                "table MedSeg index -> Inf-Net split, built from the file names of covid-semiseg; "
                "`fetch` rebuilds it when covid-semiseg is present (run `jcs data fetch covid-semiseg` "
                "first) or call jcs.data.make_infnet_split()"),
            "splits/jcs_demo_*.txt": (
                f"data/COVID-19-CT100/train.txt and test.txt of {_JCS_REPO}@{_JCS_COMMIT[:7]} with CRLF "
                "line ends changed to LF (the authors' demo split: test is a subset of train, unused here)"),
            "masks_multiclass_reconstructed/*": (
                "multi-class masks rebuilt by locating Inf-Net's cropped multi-class GT inside each "
                "512x512 slice (provenance/reconstruct_multiclass.py); `fetch` does not rebuild them: "
                "copy them from a prepared copy of the data"),
            "provenance/*": "script and offsets of the multi-class reconstruction (prepared copy only)",
            "README.md": _COPY_NOTES,
            "LICENSE_NOTE.md": _COPY_NOTES,
        },
    ),
    DatasetInfo(
        name="covid-semiseg",
        folder="infnet_covid_semiseg",
        title="Inf-Net COVID-SemiSeg, doctor-labelled part (cropped MedSeg slices)",
        description=(
            "The MedSeg slices cropped to the lungs and transposed, as used by Inf-Net: train 50 / test "
            "48 (Imgs/*.jpg, GT/*.png {0,255}, GT_multiclass/*.png {0 bg, 1 GGO, 2 consolidation}, "
            "train/Edge, test/GT_multiclass_ggo and _consolidation). File stem = MedSeg index."),
        source=(f"https://github.com/{_INFNET_REPO}/tree/{_INFNET_COMMIT}/Dataset (deleted from the "
                "repo one commit later; only reachable at this commit)"),
        licence="COVID-SemiSeg: non-commercial use only (Inf-Net README); underlying data: MedSeg.",
        citation=("D.-P. Fan, T. Zhou, G.-P. Ji, Y. Zhou, G. Chen, H. Fu, J. Shen, L. Shao. Inf-Net: "
                  "Automatic COVID-19 lung infection segmentation from CT images. IEEE TMI 39(8), 2020; "
                  "and MedSeg (see 'medseg')"),
        reader="SegmentationSlices('covid-semiseg', split); read_label_map for GT_multiclass",
        repo=_INFNET_REPO,
        commit=_INFNET_COMMIT,
        upstream={
            "train/Imgs/": _INFNET_TRAIN + "LungInfection-Train/Doctor-label/Imgs/",
            "train/GT/": _INFNET_TRAIN + "LungInfection-Train/Doctor-label/GT/",
            "train/Edge/": _INFNET_TRAIN + "LungInfection-Train/Doctor-label/Edge/",
            "train/GT_multiclass/": _INFNET_TRAIN + "MultiClassInfection-Train/GT/",
            "test/Imgs/": _INFNET_TEST + "LungInfection-Test/Imgs/",
            "test/GT/": _INFNET_TEST + "LungInfection-Test/GT/",
            "test/GT_multiclass/": _INFNET_TEST + "MultiClassInfection-Test/GT/",
            "test/GT_multiclass_ggo/": _INFNET_TEST + "MultiClassInfection-Test/GT-1/",
            "test/GT_multiclass_consolidation/": _INFNET_TEST + "MultiClassInfection-Test/GT-2/",
        },
        derived={"README.md": _COPY_NOTES, "LICENSE_NOTE.md": _COPY_NOTES},
    ),
    DatasetInfo(
        name="ucsd-covid-ct",
        folder="ucsd_covid_ct",
        title="UCSD-AI4H COVID-CT (349 COVID + 397 non-COVID CT images) with the official split",
        description=(
            "CT images cropped from papers and public sites (heterogeneous sizes, not HU, no masks). "
            "Official split (Data-split/): COVID 191/60/98, non-COVID 234/58/105 (train/val/test); "
            "meta/ holds the patient metadata."),
        source=("https://github.com/UCSD-AI4H/COVID-CT (Images-processed/CT_COVID.zip, CT_NonCOVID.zip, "
                "Data-split/); byte-identical unzipped copy in "
                "https://github.com/Coronavirus-Visualization-Team/CVT_COVID-CT-CNN"),
        licence=("No open licence: 'all copyrights of the data belong to the authors and publishers of "
                 "these papers' (UCSD-AI4H README). Do not redistribute without review."),
        citation=("X. Zhao, Y. Zhang, X. He, P. Xie. COVID-CT-Dataset: a CT scan dataset about COVID-19. "
                  "arXiv:2003.13865, 2020"),
        reader="ClassificationSlices('ucsd-covid-ct', split)",
        repo="Coronavirus-Visualization-Team/CVT_COVID-CT-CNN",
        commit="c2cf178da79e3b14a9a9591c35482c5ad042e241",
        upstream={
            "CT_COVID/": "CT_COVID/",
            "CT_NonCOVID/": "CT_NonCOVID/",
            "meta/": "Meta/",
            "Data-split/COVID/train": "TrainingTXT/train",
            "Data-split/COVID/val": "ValidationTXT/val",
            "Data-split/COVID/test": "TestingTXT/test",
            "Data-split/NonCOVID/train": "TrainingTXT/train",
            "Data-split/NonCOVID/val": "ValidationTXT/val",
            "Data-split/NonCOVID/test": "TestingTXT/test",
        },
        derived={"README.md": _COPY_NOTES, "LICENSE_NOTE.md": _COPY_NOTES},
    ),
    DatasetInfo(
        name="covid-ct-md",
        folder="covid_ct_md_sample",
        title="COVID-CT-MD sample: 6 volumetric scans (2 COVID-19, 2 CAP, 2 normal) with slice labels",
        description=(
            "Per patient <diagnosis>/<id>/slice_NNN.png (256x256, lung window, superior -> inferior) "
            "and meta.json; labels/patients.csv, labels/slice_labels.csv (infection + lobe flags for "
            "the COVID/CAP patients); dicom/P002/ the 133 original DICOM files (JPEG lossless) of "
            "patient P002."),
        source=("https://github.com/ShahinSHH/COVID-CT-MD ('Sample data/', Index.csv, label .npy); full "
                "dataset: Figshare collection 5129081, https://doi.org/10.6084/m9.figshare.c.5129081"),
        licence="Unverified: the repo states no licence; the Figshare collection is likely CC BY 4.0.",
        citation=("P. Afshar et al. COVID-CT-MD, COVID-19 computed tomography scan dataset applicable in "
                  "machine learning and deep learning. Scientific Data 8:121, 2021. "
                  "doi:10.1038/s41597-021-00900-3"),
        reader="CTMDPatients(), CTMDSlices(patients); read_volume(<folder>/dicom/P002)",
        repo="ShahinSHH/COVID-CT-MD",
        commit="52699790020e0d5410c3158fe588e38505769349",
        upstream={
            "dicom/P002/": "Sample data/COVID-19 subjects/P002/",
            "labels/Index.csv": "Index.csv",
            "labels/Slice-level-labels-updated-1.npy": "Slice-level-labels-updated-1.npy",
            "labels/Lobe-level-labels-updated-1.npy": "Lobe-level-labels-updated-1.npy",
        },
        derived={
            "COVID-19/*": (
                "PNG slices converted from the DICOM series in 'Sample data/' (2x2 mean of HU, lung "
                "window -600/1500, InstanceNumber order) by labels/convert_ctmd.py; `fetch` downloads "
                "only P002's DICOM and does not convert: copy them from a prepared copy of the data"),
            "CAP/*": "as COVID-19/*: converted PNG slices (labels/convert_ctmd.py), not made by fetch",
            "Normal/*": "as COVID-19/*: converted PNG slices (labels/convert_ctmd.py), not made by fetch",
            "labels/patients.csv": "written by labels/convert_ctmd.py from Index.csv and the .npy labels",
            "labels/slice_labels.csv": "written by labels/convert_ctmd.py from Index.csv and the .npy labels",
            "labels/convert_ctmd.py": _COPY_NOTES,
            "README.md": _COPY_NOTES,
            "LICENSE_NOTE.md": _COPY_NOTES,
        },
    ),
    DatasetInfo(
        name="covid-cs-examples",
        folder="jcs_covid_cs_examples",
        title="8 COVID-CS demo slices from the JCS repository (COVID-19 positive, no masks)",
        description="512x512 8-bit JPG slices named <study-hash>_<slice>.jpg, used by the authors' demo.",
        source=f"https://github.com/{_JCS_REPO}/tree/{_JCS_COMMIT}/examples",
        licence="Unknown (the JCS repo has no licence; COVID-CS images are otherwise not shared). Demo only.",
        citation=_JCS_CITATION,
        reader="read_slice(<folder>/<name>.jpg)",
        repo=_JCS_REPO,
        commit=_JCS_COMMIT,
        upstream={"": "examples/"},
        derived={"README.md": _COPY_NOTES},
    ),
    DatasetInfo(
        name="sarscov2-ct",
        folder="sarscov2_ct_sample",
        title=("SARS-CoV-2 CT-scan dataset (Soares et al.), 1-in-4 sample: 313 COVID-19 + 308 "
               "non-COVID real CT slices"),
        description=(
            "Axial chest-CT slices of patients of hospitals in Sao Paulo (PNG, 8-bit gray stored as "
            "RGB/RGBA, widths about 200-500 px): COVID/Covid (N).png (label 1) and "
            "NonCOVID/Non-Covid (N).png (label 0), every N = 1 mod 4 of the full set (1,252 + 1,229 "
            "slices). No patient IDs; neighbouring numbers are often one patient, so the split is by "
            f"blocks of the file number N, both classes alike: {_describe_blocks(SARSCOV2_BLOCKS)} "
            "(jcs.data.registry.SARSCOV2_BLOCKS), never random."),
        source=(f"https://github.com/{_CVT_REPO}/tree/{_SARSCOV2_COMMIT}/Data/master-data (COVID/, "
                "NonCOVID/); the dataset is also distributed on Kaggle"),
        licence=("Commonly quoted as CC BY-NC-SA 4.0 (non-commercial, share alike; unverified at the "
                 "source). Do not ship the images with the project."),
        citation=("E. Soares, P. Angelov, S. Biaso, M. Higa Froes, D. Kanda Abe. SARS-CoV-2 CT-scan "
                  "dataset: a large dataset of real patients CT scans for SARS-CoV-2 identification. "
                  "medRxiv 2020. doi:10.1101/2020.04.24.20078584"),
        reader="ClassificationSlices('sarscov2-ct', split)",
        repo=_CVT_REPO,
        commit=_SARSCOV2_COMMIT,
        upstream={"COVID/": "Data/master-data/COVID/", "NonCOVID/": "Data/master-data/NonCOVID/"},
        derived={"README.md": _COPY_NOTES},
    ),
    DatasetInfo(
        name="pyradiomics-lungs",
        folder="pyradiomics_lung_ct",
        title="Two real chest CT volumes (lung1, lung2) from the PyRadiomics 3.0.1 source archive",
        description=(
            "lung1_image.nrrd (512x512x48) and lung2_image.nrrd (512x512x61): axial chest CT in HU, "
            "5 mm slices, 0.57 / 0.63 mm pixels, gzip NRRD (LPS space): PyRadiomics' lung test "
            "cases (each with a labelled finding in the archive, not copied). The archive gives no "
            "diagnosis; the project treats them as non-COVID patients."),
        source=("PyPI source archive pyradiomics-3.0.1.tar.gz (sha256 47c57f44...), folder "
                "pyradiomics-3.0.1/data/ (https://pypi.org/project/pyradiomics/3.0.1/); fetched "
                "with pip, which needs numpy and versioneer to prepare the archive's metadata"),
        licence=("PyRadiomics is BSD-3-Clause (Harvard Medical School); the archive states no "
                 "separate licence or origin for the images (unverified). Not redistributed here."),
        citation=("J. J. M. van Griethuysen et al. Computational radiomics system to decode the "
                  "radiographic phenotype. Cancer Research 77(21):e104-e107, 2017. "
                  "doi:10.1158/0008-5472.CAN-17-0339"),
        reader="read_volume(<folder>/lung1_image.nrrd)",
        package="pyradiomics==3.0.1",
        package_sha256="47c57f441d6cb7973fa3b2ea48d3948df78e3348e1c69e1e2ff19001601fc2f5",
        members={"lung1_image.nrrd": "pyradiomics-3.0.1/data/lung1_image.nrrd",
                 "lung2_image.nrrd": "pyradiomics-3.0.1/data/lung2_image.nrrd"},
    ),
    DatasetInfo(
        name="covid-cs",
        folder="COVID-CS",
        title="COVID-CS, the paper's own dataset (not public)",
        description=(
            "144,167 CT images of 750 patients; 3,855 images of 200 COVID-19 patients with pixel-level "
            "masks. The raw CT images were not released. Expected layout (authors' code): "
            "train.txt / test.txt with one '<image relpath> <label relpath>' line per image, paths "
            "relative to the COVID-CS folder."),
        source="https://github.com/yuhuan-wu/JCS (README, section on the COVID-CS dataset)",
        licence="Not released; terms set by the authors on request.",
        citation=_JCS_CITATION,
        reader="SegmentationSlices('covid-cs', split)",
        how_to_get=(
            "COVID-CS cannot be downloaded: the raw CT images are not public (confidential agreement "
            "with the data provider). The segmentation annotations and train/test lists are at "
            "https://drive.google.com/file/d/1U489DgHNqlwLJ9VZa6qssf65SV9F45jc ; for the images, "
            "contact the authors (see https://github.com/yuhuan-wu/JCS). Place the data as "
            "<data root>/COVID-CS/ with train.txt and test.txt ('<image> <label>' per line)."),
    ),
]}


def list_datasets() -> list[str]:
    """Names of the registered datasets."""
    return list(DATASETS)


def get_dataset_info(name: str) -> DatasetInfo:
    """Registry entry of ``name``; unknown names raise an error listing the valid ones."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DatasetNotFoundError(
            f"Unknown dataset {name!r}. Valid names: {', '.join(DATASETS)}.") from None


def data_root() -> Path:
    """Folder holding the local dataset copies: ``$JCS_DATA_DIR``, else ``<repo>/data``."""
    env = os.environ.get("JCS_DATA_DIR")
    return Path(env).expanduser() if env else REPO_ROOT / "data"


def dataset_path(name: str, root: str | os.PathLike | None = None) -> Path:
    """Local folder of dataset ``name`` under ``root`` (default :func:`data_root`).

    Raises :class:`DatasetNotFoundError` (with how to get the data) if the folder is absent and
    :class:`EmptyFolderError` if it is empty.
    """
    info = get_dataset_info(name)
    base = Path(root) if root is not None else data_root()
    path = base / info.folder
    how = (info.how_to_get if not info.downloadable else
           f"Download it with `jcs data fetch {name}` (into {base}), or set JCS_DATA_DIR to a folder "
           f"that contains {info.folder}/ (see data/README.md).")
    if not path.is_dir():
        raise DatasetNotFoundError(f"Dataset {name!r} not found: no folder {path}. {how}")
    if not any(path.iterdir()):
        raise EmptyFolderError(f"Dataset folder {path} is empty. {how}")
    return path
