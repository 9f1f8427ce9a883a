"""Fast inference helpers shared by :mod:`jcs.diagnosis` and :mod:`jcs.bench`.

The optimised path is: eval mode, batch norms folded into the preceding convolutions
(:func:`fold_batchnorm`; every backbone BN of JCS is a ``FrozenBatchNorm2d``, i.e. a fixed
per-channel affine, jcs_official.md §4.1-4.2), channels-last memory format, ``torch.inference_mode``
and bf16 where the hardware runs it natively (CUDA, or a CPU with AVX512-BF16/AMX through oneDNN).

Precisions (:data:`PRECISIONS`, the same names as the engine's): ``"fp32"``; ``"bf16"`` = fp32
weights under bf16 autocast (mixed precision, what training uses); ``"bf16-true"`` = weights and
activations cast to bf16 (inference only; no per-call weight casts: on a 2-core AMX CPU about 2×
faster than autocast for the JCS segmentation model, see ``results/bench``).
:func:`predict` runs a model over a stack of inputs in batches along that path.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import platform
from collections import defaultdict
from typing import Callable, Dict, Iterator, List, Optional, Union

import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode

from .models.layers import FrozenBatchNorm2d

DeviceLike = Union[str, torch.device, None]
PRECISIONS = ("fp32", "bf16", "bf16-true")

# Tensor methods that read metadata only; calling them on a conv output does not consume it.
_METADATA_CALLS = {"__get__", "size", "dim", "ndimension", "numel", "stride", "is_contiguous",
                   "element_size", "data_ptr", "get_device", "__len__"}


def resolve_device(device: DeviceLike = None) -> torch.device:
    """``None`` or ``"auto"``: CUDA when available, else the CPU; otherwise ``torch.device(device)``."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device} requested but CUDA is not available; use --device cpu")
    return device


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 runs natively: a CUDA device with bf16, or a CPU where oneDNN has bf16
    kernels (AVX512-BF16 / AMX). Elsewhere bf16 autocast is emulated and slower than fp32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.backends.mkldnn.is_available()
                        and torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def _is_norm_act(module: nn.Module) -> bool:
    """timm's ``BatchNormAct2d``: a BatchNorm2d subclass that also applies dropout and an
    activation (EfficientNet); only its BN part folds."""
    return (isinstance(module, nn.BatchNorm2d) and isinstance(getattr(module, "act", None), nn.Module)
            and isinstance(getattr(module, "drop", None), nn.Module))


def _is_foldable_norm(module: nn.Module) -> bool:
    """FrozenBatchNorm2d, or an eval-mode BatchNorm2d with running statistics (both are a fixed
    per-channel affine at inference), including timm's BN + activation (its activation is kept,
    :func:`_after_fold`). Other BatchNorm2d subclasses may do more and are left alone."""
    if isinstance(module, FrozenBatchNorm2d):
        return True
    return ((type(module) is nn.BatchNorm2d or _is_norm_act(module)) and not module.training
            and module.track_running_stats and module.running_mean is not None)


def _after_fold(norm: nn.Module) -> nn.Module:
    """What replaces a folded norm: nothing, or what a BN + activation does after its BN."""
    return nn.Sequential(norm.drop, norm.act) if _is_norm_act(norm) else nn.Identity()


class _ConsumerLog(TorchFunctionMode):
    """Records, for each watched tensor, the module on top of the call stack of every torch
    function that reads it (metadata reads excepted)."""

    def __init__(self, watched: Dict[int, str], stack: List[str], uses: Dict[str, List[str]]):
        super().__init__()
        self.watched, self.stack, self.uses = watched, stack, uses

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__name__", "") not in _METADATA_CALLS:
            for value in list(args) + list(kwargs.values()):
                for item in (value if isinstance(value, (list, tuple)) else (value,)):
                    if isinstance(item, torch.Tensor) and id(item) in self.watched:
                        self.uses[self.watched[id(item)]].append(self.stack[-1] if self.stack else "")
        return func(*args, **kwargs)


def find_conv_norm_pairs(model: nn.Module, example: torch.Tensor) -> List[tuple]:
    """``[(conv_name, norm_name)]``: each ``nn.Conv2d`` whose output goes *only* into one foldable
    batch norm (see :func:`_is_foldable_norm`), found by running ``model(example)`` once and
    tracing which module reads each conv output (works for any forward code, not a fixed layout)."""
    names = {module: name for name, module in model.named_modules()}
    calls: Dict[str, int] = defaultdict(int)
    watched: Dict[int, str] = {}
    keep_alive: List[torch.Tensor] = []
    norm_input: Dict[str, Optional[str]] = {}
    stack: List[str] = []
    uses: Dict[str, List[str]] = defaultdict(list)

    def pre_hook(module, inputs):
        name = names[module]
        calls[name] += 1
        if _is_foldable_norm(module) and inputs and isinstance(inputs[0], torch.Tensor):
            norm_input[name] = watched.get(id(inputs[0]))
        stack.append(name)

    def post_hook(module, inputs, output):
        stack.pop()
        if isinstance(module, nn.Conv2d) and isinstance(output, torch.Tensor):
            watched[id(output)] = names[module]
            keep_alive.append(output)

    handles = []
    for module in names:
        handles.append(module.register_forward_pre_hook(pre_hook))
        handles.append(module.register_forward_hook(post_hook))
    try:
        with torch.no_grad(), _ConsumerLog(watched, stack, uses):
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    pairs = []
    for norm_name, conv_name in norm_input.items():
        if conv_name is None or calls[conv_name] != 1 or calls[norm_name] != 1:
            continue
        if uses[conv_name] and all(user == norm_name for user in uses[conv_name]):
            pairs.append((conv_name, norm_name))
    return pairs


