"""Runs that two profiles share instead of training them twice.

``cpu-pretrained`` is the ``cpu`` recipe with packaged ImageNet initialisation. Where no packaged
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
   run of older code, data or model revision is not borrowed.

The borrowed file keeps the donor's metrics, timing, environment and checkpoint (the run that
happened) and takes this profile's ``profile``, ``config`` and ``config_hash``; ``borrowed_from``
names the donor profile, file (relative to the results folder), its sha256 and the reason. The
donor's PNG previews and saved Fig. 9 maps (``<stem>_predictions/``, ``<stem>_cams/``) are copied.
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


def borrow_run(config: Mapping[str, Any], profile: Profile, task: str,
               results_dir: PathLike, experiment: str, name: str,
               seed: int) -> Optional[Dict[str, Any]]:
    """Write the donor's finished run of the same computation as this profile's results file
    (its PNG previews copied beside it) and return it as written, with ``"path"``; None when the
    run is not shared or the donor has no current result (rule 4), so the caller trains it."""
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
    result = load_result(source)
    result.pop("path", None)
    target = result_path(results_dir, profile.name, experiment, name, seed)
    differing = sorted(k for k in set(donor_config["profile"]) | set(config["profile"])
                       if donor_config["profile"].get(k) != config["profile"].get(k))
    own = {**config, **ran}
    result.update(profile=profile.name, config=own, config_hash=config_hash(own))
    result["borrowed_from"] = {
        "profile": donor, "result": source.relative_to(results_dir).as_posix(),
        "sha256": _sha256(source),
        "reason": (f"the same computation: {result.get('model', name)} starts from random "
                   f"weights in both profiles (no packaged weights fit it), and the profiles "
                   f"differ only in {', '.join(differing)}, fields that do not act on a run from "
                   f"random weights"),
    }
    if result.get("predictions") and predictions_dir(source).is_dir():
        result["predictions"] = _copy_folder(predictions_dir(source), predictions_dir(target))
    cams = source.with_name(f"{source.stem}_cams")  # Fig. 9 maps, jcs.report.export_activation_maps
    if cams.is_dir():
        _copy_folder(cams, target.with_name(f"{target.stem}_cams"))
    write_result(target, result)
    return load_result(target)


def _copy_folder(source: Path, target: Path) -> str:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    return target.as_posix()
