"""The int8 segmenter by default (jcs.diagnosis.int8_cache, `jcs diagnose --segmenter-precision`):
the verdict on hand-made reports, where the copy is cached, reuse of a cached copy, a copy made on
first use by the pipeline (a smoke jcs-seg on real MedSeg slices), and the float fall-backs with
their reasons."""
import json
import shutil
from pathlib import Path

import pytest
import torch

pytest.importorskip("torchao", reason="int8 quantisation needs torchao (requirements.txt)")

from jcs.cli import main  # noqa: E402
from jcs.diagnosis import DiagnosisPipeline  # noqa: E402
from jcs.diagnosis import int8_cache  # noqa: E402
from jcs.diagnosis.int8_cache import MAX_DICE_LOSS, choose_segmenter, int8_path, verdict  # noqa: E402
from jcs.engine import train  # noqa: E402
from jcs.inference import resolve_precision  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("int8")]
SIZE = 128  # the smoke profile's segmentation size


def report(dice_original, dice_int8, s_original, s_int8, sha="abc"):
    return {"dataset": "medseg", "checkpoint_sha256": sha,
            "check": {"n_images": 48, "metrics": {"original": {"dice": dice_original},
                                                  "int8": {"dice": dice_int8}},
                      "eval_seconds_per_slice": {"original": s_original, "int8": s_int8}}}


def test_verdict_needs_the_dice_kept_and_a_faster_copy():
    use, why = verdict(report(0.700, 0.697, 2.0, 1.0))  # loses 0.003 <= 0.005, 2x faster
    assert use and "2.00x faster" in why and "-0.0030" in why and "48 medseg test slices" in why
    use, why = verdict(report(0.700, 0.700 - MAX_DICE_LOSS - 0.001, 2.0, 1.0))
    assert not use and "loses 0.0060 Dice" in why
    use, why = verdict(report(0.700, 0.710, 1.0, 1.2))  # better Dice, but slower on this CPU
    assert not use and "not faster on this CPU" in why
    with pytest.raises(KeyError):
        verdict({"checkpoint_sha256": "abc"})  # no check: never trusted


