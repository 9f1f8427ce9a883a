"""Profile ``authors``: the authors' released weights (jcs_official.md §6.4) evaluated on the
public data of the book, written as results files beside those of the trained profiles.

Each released file becomes one run under ``<results>/authors/`` (:data:`AUTHORS_RUNS`):

=======================  ===============================  =====================  ================
file in the weights dir  run (experiment/name)            model                  tables
=======================  ===============================  =====================  ================
``res2net_cls.pth``      classification/jcs-classifier    ``jcs-classifier``     slice tests, IV
``res2net_segloss.pth``  classification/jcs-classifier-   ``jcs-classifier``     slice tests, IV,
                         pixel                                                   Fig. 9
``single.pth``           table5/jcs-seg                   ``jcs-seg``            V (no. 4), VI
``joint.pth``            table6/jcs-joint                 ``jcs-joint``          VI, VII, Fig. 10
                                                                                 –11
=======================  ===============================  =====================  ================

The single model's link (GDrive ``1iXD9n1LSR7_pyyU8xQd0kZVn0IAat3Aq``) names no file: save it as
``single.pth``. Every run converts its file with :func:`jcs.models.convert_authors_checkpoint`
into ``<runs>/authors/<experiment>/<name>/seed0/model.pt`` (so Table IV and the Fig. 9 maps find a
checkpoint as for trained runs), evaluates it with the same code as a trained run
(:func:`~jcs.engine.evaluate.run_evaluation` on the splits of
:func:`~jcs.engine.datasets.build_splits`) and writes a results file of ``kind`` ``"evaluation"``
whose ``initialisation`` (``kind`` ``"authors-release"``) and ``config["weights"]`` name the
file and its sha256. Table IV then runs :func:`~jcs.engine.experiments.patient_sweep` on each
classifier. A file that is absent is skipped with a warning (its cells stay empty in the book).
"""
from __future__ import annotations

import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from jcs.models.authors import MODEL_RELEASE, convert_authors_checkpoint, sha256_of

from .datasets import build_splits, describe_data, fixed_names, item_names, task_of
from .evaluate import load_trained_model, run_evaluation
from .profiles import Profile, config_hash, get_profile, run_fields
from .provenance import (code_state, device_info, now_iso, package_versions, peak_memory,
                         reset_peak_memory)
from .results import SCHEMA, SCHEMA_VERSION, finished, load_result, predictions_dir, write_result
from .runtime import prepare_model, quiet_default, resolve_precision, select_device
from .train import MODEL_REVISIONS, _extra_tests, run_paths

PathLike = Union[str, Path]
PROFILE = "authors"
# Google Drive ids of the released files (jcs_official.md §6.4; no checksums were published).
GDRIVE = {"joint.pth": "1V1EKXL4gFAH6ZtFRcmUv9-aI0sc5e9Ga",
          "single.pth": "1iXD9n1LSR7_pyyU8xQd0kZVn0IAat3Aq",
          "res2net_cls.pth": "1rhLLZoeCBYQ7XWpEppywdL3mODlsJn9k",
          "res2net_segloss.pth": "1B431SuffibX9tBueSeVVoOL9TThmvjIz"}


@dataclass(frozen=True)
class AuthorsRun:
    """One released file evaluated as ``experiment/name`` with our model ``model``."""

    experiment: str
    name: str
    model: str
    file: str
    what: str


AUTHORS_RUNS = (
    AuthorsRun("classification", "jcs-classifier", "jcs-classifier", "res2net_cls.pth",
               "classifier trained with image labels only"),
    AuthorsRun("classification", "jcs-classifier-pixel", "jcs-classifier", "res2net_segloss.pth",
               "classifier trained with pixel-level annotations as well"),
    AuthorsRun("table5", "jcs-seg", "jcs-seg", "single.pth", "single segmentation model"),
    AuthorsRun("table6", "jcs-joint", "jcs-joint", "joint.pth",
               "joint segmentation model (cls + seg)"),
)


