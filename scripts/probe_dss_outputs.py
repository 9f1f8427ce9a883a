"""Why DSS scores below Dice 0.5 in the cpu profile: every output of a trained DSS, measured.

Loads a trained DSS (``model.pt`` of a run; builder options from the checkpoint) and, on the MedSeg
test slices at the run's input size, gives for each of its seven training outputs (sides 1–6 after
the short connections, the fusion) and for its eval prediction (the mean of sides 3, 4, 5 and the
fusion): Dice at 0.5, the best Dice over thresholds 0.1–0.4, the mean probability on lesion pixels
and the largest probability per slice; the eval prediction also after per-image min-max scaling
(the released DSS notebook's). It also lists the weights of the 1×1 score, short-connection and
fusion convolutions, to compare with their initial values. Writes a JSON file (default
``results/diagnostics/dss_outputs_probe.json``; entries keyed by checkpoint are replaced).

    python scripts/probe_dss_outputs.py runs/cpu/table7/dss/seed0/model.pt --label "..."
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from jcs.data import SegmentationSlices
from jcs.engine.provenance import git_state, now_iso, package_versions, sha256_file
from jcs.metrics import compute_dice
from jcs.models import create_model
from jcs.models.weights import load_checkpoint, read_checkpoint

OUTPUTS = ("side1", "side2", "side3", "side4", "side5", "side6", "fusion", "eval (3, 4, 5, fusion)")
THRESHOLDS = (0.1, 0.2, 0.3, 0.4)


def probe(checkpoint: Path, size: int) -> dict:
    payload = read_checkpoint(checkpoint)
    options = dict(payload.get("model_options") or {})
    options.pop("pretrained", None)  # the trained weights replace any initialisation
    model = create_model("dss", **options)
    load_checkpoint(checkpoint, model)
    model.eval()
    test = SegmentationSlices("medseg", "test", size)
    rows = {name: {"dice": [], "best": [], "lesion_p": [], "max_p": []} for name in OUTPUTS}
    minmax = []
    with torch.no_grad():
        for i in range(len(test)):
            item = test[i]
            mask = item["mask"][0].numpy()
            if mask.sum() == 0:
                continue
            logits = model._logits(item["image"][None])
            probs = [torch.sigmoid(t)[0, 0].numpy() for t in logits]
            probs.append(np.mean([probs[j] for j in (2, 3, 4, 6)], axis=0))
            for name, p in zip(OUTPUTS, probs):
                row = rows[name]
                row["dice"].append(compute_dice(p, mask))
                row["best"].append(max(compute_dice((p > t).astype(np.float32), mask)
                                       for t in THRESHOLDS))
                row["lesion_p"].append(float(p[mask > 0.5].mean()))
                row["max_p"].append(float(p.max()))
            p = probs[-1]
            minmax.append(compute_dice((p - p.min()) / max(float(p.max() - p.min()), 1e-8), mask))
    state = model.state_dict()
    heads = {k: [round(float(x), 4) for x in v.flatten()] if v.numel() <= 6
             else {"abs_mean": round(float(v.abs().mean()), 4)}
             for k, v in state.items()
             if k.startswith(("short", "fuse")) or (k.startswith("sides") and ".2." in k)}
    return {"checkpoint": str(checkpoint), "checkpoint_sha256": sha256_file(checkpoint),
            "model_options": options, "size": size, "n_slices": len(minmax),
            "outputs": {name: {"dice_at_0.5": round(float(np.mean(r["dice"])), 4),
                               "best_dice_thresholds_0.1_0.4": round(float(np.mean(r["best"])), 4),
                               "mean_probability_on_lesions": round(float(np.mean(r["lesion_p"])), 4),
                               "mean_max_probability": round(float(np.mean(r["max_p"])), 4)}
                        for name, r in rows.items()},
            "eval_dice_after_min_max": round(float(np.mean(minmax)), 4),
            "head_weights": heads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--label", default="", help="what run this is (profile, seed, options)")
    parser.add_argument("--out", default="results/diagnostics/dss_outputs_probe.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    entry = {"label": args.label, **probe(args.checkpoint, args.size), "finished": now_iso(),
             "git": git_state(), "versions": package_versions()}
    print(json.dumps(entry["outputs"], indent=1))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stored = json.loads(out.read_text()) if out.is_file() else {"runs": []}
    stored["what"] = __doc__.split("\n\n")[0]
    stored["runs"] = [r for r in stored["runs"] if r["checkpoint_sha256"] != entry["checkpoint_sha256"]]
    stored["runs"].append(entry)
    out.write_text(json.dumps(stored, indent=1) + "\n")


if __name__ == "__main__":
    main()
