"""The classifier's cross-source gap (COVID-CT-MD): which slices a classifier confuses with COVID-19
lesions (:func:`cross_source_groups`, from the classifier results files), and what was tried
against the gap (:func:`cross_source_tries`, from the files of ``results/diagnostics/`` that the
probe scripts write: ``scripts/probe_cls_framing.py``, ``scripts/analyse_ctmd_scores.py``,
``scripts/probe_ctmd_lung_framing.py``, ``scripts/probe_ctmd_adabn.py``,
``scripts/probe_cls_linear.py``)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import pandas as pd

from jcs.data.ctmd_labels import GROUPS, POSITIVE_GROUP, PREVIOUS_TARGET, SLICE_TARGET

from .results import ResultsNotFoundError, load_runs, profile_label, seed_stats, shown_profiles
from .classification import (CLASSIFIER_MODELS, SUPERVISION, _classifier_model, _test_block,
                             classifier_runs)

PathLike = Union[str, Path]

FRAMING_FILE = "diagnostics/cls_framing_probe.json"
CTMD_ANALYSIS_FILE = "diagnostics/ctmd_score_analysis.json"
# test-time tries on the committed classifiers (no training): file, rows (label, AUC of a run), note
TEST_TIME_PROBES = (
    {"file": "diagnostics/ctmd_lung_framing_probe.json",
     "rows": (("cut to the lungs at test time (framed like the SARS-CoV-2 slices)",
               lambda r: r["lungs"]["auc"]),),
     "before": lambda r: r["centre"]["auc"],
     "note": "Cutting the COVID-CT-MD slices to their lungs (threshold lung mask, 5 % margin) so that "
             "they look like the SARS-CoV-2 training slices (scripts/probe_ctmd_lung_framing.py) "
             "{change} the AUC, from {before:.3f} (the full field, as the results files score it) "
             "to {after:.3f}",
     "conclusion": ": framing is not what separates the sources.",
     "caveat": ""},
    {"file": "diagnostics/ctmd_adabn_probe.json",
     "rows": (("with BN statistics re-estimated on its own slices (AdaBN, transductive)",
               lambda r: r["adabn"]),),
     "before": lambda r: r["trained_bn"],
     "note": "Re-estimating every batch-norm layer's statistics on the unlabelled COVID-CT-MD slices "
             "(AdaBN; scripts/probe_ctmd_adabn.py) {change} the AUC, from {before:.3f} with the "
             "trained statistics to {after:.3f}",
     "conclusion": ": the scanners differ in what the features respond to, not only in their "
                   "first and second moments.",
     "caveat": " That row has seen the test images (not their labels) and is a diagnosis, not a "
               "result."},
)
LINEAR_FILE = "diagnostics/cls_linear_probe.json"
TEST_KEYS = {"ucsd": "ucsd-covid-ct", "sarscov2": "sarscov2-ct", "ctmd": "covid-ct-md"}
CLOSES = 0.05  # a try that raises the mean AUC by less than this does not close the gap


def _probe_note(probe: dict, runs: List[dict]) -> str:
    """The probe's note with its measured change (mean over runs) in words."""
    before = float(np.mean([probe["before"](r) for r in runs]))
    after = float(np.mean([probe["rows"][0][1](r) for r in runs]))
    change = ("raises" if after - before > 0.02 else "lowers" if before - after > 0.02
              else "hardly changes")
    text = probe["note"].format(change=change, before=before, after=after)
    return text + (probe["conclusion"] if after - before < CLOSES else ".") + probe["caveat"]


