"""Runs that failed quietly: a segmentation run whose probability maps stay below the 0.5
threshold on (almost) every lesion pixel of the test split has *collapsed*. Its Dice at 0.5 is
near zero while its threshold-free metrics (max Dice, S-measure) look like a weak model, so a
mean over seeds hides it. Issue 17 (item 6) asks the tables to show that no seed of any model
collapses: :func:`collapse_notes` names the collapsed seeds of a table, or says that none did.
A seed that marks lesions but stays below Dice 0.5 (the issue's floor for every seed of every
model) is *weak*, not collapsed: :func:`weak_notes` names those."""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

__all__ = ["COLLAPSE_SENSITIVITY", "WEAK_DICE", "collapsed_runs", "collapse_notes", "weak_runs",
           "weak_notes"]

# A run collapses when it marks fewer than this fraction of the lesion pixels of the test slices
# at threshold 0.5 (metrics["sensitivity"], pooled over the split). The collapsed DSS seeds of the
# cpu profile (model revision 1) marked 0.16 % and 0.10 %; every other committed run marked 30 % or
# more (DSS seed 0 of that profile: 30 %).
COLLAPSE_SENSITIVITY = 0.05

# Issue 17's floor: no seed of any segmentation model in any committed profile below this Dice
# (at threshold 0.5, on the test split).
WEAK_DICE = 0.5


def _measured(runs: Dict[Any, List[Dict[str, Any]]], metric: str) -> List[Dict[str, Any]]:
    """The segmentation results of ``runs`` that hold ``metric``."""
    return [r for rs in runs.values() for r in rs if r.get("task", "segmentation") == "segmentation"
            and (r.get("metrics") or {}).get(metric) is not None]


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
    seg = _measured(runs, "sensitivity")
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


def weak_runs(runs: Dict[Any, List[Dict[str, Any]]], min_dice: float = WEAK_DICE,
              min_sensitivity: float = COLLAPSE_SENSITIVITY) -> Dict[str, List[Tuple[int, float]]]:
    """``{run name: [(seed, dice), ...]}`` for the segmentation results of ``runs`` (as in
    :func:`collapsed_runs`) whose Dice at 0.5 (0–1) is below ``min_dice`` without having
    collapsed (those are :func:`collapsed_runs`'). Seeds sorted; runs without such a seed left
    out; results without a Dice skipped."""
    collapsed = {(name, seed) for name, seeds in collapsed_runs(runs, min_sensitivity).items()
                 for seed, _, _ in seeds}
    out: Dict[str, List[Tuple[int, float]]] = {}
    for key, results in runs.items():
        for result in results:
            if result.get("task", "segmentation") != "segmentation":
                continue
            dice = (result.get("metrics") or {}).get("dice")
            name = result.get("name") or (key[-1] if isinstance(key, tuple) else key)
            seed = int(result.get("seed", 0))
            if dice is None or not dice < min_dice or (name, seed) in collapsed:
                continue
            out.setdefault(name, []).append((seed, float(dice)))
    return {name: sorted(seeds) for name, seeds in sorted(out.items())}


def weak_notes(runs: Dict[Any, List[Dict[str, Any]]], label: str,
               min_dice: float = WEAK_DICE) -> List[str]:
    """One note for the table's ``label``: the seeds that mark lesions but stay below Dice
    ``min_dice`` at 0.5, with their Dice, or, when there are segmentation results and none does,
    that every seed reaches it. ``[]`` without segmentation results."""
    seg = _measured(runs, "dice")
    if not seg:
        return []
    weak = weak_runs(runs, min_dice)
    if not weak:
        collapsed = sum(len(seeds) for seeds in collapsed_runs(runs).values())
        if collapsed:
            return [f"{label}: every seed that did not collapse reaches Dice {min_dice:.0%} at 0.5 "
                    f"({len(seg) - collapsed} of {len(seg)} runs)."]
        return [f"{label}: every seed of every model reaches Dice {min_dice:.0%} at 0.5 "
                f"({len(seg)} runs)."]
    parts = [f"{name} seed{'s' if len(seeds) > 1 else ''} "
             + ", ".join(f"{s} ({dice:.1%})" for s, dice in seeds) for name, seeds in weak.items()]
    return [f"{label}: below Dice {min_dice:.0%} at 0.5 without collapsing: {'; '.join(parts)}. "
            "These maps mark lesions (not collapsed), but too few or too coarsely to reach it."]
