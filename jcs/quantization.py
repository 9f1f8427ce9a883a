"""int8 CPU inference of a segmentation model: post-training static quantisation (PT2E) and
``torch.compile``.

The model (BN folded, channels-last) is exported with ``torch.export``, quantised with torchao's
``X86InductorQuantizer`` (int8 activations per tensor, int8 weights per output channel, scales
calibrated on a few real slices) and saved as an ``ExportedProgram`` file (``.pt2``) with its
metadata. :func:`load_int8` reads it back as an :class:`Int8Segmenter`, which Inductor compiles
(constants frozen, oneDNN int8 convolutions, non-quantised ops in bf16) on its first call.

Why: on this project's 2-core AMX CPU the oneDNN int8 convolutions of jcs-seg run 2–3x faster than
bf16 (``results/bench``); on a 2-core AVX2-only AMD EPYC (no native bf16) int8-mixed-fp32 runs a
512² slice 1.9–2.0x faster than fp32 (3.81 vs 7.22 s with 1 thread, 2.13 vs 4.22 s with 2). The quantised model is not the trained one: ``jcs quantize`` measures
its Dice against the bf16 model on the test split (``results/cpu/int8``). CPU only (x86 oneDNN);
needs the ``torchao`` package (``pip install torchao``). The file stores the graph, not the
compiled code: compiling takes ~40 s at 512² the first time in a process (Inductor caches its work
on disk, so later processes are faster).
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Union

import torch
import torch.nn as nn

from jcs.inference import CompiledModel, bf16_supported, fold_batchnorm

PathLike = Union[str, Path]
METADATA_FILE = "jcs.json"
FORMAT = "jcs-int8-segmenter/1"


def _torchao_pt2e():
    try:
        from torchao.quantization.pt2e import quantizer as _  # noqa: F401  (registers the ops)
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86
    except ImportError as error:
        raise ImportError("int8 quantisation needs the torchao package: `pip install torchao` "
                          "(it is in requirements.txt; `make env` installs it)") from error
    return prepare_pt2e, convert_pt2e, x86


def torchao_version() -> Optional[str]:
    """The installed torchao's version, or None without it."""
    try:
        import torchao
    except ImportError:
        return None
    return torchao.__version__


def int8_available() -> bool:
    """Whether int8 segmenters can be made and run here (torchao installed, oneDNN present)."""
    return torchao_version() is not None and torch.backends.mkldnn.is_available()


def vnni_available() -> bool:
    """Whether this CPU has an int8 dot-product instruction (AVX512-VNNI, AVX-VNNI or AMX-INT8).
    Without one, oneDNN sums pairs of uint8 × int8 products in int16 (``vpmaddubsw``), which
    saturates for full-range activations: such CPUs need ``reduce_range`` (7-bit activations)."""
    caps = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    return any(caps.get(flag) for flag in ("avx512_vnni", "avx_vnni", "amx_int8", "amx_tile"))


def _check_cpu() -> None:
    if not torch.backends.mkldnn.is_available():
        raise RuntimeError("int8 inference needs PyTorch's oneDNN (x86 CPU) backend, which this "
                           "build lacks; use the .pt checkpoint with --precision bf16-true instead")


def _as_input(x: torch.Tensor) -> torch.Tensor:
    return x.float().contiguous(memory_format=torch.channels_last)


def quantize_int8(model: nn.Module, calibration: Iterable[torch.Tensor], size: int,
                  progress: Optional[Any] = None,
                  reduce_range: Optional[bool] = None) -> torch.export.ExportedProgram:
    """Post-training static int8 quantisation of ``model`` for x86 CPUs (a copy; the model is
    left untouched). ``calibration``: 1×3×``size``×``size`` network inputs (normalised slices)
    whose activation ranges set the scales; 8–16 real slices are enough. ``progress``: an
    optional callable run after each calibration slice. Returns the quantised program (batch 1,
    ``size``², channels-last), to save with :func:`save_int8`. ``reduce_range``: 7-bit
    activations (0–127), which CPUs without VNNI need (:func:`vnni_available`; torchao's
    advice); default: True exactly where this CPU lacks VNNI. Measured on an AVX2-only AMD EPYC:
    the cpu-pretrained jcs-seg lost 0.111 Dice on the MedSeg test split with full-range
    activations (0.709 → 0.598)."""
    prepare_pt2e, convert_pt2e, x86 = _torchao_pt2e()
    _check_cpu()
    model = copy.deepcopy(model).cpu().eval()
    fold_batchnorm(model, torch.zeros(1, 3, min(size, 128), min(size, 128)))
    model = model.to(memory_format=torch.channels_last)
    example = _as_input(torch.zeros(1, 3, size, size))
    with torch.no_grad():
        graph = torch.export.export(model, (example,)).module()
        quantizer = x86.X86InductorQuantizer()
        if reduce_range is None:
            reduce_range = not vnni_available()
        quantizer.set_global(x86.get_default_x86_inductor_quantization_config(reduce_range=reduce_range))
        prepared = prepare_pt2e(graph, quantizer)
        seen = 0
        for x in calibration:
            if tuple(x.shape) != (1, 3, size, size):
                raise ValueError(f"calibration inputs must be 1×3×{size}×{size}, got {tuple(x.shape)}")
            prepared(_as_input(x))
            seen += 1
            if progress is not None:
                progress()
        if not seen:
            raise ValueError("no calibration slices: int8 scales need at least one real slice")
        converted = convert_pt2e(prepared)
        return torch.export.export(converted, (example,))


