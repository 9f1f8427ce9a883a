"""The data we can use beside the paper's COVID-CS (paper Sec. III, Table III, Figs. 5 and 7):
composition, scanners, slice geometry, lesion areas, demographics and example slices, computed
from the local dataset copies (``jcs.data``)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from jcs import paper
from jcs.data import CTMDPatients, dataset_path, read_mask, read_slice
from jcs.data.errors import DataError

__all__ = [
    "covid_cs_composition", "data_composition", "scanner_table", "medseg_lesion_areas",
    "ctmd_geometry", "ucsd_demographics", "plot_example_slices", "plot_covid_cs_examples",
    "plot_data_distributions",
]

PathLike = Optional[str | Path]


def _infnet_split(root: PathLike) -> pd.DataFrame:
    folder = dataset_path("medseg", root)
    table = pd.read_csv(folder / "splits" / "infnet_split.csv")
    table["folder"] = str(folder)
    return table


def _ucsd_split_counts(root: PathLike) -> dict[str, dict[str, int]]:
    folder = dataset_path("ucsd-covid-ct", root)
    counts: dict[str, dict[str, int]] = {}
    for group in ("COVID", "NonCOVID"):
        for split in ("train", "val", "test"):
            path = folder / "Data-split" / group / f"{split}CT_{group}.txt"
            names = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            counts.setdefault(group, {})[split] = len(names)
    return counts


def covid_cs_composition() -> pd.DataFrame:
    """The paper's COVID-CS composition (paper Sec. III; :data:`jcs.paper.COVID_CS`)."""
    return paper.COVID_CS.to_frame()


def data_composition(root: PathLike = None) -> pd.DataFrame:
    """What each public dataset gives us, next to the COVID-CS subset it stands in for.

    Columns: ``task``, ``paper (COVID-CS)``, ``ours``, ``dataset``, ``patients``, ``images``,
    ``labels`` (counts read from the local copies)."""
    split = _infnet_split(root)
    n_train = int((split["infnet_split"] == "train").sum())
    n_test = int((split["infnet_split"] == "test").sum())
    ucsd = _ucsd_split_counts(root)
    ctmd = CTMDPatients(root)
    n_ctmd_slices = sum(len(p["slice_paths"]) for p in ctmd)
    labelled = [p for p in ctmd if p["slice_labels"] is not None]
    examples = sorted(dataset_path("covid-cs-examples", root).glob("*.jpg"))
    cs = {r["subset"]: r for r in paper.COVID_CS.records()}
    rows = [
        ("segmentation training", cs["segmentation training (part of the annotated)"], "medseg",
         "> 40 (IDs unknown)", n_train, "radiologist lesion masks"),
        ("segmentation test", cs["segmentation test (part of the annotated)"], "medseg",
         "(same > 40)", n_test, "radiologist lesion masks"),
        ("slice classification (train / val / test)", None, "ucsd-covid-ct",
         "≈ 380 (from figure metadata)",
         sum(sum(v.values()) for v in ucsd.values()),
         "image labels; split " + " / ".join(
             str(ucsd["COVID"][s] + ucsd["NonCOVID"][s]) for s in ("train", "val", "test"))),
        ("patient-level diagnosis test", cs["positive, patient-level (classification test)"],
         "covid-ct-md", len(ctmd), n_ctmd_slices,
         f"patient labels; slice labels for {len(labelled)} patients"),
        ("demo slices (activation maps)", None, "covid-cs-examples", "unknown", len(examples),
         "COVID-19 positive, no masks"),
    ]
    out = []
    for task, ref, name, patients, images, labels in rows:
        paper_text = ("—" if ref is None
                      else f"{ref['patients']} patients / {ref['images']:,} images")
        out.append({"task": task, "paper (COVID-CS)": paper_text, "dataset": name,
                    "patients": patients, "images": images, "labels": labels})
    return pd.DataFrame(out)


def _dicom_headers(folder: Optional[Path]) -> list:
    if folder is None:
        return []
    import pydicom

    return [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(folder.glob("*.dcm"))]


