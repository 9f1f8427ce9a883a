"""What a COVID-CT-MD slice counts as for a COVID-19 classifier.

COVID-CT-MD's slice labels flag *infection*, in COVID-19 and in community-acquired pneumonia (CAP)
patients alike (Afshar et al. 2021; ``labels/slice_labels.csv`` of the local copy). The classifiers
of this project separate COVID-19 from non-COVID-19 (PAPER.md §III-A): the non-COVID class of the
SARS-CoV-2 CT sample they train on includes other pulmonary diseases, and Table IV counts the CAP
patients as non-COVID. So a slice is positive only when it shows **COVID-19 infection** (an
infected slice of a COVID-19 patient); the slices of CAP patients (infected or not), of normal
patients and the clear slices of COVID-19 patients are negative.

Until 2026-11-30 the CAP-infected slices counted positive ("any
infection"), which asked a COVID-19 classifier to call CAP lesions COVID-19. Results files scored
that way are rescored from their stored per-slice scores by ``scripts/relabel_ctmd_slices.py``.

Every slice also has a *group* (:data:`GROUPS`), so a result can say which negatives a classifier
confuses with COVID-19 lesions (:func:`jcs.metrics.compute_group_aucs`).
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np

from .errors import DataError, ShapeMismatchError

SLICE_TARGET = "COVID-19 infection"
"""What label 1 means on a COVID-CT-MD slice."""
PREVIOUS_TARGET = "any infection (COVID-19 or CAP)"
"""What label 1 meant before 2026-11-30 (kept in rescored files' provenance)."""
POSITIVE_GROUP = "COVID-19 infected"
GROUPS = ("COVID-19 infected", "COVID-19 clear", "CAP infected", "CAP clear", "Normal")
DIAGNOSES = ("COVID-19", "CAP", "Normal")


def slice_groups(diagnosis: str, infection: Optional[Sequence[int]], n_slices: int) -> List[str]:
    """The group of each of a patient's ``n_slices`` slices (superior -> inferior).

    ``diagnosis``: "COVID-19", "CAP" or "Normal"; ``infection``: the dataset's 0/1 infection flag
    per slice (None for normal patients, who have none). Raises ``ValueError`` for an unknown
    diagnosis, :class:`DataError` when a COVID-19 / CAP patient has no slice labels and
    :class:`ShapeMismatchError` when their number is not ``n_slices``."""
    if diagnosis not in DIAGNOSES:
        raise ValueError(f"diagnosis must be one of {', '.join(DIAGNOSES)}, got {diagnosis!r}.")
    if diagnosis == "Normal":
        return ["Normal"] * n_slices
    if infection is None:
        raise DataError(f"A {diagnosis} patient without slice labels cannot be scored slice by "
                        "slice; choose labelled COVID-19/CAP patients or normal ones.")
    if len(infection) != n_slices:
        raise ShapeMismatchError(f"{len(infection)} slice labels for {n_slices} slices.")
    return [f"{diagnosis} {'infected' if int(flag) else 'clear'}" for flag in infection]


def covid_slice_labels(groups: Sequence[str]) -> np.ndarray:
    """int64 array: 1 where the group is :data:`POSITIVE_GROUP` (COVID-19 infection), else 0."""
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        raise ValueError(f"unknown COVID-CT-MD slice groups {unknown}; known: {', '.join(GROUPS)}.")
    return np.array([int(g == POSITIVE_GROUP) for g in groups], dtype=np.int64)


def any_infection_labels(groups: Sequence[str]) -> np.ndarray:
    """int64 array: 1 where the slice is infected (COVID-19 or CAP): :data:`PREVIOUS_TARGET`."""
    covid_slice_labels(groups)  # validates
    return np.array([int(g.endswith(" infected")) for g in groups], dtype=np.int64)
