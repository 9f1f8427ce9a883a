"""EGNet: edge guidance network for salient object detection (Zhao et al., ICCV'19), the "EGNet"
row of Table VII, VGG-16 version, re-implemented from models_and_metrics.md §1, §5.

Backbone: VGG-16 with 3×3/2 pad-1 pools after all five stages and "conv6" (three bias-free
3×3 convs + ReLU) on pool5; levels relu2_2, relu3_3, relu4_3, relu5_3, conv6 (strides 2 … 32).
PSFEM (progressive salient features, top-down, 4 side outputs) and NLSEM (edge features: relu2_2
plus the top salient feature, 1 edge output) form the released code's "MergeLayer1"; O2OGM
(one-to-one guidance of each salient feature by the edge feature, 4 side outputs and the final
fused output, all at 1/2 resolution) its "MergeLayer2".

Deviations: the released code also builds a 1×1 conv 256→128 (``trans[0]``, 32,768 params) that
its forward never uses; it is left out, so this model has 108,035,658 parameters where the
official one counts 108,068,426 (models_and_metrics.md §0: 108.068 M). Torchvision ImageNet
weights with ImageNet RGB input replace Caffe VGG weights with BGR mean subtraction; PyTorch
default init for the added convs (not stated in the notes). The ResNet-50 variant is not
provided.

Loss: ``loss="paper"`` (default) is the original method's loss, as the baselines of Table VII
were presumably re-trained with their authors' code (not stated, PAPER.md "Unknowns");
``loss="jcs"`` uses the JCS BCE + soft Dice instead, for a like-for-like comparison."""
from __future__ import annotations

from typing import Dict, List

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..losses import BalancedBCELoss, BCEDiceLoss, EGNetLoss, mask_to_edges
from .layers import ConvReLU, upsample_like
from .registry import register_model
from .vgg import VGG16Body
from .vgg_weights import Pretrained, load_vgg16_weights

# (channels, kernel) of the PSFEM/NLSEM conv blocks for levels relu2_2 … conv6.
LEVELS = ((128, 3), (256, 3), (512, 5), (512, 5), (512, 7))
# O2OGM kernel for the guided features F1 … F4.
GUIDE_KERNELS = (3, 5, 5, 7)
EDGE_CHANNELS = 128


