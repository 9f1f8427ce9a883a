"""Runtime of the system beside the paper's 22 s per patient (paper Sec. V): timings of the
patient-level runs (``table4`` results files: every slice of every COVID-CT-MD patient
classified) and the benchmark files of ``jcs bench`` (``results/bench/<host>.json``)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Union

import numpy as np
import pandas as pd

from jcs import paper

from .results import PROFILE_ORDER, available_profiles, hardware_label, load_runs

__all__ = ["runtime_table", "bench_models", "patient_stages", "bench_targets", "int8_check"]

PathLike = Union[str, Path]


def _paper_runtime() -> Dict[str, Any]:
    items = {r["item"]: r["value"] for r in paper.RUNTIME.records()}
    seconds = items["seconds per patient (classification of all slices + segmentation)"]
    return {"seconds": seconds, "slices": items["slices per patient"], "device": items["GPU"],
            "radiologist_min": items["radiologist, minutes per case"]}


def _patient_rows(results_dir: PathLike) -> List[Dict[str, Any]]:
    """Classification of every slice of every patient, per profile (``table4`` results)."""
    rows = []
    for profile in available_profiles(results_dir, ["table4"]):
        for name, results in load_runs(results_dir, profile, "table4",
                                       keep_superseded=True).items():  # timings: every seed
            for result in results:
                patients = result.get("patients", [])
                if not patients:
                    continue
                seconds = np.array([p["seconds"] for p in patients], dtype=float)
                slices = np.array([p["n_slices"] for p in patients], dtype=float)
                rows.append({
                    "source": (f"ours, {profile}: classify every slice ({name}, "
                               f"seed {result['seed']})"),
                    "device": hardware_label([result]),
                    "what": "classification only", "slices per patient": float(slices.mean()),
                    "seconds per patient": float(seconds.mean()),
                    "seconds per 300 slices": float((seconds / slices).mean() * 300),
                })
    return rows


def _bench_files(results_dir: PathLike) -> List[Dict[str, Any]]:
    """Every ``jcs bench`` file under ``<results_dir>/bench/`` (``"path"`` added)."""
    files = []
    for path in sorted((Path(results_dir) / "bench").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        data["path"] = str(path)
        files.append(data)
    return files


def _bench_device(data: Dict[str, Any]) -> str:
    device = dict(data.get("device", {}))
    # bench files before 2026-11-30 record torch's CPU capability beside the device only
    device.setdefault("cpu_capability", (data.get("provenance") or {}).get("cpu_capability"))
    return hardware_label([{"environment": {"device": device}}])


def _get(record: Dict[str, Any], part: str, key: str) -> float:
    return (record.get(part) or {}).get(key, np.nan)


def _bench_label(data: Dict[str, Any]) -> str:
    name = Path(data["path"]).stem
    return f"{name} (quick test run)" if data.get("quick") else name


def _variant(entry: Dict[str, Any]) -> str:
    """A short name of how a ``patients`` entry of a bench file ran (the rows of one file)."""
    precision, what = entry.get("precision") or "", entry.get("what") or ""
    if "compiled" in precision:
        return "models compiled"
    if "int8" in precision:
        return "int8 segmenter"
    if "segmenter at" in what:
        return "segmenter at " + what.split("segmenter at ", 1)[1].split(",")[0].split(")")[0]
    return "first call" if "first call" in what else "default"


def _bench_rows(results_dir: PathLike) -> List[Dict[str, Any]]:
    """The end-to-end patient timings of the ``jcs bench`` files (their ``patients`` list)."""
    rows = []
    for data in _bench_files(results_dir):
        for entry in data.get("patients", []):
            rows.append({
                "source": f"ours, jcs bench {_bench_label(data)}: {_variant(entry)}",
                "device": _bench_device(data),
                "what": entry["what"] + (f" at {entry['slice_size']}²"
                                         if entry.get("slice_size") else ""),
                "slices per patient": float(entry["slices"]),
                "seconds per patient": float(entry["seconds"]),
                "seconds per 300 slices": float(entry["seconds"]) / float(entry["slices"]) * 300,
            })
    return rows


def runtime_table(results_dir: PathLike = "results") -> pd.DataFrame:
    """Seconds per patient: the paper's (RTX 2080Ti, ~300 slices) beside every timing we have,
    with seconds per 300 slices for a like-for-like row. ``attrs["fastest"]`` describes our
    fastest row in words (for the text)."""
    ref = _paper_runtime()
    rows = [{"source": "paper", "device": ref["device"], "what": "classification + segmentation",
             "slices per patient": float(ref["slices"]),
             "seconds per patient": float(ref["seconds"]),
             "seconds per 300 slices": float(ref["seconds"]) / float(ref["slices"]) * 300}]
    ours = _patient_rows(results_dir) + _bench_rows(results_dir)
    rows += ours
    # the numbers next to the row names; the long descriptions last
    df = pd.DataFrame(rows).set_index("source")[[
        "seconds per patient", "seconds per 300 slices", "slices per patient", "device", "what"]]
    if ours:
        best = min(ours, key=lambda r: r["seconds per 300 slices"])
        fastest = (f"{best['seconds per 300 slices']:.1f} s per 300 slices ({best['what']}) on "
                   f"{best['device']}")
    else:
        fastest = "no timings yet (run `make bench` or the table4 experiment)"
    df.attrs.update({
        "title": "Runtime per patient", "fastest": fastest, "paper_seconds": float(ref["seconds"]),
        "paper_slices": int(ref["slices"]), "paper_device": ref["device"],
        "radiologist_min": float(ref["radiologist_min"]),
        "ours": "every timing found under the results folder (all profiles)",
        "definitions": {"seconds per 300 slices": "seconds per patient / slices × 300 (the "
                                                   "paper's patients have about 300 slices)",
                        "classification only": "the slice classifier of the run (Res2Net-101, "
                                               "or EfficientNet-Lite2 for "
                                               "jcs-classifier-efficientnet-lite2) on every slice "
                                               "of the patient, measured while making Table IV"},
        "notes": [paper.RUNTIME.source,
                  f"A radiologist needs about {ref['radiologist_min']} minutes per case (paper)."],
        "source": "jcs.report.runtime_table", "api": "api-runtime", "percent": False,
        "digits": 1, "plain": ["slices per patient"], "seeds_note": False,
        "profiles": [p for p in PROFILE_ORDER if p in available_profiles(results_dir)],
    })
    return df


def bench_models(results_dir: PathLike = "results") -> pd.DataFrame:
    """Per benchmark file, model and input size (``jcs bench``): parameters, GFLOP per image,
    training images/s (fp32 and the engine's optimised path), inference ms per slice (fp32 eager
    and the fastest optimised path of :mod:`jcs.inference`) and peak memory."""
    rows = {}
    files = _bench_files(results_dir)
    if not files:
        raise FileNotFoundError(f"no benchmark files in {Path(results_dir) / 'bench'}; run "
                                "`make bench` (jcs bench) to measure this machine")
    for data in files:
        for model, entry in data.get("models", {}).items():
            for size, record in entry.get("sizes", {}).items():
                inference = record.get("inference", {})
                eager = inference.get("fp32-eager") or {}
                optimised = [v["per_slice_s"] for k, v in inference.items()
                             if k.startswith("optimised-")]
                memory = eager.get("peak_memory_bytes")
                rows[(_bench_label(data), model, int(size))] = {
                    "params (M)": entry.get("parameters", np.nan) / 1e6,
                    "GFLOP": record.get("gflops_per_image", np.nan),
                    "train img/s fp32": _get(record, "train_fp32", "images_per_s"),
                    "train img/s optimised": _get(record, "train_optimised", "images_per_s"),
                    "inference ms fp32": 1000 * eager.get("per_slice_s", np.nan),
                    "inference ms optimised": 1000 * min(optimised) if optimised else np.nan,
                    "peak MB": memory / 2**20 if memory else np.nan,
                }
    if not rows:  # e.g. only `jcs bench --scaling` or --patient-only files
        raise FileNotFoundError(f"no per-model benchmark in {Path(results_dir) / 'bench'}; run "
                                "`make bench` (jcs bench) to measure this machine")
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index = pd.MultiIndex.from_tuples(df.index, names=["benchmark", "model", "size"])
    df.attrs.update({
        "title": "Speed and memory per model (jcs bench)", "percent": False, "digits": 1,
        "seeds_note": False, "ours": ", ".join(sorted({_bench_device(d) for d in files})),
        "definitions": {
            "GFLOP": "floating-point operations of one forward pass (2 × multiply-accumulates)",
            "train img/s": ("images per second of a training step (forward, loss, backward, "
                            "optimiser); optimised = what the engine trains with: bf16 autocast and "
                            "channels-last where bf16 is native, fp32 contiguous on a CPU without it "
                            "(files before 2026-11-29 used fp32 channels-last there; their "
                            "channels_last field says which)"),
            "inference ms": "milliseconds per slice; optimised = batch norm folded, channels-last, "
                            "bf16 where native (jcs.inference)",
            "peak MB": "peak memory of the fp32 inference (CUDA allocations, or process RSS)",
        },
        "notes": ["Random weights: speed does not depend on training."],
        "source": "jcs.report.bench_models", "api": "api-runtime",
        "groups": [{"title": "Size and training", "metrics": ["params (M)", "GFLOP",
                                                              "train img/s fp32",
                                                              "train img/s optimised"]},
                   {"title": "Inference and memory", "metrics": ["inference ms fp32",
                                                                 "inference ms optimised",
                                                                 "peak MB"]}],
    })
    return df


def _compile_seconds(patient: Dict[str, Any]) -> Dict[str, float]:
    """``{"compile, once (s)": seconds}`` of a benchmarked patient whose models were compiled
    before it (``--compile``, an int8 segmenter), else nothing."""
    times = [patient.get(k) for k in ("classifier_compile_s", "segmenter_compile_s")]
    times = [t for t in times if t is not None]
    return {"compile, once (s)": float(sum(times))} if times else {}


def patient_stages(results_dir: PathLike = "results") -> pd.DataFrame:
    """Seconds per stage of the benchmarked patient runs of each ``jcs bench`` file (read,
    classify, segment, explain, lung mask, write, total, and the lung mask's own time in its
    background thread; :class:`jcs.diagnosis.DiagnosisPipeline`): the
    default one and, where measured, the segmenter at the cpu profile's size and in int8."""
    rows, notes = {}, []
    for data in _bench_files(results_dir):
        first = data.get("patient") or {}
        if first.get("timings_s") and "warmup_slices" not in first:  # before warm timing existed
            cuda = (data.get("device") or {}).get("type") == "cuda"
            notes.append(f"{_bench_label(data)}: an earlier version of the pipeline, timed on its "
                         "first call" + (" (CUDA start-up and cuDNN autotuning included)" if cuda else "")
                         + ("; the lung mask ran after the models" if "lung_mask" in first["timings_s"]
                            else "; it had no lung-mask stage yet")
                         + ": not comparable with the warm rows.")
        for key in ("patient", "patient_compiled", "patient_cpu_profile", "patient_int8"):
            patient = data.get(key) or {}
            if not patient.get("timings_s"):
                continue
            segmenter = (f"{patient.get('segmenter_precision') or patient.get('precision')}, "
                         f"{patient.get('segmenter_size', 512)}²"
                         + (", models compiled" if patient.get("compiled") else ""))
            rows[f"{_bench_label(data)}, segmenter {segmenter}"] = {
                "slices": patient.get("n_slices"), "segmented": patient.get("n_segmented"),
                **{f"{k} (s)": v for k, v in patient["timings_s"].items()},
                **{f"{k}, background (s)": v for k, v in (patient.get("background_s") or {}).items()},
                **_compile_seconds(patient)}
    if not rows:
        raise FileNotFoundError(f"no benchmarked patient in {Path(results_dir) / 'bench'}; run "
                                "`make bench` (jcs bench) to measure this machine")
    df = pd.DataFrame.from_dict(rows, orient="index")
    if "total (s)" in df:  # the total next to the row names, the stages after it
        df = df[["total (s)"] + [c for c in df.columns if c != "total (s)"]]
    df.index.name = "benchmark"
    df.attrs.update({
        "title": "Where the time of one patient goes (jcs bench)", "percent": False, "digits": 2,
        "plain": ["slices", "segmented"], "seeds_note": False,
        "ours": "a synthetic volume, half of its slices declared positive, random weights",
        "definitions": {"read": "reading the volume",
                        "classify": "every slice, Res2Net-101 at 224²",
                        "segment": "the positive slices, JCS segmentation (precision and "
                                   "input size in the row name; int8: `jcs quantize`)",
                        "explain": "Grad-CAM of the top slices",
                        "lung_mask": "the wait for the lung mask, which a background thread "
                                     "computes on the CPU while the models run (runs before "
                                     "2026-11-27: computed after segment, on the critical path)",
                        "lung_mask, background": "the lung mask's own time in that thread "
                                                 "(not part of the total)",
                        "compile, once": "torch.compile of the models (compiled rows) or of the "
                                         "int8 program, when the pipeline is made, before the "
                                         "first patient (not part of the total)",
                        "write": "the report folder"},
        "notes": notes, "source": "jcs.report.patient_stages", "api": "api-runtime",
        "wrap_index": True,
        "groups": [{"title": "Total and the stages on the critical path",
                    "metrics": ["total (s)", "slices", "segmented", "read (s)", "classify (s)",
                                "segment (s)"]},
                   {"title": "The other stages, and what runs beside them", "metrics": []}],
    })
    return df


