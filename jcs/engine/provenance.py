"""Provenance of a run: code version (git SHA + dirty flag), package versions, device name, peak
memory, file hashes and timestamps, recorded in every results file (see :mod:`jcs.engine.results`)."""
from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, Iterable, List, Optional

import numpy as np
import torch

import jcs

REPO_ROOT = Path(jcs.__file__).resolve().parents[1]


def now_iso() -> str:
    """Current UTC time, ISO 8601 with seconds."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def git_state(repo: Path = REPO_ROOT) -> Dict[str, object]:
    """``{"sha": str | None, "dirty": bool | None}`` of the checkout holding ``jcs`` (None outside
    a git checkout or without git). Dirty = tracked files differ from HEAD."""
    def git(*args: str) -> Optional[str]:
        try:
            out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                                 timeout=10, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    sha = git("rev-parse", "HEAD")
    if sha is None and os.environ.get("JCS_GIT_SHA"):  # a copy of the tree without .git (GPU runs)
        return {"sha": os.environ["JCS_GIT_SHA"], "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no") if sha else None
    return {"sha": sha, "dirty": None if status is None else bool(status)}


_AT_IMPORT = git_state()  # the code a process runs is the code it imported (no reloads)


def code_state() -> Dict[str, object]:
    """The git state of the code *this process runs*, as near as it can be known: :func:`git_state`
    when this module was first imported (``import jcs.engine`` and the ``jcs`` command import it
    at start), since Python does not reload a module when a commit lands while a long process
    (``jcs reproduce`` over several seeds) is running. A module the process imports only later
    may be newer than that. When HEAD or the tree has moved since, ``head_now`` / ``dirty_now`` say
    where they are now. Use this, not :func:`git_state`, for what a result was computed with."""
    state = dict(_AT_IMPORT)
    now = git_state()
    if now != _AT_IMPORT:
        state.update(head_now=now["sha"], dirty_now=now["dirty"])
    return state


def package_versions() -> Dict[str, str]:
    """Versions of python, torch, torchvision, numpy and jcs."""
    import torchvision

    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "numpy": np.__version__,
            "jcs": jcs.__version__}


def cpu_name() -> str:
    """CPU model from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


#: The CPU features that decide how fast this project's models run, in the names of
#: ``torch.cpu.get_capabilities()``: the vector width (AVX2, AVX-512), native bf16 matrix products
#: (AVX512-BF16, AMX) and int8 dot products (VNNI, AMX). Two VMs that both call themselves
#: "AMD EPYC" trained the same classifier in 11 538 s (AVX2, fp32) and 2 112 s (AVX512-BF16, bf16
#: autocast): the model name alone does not say which machine a timing comes from.
CPU_FEATURES = ("avx2", "avx512_f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_tile",
                "amx_bf16", "amx_int8")


def cpu_features() -> List[str]:
    """Which of :data:`CPU_FEATURES` this CPU has (empty where torch cannot tell)."""
    capabilities = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    return [name for name in CPU_FEATURES if capabilities.get(name)]


def device_info(device: torch.device) -> Dict[str, object]:
    """Name of ``device`` plus the CPU model, its matrix-relevant features (:func:`cpu_features`,
    torch's kernel level ``cpu_capability``: "AVX2", "AVX512", ...) and the thread count (always
    useful for timings)."""
    info: Dict[str, object] = {"type": device.type, "cpu": cpu_name(), "cpu_count": os.cpu_count(),
                               "torch_threads": torch.get_num_threads(),
                               "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                               "cpu_features": cpu_features()}
    if device.type == "cuda":
        info["name"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    else:
        info["name"] = info["cpu"]
    return info


def write_probe(path: str | Path, script: str, args: Dict[str, object], record: Dict[str, object],
                started: float) -> Dict[str, object]:
    """Write a diagnostic probe's ``record`` as JSON at ``path`` (folders made), with the
    provenance every probe file carries: ``script``, ``args``, ``git`` (:func:`git_state`),
    ``seconds`` since ``started`` (a ``time.perf_counter()`` value) and ``hardware``
    (:func:`device_info` of the CPU). Returns the whole record."""
    full = {"script": script, "git": code_state(), "args": args, **record,
            "seconds": round(time.perf_counter() - started, 1),
            "hardware": device_info(torch.device("cpu"))}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(full, indent=1) + "\n", encoding="utf-8")
    return full


def reset_peak_memory(device: torch.device) -> None:
    """Start a new CUDA peak-memory window (a no-op on CPU, where only the process peak exists)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device) -> Dict[str, object]:
    """Peak memory: CUDA max allocated since :func:`reset_peak_memory`, or on CPU the peak
    resident set size of the whole process (``getrusage``; includes earlier runs of the process)."""
    if device.type == "cuda":
        return {"bytes": int(torch.cuda.max_memory_allocated(device)),
                "kind": "cuda_max_allocated"}
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
    return {"bytes": int(kib * scale), "kind": "process_max_rss"}


@functools.lru_cache(maxsize=None)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    """sha256 of a file (cached per path, size and modification time)."""
    stat = os.stat(path)
    return _sha256_cached(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


def hash_files(paths: Iterable[Path], root: Optional[Path] = None) -> Dict[str, object]:
    """``{"files": {relative path: sha256}, "digest": sha256 of the sorted list}`` for the data
    files a run used; paths are made relative to ``root`` when they lie under it."""
    files: Dict[str, str] = {}
    for path in sorted({Path(p) for p in paths}):
        key = str(path)
        if root is not None:
            try:
                key = str(path.resolve().relative_to(Path(root).resolve()))
            except ValueError:
                pass
        files[key] = sha256_file(path)
    listing = "".join(f"{name}\t{digest}\n" for name, digest in sorted(files.items()))
    return {"files": files, "digest": hashlib.sha256(listing.encode()).hexdigest()}
