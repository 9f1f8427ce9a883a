"""The authors' released checkpoints (jcs.models.authors, ``jcs convert-authors``).

Files in the authors' layout are built from the facts file (``authors_state_dict_keys.json``):
tensor i of a release holds the value i + 1 everywhere (a stride-0 view of one number, so that even
the 118 M-parameter joint model costs a few bytes on disk), and each one must arrive, whole, in the
tensor of our model that the name map names. The command-line test converts files made from our
own randomly initialised models (their names mapped back to the authors') and runs the results
through ``jcs evaluate`` and ``jcs diagnose`` at tiny sizes."""
import json
import shutil
from pathlib import Path

import pytest
import torch

from jcs.models import (AuthorsCheckpointError, authors_name_map, create_model,
                        load_authors_checkpoint, load_checkpoint)
from jcs.models.authors import LAYOUT_FILE, RELEASES, authors_layout, build_model
from conftest import run_cli as run

pytestmark = pytest.mark.usefixtures("one_thread")
SHARED_FACTS = Path(__file__).resolve().parents[2] / "shared" / "paper" / "authors_state_dict_keys.json"
COUNTS = {"single": 218, "classifier": 861, "joint": 1183}  # the facts file's _about / issue 15


def identifying_state(release: str) -> dict:
    """A state dict in the authors' layout of ``release``: tensor i filled with i + 1."""
    state = {}
    for i, (name, shape) in enumerate(authors_layout(release)):
        if name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(i + 1, dtype=torch.long)
        else:
            state[name] = torch.tensor(float(i + 1)).expand(shape)
    return state


def save(state, path: Path, wrap=None, prefix="") -> Path:
    state = {prefix + k: v for k, v in state.items()}
    torch.save({wrap: state, "epoch": 3} if wrap else state, path)
    return path


def test_packaged_layout_is_the_facts_file():
    if not SHARED_FACTS.is_file():
        pytest.skip(f"{SHARED_FACTS} not found (shared folder absent)")
    shared = json.loads(SHARED_FACTS.read_text())
    packaged = json.loads(LAYOUT_FILE.read_text())
    for release in RELEASES:
        assert packaged[release]["tensors"] == shared[release]["tensors"]
        assert len(authors_layout(release)) == COUNTS[release]


@pytest.mark.parametrize("release", ["single", "classifier", "joint"])
def test_every_tensor_lands_where_the_map_says(release, tmp_path):
    model_name = RELEASES[release]
    path = save(identifying_state(release), tmp_path / f"{release}.pth")
    assert path.stat().st_size < 2_000_000  # stride-0 views: the file holds one number per tensor
    model = load_authors_checkpoint(path, model_name)
    assert not model.training and model.authors_source["release"] == release
    assert len(model.authors_source["sha256"]) == 64
    name_map = authors_name_map(model_name, model)
    layout = authors_layout(release)
    assert sorted(name_map) == sorted(name for name, _ in layout)
    own = model.state_dict()
    # every tensor of our model is the target of exactly one authors' tensor
    assert sorted(name_map.values()) == sorted(own)
    for i, (name, shape) in enumerate(layout):
        target = own[name_map[name]]
        assert tuple(target.shape) == shape, name
        assert float(target.min()) == float(target.max()) == i + 1, (name, name_map[name])


