"""Evaluation of a segmentation model or a classifier on a dataset split: every metric of
:class:`jcs.metrics.SegmentationMetrics` (or :func:`jcs.metrics.classification_metrics`),
per-image values, and optionally the probability maps as 8-bit PNG files."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from jcs.data import ClassificationSlices, SegmentationSlices
from jcs.metrics import SegmentationMetrics, classification_metrics, compute_group_aucs
from jcs.models import create_model, load_checkpoint
from jcs.models.weights import read_checkpoint

from .datasets import SizedMasks, task_of
from .runtime import (autocast, prepare_model, quiet_default, resolve_precision, select_device,
                      to_device)

PathLike = Union[str, Path]
DEFAULT_SIZE = {"segmentation": 512, "classification": 224}


def _round(value: Any, digits: int = 6) -> Any:
    """Floats rounded for compact JSON (NaN kept as None by the results writer)."""
    if isinstance(value, (float, np.floating)):
        return round(float(value), digits)
    if isinstance(value, (np.integer,)):
        return int(value)
    return value


def classification_summary(labels, scores, groups: Optional[List[str]] = None) -> Dict[str, Any]:
    """``{"metrics": classification_metrics}`` of slice ``labels`` (1 = COVID-19) and ``scores``,
    plus ``"by_group"`` (:func:`~jcs.metrics.compute_group_aucs`) when ``groups`` names one per
    slice; values rounded for JSON. What every classifier test and Table IV's slice metrics hold."""
    out: Dict[str, Any] = {"metrics": {k: _round(v) for k, v in
                                       classification_metrics(labels, scores).items()}}
    if groups is not None:
        out["by_group"] = {g: {k: _round(v) for k, v in row.items()}
                           for g, row in compute_group_aucs(labels, scores, groups).items()}
    return out


def png_name(name: str) -> str:
    """A file name for item ``name`` (path separators and extensions flattened)."""
    stem = name.rsplit(".", 1)[0] if name.lower().endswith((".png", ".jpg", ".jpeg")) else name
    return stem.replace("/", "__").replace("\\", "__") + ".png"


def save_probability_png(prob: torch.Tensor, path: Path, max_size: Optional[int] = None) -> None:
    """Save an H×W probability map in [0, 1] as 8-bit PNG (×255), area-downsampled so that
    neither side exceeds ``max_size``."""
    prob = prob.float().clamp(0, 1)
    if max_size is not None and max(prob.shape[-2:]) > max_size:
        scale = max_size / max(prob.shape[-2:])
        size = [max(1, round(s * scale)) for s in prob.shape[-2:]]
        prob = F.interpolate(prob[None, None], size=size, mode="area")[0, 0]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((prob.cpu().numpy() * 255).round().astype(np.uint8)).save(path)


@torch.inference_mode()
def run_evaluation(model: nn.Module, dataset: Dataset, task: str, *, device: torch.device,
                   precision: str = "fp32", channels_last: bool = False, batch_size: int = 8,
                   save_predictions: Optional[PathLike] = None,
                   prediction_names: Optional[Iterable[str]] = None,
                   prediction_size: Optional[int] = None, quiet: bool = True,
                   num_workers: int = 0) -> Dict[str, Any]:
    """Evaluate ``model`` (already on ``device``) on every item of ``dataset``.

    Segmentation: the eval-mode probability map is bilinearly resized to the mask size (the
    authors resize predictions to the label, jcs_official.md §4.5) and fed to
    ``SegmentationMetrics``. Classification: P(COVID) = softmax(logits)[1].
    PNG maps (segmentation) go to ``save_predictions`` for the items in ``prediction_names``
    (all when None), at most ``prediction_size`` pixels a side.

    Returns ``{"task", "metrics", "per_image", "curves" (segmentation), "n_images", "eval_s"}``.
    """
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    wanted = None if prediction_names is None else set(prediction_names)
    out_dir = Path(save_predictions) if save_predictions is not None else None
    seg_metrics = SegmentationMetrics() if task == "segmentation" else None
    per_image: List[Dict[str, Any]] = []
    labels: List[int] = []
    scores: List[float] = []
    for batch in tqdm(loader, desc="evaluate", leave=False, disable=quiet):
        x = to_device(batch["image"], device, channels_last)
        with autocast(device, precision):
            output = model(x)
        output = output.float()
        names = list(batch["name"])
        if task == "classification":
            probs = torch.softmax(output, dim=1)[:, 1].cpu()
            batch_groups = batch.get("group", [None] * len(names))
            for name, label, score, group in zip(names, batch["label"].tolist(), probs.tolist(),
                                                 batch_groups):
                labels.append(int(label))
                scores.append(float(score))
                row = {"name": name, "label": int(label), "score": _round(score)}
                if group is not None:
                    row["group"] = str(group)
                per_image.append(row)
            continue
        masks = batch["mask"]
        if output.shape[-2:] != masks.shape[-2:]:
            output = F.interpolate(output, size=masks.shape[-2:], mode="bilinear",
                                   align_corners=False)
        probs = output.clamp(0, 1).cpu()
        for name, prob, mask in zip(names, probs, masks):
            kept_before = seg_metrics.n_images
            seg_metrics.update(prob[0], mask[0])
            if seg_metrics.n_images > kept_before:  # empty-GT images are excluded
                row = {"name": name}
                row.update({k: _round(v[-1]) for k, v in seg_metrics.per_image.items()})
                per_image.append(row)
            if out_dir is not None and (wanted is None or name in wanted):
                save_probability_png(prob[0], out_dir / png_name(name), prediction_size)
    model.train(was_training)
    result: Dict[str, Any] = {"task": task, "n_images": len(dataset), "per_image": per_image}
    if task == "classification":
        grouped = bool(per_image) and all("group" in row for row in per_image)
        result.update(classification_summary(
            labels, scores, [row["group"] for row in per_image] if grouped else None))
    else:
        result["metrics"] = {k: _round(v) for k, v in seg_metrics.compute().items()}
        result["curves"] = {k: [_round(x) for x in np.asarray(v).tolist()]
                            for k, v in seg_metrics.curves().items()}
    result["eval_s"] = round(time.perf_counter() - start, 3)
    return result


