"""Patient-level diagnosis: the JCS system end to end on one CT volume (PAPER.md "What the
system does"; jcs_official.md §4.1), behind ``jcs diagnose PATH --out DIR``.

Stages (each timed): **read** the volume (:func:`jcs.data.read_volume`: DICOM folder, NIfTI file or
folder of PNG slices) → **classify** every slice (Resize(256)+CenterCrop(224) scaled to ``size``,
ImageNet normalisation; P(COVID-19) = softmax class 1) → patient rule → **segment** the positive
slices (plus the top-k shown in the report) → **explain** the top-k slices with Grad-CAM on
``layer4`` → wait for the **lung_mask** (computed on the CPU in a background thread from the end
of *read*, while the models run) → **write** the report folder (``slices.csv``, ``summary.json``,
``report.html``, ``probability.svg``, ``images/*.png``; the pictures are encoded in parallel).

**Patient-level rule.** A slice is positive when P(COVID-19) ≥ ``slice_threshold`` (0.5, the
authors' argmax). The patient is positive when MORE than ``T_eff`` slices are positive. The paper's
Table IV sweeps T ∈ {15, 20, 25, 30} with 25 as the default on COVID-CS (250–400 slices of
~1 mm per patient; the authors' code uses > 18). A fixed count means something else for a scan of
133 slices of 2 mm (COVID-CT-MD), so by default (``threshold_scaling="auto"``) T is scaled by the
**slice thickness** where the spacing is known, ``T_eff = T · 1 mm / spacing`` (the same lesion
extent along z), else by the **slice count**, ``T_eff = T · S / 300`` (the same share of the scan):
:func:`jcs.metrics.patient_threshold_scale`, the rule the engine's Table IV uses too.
``threshold_scaling="none"`` uses ``T_eff = T`` as in the paper.

**Lesion burden.** Lesion masks come from the segmenter on the slices whose classification is
positive (as the paper: only positive slices are segmented). Volume in ml = lesion voxels × voxel
volume where the spacing is known. The lung mask (:func:`lung_mask`) is a threshold segmentation:
voxels below −400 HU that are not connected to the air outside the body (2-D, per slice), the
largest 3-D components, holes filled per slice; 8-bit volumes are mapped back to HU through the
lung window they were made with (WL −600 / WW 1500). % of lung = lesion / (lung ∪ lesion).

**Several patients** (:meth:`DiagnosisPipeline.run_many`, ``jcs diagnose A B ... --out DIR``)
share one pipeline: the models are loaded (and, with ``compile``, compiled) once; each report goes
to ``DIR/<name>/``, and ``DIR/index.html`` and ``DIR/patients.csv`` list them all.

**Warnings.** Every non-fatal finding of the reader (``Volume.warnings``: dropped duplicates or
scouts, gaps, values that do not look like HU, ...) and an empty lung mask ("Lung mask not found")
go into ``summary["warnings"]`` (the reader's also in ``summary["volume_warnings"]``), at the top
of ``report.html``.

This is a research reproduction, **not a medical device**. Without a trained checkpoint a model
has random weights and the result is meaningless: the report says so in capitals, and its verdict
line (``summary["verdict"]``) says it is a demo. ``jcs diagnose`` refuses to run so unless given
``--random-weights``.
"""
from __future__ import annotations

import copy
import csv
import html
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

import jcs
from jcs.data import Volume, read_volume, volume_to_uint8
from jcs.data.transforms import resize_center_crop_batch, to_network_input_batch
from jcs.explain import GradCAM, overlay
from jcs.inference import (CompiledModel, keep_freed_memory, optimize_for_inference, predict,
                           resolve_device, resolve_precision, synchronize)
from jcs.metrics import patient_positive, patient_threshold_scale
from jcs.models import create_model
from jcs.models.weights import load_checkpoint, read_checkpoint
from jcs.quantization import is_int8_file, load_int8

PathLike = Union[str, Path]

DEFAULT_THRESHOLD = 25.0  # PAPER.md Table IV, default row
LUNG_WINDOW = (-600.0, 1500.0)  # level, width of the 8-bit volumes (jcs.data.window)
RANDOM_WEIGHTS_WARNING = ("NO {what} CHECKPOINT WAS GIVEN: THE {what} HAS RANDOM WEIGHTS AND THIS "
                          "RESULT IS MEANINGLESS (pipeline test only). Pass --{flag} CKPT.")
DISCLAIMER = "Research reproduction of Wu et al., IEEE TIP 2021. Not a medical device; not for clinical use."


