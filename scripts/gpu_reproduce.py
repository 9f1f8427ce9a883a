"""The GPU reproduction run: every model of Tables V–VII and the two classifiers of Fig. 9 with
the ``gpu`` profile, in one call on a lent GPU machine (no internet, ≤ 10 minutes a call).

Runs the steps of :func:`jcs.engine.experiments.plan` one by one, each isolated (a failing
model is logged and the next one runs), stops starting new steps at ``--budget`` seconds, and
after every step packs ``results/gpu`` into ``$OUT/results_gpu.tar.gz`` so whatever finished
comes back even if the call is cut off. Table IV needs COVID-CT-MD, which the compact data
bundle leaves out (``scripts/make_gpu_bundle.py``): the CPU profile computes it.

First (unless ``--no-patient-bench``) it times the 300-slice patient with ``jcs bench
--patient-only`` (``$OUT/bench-patient.json``, for ``results/bench/``): the GPU check of the
project's 2 s per patient target, eager and with both models ``torch.compile``d (a few minutes
with the compiling, all counted in ``--budget``).

Usage on the device: ``python3 scripts/gpu_reproduce.py --data .gpu/data --budget 480``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pack(results_dir: Path, out: Path) -> None:
    tmp = out / "results_gpu.tar.gz.tmp"
    with tarfile.open(tmp, "w:gz") as tar:
        tar.add(results_dir / "gpu", arcname="results/gpu")
    tmp.rename(out / "results_gpu.tar.gz")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT / ".gpu" / "data"))
    parser.add_argument("--budget", type=float, default=480.0, help="seconds; no step starts after")
    parser.add_argument("--results-dir", default=str(ROOT / "results"))
    parser.add_argument("--runs-dir", default="/tmp/jcs-runs")
    parser.add_argument("--skip", nargs="*", default=["table4"], help="experiments to leave out")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="profile overrides")
    parser.add_argument("--no-patient-bench", action="store_true",
                        help="skip the patient benchmark that runs before the training")
    args = parser.parse_args()
    out = Path(os.environ.get("OUT", ROOT / "gpu_out"))
    out.mkdir(parents=True, exist_ok=True)

    import torch
    from jcs.engine import get_profile, reproduce
    from jcs.engine.experiments import plan

    start = time.perf_counter()
    overrides = dict(kv.split("=", 1) for kv in args.set)
    profile = get_profile("gpu", overrides)
    print(json.dumps({"torch": torch.__version__, "cuda": torch.cuda.is_available(),
                      "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                      "overrides": overrides}), flush=True)
    log = []
    if not args.no_patient_bench:
        from jcs.bench import benchmark

        tic = time.perf_counter()
        try:
            bench = benchmark(per_model=False, out=out / "bench-patient.json")
            entry = {"step": "bench --patient-only", "status": "done",
                     "patient_seconds": bench["patient"]["seconds"], "targets": bench["targets"]}
        except Exception:  # the reproduction must still run
            traceback.print_exc()
            entry = {"step": "bench --patient-only", "status": "failed"}
        entry["seconds"] = round(time.perf_counter() - tic, 1)
        log.append(entry)
        print(json.dumps(entry), flush=True)
    results_dir = Path(args.results_dir)
    (results_dir / "gpu").mkdir(parents=True, exist_ok=True)
    for step in plan(profile):
        if step.experiment in args.skip:
            continue
        elapsed = time.perf_counter() - start
        if elapsed > args.budget:
            log.append({"step": f"{step.experiment}/{step.name}", "status": "not started (budget)"})
            continue
        tic = time.perf_counter()
        try:
            reproduce("gpu", results_dir=results_dir, only=[f"{step.experiment}/{step.name}"],
                      runs_dir=args.runs_dir, quiet=True, data_root=args.data, overrides=overrides)
            status = "done"
        except Exception:  # one failing model must not cost the others
            status = "failed"
            traceback.print_exc()
        entry = {"step": f"{step.experiment}/{step.name}", "status": status,
                 "seconds": round(time.perf_counter() - tic, 1)}
        log.append(entry)
        print(json.dumps(entry), flush=True)
        (out / "steps.json").write_text(json.dumps(log, indent=1))
        pack(results_dir, out)
    print(f"total {time.perf_counter() - start:.0f} s", flush=True)
    if torch.cuda.is_available():
        subprocess.run(["nvidia-smi"], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
