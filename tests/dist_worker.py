"""A tiny training run for tests/test_distributed.py, started as ``python tests/dist_worker.py``
(one process) or ``torchrun --nproc_per_node 2 tests/dist_worker.py`` (two, gloo on the CPU).

It trains ``tiny-classifier`` (3×3 conv → GroupNorm → ReLU → global average → 2-way linear, 258
parameters) with :func:`jcs.engine.train` on synthetic 32×32 images: cross-entropy is a mean over
images and GroupNorm normalises each image on its own, so one process with the global batch and
two processes with half of it each compute the same gradient (up to float rounding).
``--kill-after K`` SIGKILLs every rank right after the checkpoint of epoch K (a crash)."""
from __future__ import annotations

import argparse
import os
import signal

import torch
import torch.nn as nn

from jcs.engine import train
from jcs.models import list_models, register_model

MODEL = "tiny-classifier"


class TinyClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = nn.GroupNorm(2, 8)
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.norm(self.conv(x))).mean(dim=(2, 3)))

    def criterion(self) -> nn.Module:
        return nn.CrossEntropyLoss()


if MODEL not in list_models():
    register_model(MODEL, "test model")(TinyClassifier)


def items(n: int, seed: int) -> list:
    """``n`` images 3×32×32 whose class (alternating) shifts their mean."""
    g = torch.Generator().manual_seed(seed)
    return [{"image": torch.randn(3, 32, 32, generator=g) + 0.5 * (i % 2), "label": i % 2,
             "name": f"s{seed}-{i}"} for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--kill-after", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)

    def kill(info):
        if info["epoch"] == args.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    data = {"train": items(16, 1), "val": items(8, 2), "test": items(8, 3)}
    overrides = {"precision": "fp32", "channels_last": False, "cls.epochs": args.epochs,
                 "cls.batch_size": 8, "cls.max_iters": None, "cls.lr": 0.05,
                 "cls.step_epochs": 2, "eval_batch_size": 8, "keep_checkpoints": True}
    train(MODEL, data, profile="smoke", overrides=overrides, results_dir=args.out,
          runs_dir=args.out, experiment="dist", quiet=True, resume=args.resume,
          callbacks=[kill] if args.kill_after else [])


if __name__ == "__main__":
    main()
