"""DSS: deeply supervised salient object detection with short connections (Hou et al., CVPR'17 /
TPAMI'19), the "DSS" row of Table VII, re-implemented from models_and_metrics.md §1, §3.

VGG-16 (no BN) with the Caffe net's pooling, six side paths (two k×k convs + ReLU and a 1×1 score
conv each), short connections that feed deeper score maps into shallower sides, and a 1×1 fusion of
the six side outputs. Differences from the Caffe model, all without effect on the parameter count:
"same" padding instead of padding conv1_1 by 5 and cropping; fixed bilinear deconvolutions
replaced by ``F.interpolate`` (no parameters); PyTorch floor-mode pooling; a single learning
rate (the Caffe score/fusion convs used lr_mult 0.1); torchvision ImageNet weights with
ImageNet-normalised RGB input instead of Caffe weights with BGR mean subtraction; the added convs
start with a scale-preserving init instead of the Caffe N(0, 0.01²) (:func:`init_heads`). The eval
prediction is the released notebook's mean of sides 3, 4, 5 and the fusion, without its
min-max normalisation and without the paper's CRF post-processing.

Loss: ``loss="paper"`` (default) is the original method's loss, as the baselines of Table VII
were presumably re-trained with their authors' code (not stated, PAPER.md "Unknowns");
``loss="jcs"`` uses the JCS BCE + soft Dice instead, for a like-for-like comparison."""
from __future__ import annotations

from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..losses import BCEDiceLoss, SumBCELoss
from .layers import ConvReLU, upsample_like
from .registry import register_model
from .vgg import VGG16Body
from .vgg_weights import Pretrained, load_vgg16_weights

# (input channels, kernel, width) of the six side paths, shallowest first (§3 table).
SIDE_PATHS = (
    (64, 3, 128), (128, 3, 128), (256, 5, 256), (512, 5, 256), (512, 5, 512), (512, 7, 512)
)


class SidePath(nn.Sequential):
    """Two k×k convs + ReLU, then a 1×1 conv to one score map."""

    def __init__(self, cin: int, k: int, width: int):
        super().__init__(ConvReLU(cin, width, k), ConvReLU(width, width, k), nn.Conv2d(width, 1, 1))


def init_heads(model: "DSS") -> None:
    """Initialise the side paths, short connections and fusion so that the scale of the signal,
    and of the score maps, survives them (model revision 3).

    The Caffe net draws every added conv from N(0, 0.01²). Under its SGD with a loss summed over
    the pixels the gradients are large enough to grow them at once; under Adam (each weight moves
    about ``lr`` per step) they barely move in a short schedule: after the 350 iterations of the
    ``cpu`` recipe the short-connection weights were still 0.006–0.026 and every output's
    probability on lesion pixels about 0.3 (``results/diagnostics/dss_outputs_probe.json``), so
    no output reached 0.5 (Dice 0.39–0.45 at 0.5, 0.0 with BN in the VGG body) while the same
    maps ranked the pixels well (best-threshold Dice up to 0.67). Here the k×k side convs (ReLU
    after each) start with He init (fan-in, zero bias) as the plain VGG16 body does, the 1×1
    score convs with variance 1/fan-in (unit-variance score maps), each short connection as the
    mean of the maps it combines (weights 1/n) and the fusion as the mean of the six sides (the
    Caffe net's 1/6)."""
    for side in model.sides:
        for module in side.modules():
            if isinstance(module, nn.Conv2d):
                if module.kernel_size == (1, 1):  # the score conv
                    nn.init.normal_(module.weight, std=module.in_channels ** -0.5)
                else:
                    nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(module.bias)
    for conv in (model.short4, model.short3, model.short2, model.short1, model.fuse):
        nn.init.constant_(conv.weight, 1 / conv.in_channels)
        nn.init.zeros_(conv.bias)


class DSS(nn.Module):
    """DSS on VGG-16. ``loss``: "paper" (summed sigmoid cross-entropy on the 6 sides and the
    fusion) or "jcs" (BCE + soft Dice on the same 7 outputs)."""

    def __init__(self, pretrained: Pretrained = None, loss: str = "paper"):
        super().__init__()
        if loss not in ("paper", "jcs"):
            raise ValueError(f"dss: loss must be 'paper' or 'jcs', got {loss!r}")
        self.loss_kind = loss
        self.body = VGG16Body(norm="none", init="kaiming")  # model revision 2
        self.sides = nn.ModuleList(SidePath(*cfg) for cfg in SIDE_PATHS)
        # short connections (§3): sides 4 and 3 take scores 6, 5; sides 2 and 1 take 5, fused 4,
        # 6, fused 3.
        self.short4 = nn.Conv2d(3, 1, 1)
        self.short3 = nn.Conv2d(3, 1, 1)
        self.short2 = nn.Conv2d(5, 1, 1)
        self.short1 = nn.Conv2d(5, 1, 1)
        self.fuse = nn.Conv2d(6, 1, 1)
        init_heads(self)
        load_vgg16_weights(self.body, pretrained)

    def _taps(self, x: torch.Tensor) -> List[torch.Tensor]:
        """conv1_2, conv2_2, conv3_3, conv4_3, conv5_3 and pool5a (strides 1 … 32)."""
        stages = self.body.stages
        c1 = stages[0](x)
        c2 = stages[1](F.max_pool2d(c1, 2, 2))
        c3 = stages[2](F.max_pool2d(c2, 2, 2))
        c4 = stages[3](F.max_pool2d(c3, 2, 2))
        c5 = stages[4](F.max_pool2d(c4, 3, 2, padding=1))
        pool5a = F.avg_pool2d(F.max_pool2d(c5, 3, 2, padding=1), 3, 1, padding=1)
        return [c1, c2, c3, c4, c5, pool5a]

    def _logits(self, x: torch.Tensor) -> List[torch.Tensor]:
        s1, s2, s3, s4, s5, s6 = [side(tap) for side, tap in zip(self.sides, self._taps(x))]

        def short(conv: nn.Conv2d, own: torch.Tensor, *deeper: torch.Tensor) -> torch.Tensor:
            return conv(torch.cat([own, *(upsample_like(d, own) for d in deeper)], dim=1))

        f4 = short(self.short4, s4, s6, s5)
        f3 = short(self.short3, s3, s6, s5)
        f2 = short(self.short2, s2, s5, f4, s6, f3)
        f1 = short(self.short1, s1, s5, f4, s6, f3)
        sides = [upsample_like(s, x) for s in (f1, f2, f3, f4, s5, s6)]
        return sides + [self.fuse(torch.cat(sides, dim=1))]

    def forward(self, x: torch.Tensor):
        """Training: 7 logits (sides 1–6, fusion) at input size; eval: the mean probability of
        sides 3, 4, 5 and the fusion (released DSS notebook)."""
        logits = self._logits(x)
        if self.training:
            return logits
        return torch.stack([torch.sigmoid(logits[i]) for i in (2, 3, 4, 6)]).mean(dim=0)

    def criterion(self) -> nn.Module:
        return SumBCELoss() if self.loss_kind == "paper" else BCEDiceLoss()


@register_model("dss")
def dss(pretrained: Pretrained = None, loss: str = "paper") -> DSS:
    """DSS (Hou et al., TPAMI'19), VGG-16, 6 side outputs + fusion (62.23 M params)."""
    return DSS(pretrained=pretrained, loss=loss)
