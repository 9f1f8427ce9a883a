"""How the diagnosis pipeline scales with CPU threads: the ``"scaling"`` block of the ``jcs
bench`` files (``results/bench/<name>.json``, :func:`jcs.bench_scaling.measure_scaling`) as a
table and a figure, beside the paper's 22 s per patient and each CPU's compute limit."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pandas as pd

from .results import ResultsNotFoundError, hardware_label
from .runtime import PathLike, _bench_files, _bench_label, _paper_runtime

__all__ = ["scaling_table", "scaling_figure", "streams_probe"]

STREAMS_FILE = "diagnostics/cpu_streams_probe.json"

RATES = {"classification slices/s": "cls_slices_per_s", "segmentation slices/s": "seg_slices_per_s"}


def _device_label(scaling: Dict[str, Any]) -> str:
    return hardware_label([{"environment": {"device": scaling.get("device") or {}}}])


def _rows(data: Dict[str, Any]) -> List[Dict[str, Any]]:
    scaling = data["scaling"]
    limit = (scaling.get("compute_limit") or {}).get("seconds")
    patient = scaling.get("patient") or {}
    rows = []
    for row in scaling.get("rows", []):
        rows.append({
            "benchmark": _bench_label(data), "threads": int(row["threads"]),
            # files written before jcs.streams ran one stream
            "streams": int(row.get("seg_streams") or 1),
            **{name: row.get(key, np.nan) for name, key in RATES.items()},
            "patient (s)": row.get("patient_seconds", np.nan),
            "patient time": row.get("patient_seconds_kind"),
            "speedup classification": row.get("speedup_cls"),
            "speedup segmentation": row.get("speedup_seg"),
            "speedup patient": row.get("speedup_patient"),
            "compute limit (s)": np.nan if limit is None else limit,
            "slices": patient.get("n_slices"), "segmented": patient.get("n_segmented"),
            "load (1 min)": row.get("load_1min"), "device": _device_label(scaling)})
    return rows


def scaling_table(results_dir: PathLike = "results") -> pd.DataFrame:
    """One row per ``jcs bench`` file with a scaling table and per thread count (index
    ``(benchmark, threads)``): classification and segmentation slices per second, the patient's
    seconds (``patient time``: "measured" or "projected" from the two rates), the speed-ups
    against 1 thread, the CPU's compute limit (s), the patient's slices and segmented slices,
    the 1-minute load average and the hardware. ``attrs["summary"]`` says it in words. Raises
    FileNotFoundError when no file under ``<results_dir>/bench/`` has a scaling table."""
    files = [d for d in _bench_files(results_dir) if (d.get("scaling") or {}).get("rows")]
    if not files:
        raise FileNotFoundError(f"no scaling table in {Path(results_dir) / 'bench'}; run `jcs bench "
                                "--scaling` (or a full `make bench`) to measure this machine")
    df = pd.DataFrame([row for data in files for row in _rows(data)]).set_index(["benchmark", "threads"])
    summaries = []
    for name, group in df.groupby(level="benchmark", sort=False):
        first, last = group.iloc[0], group.iloc[-1]
        limit = first["compute limit (s)"]
        summaries.append(
            f"{name} ({first['device']}): {first['patient (s)']:.0f} s per patient at "
            f"{group.index[0][1]} thread(s), {last['patient (s)']:.0f} s at {group.index[-1][1]} "
            f"({last['patient time']})" + ("" if np.isnan(limit) else
                                            f"; compute limit {limit:.0f} s"))
    ref = _paper_runtime()
    df.attrs.update({
        "summary": "; ".join(summaries), "title": "How the pipeline scales with CPU threads (jcs bench)",
        "percent": False, "digits": 2, "plain": ["streams", "slices", "segmented", "load (1 min)"],
        "seeds_note": False,
        "ours": "synthetic slices, random weights; torch.set_num_threads per row",
        "definitions": {
            "slices/s": "slices per second of the pipeline's classify stage (Res2Net-101 at 224², "
                        "batch 16) and segment stage (JCS segmentation at 512², or int8)",
            "patient (s)": "one patient of 'slices' slices, 'segmented' of them segmented: measured "
                           "end to end (jcs.bench.patient_run), or projected as slices / "
                           "classification rate + segmented / segmentation rate (model compute "
                           "only: no reading, Grad-CAM, lung mask or writing)",
            "streams": "segmentation slices in flight at once, the threads split between them "
                       "(jcs.streams; files written before it ran 1)",
            "speedup": "against the same measurement at 1 thread",
            "compute limit (s)": "the patient's model FLOPs (2 × multiply-accumulates) / the CPU's "
                                 "fp32 peak (cores × 2 FMA units × vector lanes × 2 × clock); "
                                 "no fp32 implementation can be faster on that CPU",
            "load (1 min)": "1-minute load average at the end of the row (a load above the core "
                            "count means another job shared the CPU)"},
        "notes": [f"Paper: about {ref['seconds']:g} s per patient of about {ref['slices']} slices "
                  f"on one {ref['device']}."],
        "source": "jcs.report.scaling_table", "api": "api-runtime", "wrap_index": True,
        "groups": [{"title": "Speed", "metrics": ["classification slices/s", "segmentation slices/s",
                                                  "patient (s)", "patient time", "compute limit (s)"]},
                   {"title": "Speed-up and conditions", "metrics": []}],
    })
    return df


def scaling_figure(results_dir: PathLike = "results"):
    """Two panels per the :func:`scaling_table`: the patient's seconds against threads (log
    scales; filled markers measured, open markers projected) with the paper's 22 s on its GPU
    and each CPU's compute limit as horizontal lines; and classification and segmentation
    slices per second against threads beside ideal linear scaling from 1 thread (dashed).
    Returns the matplotlib Figure. Raises FileNotFoundError without scaling data."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogFormatter, NullLocator

    df = scaling_table(results_dir)
    ref = _paper_runtime()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    threads_all = sorted(set(df.index.get_level_values("threads")))
    for i, (name, group) in enumerate(df.groupby(level="benchmark", sort=False)):
        colour = colours[i % len(colours)]
        threads = group.index.get_level_values("threads").to_numpy()
        measured = (group["patient time"] == "measured").to_numpy()
        seconds = group["patient (s)"].to_numpy(dtype=float)
        left.plot(threads, seconds, color=colour, linestyle="-" if measured.all() else "--",
                  label=f"{name} ({'measured' if measured.all() else 'projected'})")
        left.scatter(threads, seconds, color=colour, zorder=3,
                     facecolors=[colour if m else "white" for m in measured])
        limit = group["compute limit (s)"].iloc[0]
        if not np.isnan(limit):
            left.axhline(limit, color=colour, linestyle=":", label=f"compute limit of {name}")
        for (label, marker), column in zip((("classification", "o"), ("segmentation", "s")), RATES):
            rates = group[column].to_numpy(dtype=float)
            right.plot(threads, rates, color=colour, marker=marker, label=f"{label}, {name}")
            if 1 in threads:
                base = rates[list(threads).index(1)]
                right.plot(threads, base * threads, color=colour, linestyle="--", linewidth=0.8,
                           alpha=0.7)
    left.axhline(ref["seconds"], color="black", linestyle="-.",
                 label=f"paper: {ref['seconds']:g} s on one {ref['device']}")
    left.set(xlabel="CPU threads", ylabel="seconds per patient", yscale="log", xscale="log",
             title="Patient time (filled: measured, open: projected)")
    right.plot([], [], color="grey", linestyle="--", linewidth=0.8, label="ideal: linear from 1 thread")
    right.set(xlabel="CPU threads", ylabel="slices per second", yscale="log", xscale="log",
              title="Throughput of the two model stages")
    for ax in (left, right):
        ax.set_xticks(threads_all, [str(t) for t in threads_all])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(LogFormatter(labelOnlyBase=False))  # 20, not 2×10¹
        ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False))
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _streams_verdict(data: Dict[str, Any]) -> str:
    """What the probe says, computed from it: per heap, the median gain of several streams over
    one and the largest spread between rounds of one layout."""
    parts = []
    for run in data["runs"]:
        rows = {row["streams"]: row for row in run["rows"]}
        one, many = rows.get(1), max(rows.values(), key=lambda r: r["streams"])
        if one is None or many is one:
            continue
        gain = one["median"] / many["median"] - 1
        spread = max(max(r["seconds_per_slice"]) / min(r["seconds_per_slice"]) - 1 for r in rows.values())
        heap = "kept freed memory" if run["keep_freed_memory"] else "default heap"
        parts.append(f"{heap}: {many['streams']} streams {abs(gain):.0%} "
                     f"{'faster' if gain >= 0 else 'slower'} than 1 in the median, the rounds of "
                     f"one layout up to {spread:.0%} apart")
    return ("; ".join(parts) + ". jcs diagnose runs one stream by default (jcs.streams.DEFAULT_STREAMS; "
            "the module explains the choice).")