def fold_batchnorm(model: nn.Module, example: Optional[torch.Tensor] = None) -> int:
    """Fold every batch norm that directly follows a convolution into that convolution's weight
    and bias, in place, and replace the norm by ``nn.Identity``. Returns the number folded.

    A frozen/eval BN computes ``y = (x − μ)·γ/√(σ²+ε) + β``, a per-channel affine ``a·x + b``; for
    ``x = W*z + c`` this is ``(a·W)*z + (a·c + b)``. The model must be in eval mode (it is put there);
    ``example`` (default 1×3×128×128 zeros on the model's device) is run once to find the pairs."""
    model.eval()
    if example is None:
        parameter = next(model.parameters())
        example = torch.zeros(1, 3, 128, 128, device=parameter.device, dtype=parameter.dtype)
    pairs = find_conv_norm_pairs(model, example)
    modules = dict(model.named_modules())
    with torch.no_grad():
        for conv_name, norm_name in pairs:
            conv, norm = modules[conv_name], modules[norm_name]
            scale = norm.weight.float() * (norm.running_var.float() + norm.eps).rsqrt()
            shift = norm.bias.float() - norm.running_mean.float() * scale
            weight = conv.weight.float() * scale.view(-1, *([1] * (conv.weight.dim() - 1)))
            bias = shift if conv.bias is None else conv.bias.float() * scale + shift
            conv.weight.copy_(weight.to(conv.weight.dtype))
            if conv.bias is None:
                conv.bias = nn.Parameter(bias.to(conv.weight.dtype), requires_grad=conv.weight.requires_grad)
            else:
                conv.bias.copy_(bias.to(conv.bias.dtype))
            parent_name, _, attr = norm_name.rpartition(".")
            setattr(modules[parent_name] if parent_name else model, attr, _after_fold(norm))
    return len(pairs)


# The name asked for in the task brief; FrozenBatchNorm2d is one of the folded kinds.
fold_frozen_bn = fold_batchnorm


def resolve_precision(precision: str, device: torch.device, *, training: bool = False) -> str:
    """``"auto"`` → the fastest precision where bf16 is native (:func:`bf16_supported`):
    ``"bf16-true"`` for inference, ``"bf16"`` (autocast) for training; else ``"fp32"``. Other
    values must be one of :data:`PRECISIONS` (training: ``"fp32"`` or ``"bf16"``)."""
    allowed = PRECISIONS[:2] if training else PRECISIONS
    if precision == "auto":
        return ("bf16" if training else "bf16-true") if bf16_supported(device) else "fp32"
    if precision not in allowed:
        what = "training precision" if training else "precision"
        raise ValueError(f"{what} must be 'auto' or one of {', '.join(allowed)}, got {precision!r}")
    return precision


def optimize_for_inference(model: nn.Module, device: DeviceLike = None, *, precision: str = "fp32",
                           fold_bn: bool = True, channels_last: bool = True,
                           example_size: int = 128) -> nn.Module:
    """Eval mode, BN folded (:func:`fold_batchnorm`), moved to ``device``, channels-last, no
    gradients, and with ``precision="bf16-true"`` the weights cast to bf16. Modifies and returns
    ``model`` (deep-copy it first to keep the original). Run it with :func:`predict` or inside
    :func:`inference_context` with the same ``precision``."""
    device = resolve_device(device)
    precision = resolve_precision(precision, device)
    model = model.eval().to(device)
    if fold_bn:
        fold_batchnorm(model, torch.zeros(1, 3, example_size, example_size, device=device))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if precision == "bf16-true":
        model = model.to(torch.bfloat16)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


