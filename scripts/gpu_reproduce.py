"""The GPU reproduction run: every model of Tables V–VII and the two classifiers of Fig. 9 with
the ``gpu`` profile, in one call on a lent GPU machine (no internet, ≤ 10 minutes a call).

Runs the steps of :func:`jcs.engine.experiments.plan` one by one, each isolated (a failing
model is logged and the next one runs), stops starting new steps at ``--budget`` seconds, and
after every step packs ``results/gpu`` into ``$OUT/results_gpu.tar.gz`` so whatever finished
comes back even if the call is cut off. Table IV needs COVID-CT-MD, which the compact data
bundle leaves out (``scripts/make_gpu_bundle.py``): the CPU profile computes it. For the same
reason (64 MiB travel with the code) the classifiers train on the classification datasets of
the profile that the data folder holds (the bundle: UCSD COVID-CT alone) and skip the cross-source
tests it lacks; the overrides are printed first and recorded in every results
file's config (``profile.cls_datasets`` / ``cls_cross_tests``).

First (unless ``--no-patient-bench``) it times the 300-slice patient with ``jcs bench
--patient-only`` (``$OUT/bench-patient.json``, for ``results/bench/``): the GPU check of the
project's 2 s per patient target, eager and with both models ``torch.compile``d (a few minutes
with the compiling, all counted in ``--budget``).

Every GPU of the machine trains: with several, after the patient benchmark the script starts
itself again under ``torchrun`` (one process per GPU, DistributedDataParallel; the ``gpu``
profile's batches are global, so the recipe is unchanged) on the largest number of GPUs that
divides every global batch of the profile (8 and 64: 1, 2, 4 or 8 GPUs). Rank 0 decides which
steps start (the budget), logs and packs; ``--processes`` overrides the number of processes.

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
    parser.add_argument("--processes", type=int, default=None,
                        help="training processes (default: every usable GPU, see above)")
    args = parser.parse_args()
    out = Path(os.environ.get("OUT", ROOT / "gpu_out"))
    out.mkdir(parents=True, exist_ok=True)

    import torch
    from jcs.engine import distributed as dd
    from jcs.engine import get_profile, reproduce
    from jcs.engine.experiments import plan

    start = time.perf_counter()
    overrides = dict(kv.split("=", 1) for kv in args.set)
    overrides.update(missing_data_overrides(get_profile("gpu", overrides), Path(args.data), overrides))
    profile = get_profile("gpu", overrides)
    ctx = dd.launched()
    if ctx.is_main:
        print(json.dumps({"torch": torch.__version__, "cuda": torch.cuda.is_available(),
                          "gpus": torch.cuda.device_count(), "processes": ctx.world_size,
                          "device": (torch.cuda.get_device_name(0) if torch.cuda.is_available()
                                     else None),
                          "overrides": overrides}), flush=True)
    log = []
    if not args.no_patient_bench and ctx.is_main and not ctx.distributed:
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
    nproc = args.processes or training_processes(profile, torch.cuda.device_count())
    if nproc > 1 and not ctx.distributed:  # every GPU: this script again, under torchrun
        return relaunch(nproc, args.budget - (time.perf_counter() - start), out, log)
    results_dir = Path(args.results_dir)
    (results_dir / "gpu").mkdir(parents=True, exist_ok=True)
    if ctx.distributed:  # the process group, so that rank 0 can decide for all
        dd.init(dd.select_device(profile.device, ctx))
    if ctx.is_main and (out / "steps.json").is_file():  # the single-process part (benchmark)
        log = json.loads((out / "steps.json").read_text())
    for step in plan(profile):
        if step.experiment in args.skip:
            continue
        elapsed = time.perf_counter() - start
        if dd.broadcast(elapsed > args.budget, ctx):  # rank 0's clock for every rank
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
                 "seconds": round(time.perf_counter() - tic, 1), "processes": ctx.world_size}
        if not ctx.is_main:
            continue
        log.append(entry)
        print(json.dumps(entry), flush=True)
        (out / "steps.json").write_text(json.dumps(log, indent=1))
        pack(results_dir, out)
    if ctx.is_main:
        (out / "steps.json").write_text(json.dumps(log, indent=1))  # with the steps not started
        print(f"total {time.perf_counter() - start:.0f} s", flush=True)
        if torch.cuda.is_available():
            subprocess.run(["nvidia-smi"], check=False)
    return 0


def missing_data_overrides(profile, data_root: Path, given: dict) -> dict:
    """Profile overrides that leave out the classification datasets (training sources and
    cross-source tests) whose folder is not under ``data_root``; fields the user set with
    ``--set`` stay as given. Raises SystemExit when no training source is left."""
    from jcs.data.registry import get_dataset_info

    def present(name: str) -> bool:
        return (data_root / get_dataset_info(name).folder).is_dir()

    out = {}
    for field in ("cls_datasets", "cls_cross_tests"):
        names = getattr(profile, field)
        kept = [n for n in names if present(n)]
        if field in given or kept == list(names):
            continue
        if field == "cls_datasets" and not kept:
            raise SystemExit(f"{data_root} holds none of the classification datasets "
                             f"{', '.join(names)}: make the bundle with scripts/make_gpu_bundle.py")
        out[field] = ",".join(kept)
        print(json.dumps({"left_out": field, "missing": [n for n in names if n not in kept],
                          "override": out[field]}), flush=True)
    return out


def training_processes(profile, gpus: int) -> int:
    """The largest n ≤ ``gpus`` (at least 1) that divides every global batch of ``profile``
    (recipes with ``batch_scope="global"``; a per-process batch fits any n)."""
    batches = [r.batch_size for r in (profile.seg, profile.cls, profile.cls_finetune)
               if r is not None and r.batch_scope == "global"]
    return max(n for n in range(1, max(1, gpus) + 1) if all(b % n == 0 for b in batches))


def relaunch(nproc: int, budget: float, out: Path, log: list) -> int:
    """Run this script with the same arguments under ``torchrun --nproc_per_node nproc`` (no
    benchmark, what is left of the budget); returns its exit status."""
    (out / "steps.json").write_text(json.dumps(log, indent=1))
    argv, skip_next = [], False
    for arg in sys.argv[1:]:  # drop --budget/--processes (given anew)
        if skip_next:
            skip_next = False
            continue
        if arg in ("--budget", "--processes"):
            skip_next = True
            continue
        if arg.startswith(("--budget=", "--processes=")):
            continue
        argv.append(arg)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           str(nproc), str(Path(__file__).resolve()), *argv, "--no-patient-bench",
           "--budget", str(max(0.0, budget)), "--processes", str(nproc)]
    print(json.dumps({"torchrun": nproc, "command": cmd}), flush=True)
    # a rank that fails alone leaves the others waiting: 10 minutes, not the default 2 hours
    env = dict(os.environ, JCS_DIST_TIMEOUT_MIN=os.environ.get("JCS_DIST_TIMEOUT_MIN", "10"))
    return subprocess.run(cmd, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
