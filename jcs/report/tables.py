"""The segmentation tables of the book (paper Tables V–VII, every segmentation metric, every
profile side by side, the Inf-Net reference numbers), built from the results files of
:mod:`jcs.engine`, and the layout all paper-vs-ours tables share. The others: slice
classification (:mod:`.classification`), Table IV (:mod:`.patient_level`), Fig. 11
(:mod:`.dice`), the pretraining gap (:mod:`.gap`); why ours differ (:mod:`.differences`).

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
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from jcs import paper

from .health import collapse_notes, weak_notes
from .lineage import part_profile, part_run, stale_joint_parts
from .results import (PROFILE_ORDER, PathLike, ResultsNotFoundError, _column_order,
                      authors_notes, available_profiles, borrowed_notes, hardware_label,
                      initialisation_notes, initialisation_summary, load_runs, load_selected,
                      outdated_notes, profile_label, resolve_profile, revision_notes, run_label,
                      seed_stats, shown_profiles)
from .differences import (PAPER_INIT_NOTE, _evaluation_only, _merged_differences, _recipe,
                          differences)
from .withdrawn import withdrawn_notes

__all__ = [
    "SEG_DEFINITIONS", "TABLE5_RUNS", "TABLE6_RUNS", "TABLE7_RUNS", "JCS_RUN", "gain",
    "infnet_comparison", "ours_values", "profiles_table", "segmentation_metrics", "table5",
    "table6", "table7",
]


# Where each row's run lives: (experiment, run name) under results/<profile>/ — the engine trains
# each model once (jcs.engine.experiments): jcs-seg in table5, jcs-joint in table6.
TABLE5_RUNS = ((1, "table5", "jcs-seg-base"), (2, "table5", "jcs-seg-efm"),
               (3, "table5", "jcs-seg-aff"), (4, "table5", "jcs-seg"))
TABLE6_RUNS = ((1, "table5", "jcs-seg"), (2, "table6", "jcs-joint"))
TABLE7_RUNS = (("U-Net", "table7", "unet"), ("DSS", "table7", "dss"), ("EGNet", "table7", "egnet"),
               ("PoolNet", "table7", "poolnet"), ("JCS", "table6", "jcs-joint"))
JCS_RUN = ("table6", "jcs-joint")  # the full JCS model (Fig. 11)
# What replaces a removed module in Table V: the paper does not say, this is our choice
ABLATION_NOTE = ("Without EFM or AFF: the paper does not say what replaces a removed module. "
                 "Ours (jcs.models.jcs_seg): each EFM becomes a 1×1 and a 3×3 convolution "
                 "(PlainContext), each AFF a concatenation of its two inputs and two 3×3 "
                 "convolutions (PlainFusion), without the squeeze-and-excitation gates.")

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
    notes += withdrawn_notes(results_dir, profile, f"profile {profile}", runs, experiments, seeds)
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
    experiments = sorted({e for e, _ in specs})
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
        notes += revision_notes(results_dir, p, labels[p], seeds, experiments)
        notes += borrowed_notes(runs, labels[p])
        notes += collapse_notes(runs, labels[p])
        notes += weak_notes(runs, labels[p])
        notes += withdrawn_notes(results_dir, p, labels[p], runs, experiments, seeds)
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
                      "jcs.report.table5", [*paper.TABLE5.notes, ABLATION_NOTE], seeds, profiles)


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
            listed = " ".join(map(str, seed_list))  # as --seeds takes them
            df.attrs["notes"].append(
                f"{who}jcs-joint (seed{'s' if len(seed_list) > 1 else ''} "
                f"{', '.join(map(str, seed_list))}) "
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


def _seg_eval_size(result: Dict[str, Any]) -> Optional[int]:
    """The input size a segmentation run was tested at (``seg_eval_size``, else its training
    size)."""
    prof = result.get("config", {}).get("profile", {}) or {}
    return prof.get("seg_eval_size") or (prof.get("seg") or {}).get("size")


def infnet_comparison(results_dir: PathLike = "results", profile: str = "auto",
                      seeds: Optional[Sequence[int]] = None,
                      profiles: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Inf-Net's published numbers on the 48 COVID-SemiSeg test slices (:data:`jcs.paper.INFNET`)
    beside ours (the Table VII models) on the same 48 MedSeg slices, under the same metric
    definitions: one group of rows per profile (:func:`~jcs.report.results.shown_profiles`:
    ``"auto"`` shows every profile with results, from scratch before pretrained). Index
    ``(source, model)``; columns ``(metric, "value" | "value std")``. Raises
    :class:`~jcs.report.results.ResultsNotFoundError` when no profile has Table VII results."""
    specs = [(e, n) for _, e, n in TABLE7_RUNS]
    experiments = sorted({e for e, _ in specs})
    shown = shown_profiles(results_dir, profile, profiles, experiments)
    loaded = {p: _load_quietly(results_dir, p, specs, seeds) for p in shown}
    with_runs = {p: r for p, r in loaded.items() if r}
    if not with_runs:
        raise ResultsNotFoundError(f"no Table VII results in profile(s) {', '.join(shown)} under "
                                   f"{results_dir}; run jcs.engine.reproduce(profile, "
                                   f"only={experiments}) first")
    records, index = [], []
    for rec in paper.INFNET.records():
        index.append(("Inf-Net paper (lung crops, ImageNet)", rec["model"]))
        records.append({(label, "value"): rec[key] for label, key in _INFNET_METRICS}
                       | {(label, "value std"): np.nan for label, _ in _INFNET_METRICS})
    notes, per_profile = [paper.INFNET.source,
                          "Inf-Net's slices are the MedSeg slices cropped to the lungs; ours are "
                          "the uncropped slices (more background, which raises specificity and "
                          "lowers MAE).",
                          "Inf-Net's backbones are ImageNet-pretrained; ours start as each "
                          "profile's note says."], {}
    for p, runs in with_runs.items():
        size = next((_seg_eval_size(rs[0]) for rs in runs.values() if rs), None)
        for method, experiment, name in TABLE7_RUNS:
            if (experiment, name) not in runs:
                continue
            index.append((f"ours ({profile_label(p)}, uncropped {size}²)", method))
            record = {}
            for label, key in _INFNET_METRICS:
                mean, std, _ = _metric(runs[(experiment, name)], key)
                record[(label, "value")], record[(label, "value std")] = mean, std
            records.append(record)
        notes.append(f"{profile_label(p)}: {run_label(p, runs)}; initialisation: "
                     f"{initialisation_summary(runs)}.")
        per_profile[p] = differences(runs, initialisation=False)
    notes += _merged_differences(per_profile)
    df = pd.DataFrame(records, index=pd.MultiIndex.from_tuples(index, names=["source", "model"]))
    df.columns = pd.MultiIndex.from_tuples(df.columns, names=["metric", "column"])
    n_test = next((rs[0].get("metrics", {}).get("n_images")
                   for runs in with_runs.values() for rs in runs.values() if rs), None)
    df.attrs.update({
        "title": "Inf-Net's published numbers vs ours on the same MedSeg test slices",
        "profile": _primary(loaded), "profiles": list(with_runs),
        "hardware": "; ".join(f"{profile_label(p)}: {hardware_label(r)}"
                              for p, r in with_runs.items()),
        "ours": (", ".join(f"{profile_label(p)}" for p in with_runs)
                 + f"; {n_test} MedSeg test slices (Inf-Net split)"),
        "definitions": {
            "meanDice / meanSen / meanSpe / meanEm": ("mean over 256 thresholds (pred ≥ t, "
                                                     "t = 255/255 … 0/255) of the slice-averaged "
                                                     "curve, as Inf-Net's evaluation code"),
            "adpDice": ("Dice at the adaptive threshold 2×mean(map); ours binarises with > "
                        "2·mean (the JCS authors' IoUEval), Inf-Net with ≥ min(2·mean, 1)"),
            "S-measure": "structure measure, α = 0.5", "MAE": "mean absolute error of the map",
        },
        "notes": notes,
        "source": "jcs.report.infnet_comparison", "percent": False, "api": "api-infnet",
        "wrap_index": True,
        "groups": [{"title": "Dice, sensitivity and specificity",
                    "metrics": ["meanDice", "adpDice", "meanSen", "meanSpe"]},
                   {"title": "S-measure, E-measure and MAE", "metrics": ["S-measure", "meanEm", "MAE"]}],
    })
    return df
