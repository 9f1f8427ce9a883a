"""Collapsed segmentation runs (jcs.report.health): hand-made results, and the committed results
of the current model code (issue 17 item 6: no seed of any model collapses)."""
from __future__ import annotations

from pathlib import Path

import pytest

from jcs.engine.results import load_results
from jcs.engine.train import MODEL_REVISIONS
from jcs.report.health import (COLLAPSE_SENSITIVITY, WEAK_DICE, collapse_notes, collapsed_runs,
                               weak_notes, weak_runs)
from jcs.report.results import available_profiles

RESULTS = Path(__file__).resolve().parents[1] / "results"


def _seg(name: str, seed: int, sensitivity: float, dice: float, task: str = "segmentation"):
    return {"name": name, "seed": seed, "task": task,
            "metrics": {"sensitivity": sensitivity, "dice": dice}}


def test_collapsed_runs_names_only_the_seeds_below_the_line():
    runs = {("table7", "dss"): [_seg("dss", 0, 0.30, 0.37), _seg("dss", 2, 0.001, 0.002),
                                _seg("dss", 1, 0.0016, 0.0032)],
            ("table7", "unet"): [_seg("unet", 0, 0.70, 0.69)],
            "jcs-seg": [_seg("jcs-seg", 0, COLLAPSE_SENSITIVITY, 0.1)]}  # on the line: healthy
    assert collapsed_runs(runs) == {"dss": [(1, 0.0016, 0.0032), (2, 0.001, 0.002)]}
    # a stricter line catches the weak seed 0 too
    assert [s for s, _, _ in collapsed_runs(runs, min_sensitivity=0.31)["dss"]] == [0, 1, 2]


def test_collapse_notes_name_seeds_with_their_numbers():
    runs = {"dss": [_seg("dss", 1, 0.0016, 0.0032)], "unet": [_seg("unet", 0, 0.7, 0.69)]}
    (note,) = collapse_notes(runs, "profile cpu")
    assert note.startswith("profile cpu: collapsed: dss seed 1 (sensitivity 0.2%, Dice 0.3%)")
    assert "unet" not in note


def test_collapse_notes_say_none_collapsed_and_skip_classifiers():
    runs = {"unet": [_seg("unet", s, 0.7, 0.69) for s in range(3)],
            "cls": [_seg("cls", 0, 0.0, 0.0, task="classification")]}
    (note,) = collapse_notes(runs, "gpu")
    assert "no seed of any model collapsed" in note and "3 runs" in note
    assert collapse_notes({"cls": runs["cls"]}, "gpu") == []
    assert collapse_notes({"x": [{"name": "x", "seed": 0, "metrics": {}}]}, "gpu") == []


def test_weak_runs_are_below_the_dice_floor_but_not_collapsed():
    runs = {("table7", "dss"): [_seg("dss", 0, 0.32, 0.389), _seg("dss", 1, 0.001, 0.002),
                                _seg("dss", 2, 0.40, 0.452)],
            ("table7", "unet"): [_seg("unet", 0, 0.70, WEAK_DICE)],  # on the floor: fine
            "cls": [_seg("cls", 0, 0.1, 0.1, task="classification")]}
    assert weak_runs(runs) == {"dss": [(0, 0.389), (2, 0.452)]}  # seed 1 collapsed instead
    (note,) = weak_notes(runs, "profile cpu")
    assert note.startswith("profile cpu: below Dice 50% at 0.5 without collapsing: "
                           "dss seeds 0 (38.9%), 2 (45.2%).")
    healthy = {"unet": [_seg("unet", s, 0.7, 0.69) for s in range(2)]}
    (note,) = weak_notes(healthy, "gpu")
    assert note == "gpu: every seed of every model reaches Dice 50% at 0.5 (2 runs)."
    assert weak_notes({"cls": runs["cls"]}, "gpu") == []


def _current(result) -> bool:
    have = (result.get("config") or {}).get("model_revision", 1)
    return MODEL_REVISIONS.get(result.get("model"), 1) == have


@pytest.mark.parametrize("profile", [p for p in available_profiles(RESULTS) if p != "smoke"])
def test_no_committed_run_of_the_current_model_code_collapsed(profile):
    results = [r for experiment in ("table5", "table6", "table7")
               for r in load_results(RESULTS, profile, experiment) if _current(r)]
    if not results:
        pytest.skip(f"no segmentation results of profile {profile}")
    bad = collapsed_runs({r["path"]: [r] for r in results})
    assert not bad, f"collapsed runs in results/{profile}: {bad}"


