"""jcs.report.targets_table: the book's goals for cpu-pretrained beside the committed results,
with hand-made results files (means over seeds, what is met or missed and by how much, the Dice
floor over every profile)."""
import pytest

import jcs.report as report
from jcs.report.targets import Target, targets_table

from test_report import EFFNET, _cls_metrics, _fake, _per_image, _pretrained, _seg_metrics


def _classifier(results_dir, name, seed, ucsd, real, cross):
    tests = {"sarscov2-ct": {"metrics": _cls_metrics(real), "per_image": _per_image()},
             "covid-ct-md": {"metrics": _cls_metrics(cross), "per_image": _per_image()}}
    _pretrained(results_dir, "classification", name, seed, weights=EFFNET, task="classification",
                metrics=_cls_metrics(ucsd), per_image=_per_image(), tests=tests,
                test_dataset="ucsd-covid-ct")


def test_targets_are_means_over_seeds_with_what_is_missed_and_by_how_much(tmp_path):
    _classifier(tmp_path, "jcs-classifier-efficientnet-lite2", 0, 0.80, 0.88, 0.50)
    _classifier(tmp_path, "jcs-classifier-efficientnet-lite2", 1, 0.84, 0.92, 0.70)
    _classifier(tmp_path, "jcs-classifier-efficientnet-lite2-pixel", 0, 0.7, 0.8, 0.9)
    for seed, dice in ((0, 0.73), (1, 0.75)):
        _pretrained(tmp_path, "table5", "jcs-seg", seed, metrics=_seg_metrics(dice))
    _pretrained(tmp_path, "table5", "jcs-seg-base", 0, metrics=_seg_metrics(0.70))
    _fake(tmp_path, "cpu", "table7", "dss", 0, metrics=_seg_metrics(0.55))
    _fake(tmp_path, "cpu", "table7", "dss", 1, metrics=_seg_metrics(0.41))  # below the floor
    _fake(tmp_path, "cpu", "classification", "jcs-classifier", 0, task="classification",
          metrics=_cls_metrics(0.1))  # no classifier counts for the floor
    df = targets_table(tmp_path)
    cross, real, ucsd, seg, floor = df.index
    assert "COVID-CT-MD" in cross and "held-out" in real and "UCSD" in ucsd
    assert df.loc[cross, "ours"] == pytest.approx(0.60)
    assert df.loc[cross, "ours std"] == pytest.approx(0.1414, abs=1e-4)  # sample std of 2 seeds
    assert df.loc[cross, "short by"] == pytest.approx(0.25)
    assert df.loc[cross, "status"] == "missed" and "what was tried" in df.loc[cross, "about a miss"]
    assert df.loc[real, "ours"] == pytest.approx(0.90) and df.loc[real, "status"] == "met"
    assert df.loc[real, "about a miss"] == "" and df.loc[real, "short by"] != df.loc[real, "short by"]
    assert df.loc[ucsd, "status"] == "met" and df.loc[ucsd, "seeds"] == 2
    assert df.loc[seg, "ours"] == pytest.approx(0.74) and df.loc[seg, "status"] == "met"
    assert df.loc[floor, "ours"] == pytest.approx(0.41) and df.loc[floor, "status"] == "missed"
    assert df.loc[floor, "seeds"] == 5  # the 5 segmentation seeds of both profiles
    assert df.loc[floor, "short by"] == pytest.approx(0.09)
    notes = df.attrs["notes"]
    assert any("jcs-classifier-efficientnet-lite2-pixel 90.0" in n for n in notes)  # beside it
    assert any("jcs-seg-base 70.0" in n for n in notes)
    assert "Lowest seed: cpu: table7/dss seed 1 (of 5 seeds of Tables V–VII)." in notes
    shown = report.format_table(df)
    assert shown.loc[cross, "ours"] == "60.0 ± 14.1" and shown.loc[cross, "short by"] == "25.0"
    assert shown.loc[floor, "seeds"] == "5" and shown.loc[real, "short by"] == "—"


def test_missing_results_say_so_and_none_at_all_raises(tmp_path):
    _pretrained(tmp_path, "table5", "jcs-seg", 0, metrics=_seg_metrics(0.6))
    goal = Target("Dice", "cpu-pretrained", "table5", "jcs-seg", "dice", 0.72, explained="there")
    other = Target("AUC", "cpu-pretrained", "classification", "jcs-classifier-efficientnet-lite2",
                   "roc_auc", 0.9, "covid-ct-md")
    df = targets_table(tmp_path, [goal, other], floor=None)
    assert list(df["status"]) == ["missed", "no results"] and len(df) == 2
    assert df.loc["Dice", "about a miss"] == "there"
    assert df.loc["AUC", "seeds"] == 0 and df.loc["AUC", "short by"] != df.loc["AUC", "short by"]
    with pytest.raises(report.ResultsNotFoundError, match="no results for any target"):
        targets_table(tmp_path / "empty")


def test_the_committed_targets_are_read():
    """Every goal has three seeds in the committed cpu-pretrained results, and the floor holds."""
    df = targets_table(report.project_dir("results"))
    assert (df["seeds"].iloc[:-1] == 3).all()
    assert df["status"].iloc[-1] == "met"
