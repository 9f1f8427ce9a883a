"""Paper Fig. 11: the distribution of per-slice Dice, its summary and Dice by lesion area."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from jcs import paper

from .results import (PathLike, hardware_label, load_runs, profile_label, resolve_profile, run_label,
                      seed_stats, shown_profiles)
from .differences import _merged_differences, differences
from .tables import JCS_RUN, _seg_eval_size

__all__ = ["AREA_BINS", "DICE_BINS", "dice_by_area", "dice_distribution", "dice_summary"]


DICE_BINS = tuple(np.round(np.arange(0.0, 1.01, 0.1), 1))


def _per_image(results: Sequence[Dict[str, Any]], key: str) -> List[np.ndarray]:
    return [np.array([row.get(key) if row.get(key) is not None else np.nan
                      for row in r.get("per_image", [])], dtype=float) for r in results]


def _bin_labels(edges: Sequence[float]) -> List[str]:
    labels = [f"[{lo:g}, {hi:g})" for lo, hi in zip(edges[:-2], edges[1:-1])]
    return labels + [f"[{edges[-2]:g}, {edges[-1]:g}]"]


def _fig11_runs(results_dir: PathLike, profile: str, experiment: str, run: str,
                seeds: Optional[Sequence[int]]):
    profile = resolve_profile(results_dir, profile, [experiment])
    return profile, load_runs(results_dir, profile, experiment, [run], seeds)


def dice_distribution(results_dir: PathLike = "results", profile: str = "auto",
                      experiment: str = JCS_RUN[0], run: str = JCS_RUN[1],
                      seeds: Optional[Sequence[int]] = None) -> pd.DataFrame:
    """Paper Fig. 11 (left): the share of test slices per Dice bin (0.1 wide; per-image Dice at
    > 0.5) of run ``run``, mean ± std over seeds; columns ``("share", "ours" | "ours std")`` and
    ``("count", "ours")`` (mean count)."""
    profile, runs = _fig11_runs(results_dir, profile, experiment, run, seeds)
    edges = np.asarray(DICE_BINS)
    shares, counts = [], []
    for dice in _per_image(runs[run], "dice"):
        dice = dice[np.isfinite(dice)]
        hist, _ = np.histogram(dice, bins=edges)
        counts.append(hist)
        shares.append(hist / max(1, dice.size))
    shares, counts = np.array(shares, dtype=float), np.array(counts, dtype=float)
    std = shares.std(axis=0, ddof=1) if len(shares) > 1 else np.full(len(edges) - 1, np.nan)
    df = pd.DataFrame({("share", "ours"): shares.mean(axis=0), ("share", "ours std"): std,
                       ("count", "ours"): counts.mean(axis=0)},
                      index=pd.Index(_bin_labels(edges), name="Dice"))
    df.columns = pd.MultiIndex.from_tuples(df.columns, names=["metric", "column"])
    df.attrs.update({
        "title": f"Fig. 11: distribution of per-slice Dice ({run})", "profile": profile,
        "hardware": hardware_label(runs),
        "ours": f"{run_label(profile, runs)}; experiment {experiment}",
        "definitions": {"Dice": "per-slice Dice of the map binarised at > 0.5"},
        "notes": [paper.FIG11.source], "source": "jcs.report.dice_distribution",
        "api": "api-fig11", "percent": True,
        "plain": ["count"],
    })
    return df


def _fig11_facts(results: Sequence[Dict[str, Any]]) -> List[List[float]]:
    """Per seed, the share of test slices with Dice above 0.6 and below 0.1 (the two facts the
    paper states about Fig. 11, in :data:`jcs.paper.FIG11`'s order)."""
    above, below = [], []
    for dice in _per_image(results, "dice"):
        dice = dice[np.isfinite(dice)]
        n = max(1, dice.size)
        above.append(float((dice > 0.6).sum() / n))
        below.append(float((dice < 0.1).sum() / n))
    return [above, below]


def dice_summary(results_dir: PathLike = "results", profile: str = "auto",
                 experiment: str = JCS_RUN[0], run: str = JCS_RUN[1],
                 seeds: Optional[Sequence[int]] = None) -> pd.DataFrame:
    """The two facts the paper states about Fig. 11 (share of slices with Dice in (0.6, 1] and
    below 0.1) beside ours, mean ± std over seeds. A named ``profile``: columns ``("share",
    "paper" | "ours" | "ours std")``. ``"auto"``: every profile with results of the run
    (:func:`~jcs.report.results.shown_profiles`), one ``("share", "<profile label>")`` column
    (and its ``" std"``) each, from scratch before pretrained; the one-profile form when only one
    has them. Raises :class:`~jcs.report.results.ResultsNotFoundError` without results."""
    facts = paper.FIG11.records()
    found: Dict[str, List[Dict[str, Any]]] = {}
    if profile == "auto":
        for p in shown_profiles(results_dir, "auto", experiments=[experiment]):
            results = load_runs(results_dir, p, experiment, [run], seeds, required=False).get(run)
            if results:
                found[p] = results
    if len(found) <= 1:
        profile, runs = _fig11_runs(results_dir, next(iter(found), profile), experiment, run,
                                    seeds)
        found = {profile: runs[run]}
    columns = {p: "ours" if len(found) == 1 else profile_label(p) for p in found}
    rows = [{("share", "paper"): fact["value"]} for fact in facts]
    per_profile = {}
    for p, results in found.items():
        for row, values in zip(rows, _fig11_facts(results)):
            mean, std, _ = seed_stats(values)
            row[("share", columns[p])], row[("share", f"{columns[p]} std")] = mean, std
        per_profile[p] = differences({run: results})
    df = pd.DataFrame(rows, index=pd.Index([f["fact"] for f in facts], name="fact"))
    df.columns = pd.MultiIndex.from_tuples(df.columns, names=["metric", "column"])
    n_images = next(iter(found.values()))[0].get("metrics", {}).get("n_images")
    labels = [f"{profile_label(p)}: {run_label(p, {run: r})}" for p, r in found.items()]
    primary = next(iter(found))
    df.attrs.update({
        "title": "Fig. 11: what the paper says about the Dice distribution, and ours",
        "profile": primary, "profiles": list(found),
        "labels": {p: profile_label(p) for p in found},
        "hardware": "; ".join(hardware_label({run: r}) for r in found.values()),
        "ours": (run_label(primary, {run: found[primary]}) if len(found) == 1
                 else "one column per profile (" + "; ".join(labels) + ")")
                + f"; {run}, {n_images} test slices",
        "definitions": {"Dice": "per-slice Dice of the map binarised at > 0.5"},
        "notes": [paper.FIG11.source] + (_merged_differences(per_profile) if len(found) > 1
                                         else per_profile[primary]),
        "source": "jcs.report.dice_summary", "api": "api-fig11", "percent": True,
    })
    return df


AREA_BINS = (0.0, 0.02, 0.05, 0.1, 0.2, 1.0)  # lesion area as a fraction of the slice


def dice_by_area(results_dir: PathLike = "results", profile: str = "auto",
                 experiment: str = JCS_RUN[0], run: str = JCS_RUN[1],
                 seeds: Optional[Sequence[int]] = None) -> pd.DataFrame:
    """Paper Fig. 11 (Dice vs lesion area): mean per-slice Dice in bins of lesion area. The
    paper bins by mm²; MedSeg has no pixel spacing, so we bin by the lesion's share of the
    slice (the ``lesion_area`` pixels of the results file over the evaluation size squared)."""
    profile, runs = _fig11_runs(results_dir, profile, experiment, run, seeds)
    edges = np.asarray(AREA_BINS)
    n_bins = len(edges) - 1
    per_seed_means, counts = [], np.zeros(n_bins, dtype=int)
    for result in runs[run]:
        size = float(_seg_eval_size(result))
        rows = result.get("per_image", [])
        dice = np.array([r.get("dice", np.nan) for r in rows], dtype=float)
        area = np.array([r.get("lesion_area", np.nan) for r in rows], dtype=float) / size ** 2
        which = np.clip(np.digitize(area, edges[1:-1]), 0, n_bins - 1)
        per_seed_means.append([dice[which == b].mean() if (which == b).any() else np.nan
                               for b in range(n_bins)])
        counts = np.bincount(which, minlength=n_bins)  # the same slices in every seed
    stats = [seed_stats(column) for column in np.array(per_seed_means, dtype=float).T]
    labels = [f"{100 * lo:g}–{100 * hi:g}%" for lo, hi in zip(edges[:-1], edges[1:])]
    df = pd.DataFrame({("Dice", "ours"): [m for m, _, _ in stats],
                       ("Dice", "ours std"): [s for _, s, _ in stats], ("slices", "ours"): counts},
                      index=pd.Index(labels, name="lesion area (share of slice)"))
    df.columns = pd.MultiIndex.from_tuples(df.columns, names=["metric", "column"])
    df.attrs.update({
        "title": f"Fig. 11: mean per-slice Dice by lesion area ({run})", "profile": profile,
        "hardware": hardware_label(runs),
        "ours": f"{run_label(profile, runs)}; experiment {experiment}",
        "definitions": {"Dice": "per-slice Dice at > 0.5",
                        "lesion area": "mask pixels / slice pixels"},
        "notes": ["The paper bins by lesion area in mm² (up to > 8000 mm²); MedSeg slices have "
                  "no pixel spacing, so we use the share of the slice.", paper.FIG11.notes[0]],
        "source": "jcs.report.dice_by_area", "api": "api-fig11", "percent": True,
        "plain": ["slices"],
    })
    return df
