"""Speed and memory benchmark of every model and of the patient-level pipeline, on the machine it
runs on (``jcs bench``; results in ``results/bench/<host>.json`` plus a printed table).

Per model and input size: one **training step** (forward, loss, backward, optimiser step, with the
``cpu`` profile's model options and optimiser) in fp32 eager and in the engine's optimised path
(bf16 autocast + channels-last, where bf16 is native); **inference** per slice in fp32 eager
(``torch.inference_mode``, nothing else) and in the optimised paths of :mod:`jcs.inference` (BN
folded into the convolutions + channels-last + inference mode, with bf16 autocast and with bf16
weights; without native bf16, the fp32 optimised path). Sizes default to the ``cpu`` and ``paper`` profile sizes of the model's task.

**Patient**: the diagnosis pipeline (:class:`jcs.diagnosis.DiagnosisPipeline`: classify every
slice at 224 with the 101-layer classifier, segment the positive slices at 512 with ``jcs-seg``,
Grad-CAM of the top 6, the lung mask in a background thread, report writing) on a synthetic 300-slice 512×512 volume (timing only;
random weights). Half of the slices are declared positive, as in the two COVID-19 patients of
COVID-CT-MD (80/148 and 68/133 infected slices). The paper reports about 22 s per ~300-slice
patient on an RTX 2080Ti (PAPER.md). The model compute of that patient in fp32 eager is projected
from the per-slice numbers (running it would take half an hour on 2 cores), beside the same
projection for the optimised path. On the CPU the patient runs a second time with the segmenter
at the ``cpu`` profile's training size (256²): what ``jcs diagnose`` costs with the checkpoints
that profile makes (it segments at the checkpoint's training size), and a third time with an int8
``jcs-seg`` at 512² (:mod:`jcs.quantization`, as ``jcs quantize`` makes; here from random weights
calibrated on synthetic slices, which costs the same time), compiled before the timed runs.

On every device the patient also runs with both models ``torch.compile``d first (``jcs diagnose
--compile``; the compile time is recorded apart). The patient is timed warm, after a warm-up run
(see :func:`patient_run`). Times are medians
over ``repeats`` timed runs after one warm-up (default: 2 below 384², 1 at the
paper's 512², 1 in quick mode), each with the 1-minute load average at its end (the machine may
be shared: a load above the core count inflates every time). Peak memory: CUDA max allocated, or on
the CPU the peak resident set size sampled every 5 ms during the measurement.

**Scaling** (:mod:`jcs.bench_scaling`; ``jcs bench --scaling`` alone): classification and
segmentation throughput and the patient time per number of CPU threads, beside the CPU's fp32
compute limit.
"""
from __future__ import annotations

import copy
import json
import os
import re
import resource
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

from jcs.inference import (bf16_supported, inference_context, optimize_for_inference, prepare_input,
                           resolve_device, synchronize)
from jcs.models import create_model, list_models
from jcs.quantization import int8_available

PAPER_PATIENT_SECONDS = 22.0  # PAPER.md: ~22 s per ~300-slice patient, RTX 2080Ti
PATIENT_SLICES = 300
PATIENT_POSITIVE_FRACTION = 0.5
TARGET_SEG_SPEEDUP = 3.0  # jcs-seg at 512: optimised vs fp32 eager
TARGET_PATIENT_SECONDS = 120.0  # the 2-core CPU
TARGET_PATIENT_SECONDS_GPU = 2.0  # one H100 (issue 4); any CUDA device is held to it
QUICK = {"models": ("jcs-classifier-res2net50", "jcs-seg"), "size": 64, "patient_slices": 8,
         "patient_size": 64}


def task_of(model_name: str) -> str:
    from jcs.engine.datasets import task_of as engine_task_of

    return engine_task_of(model_name)


def default_sizes(model_name: str) -> List[int]:
    """The ``cpu`` and ``paper`` profile input sizes of the model's task (e.g. 192 and 512)."""
    from jcs.engine import get_profile

    part = "cls" if task_of(model_name) == "classification" else "seg"
    return sorted({getattr(get_profile(p), part).size for p in ("cpu", "paper")})


def build(model_name: str, device: torch.device) -> nn.Module:
    """The model with the ``cpu`` profile's options (trainable BN from random init)."""
    from jcs.engine import get_profile
    from jcs.engine.train import model_options

    return create_model(model_name, **model_options(model_name, get_profile("cpu"))).to(device)