def weights_status(weights_dir: PathLike) -> Dict[str, Optional[Path]]:
    """``{file name: path, or None when absent}`` for every file of :data:`AUTHORS_RUNS`."""
    folder = Path(weights_dir)
    return {run.file: (folder / run.file if (folder / run.file).is_file() else None)
            for run in AUTHORS_RUNS}


def evaluate_release(run: AuthorsRun, weights_file: PathLike,
                     profile: Union[str, Profile] = PROFILE,
                     overrides: Optional[Dict[str, Any]] = None, results_dir: PathLike = "results",
                     runs_dir: PathLike = "runs", data_root: Optional[PathLike] = None,
                     quiet: Optional[bool] = None, skip_finished: bool = True) -> Dict[str, Any]:
    """Convert ``weights_file`` for ``run``, evaluate it on the run's test sets and write
    ``<results>/<profile>/<experiment>/<name>.json``; returns the result (the existing file,
    with ``"path"``, when one was made from the same file and configuration)."""
    prof = get_profile(profile, overrides)
    task = task_of(run.model)
    if MODEL_RELEASE.get(run.model) is None:
        raise ValueError(f"{run.model} has no authors' release")
    weights_file = Path(weights_file)
    digest = sha256_of(weights_file)
    device = select_device(prof.device)
    precision = resolve_precision(prof.precision, device)
    dataset = "+".join(prof.cls_datasets) if task == "classification" else "medseg"
    config = {"profile": run_fields(prof.to_dict(), task), "model": run.model,
              "model_options": {"norm": "frozen"}, "name": run.name,
              "experiment": run.experiment, "dataset": dataset, "seed": 0,
              "pixel_supervised": run.name.endswith("-pixel"), "initialised": True,
              "evaluation_only": True, "weights": {"file": weights_file.name, "sha256": digest},
              "precision": precision, "channels_last": prof.channels_last,
              "device_type": device.type}
    if run.model in MODEL_REVISIONS:
        config["model_revision"] = MODEL_REVISIONS[run.model]
    chash = config_hash(config)
    paths = run_paths(results_dir, runs_dir, prof.name, run.experiment, run.name, 0)
    if skip_finished and finished(paths.result, config, task) and paths.model.is_file():
        return load_result(paths.result)

    started, code = now_iso(), code_state()
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    recipe = prof.recipe(task)
    source = convert_authors_checkpoint(weights_file, run.model, paths.model, recipe.size)
    model, _ = load_trained_model(paths.model)
    splits = build_splits(task, dataset, recipe, prof, root=data_root)
    reset_peak_memory(device)
    model = prepare_model(model, device, prof.channels_last)
    previews = paths.predictions
    if previews.exists():
        shutil.rmtree(previews)
    evaluation = run_evaluation(
        model, splits.test, task, device=device, precision=precision,
        channels_last=prof.channels_last, batch_size=prof.eval_batch_size,
        save_predictions=previews if task == "segmentation" else None,
        prediction_names=fixed_names(item_names(splits.test), prof.preview_count),
        prediction_size=prof.preview_size, quiet=quiet_default(quiet))
    tests = _extra_tests(model, splits, task, device, precision, prof.channels_last, prof, quiet)
    tested = {"test": splits.test, **{f"test:{k}": v for k, v in splits.extra_tests.items()}}
    weights = {"file": weights_file.name, "sha256": digest, "bytes": weights_file.stat().st_size,
               "release": source["release"], "what": run.what,
               "gdrive_id": GDRIVE.get(run.file), "listed_in": "jcs_official.md §6.4"}
    result = {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "kind": "evaluation",
        "profile": prof.name, "experiment": run.experiment, "name": run.name, "model": run.model,
        "task": task, "seed": 0, "config": config, "config_hash": chash,
        "metrics": evaluation["metrics"], "per_image": evaluation["per_image"],
        "curves": evaluation.get("curves"),
        "recipe": {"part": "seg" if task == "segmentation" else "cls", "size": recipe.size,
                   "trained": False},
        "test_dataset": splits.test_name, "tests": tests,
        "loss": {},  # nothing trained here
        "init_from": None,
        "initialisation": {"kind": "authors-release", "weights": [weights]},
        "data": describe_data(dataset, tested, data_root),
        "timing": {"train_s": 0.0,
                   "eval_s": round(evaluation["eval_s"] + sum(t["eval_s"] for t in tests.values()), 3),
                   "started": started, "finished": now_iso()},
        "memory": peak_memory(device),
        "environment": {"git": code, "versions": package_versions(),
                        "device": device_info(device), "precision": precision,
                        "channels_last": prof.channels_last},
        "checkpoint": str(paths.model),
        "predictions": str(predictions_dir(paths.result)) if task == "segmentation" else None,
    }
    write_result(paths.result, result)
    return result


