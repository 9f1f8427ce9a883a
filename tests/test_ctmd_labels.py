"""COVID-CT-MD slice labels for a COVID-19 classifier: CAP lesions are negatives (jcs.data.ctmd_labels),
the per-group AUC breakdown (jcs.metrics.compute_group_aucs), and where both reach results."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils.data import Dataset

from jcs.data import CTMDSlices
from jcs.data.ctmd_labels import (GROUPS, POSITIVE_GROUP, any_infection_labels, covid_slice_labels,
                                  slice_groups)
from jcs.data.errors import DataError, ShapeMismatchError
from jcs.engine.evaluate import run_evaluation
from jcs.engine.experiments import patient_slice_metrics
from jcs.metrics import compute_group_aucs, roc_auc


def test_slice_groups_by_diagnosis():
    assert slice_groups("COVID-19", [0, 1, 1], 3) == ["COVID-19 clear", "COVID-19 infected",
                                                       "COVID-19 infected"]
    assert slice_groups("CAP", np.array([1, 0]), 2) == ["CAP infected", "CAP clear"]
    assert slice_groups("Normal", None, 2) == ["Normal", "Normal"]
    groups = ["COVID-19 infected", "CAP infected", "CAP clear", "Normal", "COVID-19 clear"]
    assert covid_slice_labels(groups).tolist() == [1, 0, 0, 0, 0]  # a CAP lesion is not COVID-19
    assert any_infection_labels(groups).tolist() == [1, 1, 0, 0, 0]  # the previous definition
    assert set(groups) == set(GROUPS) and POSITIVE_GROUP == "COVID-19 infected"


def test_slice_groups_bad_inputs():
    with pytest.raises(DataError, match="without slice labels"):
        slice_groups("CAP", None, 4)
    with pytest.raises(ShapeMismatchError, match="3 slice labels for 4 slices"):
        slice_groups("COVID-19", [0, 1, 0], 4)
    with pytest.raises(ValueError, match="diagnosis must be one of"):
        slice_groups("covid", [1], 1)
    with pytest.raises(ValueError, match="unknown COVID-CT-MD slice groups"):
        covid_slice_labels(["COVID-19 infected", "pneumonia"])


def test_compute_group_aucs_by_hand():
    # positives 0.9, 0.6; "a" = {0.7, 0.1}: pairs won 1 + 1 (0.9 beats both), 0 + 1 (0.6 beats 0.1)
    # -> 3/4; "b" = {0.95}: won 0 of 2 -> 0.0
    labels = [1, 1, 0, 0, 0]
    scores = [0.9, 0.6, 0.7, 0.1, 0.95]
    groups = ["pos", "pos", "a", "a", "b"]
    out = compute_group_aucs(labels, scores, groups)
    assert out["pos"] == {"n": 2, "label": 1, "mean_score": pytest.approx(0.75), "roc_auc": None}
    assert out["a"]["roc_auc"] == pytest.approx(0.75) and out["a"]["n"] == 2
    assert out["b"]["roc_auc"] == 0.0 and out["b"]["mean_score"] == pytest.approx(0.95)
    assert list(out) == ["pos", "a", "b"]  # first-seen order
    assert math.isnan(compute_group_aucs([0, 0], [0.1, 0.2], ["a", "b"])["a"]["roc_auc"])
    with pytest.raises(ValueError, match="holds both labels"):
        compute_group_aucs([1, 0], [0.5, 0.4], ["x", "x"])
    with pytest.raises(ValueError, match="3 groups for 2 labels"):
        compute_group_aucs([1, 0], [0.5, 0.4], ["x", "y", "z"])


def test_ctmd_slices_count_cap_lesions_negative(data_dir):
    root = data_dir / "covid_ct_md_sample"
    if not root.is_dir():
        pytest.skip("covid_ct_md_sample not in the data folder")
    slices = CTMDSlices(size=32, root=data_dir)
    groups = slices.groups
    counts = {g: groups.count(g) for g in GROUPS}
    assert counts == {"COVID-19 infected": 80 + 68, "COVID-19 clear": 148 + 133 - 148,
                      "CAP infected": 30 + 15, "CAP clear": 168 + 131 - 45, "Normal": 154 + 167}
    assert sum(slices.labels) == 148  # COVID-19 lesions only, not the 45 CAP ones
    cap = CTMDSlices(patients=["cap002"], size=32, root=data_dir)
    infected = [i for i, g in enumerate(cap.groups) if g == "CAP infected"]
    assert len(infected) == 15
    item = cap[infected[0]]
    assert item["label"] == 0 and item["group"] == "CAP infected" and item["patient"] == "cap002"


class _Slices(Dataset):
    def __init__(self, scores, labels, groups):
        self.scores, self.labels, self.groups = scores, labels, groups

    def __len__(self):
        return len(self.scores)

    def __getitem__(self, i):
        item = {"image": torch.tensor([self.scores[i]], dtype=torch.float32),
                "label": self.labels[i], "name": f"s{i}"}
        if self.groups is not None:
            item["group"] = self.groups[i]
        return item


class _LogitOfInput(nn.Module):
    """Softmax(logits)[:, 1] equals the input value p: logits (log(1-p), log(p))."""

    def forward(self, x):
        p = x[:, :1].clamp(1e-6, 1 - 1e-6)
        return torch.cat([torch.log1p(-p), torch.log(p)], dim=1)


def test_run_evaluation_keeps_groups_and_breaks_auc_down():
    scores = [0.9, 0.6, 0.7, 0.1, 0.95]
    labels = [1, 1, 0, 0, 0]
    groups = ["pos", "pos", "a", "a", "b"]
    out = run_evaluation(_LogitOfInput(), _Slices(scores, labels, groups), "classification",
                         device=torch.device("cpu"), batch_size=2)
    assert [row["group"] for row in out["per_image"]] == groups
    assert out["by_group"]["a"]["roc_auc"] == pytest.approx(0.75, abs=1e-6)
    assert out["metrics"]["roc_auc"] == pytest.approx(roc_auc(labels, scores), abs=1e-6)
    plain = run_evaluation(_LogitOfInput(), _Slices(scores, labels, None), "classification",
                           device=torch.device("cpu"), batch_size=2)
    assert "by_group" not in plain and "group" not in plain["per_image"][0]


def test_patient_slice_metrics_treats_cap_as_negative():
    patients = [
        {"diagnosis": "COVID-19", "slice_labels": [0, 1], "slice_scores": [0.2, 0.8]},
        {"diagnosis": "CAP", "slice_labels": [1, 0], "slice_scores": [0.9, 0.1]},
        {"diagnosis": "Normal", "slice_labels": None, "slice_scores": [0.3]},
        {"diagnosis": "non-COVID (assumed)", "slice_labels": None, "slice_scores": [0.99]},
    ]
    metrics = patient_slice_metrics(patients)
    # positive 0.8 against negatives 0.2, 0.9, 0.1, 0.3 (the unlabelled volume is left out): 3/4
    assert metrics["roc_auc"] == pytest.approx(0.75)
    assert metrics["n_pos"] == 1 and metrics["n_neg"] == 4
    assert metrics["by_group"]["CAP infected"]["roc_auc"] == 0.0
    assert metrics["by_group"]["Normal"]["roc_auc"] == 1.0
    assert patient_slice_metrics(patients[3:]) == {}


# --- rescoring files scored with the previous labels (jcs.engine.relabel) ------------------------

def _old_classifier_result():
    rows = [{"name": "P001/slice_000", "label": 1, "score": 0.8},   # COVID-19 infected
            {"name": "P001/slice_001", "label": 0, "score": 0.3},   # COVID-19 clear
            {"name": "cap001/slice_000", "label": 1, "score": 0.9},  # CAP infected: was positive
            {"name": "normal001/slice_000", "label": 0, "score": 0.2}]
    from jcs.metrics import classification_metrics
    old = classification_metrics([r["label"] for r in rows], [r["score"] for r in rows])
    return {"kind": "train", "tests": {"covid-ct-md": {"metrics": old, "per_image": rows}}}


GROUPS_BY_NAME = {"P001/slice_000": "COVID-19 infected", "P001/slice_001": "COVID-19 clear",
                  "cap001/slice_000": "CAP infected", "normal001/slice_000": "Normal"}


def test_rescore_classifier_by_hand():
    from jcs.engine.relabel import needs_relabel, rescore_classifier

    result = _old_classifier_result()
    assert needs_relabel(result)
    old_auc = result["tests"]["covid-ct-md"]["metrics"]["roc_auc"]
    assert old_auc == 1.0  # old positives 0.8, 0.9 both above the negatives 0.3, 0.2
    rescore_classifier(result, GROUPS_BY_NAME)
    test = result["tests"]["covid-ct-md"]
    # positive 0.8 vs negatives 0.3, 0.9, 0.2: won 2 of 3
    assert test["metrics"]["roc_auc"] == pytest.approx(2 / 3, abs=1e-6)
    assert [r["label"] for r in test["per_image"]] == [1, 0, 0, 0]
    assert test["by_group"]["CAP infected"]["roc_auc"] == 0.0
    record = result["relabelled"]
    assert record["previous_metrics"]["roc_auc"] == old_auc and record["to"] == "COVID-19 infection"
    assert not needs_relabel(result)


def test_rescore_refuses_files_scored_another_way():
    from jcs.engine.relabel import RelabelError, rescore_classifier

    result = _old_classifier_result()
    result["tests"]["covid-ct-md"]["per_image"][2]["label"] = 0  # not the previous definition
    with pytest.raises(RelabelError, match="differ from 'any infection"):
        rescore_classifier(result, GROUPS_BY_NAME)
    with pytest.raises(RelabelError, match="not in the data"):
        rescore_classifier(_old_classifier_result(), {"P001/slice_000": "COVID-19 infected"})


def test_relabel_file_rewrites_a_table4_result(tmp_path):
    import json

    from jcs.engine.relabel import relabel_file

    committed = sorted(Path(__file__).resolve().parents[1].glob(
        "results/cpu-pretrained/table4/jcs-classifier-efficientnet-lite2.json"))
    if not committed:
        pytest.skip("no committed Table IV result")
    data = json.loads(committed[0].read_text())
    if "relabelled" in data:  # restore the file as written before the change
        data["metrics"]["slice"] = data.pop("relabelled")["previous_metrics"]
    assert data["metrics"]["slice"]["n_pos"] == 193  # 148 COVID-19 + 45 CAP lesion slices
    path = tmp_path / "t4.json"
    path.write_text(json.dumps(data))
    result = relabel_file(path)
    assert result["relabelled"]["part"] == "metrics.slice"
    written = json.loads(path.read_text())
    slice_metrics = written["metrics"]["slice"]
    # COVID-19 lesions of P001 + P002 are the only positives, CAP lesions count negative
    assert slice_metrics["n_pos"] == 148 and slice_metrics["by_group"]["CAP infected"]["n"] == 45
    assert written["relabelled"]["previous_metrics"]["n_pos"] == 193
    assert relabel_file(path) is None  # done once
    data["metrics"]["slice"]["n_pos"] = 148  # not what the previous definition gives
    path.write_text(json.dumps(data))
    from jcs.engine.relabel import RelabelError
    with pytest.raises(RelabelError, match="not the 193 infected slices"):
        relabel_file(path)


def test_relabel_keeps_a_borrowed_copy_standing(tmp_path):
    """A borrowed file is rescored like its donor and then names the rescored donor's sha256,
    so jcs.engine.borrow still accepts it."""
    import json

    from jcs.engine.provenance import sha256_file
    from jcs.engine.relabel import RelabelError, relabel_file

    committed = Path(__file__).resolve().parents[1] / "results/cpu-pretrained/table4/jcs-classifier-efficientnet-lite2.json"
    if not committed.is_file():
        pytest.skip("no committed Table IV result")
    data = json.loads(committed.read_text())
    data["metrics"]["slice"] = data.pop("relabelled")["previous_metrics"]
    donor = tmp_path / "cpu" / "table4" / "x.json"
    donor.parent.mkdir(parents=True)
    donor.write_text(json.dumps(data))
    copy = dict(data, profile="cpu-pretrained",
                borrowed_from={"profile": "cpu", "result": "cpu/table4/x.json",
                               "sha256": sha256_file(donor)})
    borrowed = tmp_path / "cpu-pretrained" / "table4" / "x.json"
    borrowed.parent.mkdir(parents=True)
    borrowed.write_text(json.dumps(copy))
    with pytest.raises(RelabelError, match="rescore the donor first"):
        relabel_file(borrowed)
    relabel_file(donor)
    result = relabel_file(borrowed)
    assert result["borrowed_from"]["sha256"] == sha256_file(donor)
    assert result["relabelled"]["donor_sha256_before"] == copy["borrowed_from"]["sha256"]
    assert result["metrics"]["slice"]["n_pos"] == 148



def test_extra_tests_carry_the_group_breakdown_into_results():
    """What training writes (jcs.engine.train._extra_tests), not only what rescoring writes."""
    from types import SimpleNamespace

    from jcs.engine.train import _extra_tests

    splits = SimpleNamespace(extra_tests={"covid-ct-md": _Slices([0.9, 0.6, 0.7, 0.1, 0.95],
                                                                 [1, 1, 0, 0, 0],
                                                                 ["pos", "pos", "a", "a", "b"])})
    prof = SimpleNamespace(eval_batch_size=2)
    out = _extra_tests(_LogitOfInput(), splits, "classification", torch.device("cpu"), "fp32",
                       False, prof, quiet=True)
    block = out["covid-ct-md"]
    assert block["by_group"]["a"]["roc_auc"] == pytest.approx(0.75, abs=1e-6)
    assert block["per_image"][0]["group"] == "pos" and block["n_images"] == 5
