"""Which training of its parts a joint model started from.

``jcs-joint`` (paper §III-C, Table VI) starts from a trained classifier and a trained ``jcs-seg``
of the same profile and seed (:func:`jcs.engine.experiments._joint_parts`). When either part is
trained again later (a new training set, a new model revision, a rerun with ``--force``), the
joint result still describes a model seeded by the *earlier* training, and the book must say so
rather than pair it silently with the part's current numbers.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from jcs.engine.results import load_result, result_path

__all__ = ["part_profile", "part_run", "stale_joint_parts"]

PathLike = Union[str, Path]


def part_run(checkpoint: PathLike) -> tuple[str, str]:
    """``(experiment, run name)`` of a part checkpoint ``.../<experiment>/<name>/seed<k>/model.pt``
    (the layout of :func:`jcs.engine.results.run_paths`)."""
    path = Path(checkpoint)
    return path.parents[2].name, path.parents[1].name


def part_profile(checkpoint: PathLike) -> str:
    """The profile whose run trained a part checkpoint ``.../<profile>/<experiment>/<name>/seed<k>/
    model.pt``. It differs from the joint run's profile where that profile takes the part over
    from another one (:mod:`jcs.engine.borrow`: ``cpu-pretrained`` has no packaged weights for
    Res2Net-101, so its joint model starts from the ``cpu`` classifier)."""
    return Path(checkpoint).parents[3].name


def _time(stamp: Optional[str]) -> Optional[datetime]:
    try:
        moment = datetime.fromisoformat(stamp) if stamp else None
    except ValueError:
        return None
    if moment is not None and moment.tzinfo is None:  # results files write UTC
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def stale_joint_parts(results_dir: PathLike, profile: str,
                      joint_results: Sequence[Mapping[str, Any]]) -> Dict[int, List[str]]:
    """``{seed: [part run names]}`` of ``joint_results`` (``table6/jcs-joint`` results of
    ``profile``) that were initialised from an earlier training of a part than the one whose
    results file is in ``results_dir`` now: the part's run (same profile and seed) finished
    training after the joint run started (``timing.finished`` > ``timing.started``, ISO 8601),
    so the joint run cannot have loaded those weights. A borrowed part (:mod:`jcs.engine.borrow`)
    keeps its donor's timing, so the rule holds for it too. Results without ``init_from``
    (trained from their initial weights, or released weights) and parts without a results file
    are not reported."""
    stale: Dict[int, List[str]] = {}
    for result in joint_results:
        started = _time((result.get("timing") or {}).get("started"))
        init = result.get("init_from") or {}
        if started is None or not init:
            continue
        for part in ("classifier", "segmentation"):
            if part not in init:
                continue
            experiment, name = part_run(init[part])
            path = result_path(results_dir, profile, experiment, name, result["seed"])
            if not path.is_file():
                continue
            finished = _time((load_result(path).get("timing") or {}).get("finished"))
            if finished is not None and finished > started:
                stale.setdefault(result["seed"], []).append(name)
    return stale