@torch.inference_mode()
def classifier_scores(model: nn.Module, dataset: Dataset, *, device: torch.device,
                      precision: str = "fp32", channels_last: bool = False,
                      batch_size: int = 32) -> List[float]:
    """P(COVID) = softmax(logits)[1] of every item of ``dataset``, in order."""
    was_training = model.training
    model.eval()
    scores: List[float] = []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        with autocast(device, precision):
            logits = model(to_device(batch["image"], device, channels_last))
        scores += torch.softmax(logits.float(), dim=1)[:, 1].cpu().tolist()
    model.train(was_training)
    return scores


def load_trained_model(checkpoint: PathLike) -> tuple[nn.Module, Dict[str, Any]]:
    """Rebuild the model of a checkpoint written by :func:`jcs.engine.train` (``model.pt``:
    model name, options and input size are stored with the weights) and load it strictly."""
    payload = read_checkpoint(checkpoint)
    if "model_name" not in payload or "model_options" not in payload:
        raise ValueError(f"{checkpoint} does not say which model it holds (no model_name / "
                         "model_options): build the model yourself and pass it to evaluate()")
    options = {k: v for k, v in payload["model_options"].items() if k != "pretrained"}
    model = create_model(payload["model_name"], **options)  # initial weights: the file replaces them
    load_checkpoint(checkpoint, model)
    return model, payload


def evaluate(model_or_checkpoint: Union[nn.Module, PathLike], dataset: Union[str, Dataset, None] = None,
             split: str = "test", *, task: Optional[str] = None, size: Optional[int] = None,
             gt_size: Optional[int] = 512, batch_size: int = 8, device: str = "auto",
             precision: str = "auto", channels_last: bool = True,
             save_predictions: Optional[PathLike] = None, prediction_size: Optional[int] = None,
             indices: Optional[List[int]] = None, quiet: Optional[bool] = None) -> Dict[str, Any]:
    """Metrics of a model (an ``nn.Module`` or a checkpoint written by ``train``) on a split.

    ``dataset``: a Dataset (used as is) or a registry name (default ``medseg`` for segmentation,
    ``ucsd-covid-ct`` for classification) read at ``size`` (default: the checkpoint's training
    size, else 512 / 224) with segmentation masks at ``gt_size`` (None = ``size``).
    ``save_predictions=DIR`` writes every probability map as 8-bit PNG. See
    :func:`run_evaluation` for the returned dict; ``"split"`` and ``"dataset"`` are added.
    """
    info: Dict[str, Any] = {}
    if isinstance(model_or_checkpoint, nn.Module):
        model = model_or_checkpoint
        name = getattr(model, "model_name", type(model).__name__)
    else:
        model, info = load_trained_model(model_or_checkpoint)
        name = info["model_name"]
    task = task or info.get("task") or task_of(name)
    size = size or info.get("input_size") or DEFAULT_SIZE[task]
    dev = select_device(device)
    if isinstance(dataset, Dataset):
        data, data_name = dataset, type(dataset).__name__
    else:
        data_name = dataset or ("medseg" if task == "segmentation" else "ucsd-covid-ct")
        if task == "segmentation":
            data = SegmentationSlices(data_name, split, size, indices=indices)
            if gt_size and gt_size != size:
                data = SizedMasks(data, SegmentationSlices(data_name, split, gt_size, indices=indices))
        else:
            data = ClassificationSlices(data_name, split, size, indices=indices)
    prec = resolve_precision(precision, dev)
    model = prepare_model(model, dev, channels_last)
    result = run_evaluation(model, data, task, device=dev, precision=prec,
                            channels_last=channels_last, batch_size=batch_size,
                            save_predictions=save_predictions, prediction_size=prediction_size,
                            quiet=quiet_default(quiet))
    result.update({"dataset": data_name, "split": split, "model": name, "input_size": size,
                   "precision": prec, "channels_last": channels_last, "device": str(dev)})
    return result
