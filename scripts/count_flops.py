"""Parameters and multiply-accumulates of every registered model, next to the figures of
models_and_metrics.md §0. Counting as there: ``torch.utils.flop_counter.FlopCounterMode`` on the
``meta`` device (no memory, no weights), batch 1, eval mode, conv/linear/matmul only; GMACs =
GFLOPs / 2. Input 512² for segmentation models, 224² for classifiers.

    python scripts/count_flops.py [--out results/flops.json] [--models jcs-seg jcs-joint ...]
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from jcs.models import create_model, list_models  # noqa: E402

# Comparison models, if their modules are present (they register themselves on import).
for _module in ("unet", "dss", "poolnet", "egnet"):
    try:
        importlib.import_module(f"jcs.models.{_module}")
    except ImportError:
        pass

# models_and_metrics.md §0: name -> candidates (label, params in M, GMACs at the input size).
REFERENCE = {
    "jcs-classifier": [("Res2Net-101-v1b, JCS classifier (trainable-BN count)", 43.181, 8.30)],
    "jcs-seg": [("JCS single-backbone seg model", 42.501, 243.0)],
    "jcs-joint": [("JCS joint seg model", 117.718, 250.9)],
    "unet": [("U-Net padded + BN + ConvTranspose", 31.044, 192.7)],
    "unet-bilinear": [("U-Net padded + BN + bilinear", 17.267, 159.9)],
    "dss": [("DSS (pad-1 re-impl.)", 62.226, 251.4)],
    "poolnet": [("PoolNet-ResNet50", 68.261, 194.1), ("PoolNet-VGG16", 52.513, 254.8)],
    "egnet": [("EGNet-ResNet50", 111.693, 619.4), ("EGNet-VGG16", 108.068, 627.2)],
}


def input_size(name: str) -> int:
    return 224 if "classifier" in name else 512


def count(name: str) -> dict:
    """Parameters (trainable ``nn.Parameter``s, as in the paper notes) and GMACs of one model."""
    with torch.device("meta"):
        model = create_model(name).eval()
        size = input_size(name)
        x = torch.empty(1, 3, size, size)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    params = sum(p.numel() for p in model.parameters())
    result = {"model": name, "input": size, "params": params,
              "gmacs": counter.get_total_flops() / 2e9}
    candidates = REFERENCE.get(name)
    if candidates:
        label, ref_params, ref_gmacs = min(candidates, key=lambda c: abs(c[1] - params / 1e6))
        result.update(reference=label, reference_params_m=ref_params, reference_gmacs=ref_gmacs)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "results" / "flops.json"))
    parser.add_argument("--models", nargs="*", default=None, help="default: every registered model")
    args = parser.parse_args(argv)
    names = args.models or list_models()
    rows = [count(name) for name in names]
    print(f"{'model':26s} {'input':>5s} {'params (M)':>11s} {'GMACs':>8s}   paper notes (M / GMACs)")
    for r in rows:
        ref = (f"{r['reference_params_m']:.3f} / {r['reference_gmacs']:.1f}  {r['reference']}"
               if "reference" in r else "-")
        print(f"{r['model']:26s} {r['input']:5d} {r['params'] / 1e6:11.3f} {r['gmacs']:8.2f}   {ref}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