def _linear_note(frozen: float, fine_tuned: Sequence[float], in_source: float,
                 in_source_sweep: Sequence[dict] = ()) -> str:
    """What the linear probe says, in words decided by its numbers (scripts/probe_cls_linear.py):
    ``frozen`` = its COVID-CT-MD AUC, ``fine_tuned`` = the fine-tuned classifiers' AUC per seed
    (a difference counts when above both :data:`CLOSES` and their seed std)."""
    mean = float(np.mean(fine_tuned))
    spread = float(np.std(fine_tuned, ddof=1)) if len(fine_tuned) > 1 else 0.0
    margin = max(CLOSES, spread)
    if frozen - mean > margin:
        verdict = "so fine-tuning loses part of the transfer that the ImageNet features had"
    elif mean - frozen > margin:
        verdict = "so fine-tuning adds to the transfer rather than losing it"
    else:
        verdict = (f"a difference within the seeds' spread (std {spread:.3f}): fine-tuning neither "
                   "clearly loses nor adds transfer")
    text = (f"Frozen, the packaged ImageNet features with a logistic regression on the same training "
            f"data score {frozen:.3f} on COVID-CT-MD against {mean:.3f} for the fine-tuned "
            f"classifiers (mean of {len(fine_tuned)} seeds), {verdict}. ")
    if in_source - max(frozen, mean) > CLOSES:
        text += (f"Fitted on COVID-CT-MD's own patients (one fold's patients, tested on the other's) "
                 f"the same frozen features reach {in_source:.3f}: they do hold these scans' lesions, "
                 "so what is missing is training data like these scans, not a better backbone.")
    else:
        sweep = [row["mean_auc"] for row in in_source_sweep] or [in_source]
        below = (f"below chance at every regularisation tried ({min(sweep):.3f}–{max(sweep):.3f}): "
                 if max(sweep) < 0.5 else "")
        text += (f"Fitted on COVID-CT-MD's own patients (one fold's patients, tested on the other's) "
                 f"the same frozen features reach only {in_source:.3f}, {below}what separates one "
                 "patient's lesion slices from the other slices in these pooled features does not "
                 "carry over to the next patient, so a linear read-out of frozen ImageNet features "
                 "does not find these scans' lesions even when trained on this source (two COVID-19 "
                 "patients make this reference coarse).")
    return text + " Both fits are single runs; the in-source one has trained on the test source."


TESTS = (("ucsd", "UCSD test"), ("sarscov2", "real-scan held-out"), ("ctmd", "COVID-CT-MD"))
FRAMING_LABELS = {"centre": "Resize + centre crop (the authors' transform; profile default)",
                  "body": "Cut to the body first (jcs.data.transforms.crop_to_body), then squashed"}


def _read(path: Path) -> dict:
    if not path.is_file():
        raise ResultsNotFoundError(f"{path} is missing; make it with the script it names "
                                   f"(scripts/probe_cls_framing.py or scripts/analyse_ctmd_scores.py).")
    return json.loads(path.read_text())


def _previous_labels(record: dict, stale: List[str], file: str) -> str:
    """" †" (and ``file`` noted in ``stale``) when a probe file's COVID-CT-MD labels are the
    previous definition (files from before 2026-11-30 do not name theirs)."""
    if record.get("labels") == SLICE_TARGET:
        return ""
    stale.append(f"results/{file}")
    return " †"


