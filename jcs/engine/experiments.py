"""The experiments of the paper's Tables IV–VII and Fig. 9, and ``reproduce`` running them in
order for a profile.

Order (each model is trained once; the notebooks assemble the tables from the experiments):

1. ``classification``: each classifier of the profile (``classifier`` and ``extra_classifiers``)
   with image labels only (``<classifier>``) and with pixel supervision (``<classifier>-pixel``,
   MedSeg TRAIN masks + activation-map loss; paper Fig. 9).
2. ``table5``: ``jcs-seg-base``, ``jcs-seg-efm``, ``jcs-seg-aff``, ``jcs-seg`` (Table V; ``jcs-seg``
   is also row 1 of Table VI).
3. ``table6``: ``jcs-joint`` initialised from the trained classifier (``Profile.joint_classifier``)
   and the trained ``jcs-seg``, then trained with the same schedule (jcs_official.md §4.3).
4. ``table7``: ``unet``, ``dss``, ``poolnet``, ``egnet`` (JCS = the table6 row).
5. ``table4``: patient-level diagnosis on the COVID-CT-MD patients (none seen in training) with
   each trained classifier: slice probabilities per patient and sensitivity / specificity for
   the thresholds T of Table IV, scaled to the slice thickness (see :func:`scaled_thresholds`).
"""
from __future__ import annotations

import statistics
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
from tqdm.auto import tqdm

from torch.utils.data import Subset

from jcs.data import data_root as default_data_root
from jcs.data.ctmd_labels import covid_slice_labels, slice_groups
from jcs.metrics import patient_threshold_scale, threshold_sweep

from . import distributed as dd
from .cohort import table4_cohort, patient_slices
from .datasets import evenly_spaced
from .evaluate import classification_summary, classifier_scores, load_trained_model
from .profiles import EVALUATION_ONLY, Profile, config_hash, get_profile, run_fields
from .provenance import (code_state, device_info, hash_files, now_iso, package_versions,
                         peak_memory, reset_peak_memory)
from .results import SCHEMA, SCHEMA_VERSION, finished, load_result, result_path, write_result
from .runtime import prepare_model, quiet_default, resolve_precision, select_device
from .train import run_paths, train

PathLike = Union[str, Path]
SEGMENTATION_ABLATION = ("jcs-seg-base", "jcs-seg-efm", "jcs-seg-aff", "jcs-seg")
COMPARISON = ("unet", "dss", "poolnet", "egnet")
# The COVID-CT-MD sample patients: a Table IV cohort of only these keeps the config (and hash) of
# the runs made before the PyRadiomics volumes joined it.
CTMD_IDS = ["P001", "P002", "cap001", "cap002", "normal001", "normal002"]


@dataclass(frozen=True)
class Step:
    """One unit of work of :func:`reproduce`: train ``model`` as ``experiment/name``, or (kind
    ``"patients"``) run the patient-level sweep with the classifier result ``name``."""

    experiment: str
    name: str
    model: str
    kind: str = "train"
    pixel_supervised: bool = False
    init_joint: bool = False


def plan(profile: Profile) -> List[Step]:
    """Every step of the reproduction, in order (see the module docstring)."""
    classifiers = (profile.classifier, *profile.extra_classifiers)
    steps = [step for cls in classifiers
             for step in (Step("classification", cls, cls),
                          Step("classification", f"{cls}-pixel", cls, pixel_supervised=True))]
    steps += [Step("table5", m, m) for m in SEGMENTATION_ABLATION]
    steps += [Step("table6", "jcs-joint", "jcs-joint", init_joint=True)]
    steps += [Step("table7", m, m) for m in COMPARISON]
    steps += [Step("table4", name, cls, kind="patients")
              for cls in classifiers for name in (cls, f"{cls}-pixel")]
    return steps


def _selected(step: Step, only: Optional[Sequence[str]]) -> bool:
    if not only:
        return True
    keys = {step.experiment, step.name, f"{step.experiment}/{step.name}"}
    return bool(keys & set(only))


def _trained_weights(profile: Profile, results_dir: PathLike, runs_dir: PathLike, experiment: str,
                     name: str, seed: int) -> Path:
    """The final weights of a run: its own ``model.pt``, or, for a run borrowed from another
    profile (:mod:`jcs.engine.borrow`), the checkpoint its results file names."""
    paths = run_paths(results_dir, runs_dir, profile.name, experiment, name, seed)
    if not paths.model.is_file() and paths.result.is_file():
        result = load_result(paths.result)
        if result.get("borrowed_from") and result.get("checkpoint"):
            return Path(result["checkpoint"])
    return paths.model


