"""Conversion of uint8 slices to network input, and the training augmentations.

Random draws use torch's RNG (``generator`` or the global one), so augmentation is reproducible
under ``torch.manual_seed`` with ``num_workers=0`` and under a seeded DataLoader ``generator`` with
workers (PyTorch seeds each worker's torch RNG from it).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _rand(generator: torch.Generator | None) -> float:
    return torch.rand((), generator=generator).item()


def _randint(low: int, high: int, generator: torch.Generator | None) -> int:
    """Uniform integer in [low, high] (inclusive)."""
    return int(torch.randint(low, high + 1, (), generator=generator).item())


def normalize_batch(gray: torch.Tensor) -> torch.Tensor:
    """N×1×H×W gray values in [0, 255] (any device) -> N×3×H×W float32 with the ImageNet
    normalisation of :func:`normalize`."""
    mean = torch.tensor(IMAGENET_MEAN, device=gray.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=gray.device).view(1, 3, 1, 1)
    return (gray.float() / 255.0 - mean) / std


def to_network_input_batch(slices: torch.Tensor, size: int) -> torch.Tensor:
    """:func:`to_network_input` for a uint8 N×H×W stack on any device (e.g. the GPU):
    bilinear resize (align_corners=False), gray -> RGB, ImageNet normalisation."""
    x = slices[:, None].float()
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return normalize_batch(x)


def resize_center_crop_batch(slices: torch.Tensor, size: int = 224) -> torch.Tensor:
    """:func:`resize_center_crop` for a uint8 N×H×W stack on any device: antialiased bilinear
    resize of the shorter side (torch's PIL-matching filter, rounded to 8 bits as PIL does),
    centre crop, ImageNet normalisation. Equal to the PIL path up to ±1 gray level."""
    height, width = slices.shape[-2:]
    short = int(round(size * 256 / 224))
    new_h, new_w = ((int(short * height / width), short) if width <= height
                    else (short, int(short * width / height)))
    x = slices[:, None].float()
    if (new_h, new_w) != (height, width):
        x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False,
                          antialias=True).round_().clamp_(0, 255)
    top, left = int(round((new_h - size) / 2.0)), int(round((new_w - size) / 2.0))
    return normalize_batch(x[..., top:top + size, left:left + size])


def normalize(gray: torch.Tensor) -> torch.Tensor:
    """H×W (or 1×H×W) gray values in [0, 255] -> 3×H×W float32, ImageNet mean/std per channel
    (gray replicated to RGB; jcs_official.md §4.4 "normalisation", §4.1 "input")."""
    return normalize_batch(gray.reshape(1, 1, *gray.shape[-2:]))[0]


def resize_gray(slice_uint8: np.ndarray, size: int) -> torch.Tensor:
    """uint8 H×W -> float32 1×size×size, bilinear (align_corners=False, as cv2.resize)."""
    x = torch.from_numpy(np.ascontiguousarray(slice_uint8)).float()[None, None]
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x[0]


def to_network_input(slice_uint8: np.ndarray, size: int) -> torch.Tensor:
    """uint8 H×W slice -> float32 3×size×size network input: bilinear resize, gray -> RGB,
    ImageNet normalisation (the authors' segmentation input, jcs_official.md §4.4)."""
    return normalize(resize_gray(slice_uint8, size))


def mask_to_tensor(mask: np.ndarray, size: int) -> torch.Tensor:
    """uint8 {0,1} H×W mask -> float32 1×size×size, nearest-neighbour resize."""
    m = torch.from_numpy(np.ascontiguousarray(mask)).float()[None, None]
    if m.shape[-2:] != (size, size):
        m = F.interpolate(m, size=(size, size), mode="nearest")
    return m[0]


def random_crop_resize(image: torch.Tensor, mask: torch.Tensor, margin: int, p: float = 0.5,
                       generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The authors' RandomCropResize (jcs_official.md §4.4): with probability ``p`` cut
    x1 ∈ [0, margin] columns from left and right and y1 ∈ [0, margin] rows from top and bottom,
    then resize back (image bilinear, mask nearest). Tensors are C×H×W."""
    if _rand(generator) >= p:
        return image, mask
    x1, y1 = _randint(0, margin, generator), _randint(0, margin, generator)
    height, width = image.shape[-2:]
    crop_image = image[:, y1:height - y1, x1:width - x1][None]
    crop_mask = mask[:, y1:height - y1, x1:width - x1][None]
    image = F.interpolate(crop_image, size=(height, width), mode="bilinear", align_corners=False)[0]
    mask = F.interpolate(crop_mask, size=(height, width), mode="nearest")[0]
    return image, mask


def random_vertical_flip(image: torch.Tensor, mask: torch.Tensor, p: float = 0.5,
                         generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Up-down flip with probability ``p`` (the authors' RandomFlip is ``cv2.flip(x, 0)``, a
    vertical flip, jcs_official.md §4.4)."""
    if _rand(generator) < p:
        return image.flip(-2), mask.flip(-2)
    return image, mask


def segmentation_augment(image: torch.Tensor, mask: torch.Tensor,
                         generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Training augmentation of the segmentation branch: RandomCropResize with margin
    ``int(7/224 * size)`` (16 at 512), p = 0.5, then vertical flip, p = 0.5."""
    margin = int(7 / 224 * image.shape[-1])
    image, mask = random_crop_resize(image, mask, margin, 0.5, generator)
    return random_vertical_flip(image, mask, 0.5, generator)


def _pil_resize(image: Image.Image, width: int, height: int) -> Image.Image:
    return image.resize((width, height), Image.Resampling.BILINEAR)


def resize_center_crop(slice_uint8: np.ndarray, size: int = 224) -> torch.Tensor:
    """Classifier evaluation input (jcs_official.md §4.1): Resize(256) of the shorter side, then
    CenterCrop(224), both scaled by ``size/224``; bilinear (PIL); ImageNet normalisation."""
    image = Image.fromarray(slice_uint8)
    short = int(round(size * 256 / 224))
    width, height = image.size
    if width <= height:
        image = _pil_resize(image, short, int(short * height / width))
    else:
        image = _pil_resize(image, int(short * width / height), short)
    width, height = image.size
    top, left = int(round((height - size) / 2.0)), int(round((width - size) / 2.0))
    crop = image.crop((left, top, left + size, top + size))
    return normalize(torch.from_numpy(np.asarray(crop, dtype=np.uint8).copy()))


def random_resized_crop_flip(slice_uint8: np.ndarray, size: int = 224,
                             scale: tuple[float, float] = (0.5, 1.0),
                             ratio: tuple[float, float] = (3 / 4, 4 / 3),
                             generator: torch.Generator | None = None) -> torch.Tensor:
    """Classifier training input: random crop of ``scale`` of the area and aspect ``ratio``
    (10 tries, else the central square), resized to size×size, then horizontal flip p = 0.5.

    The paper does not publish its classification augmentation (jcs_official.md §4.1); this is
    the usual ImageNet recipe with a milder minimum scale so lesions stay in view.
    """
    image = Image.fromarray(slice_uint8)
    width, height = image.size
    area = width * height
    box = None
    for _ in range(10):
        target = area * (scale[0] + (scale[1] - scale[0]) * _rand(generator))
        log_ratio = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * _rand(generator)
        aspect = math.exp(log_ratio)
        w, h = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top, left = _randint(0, height - h, generator), _randint(0, width - w, generator)
            box = (left, top, left + w, top + h)
            break
    if box is None:
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        box = (left, top, left + side, top + side)
    image = _pil_resize(image.crop(box), size, size)
    if _rand(generator) < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return normalize(torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()))


def body_bbox(slice_uint8: np.ndarray, margin: float = 0.02,
              min_fraction: float = 0.2) -> tuple[int, int, int, int]:
    """Bounding box ``(left, top, right, bottom)`` (pixels, right/bottom exclusive) of the patient's
    body in an 8-bit axial slice: the largest connected region brighter than Otsu's threshold
    (body wall, mediastinum, bone; the lungs inside it count), widened by ``margin`` of the side.

    Real scans (COVID-CT-MD, a viewer's full field of view) show the body small in a frame of air
    and the scanner table; the SARS-CoV-2 CT-scan slices are cut to the body and UCSD's figures
    vary. Cropping every slice to the body gives the classifier the same framing from every source
    (jcs companion deviation, not in the paper). Returns the whole image when the region covers
    less than ``min_fraction`` of it (no body found) or the slice is constant.
    """
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    height, width = slice_uint8.shape
    whole = (0, 0, width, height)
    if slice_uint8.min() == slice_uint8.max():
        return whole
    labels, count = ndimage.label(slice_uint8 > threshold_otsu(slice_uint8))
    if count == 0:
        return whole
    sizes = np.bincount(labels.ravel())[1:]
    rows, cols = np.nonzero(labels == 1 + int(np.argmax(sizes)))
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    if (bottom - top) * (right - left) < min_fraction * height * width:
        return whole
    dy, dx = int(round(margin * height)), int(round(margin * width))
    return (max(0, left - dx), max(0, top - dy), min(width, right + dx), min(height, bottom + dy))


def crop_to_body(slice_uint8: np.ndarray, margin: float = 0.02) -> np.ndarray:
    """``slice_uint8`` (H×W uint8) cut to :func:`body_bbox`; a view when nothing is cut."""
    left, top, right, bottom = body_bbox(slice_uint8, margin)
    return slice_uint8[top:bottom, left:right]