SCALING_TARGET_SPEEDUP = 1.8  # issue 16: the patient with 2 threads >= 1.8x faster than with 1
SCALING_TARGET_SECONDS = 30.0  # issue 16: a 300-slice patient on the 2-core CPU


def _scaling_targets(data: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The issue-16 checks of a file's scaling table: the patient with 2 threads at least
    1.8× faster than with 1, and a measured 300-slice patient at the most threads in 30 s."""
    scaling = data.get("scaling") or {}
    rows = {int(r["threads"]): r for r in scaling.get("rows", [])}
    segmenter = "int8" if (scaling.get("segmenter") or {}).get("int8") else "float"
    base = {"benchmark": _bench_label(data), "device": _bench_device(data)}
    checks = []
    if 1 in rows and 2 in rows and rows[2].get("speedup_patient"):
        speedup = float(rows[2]["speedup_patient"])
        checks.append({**base, "target": f"patient, 2 threads against 1 ({rows[2]['patient_seconds_kind']}, "
                                         f"segmenter {segmenter})",
                       "measured": f"{speedup:.2f} ×", "limit": f"≥ {SCALING_TARGET_SPEEDUP:g}×",
                       "met": "yes" if speedup >= SCALING_TARGET_SPEEDUP else "no"})
    measured = [t for t, r in rows.items() if r.get("patient_seconds_kind") == "measured"]
    if measured:
        row = rows[max(measured)]
        seconds = float(row["patient_seconds"])
        n = (scaling.get("patient") or {}).get("n_slices")
        checks.append({**base, "target": f"{n}-slice patient at {row['threads']} threads, measured, "
                                         f"segmenter {segmenter}",
                       "measured": f"{seconds:.1f} s", "limit": f"≤ {SCALING_TARGET_SECONDS:g} s",
                       "met": "yes" if seconds <= SCALING_TARGET_SECONDS else "no"})
    return checks


def bench_targets(results_dir: PathLike = "results") -> pd.DataFrame:
    """Every speed target that a ``jcs bench`` file checked (:func:`jcs.bench.targets`): what
    was measured against the limit, and whether it was met. On the CPU: jcs-seg at 512² at least
    3× faster than fp32 eager, a 300-slice patient in under 120 s; on a GPU: that patient in under
    2 s."""
    rows = []
    for data in _bench_files(results_dir):
        if data.get("quick"):
            continue
        for key, target in (data.get("targets") or {}).items():
            if key == "jcs_seg_speedup":
                what, value, unit = f"jcs-seg at {target['size']}², optimised vs fp32 eager", target["speedup"], "×"
                limit = f"≥ {target['target']:g}×"
            else:
                segmenter = target.get("segmenter_precision")
                what = (f"{target['n_slices']}-slice patient"
                        + (f", segmenter {segmenter}" if segmenter else "")
                        + (", models compiled" if target.get("compiled") else ""))
                value, unit, limit = target["seconds"], "s", f"< {target['target']:g} s"
            rows.append({"benchmark": _bench_label(data), "target": what,
                         "measured": f"{value:.1f} {unit}", "limit": limit,
                         "met": "yes" if target["met"] else "no", "device": _bench_device(data)})
        rows.extend(_scaling_targets(data))
    if not rows:
        raise FileNotFoundError(f"no benchmark targets in {Path(results_dir) / 'bench'}; run "
                                "`make bench` (jcs bench) to measure this machine")
    df = pd.DataFrame(rows).set_index("benchmark")
    missed = [f"{r['target']} on {r['device']} ({r['benchmark']}: {r['measured']}, limit {r['limit']})"
              for r in rows if r["met"] == "no"]
    df.attrs.update({
        "summary": (f"{len(rows) - len(missed)} of {len(rows)} checks met"
                    + ("; not met: " + "; ".join(missed) if missed else "")),
        "title": "Speed targets (jcs bench)", "percent": False, "seeds_note": False,
        "plain": ["measured"], "ours": "the targets each benchmark file checked",
        "definitions": {"limit": "the project's targets: on a 2-core CPU, jcs-seg at 512² 3× "
                                 "faster than fp32 eager and a 300-slice patient in under 2 "
                                 "minutes (issue 16: 30 s, and 2 threads at least 1.8× faster "
                                 "than 1); on one H100, that patient in under 2 s. The earlier "
                                 "files keep the limit they were checked against"},
        "notes": [], "source": "jcs.report.bench_targets", "api": "api-runtime",
    })
    return df


def int8_check(results_dir: PathLike = "results") -> pd.DataFrame:
    """Accuracy and speed of each int8 segmenter of ``jcs quantize`` beside the checkpoint it was
    made from, on the same test slices (``<results_dir>/<profile>/int8/<model>.json``, written by
    :func:`jcs.engine.quantize.quantize_checkpoint`)."""
    rows = []
    for path in sorted(Path(results_dir).glob("*/int8/*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        check = data.get("check")
        if data.get("schema") != "jcs-int8-report" or not check:
            continue
        profile = path.parent.parent.name
        for variant, metrics in check["metrics"].items():
            precision = check["original_precision"] if variant == "original" else "int8"
            rows.append({"profile": profile, "model": data["model"], "precision": precision,
                         "input": f"{data['input_size']}²", "test slices": check["n_images"],
                         **{k.replace("_", " "): v for k, v in metrics.items()},
                         "s per slice": check["eval_seconds_per_slice"][variant],
                         "threads": data["device"].get("torch_threads"),
                         "cpu": data["device"].get("cpu") or data["device"].get("name")})
    if not rows:
        raise FileNotFoundError(f"no int8 report under {Path(results_dir)}/<profile>/int8/; make one "
                                "with `jcs quantize CKPT --out X.pt2 --report "
                                "results/<profile>/int8/<model>.json`")
    df = pd.DataFrame(rows).set_index(["profile", "model", "precision"])
    summaries = []
    for (profile, model), group in df.groupby(level=["profile", "model"], sort=False):
        original, int8 = group.iloc[0], group.iloc[-1]
        summaries.append(f"{model} ({profile}, {original['input']}): Dice {int8['dice']:.3f} in int8 "
                         f"against {original['dice']:.3f} in {group.index[0][2]} on "
                         f"{int8['test slices']} test slices, "
                         f"{original['s per slice'] / int8['s per slice']:.1f}x faster per slice "
                         f"on {int8['cpu']}")
    df.attrs.update({
        "summary": "; ".join(summaries),
        "title": "int8 segmenter against its original (jcs quantize)", "percent": False,
        "digits": 3, "plain": ["input", "test slices", "threads", "cpu"], "seeds_note": False,
        "ours": "the same checkpoint, as the tables evaluate it (bf16 autocast where native) and "
                "as the int8 program calibrated on 16 training slices, on the same test slices "
                "(masks at 512²)",
        "definitions": {"s per slice": "evaluation time per slice, model and metrics, 1 slice "
                                       "per call, on the CPU (int8 after its compilation)"},
        "notes": [], "source": "jcs.report.int8_check", "api": "api-runtime",
        "groups": [{"title": "Accuracy", "metrics": ["dice", "iou", "e mean", "sensitivity",
                                                      "specificity"]},
                   {"title": "Input and speed", "metrics": ["input", "test slices",
                                                            "s per slice", "threads", "cpu"]}],
    })
    return df
