"""Small building blocks shared by the models."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

# The input every jcs model takes: RGB in [0, 1] scale, minus the ImageNet mean, over its std
# (``jcs.data.transforms.normalize``; models do not import jcs.data, a test keeps them equal).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class InputRenormalize(nn.Module):
    """Per-channel affine map from this project's input (ImageNet-normalised RGB) to the
    normalisation a backbone's weights were trained with: ``((x·std + mean) − new_mean) / new_std``.
    No parameters (buffers not saved in the state dict), so checkpoints stay those of the
    backbone. Example: EfficientNet-Lite weights expect mean = std = 0.5."""

    def __init__(self, new_mean, new_std, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__()
        old_mean, old_std = torch.tensor(mean), torch.tensor(std)
        new_mean, new_std = torch.tensor(new_mean), torch.tensor(new_std)
        self.register_buffer("scale", (old_std / new_std).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", ((old_mean - new_mean) / new_std).view(1, 3, 1, 1),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale.to(x.dtype) + self.shift.to(x.dtype)


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
