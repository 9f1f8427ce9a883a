"""Runs that two profiles share instead of training them twice.

``cpu-pretrained`` is the ``cpu`` recipe with packaged initialisation (pretrained classifiers
fine-tune with a recipe of their own). Where no packaged
weights fit a model (U-Net has no backbone; no package ships Res2Net-101, so ``jcs-classifier``
and ``jcs-classifier-pixel`` start from random weights in both profiles), a run of
``cpu-pretrained`` is the same computation as the run of ``cpu`` with the same seed: same model
options, data, recipe, seed and precision. :func:`borrow_run` then writes the ``cpu`` results file
under ``cpu-pretrained``, marked ``borrowed_from``, instead of spending the CPU hours again.

A run is shared only when all of these hold (:func:`shared_config`):

1. its model options hold no ``pretrained`` (random initialisation in this profile);
2. it is not initialised from trained parts (``jcs-joint``: its parts differ between profiles);
3. the two profiles' run fields (:func:`~jcs.engine.profiles.run_fields`) differ only in
   :data:`INERT_FIELDS`, fields that cannot change a randomly initialised run;
4. the donor's results file is finished with exactly that configuration
   (:func:`~jcs.engine.results.finished`), apart from what the machine resolved
   (:data:`MACHINE_FIELDS`: bf16 or fp32), which the borrowed file keeps from the donor: a donor
   run of another model revision, dataset, recipe or seed is not borrowed;
5. for a classifier, the donor's weights are in ``runs_dir`` (Table IV and ``jcs-joint`` load
   them).

The borrowed file keeps the donor's metrics, timing and environment (the run that happened),
points ``checkpoint`` at the donor's weights, and takes this profile's ``profile``, ``config``
and ``config_hash``; ``borrowed_from`` names the donor profile, file (relative to the results
folder), its sha256 and the reason. The donor's PNG previews and saved Fig. 9 maps
(``<stem>_predictions/``, ``<stem>_cams/``) are copied. A borrowed file stands only while the
donor file keeps that sha256 (:func:`borrowed_is_current`): a retrained donor is borrowed again.
"""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

from .profiles import Profile, config_hash, get_profile, run_fields
from .results import finished, load_result, predictions_dir, result_path, write_result

PathLike = Union[str, Path]

#: profile → the profile whose from-scratch runs it shares.
DONORS: Dict[str, str] = {"cpu-pretrained": "cpu"}

#: run fields that cannot change a randomly initialised run: the profile's name, where it takes
#: ImageNet weights from (unused when the model takes none) and the fine-tuning recipe (used only
#: for classifiers that start from ImageNet weights).
INERT_FIELDS = ("name", "pretrained", "cls_finetune")

#: config fields the machine resolves, not the profile (``precision="auto"`` is bf16 on a CPU with
#: AMX, fp32 without): a borrowed run keeps the donor run's values, so its file says how it ran.
MACHINE_FIELDS = ("precision", "device_type")


def donor_profile(profile: Profile) -> Optional[Profile]:
    """The profile whose from-scratch runs ``profile`` shares (:data:`DONORS`), or None."""
    name = DONORS.get(profile.name)
    return get_profile(name) if name else None


def _active(fields: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in fields.items() if k not in INERT_FIELDS}


def shared_config(config: Mapping[str, Any], profile: Profile, task: str) -> Optional[Dict[str, Any]]:
    """The config the donor of ``profile`` gives the same run, or None when the run is not shared
    (rules 1–3 of the module docstring). ``config``: the run's config as
    :func:`~jcs.engine.train.train` builds it; ``task``: "segmentation" or "classification"."""
    donor = donor_profile(profile)
    if donor is None or config.get("initialised") or "pretrained" in config.get("model_options", {}):
        return None
    donor_fields = run_fields(donor.to_dict(), task)
    if _active(donor_fields) != _active(config["profile"]):
        return None
    return {**config, "profile": donor_fields}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _side_folders(path: Path) -> Dict[str, Path]:
    """The folders beside a results file that belong to it: PNG previews and saved Fig. 9 maps
    (``jcs.report.export_activation_maps``)."""
    return {"predictions": predictions_dir(path), "cams": path.with_name(f"{path.stem}_cams")}


def borrowed_is_current(path: PathLike, config: Mapping[str, Any], task: str,
                        results_dir: PathLike) -> bool:
    """True when ``path`` holds a borrowed result that still stands for ``config``: the same
    configuration apart from :data:`MACHINE_FIELDS` (kept from the donor run), and the donor file
    it names unchanged (its sha256). False for a missing file or one that is not borrowed."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        stored = load_result(path)
    except ValueError:
        return False
    block = stored.get("borrowed_from")
    if not block:
        return False
    donor_file = Path(results_dir) / block.get("result", "")
    if not donor_file.is_file() or _sha256(donor_file) != block.get("sha256"):
        return False
    ran = {k: (stored.get("config") or {}).get(k) for k in MACHINE_FIELDS}
    return finished(path, {**config, **ran}, task)


def borrow_run(config: Mapping[str, Any], profile: Profile, task: str,
               results_dir: PathLike, experiment: str, name: str, seed: int,
               runs_dir: PathLike = "runs") -> Optional[Dict[str, Any]]:
    """Write the donor's finished run of the same computation as this profile's results file
    (its PNG previews and saved maps copied beside it) and return it as written, with ``"path"``
    and ``"borrowed_now": True`` (not in the file); None when the run is not shared, the donor
    has no current result (rule 4), or a classifier donor's weights are not in ``runs_dir``
    (Table IV and ``jcs-joint`` need them), so the caller trains it."""
    if config.get("dataset") == "custom":
        return None
    donor_config = shared_config(config, profile, task)
    if donor_config is None:
        return None
    donor = DONORS[profile.name]
    source = result_path(results_dir, donor, experiment, name, seed)
    if not source.is_file():
        return None
    try:
        ran = {k: load_result(source)["config"].get(k) for k in MACHINE_FIELDS}
    except (ValueError, KeyError, TypeError):
        return None
    donor_config.update(ran)
    if not finished(source, donor_config, task):
        return None
    weights = Path(runs_dir) / donor / experiment / name / f"seed{seed}" / "model.pt"
    if task == "classification" and not weights.is_file():
        return None
    result = load_result(source)
    result.pop("path", None)
    donor_hash = result.get("config_hash")
    target = result_path(results_dir, profile.name, experiment, name, seed)
    differing = sorted(k for k in set(donor_config["profile"]) | set(config["profile"])
                       if donor_config["profile"].get(k) != config["profile"].get(k))
    own = {**config, **ran}
    result.update(profile=profile.name, config=own, config_hash=config_hash(own))
    if weights.is_file():
        result["checkpoint"] = weights.as_posix()
    result["borrowed_from"] = {
        "profile": donor, "result": source.relative_to(results_dir).as_posix(),
        "sha256": _sha256(source), "config_hash": donor_hash,  # the donor's training
        "reason": (f"the same computation: {result.get('model', name)} starts from random "
                   f"weights in both profiles, and the profiles differ only in "
                   f"{', '.join(differing)}, fields that do not act on a run from random weights"),
    }
    for kind, folder in _side_folders(source).items():
        copy = _side_folders(target)[kind]
        if copy.exists():
            shutil.rmtree(copy)
        if folder.is_dir():
            shutil.copytree(folder, copy)
            if kind == "predictions":
                result["predictions"] = copy.as_posix()
        elif kind == "predictions":
            result["predictions"] = None
    write_result(target, result)
    return {**load_result(target), "borrowed_now": True}