def save_int8(program: torch.export.ExportedProgram, path: PathLike, metadata: Dict[str, Any]) -> Path:
    """Write ``program`` to ``path`` (``.pt2``) with ``metadata`` (JSON; must include
    ``input_size``) stored inside the file."""
    if "input_size" not in metadata:
        raise ValueError("metadata must give the input_size the program was exported at")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = dict(metadata, format=FORMAT)
    torch.export.save(program, path, extra_files={METADATA_FILE: json.dumps(payload)})
    return path


def is_int8_file(path: Optional[PathLike]) -> bool:
    """Whether ``path`` names a quantised program (``.pt2``) rather than a ``.pt`` checkpoint."""
    return path is not None and Path(path).suffix == ".pt2"


class Int8Segmenter(nn.Module):
    """A quantised segmenter read by :func:`load_int8`: call it like the original model on
    N×3×S×S inputs (any dtype and layout; N slices run one at a time) and get N×1×S×S float32
    probabilities (inference tensors: no gradients). Where bf16 is native (AVX-512 BF16 / AMX:
    :func:`jcs.inference.bf16_supported`) it runs under bf16 autocast (the non-quantised ops in
    bf16: Inductor's int8-mixed-bf16 recipe); elsewhere (e.g. AVX2-only CPUs, where bf16 is
    emulated and several times slower than fp32) in int8-mixed-fp32. ``mixed``: force "bf16" or
    "fp32". CPU only."""

    def __init__(self, program: torch.export.ExportedProgram, metadata: Dict[str, Any],
                 compile: bool = True, mixed: Optional[str] = None):
        super().__init__()
        self.metadata = metadata
        self.input_size = int(metadata["input_size"])
        if mixed is None:
            mixed = "bf16" if bf16_supported(torch.device("cpu")) else "fp32"
        if mixed not in ("bf16", "fp32"):
            raise ValueError(f"mixed must be 'bf16' or 'fp32', got {mixed!r}")
        self.mixed = mixed
        # one slice per call, frozen weights (CompiledModel); "eager": the same without Inductor.
        # Not a submodule: .to()/.eval() of the wrapper must not touch the frozen graph
        object.__setattr__(self, "_run", CompiledModel(program.module(), 1,
                                                       backend="inductor" if compile else "eager"))

    def _apply(self, fn, recurse=True):
        probe = fn(torch.zeros(1))
        if probe.device.type != "cpu":
            raise RuntimeError("an int8 segmenter runs on the CPU only; on CUDA use the .pt "
                               "checkpoint it was made from")
        return self  # dtype / memory-format casts do not apply: inputs are converted per call

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = self.input_size
        if x.dim() != 4 or tuple(x.shape[1:]) != (3, size, size):
            raise ValueError(f"this int8 segmenter was exported for N×3×{size}×{size} inputs, got "
                             f"{tuple(x.shape)}; resize the slices to {size}² (its --seg-size)")
        # freezing (weights as constants, CompiledModel) is what lets Inductor prepack the int8
        # weights; the non-quantised ops run in bf16 under autocast where bf16 is native
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16,
                                                    enabled=self.mixed == "bf16"):
            return self._run(_as_input(x)).float()


def load_int8(path: PathLike, compile: bool = True, mixed: Optional[str] = None) -> Int8Segmenter:
    """Read a program written by :func:`save_int8` (compiled on its first call when
    ``compile``; ``mixed``: see :class:`Int8Segmenter`)."""
    _torchao_pt2e()
    _check_cpu()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such int8 program; make one with `jcs quantize`")
    extra = {METADATA_FILE: ""}
    try:
        program = torch.export.load(path, extra_files=extra)
    except Exception as error:  # a truncated or foreign zip file
        raise ValueError(f"{path} is not a readable torch.export program ({error}); "
                         "make it again with `jcs quantize`") from error
    try:
        metadata = json.loads(extra[METADATA_FILE])
    except json.JSONDecodeError:
        metadata = {}
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{path} was not written by `jcs quantize` (no {FORMAT} metadata)")
    return Int8Segmenter(program, metadata, compile=compile, mixed=mixed)
