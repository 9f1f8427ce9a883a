"""How much of the gap from the from-scratch numbers to the paper's the packaged initialisation
(ImageNet-derived VGG16 of the HED release, EfficientNet-Lite2 ImageNet-1k) closes (profile cpu
against cpu-pretrained)."""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from jcs import paper

from .results import (PathLike, _paper_order, borrowed_notes, hardware_label,
                      initialisation_summary, profile_label, run_label, seed_stats,
                      superseded_notes)
from .differences import PAPER_INIT_NOTE
from .tables import _load_quietly, _profile_rows
from .patient_level import _sweep_values

__all__ = ["GAP_THRESHOLD", "gap_closed", "pretraining_gap"]


def gap_closed(paper_value: Optional[float], scratch: Optional[float],
               pretrained: Optional[float]) -> float:
    """The share of the gap from the from-scratch number to the paper's that the pretrained
    number closes: ``(pretrained − scratch) / (paper − scratch)`` (1 = reaches the paper,
    0 = no change, negative = worse than from scratch, above 1 = beyond the paper). NaN where a
    number is missing or there is no gap (from scratch already at or above the paper)."""
    values = [paper_value, scratch, pretrained]
    if any(v is None or not np.isfinite(float(v)) for v in values):
        return float("nan")
    gap = float(paper_value) - float(scratch)
    if gap <= 0:
        return float("nan")
    return (float(pretrained) - float(scratch)) / gap


# Table IV rows of the gap table: (row label, scratch run, pretrained run) at the paper's T = 25.
# The first two change the network as well (the paper's Res2Net-101 has no packaged weights); the
# last two keep EfficientNet-Lite2 in both profiles: the same network, whose initialisation and
# training recipe differ (from scratch: the cpu SGD recipe; pretrained: the AdamW fine-tuning).
_GAP_CLASSIFIERS = (
    ("labels only: Res2Net-101 → EfficientNet-Lite2", "jcs-classifier",
     "jcs-classifier-efficientnet-lite2"),
    ("labels + masks: Res2Net-101 → EfficientNet-Lite2", "jcs-classifier-pixel",
     "jcs-classifier-efficientnet-lite2-pixel"),
    ("labels only: EfficientNet-Lite2 in both", "jcs-classifier-efficientnet-lite2",
     "jcs-classifier-efficientnet-lite2"),
    ("labels + masks: EfficientNet-Lite2 in both", "jcs-classifier-efficientnet-lite2-pixel",
     "jcs-classifier-efficientnet-lite2-pixel"),
)
GAP_THRESHOLD = 25  # the paper's default T


