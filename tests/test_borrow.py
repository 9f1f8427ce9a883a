"""Runs shared between profiles (jcs.engine.borrow): cpu-pretrained takes cpu's from-scratch runs
(U-Net, the Res2Net classifiers) instead of training them again, and only those."""
import hashlib
import json
import shutil
import sys
from pathlib import Path

import pytest

import jcs.engine  # noqa: F401  (registers the modules read below)
from jcs.engine.borrow import DONORS, borrow_run, shared_config
from jcs.engine.profiles import get_profile, run_fields
from jcs.engine.results import finished, load_result, predictions_dir, result_path
from jcs.report.results import borrowed_notes

REPO = Path(__file__).resolve().parents[1]
TRAIN = sys.modules["jcs.engine.train"]
EXPERIMENTS = sys.modules["jcs.engine.experiments"]
UNET = REPO / "results" / "cpu" / "table7" / "unet.json"


class Trained(Exception):
    """Raised where a test run would have started training."""


def _no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise Trained()
    monkeypatch.setattr(TRAIN, "build_splits", refuse)
    monkeypatch.setattr(TRAIN, "_fit", refuse)


def _copy_donor(tmp_path: Path, seeds=(0,)) -> Path:
    results = tmp_path / "results"
    for seed in seeds:
        source = result_path(REPO / "results", "cpu", "table7", "unet", seed)
        target = result_path(results, "cpu", "table7", "unet", seed)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
        if predictions_dir(source).is_dir():
            shutil.copytree(predictions_dir(source), predictions_dir(target))
    return results


def _config(model: str, profile: str, **changes) -> dict:
    prof = get_profile(profile)
    task = "segmentation" if model != "jcs-classifier" else "classification"
    options = TRAIN.model_options(model, prof)
    config = {"profile": run_fields(prof.to_dict(), task), "model": model, "model_options": options,
              "name": model, "experiment": "table7", "dataset": "medseg", "seed": 0,
              "pixel_supervised": False, "initialised": False, "precision": "fp32",
              "channels_last": prof.channels_last, "device_type": "cpu"}
    config.update(changes)
    return config


def test_only_cpu_pretrained_borrows_and_only_from_cpu():
    assert DONORS == {"cpu-pretrained": "cpu"}
    cp = get_profile("cpu-pretrained")
    donor = shared_config(_config("unet", "cpu-pretrained"), cp, "segmentation")
    assert donor is not None and donor["profile"] == run_fields(get_profile("cpu").to_dict(),
                                                                "segmentation")
    # a profile without a donor, a model that takes packaged weights, a joint model from parts
    assert shared_config(_config("unet", "cpu"), get_profile("cpu"), "segmentation") is None
    dss = _config("dss", "cpu-pretrained")
    assert dss["model_options"].get("pretrained") == "packaged"
    assert shared_config(dss, cp, "segmentation") is None
    assert shared_config(_config("unet", "cpu-pretrained", initialised=True), cp,
                         "segmentation") is None


def test_a_recipe_change_is_not_the_same_run():
    cp = get_profile("cpu-pretrained", {"seg.epochs": 3})
    assert shared_config(_config("unet", "cpu-pretrained") | {
        "profile": run_fields(cp.to_dict(), "segmentation")}, cp, "segmentation") is None