@dataclass
class DiagnosisConfig:
    """Options of :func:`diagnose` (the CLI flags of ``jcs diagnose`` have the same names).

    ``size`` / ``seg_size``: classifier / segmenter input (default: the checkpoint's training size,
    else 224 / 512). ``threshold``: T of the patient rule, carried to the volume by
    ``threshold_scaling`` ("auto", "thickness", "count" or "none", see the module docstring).
    ``precision``: "auto" (bf16-true where native), "fp32", "bf16" (autocast)
    or "bf16-true" (bf16 weights; :mod:`jcs.inference`). ``seg_batch_size``: slices per segmenter
    call; ``None`` = 1 on the CPU (larger batches run slower per slice there: ``results/bench``),
    4 on CUDA. ``keep_freed_memory``: on the CPU, let the process heap keep freed activation
    buffers (:func:`jcs.inference.keep_freed_memory`, process-wide; ~20% faster).
    ``segmenter``: a ``.pt`` checkpoint, or a ``.pt2`` int8 program of ``jcs quantize``
    (:mod:`jcs.quantization`; CPU only, at the size it was quantised for, 1 slice per call).
    ``segment_top_k``: also segment the top-k slices when they are not positive (so every shown
    slice has a mask; their lesions do not count in the volume). ``compile``: ``torch.compile``
    the classifier and the segmenter (:class:`jcs.inference.CompiledModel`) when the pipeline is
    made, ~30 s per model on the CPU (``compile_s`` in the models' info), for faster patients
    after that (``results/bench``); it pays from the first patient of a multi-patient run."""

    classifier_model: str = "jcs-classifier"
    classifier: Optional[PathLike] = None
    segmenter_model: str = "jcs-seg"
    segmenter: Optional[PathLike] = None
    segment: bool = True
    size: Optional[int] = None
    seg_size: Optional[int] = None
    threshold: float = DEFAULT_THRESHOLD
    threshold_scaling: str = "auto"
    slice_threshold: float = 0.5
    top_k: int = 6
    segment_top_k: bool = True
    batch_size: int = 16
    seg_batch_size: Optional[int] = None
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool = True
    lung_threshold_hu: float = -400.0
    keep_freed_memory: bool = True
    compile: bool = False


# ------------------------------------------------------------------------------------------------
# Patient rule and Table IV sweep


def effective_threshold(threshold: float = DEFAULT_THRESHOLD, *, n_slices: Optional[int] = None,
                        spacing_mm: Optional[float] = None,
                        scaling: str = "auto") -> Tuple[float, str]:
    """``(T_eff, basis)`` of the patient rule for one volume (see the module docstring):
    ``T · factor`` with the factor of :func:`jcs.metrics.patient_threshold_scale`."""
    if threshold < 0:
        raise ValueError(f"the patient threshold T must be >= 0, got {threshold}")
    factor, basis = patient_threshold_scale(spacing_mm=spacing_mm, n_slices=n_slices,
                                            scaling=scaling)
    return float(threshold) * factor, basis


def slice_predictions(probabilities: Sequence[float], slice_threshold: float = 0.5) -> np.ndarray:
    """0/1 per slice: ``probability >= slice_threshold`` (the :mod:`jcs.metrics` convention)."""
    return (np.asarray(probabilities, dtype=np.float64) >= slice_threshold).astype(np.int64)




# ------------------------------------------------------------------------------------------------
# Lung mask


def _uint8_to_hu(values: np.ndarray) -> np.ndarray:
    """float32 HU of 8-bit lung-window values: ``v/255·1500 − 1350`` (see :func:`to_hu`)."""
    level, width = LUNG_WINDOW
    return np.asarray(values).astype(np.float32) / 255.0 * width + (level - width / 2.0)


def to_hu(volume: Volume) -> np.ndarray:
    """HU array of a volume; 8-bit volumes are mapped back through the lung window
    (``v/255·1500 − 1350``), an approximation clipped to [−1350, 150] HU."""
    if volume.unit == "HU":
        return volume.array.astype(np.float32, copy=False)
    return _uint8_to_hu(volume.array)


def air_mask(volume: Volume, threshold: float = -400.0, gray: Optional[np.ndarray] = None) -> np.ndarray:
    """bool S×H×W: the voxels below ``threshold`` HU. HU volumes are compared directly; 8-bit
    volumes through a 256-entry table of :func:`to_hu` indexed by their uint8 values (``gray``,
    default :func:`jcs.data.volume_to_uint8` of the volume): the same mask as
    ``to_hu(volume) < threshold`` without a float copy of the volume."""
    if volume.unit == "HU":
        return volume.array < threshold
    table = _uint8_to_hu(np.arange(256)) < threshold
    return table[volume_to_uint8(volume) if gray is None else gray]


def _in_plane_structure() -> np.ndarray:
    """3×3×3 connectivity that links 4-neighbours within a slice and nothing across slices."""
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    return structure


