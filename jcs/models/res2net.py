"""Res2Net-v1b-26w-4s (Gao et al., TPAMI 2021), the backbone of the JCS classifier and of the joint
segmentation model (jcs_official.md §4.1, §4.3; models_and_metrics.md §6).

v1b = deep stem (3×3 convs 3→32 stride 2, 32→32, 32→64) + "avg-down" shortcuts (AvgPool then 1×1
conv). Module names follow the usual Res2Net-v1b / timm ``res2net50d`` / ``res2net101d`` layout
(``conv1.0``, ``bn1``, ``layer1.0.convs.0``, ``downsample.1`` ...), so their ImageNet state dicts load
by name.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn

from .layers import make_norm
from .weights import read_state_dict

RES2NET_LAYERS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
TIMM_NAMES = {50: "res2net50d", 101: "res2net101d"}


class Bottle2neck(nn.Module):
    """Res2Net bottleneck: 1×1 conv → ``scale`` splits of ``width`` channels, a cascade of 3×3 convs
    (split i adds the previous output, except in the first block of a stage) → 1×1 conv, residual.
    In the first ("stage") block the last split goes through AvgPool 3×3/stride instead."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, first: bool = False,
                 base_width: int = 26, scale: int = 4, norm: str = "frozen"):
        super().__init__()
        width = int(math.floor(planes * base_width / 64.0))
        self.width = width
        self.first = first
        self.conv1 = nn.Conv2d(inplanes, width * scale, 1, bias=False)
        self.bn1 = make_norm(width * scale, norm)
        self.convs = nn.ModuleList(
            nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False) for _ in range(scale - 1)
        )
        self.bns = nn.ModuleList(make_norm(width, norm) for _ in range(scale - 1))
        self.pool = nn.AvgPool2d(3, stride=stride, padding=1) if first else None
        self.conv3 = nn.Conv2d(width * scale, planes * self.expansion, 1, bias=False)
        self.bn3 = make_norm(planes * self.expansion, norm)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if first and (stride != 1 or inplanes != planes * self.expansion):
            self.downsample = nn.Sequential(
                nn.AvgPool2d(stride, stride=stride, ceil_mode=True, count_include_pad=False),
                nn.Conv2d(inplanes, planes * self.expansion, 1, bias=False),
                make_norm(planes * self.expansion, norm),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        splits = torch.split(out, self.width, dim=1)
        outs = []
        sp = splits[0]
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            if i > 0:
                sp = splits[i] if self.first else sp + splits[i]
            sp = self.relu(bn(conv(sp)))
            outs.append(sp)
        outs.append(self.pool(splits[-1]) if self.first else splits[-1])
        out = self.bn3(self.conv3(torch.cat(outs, dim=1)))
        out += x if self.downsample is None else self.downsample(x)
        return self.relu(out)


class Res2Net(nn.Module):
    """Res2Net-v1b-26w-4s. ``depth`` 50 or 101; ``norm`` "frozen" (FrozenBatchNorm2d, as JCS) or
    "bn"; ``num_classes`` None = no head (feature extractor), else GAP + ``Linear(2048, num_classes,
    bias=fc_bias)``.

    :meth:`forward_features` returns ``[x0, layer1, layer2, layer3, layer4]`` with 64/256/512/1024/2048
    channels at strides 2/4/8/16/32 (``x0`` = stem output before the max-pool)."""

    def __init__(self, depth: int = 101, norm: str = "frozen", num_classes: Optional[int] = None,
                 fc_bias: bool = True, base_width: int = 26, scale: int = 4):
        super().__init__()
        if depth not in RES2NET_LAYERS:
            raise ValueError(f"Res2Net depth must be one of {sorted(RES2NET_LAYERS)}, got {depth!r}")
        self.depth = depth
        self.norm = norm
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False),
            make_norm(32, norm),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, 32, 3, padding=1, bias=False),
            make_norm(32, norm),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, 64, 3, padding=1, bias=False),
        )
        self.bn1 = make_norm(64, norm)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = 64
        for index, (planes, blocks) in enumerate(zip((64, 128, 256, 512), RES2NET_LAYERS[depth])):
            stride = 1 if index == 0 else 2
            layer = []
            for b in range(blocks):
                layer.append(Bottle2neck(inplanes, planes, stride if b == 0 else 1, first=b == 0,
                                         base_width=base_width, scale=scale, norm=norm))
                inplanes = planes * Bottle2neck.expansion
            setattr(self, f"layer{index + 1}", nn.Sequential(*layer))
        self.num_features = inplanes
        if num_classes is not None:
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(inplanes, num_classes, bias=fc_bias)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> List[torch.Tensor]:
        x0 = self.relu(self.bn1(self.conv1(x)))
        x1 = self.layer1(self.maxpool(x0))
        x2 = self.layer2(x1)
        x3 = self.layer3(x2)
        x4 = self.layer4(x3)
        return [x0, x1, x2, x3, x4]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not hasattr(self, "fc"):
            raise RuntimeError("this Res2Net has no classification head (num_classes=None); "
                               "use forward_features(x)")
        x4 = self.forward_features(x)[-1]
        return self.fc(torch.flatten(self.avgpool(x4), 1))

    def load_imagenet(self, source: Union[bool, str, Path] = True) -> None:
        """Load ImageNet Res2Net-v1b weights into the backbone (the fc is skipped).

        ``True``: via timm (``res2net50d`` / ``res2net101d``, downloads once; needs ``pip install
        timm``). A path: a local state dict with the same names (timm's file or the official
        ``res2net101_v1b_26w_4s-0812c246.pth``). Every backbone tensor must be found with the right
        shape, otherwise a ValueError lists the problems."""
        if source is True:
            state = _timm_state_dict(self.depth)
            origin = f"timm {TIMM_NAMES[self.depth]}"
        else:
            state = read_state_dict(source)
            origin = str(source)
        load_backbone_state(self, state, origin)


def _timm_state_dict(depth: int) -> Dict[str, torch.Tensor]:
    try:
        import timm  # noqa: PLC0415 - optional dependency, only for pretrained=True
    except ImportError as exc:
        raise ImportError(
            "pretrained=True for Res2Net needs timm (pip install timm), or pass pretrained=<path to a "
            "local Res2Net-v1b state dict>"
        ) from exc
    return timm.create_model(TIMM_NAMES[depth], pretrained=True).state_dict()


def load_backbone_state(model: nn.Module, state: Dict[str, torch.Tensor], origin: str,
                        skip: Sequence[str] = ("fc.",)) -> None:
    """Copy ``state`` into ``model`` by name, ignoring keys under ``skip`` and ``num_batches_tracked``;
    raise a ValueError naming ``origin`` and the missing / wrongly shaped tensors."""
    own = {k: v for k, v in model.state_dict().items()
           if not k.startswith(tuple(skip)) and not k.endswith("num_batches_tracked")}
    missing = [k for k in own if k not in state]
    bad_shape = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
                 for k, v in own.items() if k in state and state[k].shape != v.shape]
    if missing or bad_shape:
        raise ValueError(
            f"{origin} does not fit {type(model).__name__}: {len(missing)} missing tensors "
            f"{missing[:5]}, {len(bad_shape)} shape mismatches {bad_shape[:5]}"
        )
    with torch.no_grad():
        for key, value in own.items():
            value.copy_(state[key])