def parameter_count(model_name: str) -> int:
    """Number of parameters, counted on the meta device (nothing allocated or initialised)."""
    with torch.device("meta"):
        model = create_model(model_name)
    return sum(p.numel() for p in model.parameters())


def count_flops(model_name: str, size: int) -> float:
    """Floating-point operations (multiply and add counted separately) of one eval-mode forward
    pass on a 1×3×size×size input, counted on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = create_model(model_name).eval()
        with FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, 3, size, size))
    return float(counter.get_total_flops())


# ------------------------------------------------------------------------------------------------
# Measurement tools


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):  # not Linux: the process peak is the best we have
        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


class PeakMemory:
    """Context manager measuring peak memory: CUDA max allocated on a CUDA device, else the peak
    resident set size of the process sampled every ``interval`` seconds. ``peak`` is in bytes."""

    def __init__(self, device: torch.device, interval: float = 0.005):
        self.device, self.interval = device, interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.peak = _rss_bytes()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.peak = int(torch.cuda.max_memory_allocated(self.device))
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, _rss_bytes())

    @property
    def kind(self) -> str:
        return "cuda_max_allocated" if self.device.type == "cuda" else "process_peak_rss"


def time_call(fn: Callable[[], Any], device: torch.device, repeats: int, warmup: int = 1) -> Dict[str, Any]:
    """Median and all wall times (s) of ``fn()`` over ``repeats`` runs after ``warmup`` runs,
    with the peak memory during the timed runs."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    with PeakMemory(device) as memory:
        for _ in range(max(repeats, 1)):
            start = time.perf_counter()
            fn()
            synchronize(device)
            times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times), "runs": [round(t, 5) for t in times],
            "peak_memory_bytes": memory.peak, "peak_memory_kind": memory.kind,
            "load_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None}


# ------------------------------------------------------------------------------------------------
# Per-model measurements


def _criterion_inputs(model_name: str, batch: int, size: int, device: torch.device):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, size, size, generator=generator)
    if task_of(model_name) == "classification":
        target = torch.randint(0, 2, (batch,), generator=generator)
    else:
        target = (torch.rand(batch, 1, size, size, generator=generator) > 0.8).float()
    return x.to(device), target.to(device)


def train_step(model_name: str, size: int, batch: int, device: torch.device, optimised: bool,
               repeats: int) -> Dict[str, Any]:
    """Time one training step (the engine's optimiser for the task). ``optimised``: what the
    engine's training does, bf16 autocast where bf16 is native, channels-last where
    :func:`jcs.engine.runtime.use_channels_last` says so (not for fp32 on a CPU)."""
    from jcs.engine import get_profile
    from jcs.engine.runtime import to_float, use_channels_last
    from jcs.engine.schedule import build_optimizer

    model = build(model_name, device).train()
    recipe = get_profile("cpu").recipe(task_of(model_name))
    x, target = _criterion_inputs(model_name, batch, size, device)
    use_bf16 = optimised and bf16_supported(device)
    channels_last = optimised and use_channels_last(True, device, "bf16" if use_bf16 else "fp32")
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    criterion = model.criterion()
    optimizer = build_optimizer(model, recipe)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
            outputs = model(x)
        loss = criterion(to_float(outputs), target)
        loss.backward()
        optimizer.step()

    result = time_call(step, device, repeats)
    result.update({"batch": batch, "images_per_s": batch / result["seconds"],
                   "precision": "bf16" if use_bf16 else "fp32",
                   "channels_last": channels_last})
    return result


def _output_tensor(outputs: Any) -> torch.Tensor:
    return outputs if isinstance(outputs, torch.Tensor) else outputs[0]