def cross_source_tries(results_dir: PathLike = "results") -> pd.DataFrame:
    """Slice AUC (fractions) of each try at the COVID-CT-MD gap, rows = tries, columns =
    ``("AUC", test)`` for the three tests (NaN where a try does not apply to a test).

    Rows: each framing of the framing probe (EfficientNet-Lite2 from the packaged ImageNet
    weights, one seed, its last epoch), and the committed ``cpu-pretrained`` runs scored on the
    COVID-CT-MD slices whose threshold lung mask covers at least 0 % / 10 % of the slice (mean
    over seeds, std in ``"<test> std"``); where ``scripts/probe_ctmd_lung_framing.py`` has run,
    the same runs on the COVID-CT-MD slices as framed for training (Resize + centre crop of the full
    field) and cut to the lungs first, as the SARS-CoV-2 sample's slices are; where
    ``scripts/probe_ctmd_adabn.py`` has run, with BN statistics re-estimated on those slices; where
    ``scripts/probe_cls_linear.py`` has run, a logistic regression on the frozen packaged
    ImageNet features (all three tests) and the same fit made on COVID-CT-MD's own patients, two
    folds by patient (an in-source reference), with a note on what the two say. Raises
    :class:`ResultsNotFoundError` when one of the first two files is missing."""
    root = Path(results_dir)
    framing = _read(root / FRAMING_FILE)
    analysis = _read(root / CTMD_ANALYSIS_FILE)
    rows: List[dict] = []
    index: List[str] = []
    epochs = framing["args"]["epochs"]
    stale: List[str] = []  # files whose COVID-CT-MD AUC counts CAP lesions positive
    for kind, run in framing["runs"].items():
        last = run["history"][-1]
        index.append(f"Probe, seed {framing['args']['seed']}, {epochs} epochs: "
                     f"{FRAMING_LABELS.get(kind, kind)}"
                     + _previous_labels(framing, stale, FRAMING_FILE))
        rows.append({("AUC", label): last[key] for key, label in TESTS})
    for fraction, label in (("0.0", "all labelled slices"), ("0.1", "slices with ≥ 10 % lung")):
        values = [run["auc_by_min_lung_fraction"][fraction]["auc"] for run in analysis["runs"]]
        index.append(f"{analysis['profile']} runs ({len(values)} seeds), COVID-CT-MD {label}"
                     + _previous_labels(analysis, stale, CTMD_ANALYSIS_FILE))
        rows.append({("AUC", "COVID-CT-MD"): float(np.mean(values)),
                     ("AUC", "COVID-CT-MD std"): float(np.std(values, ddof=1)) if len(values) > 1
                     else np.nan})
    notes = [framing.get("notes", ""),
             "Within each COVID-CT-MD patient the most superior fifth of the slices scores "
             "highest (results/diagnostics/ctmd_score_analysis.json); dropping the slices with little lung "
             "does not close the gap, so the classifier misses the lesions of these scans "
             "themselves, not only their non-lung slices."]
    for probe in TEST_TIME_PROBES:  # optional: rows only where the probe has run
        path = root / probe["file"]
        if not path.is_file():
            continue
        record = json.loads(path.read_text())
        runs = record["runs"]
        for label, value in probe["rows"]:
            values = [value(run) for run in runs]
            index.append(f"{analysis['profile']} runs ({len(runs)} seeds), COVID-CT-MD {label}"
                         + _previous_labels(record, stale, probe["file"]))
            rows.append({("AUC", "COVID-CT-MD"): float(np.mean(values)),
                         ("AUC", "COVID-CT-MD std"): (float(np.std(values, ddof=1)) if len(runs) > 1
                                                      else np.nan)})
        notes.append(_probe_note(probe, runs))
    linear = root / LINEAR_FILE
    if linear.is_file():  # optional: rows only where the probe has run
        record = json.loads(linear.read_text())
        mark = _previous_labels(record, stale, LINEAR_FILE)
        index.append(f"Frozen ImageNet features + logistic regression (no fine-tuning), "
                     f"C on the validation set{mark}")
        rows.append({("AUC", label): record["chosen"][TEST_KEYS[key]] for key, label in TESTS})
        in_source = record["covid_ct_md_in_source"]
        index.append(f"The same features fitted on COVID-CT-MD itself, {len(in_source['folds'])} "
                     f"folds by patient (in-source reference){mark}")
        rows.append({("AUC", "COVID-CT-MD"): in_source["mean_auc"],
                     ("AUC", "COVID-CT-MD std"): (float(np.std([f["auc"] for f in in_source["folds"]],
                                                               ddof=1))
                                                  if len(in_source["folds"]) > 1 else np.nan)})
        fine_tuned = [run["auc_by_min_lung_fraction"]["0.0"]["auc"] for run in analysis["runs"]]
        notes.append(_linear_note(record["chosen"]["covid-ct-md"], fine_tuned,
                                  in_source["mean_auc"], in_source.get("sweep", ())))
    if stale:
        notes.append(f"Rows marked † come from {', '.join(sorted(set(stale)))}, scored before "
                     f"2026-11-30 with {PREVIOUS_TARGET} as positives (now: {SLICE_TARGET}, "
                     "jcs.data.ctmd_labels); the probe has not been rerun since, so its COVID-CT-MD "
                     "AUC is not comparable with the results files'.")
    columns = pd.MultiIndex.from_tuples([("AUC", label) for _, label in TESTS]
                                        + [("AUC", "COVID-CT-MD std")])
    df = pd.DataFrame(rows, index=index, columns=columns)
    df.attrs.update({
        "title": "What was tried against the cross-source gap (slice AUC)",
        "ours": f"{analysis['model']}; the probe trains on the same data as profile "
                f"{analysis['profile']} (UCSD + real-scan training block)",
        "wrap_index": True,
        "notes": notes,
        "source": "jcs.report.cross_source_tries"})
    return df


NEGATIVE_GROUPS = tuple(g for g in GROUPS if g != POSITIVE_GROUP)
GROUP_LABELS = {"COVID-19 infected": "COVID-19 lesion slices", "COVID-19 clear":
                "COVID-19 patients, slices without lesion", "CAP infected": "CAP lesion slices",
                "CAP clear": "CAP patients, slices without lesion", "Normal": "normal patients"}


