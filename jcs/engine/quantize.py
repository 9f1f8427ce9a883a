"""``jcs quantize``: an int8 copy of a trained segmentation checkpoint (:mod:`jcs.quantization`),
calibrated on training slices of its dataset and checked against the original on the test split.

The report (JSON, beside the ``.pt2`` file or where asked) gives the Dice / IoU / E-measure of the
original checkpoint (bf16 autocast where native, as the tables evaluate it) and of the int8 copy
on the same slices, the per-image Dice change, the time per slice of each, and the provenance."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, Optional, Union

import numpy as np
import torch
from tqdm.auto import tqdm

from jcs.data import SegmentationSlices
from jcs.quantization import load_int8, quantize_int8, save_int8, torchao_version, vnni_available

from .datasets import evenly_spaced, item_names, task_of
from .evaluate import evaluate, load_trained_model
from .provenance import code_state, device_info, now_iso, package_versions, sha256_file
from .results import write_result
from .runtime import quiet_default

PathLike = Union[str, Path]
REPORT_SCHEMA = "jcs-int8-report"
COMPARED = ("dice", "iou", "e_mean", "sensitivity", "specificity")


def quantize_checkpoint(checkpoint: PathLike, out: PathLike, *, dataset: str = "medseg",
                        calibration_slices: int = 16, size: Optional[int] = None,
                        check: bool = True, max_images: Optional[int] = None,
                        report: Optional[PathLike] = None, data_root: Optional[PathLike] = None,
                        quiet: Optional[bool] = None) -> Dict[str, Any]:
    """Quantise the segmentation checkpoint ``checkpoint`` (written by ``jcs train``) to the int8
    program ``out`` (``.pt2``), calibrated on ``calibration_slices`` evenly spaced slices of the
    training split of ``dataset`` at ``size`` (default: the checkpoint's training size). With
    ``check``, evaluate the original and the int8 copy on the test split (its first
    ``max_images``). Writes and returns the report (``report``, default ``out`` with ``.json``)."""
    out = Path(out)
    if out.suffix != ".pt2":
        raise ValueError(f"{out}: the int8 program is written as a .pt2 file; name it e.g. "
                         f"{out.with_suffix('.pt2').name}")
    quiet = quiet_default(quiet)
    model, info = load_trained_model(checkpoint)
    name = info["model_name"]
    if task_of(name) != "segmentation":
        raise ValueError(f"{checkpoint} holds {name!r}, a classifier: `jcs quantize` makes int8 "
                         "segmenters (the part of `jcs diagnose` that dominates its time)")
    size = int(size or info.get("input_size") or 512)
    train_split = SegmentationSlices(dataset, "train", size, root=data_root)
    calibration = SegmentationSlices(dataset, "train", size, root=data_root,
                                     indices=evenly_spaced(len(train_split), calibration_slices))
    reduce_range = not vnni_available()  # 7-bit activations where int8 sums saturate in int16
    start = time.perf_counter()
    with tqdm(total=len(calibration), desc="calibrate int8", leave=False, disable=quiet) as bar:
        program = quantize_int8(model, (item["image"][None] for item in calibration), size,
                                progress=bar.update, reduce_range=reduce_range)
    quantise_s = time.perf_counter() - start
    result: Dict[str, Any] = {
        "schema": REPORT_SCHEMA, "model": name, "input_size": size,
        "checkpoint": str(checkpoint), "checkpoint_sha256": sha256_file(Path(checkpoint)),
        "int8_program": str(out), "dataset": dataset,
        "calibration": {"split": "train", "names": item_names(calibration)},
        "quantizer": "torchao X86InductorQuantizer, static, per-channel weights; "
                     "int8-mixed-bf16 under torch.compile (freezing)",
        "reduce_range": reduce_range, "vnni": not reduce_range,
        "quantise_s": round(quantise_s, 1), "created": now_iso(), "git": code_state(),
        "versions": dict(package_versions(), torchao=torchao_version()),
        "device": device_info(torch.device("cpu")),
    }
    save_int8(program, out, {k: result[k] for k in ("model", "input_size", "checkpoint",
                                                    "checkpoint_sha256", "dataset", "calibration",
                                                    "quantizer", "reduce_range", "created", "git",
                                                    "versions")})
    if check:
        result["check"] = compare_on_test(checkpoint, out, dataset, size, max_images, data_root, quiet)
    return result | {"report": str(write_result(report or out.with_suffix(".json"), result))}


def compare_on_test(checkpoint: PathLike, program: PathLike, dataset: str, size: int,
                    max_images: Optional[int], data_root: Optional[PathLike],
                    quiet: bool) -> Dict[str, Any]:
    """Metrics of the original checkpoint (evaluated as every table: bf16 autocast where native)
    and of the int8 program on the test split of ``dataset`` (masks at 512², as every table),
    the per-image Dice change, and the evaluation time per slice of each (model and metrics,
    1 slice per call; the int8 program's compilation is timed apart)."""
    indices = list(range(max_images)) if max_images else None
    test = SegmentationSlices(dataset, "test", size, root=data_root, indices=indices)
    int8 = load_int8(program)
    start = time.perf_counter()
    int8(test[0]["image"][None])  # compiles
    compile_s = time.perf_counter() - start
    runs = {"original": evaluate(checkpoint, dataset, "test", size=size, batch_size=1,
                                 indices=indices, quiet=quiet, device="cpu"),
            "int8": evaluate(int8, dataset, "test", size=size, batch_size=1, indices=indices,
                             quiet=quiet, device="cpu", precision="fp32")}
    before = {row["name"]: row["dice"] for row in runs["original"]["per_image"]}
    change = np.array([row["dice"] - before[row["name"]] for row in runs["int8"]["per_image"]])
    n = runs["int8"]["n_images"]
    return {"split": "test", "n_images": n, "original_precision": runs["original"]["precision"],
            "metrics": {k: {key: run["metrics"][key] for key in COMPARED} for k, run in runs.items()},
            "dice_change": {"mean": float(change.mean()), "min": float(change.min()),
                            "max": float(change.max())} if change.size else None,
            "per_image_dice": {k: [[r["name"], r["dice"]] for r in run["per_image"]]
                               for k, run in runs.items()},
            "eval_seconds_per_slice": {k: run["eval_s"] / max(n, 1) for k, run in runs.items()},
            "int8_compile_s": round(compile_s, 1)}
