"""VGG-16 convolutional body, shared by JCS (VGG16-BN, frozen BN) and the comparison methods
(plain VGG16). Pooling differs per model (models_and_metrics.md §1), so this body holds only
the 13 conv layers grouped in five stages; each model applies its own pooling between them."""
from __future__ import annotations

from typing import Dict, List

import torch
import torch.nn as nn

from .layers import make_norm

VGG16_STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


class VGGConv(nn.Module):
    """conv3×3 (bias) → optional BN → ReLU: one VGG layer."""

    def __init__(self, cin: int, cout: int, norm: str):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=True)
        self.bn = make_norm(cout, norm)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class VGG16Body(nn.Module):
    """The five VGG-16 stages without pooling. ``norm``: "none" (VGG16), "frozen" (VGG16-BN with
    FrozenBatchNorm2d, as JCS) or "bn". ``stages[i](x)`` gives conv{i+1}_{last} features.

    ``init``: how the convolutions start before any pretrained weights are loaded.
    ``"pytorch"`` (default): PyTorch's conv default (uniform, variance 1/(3·fan-in)), which
    divides the variance by about 6 per conv + ReLU: in a plain VGG16 the conv4 / conv5 features
    then barely vary with the input (measured std across 4 MedSeg slices at 128²: 4e-5 / 3e-6,
    against 5e-2 with He init; ``tests/test_pretrained_engine.py`` checks > 100×).
    ``"kaiming"``: He normal (fan-out, ReLU) with zero bias, torchvision's VGG init, which keeps
    the signal through the 13 layers. DSS asks for it (its model revision 2, with the
    scale-preserving heads of revision 3 :func:`jcs.models.dss.init_heads`; with those heads but
    the default body init, ``cpu`` seed 0 reached Dice 0.540 against 0.579,
    ``results/diagnostics/dss_default_body_init_seed0.json``); PoolNet and EGNet
    keep the default: trained from scratch in ``cpu`` on the same 2-core AMD EPYC, PoolNet
    reached Dice 0.444 / 0.459 with He init against 0.613 / 0.630 with the default (seeds 0, 1;
    ``results/diagnostics/poolnet_he_init_seed*.json``).
    With BN the scale is renormalised and the default is kept."""

    def __init__(self, norm: str = "none", init: str = "pytorch"):
        super().__init__()
        if init not in ("kaiming", "pytorch"):
            raise ValueError(f"init must be 'kaiming' or 'pytorch', got {init!r}")
        self.norm = norm
        stages: List[nn.Sequential] = []
        cin = 3
        for widths in VGG16_STAGES:
            layers = []
            for cout in widths:
                layers.append(VGGConv(cin, cout, norm))
                cin = cout
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.init = init
        if self.init == "kaiming":
            for layer in self.conv_layers():
                nn.init.kaiming_normal_(layer.conv.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(layer.conv.bias)

    def conv_layers(self) -> List[VGGConv]:
        """The 13 layers in torchvision ``features`` order (for loading ImageNet weights)."""
        return [layer for stage in self.stages for layer in stage]

    def load_torchvision_state_dict(self, state_dict: Dict[str, torch.Tensor]) -> None:
        """Copy weights from a torchvision ``vgg16`` / ``vgg16_bn`` state dict (keys
        ``features.<i>.*``); every conv (and BN, when present) must be found."""
        step = 3 if self.norm != "none" else 2
        index = 0
        for stage in self.stages:
            for layer in stage:
                prefix = f"features.{index}."
                layer.conv.weight.data.copy_(state_dict[prefix + "weight"])
                layer.conv.bias.data.copy_(state_dict[prefix + "bias"])
                if self.norm != "none":
                    bn_prefix = f"features.{index + 1}."
                    for key in ("weight", "bias", "running_mean", "running_var"):
                        getattr(layer.bn, key).data.copy_(state_dict[bn_prefix + key])
                index += step
            index += 1  # the max-pool after each stage

    def load_conv_layers(self, layers: List[tuple]) -> None:
        """Copy 13 ``(weight, bias)`` pairs (conv1_1 first) into the convolutions; BN layers, where
        the body has them, are reset to the identity (weight 1, bias 0, mean 0, var 1), so a
        VGG16-BN body starts as the plain VGG16 these weights come from."""
        convs = self.conv_layers()
        if len(layers) != len(convs):
            raise ValueError(f"VGG16 needs {len(convs)} conv layers, got {len(layers)}")
        with torch.no_grad():
            for layer, (weight, bias) in zip(convs, layers):
                if weight.shape != layer.conv.weight.shape or bias.shape != layer.conv.bias.shape:
                    raise ValueError(f"conv weight {tuple(weight.shape)} does not fit "
                                     f"{tuple(layer.conv.weight.shape)}")
                layer.conv.weight.copy_(weight)
                layer.conv.bias.copy_(bias)
                if self.norm != "none":
                    layer.bn.weight.fill_(1.0)
                    layer.bn.bias.zero_()
                    layer.bn.running_mean.zero_()
                    layer.bn.running_var.fill_(1.0)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Features of the five stages with no pooling in between (for tests and counting)."""
        outputs = []
        for stage in self.stages:
            x = stage(x)
            outputs.append(x)
        return outputs
