"""The paper-vs-ours tables of the book (paper Tables IV–VII, Fig. 11 facts, the Inf-Net
reference numbers, slice classification), built from the results files of :mod:`jcs.engine`.

Every function returns a numeric DataFrame whose columns are ``(metric, column)`` pairs:
``"paper"`` (from :mod:`jcs.paper`), ``"ours"`` (mean over seeds) and ``"ours std"`` (sample std
over seeds, NaN for one seed). ``DataFrame.attrs`` holds the title, the profile and hardware of
"ours", the metric definitions, the notes on differences and the name of the function
(``source``); :func:`jcs.report.show` renders all of it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from jcs import paper

from .results import (ResultsNotFoundError, available_profiles, hardware_label, load_runs,
                      load_selected, resolve_profile, run_label, seed_stats)

__all__ = [
    "SEG_DEFINITIONS", "TABLE5_RUNS", "TABLE6_RUNS", "TABLE7_RUNS", "CLASSIFIERS",
    "segmentation_metrics", "table5", "table6", "table7", "infnet_comparison",
    "classification_table", "dice_distribution", "dice_summary", "dice_by_area",
    "differences", "gain", "table4", "table4_patients", "profiles_table",
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
CLASSIFIERS = (("jcs-classifier", "image labels only"),
               ("jcs-classifier-pixel", "image labels + pixel-level lesion masks"))
SHORT_NAMES = {"jcs-classifier": "labels", "jcs-classifier-pixel": "labels + masks"}

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


def differences(runs: Dict[Any, List[Dict[str, Any]]], task: str = "segmentation") -> List[str]:
    """Short, honest reasons why our numbers differ from the paper's, with the data sizes,
    input size and iteration counts read from the results files of ``runs``."""
    results = [r for rs in runs.values() for r in rs]
    if not results:
        return []
    first = results[0]
    prof = first.get("config", {}).get("profile", {}) or {}
    splits = (first.get("data", {}) or {}).get("splits", {}) or {}
    n_train = len(splits.get("train", []))
    notes, size, paper_size = [], None, None
    if not prof.get("pretrained", False):
        notes.append("Trained from scratch: ImageNet weights cannot be downloaded in our build "
                     "environment, while the paper fine-tunes ImageNet-pretrained backbones.")
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
        negatives = _covid_cs("negative, classification training")
        notes.append(f"Data: {n_train} UCSD COVID-CT training images, cut from figures of papers "
                     "(heterogeneous size and windowing), instead of COVID-CS CT slices "
                     f"({negatives['images']:,} images of {negatives['patients']} negative "
                     "patients alone).")
        size, paper_size = recipe.get("size"), 224
    if size and size != paper_size:
        notes.insert(1, f"Input {size}×{size} instead of {paper_size}×{paper_size} (profile "
                        f"{first.get('profile')}).")
    return notes


def gain(table: pd.DataFrame, row_a: Any, row_b: Any, metric: str = "Dice") -> Tuple[float, float]:
    """(paper, ours) change of ``metric`` in percentage points from row ``row_a`` to row
    ``row_b`` of a paper-vs-ours table (rows named by the first index level)."""
    first = table.index.get_level_values(0)
    a, b = table[first == row_a].iloc[0], table[first == row_b].iloc[0]
    return (100 * float(b[(metric, "paper")] - a[(metric, "paper")]),
            100 * float(b[(metric, "ours")] - a[(metric, "ours")]))


def _index(keys: Sequence[Any], names: Sequence[str]) -> pd.Index:
    if isinstance(keys[0], tuple):
        return pd.MultiIndex.from_tuples(list(keys), names=list(names))
    return pd.Index(list(keys), name=names[0])


def _seg_table(results_dir: PathLike, profile: str,
               rows: Sequence[Tuple[Any, Tuple[str, str], Dict[str, Any]]],
               index_names: Sequence[str], title: str, source: str, paper_notes: Sequence[str],
               seeds: Optional[Sequence[int]]) -> pd.DataFrame:
    """Rows ``(index, (experiment, run name), paper record)`` → the paper-vs-ours table."""
    specs = [spec for _, spec, _ in rows]
    profile = resolve_profile(results_dir, profile, sorted({e for e, _ in specs}))
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
    if missing:
        notes.insert(0, f"No results yet for {', '.join(missing)} in profile {profile} "
                        "(shown as —).")
    df.attrs.update({
        "title": title, "profile": profile, "hardware": hardware_label(runs),
        "ours": f"{run_label(profile, runs)}; MedSeg test slices (Inf-Net split)",
        "seeds": sorted({r["seed"] for rs in runs.values() for r in rs}),
        "runs": {f"{e}/{n}": [r["path"] for r in rs] for (e, n), rs in runs.items()},
        "definitions": dict(SEG_DEFINITIONS), "notes": notes, "source": source, "percent": True,
        "api": "api-segmentation",
    })
    return df


def table5(results_dir: PathLike = "results", profile: str = "auto",
           seeds: Optional[Sequence[int]] = None) -> pd.DataFrame:
    """Paper Table V (ablation of EFM and AFF) beside ours: runs ``jcs-seg-base``,
    ``jcs-seg-efm``, ``jcs-seg-aff``, ``jcs-seg`` of experiment ``table5``."""
    rows = []
    for number, experiment, name in TABLE5_RUNS:
        rec = paper.TABLE5.lookup("no", number)
        rows.append(((number, "✓" if rec["efm"] else "", "✓" if rec["aff"] else ""),
                     (experiment, name), rec))
    return _seg_table(results_dir, profile, rows, ("No.", "EFM", "AFF"), paper.TABLE5.title,
                      "jcs.report.table5", paper.TABLE5.notes, seeds)


def table6(results_dir: PathLike = "results", profile: str = "auto",
           seeds: Optional[Sequence[int]] = None) -> pd.DataFrame:
    """Paper Table VI (segmentation alone vs with the classifier's features) beside ours:
    ``table5/jcs-seg`` and ``table6/jcs-joint``."""
    rows = []
    for number, experiment, name in TABLE6_RUNS:
        rec = paper.TABLE6.lookup("no", number)
        rows.append(((number, "✓" if rec["seg"] else "", "✓" if rec["cls"] else ""),
                     (experiment, name), rec))
    df = _seg_table(results_dir, profile, rows, ("No.", "SEG", "+CLS"), paper.TABLE6.title,
                    "jcs.report.table6", paper.TABLE6.notes, seeds)
    _, experiment, name = TABLE6_RUNS[1]
    joint = load_runs(results_dir, df.attrs["profile"], experiment, [name], seeds, required=False)
    for result in joint.get(name, []):
        init = result.get("init_from") or {}
        start = (f"from the trained classifier {Path(init['classifier']).parent.parent.name} "
                 f"and segmentation network {Path(init['segmentation']).parent.parent.name}"
                 if init else "from its initial weights (no trained parts were found)")
        df.attrs["notes"].append(f"jcs-joint (seed {result['seed']}) was initialised {start}, "
                                 "then trained with the same schedule (jcs_official.md §4.3).")
    return df


def table7(results_dir: PathLike = "results", profile: str = "auto",
           seeds: Optional[Sequence[int]] = None) -> pd.DataFrame:
    """Paper Table VII (comparison with U-Net, DSS, EGNet, PoolNet) beside ours:
    ``table7/{unet,dss,egnet,poolnet}`` and ``table6/jcs-joint`` (JCS)."""
    rows = []
    for method, experiment, name in TABLE7_RUNS:
        rec = paper.TABLE7.lookup("method", method)
        rows.append(((method, rec["venue"]), (experiment, name), rec))
    return _seg_table(results_dir, profile, rows, ("Method", "Venue"), paper.TABLE7.title,
                      "jcs.report.table7", paper.TABLE7.notes, seeds)


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
    (default: every profile with segmentation results but ``smoke``, best first), mean and
    std over seeds. Each profile is its own recipe and hardware (the notes say which)."""
    experiments = ["table5", "table6", "table7"]
    if profiles is None:
        found = available_profiles(results_dir, experiments)
        profiles = [p for p in found if p != "smoke"] or found
    if not profiles:
        raise ResultsNotFoundError(f"no segmentation results under {Path(results_dir).resolve()}; "
                                   "run `make reproduce PROFILE=cpu` first")
    specs = _profile_rows()
    runs = {p: load_selected(results_dir, p, [spec for _, _, spec, _ in specs]) for p in profiles}
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
        first = next(r for rs in runs[profile].values() for r in rs)
        recipe = _recipe(first, "seg")
        iters = sorted({r.get("loss", {}).get("iterations") for rs in runs[profile].values()
                        for r in rs} - {None})
        notes.append(f"{profile}: {run_label(profile, runs[profile])}; {recipe.get('size')}² input, "
                     f"{recipe.get('epochs')} epochs of batch {recipe.get('batch_size')}"
                     + (f" ({iters[-1]:,} iterations)" if iters else "") + ".")
    df.attrs.update({
        "title": "Tables V–VII: the paper beside every profile we ran", "profile": ", ".join(profiles),
        "hardware": "; ".join(hardware_label(runs[p]) for p in profiles),
        "ours": "MedSeg test slices (Inf-Net split); one column per profile",
        "definitions": {"Dice, IoU": SEG_DEFINITIONS["Dice, IoU (ours)"],
                        "E-measure (ours)": SEG_DEFINITIONS["E-measure mean / max (ours)"]
                        + "; the mean is shown", "paper": SEG_DEFINITIONS["paper"]},
        "notes": notes + differences(next(iter(runs.values())), "segmentation")[:1],
        "source": "jcs.report.profiles_table", "percent": True, "api": "api-segmentation",
        "seeds_note": False,
    })
    return df


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
        index.append((f"ours ({profile}, uncropped 512², from scratch)", method))
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
            "Inf-Net's backbones are ImageNet-pretrained; ours are trained from scratch.",
        ] + [n for n in differences(runs) if not n.startswith("Trained from scratch")],
        "source": "jcs.report.infnet_comparison", "percent": False, "api": "api-infnet",
    })
    return df


