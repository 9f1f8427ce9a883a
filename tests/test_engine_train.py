"""jcs.engine training on real data with the ``smoke`` profile (4 images, 2 iterations):
results-file schema, resume after a kill, evaluate() on the saved weights, reproduce() skipping
finished experiments, a classifier run, and (slow) every registered model."""
import math
from pathlib import Path

import pytest
import torch

from jcs.data import SegmentationSlices
from jcs.engine import evaluate, get_profile, load_result, reproduce, train
from jcs.engine.provenance import sha256_file
from jcs.engine.results import COMMON_KEYS, TRAIN_KEYS
from jcs.models import list_models

pytestmark = pytest.mark.xdist_group("engine")
FAST_MODEL = "unet-bilinear"  # the cheapest segmentation model at smoke size


def _finite_numbers(value):
    """Every number inside ``value`` (nested dicts / lists), None (= NaN in JSON) excluded."""
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, (int, float)):
        return [value]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _finite_numbers(v)]
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _finite_numbers(v)]
    return []


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, data_dir):
    """reproduce() of one Table VII model with the smoke profile."""
    base = tmp_path_factory.mktemp("engine")
    kwargs = dict(results_dir=base / "results", runs_dir=base / "runs", only="table7/unet",
                  quiet=True, overrides={"precision": "fp32"})
    summary = reproduce("smoke", **kwargs)
    return base, kwargs, summary


def test_reproduce_writes_then_skips_finished(smoke_run):
    base, kwargs, summary = smoke_run
    assert [(s["experiment"], s["name"], s["status"]) for s in summary] == [("table7", "unet", "done")]
    again = reproduce("smoke", **kwargs)
    assert [s["status"] for s in again] == ["skipped"] and again[0]["seconds"] < 30


def test_results_schema(smoke_run):
    base, _, summary = smoke_run
    result = load_result(summary[0]["path"])
    for key in COMMON_KEYS + TRAIN_KEYS:
        assert key in result, key
    assert result["profile"] == "smoke" and result["model"] == "unet" and result["task"] == "segmentation"
    for key in ("dice", "iou", "e_adaptive", "e_mean", "e_max", "s_measure", "mae", "dice_mean"):
        assert 0.0 <= result["metrics"][key] <= 1.0, key
    assert len(result["per_image"]) == result["metrics"]["n_images"] == 4
    assert {"name", "dice", "iou", "lesion_area"} <= set(result["per_image"][0])
    assert all(math.isfinite(x) for x in _finite_numbers(result))
    assert len(result["loss"]["epoch"]) == 2 and len(result["loss"]["iteration_loss"]) == 2
    data = result["data"]
    assert data["dataset"] == "medseg" and len(data["splits"]["train"]) == 4
    assert data["manifest_match"] is True
    assert all(len(h) == 64 for h in data["files"].values()) and len(data["files"]) == 16
    env = result["environment"]
    assert {"torch", "numpy", "jcs"} <= set(env["versions"]) and env["device"]["name"]
    assert "sha" in env["git"] and "dirty" in env["git"]
    # fp32 on a CPU trains contiguous whatever the profile asks; the config (and its hash) keeps
    # the profile's request, the environment the format used
    assert env["channels_last_requested"] is result["config"]["channels_last"] is get_profile("smoke").channels_last
    assert env["channels_last"] is False
    assert result["timing"]["train_s"] > 0 and result["memory"]["bytes"] > 0
    previews = sorted(p.name for p in (base / "results/smoke/table7/unet_predictions").iterdir())
    assert len(previews) == 2 and previews[0].endswith(".png")
    assert "checkpoint" in result and not str(result["checkpoint"]).startswith(str(base / "results"))


