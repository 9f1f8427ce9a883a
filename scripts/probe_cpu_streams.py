"""Probe (timing, random weights): one slice at a time with every torch thread, or several slices
in flight with the threads split between them (:mod:`jcs.streams`)? Issue 16 asks to measure
before choosing how ``jcs diagnose`` uses the cores.

``jcs-seg`` at 512² as the diagnosis pipeline runs it (BN folded, channels-last, fp32 where the
CPU has no native bf16, batch 1), ``--slices`` random slices after one warm-up slice per layout:
seconds per slice with 1 stream × T threads and with T streams × 1 thread (T = ``--threads``),
``--rounds`` passes of each, interleaved with the order alternating (the median decides),
each with the process heap left as glibc sets it and with
:func:`jcs.inference.keep_freed_memory` (what the pipeline does by default). The heap setting is
process-wide and cannot be undone, so each runs in its own child process. Run it on an idle
machine. Writes results/diagnostics/cpu_streams_probe.json.

    python scripts/probe_cpu_streams.py [--threads 2] [--slices 4] [--rounds 4]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

OUT = "results/diagnostics/cpu_streams_probe.json"


def measure(threads: int, slices: int, keep: bool, rounds: int) -> dict:
    import numpy as np
    import torch

    from jcs.inference import bf16_supported, keep_freed_memory, optimize_for_inference, predict
    from jcs.models import create_model

    kept = keep_freed_memory() if keep else False
    torch.manual_seed(0)
    device = torch.device("cpu")
    precision = "bf16-true" if bf16_supported(device) else "fp32"
    model = optimize_for_inference(create_model("jcs-seg"), device, precision=precision)
    inputs = torch.rand(slices, 3, 512, 512)
    torch.set_num_threads(threads)
    for streams in (1, threads):  # warm-up of both layouts
        predict(model, inputs[:streams], 1, device=device, precision=precision, streams=streams)
    times = {1: [], threads: []}
    for round_ in range(rounds):  # interleaved, the order alternating: drifts hit both layouts
        for streams in ((1, threads) if round_ % 2 == 0 else (threads, 1)):
            start = time.perf_counter()
            predict(model, inputs, 1, device=device, precision=precision, streams=streams)
            times[streams].append(round((time.perf_counter() - start) / slices, 3))
    rows = [{"streams": streams, "threads_per_stream": max(1, threads // streams),
             "seconds_per_slice": values, "median": float(np.median(values))}
            for streams, values in times.items()]
    return {"keep_freed_memory": keep, "kept": kept, "precision": precision, "rows": rows}


def cpu_times() -> list:
    """The aggregate ``cpu`` line of /proc/stat (user, nice, system, idle, iowait, irq, softirq,
    steal, ...), or [] where there is none."""
    try:
        with open("/proc/stat") as handle:
            return [int(v) for v in handle.readline().split()[1:]]
    except OSError:
        return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--slices", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=4, help="timed passes of each layout, interleaved")
    parser.add_argument("--out", default=OUT)
    parser.add_argument("--child", choices=("keep", "default"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads < 2:
        parser.error("--threads must be at least 2: the probe compares 1 stream x T threads with "
                     "T streams x 1 thread")
    if args.child:
        print(json.dumps(measure(args.threads, args.slices, args.child == "keep", args.rounds)))
        return
    from jcs.engine.provenance import write_probe

    started = time.perf_counter()
    before = cpu_times()
    runs = []
    for heap in ("default", "keep"):
        # stderr passes through: a failing child shows its traceback
        out = subprocess.run([sys.executable, __file__, "--child", heap, "--threads", str(args.threads),
                              "--slices", str(args.slices), "--rounds", str(args.rounds)],
                             check=True, stdout=subprocess.PIPE, text=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(runs[-1], flush=True)
    best = {run["keep_freed_memory"]: min(run["rows"], key=lambda r: r["median"])["streams"]
            for run in runs}
    record = {"what": "jcs-seg at 512², random weights, optimised as in jcs diagnose, batch 1: "
                      "1 stream x T threads vs T streams x 1 thread",
              "threads": args.threads, "slices": args.slices, "runs": runs,
              "fastest_streams": {"default heap": best[False], "keep_freed_memory": best[True]},
              "load_1min_at_end": round(os.getloadavg()[0], 2)}
    after = cpu_times()
    if before and after and len(after) > 7:
        delta = [b - a for a, b in zip(before, after)]
        # over the probe's own run (which keeps both cores busy): the steal share is the time the
        # VM lost to its host; the idle share says the probe had the cores, not that nothing else ran
        record["cpu_share"] = {"idle": round(delta[3] / sum(delta), 3),
                               "steal": round(delta[7] / sum(delta), 3)}
    write_probe(args.out, "scripts/probe_cpu_streams.py", vars(args), record, started)
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
