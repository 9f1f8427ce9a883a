"""Model registry: ``create_model(name)`` and ``list_models()`` (in the style of
segmentation_models.pytorch). Model modules register builders with :func:`register_model`."""
from __future__ import annotations

import difflib
import inspect
from typing import Callable, Dict

import torch.nn as nn

_REGISTRY: Dict[str, Callable[..., nn.Module]] = {}
_DESCRIPTIONS: Dict[str, str] = {}


def register_model(name: str, description: str = "") -> Callable:
    """Decorator registering ``builder(**options) -> nn.Module`` under ``name``."""

    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = builder
        _DESCRIPTIONS[name] = description or (builder.__doc__ or "").strip().split("\n")[0]
        return builder

    return decorator


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`, sorted."""
    return sorted(_REGISTRY)


def describe_models() -> Dict[str, str]:
    """``{name: one-line description}`` for every registered model."""
    return {name: _DESCRIPTIONS[name] for name in list_models()}


def _builder(name: str) -> Callable[..., nn.Module]:
    """The builder registered as ``name``; an unknown name lists the valid ones (KeyError)."""
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise KeyError(
            f"unknown model {name!r}.{hint} Valid names: {', '.join(list_models())}"
        )
    return _REGISTRY[name]


def model_arguments(name: str) -> list[str]:
    """Keyword options :func:`create_model` accepts for ``name`` (e.g. ``norm``, ``pretrained``)."""
    return list(inspect.signature(_builder(name)).parameters)


def create_model(name: str, **options) -> nn.Module:
    """Build the model registered as ``name``; an unknown name lists the valid ones."""
    model = _builder(name)(**options)
    model.model_name = name
    return model
