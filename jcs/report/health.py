"""Runs that failed quietly: a segmentation run whose probability maps stay below the 0.5
threshold on (almost) every lesion pixel of the test split has *collapsed*. Its Dice at 0.5 is
near zero while its threshold-free metrics (max Dice, S-measure) look like a weak model, so a
mean over seeds hides it. Issue 17 (item 6) asks the tables to show that no seed of any model
collapses: :func:`collapse_notes` names the collapsed seeds of a table, or says that none did."""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

__all__ = ["COLLAPSE_SENSITIVITY", "collapsed_runs", "collapse_notes"]

# A run collapses when it marks fewer than this fraction of the lesion pixels of the test slices
# at threshold 0.5 (metrics["sensitivity"], pooled over the split). The collapsed DSS seeds of the
# cpu profile (model revision 1) marked 0.16 % and 0.10 %; every other committed run marked 30 % or
# more (DSS seed 0 of that profile: 30 %).
COLLAPSE_SENSITIVITY = 0.05


def collapsed_runs(runs: Dict[Any, List[Dict[str, Any]]],
                   min_sensitivity: float = COLLAPSE_SENSITIVITY) -> Dict[str, List[Tuple[int, float, float]]]:
    """``{run name: [(seed, sensitivity, dice), ...]}`` for the segmentation results of ``runs``
    (keys run names or ``(experiment, name)`` tuples, values results of every seed) whose
    sensitivity at 0.5 (fraction of the test split's lesion pixels marked, 0–1) is below
    ``min_sensitivity``. Classification results and results without a sensitivity are skipped.
    Seeds are sorted; runs without a collapsed seed are left out."""
    out: Dict[str, List[Tuple[int, float, float]]] = {}
    for key, results in runs.items():
        for result in results:
            if result.get("task", "segmentation") != "segmentation":
                continue
            metrics = result.get("metrics") or {}
            sens = metrics.get("sensitivity")
            if sens is None or not sens < min_sensitivity:  # NaN: not measured, not collapsed
                continue
            name = result.get("name") or (key[-1] if isinstance(key, tuple) else key)
            out.setdefault(name, []).append((int(result.get("seed", 0)), float(sens),
                                             float(metrics.get("dice", float("nan")))))
    return {name: sorted(seeds) for name, seeds in sorted(out.items())}


def collapse_notes(runs: Dict[Any, List[Dict[str, Any]]], label: str,
                   min_sensitivity: float = COLLAPSE_SENSITIVITY) -> List[str]:
    """One note for the table's ``label`` (a profile's name or column label): the collapsed seeds
    with their sensitivity and Dice at 0.5 (the mean ± std shown includes them), or, when there
    are segmentation results and none collapsed, that every seed marks at least
    ``min_sensitivity`` of the lesion pixels. ``[]`` without segmentation results."""
    seg = [r for rs in runs.values() for r in rs if r.get("task", "segmentation") == "segmentation"
           and (r.get("metrics") or {}).get("sensitivity") is not None]
    if not seg:
        return []
    bad = collapsed_runs(runs, min_sensitivity)
    if not bad:
        return [f"{label}: no seed of any model collapsed (each of the {len(seg)} runs marks at "
                f"least {min_sensitivity:.0%} of the test split's lesion pixels at 0.5)."]
    parts = [f"{name} seed{'s' if len(seeds) > 1 else ''} "
             + ", ".join(f"{s} (sensitivity {sens:.1%}, Dice {dice:.1%})" for s, sens, dice in seeds)
             for name, seeds in bad.items()]
    return [f"{label}: collapsed: {'; '.join(parts)}: the maps stay below 0.5 on (almost) every "
            "lesion pixel; the mean ± std shown includes these seeds."]
