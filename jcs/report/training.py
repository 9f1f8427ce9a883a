"""How far each run's training got: the training loss of its first and last epoch, every profile
side by side. The four Table V variants train with the same loss, summed over the same five side
outputs with equal weights (jcs_official.md §4), so their losses can be compared: a variant that
ends higher has fit its training slices less well within the schedule (it learns more slowly),
which a lower test Dice then reflects as underfitting rather than overfitting."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from .results import PathLike, hardware_label, profile_label, seed_stats, shown_profiles
from .tables import TABLE5_RUNS, _load_quietly

__all__ = ["epoch_losses", "training_loss"]


def epoch_losses(result: Dict[str, Any]) -> Tuple[float, float]:
    """(first, last) epoch's mean training loss of one results file (``loss.epoch``: the mean
    loss of each epoch's iterations, the sum over the model's outputs); NaN when the file has no
    training record (released weights evaluated only, or a file written before it was kept)."""
    epochs = [float(v) for v in (result.get("loss") or {}).get("epoch") or []
              if v is not None and np.isfinite(float(v))]
    if not epochs:
        return float("nan"), float("nan")
    return epochs[0], epochs[-1]


def training_loss(results_dir: PathLike = "results",
                  runs: Sequence[Tuple[Any, str, str]] = TABLE5_RUNS,
                  profile: str = "auto", profiles: Optional[Sequence[str]] = None,
                  seeds: Optional[Sequence[int]] = None) -> pd.DataFrame:
    """Training loss of the first and the last epoch of each run of ``runs`` (``(row, experiment,
    run name)``, default Table V's), mean ± std over seeds, one column group per profile
    (:func:`~jcs.report.results.shown_profiles`): index ``"<row>: <run>"``, columns
    ``("ours, <profile label>", "first epoch" | "last epoch" | "last − row 1")`` with ``" std"`` siblings;
    ``"last − row 1"`` is the gap of the last-epoch loss to the first row's (the baseline), per
    seed. Losses are unitless sums over the outputs (not percentages). Raises
    :class:`~jcs.report.results.ResultsNotFoundError` when no profile has results of the runs'
    experiments."""
    experiments = sorted({e for _, e, _ in runs})
    shown = shown_profiles(results_dir, profile, profiles, experiments)
    specs = [(e, n) for _, e, n in runs]
    index = [f"{row}: {name}" for row, _, name in runs]
    columns: Dict[Tuple[str, str], List[float]] = {}
    labels, notes, hardware = {}, [], []
    for p in shown:
        loaded = _load_quietly(results_dir, p, specs, seeds)
        if loaded and not any(np.isfinite(epoch_losses(r)[1]) for rs in loaded.values()
                              for r in rs):
            notes.append(f"{profile_label(p)}: not shown, its results have no training record "
                         "(weights evaluated without training here).")
            continue
        label = labels[p] = f"ours, {profile_label(p)}"
        if loaded:
            hardware.append(f"{profile_label(p)}: {hardware_label(loaded)}")
        base = {r["seed"]: epoch_losses(r)[1] for r in loaded.get(specs[0], [])}
        for key in ("first epoch", "last epoch", f"last − row {runs[0][0]}"):
            columns[(label, key)], columns[(label, f"{key} std")] = [], []
        lacking = []
        for spec in specs:
            results = loaded.get(spec, [])
            pairs = [epoch_losses(r) for r in results]
            gaps = [pair[1] - base[r["seed"]] for r, pair in zip(results, pairs)
                    if r["seed"] in base]
            for key, values in (("first epoch", [a for a, _ in pairs]),
                                ("last epoch", [b for _, b in pairs]),
                                (f"last − row {runs[0][0]}", gaps)):
                mean, std, _ = seed_stats(values)
                columns[(label, key)].append(mean)
                columns[(label, f"{key} std")].append(std)
            if not results:
                lacking.append(f"{spec[0]}/{spec[1]}")
        if lacking:
            notes.append(f"{label}: no results yet for {', '.join(lacking)} (shown as —).")
    df = pd.DataFrame(columns, index=pd.Index(index, name="run"))
    df.columns = pd.MultiIndex.from_tuples(df.columns, names=["profile", "column"])
    notes.append(f"last − row {runs[0][0]}: each seed's last-epoch loss minus the same seed's "
                 f"{runs[0][2]} (above 0: the variant ends with a higher training loss).")
    df.attrs.update({
        "title": "Training loss of the first and last epoch (sum over the side outputs)",
        "profile": list(labels)[0] if labels else shown[0], "profiles": list(labels),
        "labels": labels,
        "hardware": "; ".join(hardware),
        "ours": "the training record of each results file (loss.epoch)",
        "notes": notes, "source": "jcs.report.training_loss", "api": "api-training-loss",
        "percent": False, "digits": 2,
        "groups": [{"title": "", "metrics": [label]} for label in labels.values()],
        "definitions": {"training loss": ("the loss of every training iteration averaged over "
                                          "the epoch, summed over the model's side outputs "
                                          "(BCE + Dice each, equal weights)")},
    })
    return df
