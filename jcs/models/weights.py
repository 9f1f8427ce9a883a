"""Checkpoints: save a model (+ optimiser, + metadata) and load it back strictly, with
``torch.load(weights_only=True)`` (no pickled code is ever executed)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Union

import torch
import torch.nn as nn

PathLike = Union[str, Path]
_IGNORED = "num_batches_tracked"  # absent from FrozenBatchNorm2d, harmless either way
_SHOWN = 8


class CheckpointError(ValueError):
    """A checkpoint that does not fit the model; the message names the file and the keys."""


def save_checkpoint(path: PathLike, model: nn.Module, optimizer: Optional[torch.optim.Optimizer] = None,
                    **extra: Any) -> Path:
    """Write ``{"model": state_dict, "model_name": ..., "optimizer": ..., **extra}`` to ``path``
    (parent folders are created). ``extra`` values must be plain data (numbers, str, lists, dicts,
    tensors) so the file loads with ``weights_only=True``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload: Dict[str, Any] = {"model": model.state_dict(),
                               "model_name": getattr(model, "model_name", type(model).__name__)}
    if optimizer is not None:
        payload["optimizer"] = optimizer.state_dict()
    payload.update(extra)
    torch.save(payload, path)
    return path


def read_checkpoint(path: PathLike) -> Dict[str, Any]:
    """The raw content of a checkpoint file (``weights_only=True``, on the CPU)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found; check the path or train the model first")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors come in many types
        raise CheckpointError(f"{path} is not a readable torch checkpoint: {exc}") from exc


def state_dict_of(payload: Dict[str, Any]) -> Dict[str, torch.Tensor]:
    """The model weights inside a checkpoint: ours (``"model"``), the common ``"state_dict"``
    wrapping, or a bare state dict; a ``module.`` (DataParallel) prefix is removed."""
    for key in ("model", "state_dict"):
        if isinstance(payload.get(key), dict):
            payload = payload[key]
            break
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in payload.items()}


def read_state_dict(path: PathLike) -> Dict[str, torch.Tensor]:
    """``state_dict_of(read_checkpoint(path))``."""
    return state_dict_of(read_checkpoint(path))


def short_list(keys: Iterable[str]) -> str:
    """The first few keys, comma-separated, with a count of the rest (for error messages)."""
    keys = list(keys)
    more = f" … (+{len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else ""
    return ", ".join(keys[:_SHOWN]) + more


def mismatch_problems(missing: List[str], unexpected: List[str], shapes: List[str],
                      noun: str = "keys") -> List[str]:
    """The non-empty parts of a state-dict mismatch as phrases ("2 missing keys: a, b", ...)."""
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing {noun}: {short_list(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected {noun}: {short_list(unexpected)}")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatches: {short_list(shapes)}")
    return problems


def check_state_dict(model: nn.Module, state: Dict[str, torch.Tensor], origin: str,
                     strict: bool = True) -> None:
    """Raise :class:`CheckpointError` naming ``origin`` if ``state`` lacks some of the model's
    tensors or has unexpected ones (``strict``), or if any shared tensor has another shape."""
    own = {k: v for k, v in model.state_dict().items() if not k.endswith(_IGNORED)}
    given = {k: v for k, v in state.items() if not k.endswith(_IGNORED)}
    missing = [k for k in own if k not in given] if strict else []
    unexpected = [k for k in given if k not in own] if strict else []
    shapes = [f"{k} (file {tuple(given[k].shape)}, model {tuple(v.shape)})"
              for k, v in own.items() if k in given and given[k].shape != v.shape]
    problems = mismatch_problems(missing, unexpected, shapes)
    if problems:
        raise CheckpointError(
            f"{origin} does not fit {type(model).__name__}: " + "; ".join(problems)
            + ". Was it saved from another model or with other options (e.g. norm=)?"
        )


def load_checkpoint(path: PathLike, model: Optional[nn.Module] = None, strict: bool = True) -> Dict[str, Any]:
    """Read a checkpoint; with ``model``, load its weights into it (keys and shapes checked first,
    see :func:`check_state_dict`). Returns the whole payload (epoch, optimizer state, ...).
    ``load_checkpoint(model, path)`` (the order in ARCHITECTURE.md) is accepted too."""
    if isinstance(path, nn.Module):
        path, model = model, path
    payload = read_checkpoint(path)
    if model is not None:
        state = state_dict_of(payload)
        check_state_dict(model, state, str(path), strict=strict)
        model.load_state_dict(state, strict=False)
    return payload
