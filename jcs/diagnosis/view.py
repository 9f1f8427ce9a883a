"""The classifier's view of a slice (Resize(256·size/224) + centre crop ``size``) in the slice's
own pixels, and Grad-CAM maps put back on the whole slice."""
from __future__ import annotations

from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F


def crop_box(height: int, width: int, size: int) -> Tuple[float, float, float, float]:
    """(top, left, bottom, right) in original pixels of the classifier's view: the centre
    ``size`` crop after resizing the shorter side to ``round(size·256/224)`` (as
    :func:`jcs.data.transforms.resize_center_crop`)."""
    short = int(round(size * 256 / 224))
    scale = short / min(height, width)
    new_h = short if height <= width else int(short * height / width)
    new_w = short if width <= height else int(short * width / height)
    top, left = int(round((new_h - size) / 2.0)), int(round((new_w - size) / 2.0))
    return top / scale, left / scale, (top + size) / scale, (left + size) / scale


def crop_slices(height: int, width: int, size: int) -> Tuple[slice, slice]:
    """Row and column slices of :func:`crop_box` in whole pixels, clipped to the image."""
    top, left, bottom, right = crop_box(height, width, size)
    return (slice(max(0, int(round(top))), min(height, int(round(bottom)))),
            slice(max(0, int(round(left))), min(width, int(round(right)))))


def cam_to_slice(cam: torch.Tensor, height: int, width: int, size: int) -> np.ndarray:
    """Place a classifier-view CAM (size×size) on the full H×W slice (zero outside the crop)."""
    rows, cols = crop_slices(height, width, size)
    y0, y1, x0, x1 = rows.start, rows.stop, cols.start, cols.stop
    full = np.zeros((height, width), dtype=np.float32)
    if y1 > y0 and x1 > x0:
        resized = F.interpolate(cam[None, None].float(), size=(y1 - y0, x1 - x0), mode="bilinear",
                                align_corners=False)[0, 0]
        full[y0:y1, x0:x1] = resized.numpy()
    return full
