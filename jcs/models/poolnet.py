"""PoolNet: a simple pooling-based design for salient object detection (Liu et al., CVPR'19),
the "PoolNet" row of Table VII, VGG-16 version, re-implemented from models_and_metrics.md §1, §4.

A global guidance module (GGM: pyramid pooling with bins 1, 3, 5, and a 3×3 conv per lateral
level, the "GGFs") and feature aggregation modules (FAM: average pools 2, 4, 8 on the top-down
feature, applied before it is up-sampled and merged with the lateral and its GGF, as in the
released code) on the relu2_2 … relu5_3 features; one output, no deep supervision. All added
convs are bias-free except the score conv; init normal(0, 0.01). The released code's default
ResNet-50 backbone is not provided. Deviation: torchvision ImageNet weights with ImageNet RGB
input instead of Caffe VGG weights with BGR mean subtraction.

Loss: ``loss="paper"`` (default) is the original method's loss, as the baselines of Table VII
were presumably re-trained with their authors' code (not stated, PAPER.md "Unknowns");
``loss="jcs"`` uses the JCS BCE + soft Dice instead, for a like-for-like comparison."""
from __future__ import annotations

from typing import List, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..losses import BCEDiceLoss, SumBCELoss
from .layers import upsample_like
from .registry import register_model
from .vgg import VGG16Body
from .vgg_weights import Pretrained, load_vgg16_weights

PPM_BINS = (1, 3, 5)
FAM_POOLS = (2, 4, 8)
GGF_WIDTHS = (512, 256, 128)  # at the relu4_3, relu3_3, relu2_2 levels
# (in, out, up-sample to the next lateral and fuse with it) for the four FAMs, top-down.
FAM_CONFIGS = ((512, 512, True), (512, 256, True), (256, 128, True), (128, 128, False))
# The 1/16 feature must hold one 8×8 FAM pool: ceil(size / 16) >= 8.
MIN_INPUT_SIZE = 113


def _up(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return upsample_like(x, ref, align_corners=True)


def _conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1, bias=False)


class GlobalGuidance(nn.Module):
    """GGM: PPM (identity + bins 1, 3, 5) fused by a 3×3 conv, then one 3×3 conv + ReLU per
    lateral level (the GGFs)."""

    def __init__(self, channels: int = 512, widths: Sequence[int] = GGF_WIDTHS):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.AdaptiveAvgPool2d(b),
                nn.Conv2d(channels, channels, 1, bias=False),
                nn.ReLU(inplace=True),
            )
            for b in PPM_BINS
        )
        pyramid_channels = channels * (len(PPM_BINS) + 1)
        self.merge = nn.Sequential(_conv3x3(pyramid_channels, channels), nn.ReLU(inplace=True))
        self.ggfs = nn.ModuleList(
            nn.Sequential(_conv3x3(channels, w), nn.ReLU(inplace=True)) for w in widths
        )

    def forward(self, top: torch.Tensor, laterals: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        pyramid = [top] + [_up(branch(top), top) for branch in self.branches]
        guide = self.merge(torch.cat(pyramid, dim=1))
        return [ggf(_up(guide, lateral)) for ggf, lateral in zip(self.ggfs, laterals)]


class FAM(nn.Module):
    """Feature aggregation: ``x + Σ_s up(conv(avgpool_s(x)))`` → ReLU → (up to the lateral) →
    3×3 conv → (add lateral and GGF → 3×3 conv)."""

    def __init__(self, cin: int, cout: int, fuse: bool):
        super().__init__()
        self.pool_convs = nn.ModuleList(_conv3x3(cin, cin) for _ in FAM_POOLS)
        self.conv_sum = _conv3x3(cin, cout)
        self.conv_fuse = _conv3x3(cout, cout) if fuse else None

    def forward(self, x, lateral=None, guide=None) -> torch.Tensor:
        r = x
        for size, conv in zip(FAM_POOLS, self.pool_convs):
            r = r + _up(conv(F.avg_pool2d(x, size, size)), x)
        r = F.relu(r)
        if self.conv_fuse is None:
            return self.conv_sum(r)
        return self.conv_fuse(self.conv_sum(_up(r, lateral)) + lateral + guide)


class PoolNet(nn.Module):
    """PoolNet on VGG-16. ``loss``: "paper" (summed BCE-with-logits) or "jcs" (BCE + soft Dice)."""

    def __init__(self, pretrained: Pretrained = None, loss: str = "paper"):
        super().__init__()
        if loss not in ("paper", "jcs"):
            raise ValueError(f"poolnet: loss must be 'paper' or 'jcs', got {loss!r}")
        self.loss_kind = loss
        self.body = VGG16Body(norm="none", init="pytorch")  # not He init: see VGG16Body
        self.ggm = GlobalGuidance()
        self.fams = nn.ModuleList(FAM(cin, cout, fuse) for cin, cout, fuse in FAM_CONFIGS)
        self.score = nn.Conv2d(128, 1, 1)
        for module in [*self.ggm.modules(), *self.fams.modules(), self.score]:
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, std=0.01)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        load_vgg16_weights(self.body, pretrained)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) < MIN_INPUT_SIZE:
            raise ValueError(
                f"poolnet: input {tuple(x.shape[-2:])} is too small; PoolNet needs at least "
                f"{MIN_INPUT_SIZE}×{MIN_INPUT_SIZE} pixels (its 1/16 map must hold an 8×8 pool)"
            )
        stages = self.body.stages
        features = [stages[0](x)]
        for stage in stages[1:]:  # 3×3/2 pad-1 pools after stages 1-4
            features.append(stage(F.max_pool2d(features[-1], 3, 2, padding=1)))
        c2, c3, c4, c5 = features[1:]
        laterals = [c4, c3, c2]
        guides = self.ggm(c5, laterals)
        y = c5
        for fam, lateral, guide in zip(self.fams, laterals, guides):
            y = fam(y, lateral, guide)
        y = self.fams[-1](y)
        return _up(self.score(y), x)

    def forward(self, x: torch.Tensor):
        """Training: ``[logits]`` at input size; eval: sigmoid probability N×1×H×W."""
        logits = self._logits(x)
        return [logits] if self.training else torch.sigmoid(logits)

    def criterion(self) -> nn.Module:
        return SumBCELoss() if self.loss_kind == "paper" else BCEDiceLoss()


@register_model("poolnet")
def poolnet(pretrained: Pretrained = None, loss: str = "paper") -> PoolNet:
    """PoolNet (Liu et al., CVPR'19), VGG-16 backbone, single output (52.51 M params)."""
    return PoolNet(pretrained=pretrained, loss=loss)
