"""The segmenter's int8 copy, made on first use and cached beside its checkpoint: which
segmenter ``jcs diagnose`` runs when ``segmenter_precision="auto"`` (issue 16).

A ``.pt`` segmentation checkpoint on the CPU gets an int8 program (:mod:`jcs.quantization`,
what ``jcs quantize`` makes) the first time it is used: ``<checkpoint stem>.int8-<size>.pt2`` and
its report ``.json`` beside the checkpoint (or, where that folder is read-only, under
``$JCS_CACHE_DIR`` / ``~/.cache/jcs/int8``). The report holds the Dice of the original and of
the int8 copy on the test split of MedSeg, and the time per slice of each, measured on this
machine (:func:`jcs.engine.quantize.compare_on_test`). The int8 copy is used only when both hold:

- **accuracy**: its Dice is at most :data:`MAX_DICE_LOSS` (0.005) below the original's;
- **speed**: it is faster per slice than the original on this CPU (int8 gains 2–3x where the
  CPU has VNNI / AMX, 2x on an AVX2-only AMD EPYC).

Otherwise the float model runs and the reason is in the report. A cached copy whose checkpoint
changed (another sha256), whose report lacks the check, or that was quantised with full-range
activations for a CPU with VNNI while this one lacks it, is made again. Without the MedSeg data
(``$JCS_DATA_DIR``) no copy can be calibrated or checked: the float model runs, with a warning
that says how to make one."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import torch

PathLike = Union[str, Path]
MAX_DICE_LOSS = 0.005  # issue 16: the default path keeps the Dice within 0.005 of the original
POLICIES = ("auto", "int8", "float")
DATASET = "medseg"


def cache_dir() -> Path:
    """Where int8 copies go when the checkpoint's folder is read-only: ``$JCS_CACHE_DIR/int8``,
    else ``~/.cache/jcs/int8``."""
    root = os.environ.get("JCS_CACHE_DIR")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "jcs") / "int8"


def int8_path(checkpoint: PathLike, size: int, sha256: Optional[str] = None) -> Path:
    """The int8 program of ``checkpoint`` at ``size``²: beside it when its folder is writable,
    else in :func:`cache_dir` under the first 16 hex digits of the checkpoint's ``sha256``."""
    checkpoint = Path(checkpoint)
    name = f"{checkpoint.stem}.int8-{int(size)}.pt2"
    if os.access(checkpoint.parent, os.W_OK):
        return checkpoint.parent / name
    from jcs.engine.provenance import sha256_file

    return cache_dir() / f"{(sha256 or sha256_file(checkpoint))[:16]}-{name}"


