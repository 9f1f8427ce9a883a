"""Explainability of the JCS classifier: Grad-CAM activation maps and their overlay on the CT
slice (jcs_official.md §4.1; paper Fig. 9), plus the loss that supervises those maps with lesion
masks (:class:`~jcs.models.classifier.ActivationMapLoss`, re-exported here)."""
from __future__ import annotations

from typing import Dict, Optional, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from jcs.models.classifier import ActivationMapLoss, class_activation_map

__all__ = ["ActivationMapLoss", "GradCAM", "class_activation_map", "jet", "overlay"]


class GradCAM:
    """Grad-CAM (Selvaraju et al., ICCV 2017) on one layer of ``model`` (default: the model's
    ``features_layer``, ``layer4`` for the JCS classifier).

    ``cams = GradCAM(model)(x, class_index=1)`` gives N×H×W maps at the input resolution in [0, 1]:
    weights = spatial mean of d(logit of ``class_index``)/d(activation), CAM = ReLU(Σ_k w_k A_k),
    bilinear resize, per-image min-max normalisation. Gradients are taken with respect to the
    layer's output only (the backbone below it is not back-propagated and no ``.grad`` is
    touched); works inside ``torch.no_grad()``. The hook lives only during the call. The logits of
    the last call are kept in ``last_logits``. Use the model in eval mode (batch-norm statistics
    must not mix the images). Usable as a context manager for symmetry with other hook tools."""

    def __init__(self, model: nn.Module, layer: Optional[str] = None):
        name = layer or getattr(model, "features_layer", None)
        if not name:
            raise ValueError("GradCAM: pass layer=<module name>; the model has no features_layer")
        modules: Dict[str, nn.Module] = dict(model.named_modules())
        if name not in modules:
            raise ValueError(f"GradCAM: the model has no module {name!r}; top-level modules are "
                             f"{[n for n, _ in model.named_children()]}")
        self.model = model
        self.layer_name = name
        self.layer = modules[name]
        self.last_logits: Optional[torch.Tensor] = None

    def __enter__(self) -> "GradCAM":
        return self

    def __exit__(self, *exc) -> None:
        self.last_logits = None

    def __call__(self, x: torch.Tensor, class_index: int = 1) -> torch.Tensor:
        if x.is_inference():
            x = x.clone()  # inference tensors cannot take part in autograd
        captured = {}

        def hook(module: nn.Module, inputs, output: torch.Tensor) -> torch.Tensor:
            leaf = output.detach().requires_grad_(True)
            captured["activation"] = leaf
            return leaf

        handle = self.layer.register_forward_hook(hook)
        try:
            with torch.enable_grad():
                logits = self.model(x)
                (grads,) = torch.autograd.grad(logits[:, class_index].sum(), captured["activation"])
        finally:
            handle.remove()
        self.last_logits = logits.detach()
        activation = captured["activation"].detach().float()
        weights = grads.float().mean(dim=(2, 3), keepdim=True)
        cam = F.relu((weights * activation).sum(dim=1, keepdim=True))
        cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        low = cam.amin(dim=(1, 2), keepdim=True)
        span = cam.amax(dim=(1, 2), keepdim=True) - low
        return (cam - low) / span.clamp_min(1e-12)


def jet(values: np.ndarray) -> np.ndarray:
    """JET colour map (blue → cyan → yellow → red) of values in [0, 1]: float32 ...×3 RGB in [0, 1]."""
    v = np.clip(np.asarray(values, dtype=np.float32), 0.0, 1.0)[..., None]
    centres = np.array([0.75, 0.5, 0.25], dtype=np.float32)  # R, G, B
    return np.clip(1.5 - np.abs(4.0 * (v - centres)), 0.0, 1.0)


def overlay(image: np.ndarray, cam: Union[np.ndarray, torch.Tensor], alpha: float = 0.5) -> np.ndarray:
    """Blend a JET-coloured ``cam`` (H×W in [0, 1]) with ``image`` (uint8 H×W or H×W×3), then
    divide by the maximum as the authors do (``heat + image``, / max; alpha=0.5 gives exactly
    theirs). Returns uint8 H×W×3 RGB. A ``cam`` of another size is resized bilinearly."""
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"overlay: image must be H×W or H×W×3, got shape {img.shape}")
    cam_t = torch.as_tensor(cam, dtype=torch.float32).detach().cpu()
    if cam_t.ndim != 2:
        raise ValueError(f"overlay: cam must be H×W, got shape {tuple(cam_t.shape)}")
    if tuple(cam_t.shape) != img.shape[:2]:
        cam_t = F.interpolate(cam_t[None, None], size=img.shape[:2], mode="bilinear",
                              align_corners=False)[0, 0]
    mixed = alpha * jet(cam_t.numpy()) + (1.0 - alpha) * (img.astype(np.float32) / 255.0)
    peak = float(mixed.max())
    if peak > 0:
        mixed /= peak
    return np.round(mixed * 255.0).astype(np.uint8)
