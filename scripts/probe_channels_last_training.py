"""Does channels-last help or hurt a training step where bf16 is not native? One jcs-seg training
step (the cpu profile's recipe: 256², batch 2, Adam) in fp32, contiguous vs channels-last, timed
with jcs.bench.train_step (median of ``--repeats`` after one warm-up). Writes
``results/diagnostics/channels_last_training.json`` with the provenance of the run.

    python scripts/probe_channels_last_training.py --size 256 --batch 2 --repeats 2
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from jcs.bench import provenance, train_step
from jcs.inference import bf16_supported


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="jcs-seg")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default="results/diagnostics/channels_last_training.json")
    args = parser.parse_args()
    device = torch.device("cpu")
    if bf16_supported(device):
        raise SystemExit("bf16 is native here: jcs.bench's optimised train step adds bf16 autocast, "
                         "so it would not isolate channels-last; run `jcs bench` instead")
    runs = {name: train_step(args.model, args.size, args.batch, device, optimised, args.repeats)
            for name, optimised in (("contiguous", False), ("channels_last", True))}
    out = {"what": f"{args.model} training step, fp32, {args.size}², batch {args.batch}: contiguous "
                   "vs channels-last (jcs.bench.train_step; median after one warm-up)",
           "provenance": provenance(device), "runs": runs,
           "channels_last_speedup": runs["contiguous"]["seconds"] / runs["channels_last"]["seconds"]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print({k: round(v["seconds"], 2) for k, v in runs.items()}, "speed-up", round(out["channels_last_speedup"], 2))


if __name__ == "__main__":
    main()
