"""The report's pictures of the top slices: the CT slice, its Grad-CAM overlay, the lesion mask
and the lesion overlay (with the lung outline), drawn and PNG-encoded in a thread pool."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np
from PIL import Image

from jcs.explain import overlay

from .view import crop_slices

def _save_png(array: np.ndarray, path: Path) -> str:
    Image.fromarray(array).save(path, compress_level=1)  # fast; the report is not an archive
    return path.name


def cam_overlay(gray: np.ndarray, cam: np.ndarray, size: int) -> np.ndarray:
    """uint8 H×W×3: the Grad-CAM overlay (:func:`jcs.explain.overlay`) inside the classifier's
    view (the centre crop), the plain slice outside it."""
    rgb = np.repeat(gray[..., None], 3, axis=2)
    rows, cols = crop_slices(*gray.shape, size)
    rgb[rows, cols] = overlay(gray[rows, cols], cam[rows, cols])
    return rgb


def lesion_overlay(gray: np.ndarray, mask: np.ndarray, lungs: Optional[np.ndarray] = None) -> np.ndarray:
    """uint8 H×W×3: the slice with the lesion mask in translucent red and the lung outline green."""
    rgb = np.repeat(gray[..., None], 3, axis=2).astype(np.float32)
    if lungs is not None and lungs.any():
        padded = np.pad(lungs, 1, mode="edge")
        interior = padded[2:, 1:-1] & padded[:-2, 1:-1] & padded[1:-1, 2:] & padded[1:-1, :-2]
        rgb[lungs & ~interior] = (0.0, 200.0, 0.0)
    rgb[mask] = 0.5 * rgb[mask] + 0.5 * np.array((255.0, 0.0, 0.0))
    return np.round(rgb).clip(0, 255).astype(np.uint8)


def write_pictures(images: Path, summary: Dict[str, Any], gray: np.ndarray,
                   masks: Dict[int, np.ndarray], cams: Dict[int, np.ndarray],
                   lungs: Optional[np.ndarray]) -> None:
    """Write ``images/slice_NNNN_{ct,gradcam,mask,lesion}.png`` of each top slice (those it has:
    a Grad-CAM map, a mask) into ``images`` and set each ``summary["top_slices"]`` entry's
    ``images`` (kind → path relative to the report folder). ``gray``: uint8 S×H×W."""
    images.mkdir(parents=True, exist_ok=True)
    size = summary["models"]["classifier"]["input_size"]
    pictures = {  # kind -> (picture of slice i, the slices that have one)
        "ct": (lambda i: gray[i], range(len(gray))),
        "gradcam": (lambda i: cam_overlay(gray[i], cams[i], size), cams),
        "mask": (lambda i: masks[i].astype(np.uint8) * 255, masks),
        "lesion": (lambda i: lesion_overlay(gray[i], masks[i], None if lungs is None else lungs[i]), masks),
    }
    jobs = [(entry, kind) for entry in summary["top_slices"] for kind, (_, has) in pictures.items()
            if entry["index"] in has]

    def save(job: Tuple[Dict[str, Any], str]) -> str:  # drawing and PNG encoding free the GIL
        entry, kind = job
        i = entry["index"]
        return _save_png(pictures[kind][0](i), images / f"slice_{i:04d}_{kind}.png")

    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
        names = list(pool.map(save, jobs))
    for entry in summary["top_slices"]:
        entry["images"] = {}
    for (entry, kind), name in zip(jobs, names):
        entry["images"][kind] = f"{images.name}/{name}"
