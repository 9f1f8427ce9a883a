"""How the diagnosis pipeline scales with CPU cores (``jcs bench --scaling``; the ``"scaling"``
block of a ``results/bench/<name>.json`` file).

For each torch thread count (1, 2, 4, ... up to ``os.cpu_count()``, always with the maximum;
:func:`thread_counts`) the two model stages of :class:`jcs.diagnosis.DiagnosisPipeline` are timed
with :func:`jcs.bench.time_call`: **classification** (:meth:`~jcs.diagnosis.DiagnosisPipeline.classify`
of synthetic uint8 512² slices at 224, batch 16) and **segmentation**
(:meth:`~jcs.diagnosis.DiagnosisPipeline.segment` of 512² slices with ``jcs-seg`` at 512, or an
int8 program). The patient time of each thread count is **projected** from the two rates
(``n_slices / cls rate + n_segmented / seg rate``: model compute only, no reading, lung mask,
Grad-CAM or writing) or, on request, **measured** with :func:`jcs.bench.patient_run`. Random
weights: timing only.

The **compute limit** is the patient's model FLOPs (:func:`jcs.bench.count_flops`; FLOPs = 2 ×
multiply-accumulates) divided by the CPU's fp32 peak: cores × FMA units × fp32 lanes × 2 flops
× clock (:func:`cpu_peak`), i.e. the time no implementation can beat on that CPU in fp32.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from jcs.bench import PATIENT_POSITIVE_FRACTION, count_flops, patient_run, time_call

# fp32 lanes of one vector register per torch CPU capability (torch.backends.cpu.get_cpu_capability)
FP32_LANES = {"AVX2": 8, "AVX512": 16}
FMA_UNITS_PER_CORE = 2  # two FMA pipes per core on every recent x86 server core (assumption)
FLOPS_PER_FMA = 2  # a multiply and an add

FULL = {"classifier": "jcs-classifier", "cls_size": 224, "batch_size": 16, "cls_slices": 32,
        "segmenter": "jcs-seg", "seg_size": 512, "seg_slices": 4, "slice_size": 512,
        "patient_slices": 300}
QUICK = {"classifier": "jcs-classifier-res2net50", "cls_size": 64, "batch_size": 2, "cls_slices": 2,
         "segmenter": "jcs-seg", "seg_size": 64, "seg_slices": 1, "slice_size": 64,
         "patient_slices": 8}


def thread_counts(maximum: Optional[int] = None) -> List[int]:
    """1, 2, 4, ... below ``maximum`` (default ``os.cpu_count()``), then ``maximum`` itself:
    ``thread_counts(6) == [1, 2, 4, 6]``. Raises ValueError for a maximum below 1."""
    maximum = int(os.cpu_count() or 1) if maximum is None else int(maximum)
    if maximum < 1:
        raise ValueError(f"the thread count must be at least 1, not {maximum}")
    counts, t = [], 1
    while t < maximum:
        counts.append(t)
        t *= 2
    return counts + [maximum]


def projected_patient_seconds(n_slices: int, n_segmented: int, cls_slices_per_s: float,
                              seg_slices_per_s: float) -> float:
    """Model compute of one patient (s): ``n_slices / cls_slices_per_s + n_segmented /
    seg_slices_per_s``. Rates in slices per second (> 0)."""
    return n_slices / cls_slices_per_s + n_segmented / seg_slices_per_s


# ------------------------------------------------------------------------------------------------
# Compute limit


def cpu_clock_mhz() -> Dict[str, Any]:
    """``{"mhz": float or None, "source": str}``: the highest "cpu MHz" of ``/proc/cpuinfo``
    (on a VM the nominal clock; boost clocks are not seen), else ``psutil.cpu_freq()`` (its max,
    else current), else None."""
    try:
        with open("/proc/cpuinfo") as handle:
            values = [float(line.split(":", 1)[1]) for line in handle if line.startswith("cpu MHz")]
        if values:
            return {"mhz": max(values), "source": "/proc/cpuinfo 'cpu MHz' (highest over cores)"}
    except (OSError, ValueError):
        pass
    try:
        import psutil

        freq = psutil.cpu_freq()
        if freq and (freq.max or freq.current):
            return {"mhz": float(freq.max or freq.current),
                    "source": "psutil.cpu_freq() " + ("max" if freq.max else "current")}
    except Exception:  # psutil missing, or no frequency on this platform
        pass
    return {"mhz": None, "source": "unknown (no /proc/cpuinfo 'cpu MHz', no psutil.cpu_freq)"}


def physical_cores() -> Dict[str, Any]:
    """``{"cores": int, "source": str}``: ``psutil.cpu_count(logical=False)`` where psutil is
    installed (SMT siblings share one core's FMA units), else ``os.cpu_count()``."""
    try:
        import psutil

        cores = psutil.cpu_count(logical=False)
        if cores:
            return {"cores": int(cores), "source": "psutil.cpu_count(logical=False)"}
    except ImportError:
        pass
    return {"cores": int(os.cpu_count() or 1), "source": "os.cpu_count() (logical CPUs)"}


def _cpu_flags() -> List[str]:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return line.split(":", 1)[1].split()
    except OSError:
        pass
    return []


def cpu_peak(capability: Optional[str] = None, cores: Optional[int] = None,
             clock_mhz: Optional[float] = None) -> Dict[str, Any]:
    """The fp32 peak of this CPU (FLOP/s, ``"peak_flops_per_s"``) with every assumption:
    ``cores × FMA_UNITS_PER_CORE × lanes × FLOPS_PER_FMA × clock``, lanes 8 for "AVX2" and 16 for
    "AVX512" (``capability``, default ``torch.backends.cpu.get_cpu_capability()``). Unset
    ``cores`` / ``clock_mhz`` are read from the machine (:func:`physical_cores`,
    :func:`cpu_clock_mhz`). ``peak_flops_per_s`` is None when the ISA or the clock is unknown.
    AMX bf16 tiles (``amx_bf16``) are noted, not counted: the limit is for fp32."""
    capability = capability or torch.backends.cpu.get_cpu_capability()
    core_info = {"cores": int(cores), "source": "given"} if cores else physical_cores()
    clock = {"mhz": float(clock_mhz), "source": "given"} if clock_mhz else cpu_clock_mhz()
    lanes = FP32_LANES.get(capability)
    per_cycle = FMA_UNITS_PER_CORE * lanes * FLOPS_PER_FMA if lanes else None
    peak = (core_info["cores"] * per_cycle * clock["mhz"] * 1e6
            if per_cycle and clock["mhz"] else None)
    notes = [f"{FMA_UNITS_PER_CORE} FMA units per core assumed (some cores have one, or run "
             "512-bit FMAs as two 256-bit halves: the true peak can be lower, the limit higher)"]
    amx = "amx_bf16" in _cpu_flags()
    if amx:
        notes.append("AMX bf16 tiles present: bf16 matrix products can run far above this fp32 peak")
    if not lanes:
        notes.append(f"ISA {capability!r}: fp32 lanes unknown, no peak")
    return {"isa": capability, "fp32_lanes": lanes, "fma_units_per_core": FMA_UNITS_PER_CORE,
            "flops_per_fma": FLOPS_PER_FMA, "flops_per_cycle_per_core": per_cycle,
            "cores": core_info["cores"], "cores_source": core_info["source"],
            "clock_mhz": clock["mhz"], "clock_source": clock["source"],
            "peak_flops_per_s": peak, "amx_bf16": amx, "notes": notes}


def compute_limit(cls_flops_per_slice: float, seg_flops_per_slice: float, n_slices: int,
                  n_segmented: int, peak: Dict[str, Any]) -> Dict[str, Any]:
    """The shortest patient time the CPU's fp32 peak allows (``"seconds"``, None without a peak):
    ``(cls_flops_per_slice × n_slices + seg_flops_per_slice × n_segmented) /
    peak["peak_flops_per_s"]``; FLOPs per slice of one forward pass (2 × MACs)."""
    flops = cls_flops_per_slice * n_slices + seg_flops_per_slice * n_segmented
    rate = peak.get("peak_flops_per_s")
    return {"seconds": flops / rate if rate else None, "flops": flops,
            "classifier_flops_per_slice": cls_flops_per_slice,
            "segmenter_flops_per_slice": seg_flops_per_slice,
            "n_slices": n_slices, "n_segmented": n_segmented, "peak": peak}


# ------------------------------------------------------------------------------------------------
# Measurement


def _speedup(rows: List[Dict[str, Any]], key: str) -> None:
    """``speedup_<key>`` of every row against the 1-thread row (rates: rate / rate at 1 thread;
    ``patient_seconds``: time at 1 thread / time); None without a 1-thread row."""
    base = next((r for r in rows if r["threads"] == 1), None)
    name = {"cls_slices_per_s": "speedup_cls", "seg_slices_per_s": "speedup_seg",
            "patient_seconds": "speedup_patient"}[key]
    for row in rows:
        if base is None or not row.get(key) or not base.get(key):
            row[name] = None
        elif key == "patient_seconds":
            row[name] = base[key] / row[key]
        else:
            row[name] = row[key] / base[key]


def measure_scaling(threads: Optional[Sequence[int]] = None, *, quick: bool = False,
                    patient: bool = False, segmenter: Optional[os.PathLike] = None,
                    repeats: Optional[int] = None, precision: Optional[str] = None,
                    streams: Optional[int] = None,
                    log: Callable[[str], None] = print) -> Dict[str, Any]:
    """The scaling table of this CPU: one row per thread count of ``threads`` (default
    :func:`thread_counts`), ``torch.set_num_threads`` set for each and restored afterwards.

    Each row: ``threads``, ``cls_slices_per_s``, ``seg_slices_per_s``, ``patient_seconds`` with
    ``patient_seconds_kind`` ("measured" with ``patient``, else "projected"; the projection is
    kept in ``patient_seconds_projected`` either way), ``speedup_cls`` / ``speedup_seg`` /
    ``speedup_patient`` against 1 thread, ``load_1min`` (at the end of the row) and the
    :func:`jcs.bench.time_call` records. The block also holds the sizes, the ``compute_limit``
    (:func:`compute_limit`) and ``threads_before``. ``quick``: tiny models and sizes (tests).
    ``segmenter``: an int8 program of ``jcs quantize`` (default a random-weight ``jcs-seg``).
    ``streams``: batches in flight (:mod:`jcs.streams`; None = the pipeline's default); each row
    records the ``cls_streams`` and ``seg_streams`` that ran (capped by the batches measured and
    the row's threads: :meth:`~jcs.diagnosis.DiagnosisPipeline.streams_run`).
    Raises ValueError for a thread count below 1 or a bad ``streams``."""
    from jcs.data import synthetic_ct
    from jcs.diagnosis import DiagnosisPipeline
    from jcs.engine.provenance import device_info
    from jcs.inference import bf16_supported

    device = torch.device("cpu")
    sizes = QUICK if quick else FULL
    threads = list(threads or thread_counts())
    if any(int(t) < 1 for t in threads):
        raise ValueError(f"thread counts must be at least 1: {threads}")
    repeats = repeats or (1 if quick else 2)
    precision = precision or ("bf16-true" if bf16_supported(device) else "fp32")
    pipeline = DiagnosisPipeline(classifier_model=sizes["classifier"], size=sizes["cls_size"],
                                 seg_size=None if segmenter else sizes["seg_size"], device="cpu",
                                 precision=precision, batch_size=sizes["batch_size"],
                                 segmenter=segmenter, streams=streams)
    seg_model = pipeline.segmenter_info.get("name") or sizes["segmenter"]
    images, _ = synthetic_ct(max(sizes["cls_slices"], sizes["seg_slices"]), sizes["slice_size"], 0)
    gray = torch.from_numpy(images.astype(np.uint8))
    cls_gray, seg_indices = gray[:sizes["cls_slices"]], list(range(sizes["seg_slices"]))
    n_slices = sizes["patient_slices"]
    n_segmented = int(round(PATIENT_POSITIVE_FRACTION * n_slices))
    patient_kwargs = ({"classifier_model": sizes["classifier"], "cls_size": sizes["cls_size"],
                       "seg_size": sizes["seg_size"]} if quick else {})
    if segmenter:
        patient_kwargs.update(segmenter=segmenter, seg_size=pipeline.seg_size)

    before = torch.get_num_threads()
    rows: List[Dict[str, Any]] = []
    try:
        for t in threads:
            torch.set_num_threads(int(t))
            log(f"[bench] scaling: {t} thread(s)")
            cls = time_call(lambda: pipeline.classify(cls_gray), device, repeats)
            seg = time_call(lambda: pipeline.segment(gray, seg_indices), device, repeats)
            row: Dict[str, Any] = {
                "threads": int(t), "torch_threads": torch.get_num_threads(),
                "cls_slices_per_s": len(cls_gray) / cls["seconds"],
                "seg_slices_per_s": len(seg_indices) / seg["seconds"],
                # the streams that ran: capped by the batches of the measurement and the threads
                "cls_streams": pipeline.streams_run("classifier", len(cls_gray)),
                "seg_streams": pipeline.streams_run("segmenter", len(seg_indices)),
                "cls_timing": cls, "seg_timing": seg}
            row["patient_seconds_projected"] = projected_patient_seconds(
                n_slices, n_segmented, row["cls_slices_per_s"], row["seg_slices_per_s"])
            row["patient_seconds_measured"] = None
            if patient:
                run = patient_run(n_slices, sizes["slice_size"], device, precision, streams=streams,
                                  **patient_kwargs)
                row["patient_seconds_measured"] = run["seconds"]
                row["patient_run"] = run
            row["patient_seconds"] = row["patient_seconds_measured"] or row["patient_seconds_projected"]
            row["patient_seconds_kind"] = "measured" if patient else "projected"
            row["load_1min"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
            rows.append(row)
    finally:
        torch.set_num_threads(before)
    for key in ("cls_slices_per_s", "seg_slices_per_s", "patient_seconds"):
        _speedup(rows, key)
    limit = compute_limit(count_flops(sizes["classifier"], sizes["cls_size"]),
                          count_flops(seg_model, pipeline.seg_size), n_slices, n_segmented, cpu_peak())
    if pipeline.segmenter_info.get("int8"):
        limit["peak"]["notes"].append("the segmenter runs in int8: its peak differs from this "
                                      "fp32 peak")
    return {
        "device": device_info(device), "precision": pipeline.precision,
        "threads_before": before, "threads_available": os.cpu_count(), "repeats": repeats,
        "streams_requested": streams,
        "quick": quick,
        "classifier": {"model": sizes["classifier"], "input_size": sizes["cls_size"],
                       "batch_size": sizes["batch_size"], "slices": len(cls_gray),
                       "slice_size": sizes["slice_size"]},
        "segmenter": {"model": seg_model, "input_size": pipeline.seg_size,
                      "batch_size": pipeline.seg_batch_size, "slices": len(seg_indices),
                      "slice_size": sizes["slice_size"], "precision": pipeline.seg_precision,
                      "int8": bool(pipeline.segmenter_info.get("int8")),
                      "checkpoint": str(segmenter) if segmenter else None},
        "patient": {"n_slices": n_slices, "n_segmented": n_segmented,
                    "slice_size": sizes["slice_size"],
                    "kind": "measured" if patient else "projected",
                    "projection": "n_slices / cls_slices_per_s + n_segmented / seg_slices_per_s "
                                  "(model compute only: no reading, Grad-CAM, lung mask or writing)",
                    "measured_with": "jcs.bench.patient_run (warm; top-k slices also segmented)"
                                     if patient else None},
        "rows": rows, "compute_limit": limit,
    }


def format_scaling(scaling: Dict[str, Any]) -> str:
    """The printed scaling table: one line per thread count, then the compute limit."""
    lines = [f"{'threads':>7} {'streams':>7} {'cls sl/s':>9} {'seg sl/s':>9} {'patient s':>10} {'kind':>9} "
             f"{'x cls':>6} {'x seg':>6} {'load':>5}"]
    for row in scaling["rows"]:
        lines.append(f"{row['threads']:>7} {row.get('seg_streams', 1):>7} "
                     f"{row['cls_slices_per_s']:9.2f} {row['seg_slices_per_s']:9.3f} "
                     f"{row['patient_seconds']:10.1f} {row['patient_seconds_kind']:>9} "
                     + " ".join(f"{row[k]:6.2f}" if row[k] is not None else f"{'—':>6}"
                                for k in ("speedup_cls", "speedup_seg"))
                     + f" {row['load_1min'] if row['load_1min'] is not None else '—':>5}")
    limit, patient = scaling["compute_limit"], scaling["patient"]
    peak = limit["peak"]
    if limit["seconds"] is not None:
        lines.append(f"compute limit of the {patient['n_slices']}-slice patient ({patient['n_segmented']} "
                     f"segmented): {limit['flops'] / 1e12:.3g} TFLOP / {peak['peak_flops_per_s'] / 1e9:.0f} "
                     f"GFLOP/s ({peak['cores']} cores × {peak['flops_per_cycle_per_core']} flop/cycle × "
                     f"{peak['clock_mhz']:.0f} MHz, {peak['isa']}) = {limit['seconds']:.1f} s")
    else:
        lines.append(f"compute limit: unknown (ISA {peak['isa']}, clock {peak['clock_mhz']})")
    return "\n".join(lines)