def inference_runs(model_name: str, size: int, batch: int, device: torch.device, repeats: int,
                   precisions: Sequence[str]) -> Dict[str, Any]:
    """Per-slice inference time of ``fp32-eager`` (eval + inference_mode only) and of the
    optimised path (:func:`jcs.inference.optimize_for_inference`) with each of ``precisions``
    ("fp32", "bf16" = autocast, "bf16-true" = bf16 weights); also the max |difference| of each
    optimised output from fp32."""
    base = build(model_name, device).eval()
    x, _ = _criterion_inputs(model_name, batch, size, device)
    results: Dict[str, Any] = {}
    with torch.inference_mode():
        reference = _output_tensor(base(x)).float()
        run = time_call(lambda: base(x), device, repeats)
    results["fp32-eager"] = {**run, "per_slice_s": run["seconds"] / batch}
    for precision in precisions:
        model = optimize_for_inference(copy.deepcopy(base), device, precision=precision)
        xin = prepare_input(x, device, precision)
        with inference_context(device, precision):
            out = _output_tensor(model(xin)).float()
            run = time_call(lambda m=model: m(xin), device, repeats)
        results[f"optimised-{precision}"] = {
            **run, "per_slice_s": run["seconds"] / batch,
            "speedup_vs_fp32_eager": results["fp32-eager"]["seconds"] / run["seconds"],
            "max_abs_diff_vs_fp32": float((out - reference).abs().max())}
        del model
    results["batch"] = batch
    return results


# ------------------------------------------------------------------------------------------------
# Patient


def synthetic_volume(n_slices: int, size: int, seed: int = 0):
    """A :class:`jcs.data.Volume` of ``n_slices`` synthetic 8-bit slices (:func:`jcs.data.synthetic_ct`)
    with 1 × 0.7 × 0.7 mm spacing."""
    from jcs.data import Volume, synthetic_ct

    images, _ = synthetic_ct(n_slices, size, seed)
    return Volume(images.astype(np.float32), (1.0, 0.7, 0.7), "uint8", f"synthetic_ct({n_slices}, {size})",
                  [f"synthetic_{i:04d}" for i in range(n_slices)])


def patient_run(n_slices: int, size: int, device: torch.device, precision: str, *,
                classifier_model: str = "jcs-classifier", cls_size: int = 224, seg_size: int = 512,
                positive_fraction: float = PATIENT_POSITIVE_FRACTION,
                batch_size: int = 16, seg_batch_size: Optional[int] = None,
                segmenter: Optional[os.PathLike] = None, compile: bool = False,
                streams: Optional[int] = None) -> Dict[str, Any]:
    """End-to-end :class:`~jcs.diagnosis.DiagnosisPipeline` run on a synthetic volume with the
    first ``positive_fraction`` of the slices (evenly spread) declared positive, timed warm (a
    service that diagnoses one patient after another). The warm-up run before it is the same
    volume on CUDA (its time, with CUDA start-up and cuDNN autotuning, is kept as
    ``cold_seconds``) and its first ``2 × batch_size`` slices on the CPU. ``segmenter``: a
    checkpoint or int8 program (default: a random-weight ``jcs-seg``). ``compile``: both models
    ``torch.compile``d when the pipeline is made (``compile_s``, not part of the patient's time).
    ``streams``: batches in flight on the CPU (:mod:`jcs.streams`; None = the pipeline's default)."""
    from jcs.data import Volume
    from jcs.diagnosis import DiagnosisPipeline

    volume = synthetic_volume(n_slices, size)
    pipeline = DiagnosisPipeline(classifier_model=classifier_model, size=cls_size, seg_size=seg_size,
                                 device=str(device), precision=precision, batch_size=batch_size,
                                 seg_batch_size=seg_batch_size, segmenter=segmenter, compile=compile,
                                 streams=streams)
    positives = np.linspace(0, n_slices - 1, int(round(positive_fraction * n_slices))).round().astype(int)
    positives = sorted(set(positives.tolist()))
    warm_n = n_slices if device.type == "cuda" else min(n_slices, 2 * batch_size)
    warm_volume = volume if warm_n == n_slices else Volume(
        volume.array[:warm_n], volume.spacing, volume.unit, volume.source, volume.slice_ids[:warm_n])
    with tempfile.TemporaryDirectory() as out:
        warm = pipeline.run(warm_volume, out, positive_override=[i for i in positives if i < warm_n])
    with tempfile.TemporaryDirectory() as out, PeakMemory(device) as memory:
        summary = pipeline.run(volume, out, positive_override=positives)
    return {"n_slices": n_slices, "slice_size": size, "classifier": classifier_model,
            "classifier_size": cls_size, "segmenter": "jcs-seg", "segmenter_size": seg_size,
            "n_segmented": len(set(positives) | {t["index"] for t in summary["top_slices"]}),
            "precision": pipeline.precision, "segmenter_precision": summary["segmenter_precision"],
            "segmenter_compile_s": pipeline.segmenter_info.get("compile_s"), "compiled": compile,
            "classifier_compile_s": pipeline.classifier_info.get("compile_s"), "batch_size": batch_size,
            "seg_batch_size": summary["seg_batch_size"], "streams": summary["streams"],
            "kept_freed_memory": summary["kept_freed_memory"], "timings_s": summary["timings_s"],
            "background_s": summary["background_s"],
            "seconds": summary["timings_s"]["total"], "warmup_slices": warm_n,
            "cold_seconds": warm["timings_s"]["total"] if warm_n == n_slices else None,
            "threads": torch.get_num_threads() if device.type == "cpu" else None,
            "peak_memory_bytes": memory.peak, "peak_memory_kind": memory.kind}


