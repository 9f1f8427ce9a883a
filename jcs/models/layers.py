"""Small building blocks shared by the models."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class FrozenBatchNorm2d(nn.Module):
    """Batch norm with fixed statistics and affine terms stored as buffers (never trained), as
    every BN in the authors' VGG16-BN and Res2Net backbones (jcs_official.md §4.1-4.2).

    State-dict keys match ``nn.BatchNorm2d`` (weight, bias, running_mean, running_var), so
    ImageNet BN weights load into it directly."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        state_dict.pop(prefix + "num_batches_tracked", None)  # present in nn.BatchNorm2d files
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.view(1, -1, 1, 1).to(x.dtype) + shift.view(1, -1, 1, 1).to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


def make_norm(channels: int, norm: str) -> nn.Module:
    """``norm`` is ``"none"``, ``"frozen"`` (FrozenBatchNorm2d) or ``"bn"`` (trainable)."""
    if norm == "none":
        return nn.Identity()
    if norm == "frozen":
        return FrozenBatchNorm2d(channels)
    if norm == "bn":
        return nn.BatchNorm2d(channels)
    raise ValueError(f"norm must be 'none', 'frozen' or 'bn', got {norm!r}")


class ConvReLU(nn.Sequential):
    """k×k convolution (with bias, "same" padding times ``dilation``) followed by ReLU."""

    def __init__(self, cin: int, cout: int, k: int = 3, dilation: int = 1, bias: bool = True):
        super().__init__(
            nn.Conv2d(cin, cout, k, padding=dilation * (k // 2), dilation=dilation, bias=bias),
            nn.ReLU(inplace=True),
        )


def upsample_like(x: torch.Tensor, ref: torch.Tensor, align_corners: bool = False) -> torch.Tensor:
    """Bilinear resize of ``x`` to the spatial size of ``ref``."""
    if x.shape[-2:] == ref.shape[-2:]:
        return x
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=align_corners)