class CompiledModel(nn.Module):
    """``torch.compile`` (Inductor) of an optimised inference model (:func:`optimize_for_inference`)
    for one batch size: a shorter batch (the last of a patient) is padded with copies of its last
    input and the padding dropped from the output, and a longer one runs in chunks, so the graph
    compiles once, on the first call, whatever the number of slices. Weights are frozen into the
    graph as constants (Inductor's ``freezing``: constant folding, prepacked oneDNN weights on the
    CPU). Always in inference mode (a change of grad mode would compile again). Call it like the
    model, on inputs of the size, dtype and memory format it first saw; the model's output must
    be one tensor. ``backend``: ``torch.compile``'s (tests use ``"eager"``)."""

    def __init__(self, model: nn.Module, batch_size: int, backend: str = "inductor"):
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model, self.batch_size = model, int(batch_size)
        # the compiled function of self.model (set past nn.Module: it is not a submodule)
        object.__setattr__(self, "_run", torch.compile(model, backend=backend, dynamic=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = self.batch_size
        if not x.shape[0]:
            raise ValueError("CompiledModel got an empty batch")
        channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
        outputs = []
        with torch.inference_mode(), torch._inductor.config.patch(freezing=True):
            for start in range(0, x.shape[0], size):
                chunk = x[start:start + size]
                n = chunk.shape[0]
                if n < size:
                    chunk = torch.cat([chunk, chunk[-1:].expand(size - n, *chunk.shape[1:])])
                    if channels_last:
                        chunk = chunk.contiguous(memory_format=torch.channels_last)
                outputs.append(self._run(chunk)[:n])
        return torch.cat(outputs)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc <malloc.h>


def keep_freed_memory(limit_bytes: int = 1 << 30) -> bool:
    """Make glibc's malloc serve blocks of up to ``limit_bytes`` from the process heap and never
    hand freed heap memory back to the OS (``mallopt``: ``M_MMAP_THRESHOLD = limit_bytes``,
    ``M_TRIM_THRESHOLD = -1``, i.e. no trimming).

    CPU inference frees and allocates the same activation buffers (hundreds of MB per 512² JCS
    slice) again for every slice; by default each new buffer is fresh memory that page-faults
    in (~100,000 faults per slice), ~20% of the slice's time on this project's 2-core VM
    (``results/bench``). Process-wide and permanent: the heap then stays at its peak size.
    Returns False (and does nothing) where the C library is not glibc."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        limit = ctypes.c_int(min(int(limit_bytes), 2**31 - 1))
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, limit) and libc.mallopt(_M_TRIM_THRESHOLD, -1))
    except (OSError, AttributeError):
        return False


@contextlib.contextmanager
def inference_context(device: torch.device, precision: str = "fp32") -> Iterator[None]:
    """``torch.inference_mode`` plus bf16 autocast on ``device`` when ``precision="bf16"``."""
    with torch.inference_mode():
        if precision == "bf16":
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
                yield
        else:
            yield


def prepare_input(batch: torch.Tensor, device: torch.device, precision: str = "fp32",
                  channels_last: bool = True) -> torch.Tensor:
    """Move an N×C×H×W batch to ``device``, in bf16 for ``precision="bf16-true"``, channels-last."""
    batch = batch.to(device, non_blocking=True)
    if precision == "bf16-true":
        batch = batch.to(torch.bfloat16)
    if channels_last:
        batch = batch.contiguous(memory_format=torch.channels_last)
    return batch


def predict(model: nn.Module, inputs: torch.Tensor, batch_size: int = 8, *,
            device: DeviceLike = None, precision: str = "fp32", channels_last: bool = True,
            transform: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
            output: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
            streams: int = 1) -> torch.Tensor:
    """Run ``model`` over ``inputs`` (N×C×H×W on the CPU, or raw data that ``transform`` turns
    into that; a tensor already on ``device`` is not copied) in batches of ``batch_size`` and
    return the stacked outputs on the CPU (gathered on the device and copied back once, so a GPU
    never waits for the host between batches).
    ``transform`` runs on the device on each batch (e.g. resizing uint8 slices there: only
    8-bit data cross the bus); ``output`` post-processes each raw output on the device (e.g. a
    softmax or a threshold) before it is gathered; without it, outputs are float32. ``precision``
    as given to :func:`optimize_for_inference` (``"bf16-true"`` needs a model cast to bf16).
    ``streams``: batches in flight on the CPU, the torch threads split between them
    (:func:`jcs.streams.run_streams`; the same outputs as one stream); 1 on other devices."""
    from .streams import run_streams  # small module; keeps this one's imports light

    device = resolve_device(device)
    if streams > 1 and device.type != "cpu":
        raise ValueError(f"streams > 1 runs on the CPU only, not on {device}")
    if device.type == "cuda" and inputs.device.type == "cpu":
        inputs = inputs.pin_memory()  # asynchronous host-to-device copies

    def run(span) -> torch.Tensor:
        with inference_context(device, precision):  # thread-local: entered in each stream
            batch = inputs[span[0]:span[1]].to(device, non_blocking=True)
            if transform is not None:
                batch = transform(batch)
            result = model(prepare_input(batch, device, precision, channels_last))
            return result.float() if output is None else output(result)

    spans = [(start, start + batch_size) for start in range(0, inputs.shape[0], batch_size)]
    results = run_streams(run, spans, streams)
    if not results:
        return torch.empty(0)
    return torch.cat(results).cpu()  # one copy back (and one wait on a GPU) per call


def synchronize(device: torch.device) -> None:
    """Wait for queued CUDA work (for timings); a no-op on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