@pytest.mark.skipif(not UNET.is_file(), reason="committed cpu U-Net results not present")
def test_reproduce_borrows_the_committed_cpu_unet_instead_of_training(tmp_path, monkeypatch):
    _no_training(monkeypatch)
    results = _copy_donor(tmp_path, seeds=(0,))
    summary = EXPERIMENTS.reproduce("cpu-pretrained", results_dir=results, seeds=[0],
                                    only=["table7/unet"], runs_dir=tmp_path / "runs", quiet=True)
    assert [s["status"] for s in summary] == ["borrowed"]
    donor_file = result_path(results, "cpu", "table7", "unet")
    target = result_path(results, "cpu-pretrained", "table7", "unet")
    donor, got = load_result(donor_file), load_result(target)
    block = got["borrowed_from"]
    assert block["profile"] == "cpu" and block["result"] == "cpu/table7/unet.json"
    assert block["sha256"] == hashlib.sha256(donor_file.read_bytes()).hexdigest()
    assert "name, pretrained" in block["reason"]
    # the run that happened, unchanged; only the profile and its config are this profile's
    for key in ("metrics", "per_image", "timing", "environment", "checkpoint", "loss", "data"):
        assert got[key] == donor[key], key
    assert got["profile"] == "cpu-pretrained"
    assert got["config"]["profile"]["name"] == "cpu-pretrained"
    assert got["config"]["precision"] == donor["config"]["precision"]  # as it ran
    assert finished(target, got["config"], "segmentation")
    copied = sorted(p.name for p in predictions_dir(target).iterdir())
    assert copied and copied == sorted(p.name for p in predictions_dir(donor_file).iterdir())
    assert got["predictions"] == predictions_dir(target).as_posix()
    # a second reproduce trains nothing, borrows nothing and leaves the same file
    before = target.read_bytes()
    again = EXPERIMENTS.reproduce("cpu-pretrained", results_dir=results, seeds=[0],
                                  only=["table7/unet"], runs_dir=tmp_path / "runs", quiet=True)
    assert [s["status"] for s in again] == ["skipped"]
    assert target.read_bytes() == before
    # the donor retrained with the same configuration (--force): borrowed again, not kept stale
    data = json.loads(donor_file.read_text())
    data["metrics"]["dice"] = 0.123
    donor_file.write_text(json.dumps(data))
    third = EXPERIMENTS.reproduce("cpu-pretrained", results_dir=results, seeds=[0],
                                  only=["table7/unet"], runs_dir=tmp_path / "runs", quiet=True)
    assert [s["status"] for s in third] == ["borrowed"]
    got = load_result(target)
    assert got["metrics"]["dice"] == 0.123
    assert got["borrowed_from"]["sha256"] == hashlib.sha256(donor_file.read_bytes()).hexdigest()


@pytest.mark.skipif(not UNET.is_file(), reason="committed cpu U-Net results not present")
def test_a_donor_run_of_other_data_is_trained_again_not_borrowed(tmp_path, monkeypatch):
    _no_training(monkeypatch)
    results = _copy_donor(tmp_path)
    donor_file = result_path(results, "cpu", "table7", "unet")
    data = json.loads(donor_file.read_text())
    data["config"]["dataset"] = "covid-semiseg"
    donor_file.write_text(json.dumps(data))
    with pytest.raises(Trained):
        TRAIN.train("unet", profile="cpu-pretrained", results_dir=results,
                    runs_dir=tmp_path / "runs", experiment="table7", seed=0, skip_finished=True,
                    quiet=True)
    assert not result_path(results, "cpu-pretrained", "table7", "unet").exists()
    # without skip_finished (--force) nothing is borrowed either: the user asked for a run
    results2 = _copy_donor(tmp_path / "b")
    with pytest.raises(Trained):
        TRAIN.train("unet", profile="cpu-pretrained", results_dir=results2,
                    runs_dir=tmp_path / "runs", experiment="table7", seed=0, quiet=True)
    assert borrow_run(_config("unet", "cpu-pretrained", seed=1), get_profile("cpu-pretrained"),
                      "segmentation", results2, "table7", "unet", 1) is None  # no donor file


def test_joint_parts_use_the_checkpoint_a_borrowed_classifier_names(tmp_path):
    prof = get_profile("cpu-pretrained")
    result = result_path(tmp_path / "results", prof.name, "classification", "jcs-classifier", 0)
    result.parent.mkdir(parents=True)
    record = json.loads(UNET.read_text()) if UNET.is_file() else {}
    record.update(schema="jcs-result", schema_version=1, checkpoint="runs/cpu/x/model.pt",
                  borrowed_from={"profile": "cpu"})
    for key in ("kind", "profile", "experiment", "name", "seed", "config", "config_hash",
                "metrics", "data", "timing", "memory", "environment", "model", "task",
                "per_image", "loss", "predictions", "init_from"):
        record.setdefault(key, None)
    result.write_text(json.dumps(record))
    got = EXPERIMENTS._trained_weights(prof, tmp_path / "results", tmp_path / "runs",
                                       "classification", "jcs-classifier", 0)
    assert got == Path("runs/cpu/x/model.pt")
    own = EXPERIMENTS._trained_weights(prof, tmp_path / "results", tmp_path / "runs", "table5",
                                       "jcs-seg", 0)
    assert own == tmp_path / "runs" / prof.name / "table5" / "jcs-seg" / "seed0" / "model.pt"