def _up(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return upsample_like(x, ref, align_corners=True)


def _conv_block(channels: int, k: int) -> nn.Sequential:
    """Three k×k convs ("same" padding, bias) each followed by ReLU."""
    return nn.Sequential(*[ConvReLU(channels, channels, k) for _ in range(3)])


def _reduce(cin: int, cout: int) -> ConvReLU:
    """1×1 conv without bias + ReLU."""
    return ConvReLU(cin, cout, 1, bias=False)


class SalientEdgeFeatures(nn.Module):
    """PSFEM + NLSEM ("MergeLayer1"): top-down salient features F4 … F1 with their side
    logits, and the edge feature E = block0(relu2_2 + up(reduce(F4))) with its edge logit."""

    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList(_conv_block(c, k) for c, k in LEVELS)
        self.scores = nn.ModuleList(nn.Conv2d(c, 1, 3, padding=1) for c, _ in LEVELS)
        self.trans1 = _reduce(512, 256)  # F2 (512 ch) into the relu3_3 level (256 ch)
        self.edge_trans = _reduce(512, EDGE_CHANNELS)

    def forward(self, levels: List[torch.Tensor]):
        """Returns ``salient`` [F1, F2, F3, F4], their side logits, the edge feature and logit."""
        top = self.blocks[4](levels[4])
        salient = [top]
        for i in (3, 2, 1):
            deeper = self.trans1(salient[0]) if i == 1 else salient[0]
            salient.insert(0, self.blocks[i](levels[i] + _up(deeper, levels[i])))
        side_logits = [score(f) for score, f in zip(self.scores[1:], salient)]
        edge = self.blocks[0](levels[0] + _up(self.edge_trans(top), levels[0]))
        return salient, side_logits, edge, self.scores[0](edge)


class EdgeGuidance(nn.Module):
    """O2OGM ("MergeLayer2"): each salient feature, reduced to 128 channels and up-sampled to the
    edge feature, is added to it and refined by three k×k convs; the four guided maps give side
    logits and are summed (ReLU after each addition) into the final logit."""

    def __init__(self, salient_channels=(256, 512, 512, 512)):
        super().__init__()
        self.reduce = nn.ModuleList(_reduce(c, EDGE_CHANNELS) for c in salient_channels)
        self.blocks = nn.ModuleList(_conv_block(EDGE_CHANNELS, k) for k in GUIDE_KERNELS)
        self.scores = nn.ModuleList(
            nn.Conv2d(EDGE_CHANNELS, 1, 3, padding=1) for _ in GUIDE_KERNELS
        )
        self.final = nn.Sequential(
            nn.Conv2d(EDGE_CHANNELS, EDGE_CHANNELS, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(EDGE_CHANNELS, 1, 3, padding=1),
        )

    def forward(self, salient: List[torch.Tensor], edge: torch.Tensor):
        guided = [
            block(_up(reduce(f), edge) + edge)
            for reduce, block, f in zip(self.reduce, self.blocks, salient)
        ]
        side_logits = [score(g) for score, g in zip(self.scores, guided)]
        fused = guided[0]
        for g in guided[1:]:
            fused = F.relu(fused + g)
        return side_logits, self.final(fused)


class EGNetJCSLoss(nn.Module):
    """``loss="jcs"``: BCE + soft Dice on every saliency logit plus EGNet's class-balanced edge
    BCE, averaged over pixels (instead of summed) so both terms have the JCS loss's scale."""

    def __init__(self):
        super().__init__()
        self.sal_loss = BCEDiceLoss()
        self.edge_loss = BalancedBCELoss(reduction="mean")

    def forward(self, outputs: Dict[str, List[torch.Tensor]], mask: torch.Tensor) -> torch.Tensor:
        edges = mask_to_edges(mask)
        return self.sal_loss(outputs["sal"], mask) + self.edge_loss(outputs["edge"], edges)


class EGNet(nn.Module):
    """EGNet on VGG-16. ``loss``: "paper" (summed BCE on the 9 saliency logits + class-balanced
    BCE on the edge logit) or "jcs" (:class:`EGNetJCSLoss`)."""

    def __init__(self, pretrained: Pretrained = None, loss: str = "paper"):
        super().__init__()
        if loss not in ("paper", "jcs"):
            raise ValueError(f"egnet: loss must be 'paper' or 'jcs', got {loss!r}")
        self.loss_kind = loss
        self.body = VGG16Body(norm="none", init="pytorch")  # not He init: see VGG16Body
        self.conv6 = nn.Sequential(*[ConvReLU(512, 512, 3, bias=False) for _ in range(3)])
        self.merge1 = SalientEdgeFeatures()
        self.merge2 = EdgeGuidance()
        load_vgg16_weights(self.body, pretrained)

    def _levels(self, x: torch.Tensor) -> List[torch.Tensor]:
        """relu2_2, relu3_3, relu4_3, relu5_3, conv6 (strides 2, 4, 8, 16, 32)."""
        y = x
        features = []
        for stage in self.body.stages:
            y = stage(y)
            features.append(y)
            y = F.max_pool2d(y, 3, 2, padding=1)
        return features[1:] + [self.conv6(y)]

    def forward(self, x: torch.Tensor):
        """Training: ``{"sal": [4 PSFEM, 4 O2OGM, final], "edge": [edge]}`` logits at input size;
        eval: sigmoid of the final logit."""
        salient, psfem_logits, edge, edge_logit = self.merge1(self._levels(x))
        o2ogm_logits, final = self.merge2(salient, edge)
        if not self.training:
            return torch.sigmoid(_up(final, x))
        sal = [_up(s, x) for s in psfem_logits + o2ogm_logits + [final]]
        return {"sal": sal, "edge": [_up(edge_logit, x)]}

    def criterion(self) -> nn.Module:
        return EGNetLoss() if self.loss_kind == "paper" else EGNetJCSLoss()


@register_model("egnet")
def egnet(pretrained: Pretrained = None, loss: str = "paper") -> EGNet:
    """EGNet (Zhao et al., ICCV'19), VGG-16 backbone, edge-guided (108.04 M params)."""
    return EGNet(pretrained=pretrained, loss=loss)
