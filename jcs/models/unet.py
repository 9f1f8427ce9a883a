"""U-Net (Ronneberger et al., MICCAI 2015), the "U-Net" row of Table VII.

Which U-Net the JCS authors trained is not stated (models_and_metrics.md §2, §10). This is the
*padded* re-implementation that most COVID-19 segmentation papers use (Inf-Net ships one):
every 3×3 convolution has padding 1 and is followed by BN + ReLU, so a 512² slice gives a 512²
map without the 2015 paper's tiling and cropping. ``bilinear=False`` (default, "unet") up-samples
with 2×2 transposed convolutions like the paper (31.04 M parameters); ``bilinear=True``
("unet-bilinear", the Inf-Net default) uses bilinear up-sampling and halves the decoder widths
(17.27 M). One output channel with a sigmoid replaces the paper's 2-class softmax; there is no
deep supervision and no ImageNet initialisation (trained from scratch, as in the paper).

Loss: the paper's weighted cross-entropy needs its border weight maps; for a like-for-like
comparison with JCS this model is trained with the JCS loss, BCE + soft Dice (jcs.losses)."""
from __future__ import annotations

from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..losses import BCEDiceLoss
from .registry import register_model


class DoubleConv(nn.Sequential):
    """(conv3×3 pad 1 → BN → ReLU) × 2; the convs keep their bias as in Inf-Net's copy
    (models_and_metrics.md §0 counts 31.044 M with it)."""

    def __init__(self, cin: int, cout: int, mid: Optional[int] = None):
        mid = mid or cout
        super().__init__(
            nn.Conv2d(cin, mid, 3, padding=1),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, cout, 3, padding=1),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class Down(nn.Sequential):
    """2×2 max-pool then :class:`DoubleConv`."""

    def __init__(self, cin: int, cout: int):
        super().__init__(nn.MaxPool2d(2), DoubleConv(cin, cout))


class Up(nn.Module):
    """Up-sample ×2, zero-pad to the skip's size (odd sizes), concatenate, :class:`DoubleConv`."""

    def __init__(self, cin: int, cout: int, bilinear: bool):
        super().__init__()
        if bilinear:
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            self.conv = DoubleConv(cin, cout, cin // 2)
        else:
            self.up = nn.ConvTranspose2d(cin, cin // 2, 2, stride=2)
            self.conv = DoubleConv(cin, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        dy, dx = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
        x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([skip, x], dim=1))


class UNet(nn.Module):
    """Padded U-Net, widths 64-128-256-512-1024 (``bilinear``: bottleneck and decoder halved)."""

    def __init__(self, in_channels: int = 3, bilinear: bool = False):
        super().__init__()
        factor = 2 if bilinear else 1
        self.inc = DoubleConv(in_channels, 64)
        self.down = nn.ModuleList(
            [Down(64, 128), Down(128, 256), Down(256, 512), Down(512, 1024 // factor)]
        )
        self.up = nn.ModuleList(
            [
                Up(1024, 512 // factor, bilinear),
                Up(512, 256 // factor, bilinear),
                Up(256, 128 // factor, bilinear),
                Up(128, 64, bilinear),
            ]
        )
        self.outc = nn.Conv2d(64, 1, 1)

    def forward(self, x: torch.Tensor):
        """Training: ``[logits]`` (N×1×H×W); eval: sigmoid probability N×1×H×W."""
        skips: List[torch.Tensor] = [self.inc(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for up in self.up:
            y = up(y, skips.pop())
        logits = self.outc(y)
        return [logits] if self.training else torch.sigmoid(logits)

    def criterion(self) -> nn.Module:
        """BCE + soft Dice (the JCS loss), see the module docstring."""
        return BCEDiceLoss()


def _no_backbone(pretrained) -> None:
    if pretrained not in (None, False):
        raise ValueError(
            "unet: pretrained must be None; U-Net has no ImageNet backbone and is trained from "
            "scratch (Ronneberger et al. 2015)."
        )


@register_model("unet")
def unet(pretrained=None, in_channels: int = 3) -> UNet:
    """U-Net, padded convs + BN, 2×2 transposed-conv up-sampling (31.04 M params)."""
    _no_backbone(pretrained)
    return UNet(in_channels, bilinear=False)


@register_model("unet-bilinear")
def unet_bilinear(pretrained=None, in_channels: int = 3) -> UNet:
    """U-Net, padded convs + BN, bilinear up-sampling as in Inf-Net (17.27 M params)."""
    _no_backbone(pretrained)
    return UNet(in_channels, bilinear=True)