@pytest.mark.parametrize("profile", [p for p in available_profiles(RESULTS) if p != "smoke"])
def test_every_committed_seed_of_the_current_model_code_reaches_the_dice_floor(profile):
    """Issue 17's target: no seed of any segmentation model in any committed profile below Dice
    0.5 (withdrawn variants live in results/diagnostics/, outside every profile)."""
    results = [r for experiment in ("table5", "table6", "table7")
               for r in load_results(RESULTS, profile, experiment) if _current(r)]
    if not results:
        pytest.skip(f"no segmentation results of profile {profile}")
    weak = [(r["path"], r["metrics"]["dice"]) for r in results
            if r.get("task", "segmentation") == "segmentation" and r["metrics"]["dice"] < WEAK_DICE]
    assert not weak, f"seeds below Dice {WEAK_DICE} in results/{profile}: {weak}"


def test_outdated_notes_name_the_old_seeds_when_others_are_current():
    from jcs.report.results import outdated_notes, outdated_runs

    current = MODEL_REVISIONS["dss"]
    runs = {("table7", "dss"): [{"name": "dss", "model": "dss", "seed": 0,
                                 "config": {"model_revision": current}},
                                {"name": "dss", "model": "dss", "seed": 1, "config": {}},
                                {"name": "dss", "model": "dss", "seed": 2, "config": {}}],
            ("table7", "egnet"): [{"name": "egnet", "model": "egnet", "seed": 0, "config": {}}],
            ("table7", "unet"): [{"name": "unet", "model": "unet", "seed": 0, "config": {}}]}
    assert outdated_runs(runs) == {"dss": 1}  # U-Net and EGNet have no newer revision
    (note,) = outdated_notes(runs, "cpu")
    assert "dss (seeds 1, 2; the other seeds are current) were trained" in note
    assert "He init" in note
    fresh = {("table7", "dss"): runs[("table7", "dss")][:1]}
    assert outdated_notes(fresh, "cpu") == []


def test_a_withdrawn_revision_is_outdated_and_named():
    """PoolNet and EGNet went back from revision 2 (He init) to 1: their revision-2 seeds are
    outdated, with what was withdrawn; DSS's own revisions are not named for them."""
    from jcs.report.results import outdated_notes, outdated_runs, revision_left_out

    runs = {("table7", "poolnet"): [{"name": "poolnet", "model": "poolnet", "seed": 0, "config": {}},
                                    {"name": "poolnet", "model": "poolnet", "seed": 1,
                                     "config": {"model_revision": 2}}],
            ("table7", "egnet"): [{"name": "egnet", "model": "egnet", "seed": s,
                                   "config": {"model_revision": 2}} for s in (0, 1)]}
    assert "poolnet" not in MODEL_REVISIONS and outdated_runs(runs) == {"poolnet": 2, "egnet": 2}
    (note,) = outdated_notes(runs, "cpu-pretrained")
    assert note.startswith("cpu-pretrained: egnet, poolnet (seed 1; the other seeds are current) "
                           "were trained with the earlier model code (the He init of the VGG16 "
                           "body (revision 2) was withdrawn for PoolNet and EGNet")
    assert note.count("withdrawn") == 1 and "scale-preserving" not in note
    assert revision_left_out(runs[("table7", "poolnet")]) == {"poolnet": [(1, 2)]}


def test_revision_tables_agree_with_the_model_revisions():
    """Each model's changes are named up to its current revision, and a withdrawn revision lies
    above it (a later change of that model must take a new number, or the withdrawn runs would
    pass for current ones)."""
    from jcs.report.results import REVISION_CHANGES, WITHDRAWN_REVISIONS

    for model, changes in REVISION_CHANGES.items():
        assert set(changes) == set(range(2, MODEL_REVISIONS[model] + 1)), model
    for model, withdrawn in WITHDRAWN_REVISIONS.items():
        assert all(revision > MODEL_REVISIONS.get(model, 1) for revision in withdrawn), model
    assert set(MODEL_REVISIONS) <= set(REVISION_CHANGES)
