"""Probe: does cutting every slice to the patient's body (jcs.data.transforms.crop_to_body) help the
packaged ImageNet EfficientNet-Lite2 classifier transfer to real scans of another source?

Trains on UCSD train + SARS-CoV-2 CT sample train (as profile cpu-pretrained does), AdamW, and
reports slice AUC on UCSD test, the SARS-CoV-2 held-out block and the COVID-CT-MD labelled slices
after every epoch, for each framing:
  centre   - Resize(256/224·S) + CentreCrop(S) (the authors' eval transform; the current default)
  body     - crop to the body, then squash to S×S (eval); train: body crop + random resized crop
Writes results/diagnostics/cls_framing_probe.json. Run it alone (2 cores).
"""
from __future__ import annotations

import argparse, json, time, platform
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from PIL import Image

import jcs.data.datasets as D
from jcs.data.ctmd_labels import SLICE_TARGET
from jcs.engine.provenance import code_state
from jcs.data.transforms import crop_to_body, normalize, random_resized_crop_flip, resize_center_crop
from jcs.models import create_model


def framing(kind: str):
    def classify(slice_uint8, size, augment):
        if kind == "centre":
            return random_resized_crop_flip(slice_uint8, size) if augment else resize_center_crop(slice_uint8, size)
        body = crop_to_body(slice_uint8)
        if augment:
            return random_resized_crop_flip(np.ascontiguousarray(body), size)
        image = Image.fromarray(np.ascontiguousarray(body)).resize((size, size), Image.Resampling.BILINEAR)
        return normalize(torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()))
    return classify


def evaluate(model, data, batch=64):
    model.eval(); scores, labels = [], []
    loader = torch.utils.data.DataLoader(data, batch_size=batch, num_workers=0)
    with torch.inference_mode():
        for b in loader:
            logits = model(b["image"].contiguous(memory_format=torch.channels_last))
            if isinstance(logits, (tuple, list)): logits = logits[0]
            if isinstance(logits, dict): logits = logits["logits"]
            scores += torch.softmax(logits.float(), 1)[:, 1].tolist(); labels += b["label"].tolist()
    return float(roc_auc_score(labels, scores)), scores


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--framings", nargs="+", default=["centre", "body"])
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="results/diagnostics/cls_framing_probe.json")
    args = ap.parse_args()
    out = {"script": "scripts/probe_cls_framing.py", "args": vars(args), "git": code_state(),
           "labels": SLICE_TARGET,  # COVID-CT-MD: CTMDSlices' label 1 = COVID-19 infection
           "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
           "runs": {}}
    for kind in args.framings:
        D._classify = framing(kind)
        torch.manual_seed(args.seed); np.random.seed(args.seed)
        train = torch.utils.data.ConcatDataset([D.ClassificationSlices("ucsd-covid-ct", "train", args.size, True),
                                                D.ClassificationSlices("sarscov2-ct", "train", args.size, True)])
        tests = {"ucsd": D.ClassificationSlices("ucsd-covid-ct", "test", args.size),
                 "sarscov2": D.ClassificationSlices("sarscov2-ct", "test", args.size),
                 "ctmd": D.CTMDSlices(size=args.size)}
        model = create_model("jcs-classifier-efficientnet-lite2", pretrained="packaged").to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
        loader = torch.utils.data.DataLoader(train, batch_size=32, shuffle=True, num_workers=0, drop_last=True)
        steps = args.epochs * len(loader)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=steps, pct_start=0.1)
        history = []
        t0 = time.time()
        for epoch in range(args.epochs):
            model.train(); losses = []
            for b in loader:
                logits = model(b["image"].contiguous(memory_format=torch.channels_last))
                if isinstance(logits, (tuple, list)): logits = logits[0]
                if isinstance(logits, dict): logits = logits["logits"]
                loss = torch.nn.functional.cross_entropy(logits.float(), b["label"])
                opt.zero_grad(); loss.backward(); opt.step(); sched.step(); losses.append(loss.item())
            row = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "train_s": round(time.time() - t0, 1)}
            for name, data in tests.items():
                row[name] = round(evaluate(model, data)[0], 4)
            history.append(row); print(kind, row, flush=True)
        out["runs"][kind] = {"history": history, "wall_s": round(time.time() - t0, 1)}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
