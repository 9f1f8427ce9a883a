"""Probe (no training): does re-estimating the batch-norm statistics on the unlabelled COVID-CT-MD
slices (AdaBN, Li et al. 2016: the test source's own BN means and variances, no label used)
change the cross-source slice AUC of the classifiers trained by profile cpu-pretrained?

For every model.pt given (default: the three seeds of jcs-classifier-efficientnet-lite2 in
runs/cpu-pretrained): slice AUC on the COVID-CT-MD slices of the results files' cross-source test
(labelled COVID-19/CAP patients + normal patients; label 1 = COVID-19 infection) with the trained
statistics, then with every BN layer's running statistics replaced by the plain average over all
those slices (momentum None, one pass, no gradient, labels unused). This is transductive: the
adapted model has seen the test images (not their labels), so it is a diagnosis of where the
gap lies (feature statistics of another scanner), not a result to put beside the paper's.
Writes results/diagnostics/ctmd_adabn_probe.json.

    python scripts/probe_ctmd_adabn.py
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from jcs.data.datasets import CTMDSlices
from jcs.data.ctmd_labels import SLICE_TARGET
from jcs.engine.evaluate import load_trained_model
from jcs.engine.provenance import sha256_file, write_probe

DEFAULT_RUNS = "runs/cpu-pretrained/classification/jcs-classifier-efficientnet-lite2"


@torch.inference_mode()
def scores(model: nn.Module, images: torch.Tensor, batch: int = 32) -> np.ndarray:
    model.eval()
    out = []
    for i in range(0, len(images), batch):
        out += torch.softmax(model(images[i:i + batch]).float(), dim=1)[:, 1].tolist()
    return np.asarray(out)


@torch.no_grad()
def adapt_batchnorm(model: nn.Module, images: torch.Tensor, batch: int = 32) -> int:
    """Replace every BN layer's running mean/var by the cumulative average over ``images``
    (N×3×H×W); returns the number of BN layers. Only BN layers run in train mode."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    for i in range(0, len(images), batch):
        model(images[i:i + batch])
    model.eval()
    return len(norms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="*", help="model.pt files (default: the three seeds)")
    parser.add_argument("--out", default="results/diagnostics/ctmd_adabn_probe.json")
    args = parser.parse_args()
    checkpoints = [Path(p) for p in args.checkpoints] or sorted(Path(DEFAULT_RUNS).glob("seed*/model.pt"))
    if not checkpoints:
        raise SystemExit(f"no model.pt given and none under {DEFAULT_RUNS}: train the classifier first")
    start = time.perf_counter()
    _, info = load_trained_model(checkpoints[0])
    data = CTMDSlices(size=info["input_size"])
    images = torch.stack([data[i]["image"] for i in range(len(data))])
    labels = np.asarray(data.labels)
    runs = []
    for path in checkpoints:
        model, info = load_trained_model(path)
        row = {"checkpoint": str(path), "sha256": sha256_file(path), "model": info["model_name"]}
        row["trained_bn"] = round(float(roc_auc_score(labels, scores(model, images))), 4)
        row["bn_layers"] = adapt_batchnorm(model, images)
        adapted = scores(model, images)
        row["adabn"] = round(float(roc_auc_score(labels, adapted)), 4)
        row["adabn_mean_score"] = {"positive": round(float(adapted[labels == 1].mean()), 4),
                                   "negative": round(float(adapted[labels == 0].mean()), 4)}
        runs.append(row)
        print(path, row["trained_bn"], row["adabn"], flush=True)
    summary = {k: {"mean": round(float(np.mean([r[k] for r in runs])), 4),
                   "std": round(float(np.std([r[k] for r in runs], ddof=1)), 4) if len(runs) > 1 else None}
               for k in ("trained_bn", "adabn")}
    write_probe(args.out, "scripts/probe_ctmd_adabn.py", vars(args),
                {"labels": SLICE_TARGET,
                 "test": {"dataset": "covid-ct-md", "slices": len(labels), "positive": int(labels.sum())},
                 "transductive": True, "runs": runs, "summary": summary}, start)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