def test_borrowed_notes_name_runs_and_seeds():
    runs = {("table7", "unet"): [{"name": "unet", "seed": s, "borrowed_from": {"profile": "cpu"}}
                                 for s in (0, 2)],
            ("table7", "dss"): [{"name": "dss", "seed": 0}]}
    (note,) = borrowed_notes(runs, "packaged init (cpu-pretrained)")
    assert note.startswith("packaged init (cpu-pretrained): unet (seeds 0, 2) are the cpu runs")
    assert "dss" not in note
    assert borrowed_notes({("table7", "dss"): [{"name": "dss", "seed": 0}]}, "x") == []


@pytest.mark.skipif(not UNET.is_file(), reason="committed cpu U-Net results not present")
def test_pretraining_gap_does_not_compare_a_borrowed_run_with_itself(tmp_path, monkeypatch):
    import math

    from jcs.report import pretraining_gap

    _no_training(monkeypatch)
    results = _copy_donor(tmp_path, seeds=(0, 1))
    EXPERIMENTS.reproduce("cpu-pretrained", results_dir=results, seeds=[0, 1],
                          only=["table7/unet"], runs_dir=tmp_path / "runs", quiet=True)
    gap = pretraining_gap(results)
    rows = [key for key in gap.index if key[2] == "Dice" and "U-Net" in key[1]]
    assert rows, list(gap.index)
    row = gap.loc[rows[0]]
    scratch, pretrained = [c for c in gap.columns if c.startswith("ours") and "std" not in c]
    assert row[scratch] == row[pretrained]  # the same runs
    assert math.isnan(row["gap closed"])
    own = sum(1 for key in gap.index if "U-Net" not in key[1]
              and gap.loc[key][[scratch, pretrained]].notna().all())
    assert gap.attrs["compared"] == own  # the U-Net rows compare nothing
    assert any("unet (seeds 0, 1) are the cpu runs" in n and n.endswith("gap closed is n/a.")
               for n in gap.attrs["notes"])


@pytest.mark.skipif(not UNET.is_file(), reason="committed cpu U-Net results not present")
def test_saved_activation_maps_travel_with_a_borrowed_run(tmp_path):
    results = _copy_donor(tmp_path)
    donor = result_path(results, "cpu", "table7", "unet")
    cams = donor.with_name("unet_cams")
    cams.mkdir()
    (cams / "a.png").write_bytes(b"png")
    config = load_result(donor)["config"]
    config["profile"] = run_fields(get_profile("cpu-pretrained").to_dict(), "segmentation")
    got = borrow_run(config, get_profile("cpu-pretrained"), "segmentation", results, "table7",
                     "unet", 0)
    assert got is not None
    assert (Path(got["path"]).with_name("unet_cams") / "a.png").read_bytes() == b"png"