def reproduce_authors(weights_dir: PathLike, results_dir: PathLike = "results",
                      runs_dir: PathLike = "runs", only: Union[str, Sequence[str], None] = None,
                      skip_finished: bool = True, overrides: Optional[Dict[str, Any]] = None,
                      quiet: Optional[bool] = None,
                      data_root: Optional[PathLike] = None) -> List[Dict[str, Any]]:
    """Every run of :data:`AUTHORS_RUNS` whose file is in ``weights_dir``, then Table IV with each
    classifier (:func:`~jcs.engine.experiments.patient_sweep`). ``only``: experiment or run names
    (as :func:`~jcs.engine.experiments.reproduce`). Returns one summary dict per step
    (``experiment``, ``name``, ``path``, ``status`` "done" / "skipped" / "missing", ``seconds``).
    Raises FileNotFoundError when ``weights_dir`` holds none of the files."""
    from .experiments import patient_sweep  # noqa: PLC0415 (experiments imports this module)
    from .results import result_path  # noqa: PLC0415

    folder = Path(weights_dir)
    found = weights_status(folder)
    if not any(found.values()):
        raise FileNotFoundError(
            f"none of the authors' files ({', '.join(found)}) is in {folder.resolve()}: download "
            "them (book/reproduce.md, 'The authors' released weights') and save the single "
            "segmentation model as single.pth")
    wanted = [only] if isinstance(only, str) else list(only or [])
    summary: List[Dict[str, Any]] = []
    for run in AUTHORS_RUNS:
        if wanted and not {run.experiment, run.name, f"{run.experiment}/{run.name}"} & set(wanted):
            continue
        path = result_path(results_dir, PROFILE, run.experiment, run.name)
        if found[run.file] is None:
            warnings.warn(f"authors/{run.experiment}/{run.name}: {run.file} not in {folder}; "
                          "skipped", stacklevel=2)
            summary.append({"experiment": run.experiment, "name": run.name, "seed": 0,
                            "path": str(path), "status": "missing", "seconds": 0.0})
            continue
        tic = time.perf_counter()
        result = evaluate_release(run, found[run.file], PROFILE, overrides, results_dir, runs_dir,
                                  data_root, quiet, skip_finished)
        summary.append({"experiment": run.experiment, "name": run.name, "seed": 0,
                        "path": str(path), "status": "skipped" if "path" in result else "done",
                        "seconds": round(time.perf_counter() - tic, 1)})
    for run in AUTHORS_RUNS:
        if run.experiment != "classification":
            continue
        if wanted and not {"table4", run.name, f"table4/{run.name}"} & set(wanted):
            continue
        source = result_path(results_dir, PROFILE, "classification", run.name)
        if not source.is_file():
            continue
        tic = time.perf_counter()
        result = patient_sweep(source, PROFILE, overrides, results_dir=results_dir, quiet=quiet,
                               data_root=data_root, skip_finished=skip_finished)
        summary.append({"experiment": "table4", "name": run.name, "seed": 0,
                        "path": str(result_path(results_dir, PROFILE, "table4", run.name)),
                        "status": "skipped" if "path" in result else "done",
                        "seconds": round(time.perf_counter() - tic, 1)})
    return summary