def _joint_parts(profile: Profile, results_dir: PathLike, runs_dir: PathLike,
                 seed: int) -> Optional[Dict[str, Path]]:
    """``{"classifier", "segmentation"}`` weights of this profile/seed, or None (with a warning)
    when one is missing or the classifier is not the Res2Net-101 ``jcs-classifier`` whose
    backbone the joint model holds (the joint model then trains from its initial weights)."""
    if profile.classifier != "jcs-classifier":
        warnings.warn(f"jcs-joint holds a Res2Net-101; classifier {profile.classifier!r} cannot "
                      "initialise it, training it from its initial weights", stacklevel=3)
        return None
    cls = profile.classifier + ("-pixel" if profile.joint_classifier == "pixel" else "")
    steps = {"classifier": ("classification", cls), "segmentation": ("table5", "jcs-seg")}
    parts = {part: _trained_weights(profile, results_dir, runs_dir, experiment, name, seed)
             for part, (experiment, name) in steps.items()}
    missing = [part for part, path in parts.items() if not path.is_file()]
    if missing:
        # checkpoints live under runs/, which a fresh clone does not have: say how to make them
        only = " ".join("/".join(steps[part]) for part in missing)
        warnings.warn(f"jcs-joint: trained parts not found ({', '.join(str(parts[m]) for m in missing)}); "
                      f"training it from its initial weights instead. To initialise it as the "
                      f"paper does, train them first: jcs reproduce --profile {profile.name} "
                      f"--seeds {seed} --only {only} --force", stacklevel=3)
        return None
    return parts


