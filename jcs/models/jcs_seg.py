"""JCS segmentation branch, "single" model (jcs_official.md §4.2, models_and_metrics.md §7), and
the Table V ablation variants.

Encoder: VGG16-BN with frozen BN; 2×2 max-pools after stages 1–3 only, so conv5 is at stride 8
like conv4 (the authors' code computes pool4 but feeds conv4_3 to conv5_1). EFM #1 (dilations
1/3/6/9) on conv5; "conv6" = 2×2 max-pool of it, then EFM #2 (dilations 1/2/3/4). A top-down
decoder fuses the six levels with AFF modules; five 1×1 heads give deep-supervision maps (finest
first), bilinearly resized to the input.

Parameters (norm="frozen"): total 42,501,423 = VGG 14,714,688 + 2 × EFM 6,295,808 + decoder
15,193,642 (AFF 80,546 / 320,834 / 1,280,642 / 5,117,186 / 5,117,186) + heads 1,477;
norm="bn": 42,509,871.

Ablations (Table V; the paper does not say what replaces a removed module, these choices are ours):

* without EFM, each EFM becomes :class:`PlainContext`: conv1×1 512→512 + ReLU → conv3×3 512→512 +
  ReLU (no expansion, split, dilation or SE; 2,622,464 parameters instead of 6,295,808);
* without AFF, each AFF(C) becomes :class:`PlainFusion`: concat(low, high) → conv3×3 C→C + ReLU →
  conv3×3 C→C + ReLU (no SE, no second injection of ``high``).

Totals (frozen BN; +8,448 with norm="bn"): ``jcs-seg-base`` 34,226,757, ``jcs-seg-efm``
41,573,445, ``jcs-seg-aff`` 35,154,735.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import ConvReLU, upsample_like
from .registry import register_model
from .vgg import VGG16Body
from .vgg_weights import load_vgg16_weights

LEVEL_CHANNELS = (64, 128, 256, 512, 512, 512)  # conv1..conv5, conv6


class SqueezeExcite(nn.Module):
    """SE block: GAP → Linear C→hidden → ReLU → Linear hidden→C → sigmoid → channel scaling."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Global average pool: x.mean(dim=(2, 3)), as a pooling, which has a channels-last bf16
        # kernel on the CPU (x.mean copies a bf16 channels-last x to fp32 first: ~10x slower).
        w = torch.relu(self.fc1(F.avg_pool2d(x, x.shape[-2:]).flatten(1)))
        w = torch.sigmoid(self.fc2(w))
        return x * w.view(x.shape[0], x.shape[1], 1, 1)