def _touching_border(mask: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` (S×H×W) whose 2-D component, within its slice, touches the slice's border."""
    from scipy import ndimage  # lazy: scipy is needed by the lung mask only

    labels, count = ndimage.label(mask, structure=_in_plane_structure())
    edge = np.zeros(count + 1, dtype=bool)
    for border in (labels[:, 0], labels[:, -1], labels[:, :, 0], labels[:, :, -1]):
        edge[border.ravel()] = True
    edge[0] = False
    return edge[labels]


def _bounding_box(mask: np.ndarray) -> Tuple[slice, ...]:
    """The smallest box (one slice per axis) holding every True voxel of a non-empty mask."""
    box = []
    for axis in range(mask.ndim):
        hits = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(int(hits[0]), int(hits[-1]) + 1))
    return tuple(box)


def _component_sizes(labels: np.ndarray, count: int, chunk: int = 8) -> np.ndarray:
    """Voxels per label 1..count, counted ``chunk`` slices at a time (``np.bincount`` holds the
    GIL: small chunks let :meth:`DiagnosisPipeline.run`'s other thread work meanwhile)."""
    sizes = np.zeros(count + 1, dtype=np.int64)
    for start in range(0, labels.shape[0], chunk):
        sizes += np.bincount(labels[start:start + chunk].ravel(), minlength=count + 1)
    return sizes[1:]


def lungs_from_air(air: np.ndarray, keep: int = 2, min_fraction: float = 0.1) -> np.ndarray:
    """Threshold lung segmentation from the air mask of an S×H×W volume (bool S×H×W).

    1. per slice, drop the air components touching the image border (outside the body); 2. keep
    the ``keep`` largest 3-D components of the rest that have at least ``min_fraction`` of the
    largest one's voxels (both lungs, or one component when the trachea joins them; bowel gas and
    small pockets are dropped); 3. fill holes per slice (vessels, and lesions surrounded by lung:
    background not connected to the slice border). Lesions touching the chest wall stay outside
    the mask, hence :func:`diagnose` reports lesion / (lung ∪ lesion).

    Steps 2 and 3 work inside the bounding box of the air left by step 1, which gives the same
    mask as on the whole volume: outside a rectangle holding every lung pixel, the background
    is connected to the slice border, so a background pixel on the box's edge is too."""
    from scipy import ndimage

    inside = air & ~_touching_border(air)
    lungs = np.zeros_like(inside)
    if not inside.any():
        return lungs
    box = _bounding_box(inside)
    labels, count = ndimage.label(inside[box])
    sizes = _component_sizes(labels, count)
    order = np.argsort(sizes)[::-1][:keep]
    kept = np.zeros(count + 1, dtype=bool)
    kept[[index + 1 for index in order if sizes[index] >= min_fraction * sizes[order[0]]]] = True
    lungs[box] = ~_touching_border(~kept[labels])
    return lungs


def lung_mask(hu: np.ndarray, threshold: float = -400.0, keep: int = 2,
              min_fraction: float = 0.1) -> np.ndarray:
    """Threshold lung segmentation of an S×H×W HU volume (bool S×H×W): the air below
    ``threshold`` HU given to :func:`lungs_from_air` (see there for the steps)."""
    return lungs_from_air(np.asarray(hu) < threshold, keep, min_fraction)


# ------------------------------------------------------------------------------------------------
# Models


def load_model(model_name: str, checkpoint: Optional[PathLike]) -> Tuple[nn.Module, Dict[str, Any]]:
    """Build a model and load a checkpoint. A checkpoint written by :func:`jcs.engine.train`
    names its model, options and input size, which take precedence over ``model_name``; other
    checkpoints are loaded strictly into ``create_model(model_name)``. Without a checkpoint the
    model keeps its random initialisation (``info["random_init"] = True``)."""
    if checkpoint is None:
        return create_model(model_name).eval(), {"name": model_name, "checkpoint": None,
                                                 "random_init": True, "input_size": None}
    payload = read_checkpoint(checkpoint)
    name = payload.get("model_name") if isinstance(payload.get("model_name"), str) else model_name
    options = payload.get("model_options") if isinstance(payload.get("model_options"), dict) else {}
    options = {k: v for k, v in options.items() if k != "pretrained"}  # the checkpoint replaces them
    if name not in jcs.models.list_models():
        name, options = model_name, {}
    model = create_model(name, **options)
    load_checkpoint(checkpoint, model)
    return model.eval(), {"name": name, "checkpoint": str(checkpoint), "random_init": False,
                          "input_size": payload.get("input_size"), "options": options}


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


class DiagnosisPipeline:
    """The models of one configuration, loaded and optimised once, with one method per stage
    (so that :mod:`jcs.bench` can time them separately); :meth:`run` chains them."""

    def __init__(self, config: Optional[DiagnosisConfig] = None, **overrides: Any):
        config = replace(config or DiagnosisConfig(), **overrides)
        self.config = config
        self.device = resolve_device(config.device)
        self.precision = resolve_precision(config.precision, self.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.kept_freed_memory = (self.device.type == "cpu" and config.keep_freed_memory
                                  and keep_freed_memory())
        self.warnings: List[str] = []
        classifier, self.classifier_info = load_model(config.classifier_model, config.classifier)
        if getattr(classifier, "features_layer", None) is None:
            raise ValueError(f"{self.classifier_info['name']!r} is not a classifier (no features_layer "
                             "for Grad-CAM); pass a classifier model, e.g. --classifier-model "
                             "jcs-classifier")
        if self.classifier_info["random_init"]:
            self.warnings.append(RANDOM_WEIGHTS_WARNING.format(what="CLASSIFIER", flag="classifier"))
        self.size = int(config.size or self.classifier_info["input_size"] or 224)
        self.explainer = classifier.to(self.device)  # fp32 eager: Grad-CAM needs gradients
        self.classifier = optimize_for_inference(copy.deepcopy(classifier), self.device,
                                                 precision=self.precision,
                                                 channels_last=config.channels_last)
        self.segmenter = None
        self.segmenter_info: Dict[str, Any] = {"name": None}
        self.seg_size = self.seg_batch_size = None
        self.seg_precision = self.precision
        if config.segment and is_int8_file(config.segmenter):
            self._load_int8_segmenter(config)
        elif config.segment:
            segmenter, self.segmenter_info = load_model(config.segmenter_model, config.segmenter)
            if getattr(segmenter, "features_layer", None) is not None:
                raise ValueError(f"{self.segmenter_info['name']!r} is a classifier, not a segmentation "
                                 "model; pass e.g. --segmenter-model jcs-seg")
            if self.segmenter_info["random_init"]:
                self.warnings.append(RANDOM_WEIGHTS_WARNING.format(what="SEGMENTER", flag="segmenter"))
            self.seg_size = int(config.seg_size or self.segmenter_info["input_size"] or 512)
            self.seg_batch_size = max(config.seg_batch_size or (4 if self.device.type == "cuda" else 1), 1)
            self.segmenter = optimize_for_inference(segmenter, self.device, precision=self.precision,
                                                    channels_last=config.channels_last)
        if config.compile:
            self._compile()

    def _compile(self) -> None:
        """``torch.compile`` the classifier and the (non-int8) segmenter for their batch sizes and
        compile them now, on blank slices, so that no patient pays for it."""
        parts = [("classifier", self.classifier_info, self.config.batch_size,
                  lambda: self.classify(np.zeros((1, self.size, self.size), np.uint8)))]
        if self.segmenter is not None and not self.segmenter_info.get("int8"):
            parts.append(("segmenter", self.segmenter_info, self.seg_batch_size,
                          lambda: self.segment(np.zeros((1, self.seg_size, self.seg_size), np.uint8), [0])))
        for role, info, batch_size, warm_up in parts:
            setattr(self, role, CompiledModel(getattr(self, role), max(batch_size, 1)))
            start = time.perf_counter()
            try:
                warm_up()
            except Exception as error:  # Inductor: no C++ compiler, unsupported op, ...
                raise RuntimeError(f"torch.compile of the {role} failed ({type(error).__name__}: "
                                   f"{str(error).splitlines()[0] if str(error) else ''}); torch.compile "
                                   "needs a C++ compiler on the CPU (Triton on CUDA). Run without "
                                   "--compile") from error
            info.update(compiled=True, compile_s=round(time.perf_counter() - start, 1))

    def _load_int8_segmenter(self, config: DiagnosisConfig) -> None:
        """An int8 program of ``jcs quantize`` as the segmenter (CPU only), compiled here on a
        blank slice so that the first patient does not pay for it (``compile_s`` in its info)."""
        if self.device.type != "cpu":
            raise ValueError(f"{config.segmenter} is an int8 program (x86 CPU only) but the device is "
                             f"{self.device}; pass --device cpu, or the .pt checkpoint it was made from")
        segmenter = load_int8(config.segmenter)
        self.seg_size = segmenter.input_size
        if config.seg_size not in (None, self.seg_size):
            raise ValueError(f"{config.segmenter} was quantised for {self.seg_size}² inputs; drop "
                             f"--seg-size {config.seg_size} or quantise again with --size")
        start = time.perf_counter()
        with torch.inference_mode():
            segmenter(torch.zeros(1, 3, self.seg_size, self.seg_size))
        meta = segmenter.metadata
        self.segmenter_info = {"name": meta.get("model"), "checkpoint": str(config.segmenter),
                               "random_init": False, "input_size": self.seg_size, "int8": True,
                               "quantised_from": meta.get("checkpoint"),
                               "compile_s": round(time.perf_counter() - start, 1)}
        self.segmenter, self.seg_precision, self.seg_batch_size = segmenter, "fp32", 1

    # -- stages ----------------------------------------------------------------------------------
    # Each stage takes the uint8 S×H×W volume as a NumPy array or a tensor; :meth:`run` passes a
    # tensor already on the model's device, so the volume crosses the bus once, as 8-bit data.
    def classify(self, gray: Union[np.ndarray, torch.Tensor]) -> np.ndarray:
        """P(COVID-19) per slice of a uint8 S×H×W volume (float64 S). The slices are resized on
        the model's device (:func:`jcs.data.transforms.resize_center_crop_batch`)."""
        if not len(gray):
            return np.zeros(0)
        probs = predict(self.classifier, torch.as_tensor(gray), max(self.config.batch_size, 1),
                        device=self.device, precision=self.precision,
                        channels_last=self.config.channels_last,
                        transform=lambda batch: resize_center_crop_batch(batch, self.size),
                        output=lambda logits: torch.softmax(logits.float(), dim=1)[:, 1])
        return probs.double().numpy()

    def segment(self, gray: Union[np.ndarray, torch.Tensor], indices: Sequence[int]) -> Dict[int, np.ndarray]:
        """Lesion masks (bool H×W at the slice's size: probability ≥ 0.5) of the slices
        ``indices``; resizing and thresholding run on the model's device."""
        if self.segmenter is None or not len(indices):
            return {}
        height, width = gray.shape[1:]
        masks = predict(self.segmenter, torch.as_tensor(gray)[list(indices)],
                        self.seg_batch_size, device=self.device,
                        precision=self.seg_precision, channels_last=self.config.channels_last,
                        transform=lambda batch: to_network_input_batch(batch, self.seg_size),
                        output=lambda p: F.interpolate(p.float(), size=(height, width), mode="bilinear",
                                                       align_corners=False)[:, 0] >= 0.5)
        return {int(i): mask.numpy() for i, mask in zip(indices, masks)}

    def explain(self, gray: Union[np.ndarray, torch.Tensor], indices: Sequence[int]) -> Dict[int, np.ndarray]:
        """Grad-CAM maps (float32 H×W in [0, 1], on the whole slice) of the slices ``indices``."""
        if not len(indices):
            return {}
        height, width = gray.shape[1:]
        slices = torch.as_tensor(gray)[list(indices)].to(self.device)
        cams = GradCAM(self.explainer)(resize_center_crop_batch(slices, self.size), class_index=1).cpu()
        return {i: cam_to_slice(cam, height, width, self.size) for i, cam in zip(indices, cams)}

    def lungs(self, volume: Volume, gray: Optional[np.ndarray] = None) -> np.ndarray:
        """The lung mask of the volume (:func:`air_mask` at ``lung_threshold_hu``, then
        :func:`lungs_from_air`); CPU work that :meth:`run` does in a background thread."""
        return lungs_from_air(air_mask(volume, self.config.lung_threshold_hu, gray))

    # -- whole run ---------------------------------------------------------------------------------
    def run(self, source: Union[PathLike, Volume], out_dir: PathLike,
            positive_override: Optional[Sequence[int]] = None) -> Dict[str, Any]:
        """Diagnose one volume (a path or a :class:`~jcs.data.Volume`) and write the report to
        ``out_dir``; returns the summary (also written as ``summary.json``).
        ``positive_override`` (benchmarks only) replaces the set of positive slices.

        The lung mask (CPU only: SciPy labelling) is computed in a background thread while the
        models classify, segment and explain; ``timings_s["lung_mask"]`` is the time the run then
        still waits for it, ``background_s["lung_mask"]`` the thread's own time."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="jcs-lungs") as background:
            return self._run(source, Path(out_dir), positive_override, background)

    def _run(self, source: Union[PathLike, Volume], out_dir: Path,
             positive_override: Optional[Sequence[int]], background: ThreadPoolExecutor) -> Dict[str, Any]:
        cfg = self.config
        timings: Dict[str, float] = {}
        start_all = clock = time.perf_counter()

        volume = source if isinstance(source, Volume) else read_volume(source)
        gray = volume_to_uint8(volume)
        timings["read"] = time.perf_counter() - clock

        def timed_lungs() -> Tuple[np.ndarray, float]:
            begin = time.perf_counter()
            return self.lungs(volume, gray), time.perf_counter() - begin

        lungs_job = background.submit(timed_lungs) if self.segmenter is not None else None

        clock = time.perf_counter()
        slices = torch.from_numpy(gray).to(self.device)  # once, as 8-bit data, for every stage
        probs = self.classify(slices)
        synchronize(self.device)
        timings["classify"] = time.perf_counter() - clock

        preds = slice_predictions(probs, cfg.slice_threshold)
        if positive_override is not None:
            preds = np.zeros(len(probs), dtype=np.int64)
            preds[list(positive_override)] = 1
        n_slices = len(probs)
        t_eff, basis = effective_threshold(cfg.threshold, n_slices=n_slices,
                                           spacing_mm=volume.spacing[0] if volume.spacing else None,
                                           scaling=cfg.threshold_scaling)
        positive = bool(patient_positive(preds, t_eff)) if n_slices else False
        top = [int(i) for i in np.argsort(-probs, kind="stable")[:max(cfg.top_k, 0)]]
        positives = [int(i) for i in np.flatnonzero(preds)]

        clock = time.perf_counter()
        to_segment = sorted(set(positives) | (set(top) if cfg.segment_top_k else set()))
        masks = self.segment(slices, to_segment)
        synchronize(self.device)
        timings["segment"] = time.perf_counter() - clock

        clock = time.perf_counter()
        cams = self.explain(slices, top)
        synchronize(self.device)
        timings["explain"] = time.perf_counter() - clock
        del slices

        clock = time.perf_counter()
        lungs, lungs_seconds = lungs_job.result() if lungs_job is not None else (None, None)
        timings["lung_mask"] = time.perf_counter() - clock

        clock = time.perf_counter()
        summary = self._summary(volume, probs, preds, positive, (t_eff, basis), top, masks, lungs)
        summary["timings_s"] = timings
        write_report(out_dir, summary, gray, volume.slice_ids, probs, preds, masks, cams, lungs)
        timings["write"] = time.perf_counter() - clock
        timings["total"] = time.perf_counter() - start_all
        summary["timings_s"] = {k: round(v, 4) for k, v in timings.items()}
        summary["background_s"] = {"lung_mask": None if lungs_seconds is None else round(lungs_seconds, 4)}
        from jcs.engine.provenance import peak_memory  # lazy: avoids importing the engine at import

        summary["peak_memory"] = peak_memory(self.device)
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return summary

    def run_many(self, sources: Sequence[PathLike], out_dir: PathLike,
                 quiet: bool = False) -> List[Dict[str, Any]]:
        """Diagnose several volumes one after the other with these models (loaded, and compiled,
        once): each report in ``out_dir/<name>/`` (:func:`report_folder_names`), and
        ``out_dir/patients.csv`` and ``out_dir/index.html`` listing every patient. A volume that
        cannot be read (:class:`jcs.data.DataError`) is listed with its error and the others
        still run. Returns the rows of ``patients.csv``."""
        from tqdm.auto import tqdm

        from jcs.data import DataError

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        rows = []
        names = report_folder_names(sources)
        for name, source in tqdm(list(zip(names, sources)), desc="patients", unit="patient",
                                 disable=quiet):
            row: Dict[str, Any] = {"patient": name, "source": str(source)}
            try:
                summary = self.run(source, out_dir / name)
            except DataError as error:
                rows.append({**row, "error": str(error)})
                continue
            lesion = summary["lesion"]
            rows.append({**row, "diagnosis": summary["diagnosis"], "n_slices": summary["n_slices"],
                         "n_positive_slices": summary["n_positive_slices"],
                         "effective_threshold": summary["rule"]["effective_threshold"],
                         "lesion_volume_ml": lesion["volume_ml"],
                         "percent_of_lung": lesion["percent_of_lung"],
                         "seconds": summary["timings_s"]["total"], "report": f"{name}/report.html",
                         "volume_warnings": list(summary["volume_warnings"]), "error": ""})
        columns = ["patient", "diagnosis", "n_slices", "n_positive_slices", "effective_threshold",
                   "lesion_volume_ml", "percent_of_lung", "seconds", "report", "source",
                   "volume_warnings", "error"]
        with open(out_dir / "patients.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, restval="")
            writer.writeheader()
            writer.writerows({**row, "volume_warnings": " | ".join(row.get("volume_warnings", []))}
                             for row in rows)
        (out_dir / "index.html").write_text(patients_html(rows, self.warnings))
        return rows

    def _summary(self, volume: Volume, probs: np.ndarray, preds: np.ndarray, positive: bool,
                 rule: Tuple[float, str], top: List[int], masks: Dict[int, np.ndarray],
                 lungs: Optional[np.ndarray]) -> Dict[str, Any]:
        cfg = self.config
        t_eff, basis = rule
        spacing = volume.spacing
        voxel_ml = (spacing[0] * spacing[1] * spacing[2] / 1000.0) if spacing else None
        positives = [int(i) for i in np.flatnonzero(preds)]
        lesion_voxels = int(sum(int(masks[i].sum()) for i in positives if i in masks))
        lesion: Dict[str, Any] = {"segmented": self.segmenter is not None,
                                  "voxels": lesion_voxels if self.segmenter is not None else None,
                                  "volume_ml": None, "lung_volume_ml": None, "percent_of_lung": None,
                                  "lung_mask_found": None,
                                  "counted_slices": "positive slices only",
                                  "lung_mask": f"threshold {cfg.lung_threshold_hu:g} HU, not connected "
                                               "to the outside air, largest 3-D components, holes "
                                               "filled per slice" + ("" if volume.unit == "HU" else
                                                                     "; 8-bit values mapped to HU "
                                                                     "through the lung window")}
        if self.segmenter is not None and voxel_ml is not None:
            lesion["volume_ml"] = round(lesion_voxels * voxel_ml, 3)
        warnings = list(self.warnings) + list(volume.warnings)
        if lungs is not None:
            lesion["lung_mask_found"] = bool(lungs.any())
            union = lungs.copy()
            for i in positives:
                if i in masks:
                    union[i] |= masks[i]
            lung_voxels = int(union.sum())
            lesion["lung_voxels"] = lung_voxels
            if lesion["lung_mask_found"]:
                lesion["percent_of_lung"] = round(100.0 * lesion_voxels / lung_voxels, 3)
                if voxel_ml is not None:
                    lesion["lung_volume_ml"] = round(lung_voxels * voxel_ml, 3)
            else:
                warnings.append(f"Lung mask not found: no air below {cfg.lung_threshold_hu:g} HU "
                                "inside the body, so the lesion share of the lungs is not given. "
                                "The volume may not be in HU (see the warnings on its values) or "
                                "not hold the lungs.")
        random = [role for role, info in (("classifier", self.classifier_info),
                                          ("segmenter", self.segmenter_info))
                  if info.get("random_init")]
        diagnosis = "COVID-19 positive" if positive else "COVID-19 negative"
        verdict = diagnosis + (f" (RANDOM WEIGHTS in the {' and '.join(random)}: a demo, not a "
                               "diagnosis)" if random else "")
        from jcs.engine.provenance import git_state, now_iso

        return {
            "disclaimer": DISCLAIMER,
            "warnings": warnings,
            "volume_warnings": list(volume.warnings),
            "created": now_iso(),
            "jcs_version": jcs.__version__,
            "git": git_state(),
            "source": volume.source,
            "n_slices": int(len(probs)),
            "slice_shape": list(volume.array.shape[1:]),
            "unit": volume.unit,
            "spacing_mm": list(spacing) if spacing else None,
            "diagnosis": diagnosis,
            "verdict": verdict,
            "random_weights": random,
            "positive": positive,
            "n_positive_slices": len(positives),
            "rule": {"slice_threshold": cfg.slice_threshold, "T": cfg.threshold,
                     "scaling": cfg.threshold_scaling, "basis": basis,
                     "effective_threshold": round(t_eff, 4),
                     "text": f"positive when more than {t_eff:.2f} of {len(probs)} slices have "
                             f"P(COVID-19) >= {cfg.slice_threshold} (T = {cfg.threshold:g}, "
                             + {"thickness": f"scaled by 1 mm / {spacing[0] if spacing else 0:g} mm slices",
                                "count": f"scaled by {len(probs)} / 300 slices",
                                "none": "not scaled"}[basis] + ")"},
            "max_probability": float(probs.max()) if len(probs) else None,
            "mean_probability": float(probs.mean()) if len(probs) else None,
            "models": {"classifier": {**self.classifier_info, "input_size": self.size},
                       "segmenter": {**self.segmenter_info, "input_size": self.seg_size}},
            "device": str(self.device),
            "precision": self.precision,
            "segmenter_precision": "int8" if self.segmenter_info.get("int8") else self.seg_precision,
            "batch_size": cfg.batch_size,
            "seg_batch_size": self.seg_batch_size,
            "kept_freed_memory": self.kept_freed_memory,
            "top_slices": [{"index": i, "slice_id": volume.slice_ids[i], "probability": float(probs[i]),
                            "positive": bool(preds[i])} for i in top],
            "lesion": lesion,
        }


_VOLUME_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".dcm")


def report_folder_names(sources: Sequence[PathLike]) -> List[str]:
    """One report folder name per patient source of :meth:`DiagnosisPipeline.run_many`: its file
    or folder name without a volume extension (``P001/`` → ``P001``, ``scan.nii.gz`` →
    ``scan``), made unique with ``-2``, ``-3``, ... in the order given."""
    names: List[str] = []
    for source in sources:
        name = Path(source).name
        for suffix in _VOLUME_SUFFIXES:
            if name.lower().endswith(suffix):
                name = name[:-len(suffix)]
                break
        name, unique, count = name or "patient", name or "patient", 1
        while unique in names:
            count += 1
            unique = f"{name}-{count}"
        names.append(unique)
    return names


def diagnose(source: Union[PathLike, Volume], out_dir: PathLike,
             config: Optional[DiagnosisConfig] = None, **overrides: Any) -> Dict[str, Any]:
    """Diagnose one patient volume and write the report folder ``out_dir``; returns the summary
    dict (also in ``out_dir/summary.json``). Options: :class:`DiagnosisConfig` fields."""
    pipeline = DiagnosisPipeline(config, **overrides)
    for warning in pipeline.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    return pipeline.run(source, out_dir)


# ------------------------------------------------------------------------------------------------
# Report


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


def probability_svg(probs: np.ndarray, slice_threshold: float, highlight: Sequence[int],
                    width: int = 720, height: int = 220) -> str:
    """An SVG line plot of P(COVID-19) against slice index (no plotting library needed)."""
    pad_l, pad_r, pad_t, pad_b = 44, 10, 10, 30
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b
    n = max(len(probs) - 1, 1)

    def xy(i: float, p: float) -> Tuple[float, float]:
        return pad_l + plot_w * i / n, pad_t + plot_h * (1.0 - p)

    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, p) for i, p in enumerate(probs)))
    ty = xy(0, slice_threshold)[1]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
             f'<rect x="{pad_l}" y="{pad_t}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#999"/>',
             f'<line x1="{pad_l}" y1="{ty:.1f}" x2="{pad_l + plot_w}" y2="{ty:.1f}" stroke="#c33" '
             f'stroke-dasharray="4 3"/>']
    for p in (0.0, 0.5, 1.0):
        y = xy(0, p)[1]
        parts.append(f'<text x="{pad_l - 6}" y="{y + 4:.1f}" text-anchor="end">{p:.1f}</text>')
    for i in sorted({0, len(probs) - 1, (len(probs) - 1) // 2}):
        x = xy(i, 0)[0]
        parts.append(f'<text x="{x:.1f}" y="{height - 12}" text-anchor="middle">{i}</text>')
    parts.append(f'<text x="{pad_l + plot_w / 2:.1f}" y="{height - 1}" text-anchor="middle">'
                 'slice index (superior → inferior)</text>')
    parts.append(f'<polyline fill="none" stroke="#1f5fa8" stroke-width="1.5" points="{points}"/>')
    for i in highlight:
        x, y = xy(i, float(probs[i]))
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#e07b00"/>')
    parts.append("</svg>")
    return "\n".join(parts)


def write_report(out_dir: Path, summary: Dict[str, Any], gray: np.ndarray, slice_ids: Sequence[str],
                 probs: np.ndarray, preds: np.ndarray, masks: Dict[int, np.ndarray],
                 cams: Dict[int, np.ndarray], lungs: Optional[np.ndarray]) -> None:
    """Write ``slices.csv``, ``probability.svg``, ``images/*.png`` and ``report.html`` (the
    caller writes ``summary.json``); adds ``files`` and each top slice's ``images`` to
    ``summary``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    images = out_dir / "images"
    images.mkdir(exist_ok=True)
    spacing = summary["spacing_mm"]
    voxel_ml = spacing[0] * spacing[1] * spacing[2] / 1000.0 if spacing else None
    with open(out_dir / "slices.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["index", "slice_id", "probability", "positive", "segmented",
                         "lesion_pixels", "lesion_ml", "lung_pixels"])
        for i, p in enumerate(probs):
            mask = masks.get(i)
            lesion = int(mask.sum()) if mask is not None else ""
            writer.writerow([i, slice_ids[i], f"{p:.6f}",
                             int(preds[i]), int(mask is not None), lesion,
                             "" if mask is None or voxel_ml is None else f"{lesion * voxel_ml:.4f}",
                             "" if lungs is None else int(lungs[i].sum())])
    highlight = [t["index"] for t in summary["top_slices"]]
    (out_dir / "probability.svg").write_text(
        probability_svg(probs, summary["rule"]["slice_threshold"], highlight))
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
        entry["images"][kind] = f"images/{name}"
    summary["files"] = {"summary": "summary.json", "slices": "slices.csv", "html": "report.html",
                        "probability_plot": "probability.svg"}
    (out_dir / "report.html").write_text(report_html(summary))


def patients_html(rows: Sequence[Dict[str, Any]], warnings: Sequence[str] = ()) -> str:
    """The index page of a multi-patient run: one line per patient (verdict, positive slices,
    lesion burden, time) linking to its report, or the error that stopped it."""
    esc = html.escape
    warn = "".join(f'<div class="warn">⚠ {esc(w)}</div>' for w in warnings)
    lines = []
    for row in rows:
        if row.get("error"):
            cells = f'<td colspan="5" class="error">not diagnosed: {esc(row["error"])}</td>'
        else:
            flags = (f'<br><span class="error">⚠ {len(row["volume_warnings"])} warning(s) on the '
                     "volume: see the report</span>" if row.get("volume_warnings") else "")
            cells = (f"<td><a href=\"{esc(row['report'])}\">{esc(row['diagnosis'])}</a>{flags}</td>"
                     f"<td>{row['n_positive_slices']} of {row['n_slices']} "
                     f"(T = {row['effective_threshold']:.2f})</td>"
                     f"<td>{_fmt(row['lesion_volume_ml'], ' ml')}</td>"
                     f"<td>{_fmt(row['percent_of_lung'], ' %')}</td><td>{row['seconds']:.1f} s</td>")
        lines.append(f"<tr><td>{esc(row['patient'])}</td>{cells}</tr>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>JCS diagnosis: {len(rows)} patients</title>
<style>
body {{ font-family: sans-serif; max-width: 1000px; margin: 1em auto; color: #222; }}
.warn {{ background: #fdd; border: 2px solid #c00; color: #900; padding: .6em; margin: .4em 0;
        font-weight: bold; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 2px 8px; }}
.error {{ color: #900; }} .small {{ color: #666; font-size: .9em; }}
</style></head><body>
<h1>JCS diagnosis: {len(rows)} patients</h1>
{warn}
<p class="small">{esc(DISCLAIMER)}</p>
<table><tr><th>patient</th><th>diagnosis (report)</th><th>positive slices</th><th>lesion volume</th>
<th>lesion share of lung</th><th>time</th></tr>
{''.join(lines)}
</table>
<p class="small">The same table: <a href="patients.csv">patients.csv</a></p>
</body></html>
"""


def _fmt(value: Any, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def report_html(summary: Dict[str, Any]) -> str:
    """The human-readable page: warnings, verdict, rule, lesion burden, timings, the probability
    plot and, per top slice, the CT, Grad-CAM and lesion pictures."""
    esc = html.escape
    warn = "".join(f'<div class="warn">⚠ {esc(w)}</div>' for w in summary["warnings"])
    lesion = summary["lesion"]
    rows = "".join(
        f"<tr><td>{t['index']}</td><td>{esc(str(t['slice_id']))}</td><td>{t['probability']:.3f}</td>"
        f"<td>{'yes' if t['positive'] else 'no'}</td></tr>" for t in summary["top_slices"])
    figures = []
    for t in summary["top_slices"]:
        pics = "".join(f'<figure><img src="{esc(path)}" alt="{esc(kind)} slice {t["index"]}">'
                       f"<figcaption>{esc(kind)}</figcaption></figure>"
                       for kind, path in t.get("images", {}).items())
        figures.append(f"<h3>Slice {t['index']} ({esc(str(t['slice_id']))}): P(COVID-19) = "
                       f"{t['probability']:.3f}</h3><div class='row'>{pics}</div>")
    timings = " · ".join(f"{k} {v:.2f} s" for k, v in summary["timings_s"].items())
    models = summary["models"]
    model_lines = "".join(
        f"<li>{role}: <code>{esc(str(m.get('name')))}</code> at {m.get('input_size')}² — "
        f"{'<b>random weights</b>' if m.get('random_init') else esc(str(m.get('checkpoint')))}</li>"
        for role, m in models.items() if m.get("name"))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>JCS diagnosis report</title>
<style>
body {{ font-family: sans-serif; max-width: 1000px; margin: 1em auto; color: #222; }}
.warn {{ background: #fdd; border: 2px solid #c00; color: #900; padding: .6em; margin: .4em 0;
        font-weight: bold; }}
.verdict {{ font-size: 1.6em; margin: .4em 0; }}
.row {{ display: flex; gap: 8px; flex-wrap: wrap; }}
figure {{ margin: 0; }} figure img {{ width: 230px; image-rendering: pixelated; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 2px 8px; }}
.small {{ color: #666; font-size: .9em; }}
</style></head><body>
<h1>JCS diagnosis report</h1>
{warn}
<p class="small">{esc(summary['disclaimer'])}</p>
<p class="verdict">{esc(summary.get('verdict', summary['diagnosis']))}</p>
<p>{summary['n_positive_slices']} of {summary['n_slices']} slices positive; rule: {esc(summary['rule']['text'])}.</p>
<p>Lesion volume: {_fmt(lesion['volume_ml'], ' ml')} · lung volume: {_fmt(lesion['lung_volume_ml'], ' ml')} ·
lesion share of lung: {'lung mask not found' if lesion.get('lung_mask_found') is False else
                       _fmt(lesion['percent_of_lung'], ' %')}
<span class="small">(lung mask: {esc(lesion['lung_mask'])}; lesions counted on positive slices only)</span></p>
<p class="small">Source: <code>{esc(summary['source'])}</code> · {summary['n_slices']} slices of
{summary['slice_shape'][0]}×{summary['slice_shape'][1]} ({esc(summary['unit'])}) · spacing
{esc(str(summary['spacing_mm']))} mm · device {esc(summary['device'])}, {esc(summary['precision'])}</p>
<ul class="small">{model_lines}</ul>
<p class="small">Timings: {esc(timings)}</p>
<h2>P(COVID-19) per slice</h2>
<img src="probability.svg" alt="per-slice probability plot">
<h2>Top {len(summary['top_slices'])} slices</h2>
<table><tr><th>index</th><th>slice</th><th>P(COVID-19)</th><th>positive</th></tr>{rows}</table>
{''.join(figures)}
<p class="small">Files: <a href="summary.json">summary.json</a> · <a href="slices.csv">slices.csv</a></p>
</body></html>
"""
