"""Probe (no fine-tuning): how well do the packaged ImageNet EfficientNet-Lite2 features, frozen,
separate COVID-19 from other slices, in-source and cross-source?

A logistic regression (scikit-learn, L2, C chosen on the validation AUC) on the 1 280 pooled
features of the frozen packaged EfficientNet-Lite2 (``create_model(...,
pretrained="packaged")``, eval mode, ImageNet BN statistics), fitted on the training set of
profile cpu-pretrained (UCSD COVID-CT train + SARS-CoV-2 CT sample N <= 800; un-augmented,
the evaluation transform), validated on their val splits, tested on the three tests of the
classification chapter: UCSD test, the SARS-CoV-2 held-out block (N > 900) and the COVID-CT-MD
slices (label 1 = COVID-19 infection; AUC also per negative group). Compared with the fine-tuned
classifiers (results/cpu-pretrained/classification), it says whether fine-tuning is what loses
the cross-source transfer (Kumar et al., ICLR 2022: fine-tuning can distort pretrained features
and do worse out of distribution than a linear probe). Writes
results/diagnostics/cls_linear_probe.json.

A second fit asks whether these features hold the COVID-CT-MD lesions at all: the same logistic
regression fitted on COVID-CT-MD slices themselves, two folds by patient ({P001, cap001,
normal001} / {P002, cap002, normal002}: one patient of each diagnosis per fold, no patient in both),
C as chosen above (every C of the grid also recorded, ``sweep``). That is an in-source reference,
not a result: it has trained on the test source.

    python scripts/probe_cls_linear.py [--size 192] [--cache features.npz]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler
from torch.utils.data import ConcatDataset, DataLoader

from jcs.data.ctmd_labels import SLICE_TARGET
from jcs.data.datasets import ClassificationSlices, CTMDSlices
from jcs.engine.provenance import sha256_file, write_probe
from jcs.metrics import compute_group_aucs
from jcs.models import create_model

MODEL = "jcs-classifier-efficientnet-lite2"


@torch.inference_mode()
def features(model, data, batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Pooled features (N×1280) and labels of ``data`` through the frozen backbone."""
    feats, labels = [], []
    for b in DataLoader(data, batch_size=batch, num_workers=0):
        f = model.net.forward_features(model.normalize(b["image"]))
        feats.append(f.float().mean(dim=(2, 3)).numpy())
        labels += [int(v) for v in b["label"]]
    return np.concatenate(feats), np.asarray(labels)


FOLDS = (("P001", "cap001", "normal001"), ("P002", "cap002", "normal002"))
C_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)


def _fit(x_fit: np.ndarray, y_fit: np.ndarray, c: float):
    """Standardise on ``x_fit``, fit an L2 logistic regression at ``c``; returns a scorer."""
    scaler = StandardScaler().fit(x_fit)
    clf = LogisticRegression(C=c, max_iter=5000).fit(scaler.transform(x_fit), y_fit)
    return lambda x: clf.decision_function(scaler.transform(x))


def _auc(y: np.ndarray, scores: np.ndarray) -> float:
    return round(float(roc_auc_score(y, scores)), 4)


