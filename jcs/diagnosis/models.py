"""Loading the classifier and the segmenter of a diagnosis (from ``jcs train`` checkpoints)."""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import torch.nn as nn

import jcs
from jcs.models import create_model
from jcs.models.weights import load_checkpoint, read_checkpoint

from .config import PathLike


def load_model(model_name: str, checkpoint: Optional[PathLike]) -> Tuple[nn.Module, Dict[str, Any]]:
    """Build a model and load a checkpoint. A checkpoint written by :func:`jcs.engine.train`
    names its model, options and input size, which take precedence over ``model_name``; other
    checkpoints are loaded strictly into ``create_model(model_name)``. Without a checkpoint the
    model keeps its random initialisation (``info["random_init"] = True``)."""
    if checkpoint is None:
        return create_model(model_name).eval(), {"name": model_name, "checkpoint": None,
                                                 "random_init": True, "input_size": None}
    payload = read_checkpoint(checkpoint)
    name = payload.get("model_name") if isinstance(payload.get("model_name"), str) else model_name
    options = payload.get("model_options") if isinstance(payload.get("model_options"), dict) else {}
    options = {k: v for k, v in options.items() if k != "pretrained"}  # the checkpoint replaces them
    if name not in jcs.models.list_models():
        name, options = model_name, {}
    model = create_model(name, **options)
    load_checkpoint(checkpoint, model)
    return model.eval(), {"name": name, "checkpoint": str(checkpoint), "random_init": False,
                          "input_size": payload.get("input_size"), "options": options}
