"""The diagnosis of one patient, stage by stage (:class:`DiagnosisPipeline`: read, classify, the
patient rule, segment, explain, lung mask, write; each timed), of several patients with one
pipeline (:meth:`DiagnosisPipeline.run_many`), and :func:`diagnose`, the one-call form."""
from __future__ import annotations

import copy
import csv
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

import jcs
from jcs.data import Volume, read_volume, volume_to_uint8
from jcs.data.transforms import resize_center_crop_batch, to_network_input_batch
from jcs.explain import GradCAM
from jcs.inference import (CompiledModel, keep_freed_memory, optimize_for_inference, predict,
                           resolve_device, resolve_precision, synchronize)
from jcs.quantization import is_int8_file, load_int8
from jcs.streams import effective_streams, resolve_streams

from .config import DISCLAIMER, RANDOM_WEIGHTS_WARNING, DiagnosisConfig, PathLike
from .html_report import patients_html
from .int8_cache import choose_segmenter
from .lungs import air_mask, lungs_from_air
from .models import load_model
from .report import write_report
from .rule import effective_threshold, patient_positive, rule_text, slice_predictions
from .view import cam_to_slice

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


class DiagnosisPipeline:
    """The models of one configuration, loaded and optimised once, with one method per stage
    (so that :mod:`jcs.bench` can time them separately); :meth:`run` chains them."""

    def __init__(self, config: Optional[DiagnosisConfig] = None, **overrides: Any):
        config = replace(config or DiagnosisConfig(), **overrides)
        self.config = config
        self.device = resolve_device(config.device)
        self.precision = resolve_precision(config.precision, self.device)
        if config.streams is not None:  # a clear error before any model is loaded
            resolve_streams(config.streams, self.device)
            if config.compile and config.streams > 1:
                raise ValueError("--compile runs one stream (concurrent calls of a compiled model "
                                 "are not measured); drop --streams or --compile")
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
            program, choice = self._choose_int8(config)
            if program is not None:
                float_info = self.segmenter_info
                self._load_int8_segmenter(replace(config, segmenter=program, seg_size=self.seg_size))
                self.segmenter_info.update(quantised_from=float_info["checkpoint"],
                                           options=float_info.get("options"))
            else:
                self.segmenter = optimize_for_inference(segmenter, self.device, precision=self.precision,
                                                        channels_last=config.channels_last)
            self.segmenter_info["int8_choice"] = choice
        if (config.streams or 1) > 1 and self.segmenter_info.get("int8"):
            self.warnings.append(f"--streams {config.streams}: the int8 segmenter runs one stream "
                                 "(its concurrent use is not measured); the classifier runs "
                                 f"{config.streams}. --segmenter-precision float gives the float "
                                 "segmenter the streams too.")
        if config.compile:
            self._compile()

    def streams(self, role: str) -> int:
        """Batches in flight for the ``"classifier"`` or ``"segmenter"``: ``config.streams``,
        else :data:`jcs.streams.DEFAULT_STREAMS`; 1 for a ``torch.compile``'d model or an int8 program,
        whose concurrent use is not measured (``compile`` with ``streams`` above 1 is refused
        when the pipeline is made; an int8 segmenter runs one stream, the classifier still
        ``streams``)."""
        info = self.classifier_info if role == "classifier" else self.segmenter_info
        if info.get("compiled") or info.get("int8"):
            return 1
        return resolve_streams(self.config.streams, self.device)

    def streams_run(self, role: str, n_slices: int) -> int:
        """The streams :meth:`classify` (``"classifier"``) or :meth:`segment` (``"segmenter"``)
        really runs for ``n_slices`` slices: :meth:`streams` capped by their batches and the
        torch threads (:func:`jcs.streams.effective_streams`)."""
        batch = max(self.config.batch_size, 1) if role == "classifier" else self.seg_batch_size
        return effective_streams(self.streams(role), -(-int(n_slices) // batch))

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

    def _choose_int8(self, config: DiagnosisConfig) -> Tuple[Optional[Path], Dict[str, Any]]:
        """The int8 copy of the segmenter checkpoint to run instead of it, or None
        (:func:`jcs.diagnosis.int8_cache.choose_segmenter`; ``segmenter_precision``)."""
        policy = config.segmenter_precision
        if config.segmenter is None:
            if policy == "int8":
                raise ValueError("--segmenter-precision int8 needs a trained segmenter (--segmenter "
                                 "CKPT): its int8 copy is calibrated and checked on real slices")
            return None, {"policy": policy, "int8": False,
                          "reason": "no segmenter checkpoint (random weights): no int8 copy"}
        program, choice = choose_segmenter(config.segmenter, self.seg_size, policy, device=self.device,
                                           data_root=config.data_root,
                                           check_images=config.int8_check_images, quiet=config.quiet)
        if choice.get("data_missing"):  # the CPU could run int8, but no copy could be made
            self.warnings.append(f"Segmenter runs in {self.precision}: {choice['reason']}")
        return program, choice

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
                        output=lambda logits: torch.softmax(logits.float(), dim=1)[:, 1],
                        streams=self.streams("classifier"))
        return probs.double().numpy()

    def segment(self, gray: Union[np.ndarray, torch.Tensor], indices: Sequence[int],
                probabilities: bool = False) -> Dict[int, np.ndarray]:
        """Lesion masks (bool H×W at the slice's size: probability ≥ 0.5) of the slices
        ``indices``, or with ``probabilities`` the probability maps themselves (float32 H×W in
        [0, 1]; ``>= 0.5`` gives the masks); resizing and thresholding run on the model's device."""
        if self.segmenter is None or not len(indices):
            return {}
        height, width = gray.shape[1:]

        def output(p: torch.Tensor) -> torch.Tensor:
            full = F.interpolate(p.float(), size=(height, width), mode="bilinear",
                                 align_corners=False)[:, 0]
            return full if probabilities else full >= 0.5

        masks = predict(self.segmenter, torch.as_tensor(gray)[list(indices)],
                        self.seg_batch_size, device=self.device,
                        precision=self.seg_precision, channels_last=self.config.channels_last,
                        transform=lambda batch: to_network_input_batch(batch, self.seg_size),
                        output=output, streams=self.streams("segmenter"))
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
        lesion_probability = None
        if cfg.save_probabilities:
            lesion_probability = self.segment(slices, to_segment, probabilities=True)
            masks = {i: p >= 0.5 for i, p in lesion_probability.items()}
        else:
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
        write_report(out_dir, summary, volume, gray, probs, preds, masks, cams, lungs,
                     lesion_probability=lesion_probability, nifti=cfg.nifti, dicom_seg=cfg.dicom_seg)
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
                                  "lung_threshold_hu": cfg.lung_threshold_hu,
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
        from jcs.engine.provenance import code_state, now_iso

        return {
            "disclaimer": DISCLAIMER,
            "warnings": warnings,
            "volume_warnings": list(volume.warnings),
            "created": now_iso(),
            "jcs_version": jcs.__version__,
            "git": code_state(),
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
                     "text": rule_text(t_eff, basis, len(probs), cfg.slice_threshold,
                                       cfg.threshold, spacing[0] if spacing else None)},
            "max_probability": float(probs.max()) if len(probs) else None,
            "mean_probability": float(probs.mean()) if len(probs) else None,
            "models": {"classifier": {**self.classifier_info, "input_size": self.size},
                       "segmenter": {**self.segmenter_info, "input_size": self.seg_size}},
            "device": str(self.device),
            "precision": self.precision,
            "segmenter_precision": "int8" if self.segmenter_info.get("int8") else self.seg_precision,
            "batch_size": cfg.batch_size,
            "seg_batch_size": self.seg_batch_size,
            "threads": torch.get_num_threads() if self.device.type == "cpu" else None,
            # the streams that ran (jcs.streams.effective_streams: capped by batches and threads)
            "streams": {"classifier": self.streams_run("classifier", len(probs)),
                        "segmenter": self.streams_run("segmenter", len(masks))
                        if self.segmenter is not None and masks else None},
            "kept_freed_memory": self.kept_freed_memory,
            "top_slices": [{"index": i, "slice_id": volume.slice_ids[i], "probability": float(probs[i]),
                            "positive": bool(preds[i])} for i in top],
            "lesion": lesion,
        }


def diagnose(source: Union[PathLike, Volume], out_dir: PathLike,
             config: Optional[DiagnosisConfig] = None, **overrides: Any) -> Dict[str, Any]:
    """Diagnose one patient volume and write the report folder ``out_dir``; returns the summary
    dict (also in ``out_dir/summary.json``). Options: :class:`DiagnosisConfig` fields."""
    pipeline = DiagnosisPipeline(config, **overrides)
    for warning in pipeline.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    return pipeline.run(source, out_dir)
