"""Where and how a run computes: device choice (CUDA > CPU), bf16 autocast and channels-last,
seeding and RNG state capture (for exact resume), and quiet mode."""
from __future__ import annotations

import contextlib
import os
import random
from typing import Any, Dict

import numpy as np
import torch
import torch.nn as nn

from jcs.inference import resolve_device, resolve_precision as _resolve_precision


def select_device(spec: str = "auto") -> torch.device:
    """``"auto"``: the first CUDA GPU when there is one, else the CPU; otherwise ``spec``
    (``"cpu"``, ``"cuda"``, ``"cuda:1"``), checked to exist (:func:`jcs.inference.resolve_device`)."""
    return resolve_device(spec)


def resolve_precision(precision: str, device: torch.device) -> str:
    """Training precision: ``"auto"`` → ``"bf16"`` (bf16 autocast) where the hardware runs it
    natively (CUDA with bf16, a CPU with AVX512-BF16/AMX), else ``"fp32"``; the names of
    :data:`jcs.inference.PRECISIONS` (``"bf16-true"`` is for inference only)."""
    return _resolve_precision(precision, device, training=True)


def autocast(device: torch.device, precision: str):
    """bf16 autocast context for ``precision == "bf16"``, else a null context. Losses are computed
    outside it, in float32 (see :func:`to_float`)."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_float(outputs: Any) -> Any:
    """Cast model outputs (tensor, list, tuple or dict of them) to float32."""
    if isinstance(outputs, torch.Tensor):
        return outputs.float()
    if isinstance(outputs, dict):
        return {k: to_float(v) for k, v in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        return type(outputs)(to_float(v) for v in outputs)
    return outputs


def use_channels_last(requested: bool, device: torch.device, precision: str) -> bool:
    """The memory format training really uses: channels-last when ``requested`` and either the
    device is not a CPU or the (resolved) ``precision`` is bf16.

    Why: on a CPU without native bf16 the engine trains in fp32, and there channels-last made the
    fp32 jcs-seg step slower: 12.8 s against 10.3 s contiguous at 256², batch 2, on a 2-core AVX2
    AMD EPYC (``results/diagnostics/channels_last_training.json``), and 30.7 s against 21.8 s at
    512², batch 1 (``results/bench/vm-amd-epyc-avx2-jcs-seg-512.json``). With bf16 (AMX CPUs, GPUs)
    channels-last stays. The answer is a function of fields every run config already holds
    (``channels_last``, ``precision``, ``device_type``), so the config hash still names one
    memory format; results record the effective one under ``environment.channels_last``."""
    if not requested:
        return False
    return device.type != "cpu" or precision in ("bf16", "bf16-true")


def prepare_model(model: nn.Module, device: torch.device, channels_last: bool) -> nn.Module:
    """Move ``model`` to ``device`` (channels-last memory format when asked)."""
    model = model.to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def to_device(images: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """Move an image batch N×C×H×W to ``device`` (channels-last when asked)."""
    images = images.to(device, non_blocking=True)
    return images.contiguous(memory_format=torch.channels_last) if channels_last else images


def seed_everything(seed: int) -> None:
    """Seed python ``random``, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def worker_init(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed python and numpy in each worker from torch's per-worker
    seed (itself drawn from the loader's generator), so augmentations differ between workers and
    epochs yet repeat exactly for the same seed."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def rng_state(loader_generator: torch.Generator) -> Dict[str, Any]:
    """Every RNG state a training loop consumes, as tensors/plain data (loadable with
    ``weights_only=True``)."""
    np_state = np.random.get_state()
    state: Dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "torch": torch.get_rng_state(),
        "loader": loader_generator.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any], loader_generator: torch.Generator) -> None:
    """Restore what :func:`rng_state` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state(("MT19937", np_state["key"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["gauss"]))
    torch.set_rng_state(state["torch"])
    loader_generator.set_state(state["loader"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def quiet_default(quiet: bool | None) -> bool:
    """``quiet`` if given, else true when the environment variable ``JCS_QUIET`` is set to a
    non-empty value other than ``0`` (CI)."""
    if quiet is not None:
        return quiet
    return os.environ.get("JCS_QUIET", "") not in ("", "0")
