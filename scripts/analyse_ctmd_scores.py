"""Where the cross-source test (COVID-CT-MD labelled slices) goes wrong, from the per-slice scores
that a classifier's results file already holds (no model is run).

For each results file of the given classifier and profile: slice AUC per patient, the mean score
by fifth of each patient's slices (superior → inferior), and the AUC over the slices whose
threshold lung mask (jcs.diagnosis.lung_mask: air below −400 HU inside the body) covers at least
a given fraction of the slice: does the classifier fail on slices without much lung (neck,
abdomen), which the real-scan training sample hardly has, or on the lungs themselves?
Writes ``results/diagnostics/ctmd_score_analysis.json``.

    python scripts/analyse_ctmd_scores.py --profile cpu-pretrained \
        --model jcs-classifier-efficientnet-lite2
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from jcs.data import CTMDPatients
from jcs.data.ctmd_labels import SLICE_TARGET
from jcs.data.readers import read_slice_folder
from jcs.diagnosis import lung_mask, to_hu
from jcs.engine.provenance import git_state

FRACTIONS = (0.0, 0.02, 0.05, 0.1)


def lung_fractions() -> dict[tuple[str, str], float]:
    """(patient, slice stem) → fraction of the slice inside the threshold lung mask."""
    out = {}
    for patient in CTMDPatients().patients:
        folder = Path(patient["slice_paths"][0]).parent
        volume = read_slice_folder(folder)
        lungs = lung_mask(to_hu(volume))
        for path, fraction in zip(patient["slice_paths"], lungs.reshape(len(lungs), -1).mean(1)):
            out[(patient["id"], Path(path).stem)] = float(fraction)
    return out


def analyse(result: dict, fractions: dict) -> dict:
    rows = result["tests"]["covid-ct-md"]["per_image"]
    by_patient = defaultdict(list)
    for row in rows:
        patient, stem = row["name"].split("/")
        by_patient[patient].append((stem, row["label"], row["score"], fractions[(patient, stem)]))
    patients = {}
    for patient, items in by_patient.items():
        items.sort()
        labels = np.array([i[1] for i in items]); scores = np.array([i[2] for i in items])
        fifths = np.array_split(np.arange(len(items)), 5)
        patients[patient] = {
            "slices": len(items), "positive": int(labels.sum()),
            "auc": (float(roc_auc_score(labels, scores)) if 0 < labels.sum() < len(labels) else None),
            "mean_score_by_fifth": [round(float(scores[f].mean()), 4) for f in fifths],
            "positive_fraction_by_fifth": [round(float(labels[f].mean()), 4) for f in fifths]}
    labels = np.array([r["label"] for r in rows]); scores = np.array([r["score"] for r in rows])
    lung = np.array([fractions[tuple(r["name"].split("/"))] for r in rows])
    restricted = {}
    for fraction in FRACTIONS:
        keep = lung >= fraction
        restricted[str(fraction)] = {"slices": int(keep.sum()), "positive": int(labels[keep].sum()),
                                     "auc": round(float(roc_auc_score(labels[keep], scores[keep])), 4)}
    return {"seed": result["seed"], "auc_all": round(float(roc_auc_score(labels, scores)), 4),
            "auc_by_min_lung_fraction": restricted, "patients": patients}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--profile", default="cpu-pretrained")
    parser.add_argument("--model", default="jcs-classifier-efficientnet-lite2")
    parser.add_argument("--out", default="results/diagnostics/ctmd_score_analysis.json")
    args = parser.parse_args()
    folder = Path(args.results_dir) / args.profile / "classification"
    files = sorted(folder.glob(f"{args.model}.json")) + sorted(folder.glob(f"{args.model}.seed*.json"))
    if not files:
        raise SystemExit(f"No results of {args.model} under {folder}; train it first "
                         f"(jcs reproduce --profile {args.profile} --only classification/{args.model}).")
    fractions = lung_fractions()
    runs = [dict(analyse(json.loads(f.read_text()), fractions), file=str(f)) for f in files]
    labels = {json.loads(f.read_text())["tests"]["covid-ct-md"]["per_image"][0].get("group") is not None
              for f in files}
    if labels != {True}:
        raise SystemExit("Some results files hold COVID-CT-MD labels of the previous definition; "
                         "rescore them first: python scripts/relabel_ctmd_slices.py")
    out = {"script": "scripts/analyse_ctmd_scores.py", "git": git_state(), "profile": args.profile,
           "model": args.model, "labels": SLICE_TARGET, "runs": runs}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    for run in runs:
        print(run["seed"], run["auc_all"], {k: v["auc"] for k, v in run["auc_by_min_lung_fraction"].items()})


if __name__ == "__main__":
    main()