def test_the_map_pairs_the_modules_as_documented():
    name_map = authors_name_map("jcs-seg")
    assert name_map["vgg16.conv3_2.bn.running_var"] == "vgg.stages.2.1.bn.running_var"
    assert name_map["gpd1.dilation_convs.3.weight"] == "efm6.branches.3.weight"
    assert name_map["gpd.se_block.linear1.weight"] == "efm5.se.fc1.weight"
    assert name_map["fpn.inners_a.5.conv.weight"] == "decoder.top.0.0.weight"
    assert name_map["fpn.fuse.5.conv.weight"] == "decoder.top.1.0.weight"
    assert name_map["fpn.inners_b.0.conv.bias"] == "decoder.topdown.0.0.bias"
    assert name_map["fpn.fuse.2.reduce_conv.conv.weight"] == "decoder.fuse.2.conv2.0.weight"
    assert name_map["fpn.fuse.2.conv2.conv.weight"] == "decoder.fuse.2.conv3.0.weight"
    assert name_map["cls5.bias"] == "heads.4.bias"
    joint = authors_name_map("jcs-joint")
    assert joint["fuse.se_modules.4.bn.num_batches_tracked"] == "fusenet.4.4.num_batches_tracked"
    assert joint["fuse.fuse_modules.0.conv.weight"] == "fusenet.0.6.weight"
    assert joint["res2net.layer3.22.bns.2.running_mean"] == "res2net.layer3.22.bns.2.running_mean"
    assert authors_name_map("jcs-classifier")["fc.weight"] == "fc.weight"


@pytest.mark.parametrize("wrap,prefix", [("state_dict", ""), ("model", ""), (None, "module."),
                                         ("state_dict", "module.")])
def test_wrappers_and_module_prefixes(wrap, prefix, tmp_path):
    path = save(identifying_state("single"), tmp_path / "single.pth", wrap, prefix)
    model = load_authors_checkpoint(path, "jcs-seg")
    assert model.heads[4].bias.item() == COUNTS["single"]  # the last tensor of the layout
    assert model.vgg.stages[0][0].conv.weight[0, 0, 0, 0].item() == 1.0


def _fails(state, tmp_path, model_name="jcs-seg"):
    path = save(state, tmp_path / "bad.pth")
    with pytest.raises(AuthorsCheckpointError) as info:
        load_authors_checkpoint(path, model_name)
    return str(info.value)


def test_a_missing_tensor_is_named(tmp_path):
    state = identifying_state("single")
    del state["fpn.fuse.3.se2.linear2.bias"]
    message = _fails(state, tmp_path)
    assert "1 missing tensors: fpn.fuse.3.se2.linear2.bias" in message and "bad.pth" in message


def test_an_extra_tensor_is_named(tmp_path):
    state = identifying_state("single")
    state["fpn.fuse.6.conv.weight"] = torch.zeros(3)
    state["fpn.inners_a.9.conv.num_batches_tracked"] = torch.tensor(0)  # not a BN of the map
    message = _fails(state, tmp_path)
    assert "2 unexpected tensors" in message and "fpn.fuse.6.conv.weight" in message
    assert "fpn.inners_a.9.conv.num_batches_tracked" in message


def test_a_misshaped_tensor_is_named(tmp_path):
    state = identifying_state("single")
    state["gpd.expand_conv.conv.weight"] = torch.zeros(1024, 512, 3, 3)
    message = _fails(state, tmp_path)
    assert ("gpd.expand_conv.conv.weight (file (1024, 512, 3, 3), expected (1024, 512, 1, 1) "
            "for efm5.expand.0.weight)") in message


def test_another_release_or_model_is_refused(tmp_path):
    message = _fails(identifying_state("single"), tmp_path, "jcs-classifier")
    assert "missing tensors: conv1.0.weight" in message and "unexpected tensors: vgg16." in message
    with pytest.raises(KeyError, match="jcs-classifier, jcs-joint, jcs-seg"):
        load_authors_checkpoint(tmp_path / "bad.pth", "unet")
    torch.save({"vgg16.conv1_1.conv.weight": torch.zeros(1), "note": "hello"}, tmp_path / "odd.pth")
    with pytest.raises(AuthorsCheckpointError, match="not tensors: note"):
        load_authors_checkpoint(tmp_path / "odd.pth", "jcs-seg")
    with pytest.raises(FileNotFoundError, match="reproduction page"):
        load_authors_checkpoint(tmp_path / "absent.pth", "jcs-seg")


