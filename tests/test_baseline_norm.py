"""Trainable BN in the VGG16 body of DSS, PoolNet and EGNet where a profile trains from scratch
(``Profile.baseline_norm``), model revision 3, and the report leaving out seeds of an older
revision when others of the run are current."""
import pytest
import torch
import torch.nn as nn

import jcs.report as report
from jcs.engine.profiles import get_profile
from jcs.engine.train import MODEL_REVISIONS, PLAIN_VGG_BASELINES, model_options
from jcs.models import create_model
from jcs.report.results import revision_left_out, revision_notes

from test_models_comparison import SIZES
from test_report import _fake, _seg_metrics

# 2 × (64·2 + 128·2 + 256·3 + 512·3 + 512·3): BN weight and bias after each of the 13 convs
BN_PARAMS = 2 * (2 * 64 + 2 * 128 + 3 * 256 + 6 * 512)


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", PLAIN_VGG_BASELINES)
def test_bn_adds_13_batchnorms_to_the_vgg_body_only(name):
    assert BN_PARAMS == 8_448
    plain = SIZES[name][0]
    faithful, with_bn = create_model(name), create_model(name, norm="bn")
    assert _params(faithful) == plain  # the authors' architecture (models_and_metrics.md §0)
    assert _params(with_bn) == plain + BN_PARAMS
    assert not any(isinstance(m, nn.BatchNorm2d) for m in faithful.modules())
    bns = [m for m in with_bn.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 13 and all(any(b is m for m in with_bn.body.modules()) for b in bns)
    with pytest.raises(ValueError, match="norm must be one of"):
        create_model(name, norm="frozen")


def test_bn_body_trains_and_takes_packaged_weights():
    torch.manual_seed(0)
    model = create_model("dss", norm="bn", pretrained="packaged")
    plain = create_model("dss", pretrained="packaged")
    for a, b in zip(model.body.conv_layers(), plain.body.conv_layers()):
        assert torch.equal(a.conv.weight, b.conv.weight)  # the same HED VGG16 convolutions
    model.train()
    x = torch.randn(2, 3, 64, 64)
    outputs = model(x)
    loss = model.criterion()(outputs, (torch.rand(2, 1, 64, 64) > 0.7).float())
    loss.backward()
    bn = next(m for m in model.body.modules() if isinstance(m, nn.BatchNorm2d))
    assert bn.weight.grad is not None and bn.running_mean.abs().sum() > 0


def test_profiles_give_the_baselines_bn_where_they_train_from_scratch():
    for profile in ("cpu", "gpu", "smoke", "cpu-pretrained"):  # cpu-pretrained: the cpu recipe
        for model in PLAIN_VGG_BASELINES:
            assert model_options(model, get_profile(profile))["norm"] == "bn"
    assert model_options("dss", get_profile("paper"))["norm"] == "none"  # the authors' VGG16
    assert model_options("jcs-seg", get_profile("cpu")) == {"norm": "bn"}  # unchanged
    assert model_options("jcs-seg", get_profile("paper"))["norm"] == "frozen"
    assert get_profile("cpu", {"baseline_norm": "none"}).baseline_norm == "none"
    with pytest.raises(ValueError, match="baseline_norm must be one of"):
        get_profile("cpu", {"baseline_norm": "frozen"})
    assert all(MODEL_REVISIONS[m] == 3 for m in PLAIN_VGG_BASELINES)


def test_seeds_of_an_older_revision_leave_the_mean_when_others_are_current(tmp_path):
    current = MODEL_REVISIONS["dss"]
    for seed, rev, dice in ((0, current, 0.6), (1, current - 1, 0.4), (2, current - 1, 0.4)):
        _fake(tmp_path, "cpu", "table7", "dss", seed=seed, metrics=_seg_metrics(dice),
              config={"model_revision": rev, "profile": {"pretrained": False}})
    for seed in (0, 1):  # no seed current: every seed stays, with outdated_notes' note
        _fake(tmp_path, "cpu", "table7", "egnet", seed=seed, metrics=_seg_metrics(0.6),
              config={"model_revision": current - 1, "profile": {"pretrained": False}})
    results = report.load_runs(tmp_path, "cpu", "table7", keep_superseded=True)
    assert revision_left_out([r for rs in results.values() for r in rs]) == {
        "dss": [(1, current - 1), (2, current - 1)]}
    runs = report.load_runs(tmp_path, "cpu", "table7")
    assert [r["seed"] for r in runs["dss"]] == [0] and len(runs["egnet"]) == 2
    (note,) = revision_notes(tmp_path, "cpu", "cpu")
    assert note.startswith("cpu: dss seeds 1, 2 left out of the mean")
    assert "trainable BN" in note and "--seeds 1 2 --only table7/dss" in note
    assert revision_notes(tmp_path, "cpu", "", seeds=[0]) == []
    assert revision_notes(tmp_path, "cpu", "", experiments=["table5"]) == []
