"""Training on several processes (GPUs, machines) with PyTorch's own engine: ``torchrun`` starts
the processes and sets ``RANK`` / ``LOCAL_RANK`` / ``WORLD_SIZE`` / ``MASTER_ADDR``; this module
joins them into one process group (NCCL on CUDA, gloo on the CPU), gives each process its device
(``cuda:LOCAL_RANK``), wraps the model in ``DistributedDataParallel`` (optionally with
``SyncBatchNorm``), splits the profile's batch over the processes and gives every process its own
share of each epoch (``DistributedSampler`` + ``set_epoch``).

Without ``torchrun`` (or with one process) every function here is the single-process identity:
:func:`context` returns a world of size 1 and no process group is made.

What differs between one process and N (with the same global batch and seed):

* the data of an epoch: :func:`sampler` gives the same permutation for any N (it depends on seed
  and epoch only), rank r taking positions r, r+N, ...; each global batch is the same set of
  images as in one process. When the training set is not a multiple of N, PyTorch's
  ``DistributedSampler`` repeats up to N−1 images at the end of the epoch.
* BatchNorm: each process normalises with the statistics of its own share of the batch (DDP's
  default); ``SyncBatchNorm`` (profile ``sync_batchnorm=True``; CUDA only in PyTorch) computes them
  over the whole global batch, as one process would.
* losses that are not a mean over images (the soft Dice of :class:`jcs.losses.BCEDiceLoss`, taken
  over the batch) are taken over each process's share; DDP averages the gradients.
* augmentation draws: every process has its own random stream (see :func:`rank_seed`).
"""
from __future__ import annotations

import atexit
import contextlib
import os
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Dict, Iterator, List, Optional

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import Dataset, DistributedSampler

from .provenance import device_info

