"""Optimisers and learning-rate schedules of the recipes (jcs_official.md §4.4, PAPER.md)."""
from __future__ import annotations

import torch
import torch.nn as nn

from .profiles import Recipe


def build_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """Adam (betas, L2 weight decay, as the authors' ``torch.optim.Adam``), AdamW (decoupled
    weight decay, for fine-tuning pretrained classifiers) or SGD with momentum,
    over the trainable parameters. The fused implementation is used on CPU and CUDA (same
    update rule; ~6× faster than the default for-each Adam on a 2-core CPU)."""
    params = [p for p in model.parameters() if p.requires_grad]
    fused = bool(params) and params[0].device.type in ("cpu", "cuda")
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.lr, betas=tuple(recipe.betas),
                                weight_decay=recipe.weight_decay, fused=fused)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=recipe.lr, betas=tuple(recipe.betas),
                                 weight_decay=recipe.weight_decay, fused=fused)
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum,
                               weight_decay=recipe.weight_decay, fused=fused)
    raise ValueError(f"optimizer must be 'adam', 'adamw' or 'sgd', got {recipe.optimizer!r}")


def learning_rate(recipe: Recipe, epoch: int, iteration: int, total_iterations: int) -> float:
    """Learning rate of global ``iteration`` (0-based) in ``epoch`` (0-based).

    * ``poly``: ``lr·(1 − iteration/total_iterations)^poly_power``; during epoch 0 the first
      ``warmup_iters`` iterations use ``lr·(0.1 + 0.9·(iteration+1)/warmup_iters)`` instead
      (the authors' ``train_single.py``: warm-up only in epoch 0).
    * ``step``: ``lr·step_gamma^(epoch // step_epochs)``.
    """
    if recipe.schedule == "step":
        return recipe.lr * recipe.step_gamma ** (epoch // recipe.step_epochs)
    if recipe.schedule != "poly":
        raise ValueError(f"schedule must be 'poly' or 'step', got {recipe.schedule!r}")
    if epoch == 0 and iteration < recipe.warmup_iters:
        return recipe.lr * (0.1 + 0.9 * (iteration + 1) / recipe.warmup_iters)
    return recipe.lr * max(0.0, 1.0 - iteration / total_iterations) ** recipe.poly_power


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Write ``lr`` into every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr
