"""Training losses: the JCS deep-supervision loss and the EGNet / PoolNet / DSS saliency losses.

* ``BCEDiceLoss``: JCS, BCE + (1 − soft Dice) per side output, summed (jcs_official.md §4.4).
* ``SumBCELoss``: BCE-with-logits summed over pixels, PoolNet / EGNet / DSS saliency loss
  (models_and_metrics.md §3-5).
* ``BalancedBCELoss`` + ``mask_to_edges``: EGNet's class-balanced edge loss on ``sal2edge.m``
  edges; ``EGNetLoss`` combines both (models_and_metrics.md §5).

All losses take logits and compute in float32 with autocast disabled, so they are safe under
bf16 / fp16 autocast. Masks are N×1×H×W (N×H×W is accepted) with values in {0, 1}.

Reductions: ``"sum"`` sums over pixels and divides by the batch size (per-image sum, as the
SOD codes divide by ``iter_size·batch``); at 512² this is ~2.6e5 times a per-pixel mean, which
is why those papers use learning rates of 1e-8 (DSS) to 5e-5. ``"mean"`` averages over pixels.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "BCEDiceLoss",
    "BalancedBCELoss",
    "EGNetLoss",
    "SumBCELoss",
    "balanced_bce_weights",
    "mask_to_edges",
]

_REDUCTIONS = ("mean", "sum")


def _outputs_list(outputs, name: str) -> list[torch.Tensor]:
    """A list of N×1×H×W logits; a single N×K×H×W tensor counts as K outputs."""
    if isinstance(outputs, torch.Tensor):
        if outputs.ndim != 4:
            raise ValueError(f"{name}: expected N×K×H×W logits, got shape {tuple(outputs.shape)}")
        return list(outputs.split(1, dim=1))
    if isinstance(outputs, Sequence) and outputs and all(
            isinstance(o, torch.Tensor) for o in outputs):
        return list(outputs)
    raise TypeError(
        f"{name}: expected a tensor or a non-empty list of tensors, got {type(outputs).__name__}"
    )


def _as_mask(mask: torch.Tensor) -> torch.Tensor:
    if mask.ndim == 3:
        mask = mask.unsqueeze(1)
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"mask must be N×1×H×W or N×H×W, got shape {tuple(mask.shape)}")
    return mask.float()


def _check_pair(logits: torch.Tensor, mask: torch.Tensor, name: str) -> torch.Tensor:
    if logits.shape != mask.shape:
        raise ValueError(
            f"{name}: output shape {tuple(logits.shape)} differs from mask shape "
            f"{tuple(mask.shape)}; up-sample every side output to the mask size"
        )
    return logits.float()


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _reduce(pixel_losses: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return pixel_losses.mean()
    return pixel_losses.sum() / pixel_losses.shape[0]


def _weights(weights, n: int, name: str) -> list[float]:
    if weights is None:
        return [1.0] * n
    if len(weights) != n:
        raise ValueError(f"{name}: {len(weights)} weights for {n} outputs")
    return list(weights)


class BCEDiceLoss(nn.Module):
    """JCS deep-supervision loss (jcs_official.md §4.4): for every output,
    ``BCE(σ(logit), mask)`` (mean over pixels, computed stably from logits) ``+ 1 − Dice`` with
    the soft Dice ``(2·Σ p·g + 1e-5) / (Σ p + Σ g + 1e-5)`` over the whole batch, ``p = σ(logit)``;
    outputs summed with weight 1 (or ``weights``)."""

    def __init__(self, weights: Sequence[float] | None = None, smooth: float = 1e-5):
        super().__init__()
        self.weights = None if weights is None else list(weights)
        self.smooth = smooth

    def forward(self, outputs, mask: torch.Tensor) -> torch.Tensor:
        logits_list = _outputs_list(outputs, "BCEDiceLoss")
        weights = _weights(self.weights, len(logits_list), "BCEDiceLoss")
        with torch.autocast(device_type=mask.device.type, enabled=False):
            g = _as_mask(mask)
            total = g.new_zeros(())
            for w, logits in zip(weights, logits_list):
                x = _check_pair(logits, g, "BCEDiceLoss")
                bce = F.binary_cross_entropy_with_logits(x, g)
                p = torch.sigmoid(x)
                dice = (2 * (p * g).sum() + self.smooth) / (p.sum() + g.sum() + self.smooth)
                total = total + w * (bce + 1 - dice)
        return total


@torch.no_grad()
def mask_to_edges(mask: torch.Tensor) -> torch.Tensor:
    """Edge map of a binary mask as EGNet's ``sal2edge.m`` (models_and_metrics.md §5):
    ``[gy, gx] = gradient(mask > 0.5)``, edge = ``gx² + gy² ≠ 0``. The gradient is MATLAB's:
    central differences inside, one-sided at the borders, so the edge is a two-pixel band (one
    pixel each side of the boundary). Input N×1×H×W (or N×H×W); returns float N×1×H×W in {0, 1}."""
    g = _as_mask(mask) > 0.5
    g = g.float()

    def gradient(x: torch.Tensor, dim: int) -> torch.Tensor:
        n = x.shape[dim]
        if n < 2:
            return torch.zeros_like(x)
        first = x.narrow(dim, 1, 1) - x.narrow(dim, 0, 1)
        last = x.narrow(dim, n - 1, 1) - x.narrow(dim, n - 2, 1)
        inner = (x.narrow(dim, 2, n - 2) - x.narrow(dim, 0, n - 2)) / 2
        return torch.cat([first, inner, last], dim=dim)

    gy, gx = gradient(g, 2), gradient(g, 3)
    return ((gx * gx + gy * gy) != 0).float()


class SumBCELoss(nn.Module):
    """BCE-with-logits over pixels, the saliency loss of PoolNet / EGNet / DSS
    (``reduction="sum"``: summed per image, averaged over the batch) summed over outputs."""

    def __init__(self, reduction: str = "sum"):
        super().__init__()
        _check_reduction(reduction)
        self.reduction = reduction

    def forward(self, outputs, mask: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=mask.device.type, enabled=False):
            g = _as_mask(mask)
            total = g.new_zeros(())
            for logits in _outputs_list(outputs, "SumBCELoss"):
                x = _check_pair(logits, g, "SumBCELoss")
                pixel = F.binary_cross_entropy_with_logits(x, g, reduction="none")
                total = total + _reduce(pixel, self.reduction)
        return total


def balanced_bce_weights(target: torch.Tensor) -> torch.Tensor:
    """EGNet edge weights per image: label-1 pixels ``num_neg / num_total``, label-0 pixels
    ``1.1 · num_pos / num_total`` (models_and_metrics.md §5)."""
    n_pixels = target[0].numel()
    num_pos = target.flatten(1).sum(dim=1).view(-1, *([1] * (target.ndim - 1)))
    num_neg = n_pixels - num_pos
    return target * (num_neg / n_pixels) + (1 - target) * (1.1 * num_pos / n_pixels)


class BalancedBCELoss(nn.Module):
    """EGNet's class-balanced edge loss: BCE-with-logits weighted by
    :func:`balanced_bce_weights`, counts taken per image (identical to EGNet's batch-1 training),
    ``reduction="sum"``: summed per image and averaged over the batch. Summed over outputs."""

    def __init__(self, reduction: str = "sum"):
        super().__init__()
        _check_reduction(reduction)
        self.reduction = reduction

    def forward(self, outputs, target: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=target.device.type, enabled=False):
            t = _as_mask(target)
            w = balanced_bce_weights(t)
            total = t.new_zeros(())
            for logits in _outputs_list(outputs, "BalancedBCELoss"):
                x = _check_pair(logits, t, "BalancedBCELoss")
                pixel = F.binary_cross_entropy_with_logits(x, t, weight=w, reduction="none")
                total = total + _reduce(pixel, self.reduction)
        return total


class EGNetLoss(nn.Module):
    """EGNet training loss (models_and_metrics.md §5): ``outputs = {"sal": [logits...],
    "edge": [logits...]}``; balanced BCE of every edge output against ``mask_to_edges(mask)``
    plus sum-BCE of every saliency output against ``mask``, all with weight 1."""

    def __init__(self, reduction: str = "sum"):
        super().__init__()
        self.edge_loss = BalancedBCELoss(reduction)
        self.sal_loss = SumBCELoss(reduction)

    def forward(self, outputs: dict, mask: torch.Tensor) -> torch.Tensor:
        if not isinstance(outputs, dict) or set(outputs) != {"sal", "edge"}:
            keys = sorted(outputs) if isinstance(outputs, dict) else type(outputs).__name__
            raise ValueError(f"EGNetLoss expects a dict with keys 'sal' and 'edge', got {keys}")
        edges = mask_to_edges(mask)
        return self.edge_loss(outputs["edge"], edges) + self.sal_loss(outputs["sal"], mask)