def scanner_table(root: PathLike = None) -> pd.DataFrame:
    """Table III (CT scanners, number of positive cases) of the paper beside ours.

    Ours: the COVID-CT-MD patients (``manufacturer`` from ``meta.json``, the model name from the
    DICOM headers where we have them); MedSeg and UCSD give no scanner information."""
    rows = [{"source": "paper (COVID-CS)", "manufacturer": r["manufacturer"],
             "product": r["product"], "cases": r["cases"]} for r in paper.TABLE3.records()]
    counts: dict[tuple[str, str], int] = {}
    for patient in CTMDPatients(root):
        meta_path = patient["slice_paths"][0].parent / "meta.json"
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
        headers = _dicom_headers(patient["dicom_dir"])
        maker = meta.get("manufacturer") or (headers[0].get("Manufacturer") if headers else None)
        model = str(headers[0].get("ManufacturerModelName")) if headers else "model not recorded"
        key = (str(maker or "unknown"), model)
        counts[key] = counts.get(key, 0) + 1
    for (maker, model), n in sorted(counts.items()):
        rows.append({"source": "ours (COVID-CT-MD sample, all diagnoses)", "manufacturer": maker,
                     "product": model, "cases": n})
    rows.append({"source": "ours (MedSeg, UCSD)", "manufacturer": "not recorded",
                 "product": "not recorded", "cases": None})
    table = pd.DataFrame(rows)
    table["cases"] = table["cases"].astype("Int64")
    return table


def medseg_lesion_areas(root: PathLike = None) -> pd.DataFrame:
    """Lesion area of every MedSeg slice (pixels of the 512×512 binary mask and the fraction of
    the image), with its Inf-Net split. The pixel spacing of MedSeg is unknown (SIRM JPGs), so
    no area in mm² can be given."""
    split = _infnet_split(root)
    rows = []
    for rec in split.itertuples():
        mask = read_mask(Path(rec.folder) / rec.mask_binary)
        area = int(mask.sum())
        rows.append({"name": Path(rec.image).stem, "split": rec.infnet_split, "lesion_px": area,
                     "lesion_fraction": area / mask.size})
    return pd.DataFrame(rows)


def ctmd_geometry(root: PathLike = None) -> pd.DataFrame:
    """Per COVID-CT-MD patient: diagnosis, number of slices, slice step (median difference of the
    DICOM slice locations) and thickness, in-plane spacing (original DICOM and our PNG copies),
    scanner, and number of infected slices where labelled. Patients with DICOM files are read
    from their headers too (``dicom_*`` columns)."""
    rows = []
    for patient in CTMDPatients(root):
        meta_path = patient["slice_paths"][0].parent / "meta.json"
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
        locations = np.asarray(meta.get("slice_location") or [], dtype=float)
        step = float(np.median(np.abs(np.diff(locations)))) if len(locations) > 1 else np.nan
        labels = patient["slice_labels"]
        row = {
            "patient": patient["id"], "diagnosis": patient["diagnosis"],
            "slices": len(patient["slice_paths"]),
            "infected_slices": int(labels.sum()) if labels is not None else None,
            "slice_step_mm": step,
            "slice_thickness_mm": meta.get("slice_thickness_mm"),
            "pixel_mm_original": (meta.get("original_pixel_spacing_mm") or [np.nan])[0],
            "pixel_mm_png": (meta.get("png_pixel_spacing_mm") or [np.nan])[0],
            "manufacturer": meta.get("manufacturer"),
        }
        headers = _dicom_headers(patient["dicom_dir"])
        if headers:
            row["dicom_files"] = len(headers)
            row["dicom_thickness_mm"] = float(headers[0].get("SliceThickness"))
            row["dicom_model"] = str(headers[0].get("ManufacturerModelName"))
        rows.append(row)
    table = pd.DataFrame(rows)
    for column in ("infected_slices", "dicom_files"):
        if column in table:
            table[column] = table[column].astype("Int64")
    return table


def ucsd_demographics(root: PathLike = None) -> pd.DataFrame:
    """Age and gender of the UCSD COVID-19 images' patients (metadata sheet; one row per distinct
    patient ID with a value; many images have none)."""
    folder = dataset_path("ucsd-covid-ct", root)
    sheet = pd.read_excel(folder / "meta" / "COVID-CT-MetaInfo.xlsx")
    table = sheet[["Patient ID", "Age", "Gender"]].copy()
    table.columns = ["patient", "age", "gender"]
    table["age"] = pd.to_numeric(table["age"], errors="coerce")
    table["gender"] = table["gender"].astype("string").str.strip().str.upper().str[:1]
    table.loc[~table["gender"].isin(["M", "F"]), "gender"] = pd.NA
    return table.dropna(subset=["patient"]).drop_duplicates("patient").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# Figures


def _contour(ax, mask: np.ndarray, color: str = "#ff3b30") -> None:
    if mask.any():
        ax.contour(mask.astype(float), levels=[0.5], colors=[color], linewidths=1.0)


def plot_example_slices(root: PathLike = None):
    """Fig. 5-like examples: a CAP slice (COVID-CT-MD, infected slice of the first CAP patient)
    and COVID-19 slices with mild / medium / severe lesion load (MedSeg slices at the 20th, 50th
    and 90th percentile of lesion fraction, lesion mask outlined in red)."""
    import matplotlib.pyplot as plt

    areas = medseg_lesion_areas(root)
    areas = areas[areas["lesion_px"] > 0].sort_values("lesion_fraction").reset_index(drop=True)
    picks = [(label, areas.iloc[int(q * (len(areas) - 1))])
             for label, q in (("mild", 0.2), ("medium", 0.5), ("severe", 0.9))]
    folder = dataset_path("medseg", root)
    cap = next(p for p in CTMDPatients(root) if p["diagnosis"] == "CAP")
    labels = cap["slice_labels"]
    if labels is not None:
        infected = np.flatnonzero(labels)
    else:
        infected = np.array([len(cap["slice_paths"]) // 2])
    cap_index = int(infected[len(infected) // 2])

    fig, axes = plt.subplots(1, 4, figsize=(12, 3.4))
    axes[0].imshow(read_slice(cap["slice_paths"][cap_index]), cmap="gray")
    axes[0].set_title(f"CAP (COVID-CT-MD {cap['id']}, slice {cap_index})", fontsize=9)
    for ax, (label, row) in zip(axes[1:], picks):
        ax.imshow(read_slice(folder / "images" / f"{row['name']}.png"), cmap="gray")
        mask_name = row["name"].replace("tr_im", "tr_mask")
        _contour(ax, read_mask(folder / "masks_binary" / f"{mask_name}.png"))
        ax.set_title(f"COVID-19 {label} (MedSeg {row['name'][-4:]}, "
                     f"{row['lesion_fraction']:.1%} lesion)", fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_covid_cs_examples(root: PathLike = None):
    """The 8 COVID-CS demo slices released with the JCS code (the only COVID-CS images public)."""
    import matplotlib.pyplot as plt

    paths = sorted(dataset_path("covid-cs-examples", root).glob("*.jpg"))
    if not paths:
        raise DataError("covid-cs-examples holds no .jpg slices; check it with "
                        "`jcs data verify covid-cs-examples`.")
    cols = min(4, len(paths))
    rows = int(np.ceil(len(paths) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.7 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, path in zip(axes.ravel(), paths):
        ax.imshow(read_slice(path), cmap="gray")
        ax.set_title(f"{path.stem[:8]}…, slice {int(path.stem.split('_')[-1])}", fontsize=8)
    fig.tight_layout()
    return fig


def plot_data_distributions(root: PathLike = None):
    """Fig. 7-like distributions from what the public data records: age and gender of the UCSD
    COVID-19 patients, slice step / thickness and slices per patient of COVID-CT-MD (beside the
    paper's 0.75–1.25 mm and 250–400 slices), and MedSeg lesion areas in pixels."""
    import matplotlib.pyplot as plt

    demo = ucsd_demographics(root)
    geometry = ctmd_geometry(root)
    areas = medseg_lesion_areas(root)
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.2))

    ages = demo["age"].dropna()
    axes[0].hist(ages, bins=range(0, 101, 10), color="#4c72b0", edgecolor="white")
    axes[0].set(title=f"UCSD COVID-19: age (n = {len(ages)} patients)", xlabel="years",
                ylabel="patients")
    genders = demo["gender"].value_counts().reindex(["M", "F"]).fillna(0)
    axes[1].bar(["male", "female"], genders.values, color=["#4c72b0", "#dd8452"])
    axes[1].set(title=f"UCSD COVID-19: gender (n = {int(genders.sum())})", ylabel="patients")

    ax = axes[2]
    ax.bar(geometry["patient"], geometry["slices"], color="#55a868")
    ax.axhspan(250, 400, color="#c44e52", alpha=0.15, label="paper: 250–400 slices")
    ax.set(title="COVID-CT-MD: slices per patient", ylabel="slices")
    ax.tick_params(axis="x", rotation=45, labelsize=8)
    ax.legend(fontsize=8, loc="lower right")

    ax = axes[3]
    lesion = areas[areas["lesion_px"] > 0]
    for split, color in (("train", "#4c72b0"), ("test", "#dd8452")):
        part = lesion[lesion["split"] == split]["lesion_px"]
        ax.hist(part, bins=np.linspace(0, lesion["lesion_px"].max(), 16), alpha=0.6,
                color=color, label=f"{split} (n = {len(part)})")
    ax.set(title="MedSeg: lesion area per slice", xlabel="pixels (512×512 slice)",
           ylabel="slices")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