def read_report(program: Path) -> Optional[Dict[str, Any]]:
    """The ``jcs quantize`` report beside ``program`` (``.json``), or None when absent/unreadable."""
    try:
        return json.loads(program.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def verdict(report: Dict[str, Any]) -> Tuple[bool, str]:
    """(use the int8 copy?, why) from a ``jcs quantize`` report with its test-split check: the
    int8 Dice at most :data:`MAX_DICE_LOSS` below the original's and the int8 copy faster per
    slice. Raises KeyError for a report without the check."""
    check = report["check"]
    dice = {k: float(v["dice"]) for k, v in check["metrics"].items()}
    speed = {k: float(v) for k, v in check["eval_seconds_per_slice"].items()}
    loss = dice["original"] - dice["int8"]
    facts = (f"Dice on {check['n_images']} {report.get('dataset', DATASET)} test slices: int8 "
             f"{dice['int8']:.4f}, original {dice['original']:.4f}; seconds per slice: int8 "
             f"{speed['int8']:.3f}, original {speed['original']:.3f}")
    if loss > MAX_DICE_LOSS:
        return False, f"int8 copy not used: it loses {loss:.4f} Dice (> {MAX_DICE_LOSS}). {facts}"
    if speed["int8"] >= speed["original"]:
        return False, f"int8 copy not used: it is not faster on this CPU. {facts}"
    return True, f"int8 copy used: {speed['original'] / speed['int8']:.2f}x faster, Dice change {-loss:+.4f}. {facts}"


def _usable_cache(program: Path, sha256: str) -> Optional[Dict[str, Any]]:
    """The report of a cached copy made from these weights (``sha256``), checked, and
    quantised for this CPU (7-bit activations where it lacks VNNI); else None."""
    from jcs.quantization import vnni_available

    report = read_report(program)
    if (program.is_file() and report and report.get("checkpoint_sha256") == sha256
            and isinstance(report.get("check"), dict)
            and (report.get("reduce_range") or vnni_available())):
        return report
    return None


def choose_segmenter(checkpoint: PathLike, size: int, policy: str = "auto", *,
                     device: torch.device = torch.device("cpu"), data_root: Optional[PathLike] = None,
                     check_images: Optional[int] = None, quiet: bool = True
                     ) -> Tuple[Optional[Path], Dict[str, Any]]:
    """Which segmenter to run for the ``.pt`` ``checkpoint`` at ``size``²: ``(int8 program,
    info)`` or ``(None, info)`` for the float model. ``info``: ``policy``, ``int8`` (bool),
    ``reason`` (a sentence), ``program``, ``report`` (its path) and ``check`` (the Dice and
    seconds per slice of both, from the report), ``made`` (True when made by this call).

    ``policy``: "float" (never int8), "auto" (the int8 copy when :func:`verdict` accepts it;
    made and checked on first use when the MedSeg data are found), "int8" (the int8 copy
    whatever its check says; ValueError where none can be made). ``check_images``: test slices
    of the check when a copy is made (default: the whole split). Only on the CPU, with torchao."""
    from jcs.quantization import int8_available

    if policy not in POLICIES:
        raise ValueError(f"segmenter_precision must be one of {', '.join(POLICIES)}, got {policy!r}")
    info: Dict[str, Any] = {"policy": policy, "int8": False, "program": None, "report": None,
                            "check": None, "made": False}

    def refuse(reason: str) -> Tuple[None, Dict[str, Any]]:
        if policy == "int8":
            raise ValueError(f"--segmenter-precision int8: {reason}")
        return None, {**info, "reason": reason}

    if policy == "float":
        return None, {**info, "reason": "float segmenter asked for (segmenter_precision='float')"}
    if device.type != "cpu":
        return refuse(f"int8 segmenters run on the CPU only, the device is {device}")
    if not int8_available():
        return refuse("int8 needs torchao and PyTorch's oneDNN backend (`pip install torchao`)")
    from jcs.engine.provenance import sha256_file

    sha256 = sha256_file(Path(checkpoint))
    program = int8_path(checkpoint, size, sha256)
    report = _usable_cache(program, sha256)
    if report is None:
        from jcs.data.registry import dataset_path

        from jcs.data.registry import data_root as default_root

        try:
            dataset_path(DATASET, data_root)
        except Exception:  # DatasetNotFoundError, EmptyFolderError
            info["data_missing"] = True
            return refuse(f"no int8 copy of {checkpoint} yet, and making one needs the {DATASET} "
                          f"data to calibrate it and check its Dice, not found under "
                          f"{data_root or default_root()}. Set JCS_DATA_DIR (`jcs data fetch "
                          f"{DATASET}`), or run `jcs quantize {checkpoint} --out {program}` where "
                          "the data are")
        from jcs.engine.quantize import quantize_checkpoint

        if not quiet:
            print(f"making the int8 copy of {checkpoint} at {size}² (once per checkpoint: "
                  f"calibration, then the {DATASET} test split in int8 and in float) -> {program}",
                  file=sys.stderr)
        program.parent.mkdir(parents=True, exist_ok=True)
        report = quantize_checkpoint(checkpoint, program, dataset=DATASET, size=size,
                                     max_images=check_images, data_root=data_root, quiet=quiet)
        info["made"] = True
    use, reason = verdict(report)
    check = report["check"]
    info.update(program=str(program), report=str(program.with_suffix(".json")), check={
        "n_images": check["n_images"], "dataset": report.get("dataset", DATASET),
        "dice": {k: v["dice"] for k, v in check["metrics"].items()},
        "seconds_per_slice": check["eval_seconds_per_slice"],
        "original_precision": check.get("original_precision")})
    if policy == "int8" and not use:
        reason = f"int8 copy used as asked (segmenter_precision='int8'), although: {reason}"
        use = True
    info.update(int8=use, reason=reason)
    return (program if use else None), info
