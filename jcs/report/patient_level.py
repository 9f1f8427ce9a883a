"""Paper Table IV: patient-level diagnosis (a patient is positive when more than T of their
slices are), with the per-patient slice counts behind it."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from jcs import paper

from .results import (PathLike, authors_notes, borrowed_notes, hardware_label, load_runs,
                      load_selected, profile_label, resolve_profile, run_label, seed_stats,
                      shown_profiles, superseded_notes)
from .differences import _merged_differences, differences
from .tables import _primary
from .classification import (EFFICIENTNET_NOTE, RUN_LABELS, SHORT_NAMES, _classifier_model,
                             _trained_on_ucsd_only, classifier_runs)

__all__ = ["cohort_description", "table4", "table4_at_threshold", "table4_patients"]


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