def ctmd_in_source(x: np.ndarray, y: np.ndarray, patients: np.ndarray, c: float) -> dict:
    """Two-fold patient-wise fit on the COVID-CT-MD slices (:data:`FOLDS`: train on one fold's
    three patients, test on the other's) at regularisation ``c`` (chosen on the main validation
    set, not on COVID-CT-MD: one COVID-19 patient per fold leaves no patient for an inner split).
    Returns the AUC of each fold and their mean."""
    folds = []
    for k, test_patients in enumerate(FOLDS):
        test, train = np.isin(patients, test_patients), np.isin(patients, FOLDS[1 - k])
        folds.append({"test_patients": list(test_patients),
                      "auc": _auc(y[test], _fit(x[train], y[train], c)(x[test]))})
    return {"C": c, "folds": folds, "mean_auc": round(float(np.mean([f["auc"] for f in folds])), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=192, help="input size (cpu-pretrained: 192)")
    parser.add_argument("--out", default="results/diagnostics/cls_linear_probe.json")
    parser.add_argument("--cache", help="npz file for the features (read if present, else written)")
    args = parser.parse_args()
    start = time.perf_counter()
    torch.manual_seed(0)
    model = create_model(MODEL, pretrained="packaged").eval()
    names = ("ucsd-covid-ct", "sarscov2-ct")
    split = {part: ConcatDataset([ClassificationSlices(n, part, args.size) for n in names])
             for part in ("train", "val")}
    tests = {"ucsd-covid-ct": ClassificationSlices("ucsd-covid-ct", "test", args.size),
             "sarscov2-ct": ClassificationSlices("sarscov2-ct", "test", args.size)}
    ctmd = CTMDSlices(size=args.size)
    tests["covid-ct-md"] = ctmd
    source = "computed by this run"
    if args.cache and Path(args.cache).is_file():
        source = f"read from {args.cache} (sha256 {sha256_file(args.cache)}), written by an earlier run"
        cached = np.load(args.cache)
        x_train, y_train, x_val, y_val = (cached[k] for k in ("x_train", "y_train", "x_val", "y_val"))
        x_tests = {name: (cached[f"x_{name}"], cached[f"y_{name}"]) for name in tests}
    else:
        x_train, y_train = features(model, split["train"])
        x_val, y_val = features(model, split["val"])
        x_tests = {name: features(model, data) for name, data in tests.items()}
        if args.cache:
            np.savez(args.cache, x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val,
                     **{f"x_{n}": v[0] for n, v in x_tests.items()},
                     **{f"y_{n}": v[1] for n, v in x_tests.items()})
    sweep, scorers = [], {}
    for c in C_GRID:
        scorers[c] = score = _fit(x_train, y_train, c)
        row = {"C": c, "val": _auc(y_val, score(x_val)),
               **{name: _auc(y, score(x)) for name, (x, y) in x_tests.items()}}
        sweep.append(row)
        print(row, flush=True)
    best = max(sweep, key=lambda r: r["val"])
    x_ctmd, y_ctmd = x_tests["covid-ct-md"]
    by_group = {group: round(row["roc_auc"], 4) for group, row in
                compute_group_aucs(y_ctmd, scorers[best["C"]](x_ctmd), ctmd.groups).items()
                if row["roc_auc"] is not None}
    patients = np.asarray([s[3] for s in ctmd.samples])
    in_source = ctmd_in_source(x_ctmd, y_ctmd, patients, best["C"])
    in_source["sweep"] = [{"C": c, "mean_auc": ctmd_in_source(x_ctmd, y_ctmd, patients, c)["mean_auc"]}
                          for c in C_GRID]
    write_probe(args.out, "scripts/probe_cls_linear.py", vars(args), {
        "what": "Linear probe on frozen packaged ImageNet EfficientNet-Lite2 features (global "
                "average pool of the last stage, 1280-d), standardised, L2 logistic regression; "
                "C chosen on the validation AUC (UCSD val + SARS-CoV-2 N 801-900). No fine-tuning, "
                "no augmentation. Test AUCs as in the classification chapter.",
        "model": MODEL, "pretrained": "packaged", "labels": SLICE_TARGET, "features": source,
        "data": {"train": "ucsd-covid-ct train + sarscov2-ct train (N<=800)",
                 "val": "ucsd-covid-ct val + sarscov2-ct val (N 801-900)",
                 "tests": {"ucsd-covid-ct": "UCSD test", "sarscov2-ct": "held-out block N>900",
                           "covid-ct-md": "COVID-CT-MD slices, label 1 = COVID-19 infection"},
                 "counts": {"train": len(y_train), "val": len(y_val),
                            **{k: len(v[1]) for k, v in x_tests.items()}}},
        "sweep": sweep, "chosen_C": best["C"], "chosen": best,
        "covid_ct_md_by_negative_group": by_group,
        "covid_ct_md_in_source": in_source,
    }, start)
    print("chosen", best, by_group, in_source)


if __name__ == "__main__":
    main()