def test_bn_counters_may_be_present_or_absent(tmp_path):
    """The classifier files may carry num_batches_tracked (facts file); frozen BN drops them."""
    state = identifying_state("classifier")
    state["bn1.num_batches_tracked"] = torch.tensor(5)
    state["layer4.2.bns.1.num_batches_tracked"] = torch.tensor(5)
    model = load_authors_checkpoint(save(state, tmp_path / "cls.pth"), "jcs-classifier")
    assert model.fc.weight[1, 7].item() == COUNTS["classifier"]


def _authors_file(model, model_name, path):
    """Our model's weights under the authors' names (the map read backwards)."""
    name_map = authors_name_map(model_name, model)
    own = model.state_dict()
    torch.save({"state_dict": {"module." + a: own[o] for a, o in name_map.items()}}, path)
    return path


def test_convert_authors_then_evaluate_and_diagnose(capsys, data_dir, tmp_path):
    torch.manual_seed(0)
    seg, cls = build_model("jcs-seg").eval(), build_model("jcs-classifier").eval()
    with torch.no_grad():  # frozen BN of a random model: give it non-trivial statistics
        for model in (seg, cls):
            for name, buffer in model.named_buffers():
                if name.endswith("running_var"):
                    buffer.uniform_(0.5, 2.0)
    seg_file = _authors_file(seg, "jcs-seg", tmp_path / "single.pth")
    cls_file = _authors_file(cls, "jcs-classifier", tmp_path / "res2net_cls.pth")

    code, out, err = run(capsys, "convert-authors", seg_file, "--model", "jcs-seg", "--out",
                         tmp_path / "seg.pt")
    assert code == 0, err
    assert "single.pth (sha256" in out and "segmentation at 512²" in out
    code, out, err = run(capsys, "convert-authors", cls_file, "--model", "jcs-classifier", "--out",
                         tmp_path / "cls.pt")
    assert code == 0, err
    assert "classification at 224²" in out
    payload = torch.load(tmp_path / "cls.pt", weights_only=True)
    assert payload["model_name"] == "jcs-classifier" and payload["input_size"] == 224
    assert payload["authors_source"]["file"] == "res2net_cls.pth"

    # the converted checkpoints compute what the original models compute
    x = torch.randn(1, 3, 64, 64)
    for model, name, ckpt in ((seg, "jcs-seg", "seg.pt"), (cls, "jcs-classifier", "cls.pt")):
        loaded = create_model(name, norm="frozen")
        load_checkpoint(tmp_path / ckpt, loaded)
        with torch.no_grad():
            assert torch.equal(loaded.eval()(x), model(x))

    code, out, err = run(capsys, "evaluate", "--checkpoint", tmp_path / "seg.pt", "--dataset",
                         "medseg", "--max-images", 2, "--size", 64, "--out", tmp_path / "e.json",
                         "--device", "cpu", "--data-dir", data_dir)
    assert code == 0, err
    evaluation = json.loads((tmp_path / "e.json").read_text())
    assert evaluation["model"] == "jcs-seg" and evaluation["n_images"] == 2
    code, out, err = run(capsys, "evaluate", "--checkpoint", tmp_path / "cls.pt", "--dataset",
                         "ucsd-covid-ct", "--max-images", 2, "--size", 64, "--device", "cpu",
                         "--data-dir", data_dir)
    assert code == 0, err
    assert '"model": "jcs-classifier"' in out and '"n_images": 2' in out

    patient = tmp_path / "patient"
    patient.mkdir()
    source = data_dir / "covid_ct_md_sample" / "COVID-19" / "P002"
    for png in sorted(source.glob("slice_*.png"))[:6]:
        shutil.copy(png, patient / png.name)
    code, out, err = run(capsys, "diagnose", patient, "--out", tmp_path / "report", "--classifier",
                         tmp_path / "cls.pt", "--segmenter", tmp_path / "seg.pt", "--size", 64,
                         "--seg-size", 64, "--top-k", 1, "--precision", "fp32", "--device", "cpu",
                         "--segmenter-precision", "float")
    assert code == 0, err
    assert "of 6 slices" in out and "RANDOM" not in out
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["models"]["classifier"]["name"] == "jcs-classifier"
    assert summary["models"]["segmenter"]["checkpoint"] == str(tmp_path / "seg.pt")