def test_evaluate_saved_checkpoint_matches_result(smoke_run, tmp_path):
    _, _, summary = smoke_run
    result = load_result(summary[0]["path"])
    all_names = [sample[0] for sample in SegmentationSlices("medseg", "test", 128).samples]
    subset = [all_names.index(n) for n in result["data"]["splits"]["test"]]
    ev = evaluate(result["checkpoint"], "medseg", "test", gt_size=None, indices=subset,
                  precision="fp32", save_predictions=tmp_path / "pred", quiet=True)
    assert ev["input_size"] == 128 and ev["model"] == "unet"
    assert ev["metrics"]["dice"] == pytest.approx(result["metrics"]["dice"], abs=1e-6)
    assert ev["metrics"]["mae"] == pytest.approx(result["metrics"]["mae"], abs=1e-6)
    assert len(list((tmp_path / "pred").glob("*.png"))) == 4


def test_resume_after_kill_equals_uninterrupted(tmp_path, data_dir):
    common = dict(profile="smoke", experiment="resume", quiet=True)
    full = train(FAST_MODEL, results_dir=tmp_path / "a", runs_dir=tmp_path / "a", **common)

    class Killed(Exception):
        pass

    def kill_after_first_epoch(info):
        if info["epoch"] == 1:
            raise Killed

    with pytest.raises(Killed):
        train(FAST_MODEL, results_dir=tmp_path / "b", runs_dir=tmp_path / "b",
              callbacks=[kill_after_first_epoch], **common)
    assert not (tmp_path / "b/smoke/resume/unet-bilinear.json").exists()  # killed: no result
    with pytest.raises(ValueError, match="another configuration"):
        train(FAST_MODEL, results_dir=tmp_path / "b", runs_dir=tmp_path / "b", resume=True,
              overrides={"seg.lr": 1.0}, **common)
    resumed = train(FAST_MODEL, results_dir=tmp_path / "b", runs_dir=tmp_path / "b", resume=True,
                    **common)
    assert resumed["loss"] == full["loss"]
    assert resumed["metrics"] == full["metrics"]
    a = torch.load(full["checkpoint"], weights_only=True)["model"]
    b = torch.load(resumed["checkpoint"], weights_only=True)["model"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # which process (and code) trained which iterations: one segment uninterrupted, two resumed
    total = full["loss"]["iterations"]
    (one,) = full["timing"]["segments"]
    assert (one["from_iteration"], one["to_iteration"], one["from_epoch"]) == (0, total, 0)
    assert one["code"]["sha"] == full["environment"]["git"]["sha"] and one["train_s"] > 0
    first, second = resumed["timing"]["segments"]
    assert first["from_iteration"] == 0 and first["to_epoch"] == 1
    assert second["from_iteration"] == first["to_iteration"] and second["to_iteration"] == total
    assert second["from_epoch"] == 1 and second["code"] == resumed["environment"]["git"]
    assert resumed["timing"]["train_s"] == pytest.approx(first["train_s"] + second["train_s"],
                                                         abs=0.01)


def test_a_checkpoint_from_before_segments_resumes_with_an_unknown_first_segment(tmp_path,
                                                                                  data_dir):
    common = dict(profile="smoke", experiment="resume", quiet=True, results_dir=tmp_path,
                  runs_dir=tmp_path)

    class Killed(Exception):
        pass

    def kill(info):
        raise Killed

    with pytest.raises(Killed):
        train(FAST_MODEL, callbacks=[kill], **common)
    (checkpoint,) = tmp_path.rglob("checkpoint.pt")
    payload = torch.load(checkpoint, weights_only=True)
    del payload["segments"]  # as written before segments were recorded
    torch.save(payload, checkpoint)
    resumed = train(FAST_MODEL, resume=True, **common)
    old, new = resumed["timing"]["segments"]
    assert old["code"] is None and "not known" in old["note"]
    assert old["to_iteration"] == payload["iteration"] == new["from_iteration"]


def test_pixel_supervised_classifier_smoke(tmp_path, data_dir):
    result = train("jcs-classifier-res2net50", profile="smoke", experiment="classification",
                   name="res2net50-pixel", pixel_supervised=True, results_dir=tmp_path,
                   runs_dir=tmp_path, quiet=True)
    train_names = result["data"]["splits"]["train"]
    assert sum(n.startswith("medseg/") for n in train_names) == 4  # MedSeg TRAIN slices added
    medseg_test = set(result["data"]["splits"]["test"])
    assert not any(n.startswith("medseg/") for n in medseg_test)
    assert {"sensitivity", "specificity", "roc_auc", "accuracy"} <= set(result["metrics"])
    assert [r["label"] for r in result["per_image"]] == [1, 1, 0, 0]
    assert len(result["loss"]["val"]) == 2 and result["loss"]["best_epoch"] in (1, 2)
    assert result["config"]["pixel_supervised"] is True


@pytest.mark.slow
@pytest.mark.parametrize("model", list_models())
def test_every_model_trains_on_real_slices(model, tmp_path, data_dir):
    result = train(model, profile="smoke", results_dir=tmp_path, runs_dir=tmp_path, quiet=True,
                   overrides={"seg.epochs": 1, "cls.epochs": 1})
    assert result["loss"]["iterations"] == 1
    assert all(math.isfinite(x) for x in result["loss"]["epoch"])
    assert result["metrics"]["n_images" if result["task"] == "segmentation" else "n_pos"] >= 1


@pytest.mark.slow
def test_reproduce_pipeline_joint_from_parts_and_patients(tmp_path, data_dir):
    summary = reproduce("smoke", results_dir=tmp_path / "r", runs_dir=tmp_path / "runs", quiet=True,
                        only=["classification", "table5/jcs-seg", "table6", "table4"],
                        overrides={"cls.epochs": 1, "seg.epochs": 1})
    assert [s["status"] for s in summary] == ["done"] * 6
    joint = load_result(tmp_path / "r/smoke/table6/jcs-joint.json")
    assert joint["init_from"]["classifier"].endswith("jcs-classifier-pixel/seed0/model.pt")
    assert joint["init_from"]["segmentation"].endswith("table5/jcs-seg/seed0/model.pt")
    files = joint["initialisation"]["part_files"]  # which training of each part seeded it
    for part, experiment in (("classifier", "classification"), ("segmentation", "table5")):
        assert files[part]["sha256"] == sha256_file(Path(joint["init_from"][part]))
        trained = load_result(tmp_path / "r/smoke" / experiment /
                              f"{Path(joint['init_from'][part]).parent.parent.name}.json")
        assert files[part]["config_hash"] == trained["config_hash"]
    sweep = load_result(tmp_path / "r/smoke/table4/jcs-classifier.json")
    assert sweep["thresholds"]["scaled"] == [7.5, 10.0, 12.5, 15.0]
    ids = [p["id"] for p in sweep["patients"]]  # + the PyRadiomics volumes where data/ has them
    assert ids[:6] == ["P001", "P002", "cap001", "cap002", "normal001", "normal002"]
    assert ids[6:] in ([], ["lung1", "lung2"])
    assert all(len(p["slice_scores"]) == 4 for p in sweep["patients"])
    assert get_profile("smoke").patient_max_slices == 4


def test_train_on_a_dict_of_datasets(tmp_path):
    """Custom data (here synthetic slices) go in as {"train", "test"} datasets of item dicts."""
    from jcs.data import mask_to_tensor, synthetic_ct, to_network_input

    images, masks = synthetic_ct(4, size=64, seed=1)
    items = [{"image": to_network_input(im, 64), "mask": mask_to_tensor(m, 64), "name": f"syn{i}"}
             for i, (im, m) in enumerate(zip(images, masks))]
    result = train(FAST_MODEL, {"train": items[:2], "test": items[2:]}, profile="smoke",
                   results_dir=tmp_path, runs_dir=tmp_path, quiet=True)
    assert result["data"] == {"dataset": "custom", "splits": {"train": ["syn0", "syn1"],
                                                                "test": ["syn2", "syn3"]}}
    assert [r["name"] for r in result["per_image"]] == ["syn2", "syn3"]
    assert result["metrics"]["n_images"] == 2
