"""Synthetic chest-CT slices with lesion masks. A TEST TOOL ONLY: the images are cartoons (ellipses
in HU, lung-windowed), good for checking shapes, losses and training loops without real data, and
meaningless for any claim about COVID-19."""

from __future__ import annotations

import numpy as np

from .readers import window

_AIR, _TISSUE, _LUNG = -1000.0, 40.0, -850.0
_GGO, _CONSOLIDATION = -450.0, 20.0


def _ellipse(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def synthetic_ct(n: int, size: int = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` synthetic axial slices: (images uint8 n×size×size, masks uint8 n×size×size in {0,1}).

    Each slice has a soft-tissue body ellipse, two dark lungs and 1-3 lesions inside the lungs,
    each either GGO-like (faint, -450 HU) or consolidation-like (bright, 20 HU), plus Gaussian
    noise, shown in the lung window. The mask marks lesion pixels inside the lungs (never empty).
    Deterministic: the same ``(n, size, seed)`` gives the same arrays.
    """
    if n < 0 or size < 32:
        raise ValueError(f"synthetic_ct needs n >= 0 and size >= 32, got n={n}, size={size}.")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    images = np.empty((n, size, size), dtype=np.uint8)
    masks = np.empty((n, size, size), dtype=np.uint8)
    for i in range(n):
        hu = np.full((size, size), _AIR)
        hu[_ellipse(yy, xx, 0.5 + rng.uniform(-0.02, 0.02), 0.5, rng.uniform(0.33, 0.38),
                    rng.uniform(0.43, 0.47))] = _TISSUE
        lungs = []
        for side in (-1, 1):
            cy, cx = 0.48 + rng.uniform(-0.02, 0.02), 0.5 + side * rng.uniform(0.18, 0.21)
            ry, rx = rng.uniform(0.22, 0.26), rng.uniform(0.12, 0.15)
            lungs.append((cy, cx, ry, rx))
            hu[_ellipse(yy, xx, cy, cx, ry, rx)] = _LUNG
        lung_mask = hu == _LUNG
        lesions = np.zeros((size, size), dtype=bool)
        for _ in range(rng.integers(1, 4)):
            cy, cx, ry, rx = lungs[rng.integers(0, 2)]
            radius, angle = 0.7 * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
            ly, lx = cy + radius * ry * np.sin(angle), cx + radius * rx * np.cos(angle)
            r_min = 1.5 / size  # a blob of radius >= 1.5 px always covers a pixel centre
            ry, rx = max(rng.uniform(0.03, 0.08), r_min), max(rng.uniform(0.03, 0.08), r_min)
            blob = _ellipse(yy, xx, ly, lx, ry, rx) & lung_mask
            hu[blob] = _GGO if rng.uniform() < 0.5 else _CONSOLIDATION
            lesions |= blob
        hu += rng.normal(0.0, 25.0, size=hu.shape)
        images[i] = window(hu)
        masks[i] = lesions
    return images, masks