def test_convert_authors_user_errors(capsys, tmp_path):
    code, _, err = run(capsys, "convert-authors", tmp_path / "x.pth", "--model", "unet", "--out",
                       tmp_path / "o.pt")
    assert code == 2 and "jcs-classifier, jcs-joint, jcs-seg" in err
    code, _, err = run(capsys, "convert-authors", tmp_path / "x.pth", "--model", "jcs-seg", "--out",
                       tmp_path / "o.pt")
    assert code == 2 and "no such file" in err
    save(identifying_state("single"), tmp_path / "single.pth")
    code, _, err = run(capsys, "convert-authors", tmp_path / "single.pth", "--model", "jcs-joint",
                       "--out", tmp_path / "o.pt")
    assert code == 2 and "missing tensors: res2net.conv1.0.weight" in err
    assert "Traceback" not in err and not (tmp_path / "o.pt").exists()


# ---------------------------------------------------------------------------------------------
# Profile authors: evaluation only (jcs.engine.authors) and its column in the book's tables

TINY = ["seg.size=64", "seg.max_eval=2", "cls.size=64", "cls.max_eval=2", "patient_max_slices=2",
        "seg_eval_size=none", "preview_count=2", "preview_size=64"]


def test_profile_authors_evaluates_the_released_files(capsys, data_dir, tmp_path):
    import jcs.report as report
    from jcs.engine.results import load_result
    from jcs.models.authors import sha256_of

    torch.manual_seed(1)
    weights = tmp_path / "weights"
    weights.mkdir()
    seg, cls = build_model("jcs-seg").eval(), build_model("jcs-classifier").eval()
    _authors_file(seg, "jcs-seg", weights / "single.pth")
    _authors_file(cls, "jcs-classifier", weights / "res2net_segloss.pth")
    results, runs = tmp_path / "results", tmp_path / "runs"
    argv = ["reproduce", "--profile", "authors", "--authors-weights", weights, "--results-dir",
            results, "--runs-dir", runs, "--quiet", "--data-dir", data_dir, "--set", *TINY]
    with pytest.warns(UserWarning, match="joint.pth not in"):
        code, out, err = run(capsys, *argv)
    assert code == 0, err
    lines = out.splitlines()
    for status, step in (("done", "classification/jcs-classifier-pixel"),
                         ("missing", "classification/jcs-classifier "),
                         ("done", "table5/jcs-seg"), ("missing", "table6/jcs-joint"),
                         ("done", "table4/jcs-classifier-pixel")):
        assert any(line.startswith(status) and f" {step}" in line + " " for line in lines), step
    assert "Fig. 9 maps:" in out and "table4/jcs-classifier " not in out + " "

    seg_result = load_result(results / "authors" / "table5" / "jcs-seg.json")
    assert seg_result["kind"] == "evaluation" and seg_result["model"] == "jcs-seg"
    release = seg_result["initialisation"]
    assert release["kind"] == "authors-release"
    assert release["weights"][0]["file"] == "single.pth"
    assert release["weights"][0]["sha256"] == sha256_of(weights / "single.pth")
    assert seg_result["config"]["weights"]["sha256"] == release["weights"][0]["sha256"]
    assert seg_result["metrics"]["n_images"] == 2 and 0 <= seg_result["metrics"]["dice"] <= 1
    assert len(list(Path(seg_result["predictions"]).glob("*.png"))) == 2
    converted = torch.load(seg_result["checkpoint"], weights_only=True)["model"]
    assert torch.equal(converted["decoder.fuse.1.conv2.0.weight"],
                       seg.state_dict()["decoder.fuse.1.conv2.0.weight"])
    cls_result = load_result(results / "authors" / "classification" / "jcs-classifier-pixel.json")
    assert set(cls_result["tests"]) == {"sarscov2-ct", "covid-ct-md"}
    table4 = load_result(results / "authors" / "table4" / "jcs-classifier-pixel.json")
    assert table4["classifier"]["input_size"] == 64
    assert (results / "authors" / "classification" / "jcs-classifier-pixel_cams").is_dir()

    # the book: a column of the released weights; runs the authors never released are named
    t5 = report.table5(results)
    assert t5.attrs["profiles"] == ["authors"]
    assert t5[("Dice", "ours")].iloc[3] == pytest.approx(seg_result["metrics"]["dice"])
    notes = " ".join(t5.attrs["notes"])
    assert "without any training" in notes and release["weights"][0]["sha256"][:12] in notes
    assert "Data:" not in notes and "training iterations" not in notes
    t6 = report.table6(results)
    assert "not evaluated in this build" not in " ".join(t6.attrs["notes"])
    rows = report.classification_table(results).index.get_level_values(0)
    assert set(rows) == {"authors' released weights"}

    code, out, err = run(capsys, *argv)  # nothing to redo
    assert code == 0, err
    assert "skipped  table5/jcs-seg" in out and "done" not in out

    code, _, err = run(capsys, "train", "--model", "jcs-seg", "--profile", "authors",
                       "--results-dir", results, "--runs-dir", runs)
    assert code == 2 and "trains nothing" in err
    code, _, err = run(capsys, "reproduce", "--profile", "cpu", "--authors-weights", weights)
    assert code == 2 and "--profile authors" in err