def pretraining_gap(results_dir: PathLike = "results", scratch: str = "cpu",
                    pretrained: str = "cpu-pretrained",
                    seeds: Optional[Sequence[int]] = None) -> pd.DataFrame:
    """For every number of the paper we reproduce (Tables V–VII: Dice, IoU, E-measure of each
    segmentation model; Table IV: sensitivity and specificity at T = 25): the paper, profile
    ``scratch``, profile ``pretrained`` (mean ± std over seeds) and the gap closed,
    :func:`gap_closed` in % (—/"n/a" where a profile lacks the run). Table IV compares the
    from-scratch Res2Net-101 of ``scratch`` with the ImageNet EfficientNet-Lite2 of
    ``pretrained`` (a different network: the paper's has no packaged weights), and
    EfficientNet-Lite2 from scratch with itself from ImageNet (the same network; its
    initialisation and training recipe differ)."""
    labels = {p: f"ours, {profile_label(p)}" for p in (scratch, pretrained)}
    seg_specs = _profile_rows()
    records, index, same_rows = [], [], []
    loaded = {p: _load_quietly(results_dir, p, [spec for _, _, spec, _ in seg_specs]
                               + [("table4", n) for _, a, b in _GAP_CLASSIFIERS for n in (a, b)],
                               seeds) for p in (scratch, pretrained)}

    def add(key: Tuple[str, str, str], paper_value: float, a: Sequence[Any], b: Sequence[Any],
            same_runs: bool = False):
        (ma, sa, _), (mb, sb, _) = seed_stats(a), seed_stats(b)
        records.append({"paper": paper_value, labels[scratch]: ma, f"{labels[scratch]} std": sa,
                        labels[pretrained]: mb, f"{labels[pretrained]} std": sb,
                        "gap closed": None if same_runs else gap_closed(paper_value, ma, mb)})
        index.append(key)
        same_rows.append(same_runs)

    for metric, paper_key, key in (("Dice", "dice", "dice"), ("IoU", "iou", "iou"),
                                   ("E-measure", "emeasure", "e_mean")):
        for table, label, spec, paper_row in seg_specs:
            values = [[r.get("metrics", {}).get(key) for r in loaded[p].get(spec, [])]
                      for p in (scratch, pretrained)]
            borrowed = loaded[pretrained].get(spec, [])  # the same runs: nothing to compare
            add((table, label, metric), paper_row[paper_key], *values,
                same_runs=bool(borrowed) and all(r.get("borrowed_from") for r in borrowed))
    rec = paper.TABLE4.lookup("threshold", GAP_THRESHOLD)
    for metric, key in (("Sensitivity", "sensitivity"), ("Specificity", "specificity")):
        for label, run_a, run_b in _GAP_CLASSIFIERS:
            add(("IV", f"{label}, T = {GAP_THRESHOLD}", metric), rec[key],
                _sweep_values(loaded[scratch].get(("table4", run_a), []), GAP_THRESHOLD, key),
                _sweep_values(loaded[pretrained].get(("table4", run_b), []), GAP_THRESHOLD, key))
    df = pd.DataFrame(records, index=pd.MultiIndex.from_tuples(
        index, names=["Table", "model", "metric"]))
    both = df[[labels[scratch], labels[pretrained]]].notna().all(axis=1)
    both &= ~np.array(same_rows, dtype=bool)  # the same runs in both columns compare nothing
    notes = []
    for p in (scratch, pretrained):
        runs = loaded[p]
        if runs:  # the table4 files evaluate classifiers: their initialisation is the classifier's
            trained = {k: rs for k, rs in runs.items() if k[0] != "table4"}
            notes.append(f"{labels[p]}: {run_label(p, runs)}"
                         + (f"; initialisation: {initialisation_summary(trained)}" if trained
                            else "") + ".")
            same = {k: rs for k, rs in trained.items()
                    if rs and all(r.get("borrowed_from") for r in rs)}  # the rows set n/a above
            notes += [f"{n[:-1]}: their gap closed is n/a." for n in borrowed_notes(same, labels[p])]
            notes += superseded_notes(results_dir, p, labels[p], "table4", seeds)  # Table IV rows
        lacking = sorted({f"{e}/{n}" for e, n in [spec for _, _, spec, _ in seg_specs]
                          + [("table4", n) for _, a, b in _GAP_CLASSIFIERS
                             for n in ((a,) if p == scratch else (b,))]
                          if (e, n) not in runs}, key=lambda s: _paper_order(s.split("/")[1]))
        if lacking:
            notes.append(f"{labels[p]}: no results yet for {', '.join(lacking)}: those rows "
                         "have —, and their gap closed is n/a.")
    notes += [
        "n/a: a profile lacks the run, both columns hold the same runs, or the from-scratch "
        "number already reaches the paper's (no gap to close).",
        "E-measure: the mean over thresholds (the paper does not say which variant it reports).",
        f"Table IV rows, on only a few COVID-CT-MD patients: \"Res2Net-101 → EfficientNet-Lite2\" "
        f"sets the from-scratch Res2Net-101 of {scratch} against the ImageNet EfficientNet-Lite2 "
        f"of {pretrained} (a named deviation: nothing ships Res2Net-101 ImageNet weights), so the "
        "network changes too; \"EfficientNet-Lite2 in both\" trains the same network from "
        f"scratch in {scratch}: the network is the same, its initialisation and training recipe "
        f"differ ({scratch}: SGD; {pretrained} fine-tunes the ImageNet weights with AdamW; see the "
        "classification chapter).",
        PAPER_INIT_NOTE,
    ]
    df.attrs.update({
        "title": "How much of the gap to the paper pretraining closes",
        "profile": pretrained, "profiles": [scratch, pretrained], "labels": labels,
        "hardware": "; ".join(hardware_label(r) for r in loaded.values() if r),
        "ours": f"profile {scratch} (from scratch) against {pretrained} (packaged initialisation)",
        "compared": int(both.sum()), "rows": len(df),
        "definitions": {"gap closed": ("(pretrained − from scratch) / (paper − from scratch), "
                                       "in %: 100 = pretraining reaches the paper's number, "
                                       "above 100 = goes past it, 0 = no change, below 0 = "
                                       "worse than from scratch")},
        "notes": notes, "source": "jcs.report.pretraining_gap", "percent": True,
        "na": {"gap closed": "n/a"}, "api": "api-pretraining", "wrap_index": True,
    })
    return df
