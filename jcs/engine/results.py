"""Results files: one JSON per trained model (or patient-level sweep) at
``<results_dir>/<profile>/<experiment>/<name>.json`` (``<name>.seed<k>.json`` for seed k ≠ 0),
with PNG previews in ``<name>_predictions/`` beside it.

Schema ``jcs-result`` version 1 (``schema`` / ``schema_version`` keys). Every file has
:data:`COMMON_KEYS`; ``kind == "train"`` files and ``kind == "evaluation"`` files (released weights
evaluated without training, profile ``authors``: :mod:`jcs.engine.authors`) add
:data:`TRAIN_KEYS`, ``kind == "patients"`` files (Table IV) add :data:`PATIENT_KEYS`.

* ``metrics``: every metric of ``SegmentationMetrics.compute()`` or ``classification_metrics``
  (NaN written as ``null``); ``per_image``: one dict per test image (``name`` + metrics, or
  ``name``/``label``/``score``); ``curves``: 256-threshold curves (segmentation).
* ``loss``: ``epoch`` (mean training loss per epoch), ``iteration`` / ``iteration_loss``
  (subsampled), ``lr`` (per epoch, at its first iteration), ``val`` (classifier: per-epoch
  validation metrics), ``best_epoch``.
* ``config`` (the profile fields that can change the run, :func:`~jcs.engine.profiles.run_fields`,
  + model, options, dataset, seed) and ``config_hash`` (sha256 of ``config``); a finished run
  is recognised by its config (:func:`finished`).
* ``data``: dataset, split names, sha256 of every data file read, manifest check.
* ``timing``: ``train_s``, ``eval_s``, ``started``, ``finished`` (UTC ISO 8601) and (training)
  ``segments``: one per launch that trained the run (a fresh start, then each resume of
  ``checkpoint.pt``; under torchrun, all its processes) with its iterations, ``train_s`` and git
  state (``code``; None for stretches checkpointed before segments were recorded);
  ``memory``: peak bytes and what was measured; ``environment``: git SHA + dirty flag, package
  versions, device, and (training) ``distributed``: world size, backend, batch scope, global and
  per-process batch, ``sync_batchnorm`` and ``ranks`` (rank, host and device of every process);
  ``checkpoint``: the final weights (under ``runs/``, not committed).
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from .profiles import config_hash, run_fields

SCHEMA = "jcs-result"
SCHEMA_VERSION = 1
COMMON_KEYS = ("schema", "schema_version", "kind", "profile", "experiment", "name", "seed",
               "config", "config_hash", "metrics", "data", "timing", "memory", "environment")
TRAIN_KEYS = ("model", "task", "per_image", "loss", "checkpoint", "predictions", "init_from")
PATIENT_KEYS = ("classifier", "patients", "sweep", "thresholds")

PathLike = Union[str, Path]


def result_path(results_dir: PathLike, profile: str, experiment: str, name: str,
                seed: int = 0) -> Path:
    """``<results_dir>/<profile>/<experiment>/<name>.json`` (``<name>.seed<k>.json`` if k ≠ 0)."""
    stem = name if seed == 0 else f"{name}.seed{seed}"
    return Path(results_dir) / profile / experiment / f"{stem}.json"


def predictions_dir(path: PathLike) -> Path:
    """Folder of the PNG previews of the results file ``path``: ``<stem>_predictions``."""
    path = Path(path)
    return path.with_name(f"{path.stem}_predictions")


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN/inf → None, tuples → lists, Paths → str."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _clean(value.item())
    return value


def write_result(path: PathLike, result: Dict[str, Any]) -> Path:
    """Write ``result`` as indented JSON, atomically (tmp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(_clean(result), indent=1, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def validate_result(result: Dict[str, Any], origin: str = "result") -> None:
    """Raise ``ValueError`` naming ``origin`` when a key of the schema is missing."""
    if result.get("schema") != SCHEMA:
        raise ValueError(f"{origin} is not a {SCHEMA} file (schema={result.get('schema')!r})")
    if result.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"{origin} has schema_version {result.get('schema_version')!r}; this jcs "
                         f"reads version {SCHEMA_VERSION}: re-run the experiment")
    extra = PATIENT_KEYS if result.get("kind") == "patients" else TRAIN_KEYS
    missing = [k for k in COMMON_KEYS + extra if k not in result]
    if missing:
        raise ValueError(f"{origin} lacks key(s) {', '.join(missing)}")


def load_result(path: PathLike) -> Dict[str, Any]:
    """One results file as a dict (validated; ``"path"`` added)."""
    path = Path(path)
    result = json.loads(path.read_text(encoding="utf-8"))
    validate_result(result, str(path))
    result["path"] = str(path)
    return result


def load_results(results_dir: PathLike = "results", profile: Optional[str] = None,
                 experiment: Optional[str] = None) -> List[Dict[str, Any]]:
    """Every results file under ``results_dir`` (optionally one profile / experiment), sorted by
    (profile, experiment, name, seed). Plain dicts and lists: build DataFrames from them."""
    base = Path(results_dir)
    pattern = f"{profile or '*'}/{experiment or '*'}/*.json"
    results = []
    for path in sorted(base.glob(pattern)):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("schema") == SCHEMA:
            results.append(load_result(path))
    return sorted(results, key=lambda r: (r["profile"], r["experiment"], r["name"], r["seed"]))


def finished(path: PathLike, config: Dict[str, Any], kind: str) -> bool:
    """True when ``path`` holds a valid result of a run of ``kind`` (see
    :func:`~jcs.engine.profiles.run_fields`) whose config equals ``config`` in everything that
    can change that run (files written before configs were trimmed to those fields count too)."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        stored = dict(load_result(path)["config"])
        stored["profile"] = run_fields(stored["profile"], kind)
    except (ValueError, KeyError, TypeError):
        return False
    return config_hash(stored) == config_hash(config)