def streams_probe(results_dir: PathLike = "results") -> pd.DataFrame:
    """One slice at a time with every thread, or several in flight (:mod:`jcs.streams`): the
    seconds per 512² ``jcs-seg`` slice of ``results/diagnostics/cpu_streams_probe.json``
    (``scripts/probe_cpu_streams.py``), index ``(heap, layout)``, columns the median and each
    interleaved round (s). Raises :class:`ResultsNotFoundError` without the file."""
    import json

    path = Path(results_dir) / STREAMS_FILE
    if not path.is_file():
        raise ResultsNotFoundError(f"{path} is missing; run `python scripts/probe_cpu_streams.py` on "
                                   "an idle machine")
    data = json.loads(path.read_text())
    rows, index = [], []
    for run in data["runs"]:
        heap = "kept freed memory (the pipeline's default)" if run["keep_freed_memory"] else "glibc default heap"
        for row in run["rows"]:
            index.append((heap, f"{row['streams']} stream{'s' if row['streams'] > 1 else ''} × "
                                f"{row['threads_per_stream']} thread{'s' if row['threads_per_stream'] > 1 else ''}"))
            rows.append({"median (s per slice)": row["median"],
                         **{f"round {i + 1}": v for i, v in enumerate(row["seconds_per_slice"])}})
    df = pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=["heap", "layout"]))
    hardware = hardware_label([{"environment": {"device": data.get("hardware") or {}}}])
    share = data.get("cpu_share") or {}
    df.attrs.update({
        "title": "One stream or several slices in flight (jcs-seg at 512², random weights)",
        "percent": False, "digits": 3, "seeds_note": False, "source": "jcs.report.streams_probe",
        "api": "api-runtime",
        "ours": f"{data['threads']} threads, {data['slices']} slices per round, rounds interleaved; "
                f"{hardware}; code {data['git']['sha'][:7]}"
                + (f"; CPU idle {share['idle']:.0%}, stolen by the host {share['steal']:.1%}"
                   if share else ""),
        "notes": [_streams_verdict(data)],
    })
    return df