def test_int8_path_beside_the_checkpoint_or_in_the_cache(tmp_path, monkeypatch):
    checkpoint = tmp_path / "runs" / "model.pt"
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"weights")
    assert int8_path(checkpoint, 256) == checkpoint.parent / "model.int8-256.pt2"
    monkeypatch.setenv("JCS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(int8_cache.os, "access", lambda path, mode: False)  # a read-only folder
    assert int8_path(checkpoint, 256, sha256="0123456789abcdef" * 4) == (
        tmp_path / "cache" / "int8" / "0123456789abcdef-model.int8-256.pt2")


def test_policies_without_a_copy(tmp_path):
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(b"weights")
    program, info = choose_segmenter(checkpoint, SIZE, "float")
    assert program is None and not info["int8"] and "float segmenter asked for" in info["reason"]
    program, info = choose_segmenter(checkpoint, SIZE, "auto", data_root=tmp_path / "no-data")
    assert program is None and info["data_missing"] and "JCS_DATA_DIR" in info["reason"]
    assert f"jcs quantize {checkpoint}" in info["reason"]
    assert not (tmp_path / "model.int8-128.pt2").exists()
    with pytest.raises(ValueError, match="--segmenter-precision int8: no int8 copy"):
        choose_segmenter(checkpoint, SIZE, "int8", data_root=tmp_path / "no-data")
    program, info = choose_segmenter(checkpoint, SIZE, "auto", device=torch.device("meta"))
    assert program is None and "CPU only" in info["reason"]
    with pytest.raises(ValueError, match="one of auto, int8, float"):
        choose_segmenter(checkpoint, SIZE, "fast")


@pytest.fixture(scope="module")
def smoke_checkpoint(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("int8-default")
    result = train("jcs-seg", "medseg", "smoke", results_dir=root / "results", runs_dir=root / "runs",
                   quiet=True, data_root=data_dir)
    return Path(result["checkpoint"])


@pytest.mark.usefixtures("one_thread")
def test_pipeline_makes_the_copy_once_then_reuses_it(smoke_checkpoint, data_dir, tmp_path, monkeypatch):
    checkpoint = tmp_path / "model.pt"
    shutil.copy(smoke_checkpoint, checkpoint)
    options = dict(classifier_model="jcs-classifier-res2net50", size=64, segmenter=checkpoint,
                   device="cpu", precision="fp32", int8_check_images=2, data_root=data_dir)
    pipeline = DiagnosisPipeline(**options)
    choice = pipeline.segmenter_info["int8_choice"]
    program = tmp_path / "model.int8-128.pt2"
    assert choice["made"] and choice["program"] == str(program) and program.is_file()
    stored = json.loads(program.with_suffix(".json").read_text())
    assert stored["check"]["n_images"] == 2 and stored["input_size"] == SIZE
    assert choice["check"]["dice"] == {k: v["dice"] for k, v in stored["check"]["metrics"].items()}
    expected, reason = verdict(stored)  # the pipeline follows the measured verdict
    assert choice["int8"] == expected and choice["reason"] == reason
    assert pipeline.segmenter_info.get("int8", False) == expected
    if expected:
        assert pipeline.segmenter_info["quantised_from"] == str(checkpoint)

    # the copy is made once: a second pipeline reads it (not made, file untouched)
    modified = program.stat().st_mtime_ns
    monkeypatch.setattr("jcs.engine.quantize.quantize_checkpoint",
                        lambda *a, **k: pytest.fail("the cached int8 copy was made again"))
    again = DiagnosisPipeline(**options)
    assert not again.segmenter_info["int8_choice"]["made"] and program.stat().st_mtime_ns == modified

    # 'float' keeps the float model; the report says why
    floating = DiagnosisPipeline(**options, segmenter_precision="float")
    assert not floating.segmenter_info.get("int8") and floating.segmenter.training is False
    assert "asked for" in floating.segmenter_info["int8_choice"]["reason"]

    # a copy with full-range activations is not trusted on a CPU without VNNI: made again
    monkeypatch.setattr("jcs.quantization.vnni_available", lambda: False)
    program.with_suffix(".json").write_text(json.dumps({**stored, "reduce_range": False}))
    monkeypatch.setattr("jcs.engine.quantize.quantize_checkpoint",
                        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("remade for this CPU")))
    with pytest.raises(RuntimeError, match="remade for this CPU"):
        DiagnosisPipeline(**options)

    # a copy made from other weights (another sha256) is not trusted: made again
    stored["checkpoint_sha256"] = "0" * 64
    program.with_suffix(".json").write_text(json.dumps(stored))
    monkeypatch.setattr("jcs.engine.quantize.quantize_checkpoint",
                        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("remade")))
    with pytest.raises(RuntimeError, match="remade"):
        DiagnosisPipeline(**options)


def test_cli_without_data_warns_and_runs_float(smoke_checkpoint, data_dir, tmp_path, capsys, monkeypatch):
    checkpoint = tmp_path / "model.pt"
    shutil.copy(smoke_checkpoint, checkpoint)
    monkeypatch.setenv("JCS_DATA_DIR", str(tmp_path / "no-data"))
    patient = data_dir / "covid_ct_md_sample" / "COVID-19" / "P002"
    common = ["diagnose", patient, "--classifier-model", "jcs-classifier-res2net50", "--size", 64,
              "--segmenter", checkpoint, "--top-k", 1, "--device", "cpu", "--random-weights",
              "--threads", 1]
    code = main([str(a) for a in [*common, "--segmenter-precision", "int8", "--out", tmp_path / "a"]])
    assert code == 2 and "--segmenter-precision int8: no int8 copy" in capsys.readouterr().err
    code = main([str(a) for a in [*common, "--out", tmp_path / "b"]])
    assert code == 0
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    # the float model, in the precision this CPU runs floats in (bf16-true where bf16 is native)
    assert summary["segmenter_precision"] == resolve_precision("auto", torch.device("cpu"))
    assert any("no int8 copy" in w and "JCS_DATA_DIR" in w for w in summary["warnings"])
    assert "no int8 copy" in (tmp_path / "b" / "report.html").read_text()
