"""Joint models seeded by an earlier training of a part (jcs.report.lineage) and the record of
which part files seeded a joint run (jcs.engine.train.trained_parts_record)."""
import json
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from jcs.engine.results import result_path
from jcs.engine.train import initialisation, trained_parts_record
from jcs.models import save_checkpoint
from jcs.report import stale_joint_parts, table6
from jcs.report.lineage import part_profile, part_run

ROOT = Path(__file__).resolve().parents[1]
JOINT = ROOT / "results" / "cpu" / "table6" / "jcs-joint.json"
SEG = ROOT / "results" / "cpu" / "table5" / "jcs-seg.json"
CLS = ROOT / "results" / "cpu" / "classification" / "jcs-classifier-pixel.json"
needs_results = pytest.mark.skipif(not (JOINT.is_file() and SEG.is_file() and CLS.is_file()),
                                   reason="committed cpu results not present")


def _write(results, source, experiment, name, seed, started, finished, **extra):
    record = json.loads(source.read_text())
    record.update(seed=seed, **extra)
    record["timing"] = dict(record["timing"], started=started, finished=finished)
    path = result_path(results, "cpu", experiment, name, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


def _joint(results, seed, started):
    init = {"classifier": f"/x/runs/cpu/classification/jcs-classifier-pixel/seed{seed}/model.pt",
            "segmentation": f"/x/runs/cpu/table5/jcs-seg/seed{seed}/model.pt"}
    return _write(results, JOINT, "table6", "jcs-joint", seed, started, "2026-11-01T12:00:00+00:00",
                  init_from=init)


def test_part_run_reads_the_run_layout():
    assert part_run("runs/cpu-pretrained/table5/jcs-seg/seed2/model.pt") == ("table5", "jcs-seg")
    assert part_profile("/x/runs/cpu-pretrained/table5/jcs-seg/seed2/model.pt") == "cpu-pretrained"


@needs_results
def test_a_part_retrained_after_the_joint_started_is_named(tmp_path):
    results = tmp_path / "results"
    for seed in (0, 1):
        _joint(results, seed, "2026-11-01T10:00:00+00:00")
        _write(results, SEG, "table5", "jcs-seg", seed, "2026-10-31T08:00:00+00:00",
               "2026-10-31T09:00:00+00:00")  # before: the joint run loaded this training
    # seed 0's classifier finished one second after the joint started: another training
    _write(results, CLS, "classification", "jcs-classifier-pixel", 0,
           "2026-11-01T09:00:00+00:00", "2026-11-01T10:00:01+00:00")
    _write(results, CLS, "classification", "jcs-classifier-pixel", 1,
           "2026-11-01T08:00:00+00:00", "2026-11-01T09:59:59+00:00")
    from jcs.engine.results import load_result
    joints = [load_result(result_path(results, "cpu", "table6", "jcs-joint", s)) for s in (0, 1)]
    assert stale_joint_parts(results, "cpu", joints) == {0: ["jcs-classifier-pixel"]}
    # a naive timestamp is read as UTC: started 08:30 UTC, before both parts of seed 1 finished
    # (seg 09:00, classifier 09:59:59); a joint without trained parts is not reported
    joints[1]["timing"]["started"] = "2026-10-31T08:30:00"
    joints.append(dict(joints[0], init_from=None, seed=5))
    assert stale_joint_parts(results, "cpu", joints) == {0: ["jcs-classifier-pixel"],
                                                         1: ["jcs-classifier-pixel", "jcs-seg"]}
    notes = [n for n in table6(results, profile="cpu").attrs["notes"] if "earlier training" in n]
    assert len(notes) == 1 and "(seed 0)" in notes[0] and "jcs-classifier-pixel" in notes[0]
    assert "--profile cpu --seeds 0 --only table6/jcs-joint --force" in notes[0]


def test_trained_parts_record_names_each_file_and_its_training(tmp_path):
    net = nn.Conv2d(1, 1, 1)
    cls = save_checkpoint(tmp_path / "cls.pt", net, config_hash="abc")
    seg = save_checkpoint(tmp_path / "seg.pt", net)  # a file without a config hash
    record = trained_parts_record({"classifier": cls, "segmentation": seg})
    assert record["classifier"]["config_hash"] == "abc"
    assert record["segmentation"]["config_hash"] is None
    import hashlib
    assert record["classifier"]["sha256"] == hashlib.sha256(cls.read_bytes()).hexdigest()
    block = initialisation({}, "jcs-joint", {"classifier": cls, "segmentation": seg}, record)
    assert block["kind"] == "trained-parts" and block["part_files"] == record
    assert "part_files" not in initialisation({}, "jcs-joint", {"classifier": cls,
                                                                 "segmentation": seg})
    torch.load(cls, weights_only=True)  # still a plain checkpoint


@needs_results
def test_table6_names_a_part_taken_over_from_another_profile(tmp_path):
    """cpu-pretrained's joint model starts from the cpu classifier (no packaged Res2Net-101):
    the note must say whose run it is, not let it read as this profile's own training."""
    results = tmp_path / "results"
    path = _joint(results, 0, "2026-11-01T10:00:00+00:00")
    record = json.loads(path.read_text())
    record["init_from"]["segmentation"] = "/x/runs/cpu-pretrained/table5/jcs-seg/seed0/model.pt"
    record["profile"] = "cpu-pretrained"
    target = result_path(results, "cpu-pretrained", "table6", "jcs-joint", 0)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(record))
    notes = [n for n in table6(results, profile="cpu-pretrained").attrs["notes"]
             if "was initialised from" in n]
    assert len(notes) == 1
    assert ("classifier jcs-classifier-pixel (profile cpu's run, which cpu-pretrained takes over)"
            in notes[0])
    assert "segmentation network jcs-seg, then" in notes[0]  # its own profile's run: no label
