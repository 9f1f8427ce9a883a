"""Probe (no training): does framing the COVID-CT-MD slices the way the SARS-CoV-2 CT-scan slices
are framed (cut to the lungs, not to the body) change the cross-source slice AUC of classifiers
already trained by profile cpu-pretrained?

The SARS-CoV-2 sample, half of the classifiers' training data, is a viewer's crop around the two
lungs (the body wall is mostly cut off); COVID-CT-MD slices are the full field of view. Session 9's
probe (scripts/probe_cls_framing.py) cut to the *body* and lost AUC. This script cuts each CT-MD
slice to the bounding box of its threshold lung mask (jcs.diagnosis.lung_mask on the volume, air
below -400 HU), widened by ``--margin`` of the box side; slices whose lungs cover less than
``--min-lung`` of the slice keep the full field. The cut image then goes through the authors'
evaluation transform (Resize + CentreCrop), as the training images did.

Scores every model.pt given (default: the three seeds of jcs-classifier-efficientnet-lite2 in
runs/cpu-pretrained) with both framings, and reports slice AUC on the labelled COVID-CT-MD slices
(the cross-source test of the results files) per seed. Writes
results/diagnostics/ctmd_lung_framing_probe.json.

    python scripts/probe_ctmd_lung_framing.py
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from jcs.data import CTMDPatients
from jcs.data.ctmd_labels import SLICE_TARGET, covid_slice_labels, slice_groups
from jcs.data.readers import read_slice_folder
from jcs.data.transforms import resize_center_crop
from jcs.diagnosis import lung_mask, to_hu
from jcs.engine.evaluate import load_trained_model
from jcs.engine.provenance import sha256_file, write_probe


DEFAULT_RUNS = "runs/cpu-pretrained/classification/jcs-classifier-efficientnet-lite2"


def lung_box(mask: np.ndarray, margin: float, min_lung: float) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of the lungs in one H×W bool mask, widened by ``margin`` of each
    side's length; None when the lungs cover less than ``min_lung`` of the slice."""
    if mask.mean() < min_lung:
        return None
    rows, cols = np.nonzero(mask)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    dy, dx = int(round(margin * (bottom - top))), int(round(margin * (right - left)))
    height, width = mask.shape
    return max(0, top - dy), min(height, bottom + dy), max(0, left - dx), min(width, right + dx)


def ctmd_inputs(size: int, margin: float, min_lung: float) -> dict:
    """Per labelled/normal CT-MD slice: name, label, and the input tensors of both framings."""
    out = {"name": [], "label": [], "centre": [], "lungs": [], "cut": 0}
    for patient in CTMDPatients().patients:
        if patient["slice_labels"] is None and patient["diagnosis"] != "Normal":
            continue
        # label 1 = COVID-19 infection (CAP lesions are negatives), as in the results files
        labels = covid_slice_labels(slice_groups(patient["diagnosis"], patient["slice_labels"],
                                                 len(patient["slice_paths"])))
        volume = read_slice_folder(Path(patient["slice_paths"][0]).parent)
        lungs = lung_mask(to_hu(volume))
        for k, (path, label) in enumerate(zip(patient["slice_paths"], labels)):
            image = volume.array[k].astype(np.uint8)
            box = lung_box(lungs[k], margin, min_lung)
            cut = image if box is None else np.ascontiguousarray(image[box[0]:box[1], box[2]:box[3]])
            out["cut"] += box is not None
            out["name"].append(f"{patient['id']}/{Path(path).stem}")
            out["label"].append(int(label))
            out["centre"].append(resize_center_crop(image, size))
            out["lungs"].append(resize_center_crop(cut, size))
    return out


@torch.inference_mode()
def scores(model: torch.nn.Module, images: list, batch: int = 32) -> np.ndarray:
    model.eval()
    out = []
    for i in range(0, len(images), batch):
        logits = model(torch.stack(images[i:i + batch]))
        out += torch.softmax(logits.float(), dim=1)[:, 1].tolist()
    return np.asarray(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="*", help="model.pt files (default: the three seeds)")
    parser.add_argument("--margin", type=float, default=0.05)
    parser.add_argument("--min-lung", type=float, default=0.02)
    parser.add_argument("--out", default="results/diagnostics/ctmd_lung_framing_probe.json")
    args = parser.parse_args()
    checkpoints = [Path(p) for p in args.checkpoints] or sorted(Path(DEFAULT_RUNS).glob("seed*/model.pt"))
    if not checkpoints:
        raise SystemExit(f"no model.pt given and none under {DEFAULT_RUNS}: train the classifier first "
                         "(jcs reproduce --profile cpu-pretrained --only classification/...)")
    start = time.perf_counter()
    model, info = load_trained_model(checkpoints[0])
    data = ctmd_inputs(info["input_size"], args.margin, args.min_lung)
    labels = np.asarray(data["label"])
    runs = []
    for path in checkpoints:
        model, info = load_trained_model(path)
        row = {"checkpoint": str(path), "sha256": sha256_file(path), "model": info["model_name"]}
        for framing in ("centre", "lungs"):
            s = scores(model, data[framing])
            row[framing] = {"auc": round(float(roc_auc_score(labels, s)), 4),
                            "mean_score_positive": round(float(s[labels == 1].mean()), 4),
                            "mean_score_negative": round(float(s[labels == 0].mean()), 4)}
        runs.append(row)
        print(path, {k: row[k]["auc"] for k in ("centre", "lungs")}, flush=True)
    summary = {f: {"mean": round(float(np.mean([r[f]["auc"] for r in runs])), 4),
                   "std": round(float(np.std([r[f]["auc"] for r in runs], ddof=1)), 4) if len(runs) > 1 else None}
               for f in ("centre", "lungs")}
    write_probe(args.out, "scripts/probe_ctmd_lung_framing.py", vars(args),
                {"labels": SLICE_TARGET,
                 "test": {"dataset": "covid-ct-md", "slices": len(labels), "positive": int(labels.sum()),
                          "cut_to_lungs": data["cut"]},
                 "runs": runs, "summary": summary}, start)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