def test_a_classifier_is_borrowed_only_with_its_weights(tmp_path):
    """Table IV and jcs-joint load a borrowed classifier's weights: without them it is trained."""
    results, runs = tmp_path / "results", tmp_path / "runs"
    cp = get_profile("cpu-pretrained")
    task = "classification"
    config = _config("jcs-classifier", "cpu-pretrained", experiment="classification",
                     dataset="ucsd-covid-ct+sarscov2-ct", name="jcs-classifier")
    config["profile"] = run_fields(cp.to_dict(), task)
    donor_config = shared_config(config, cp, task)
    assert donor_config is not None  # cls_finetune differs but acts only on fine-tuned runs
    source = result_path(results, "cpu", "classification", "jcs-classifier")
    source.parent.mkdir(parents=True)
    record = {k: None for k in ("kind", "experiment", "data", "timing", "memory", "environment",
                                "task", "per_image", "loss", "predictions", "init_from")}
    record.update(schema="jcs-result", schema_version=1, profile="cpu", name="jcs-classifier",
                  model="jcs-classifier", seed=0, config=donor_config, config_hash="x",
                  metrics={"roc_auc": 0.6}, checkpoint="elsewhere/model.pt")
    source.write_text(json.dumps(record))
    args = (config, cp, task, results, "classification", "jcs-classifier", 0, runs)
    assert borrow_run(*args) is None  # no weights under runs/cpu/...
    weights = runs / "cpu" / "classification" / "jcs-classifier" / "seed0" / "model.pt"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"w")
    got = borrow_run(*args)
    assert got["borrowed_now"] and got["checkpoint"] == weights.as_posix()
    assert "cls_finetune" in got["borrowed_from"]["reason"]
    assert EXPERIMENTS._trained_weights(cp, results, runs, "classification", "jcs-classifier",
                                        0) == weights


def test_weak_notes_do_not_contradict_a_collapsed_seed():
    from jcs.report.health import weak_notes
    runs = {"dss": [{"name": "dss", "seed": 0, "metrics": {"sensitivity": 0.7, "dice": 0.6}},
                    {"name": "dss", "seed": 1, "metrics": {"sensitivity": 0.001, "dice": 0.002}}]}
    (note,) = weak_notes(runs, "cpu")
    assert note == "cpu: every seed that did not collapse reaches Dice 50% at 0.5 (1 of 2 runs)."


@pytest.mark.skipif(not UNET.is_file(), reason="committed cpu U-Net results not present")
def test_borrowed_runs_count_once_and_do_not_pick_a_profile(tmp_path, monkeypatch):
    from jcs.report.results import provenance_table, resolve_profile, training_minutes

    _no_training(monkeypatch)
    results = _copy_donor(tmp_path, seeds=(0,))
    EXPERIMENTS.reproduce("cpu-pretrained", results_dir=results, seeds=[0],
                          only=["table7/unet"], runs_dir=tmp_path / "runs", quiet=True)
    assert training_minutes(results, "cpu-pretrained", ["table7"]) == 0
    assert training_minutes(results, "cpu", ["table7"]) > 0
    # cpu-pretrained ranks before cpu, but holds only cpu's numbers here
    assert resolve_profile(results, "auto", ["table7"]) == "cpu"
    table = provenance_table(results, "cpu-pretrained", "table7")
    assert list(table["borrowed from"]) == ["cpu/table7/unet.json"]
    assert "borrowed from" not in provenance_table(results, "cpu", "table7")


def test_joint_parts_missing_say_which_command_makes_them(tmp_path):
    """A fresh clone has no runs/: the warning names the missing checkpoints and the command that
    trains exactly those (here only the segmentation part is missing)."""
    prof = get_profile("cpu")
    cls = tmp_path / "runs" / "cpu" / "classification" / "jcs-classifier-pixel" / "seed1" / "model.pt"
    cls.parent.mkdir(parents=True)
    cls.write_bytes(b"x")
    with pytest.warns(UserWarning, match="trained parts not found") as caught:
        got = EXPERIMENTS._joint_parts(prof, tmp_path / "results", tmp_path / "runs", 1)
    assert got is None
    message = str(caught[0].message)
    assert "jcs-seg/seed1/model.pt" in message and "jcs-classifier-pixel/seed1" not in message
    assert message.endswith("jcs reproduce --profile cpu --seeds 1 --only table5/jcs-seg --force")
    (tmp_path / "runs" / "cpu" / "table5" / "jcs-seg" / "seed1").mkdir(parents=True)
    (tmp_path / "runs" / "cpu" / "table5" / "jcs-seg" / "seed1" / "model.pt").write_bytes(b"x")
    parts = EXPERIMENTS._joint_parts(prof, tmp_path / "results", tmp_path / "runs", 1)
    assert parts == {"classifier": cls,
                     "segmentation": tmp_path / "runs/cpu/table5/jcs-seg/seed1/model.pt"}
