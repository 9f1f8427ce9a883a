"""jcs.engine.results: file naming, JSON writing (NaN → null, atomic), schema validation."""
import json

import pytest

from jcs.engine.results import (COMMON_KEYS, SCHEMA, SCHEMA_VERSION, TRAIN_KEYS, finished,
                                load_result, load_results, predictions_dir, result_path,
                                write_result)


def _result(name="jcs-seg", seed=0, **changes):
    r = {k: None for k in COMMON_KEYS + TRAIN_KEYS}
    r.update(schema=SCHEMA, schema_version=SCHEMA_VERSION, kind="train", profile="smoke",
             experiment="table5", name=name, seed=seed, config_hash="abc",
             metrics={"dice": float("nan"), "iou": 0.5})
    r.update(changes)
    return r


def test_paths():
    assert result_path("res", "cpu", "table5", "jcs-seg").as_posix() == "res/cpu/table5/jcs-seg.json"
    assert result_path("res", "cpu", "table5", "jcs-seg", seed=2).name == "jcs-seg.seed2.json"
    assert predictions_dir(result_path("r", "cpu", "t", "unet")).name == "unet_predictions"


def test_write_then_load_roundtrip(tmp_path):
    path = write_result(result_path(tmp_path, "smoke", "table5", "jcs-seg"), _result())
    raw = json.loads(path.read_text())
    assert raw["metrics"] == {"dice": None, "iou": 0.5}  # NaN is not valid JSON
    loaded = load_result(path)
    assert loaded["path"] == str(path) and loaded["name"] == "jcs-seg"
    assert not list(path.parent.glob(".*.tmp"))
    assert finished(path, "abc") and not finished(path, "other")
    assert not finished(tmp_path / "missing.json", "abc")


def test_load_results_sorted_and_filtered(tmp_path):
    for name, seed in (("unet", 0), ("dss", 1), ("dss", 0)):
        write_result(result_path(tmp_path, "smoke", "table7", name, seed), _result(name, seed))
    write_result(result_path(tmp_path, "cpu", "table7", "dss"), _result("dss"))
    (tmp_path / "smoke" / "table7" / "notes.json").write_text("[1, 2]")  # ignored: not a result
    found = [(r["name"], r["seed"]) for r in load_results(tmp_path, "smoke")]
    assert found == [("dss", 0), ("dss", 1), ("unet", 0)]
    assert len(load_results(tmp_path)) == 4
    assert load_results(tmp_path, "smoke", "table5") == []


def test_missing_key_or_wrong_version_is_an_error(tmp_path):
    bad = _result()
    del bad["loss"]
    path = write_result(tmp_path / "bad.json", bad)
    with pytest.raises(ValueError, match="lacks key.*loss"):
        load_result(path)
    path = write_result(tmp_path / "old.json", _result(schema_version=0))
    with pytest.raises(ValueError, match="schema_version"):
        load_result(path)