class EFM(nn.Module):
    """Enhanced feature module (code name ``GPD``): conv1×1 C→``width`` + ReLU → split into
    len(dilations) groups → one dilated conv3×3 per group (bias, no ReLU) → concat → ReLU →
    SE(width, hidden=width/4) → conv1×1 width→C + ReLU → conv3×3 C→C + ReLU. No BN, no residual."""

    def __init__(self, channels: int = 512, dilations: Sequence[int] = (1, 3, 6, 9),
                 width: int = 1024, se_reduction: int = 4):
        super().__init__()
        group = width // len(dilations)
        self.group = group
        self.expand = ConvReLU(channels, width, 1)
        self.branches = nn.ModuleList(
            nn.Conv2d(group, group, 3, padding=d, dilation=d) for d in dilations
        )
        self.relu = nn.ReLU(inplace=True)
        self.se = SqueezeExcite(width, width // se_reduction)
        self.reduce = ConvReLU(width, channels, 1)
        self.refine = ConvReLU(channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = torch.split(self.expand(x), self.group, dim=1)
        y = self.relu(torch.cat([conv(p) for conv, p in zip(self.branches, parts)], dim=1))
        return self.refine(self.reduce(self.se(y)))


class PlainContext(nn.Sequential):
    """Ablation stand-in for :class:`EFM`: conv1×1 C→C + ReLU → conv3×3 C→C + ReLU."""

    def __init__(self, channels: int = 512):
        super().__init__(ConvReLU(channels, channels, 1), ConvReLU(channels, channels, 3))


class AFF(nn.Module):
    """Attentive feature fusion (code name ``FuseModule``) of ``low`` and ``high`` (C/2 channels
    each): SE(cat[low, high], hidden 1) → conv3×3 C→C + ReLU → SE(cat[·, high], hidden 1) →
    conv1×1 3C/2→C + ReLU → conv3×3 C→C + ReLU."""

    def __init__(self, channels: int):
        super().__init__()
        wide = channels + channels // 2
        self.se1 = SqueezeExcite(channels, 1)
        self.conv1 = ConvReLU(channels, channels, 3)
        self.se2 = SqueezeExcite(wide, 1)
        self.conv2 = ConvReLU(wide, channels, 1)
        self.conv3 = ConvReLU(channels, channels, 3)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        x = self.conv1(self.se1(torch.cat([low, high], dim=1)))
        x = self.se2(torch.cat([x, high], dim=1))
        return self.conv3(self.conv2(x))


class PlainFusion(nn.Module):
    """Ablation stand-in for :class:`AFF`: concat(low, high) → conv3×3 C→C + ReLU →
    conv3×3 C→C + ReLU."""

    def __init__(self, channels: int):
        super().__init__()
        self.convs = nn.Sequential(ConvReLU(channels, channels, 3), ConvReLU(channels, channels, 3))

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        return self.convs(torch.cat([low, high], dim=1))


class Decoder(nn.Module):
    """Top-down decoder (code name ``ImprovedDecoder``). Top: conv1×1 + conv3×3 on conv6. Level i
    (5→1): ``low`` = conv1×1 C_i→C_i/2 + ReLU of feature i, ``high`` = conv1×1 C_{i+1}→C_i/2 + ReLU
    of the level above, bilinearly resized to level i; fused by AFF (or :class:`PlainFusion`).
    Returns the five fused maps, finest first."""

    def __init__(self, channels: Sequence[int] = LEVEL_CHANNELS, aff: bool = True):
        super().__init__()
        top = channels[-1]
        self.top = nn.Sequential(ConvReLU(top, top, 1), ConvReLU(top, top, 3))
        levels = range(len(channels) - 1)
        self.lateral = nn.ModuleList(ConvReLU(channels[i], channels[i] // 2, 1) for i in levels)
        self.topdown = nn.ModuleList(ConvReLU(channels[i + 1], channels[i] // 2, 1) for i in levels)
        fusion = AFF if aff else PlainFusion
        self.fuse = nn.ModuleList(fusion(channels[i]) for i in levels)

    def forward(self, features: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        r = self.top(features[-1])
        fused = []
        for i in reversed(range(len(self.fuse))):
            high = upsample_like(self.topdown[i](r), features[i])
            r = self.fuse[i](self.lateral[i](features[i]), high)
            fused.append(r)
        return fused[::-1]


class JCSSeg(nn.Module):
    """JCS single segmentation model (``efm``/``aff`` switch the modules for the Table V ablation).

    Training mode: list of 5 deep-supervision logits N×1×H×W at input size, finest first.
    Eval mode: sigmoid of the finest map, N×1×H×W. ``norm`` applies to the VGG16-BN backbone
    ("frozen" as the authors, or "bn"). ``pretrained``: True = torchvision VGG16-BN ImageNet
    weights, a path = a local torchvision ``vgg16_bn`` state dict, None = random init."""

    def __init__(self, efm: bool = True, aff: bool = True, norm: str = "frozen",
                 pretrained: Union[bool, str, Path, None] = None):
        super().__init__()
        self.vgg = VGG16Body(norm=norm)
        self.pool = nn.MaxPool2d(2, 2)
        self.efm5 = EFM(512, (1, 3, 6, 9)) if efm else PlainContext(512)
        self.efm6 = EFM(512, (1, 2, 3, 4)) if efm else PlainContext(512)
        self.decoder = Decoder(LEVEL_CHANNELS, aff=aff)
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, 1) for c in LEVEL_CHANNELS[:5])
        load_vgg16_weights(self.vgg, pretrained)

    def vgg_features(self, x: torch.Tensor) -> List[torch.Tensor]:
        """conv1_2 … conv4_3 and EFM #1(conv5_3): strides 1, 2, 4, 8, 8."""
        stages = self.vgg.stages
        c1 = stages[0](x)
        c2 = stages[1](self.pool(c1))
        c3 = stages[2](self.pool(c2))
        c4 = stages[3](self.pool(c3))
        c5 = self.efm5(stages[4](c4))  # no pool4: conv5 stays at stride 8
        return [c1, c2, c3, c4, c5]

    def encode(self, x: torch.Tensor) -> List[torch.Tensor]:
        """The six decoder inputs: conv1..conv5 (after EFM #1) and conv6 = EFM #2(maxpool(conv5))."""
        features = self.vgg_features(x)
        return features + [self.efm6(self.pool(features[-1]))]

    def forward(self, x: torch.Tensor) -> Union[List[torch.Tensor], torch.Tensor]:
        fused = self.decoder(self.encode(x))
        if self.training:
            return [upsample_like(head(r), x) for head, r in zip(self.heads, fused)]
        return torch.sigmoid(upsample_like(self.heads[0](fused[0]), x))

    def criterion(self) -> nn.Module:
        """BCE + soft Dice summed over the 5 side outputs (jcs_official.md §4.4)."""
        from ..losses import BCEDiceLoss

        return BCEDiceLoss()


def _builder(efm: bool, aff: bool):
    def build(norm: str = "frozen", pretrained: Union[bool, str, Path, None] = None) -> JCSSeg:
        return JCSSeg(efm=efm, aff=aff, norm=norm, pretrained=pretrained)

    return build


VARIANTS = {  # name: (EFM, AFF, description)
    "jcs-seg": (True, True, "JCS segmentation (VGG16-BN + EFM + AFF), Tables V-VII (42.50 M params)."),
    "jcs-seg-base": (False, False, "Table V no. 1: JCS segmentation without EFM and AFF (34.23 M params)."),
    "jcs-seg-efm": (True, False, "Table V no. 2: JCS segmentation with EFM, without AFF (41.57 M params)."),
    "jcs-seg-aff": (False, True, "Table V no. 3: JCS segmentation with AFF, without EFM (35.15 M params)."),
}
for _name, (_efm, _aff, _description) in VARIANTS.items():
    register_model(_name, _description)(_builder(_efm, _aff))