def scaled_thresholds(profile: Profile, patients: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """Table IV thresholds carried to each patient by the rule of :func:`jcs.diagnosis.diagnose`
    (:func:`jcs.metrics.patient_threshold_scale`, ``"auto"``): the paper counts positive slices of
    COVID-CS scans with ~1 mm slices (``profile.paper_slice_mm``); COVID-CT-MD has 2 mm slices, so
    the same lesion extent along z covers half as many slices and T_eff = T · 1 mm / 2 mm (by
    slice count, T · S / 300, for a patient without spacing). ``patients``: dicts with ``id``,
    ``spacing`` (z first, or None) and ``n_slices``. ``scaled``: T × the median factor, for
    tables; the sweep uses each patient's own factor (``per_patient``)."""
    per_patient = {}
    for patient in patients:
        spacing = patient["spacing"][0] if patient["spacing"] else None
        factor, basis = patient_threshold_scale(spacing_mm=spacing,
                                                n_slices=patient["n_slices"],
                                                reference_slice_mm=profile.paper_slice_mm)
        per_patient[patient["id"]] = {"scale": factor, "basis": basis, "slice_mm": spacing}
    scale = statistics.median(v["scale"] for v in per_patient.values())
    spacings = [v["slice_mm"] for v in per_patient.values() if v["slice_mm"]]
    return {"paper": list(profile.patient_thresholds), "paper_slice_mm": profile.paper_slice_mm,
            "slice_mm": statistics.median(spacings) if spacings else None, "rule": "auto",
            "scale": scale, "scaled": [round(t * scale, 4) for t in profile.patient_thresholds],
            "per_patient": per_patient}


def patient_sweep(classifier_result: PathLike, profile: Union[str, Profile] = "smoke",
                  overrides: Optional[Dict[str, Any]] = None, results_dir: PathLike = "results",
                  seed: int = 0, quiet: Optional[bool] = None, data_root: Optional[PathLike] = None,
                  skip_finished: bool = False) -> Dict[str, Any]:
    """Table IV on the COVID-CT-MD patients with a trained classifier (its results file).

    Every slice of every patient is classified (P(COVID) ≥ 0.5 = positive slice); a patient is
    positive when more than T slices are. Writes ``<results>/<profile>/table4/<name>.json`` with
    the slice probabilities of each patient, the sweep over the scaled thresholds and over every
    integer T, slice-level metrics where slice labels exist, and the per-patient run time."""
    prof = get_profile(profile, overrides)
    cls = load_result(classifier_result)
    name = cls["name"]
    path = result_path(results_dir, prof.name, "table4", name, seed)
    config = {"kind": "patients", "profile": run_fields(prof.to_dict(), "patients"),
              "classifier": name, "classifier_config_hash": cls["config_hash"], "seed": seed}
    cohort, cohort_notes = table4_cohort(data_root)
    cohort_ids = [p["id"] for p in cohort]
    if cohort_ids != CTMD_IDS:  # files written before the cohort grew keep their hash
        config["cohort"] = cohort_ids
    chash = config_hash(config)
    if skip_finished and finished(path, config, "patients"):
        return load_result(path)
    started = now_iso()
    device = select_device(prof.device)
    precision = resolve_precision(prof.precision, device)
    reset_peak_memory(device)
    model, info = load_trained_model(cls["checkpoint"])
    model = prepare_model(model, device, prof.channels_last)
    size = info["input_size"]
    patients, files = _classify_patients(model, cohort, size, prof, device, precision,
                                         quiet_default(quiet))
    thresholds = scaled_thresholds(prof, cohort)  # volume patients' spacing known once read
    scales = {pid: v["scale"] for pid, v in thresholds["per_patient"].items()}
    by_id = {p["id"]: (p["label"], [int(s >= 0.5) for s in p["slice_scores"]]) for p in patients}
    max_slices = max(p["n_slices"] for p in patients)
    slice_metrics = patient_slice_metrics(patients)
    sweep = threshold_sweep(by_id, thresholds["paper"], scales)
    hashed = hash_files(files, root=default_data_root() if data_root is None else data_root)
    result = {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "kind": "patients",
        "profile": prof.name, "experiment": "table4", "name": name, "seed": seed,
        "config": config, "config_hash": chash,
        "classifier": {"name": name, "model": cls["model"], "result": str(classifier_result),
                       "checkpoint": cls["checkpoint"], "input_size": size},
        "thresholds": thresholds,
        "patients": patients,
        "sweep": sweep,
        "sweep_all": threshold_sweep(by_id, range(0, max_slices + 1)),
        "metrics": {"slice": slice_metrics,
                    "patient": {str(row["threshold"]): row for row in sweep},
                    "seconds_per_patient": round(float(np.mean([p["seconds"] for p in patients])), 3)},
        "cohort_notes": cohort_notes,
        "data": {"dataset": "+".join(dict.fromkeys(p["source"] for p in patients)),
                 "patients": [p["id"] for p in patients],
                 "files": hashed["files"], "digest": hashed["digest"]},
        "timing": {"eval_s": round(sum(p["seconds"] for p in patients), 3), "started": started,
                   "finished": now_iso()},
        "memory": peak_memory(device),
        "environment": {"git": code_state(), "versions": package_versions(),
                        "device": device_info(device), "precision": precision,
                        "channels_last": prof.channels_last},
    }
    write_result(path, result)
    return result


def patient_slice_metrics(patients: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Slice-level metrics of Table IV patients (dicts with ``diagnosis``, ``slice_labels`` (0/1
    infection flags or None), ``slice_scores``): :func:`~jcs.metrics.classification_metrics` with
    label 1 = COVID-19 infection (:mod:`jcs.data.ctmd_labels`: CAP slices are negatives) over the
    patients with slice labels and every slice of the normal ones, plus ``"by_group"``
    (:func:`~jcs.metrics.compute_group_aucs`), rounded like every classifier test
    (:func:`~jcs.engine.evaluate.classification_summary`). ``{}`` when no patient qualifies."""
    groups: List[str] = []
    scores: List[float] = []
    for p in patients:
        if p["slice_labels"] is None and p["diagnosis"] != "Normal":
            continue
        groups += slice_groups(p["diagnosis"], p["slice_labels"], len(p["slice_scores"]))
        scores += list(p["slice_scores"])
    if not groups:
        return {}
    summary = classification_summary(covid_slice_labels(groups), scores, groups)
    return {**summary["metrics"], "by_group": summary["by_group"]}


def _classify_patients(model, cohort: List[Dict[str, Any]], size: int, prof: Profile,
                       device, precision: str, quiet: bool) -> tuple[List[Dict[str, Any]], List[Path]]:
    """Slice scores of every patient of :func:`~jcs.engine.cohort.table4_cohort`
    (``prof.patient_max_slices`` evenly spaced slices each, all by default) and the files read."""
    patients, files = [], []
    for patient in tqdm(cohort, desc="patients", disable=quiet):
        tic = time.perf_counter()
        slices = patient_slices(patient, size)
        keep = evenly_spaced(len(slices), prof.patient_max_slices)
        keep = keep if keep is not None else list(range(len(slices)))
        labels = patient["slice_labels"]
        scores = classifier_scores(model, Subset(slices, keep), device=device,
                                   precision=precision, channels_last=prof.channels_last,
                                   batch_size=prof.eval_batch_size)
        patients.append({
            "id": patient["id"], "diagnosis": patient["diagnosis"], "label": patient["label"],
            "source": patient["source"], "n_slices": len(scores),
            "spacing_mm": list(patient["spacing"]) if patient["spacing"] else None,
            "n_positive": sum(int(s >= 0.5) for s in scores),
            "seconds": round(time.perf_counter() - tic, 3),
            "slice_scores": [round(s, 5) for s in scores],
            "slice_labels": None if labels is None else [int(labels[i]) for i in keep],
            "slice_index": keep})
        files += ([patient["files"][i] for i in keep] if "volume" not in patient
                  else list(patient["files"]))
    return patients, files


def _status(result: Dict[str, Any]) -> str:
    if result.get("borrowed_now"):
        return "borrowed"
    return "skipped" if "path" in result else "done"


def reproduce(profile: Union[str, Profile] = "cpu", results_dir: PathLike = "results",
              seeds: Sequence[int] = (0,), only: Union[str, Sequence[str], None] = None,
              skip_finished: bool = True, overrides: Optional[Dict[str, Any]] = None,
              runs_dir: PathLike = "runs", quiet: Optional[bool] = None,
              data_root: Optional[PathLike] = None) -> List[Dict[str, Any]]:
    """Run every step of :func:`plan` for each seed, in order: finished steps (a results file
    with the same configuration) are skipped when ``skip_finished``; interrupted training
    resumes from its last checkpoint. ``only``: experiment names, run names or
    ``"experiment/name"`` to restrict to. Returns one summary dict per step
    (``experiment``, ``name``, ``seed``, ``path``, ``status`` "done" / "skipped" / "borrowed": the
    same from-scratch run taken from the profile this one extends, :mod:`jcs.engine.borrow`,
    ``seconds``).

    Under ``torchrun`` every rank runs this with the same arguments: the training steps run on
    all ranks (DDP, :func:`~jcs.engine.train.train`), the Table IV sweeps on rank 0 only (the
    other ranks leave them out of their summary)."""
    prof = get_profile(profile, overrides)
    if prof.name in EVALUATION_ONLY:
        raise ValueError(f"profile {prof.name!r} trains nothing: run "
                         "jcs.engine.authors.reproduce_authors(weights_dir) (`jcs reproduce "
                         "--profile authors --authors-weights DIR`)")
    only_list = [only] if isinstance(only, str) else list(only or [])
    quiet = quiet_default(quiet)
    ctx = dd.init(dd.select_device(prof.device, dd.launched()))
    summary = []
    for seed in seeds:
        for step in plan(prof):
            if not _selected(step, only_list):
                continue
            tic = time.perf_counter()
            if step.kind == "patients":
                if not ctx.is_main:  # inference only: rank 0 runs it, the others go on
                    continue
                source = result_path(results_dir, prof.name, "classification", step.name, seed)
                if not source.is_file():
                    warnings.warn(f"table4/{step.name}: no classifier result {source}; skipped",
                                  stacklevel=2)
                    continue
                result = patient_sweep(source, prof, results_dir=results_dir, seed=seed,
                                       quiet=quiet, data_root=data_root,
                                       skip_finished=skip_finished)
            else:
                init = (dd.broadcast(_joint_parts(prof, results_dir, runs_dir, seed)
                                     if ctx.is_main else None, ctx)  # one decision for all ranks
                        if step.init_joint else None)
                result = train(step.model, profile=prof, results_dir=results_dir, runs_dir=runs_dir,
                               experiment=step.experiment, seed=seed, resume=True, quiet=quiet,
                               name=step.name, pixel_supervised=step.pixel_supervised,
                               init_from=init, data_root=data_root, skip_finished=skip_finished)
            path = result_path(results_dir, prof.name, step.experiment, step.name, seed)
            summary.append({"experiment": step.experiment, "name": step.name, "seed": seed,
                            "path": str(path), "status": _status(result),
                            "seconds": round(time.perf_counter() - tic, 1)})
    return summary
