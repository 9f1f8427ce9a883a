"""Rescore results files written before the COVID-CT-MD slice labels changed (2026-11-30).

Until then a COVID-CT-MD slice counted positive when it showed any infection, COVID-19 or CAP
(:data:`~jcs.data.ctmd_labels.PREVIOUS_TARGET`); now only COVID-19 infection does
(:mod:`jcs.data.ctmd_labels`). Scores do not depend on labels, and every results file keeps the
per-slice scores, so the metrics are recomputed from them, by the same functions a new run uses,
without running a model (classifier files store scores to 6 decimals, so a rescored AUC can
differ from a fresh run's by about 1e-5; Table IV files store 5 decimals):

- classifier results (``kind`` "train"): ``tests["covid-ct-md"]``: ``per_image`` rows get their
  ``group`` and new ``label``, ``metrics`` and ``by_group`` are recomputed;
- Table IV results (``kind`` "patients"): ``metrics["slice"]`` from the stored patients
  (:func:`~jcs.engine.experiments.patient_slice_metrics`).

Each rescored file records ``relabelled``: what label 1 meant before and now, the metrics it
replaced, and the code that rescored it (git state, time). Files already scored with the current
labels are left alone. A file borrowed from another profile (:mod:`jcs.engine.borrow`) is
rescored like its donor, and its ``borrowed_from.sha256`` then names the rescored donor, so the
borrow still stands. ``scripts/relabel_ctmd_slices.py`` runs this over a results folder (donors
first).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

from jcs.data.ctmd_labels import PREVIOUS_TARGET, SLICE_TARGET, any_infection_labels, covid_slice_labels

from .evaluate import classification_summary
from .experiments import patient_slice_metrics
from .provenance import code_state, now_iso, sha256_file
from .results import load_result, write_result

PathLike = Union[str, Path]
CTMD_TEST = "covid-ct-md"


class RelabelError(ValueError):
    """A results file does not hold what the previous labels would have given (not rescored)."""


def _record(previous: Mapping[str, Any], part: str) -> Dict[str, Any]:
    return {"part": part, "from": PREVIOUS_TARGET, "to": SLICE_TARGET,
            "previous_metrics": dict(previous), "by": "jcs.engine.relabel",
            "git": code_state(), "date": now_iso()}


def needs_relabel(result: Mapping[str, Any]) -> bool:
    """True when ``result`` holds COVID-CT-MD slice metrics scored with the previous labels."""
    if result.get("relabelled"):
        return False
    if result.get("kind") == "patients":
        slice_metrics = (result.get("metrics") or {}).get("slice") or {}
        return bool(slice_metrics) and "by_group" not in slice_metrics
    test = (result.get("tests") or {}).get(CTMD_TEST)
    return bool(test and test.get("per_image")) and "group" not in test["per_image"][0]


def rescore_classifier(result: Dict[str, Any], groups: Mapping[str, str]) -> Dict[str, Any]:
    """Rescore ``result["tests"]["covid-ct-md"]`` in place with the current labels.

    ``groups``: slice name ("<patient>/<slice>") → group (``dict(zip(names, CTMDSlices().groups))``).
    Raises :class:`RelabelError` when a slice is unknown or a stored label is not what the previous
    definition gives for its group (then the file was not scored the way this assumes)."""
    test = result["tests"][CTMD_TEST]
    rows: List[Dict[str, Any]] = test["per_image"]
    missing = [row["name"] for row in rows if row["name"] not in groups]
    if missing:
        raise RelabelError(f"{len(missing)} COVID-CT-MD slices of the results file are not in the "
                           f"data (first: {missing[0]}); is the local copy the one it was scored on?")
    row_groups = [groups[row["name"]] for row in rows]
    previous = any_infection_labels(row_groups)
    wrong = [row["name"] for row, label in zip(rows, previous) if int(row["label"]) != int(label)]
    if wrong:
        raise RelabelError(f"{len(wrong)} stored labels differ from '{PREVIOUS_TARGET}' (first: "
                           f"{wrong[0]}); not rescoring a file scored some other way.")
    labels = covid_slice_labels(row_groups)
    scores = [float(row["score"]) for row in rows]
    old = test["metrics"]
    for row, label, group in zip(rows, labels, row_groups):
        row["label"], row["group"] = int(label), group
    test.update(classification_summary(labels, scores, row_groups))
    result["relabelled"] = _record(old, f"tests.{CTMD_TEST}")
    return result


def rescore_patients(result: Dict[str, Any]) -> Dict[str, Any]:
    """Rescore a Table IV result's ``metrics["slice"]`` in place from its stored patients. Raises
    :class:`RelabelError` when the stored positives are not the infected slices (the previous
    definition)."""
    old = result["metrics"]["slice"]
    infected = sum(sum(p["slice_labels"]) for p in result["patients"]
                   if p["slice_labels"] is not None)
    if old.get("n_pos") != infected:
        raise RelabelError(f"the stored slice metrics count {old.get('n_pos')} positives, not the "
                           f"{infected} infected slices of '{PREVIOUS_TARGET}'; not rescoring.")
    result["metrics"]["slice"] = patient_slice_metrics(result["patients"])
    result["relabelled"] = _record(old, "metrics.slice")
    return result


def relabel_file(path: PathLike, groups: Optional[Mapping[str, str]] = None,
                 dry_run: bool = False, results_dir: Optional[PathLike] = None
                 ) -> Optional[Dict[str, Any]]:
    """Rescore one results file (rewritten atomically unless ``dry_run``); returns the rescored
    result (its ``relabelled`` record says what changed), or None when the file needs nothing.
    ``groups`` is needed for classifier results (see :func:`rescore_classifier`); a borrowed file
    needs ``results_dir`` (default: two folders above ``path``) to find its donor, which must be
    rescored first (:class:`RelabelError` otherwise)."""
    path = Path(path)
    result = load_result(path)
    result.pop("path", None)
    if not needs_relabel(result):
        return None
    borrowed = result.get("borrowed_from")
    if borrowed:
        donor = Path(results_dir or path.parents[2]) / borrowed.get("result", "")
        if not donor.is_file() or (needs_relabel(load_result(donor)) and not dry_run):
            raise RelabelError(f"{path} is borrowed from {donor}, which is missing or not rescored "
                               "yet: rescore the donor first")
    if result.get("kind") == "patients":
        rescore_patients(result)
    else:
        if groups is None:
            raise ValueError(f"{path}: classifier results need the slice groups to be rescored")
        rescore_classifier(result, groups)
    if borrowed:  # the borrow stands for the rescored donor (jcs.engine.borrow.borrowed_is_current)
        result["relabelled"]["donor_sha256_before"] = borrowed.get("sha256")
        borrowed["sha256"] = sha256_file(donor)
    if not dry_run:
        write_result(path, result)
    return result
