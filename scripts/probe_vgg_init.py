"""Why DSS collapsed in the cpu profile: a plain VGG16 (no BN) trained from scratch with PyTorch's
default conv init versus He (Kaiming) init, measured.

For each init and seed: the input signal left in the conv1..conv5 features at the start (std of
the features across 4 MedSeg slices, i.e. how much they vary with the input), then a short
training of the model on the MedSeg train slices with the cpu profile's segmentation recipe
(256², batch 2, Adam 2e-4, the model's own loss, bf16 autocast), and on the 48 test slices (masks
at 256²): Dice at 0.5 of the eval prediction and the mean over slices of the largest probability
of each training output. Writes a JSON file (default ``results/diagnostics/vgg_init_probe.json``).

    python scripts/probe_vgg_init.py --model dss --iters 150 --seeds 1
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from jcs.data import SegmentationSlices
from jcs.engine.provenance import git_state, now_iso, package_versions
from jcs.engine.runtime import autocast, resolve_precision, seed_everything, to_float
from jcs.metrics import compute_dice
from jcs.models import create_model


def body_of(model):
    return model.body if hasattr(model, "body") else model.vgg


def signal(model, images: torch.Tensor) -> list[float]:
    """Std over images of each stage's features, averaged over channels and positions."""
    with torch.no_grad():
        feats = body_of(model)(images)
    return [float(f.std(dim=0).mean()) for f in feats]


def run(model_name: str, init: str, seed: int, iters: int, size: int) -> dict:
    seed_everything(seed)
    model = create_model(model_name)
    for layer in body_of(model).conv_layers():  # whatever the model asks for, set the probed init
        if init == "pytorch":  # PyTorch's conv default
            layer.conv.reset_parameters()
        else:  # He init, as VGG16Body(init="kaiming")
            torch.nn.init.kaiming_normal_(layer.conv.weight, mode="fan_out", nonlinearity="relu")
            torch.nn.init.zeros_(layer.conv.bias)
    train = SegmentationSlices("medseg", "train", size, augment=True)
    test = SegmentationSlices("medseg", "test", size)
    probe = torch.stack([test[i]["image"] for i in range(4)])
    model.eval()
    stage_signal = signal(model, probe)
    device = torch.device("cpu")
    precision = resolve_precision("auto", device)
    criterion = model.criterion()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(train, batch_size=2, shuffle=True, generator=generator)
    model.train()
    done, tic, losses = 0, time.perf_counter(), []
    while done < iters:
        for batch in loader:
            with autocast(device, precision):
                outputs = model(batch["image"])
            loss = criterion(to_float(outputs), batch["mask"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            done += 1
            if done >= iters:
                break
    train_s = time.perf_counter() - tic
    model.eval()
    dice, side_max = [], []
    with torch.no_grad():
        for item in test:
            if float(item["mask"].sum()) == 0:
                continue
            x = item["image"][None]
            with autocast(device, precision):
                prob = model(x).float()
                model.train()
                logits = to_float(model(x))
                model.eval()
            if isinstance(logits, dict):
                logits = logits["sal"]
            side_max.append([float(torch.sigmoid(t).max()) for t in logits])
            dice.append(compute_dice(prob[0, 0].numpy(), item["mask"][0].numpy()))
    return {"model": model_name, "init": init, "seed": seed, "iterations": iters, "size": size,
            "stage_signal_std": [round(v, 6) for v in stage_signal],
            "dice_at_0.5": round(float(np.mean(dice)), 4),
            "mean_max_probability_per_output": [round(float(v), 4)
                                                for v in np.mean(side_max, axis=0)],
            "loss_first_last": [round(losses[0], 2), round(float(np.mean(losses[-10:])), 2)],
            "train_s": round(train_s, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="dss")
    parser.add_argument("--iters", type=int, default=150)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--inits", nargs="+", default=["pytorch", "kaiming"])
    parser.add_argument("--out", default="results/diagnostics/vgg_init_probe.json")
    args = parser.parse_args()
    started = now_iso()
    runs = []
    for seed in args.seeds:
        for init in args.inits:
            runs.append(run(args.model, init, seed, args.iters, args.size))
            print(json.dumps(runs[-1]))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(out.read_text()) if out.is_file() else {"runs": []}
    previous["runs"] = [r for r in previous["runs"]
                        if (r["model"], r["init"], r["seed"], r["iterations"]) not in
                        {(n["model"], n["init"], n["seed"], n["iterations"]) for n in runs}] + runs
    previous.update({"what": __doc__.split("\n\n")[0], "command": " ".join(
        ["python scripts/probe_vgg_init.py", "--model", args.model, "--iters", str(args.iters),
         "--seeds", *map(str, args.seeds)]), "finished": now_iso(), "started": started,
        "git": git_state(), "versions": package_versions(),
        "torch_threads": torch.get_num_threads()})
    out.write_text(json.dumps(previous, indent=1) + "\n")


if __name__ == "__main__":
    main()
