"""jcs.report.withdrawn: runs of a withdrawn model change, kept in results/diagnostics/, are named
under their profile's table beside the seed committed now, and never enter a mean."""
import json

import pytest

import jcs.report as report
from jcs.report.withdrawn import withdrawn_notes, withdrawn_runs

from test_report import _fake, _seg_metrics


def _withdrawn(results_dir, name, seed, dice, variant="He init of its body", **extra):
    path = results_dir / "diagnostics" / f"{name}_variant_seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"kind": "train", "profile": "cpu", "experiment": "table7", "name": name, "seed": seed,
              "metrics": {"dice": dice}, "variant": variant, "diagnostic_note": "withdrawn"}
    path.write_text(json.dumps(record | extra))
    return path


def test_withdrawn_runs_are_named_beside_the_current_seed_and_left_out_of_the_mean(tmp_path):
    for seed, dice in ((0, 0.62), (1, 0.60)):
        _fake(tmp_path, "cpu", "table7", "poolnet", seed=seed, metrics=_seg_metrics(dice),
              config={"profile": {"pretrained": False}})
    _withdrawn(tmp_path, "poolnet", 0, 0.444)
    _withdrawn(tmp_path, "poolnet", 2, 0.459)  # no seed 2 committed: no comparison
    _withdrawn(tmp_path, "dss", 0, 0.0, profile="gpu")  # another profile's
    (tmp_path / "diagnostics" / "probe.json").write_text(json.dumps({"auc": 0.6}))  # not a run
    (tmp_path / "diagnostics" / "broken.json").write_text("{")
    _withdrawn(tmp_path, "unet", 0, 0.3)  # made malformed below: skipped, not an error
    bad = json.loads((tmp_path / "diagnostics" / "unet_variant_seed0.json").read_text())
    (tmp_path / "diagnostics" / "unet_variant_seed0.json").write_text(json.dumps(bad | {"seed": None}))
    _withdrawn(tmp_path, "egnet", 0, 0.3, metrics=None)
    assert sorted((r["profile"], r["name"], r["seed"]) for r in withdrawn_runs(tmp_path)) == [
        ("cpu", "poolnet", 0), ("cpu", "poolnet", 2), ("gpu", "dss", 0)]
    runs = report.load_runs(tmp_path, "cpu", "table7")
    (note,) = withdrawn_notes(tmp_path, "cpu", "profile cpu", runs)
    assert note == ("profile cpu: variants tried and not kept (withdrawn changes and probes, in "
                    "results/diagnostics/, outside every mean): poolnet seed 0 with He init of its body: Dice 44.4% "
                    "(the seed committed now: 62.0%), poolnet_variant_seed0.json; poolnet seed 2 "
                    "with He init of its body: Dice 45.9%, poolnet_variant_seed2.json.")
    assert withdrawn_notes(tmp_path, "cpu", "cpu", runs, experiments=["table5"]) == []
    (only,) = withdrawn_notes(tmp_path, "cpu", "cpu", runs, seeds=[0])  # the table's seeds
    assert "seed 0" in only and "seed 2" not in only
    assert withdrawn_notes(tmp_path, "gpu-pretrained", "x", runs) == []
    table = report.table7(tmp_path, "cpu")
    poolnet = list(table.index.get_level_values("Method")).index("PoolNet")
    assert table[("Dice", "ours")].iloc[poolnet] == pytest.approx(0.61)  # the 2 committed seeds
    assert any(n.startswith("profile cpu: variants tried") for n in table.attrs["notes"])


def test_the_committed_withdrawn_runs_are_read():
    """results/diagnostics/ holds the withdrawn PoolNet He-init seeds and the DSS-with-BN seed."""
    found = {(r["profile"], r["name"], r["seed"]) for r in withdrawn_runs(report.project_dir("results"))}
    assert {("cpu", "poolnet", 0), ("cpu", "poolnet", 1), ("cpu", "dss", 0)} <= found