def cross_source_groups(results_dir: PathLike = "results", profile: str = "auto",
                        seeds: Optional[Sequence[int]] = None,
                        profiles: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Which COVID-CT-MD slices each classifier confuses with COVID-19 lesions: rows = profile ×
    classifier × supervision (runs tested on COVID-CT-MD); columns ``("AUC vs", group)``: AUC of
    the COVID-19 lesion slices against the slices of one negative group
    (:data:`jcs.data.ctmd_labels.GROUPS`), and ``("mean P(COVID-19)", group)`` for every group,
    each with ``"<group> std"`` (mean ± std over seeds; ``by_group`` of each results file's
    ``tests["covid-ct-md"]``). Raises :class:`ResultsNotFoundError` when no run has it."""
    shown = shown_profiles(results_dir, profile, profiles, ["classification"])
    records: List[Dict[Any, float]] = []
    index: List[tuple] = []
    counts: Dict[str, int] = {}
    n_seeds: List[int] = []  # per row
    unscored: List[str] = []  # runs with seeds lacking the breakdown (previous labels)
    for p in shown:
        loaded = load_runs(results_dir, p, "classification", seeds=seeds, required=False)
        for name in classifier_runs(p, list(loaded)):
            tested = [b for b in (_test_block(r, "covid-ct-md") for r in loaded.get(name, [])) if b]
            blocks = [b["by_group"] for b in tested if b.get("by_group")]
            if len(blocks) < len(tested):
                unscored.append(f"{profile_label(p)} {name}: {len(tested) - len(blocks)} of "
                                f"{len(tested)} seeds")
            if not blocks:
                continue
            n_seeds.append(len(blocks))
            record: Dict[Any, float] = {}
            for metric, key, groups in (("AUC vs", "roc_auc", NEGATIVE_GROUPS),
                                        ("mean P(COVID-19)", "mean_score", GROUPS)):
                for group in groups:
                    mean, std, _ = seed_stats([(b.get(group) or {}).get(key) for b in blocks])
                    label = GROUP_LABELS[group]
                    record[(metric, label)], record[(metric, f"{label} std")] = mean, std
            for group in GROUPS:
                counts.setdefault(group, (blocks[0].get(group) or {}).get("n", 0))
            records.append(record)
            model = _classifier_model(name)
            index.append((profile_label(p), CLASSIFIER_MODELS.get(model, model),
                          SUPERVISION[name.endswith("-pixel")]))
    if not records:
        raise ResultsNotFoundError(
            "no classifier results with a per-group COVID-CT-MD breakdown: train a classifier "
            "(`jcs reproduce --only classification/...`) or rescore older files with "
            "scripts/relabel_ctmd_slices.py")
    df = pd.DataFrame(records, index=pd.MultiIndex.from_tuples(
        index, names=["ours (profile)", "classifier", "supervision"]))
    df.columns = pd.MultiIndex.from_tuples(df.columns, names=["metric", "slices"])
    sizes = ", ".join(f"{GROUP_LABELS[g]} {counts.get(g, 0)}" for g in GROUPS)
    df.attrs.update({
        "title": "COVID-CT-MD: which slices are confused with COVID-19 lesions",
        "ours": "every classifier run tested on COVID-CT-MD, mean ± std over seeds",
        "main": ["AUC vs"],
        "details": [{"title": "Mean P(COVID-19) of each group of slices",
                     "columns": [c for g in GROUPS for c in
                                 (("mean P(COVID-19)", GROUP_LABELS[g]),
                                  ("mean P(COVID-19)", f"{GROUP_LABELS[g]} std"))]}],
        "wrap_index": True, "percent": True,
        "definitions": {
            "AUC vs": ("area under the ROC curve of P(COVID-19) with the COVID-19 lesion slices as "
                       "positives and only that group's slices as negatives: 50 % means the "
                       "classifier cannot tell that group from COVID-19 lesions"),
            "slices": f"COVID-CT-MD sample, {sizes}",
        },
        "notes": [f"Label 1 on a COVID-CT-MD slice is {SLICE_TARGET} (jcs.data.ctmd_labels): the "
                  "classifiers separate COVID-19 from non-COVID-19, so CAP lesions are negatives, "
                  "as in the SARS-CoV-2 training sample (whose non-COVID class includes other "
                  "lung diseases) and in Table IV. Results files scored before this definition "
                  f"({PREVIOUS_TARGET} positive) were rescored from their stored per-slice scores "
                  "by scripts/relabel_ctmd_slices.py; each keeps its previous metrics under "
                  "`relabelled`."]
        + [f"Seeds per row, top to bottom: {', '.join(map(str, n_seeds))}."]
        + ([f"Left out (no per-group breakdown: scored with the previous labels; rescore with "
            f"scripts/relabel_ctmd_slices.py): {'; '.join(unscored)}."] if unscored else []),
        "source": "jcs.report.cross_source_groups", "api": "api-cross-source",
    })
    return df