# Rank 0 evaluates while the others wait at a barrier: longer than PyTorch's default (10 min
# for NCCL). Minutes, from the environment variable JCS_DIST_TIMEOUT_MIN.
DEFAULT_TIMEOUT_MIN = 120
_SOLO = None  # this rank's one-process group (SyncBatchNorm runs only), see local_batchnorm


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``rank`` (0 … world_size−1, global), ``local_rank`` (on this
    machine), ``world_size``, ``backend`` ("nccl" / "gloo", None for one process)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    backend: Optional[str] = None

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files and shows progress bars."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched() -> DistContext:
    """The ranks torchrun gave this process (environment ``RANK``, ``LOCAL_RANK``,
    ``WORLD_SIZE``), without joining a process group; a world of 1 outside torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return DistContext(rank=int(os.environ.get("RANK", "0")),
                       local_rank=int(os.environ.get("LOCAL_RANK", "0")), world_size=world)


def select_device(spec: str, ctx: DistContext) -> torch.device:
    """The device of this process. One process: ``spec`` as :func:`jcs.engine.runtime.select_device`.
    Several: ``"auto"`` / ``"cuda"`` → ``cuda:LOCAL_RANK`` when CUDA is there (``"auto"`` falls back
    to the CPU), ``"cpu"`` → the CPU. Raises ``ValueError`` for a fixed ``"cuda:k"`` (each process
    takes its own GPU) or when this machine has fewer GPUs than processes."""
    from .runtime import select_device as single

    if not ctx.distributed:
        return single(spec)
    if spec == "cpu" or (spec == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if spec not in ("auto", "cuda"):
        raise ValueError(f"device={spec!r} under torchrun: each process takes the GPU of its "
                         "LOCAL_RANK; use device=auto or device=cuda (choose the GPUs with "
                         "CUDA_VISIBLE_DEVICES)")
    if not torch.cuda.is_available():
        raise ValueError("device=cuda but CUDA is not available on this machine")
    count = torch.cuda.device_count()
    if ctx.local_rank >= count:
        raise ValueError(f"process with LOCAL_RANK {ctx.local_rank} has no GPU: this machine shows "
                         f"{count} (CUDA_VISIBLE_DEVICES); start at most {count} processes per node "
                         "(torchrun --nproc_per_node)")
    device = torch.device("cuda", ctx.local_rank)
    torch.cuda.set_device(device)
    return device


def init(device: torch.device) -> DistContext:
    """Join torchrun's process group once (NCCL for CUDA devices, gloo for the CPU; timeout
    :data:`DEFAULT_TIMEOUT_MIN` minutes or ``$JCS_DIST_TIMEOUT_MIN``) and return this process's
    :class:`DistContext`. A world of one makes no group. The group is destroyed at exit."""
    ctx = launched()
    if not ctx.distributed:
        return ctx
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        minutes = float(os.environ.get("JCS_DIST_TIMEOUT_MIN", DEFAULT_TIMEOUT_MIN))
        kwargs = {"device_id": device} if device.type == "cuda" else {}
        dist.init_process_group(backend=backend, timeout=timedelta(minutes=minutes), **kwargs)
        atexit.register(_destroy)
    elif dist.get_backend() != backend:
        raise RuntimeError(f"the process group uses {dist.get_backend()}, but this run's device "
                           f"{device} needs {backend}; keep one device type per torchrun")
    return DistContext(rank=dist.get_rank(), local_rank=ctx.local_rank,
                       world_size=dist.get_world_size(), backend=backend)


def _destroy() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def split_batch(batch_size: int, scope: str, ctx: DistContext, n_train: int) -> Dict[str, int]:
    """``{"global": G, "per_process": b}`` for a recipe's ``batch_size`` and ``batch_scope``:
    ``"global"``: G = min(batch_size, n_train) images per step over all processes, b = G / N
    (``ValueError`` when N does not divide G, saying what to change); ``"process"``: b =
    min(batch_size, n_train) per process, G = N·b."""
    if scope == "global":
        total = min(batch_size, n_train)
        if total % ctx.world_size:
            raise ValueError(
                f"the global batch of {total} images cannot be split over {ctx.world_size} "
                f"processes: start a number of processes that divides {total}, or override the "
                "recipe's batch_size (e.g. --set seg.batch_size=...) or batch_scope=process")
        return {"global": total, "per_process": total // ctx.world_size}
    if scope == "process":
        each = min(batch_size, n_train)
        return {"global": each * ctx.world_size, "per_process": each}
    raise ValueError(f"batch_scope must be 'global' or 'process', got {scope!r}")


def sampler(dataset: Dataset, ctx: DistContext, seed: int) -> DistributedSampler:
    """PyTorch's ``DistributedSampler`` (shuffled, seeded; call ``set_epoch(epoch)`` before each
    epoch): the permutation of an epoch depends on ``seed`` and the epoch only, so the global
    batches are the same for any number of processes (one process included)."""
    return DistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True,
                              seed=seed, drop_last=False)


def rank_seed(seed: int, rank: int) -> int:
    """Seed of the augmentation and data-loader streams of ``rank``: ``seed`` for rank 0 (one
    process runs exactly as without torchrun), distinct ones for the others so that the processes
    do not draw the same augmentations for different images."""
    return seed if rank == 0 else (seed * 1_000_003 + rank * 7919) % 2**63


def wrap(model: nn.Module, ctx: DistContext, device: torch.device,
         sync_batchnorm: bool = False) -> nn.Module:
    """``DistributedDataParallel(model)`` for several processes (``static_graph``: a model whose
    training forward leaves some parameters unused still trains), ``model`` itself for one.
    ``sync_batchnorm``: convert every ``BatchNorm`` to ``SyncBatchNorm`` first (in place; CUDA
    only: ``ValueError`` on the CPU, where PyTorch has no implementation)."""
    if not ctx.distributed:
        return model
    if sync_batchnorm:
        if device.type != "cuda":
            raise ValueError("sync_batchnorm=True needs CUDA devices: PyTorch's SyncBatchNorm has "
                             "no CPU implementation; set sync_batchnorm=false for a CPU run")
        nn.SyncBatchNorm.convert_sync_batchnorm(model)  # swaps the layers inside ``model``
        global _SOLO
        if _SOLO is None:  # new_group is collective: every rank makes every group, in order
            groups = [dist.new_group([rank]) for rank in range(ctx.world_size)]
            _SOLO = groups[ctx.rank]
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids, static_graph=True)


@contextlib.contextmanager
def local_batchnorm(model: nn.Module) -> Iterator[None]:
    """Within the block, the ``SyncBatchNorm`` layers of ``model`` use this process's batches
    only (a one-process group), so that rank 0 alone can run train-mode forward passes (BN
    recalibration) without waiting for the others. No-op without SyncBatchNorm."""
    layers = [m for m in model.modules() if isinstance(m, nn.SyncBatchNorm)]
    if not layers or _SOLO is None:
        yield
        return
    before = [m.process_group for m in layers]
    for layer in layers:
        layer.process_group = _SOLO
    try:
        yield
    finally:
        for layer, group in zip(layers, before):
            layer.process_group = group


class ForwardWithFeatures(nn.Module):
    """Adapter whose ``forward`` is ``model.forward_with_features`` (logits, feature map), so that
    DDP synchronises the gradients of the pixel-supervised classifier's loss."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        return self.model.forward_with_features(x)


def barrier(ctx: DistContext) -> None:
    """Wait for every process (no-op for one)."""
    if ctx.distributed:
        dist.barrier()


def broadcast(value: Any, ctx: DistContext) -> Any:
    """Rank 0's ``value`` (any picklable object) on every process."""
    if not ctx.distributed:
        return value
    box = [value if ctx.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(value: Any, ctx: DistContext) -> List[Any]:
    """``[value of rank 0, …, value of rank N−1]`` on every process (picklable objects)."""
    if not ctx.distributed:
        return [value]
    out: List[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, value)
    return out


def mean(value: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Mean of a scalar tensor over the processes (each process's loss → the loss of the global
    batch when the shares are equal); a detached copy, ``value`` itself for one process."""
    if not ctx.distributed:
        return value
    total = value.detach().clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total / ctx.world_size


def rank_devices(device: torch.device, ctx: DistContext) -> List[Dict[str, Any]]:
    """One dict per rank: ``rank``, ``local_rank``, ``host`` and :func:`device_info` of its
    device (collective: every process must call it)."""
    mine = {"rank": ctx.rank, "local_rank": ctx.local_rank, "host": socket.gethostname(),
            **device_info(device)}
    if device.type == "cuda":
        mine["index"] = device.index
    return gather(mine, ctx)