_CLS_METRICS = (("AUC", "roc_auc"), ("Accuracy", "accuracy"), ("Sensitivity", "sensitivity"),
                ("Specificity", "specificity"), ("F1", "f1"))


def classification_table(results_dir: PathLike = "results", profile: str = "auto",
                         seeds: Optional[Sequence[int]] = None) -> pd.DataFrame:
    """Slice-level classification on the UCSD COVID-CT test split: the image-label-only
    classifier and the one trained with pixel-level supervision of its activation map
    (experiment ``classification``). The paper reports no slice-level numbers (its Table IV is
    patient-level), so there is no paper column."""
    profile = resolve_profile(results_dir, profile, ["classification"])
    names = [name for name, _ in CLASSIFIERS]
    runs = load_runs(results_dir, profile, "classification", names, seeds, required=False)
    if not runs:
        load_runs(results_dir, profile, "classification", names, seeds)
    descriptions = dict(CLASSIFIERS)
    records, index = [], []
    for name, results in runs.items():
        record = {}
        for label, key in _CLS_METRICS:
            mean, std, _ = _metric(results, key)
            record[(label, "ours")], record[(label, "ours std")] = mean, std
        records.append(record)
        index.append((name, descriptions.get(name, "")))
    df = pd.DataFrame(records, index=pd.MultiIndex.from_tuples(index, names=["run", "supervision"]))
    df.columns = pd.MultiIndex.from_tuples(df.columns, names=["metric", "column"])
    first = next(iter(runs.values()))[0]
    m = first.get("metrics", {})
    df.attrs.update({
        "title": "Slice classification, UCSD COVID-CT test split",
        "profile": profile, "hardware": hardware_label(runs),
        "ours": (f"{run_label(profile, runs)}; {m.get('n_pos')} COVID-19 and {m.get('n_neg')} "
                 "non-COVID test slices"),
        "definitions": {"AUC": "area under the ROC curve of P(COVID-19)",
                        "Accuracy, Sensitivity, Specificity, F1": "at P(COVID-19) ≥ 0.5"},
        "notes": ["The paper reports no slice-level metrics; its Table IV is patient-level."]
        + differences(runs, "classification"),
        "source": "jcs.report.classification_table", "percent": True,
        "api": "api-classification",
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
    names = [name for name, _ in CLASSIFIERS]
    return profile, load_selected(results_dir, profile, [("table4", n) for n in names], seeds)


def table4(results_dir: PathLike = "results", profile: str = "auto",
           seeds: Optional[Sequence[int]] = None) -> pd.DataFrame:
    """Paper Table IV (patient-level sensitivity / specificity vs the threshold T on the number
    of positive slices) beside ours on the COVID-CT-MD patients, for both classifiers, with T
    scaled to our slice thickness (``thresholds`` of the ``table4`` results files)."""
    profile, runs = _table4_runs(results_dir, profile, seeds)
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
                values = [row.get(key) for r in results
                          for t_paper, row in zip(r["thresholds"]["paper"], r["sweep"])
                          if t_paper == rec["threshold"]]
                mean, std, _ = seed_stats(values)
                column = f"ours, {SHORT_NAMES.get(name, name)}"
                record[(metric, column)], record[(metric, f"{column} std")] = mean, std
        records.append(record)
    df = pd.DataFrame(records, index=pd.Index([r["threshold"] for r in paper.TABLE4.records()],
                                              name="T (paper)"))
    df.columns = pd.MultiIndex.from_tuples(df.columns, names=["metric", "column"])
    patients = first["patients"]
    n_pos = sum(1 for p in patients if p["label"] == 1)
    df.attrs.update({
        "title": paper.TABLE4.title, "profile": profile, "hardware": hardware_label(runs),
        "ours": (f"{run_label(profile, runs)}; {len(patients)} COVID-CT-MD patients "
                 f"({n_pos} COVID-19, {len(patients) - n_pos} CAP or normal)"),
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
        "notes": [f"Only {len(patients)} patients: sensitivity rests on {n_pos} and specificity "
                  f"on {len(patients) - n_pos} patients, so they move in steps of "
                  f"{100 / max(1, n_pos):.0f}% and {100 / max(1, len(patients) - n_pos):.0f}%; "
                  "the paper tests 400 patients."] + list(paper.TABLE4.notes)
        # how the classifiers were trained: their own results (table4 files only evaluate them)
        + differences(load_runs(results_dir, profile, "classification", [n for _, n in runs], seeds,
                                required=False), "classification"),
        "source": "jcs.report.table4", "api": "api-table4", "percent": True, "plain": ["T"],
    })
    return df


def table4_patients(results_dir: PathLike = "results", profile: str = "auto",
                    seed: int = 0) -> pd.DataFrame:
    """One row per COVID-CT-MD patient: diagnosis, slices, labelled infected slices and the
    number of slices each classifier calls positive (what Table IV's rule counts)."""
    profile, runs = _table4_runs(results_dir, profile, [seed])
    rows: Dict[str, Dict[str, Any]] = {}
    for (_, name), results in runs.items():
        for p in results[0]["patients"]:
            row = rows.setdefault(p["id"], {
                "diagnosis": p["diagnosis"], "slices": p["n_slices"],
                "infected slices (label)": (sum(p["slice_labels"]) if p["slice_labels"] is not None
                                            else None)})
            row[f"positive slices, {name}"] = p["n_positive"]
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "patient"
    df.attrs.update({"title": "COVID-CT-MD patients behind Table IV", "profile": profile,
                     "hardware": hardware_label(runs), "source": "jcs.report.table4_patients"})
    return df
