"""DSS model revision 3: the side paths, short connections and fusion start scale-preserving
(jcs.models.dss.init_heads), and the report leaves seeds of an older revision out of a run's mean
once another seed of the run is current."""
import pytest
import torch
import torch.nn as nn

import jcs.report as report
from jcs.data import SegmentationSlices
from jcs.engine.train import MODEL_REVISIONS
from jcs.models import create_model
from jcs.report.results import revision_left_out, revision_notes

from test_report import _fake, _seg_metrics


def _caffe_init(model: nn.Module) -> None:
    """The earlier init: every added conv N(0, 0.01²), the fusion 1/6."""
    for module in [*model.sides.modules(), model.short4, model.short3, model.short2, model.short1]:
        if isinstance(module, nn.Conv2d):
            nn.init.normal_(module.weight, std=0.01)
            nn.init.zeros_(module.bias)


def test_heads_start_scale_preserving(data_dir):
    torch.manual_seed(0)
    model = create_model("dss")
    assert MODEL_REVISIONS["dss"] == 3
    for conv, n in ((model.short4, 3), (model.short3, 3), (model.short2, 5), (model.short1, 5),
                    (model.fuse, 6)):
        assert torch.equal(conv.weight, torch.full((1, n, 1, 1), 1 / n))  # the mean of its maps
        assert float(conv.bias.detach().abs().sum()) == 0
    for side, (cin, _, width) in zip(model.sides, ((64, 3, 128), (128, 3, 128), (256, 5, 256),
                                                   (512, 5, 256), (512, 5, 512), (512, 7, 512))):
        score = side[2]
        assert score.kernel_size == (1, 1) and score.in_channels == width
        assert abs(float(score.weight.detach().std()) * width ** 0.5 - 1) < 0.2  # variance 1/fan-in
    # on a real CT slice the fused score map varies over 10× more than under the Caffe init
    # (measured at seed 0: logit std 0.030 against 0.0022)
    image = SegmentationSlices("medseg", "test", 128)[0]["image"][None]
    model.eval()
    with torch.no_grad():
        now = model._logits(image)[-1].std()
        _caffe_init(model)
        before = model._logits(image)[-1].std()
    assert now > 0.01 and now > 10 * before


def test_seeds_of_an_older_revision_leave_the_mean_when_others_are_current(tmp_path):
    current = MODEL_REVISIONS["dss"]
    for seed, rev, dice in ((0, current, 0.6), (1, current - 1, 0.4), (2, current - 1, 0.4)):
        _fake(tmp_path, "cpu", "table7", "dss", seed=seed, metrics=_seg_metrics(dice),
              config={"model_revision": rev, "profile": {"pretrained": False}})
    for seed in (0, 1):  # EGNet has no later revision (He init was withdrawn): its seeds are current
        _fake(tmp_path, "cpu", "table7", "egnet", seed=seed, metrics=_seg_metrics(0.6),
              config={"profile": {"pretrained": False}})
    for seed in (0, 1):  # no seed current: every seed stays, with outdated_notes' note
        _fake(tmp_path, "gpu", "table7", "dss", seed=seed, metrics=_seg_metrics(0.6),
              config={"model_revision": current - 1, "profile": {"pretrained": False}})
    results = report.load_runs(tmp_path, "cpu", "table7", keep_superseded=True)
    assert revision_left_out([r for rs in results.values() for r in rs]) == {
        "dss": [(1, current - 1), (2, current - 1)]}
    runs = report.load_runs(tmp_path, "cpu", "table7")
    assert [r["seed"] for r in runs["dss"]] == [0] and len(runs["egnet"]) == 2
    table = report.table7(tmp_path, "cpu")
    assert list(table.index.get_level_values("Method"))[1] == "DSS"
    assert table[("Dice", "ours")].iloc[1] == pytest.approx(0.6)  # seed 0 alone, not with 1, 2
    (note,) = revision_notes(tmp_path, "cpu", "cpu")
    assert note.startswith("cpu: dss seeds 1, 2 left out of the mean")
    assert "scale-preserving init" in note and "--seeds 1 2 --only table7/dss" in note
    assert "He init" not in note  # revision 2 came before these seeds: not named as a change
    assert any(n.startswith("profile cpu: dss seeds 1, 2 left out") for n in table.attrs["notes"])
    assert not [n for n in table.attrs["notes"] if "egnet" in n and "earlier" in n]
    assert len(report.load_runs(tmp_path, "gpu", "table7")["dss"]) == 2
    (old,) = [n for n in report.table7(tmp_path, "gpu").attrs["notes"]
              if "dss were trained with the earlier" in n]
    assert "scale-preserving init" in old and "He init" not in old
    assert revision_notes(tmp_path, "cpu", "", seeds=[0]) == []
    assert revision_notes(tmp_path, "cpu", "", experiments=["table5"]) == []