def test_tables_say_how_to_add_the_authors_column(tmp_path):
    import jcs.report as report
    from jcs.engine.results import SCHEMA, SCHEMA_VERSION, result_path, write_result

    metrics = {k: 0.5 for k in ("dice", "iou", "e_adaptive", "e_mean", "e_max")}
    write_result(result_path(tmp_path, "cpu", "table5", "jcs-seg"), {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "kind": "train", "profile": "cpu",
        "experiment": "table5", "name": "jcs-seg", "seed": 0,
        "config": {"profile": {"pretrained": False, "seg": {"size": 64, "batch_size": 2}}},
        "config_hash": "x", "metrics": metrics | {"n_images": 3}, "data": {}, "timing": {},
        "memory": {}, "environment": {}, "model": "jcs-seg", "task": "segmentation",
        "per_image": [], "loss": {}, "checkpoint": None, "predictions": None, "init_from": None})
    how = "make reproduce PROFILE=authors AUTHORS_WEIGHTS=DIR"
    assert any(how in note for note in report.table6(tmp_path).attrs["notes"])
    assert not any(how in note for note in report.table6(tmp_path, "cpu").attrs["notes"])
    assert how in report.authors_missing(tmp_path, ["table6"])


def test_the_authors_vgg16_bn_initialises_our_vgg(tmp_path):
    """``5stages_vgg16_bn-6c64b313.pth``: the ``vgg16.`` tensors of the single model's layout
    without that prefix (facts file), usable as ``pretrained=<path>`` of the VGG16-BN models."""
    single = identifying_state("single")
    vgg = {k[len("vgg16."):]: v for k, v in single.items() if k.startswith("vgg16.")}
    path = save(vgg, tmp_path / "5stages_vgg16_bn-6c64b313.pth")
    for norm in ("frozen", "bn"):
        model = create_model("jcs-seg", norm=norm, pretrained=path)
        order = [name for name, _ in authors_layout("single")]
        layer = model.vgg.stages[3][2]  # conv4_3
        assert layer.conv.bias[0].item() == order.index("vgg16.conv4_3.conv.bias") + 1
        assert layer.bn.running_var[0].item() == order.index("vgg16.conv4_3.bn.running_var") + 1
    del vgg["conv5_3.bn.running_mean"]
    with pytest.raises(AuthorsCheckpointError, match="missing tensors: conv5_3.bn.running_mean"):
        create_model("jcs-seg", pretrained=save(vgg, tmp_path / "bad.pth"))