# ------------------------------------------------------------------------------------------------
# Whole benchmark


def host_name() -> str:
    """Host name reduced to ``[A-Za-z0-9._-]`` (the results file name)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", socket.gethostname()) or "host"


def default_file_name(device: torch.device, quick: bool = False, suffix: str = "") -> str:
    """``<host>.json`` on the CPU, ``<host>-<gpu name>.json`` on CUDA, then ``suffix`` (e.g.
    ``-scaling``), ``-quick`` in quick mode."""
    name = host_name()
    if device.type == "cuda":
        name += "-" + re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name(device).lower()).strip("-")
    return f"{name}{suffix}{'-quick' if quick else ''}.json"


def provenance(device: torch.device) -> Dict[str, Any]:
    """Code version, package versions, device names, threads, load and date of this run."""
    from jcs.engine.provenance import code_state, device_info, now_iso, package_versions

    info = {"date": now_iso(), "host": socket.gethostname(), "git": code_state(),
            "versions": package_versions(), "device": device_info(device),
            "bf16_native": bf16_supported(device), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "command": " ".join(sys.argv)}
    if hasattr(os, "getloadavg"):
        info["load_average_1_5_15"] = [round(v, 2) for v in os.getloadavg()]
    return info


def benchmark(models: Optional[Sequence[str]] = None, sizes: Optional[Sequence[int]] = None, *,
              quick: bool = False, repeats: Optional[int] = None, device: Optional[str] = None,
              patient: bool = True, per_model: bool = True, out: Optional[os.PathLike] = None,
              scaling: Optional[bool] = None, scaling_patient: bool = False,
              threads_list: Optional[Sequence[int]] = None,
              scaling_segmenter: Optional[os.PathLike] = None, streams: Optional[int] = None,
              log: Callable[[str], None] = print) -> Dict[str, Any]:
    """Run the benchmark and write its JSON to ``out`` (default ``results/bench/<host>.json``,
    ``<host>-quick.json`` in quick mode, ``<host>-scaling.json`` for the scaling table alone).
    Returns the result dict (with ``path``).

    ``quick``: tests only — two small models at 64², one repeat, an 8-slice 64² patient.
    ``per_model=False``: the patient runs only (no per-model rows, no model-compute projection).
    ``scaling``: the CPU scaling table (:func:`jcs.bench_scaling.measure_scaling`, key
    ``"scaling"``) over ``threads_list`` (default 1, 2, 4, ... up to the CPU count), with the
    patient times measured when ``scaling_patient`` (else projected) and ``scaling_segmenter``
    (an int8 program) as the segmenter; default: in full (not quick) CPU runs with the models and
    the patient. With ``per_model=False, patient=False`` only the scaling table is measured, on
    the CPU (ValueError for a CUDA ``device``). ``streams``: batches in flight of every patient
    run and the scaling table (:mod:`jcs.streams`; None = the pipeline's default; compiled
    models run one)."""
    scaling_only = bool(scaling) and not per_model and not patient
    if scaling_only and device not in (None, "auto", "cpu"):
        raise ValueError(f"the scaling table alone measures CPU threads; drop --device {device}")
    dev = torch.device("cpu") if scaling_only else resolve_device(device)
    if streams is not None:  # before an hour of measurements, not after
        from jcs.streams import resolve_streams

        resolve_streams(streams, dev)
    if scaling is None:
        scaling = dev.type == "cpu" and not quick and per_model and patient
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels
    models = list(models or (QUICK["models"] if quick else list_models())) if per_model else []
    unknown = [m for m in models if m not in list_models()]
    if unknown:
        raise KeyError(f"unknown model(s) {', '.join(unknown)}; valid names: {', '.join(list_models())}")
    # with native bf16 the fp32 optimised path (folded BN + channels-last only) is left out:
    # it costs as much as fp32 eager and gains little (~1.0x in quick runs)
    precisions = ["bf16", "bf16-true"] if bf16_supported(dev) else ["fp32"]
    info = provenance(dev)
    result: Dict[str, Any] = {"provenance": info, "device": info["device"], "quick": quick,
                              "repeats": repeats or ("1" if quick else "2 below 384², 1 above"),
                              "precisions": precisions, "models": {},
                              "patient": None, "patients": [], "targets": {}}
    for name in models:
        task = task_of(name)
        entry: Dict[str, Any] = {"task": task, "parameters": parameter_count(name), "sizes": {}}
        for size in (sizes or ([QUICK["size"]] if quick else default_sizes(name))):
            log(f"[bench] {name} @ {size}²")
            train_batch = 2 if quick else (8 if task == "classification" else 1)
            infer_batch = 2 if quick else (8 if task == "classification" else 1)
            runs = repeats or (1 if quick or size > 384 else 2)
            record: Dict[str, Any] = {"repeats": runs}
            try:
                record["gflops_per_image"] = count_flops(name, size) / 1e9
                record["train_fp32"] = train_step(name, size, train_batch, dev, False, runs)
                record["train_optimised"] = train_step(name, size, train_batch, dev, True, runs)
                record["inference"] = inference_runs(name, size, infer_batch, dev, runs, precisions)
            except (ValueError, RuntimeError) as exc:  # e.g. PoolNet needs >= 113 px
                record["error"] = f"{type(exc).__name__}: {exc}"
                log(f"[bench]   skipped: {record['error']}")
            entry["sizes"][str(size)] = record
        result["models"][name] = entry
    if patient:
        n, size = ((QUICK["patient_slices"], QUICK["patient_size"]) if quick else (PATIENT_SLICES, 512))
        log(f"[bench] patient: {n} slices of {size}²")
        opt = "bf16-true" if bf16_supported(dev) else "fp32"
        kwargs = ({"classifier_model": "jcs-classifier-res2net50", "cls_size": size, "seg_size": size}
                  if quick else {})
        result["patient"] = patient_run(n, size, dev, opt, streams=streams, **kwargs)
        result["patient"]["paper_seconds_rtx2080ti"] = PAPER_PATIENT_SECONDS
        result["patient"]["model_compute_projection_s"] = model_compute_projection(result)
        # the list read by jcs.report.runtime_table (one entry per patient-level timing)
        run = result["patient"]
        what = f"classification of all slices + segmentation of {run['n_segmented']}"
        result["patients"] = [{"what": what + " (warm)", "slices": run["n_slices"],
                               "seconds": run["seconds"], "slice_size": run["slice_size"],
                               "precision": run["precision"], "streams": run["streams"]}]
        if run["cold_seconds"] is not None:
            result["patients"].append({**result["patients"][0], "what": what + " (first call)",
                                       "seconds": run["cold_seconds"]})
        if not quick:  # `jcs diagnose --compile`: both models compiled once, before the patients
            log(f"[bench] patient: {n} slices of {size}², models compiled (torch.compile)")
            compiled = patient_run(n, size, dev, opt, compile=True)
            result["patient_compiled"] = compiled
            result["patients"].append({**result["patients"][0], "seconds": compiled["seconds"],
                                       "precision": f"{opt}, compiled",
                                       "what": what + " (warm; models compiled by `jcs diagnose "
                                               "--compile`)"})
        if dev.type == "cpu" and not quick:  # what `jcs diagnose` costs with the cpu profile's models
            from jcs.engine import get_profile

            seg_size = get_profile("cpu").seg.size
            log(f"[bench] patient: {n} slices of {size}², segmenter at {seg_size}² (profile cpu)")
            small = patient_run(n, size, dev, opt, seg_size=seg_size, streams=streams)
            result["patient_cpu_profile"] = small
            result["patients"].append({**result["patients"][0], "seconds": small["seconds"],
                                       "what": what + f" (warm; segmenter at {seg_size}², as trained "
                                               "by the cpu profile)"})
        if dev.type == "cpu" and not quick and int8_available():
            log(f"[bench] patient: {n} slices of {size}², int8 segmenter at {size}²")
            with tempfile.TemporaryDirectory() as tmp:
                program = random_int8_segmenter(Path(tmp) / "jcs-seg-int8.pt2", size)
                int8 = patient_run(n, size, dev, opt, segmenter=program, streams=streams)
            result["patient_int8"] = int8
            result["patients"].append({**result["patients"][0], "seconds": int8["seconds"],
                                       "precision": f"{opt}, segmenter int8",
                                       "what": what + " (warm; int8 segmenter of `jcs quantize`)"})
    if scaling:
        from jcs.bench_scaling import measure_scaling

        log(f"[bench] scaling with CPU threads ({'measured' if scaling_patient else 'projected'} "
            "patient times)")
        result["scaling"] = measure_scaling(threads_list, quick=quick, patient=scaling_patient,
                                            segmenter=scaling_segmenter, repeats=repeats,
                                            streams=streams, log=log)
    result["targets"] = targets(result, quick)
    suffix = ("-scaling" if scaling_only else "") + (f"-streams{streams}" if (streams or 1) > 1 else "")
    path = Path(out) if out else Path("results") / "bench" / default_file_name(dev, quick, suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    result["path"] = str(path)
    return result


def random_int8_segmenter(path: Path, size: int, calibration_slices: int = 4) -> Path:
    """An int8 program (:func:`jcs.quantization.quantize_int8`) of a random-weight ``jcs-seg``
    calibrated on synthetic slices: for timings only (int8 kernels cost the same whatever the
    weights)."""
    from jcs.data import synthetic_ct
    from jcs.data.transforms import to_network_input_batch
    from jcs.quantization import quantize_int8, save_int8

    images, _ = synthetic_ct(calibration_slices, size, 1)
    inputs = to_network_input_batch(torch.from_numpy(images.astype(np.uint8)), size)
    program = quantize_int8(build("jcs-seg", torch.device("cpu")), (x[None] for x in inputs), size)
    return save_int8(program, path, {"model": "jcs-seg", "input_size": size,
                                     "checkpoint": None, "note": "random weights (benchmark)"})


def _per_slice(result: Dict[str, Any], name: str, size: int, mode: str) -> Optional[float]:
    record = result["models"].get(name, {}).get("sizes", {}).get(str(size), {})
    return record.get("inference", {}).get(mode, {}).get("per_slice_s")


def _best_optimised(result: Dict[str, Any], name: str, size: int) -> Optional[float]:
    times = [_per_slice(result, name, size, f"optimised-{p}") for p in result["precisions"]]
    times = [t for t in times if t is not None]
    return min(times) if times else None


def model_compute_projection(result: Dict[str, Any]) -> Optional[Dict[str, float]]:
    """Model compute alone of the patient run (classify every slice with ``jcs-classifier`` at
    224, segment the segmented slices with ``jcs-seg`` at 512), from the per-slice numbers, in fp32
    eager and in the fastest optimised path; no reading, preprocessing, lung mask or writing.
    None when those two models were not measured at those sizes."""
    patient = result.get("patient") or {}
    n_cls, n_seg = patient.get("n_slices"), patient.get("n_segmented")
    cls_eager = _per_slice(result, "jcs-classifier", 224, "fp32-eager")
    seg_eager = _per_slice(result, "jcs-seg", 512, "fp32-eager")
    cls_opt, seg_opt = _best_optimised(result, "jcs-classifier", 224), _best_optimised(result, "jcs-seg", 512)
    if None in (n_cls, n_seg, cls_eager, seg_eager, cls_opt, seg_opt):
        return None
    return {"fp32-eager": n_cls * cls_eager + n_seg * seg_eager,
            "optimised": n_cls * cls_opt + n_seg * seg_opt}


def targets(result: Dict[str, Any], quick: bool) -> Dict[str, Any]:
    """The targets: jcs-seg at 512 optimised ≥ 3× fp32 eager (CPU runs only); a 300-slice patient
    in under 2 min on the CPU, in under 2 s on a GPU."""
    size = QUICK["size"] if quick else 512
    eager, best = _per_slice(result, "jcs-seg", size, "fp32-eager"), _best_optimised(result, "jcs-seg", size)
    out: Dict[str, Any] = {}
    if eager and best and result["device"]["type"] == "cpu":  # a target for the 2-core CPU
        speedup = eager / best
        out["jcs_seg_speedup"] = {"size": size, "fp32_eager_s": eager, "optimised_s": best,
                                  "speedup": speedup, "target": TARGET_SEG_SPEEDUP,
                                  "met": speedup >= TARGET_SEG_SPEEDUP}
    limit = TARGET_PATIENT_SECONDS_GPU if result["device"]["type"] == "cuda" else TARGET_PATIENT_SECONDS
    for key, run_key in (("patient_time", "patient"), ("patient_time_compiled", "patient_compiled"),
                         ("patient_time_int8", "patient_int8")):
        if result.get(run_key):
            seconds = result[run_key]["seconds"]
            out[key] = {"n_slices": result[run_key]["n_slices"], "seconds": seconds,
                        "segmenter_precision": result[run_key].get("segmenter_precision"),
                        "compiled": bool(result[run_key].get("compiled")),
                        "target": limit, "met": seconds < limit}
    return out


def _opt_cell(run: Dict[str, Any]) -> str:
    text = f"{run['per_slice_s'] * 1000:.0f}ms {run['speedup_vs_fp32_eager']:.1f}x"
    return text.rjust(13)


def format_table(result: Dict[str, Any]) -> str:
    """The printed summary: one row per model and size, then the patient and the targets."""
    head = (f"{'model':26} {'size':>4} {'GFLOP':>7} {'train fp32':>11} {'train opt':>10} {'img/s opt':>9} "
            f"{'inf fp32':>9} " + " ".join(f"{'opt-' + p:>13}" for p in result["precisions"]) + f" {'peak MB':>8}")
    lines = [head, "-" * len(head)]
    for name, entry in result["models"].items():
        for size, rec in entry["sizes"].items():
            if "error" in rec:
                lines.append(f"{name:26} {size:>4}  {rec['error'][:80]}")
                continue
            inf = rec["inference"]
            opts = " ".join(_opt_cell(inf[f"optimised-{p}"]) for p in result["precisions"])
            peak = max(rec["train_fp32"]["peak_memory_bytes"], rec["train_optimised"]["peak_memory_bytes"])
            lines.append(
                f"{name:26} {size:>4} {rec['gflops_per_image']:7.1f} {rec['train_fp32']['seconds']:9.3f} s "
                f"{rec['train_optimised']['seconds']:8.3f} s {rec['train_optimised']['images_per_s']:9.2f} "
                f"{inf['fp32-eager']['per_slice_s'] * 1000:7.0f}ms {opts} {peak / 2**20:8.0f}")
    lines.append("(train: seconds per step at the batch in the JSON; inference: per slice, speed-up vs fp32 eager)")
    patient = result.get("patient")
    if patient:
        t, projection = patient["timings_s"], patient.get("model_compute_projection_s")
        lines.append(f"patient: {patient['n_slices']} slices of {patient['slice_size']}², "
                     f"{patient['n_segmented']} segmented, {patient['precision']}: {patient['seconds']:.1f} s "
                     f"({', '.join(f'{k} {v:.1f}' for k, v in t.items() if k != 'total')}); peak "
                     f"{patient['peak_memory_bytes'] / 2**20:.0f} MB; paper (RTX 2080Ti) ~"
                     f"{patient['paper_seconds_rtx2080ti']:.0f} s"
                     + (f"; model compute alone: fp32 eager {projection['fp32-eager']:.1f} s, optimised "
                        f"{projection['optimised']:.1f} s" if projection else ""))
    if result.get("scaling"):
        from jcs.bench_scaling import format_scaling

        lines.append(format_scaling(result["scaling"]))
    for key, target in result["targets"].items():
        verdict = "MET" if target["met"] else "NOT MET"
        if key == "jcs_seg_speedup":
            lines.append(f"target jcs-seg @ {target['size']}² optimised ≥ {target['target']:.0f}× fp32 eager: "
                         f"{target['speedup']:.1f}× → {verdict}")
        else:
            lines.append(f"target patient of {target['n_slices']} slices < {target['target']:.0f} s "
                         f"(segmenter {target['segmenter_precision']}): {target['seconds']:.1f} s → {verdict}")
    return "\n".join(lines)
