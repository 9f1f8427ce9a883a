"""int8 segmenters (jcs.quantization, `jcs quantize`, `jcs diagnose --segmenter X.pt2`): a jcs-seg
trained by the smoke profile on real MedSeg slices is quantised, checked against itself in float,
and used by the diagnosis pipeline on a real patient; bad files and inputs give clear errors.
Compiling an int8 graph takes ~1 min on 2 cores: the module compiles each graph once."""
import json
from pathlib import Path

import pytest
import torch
import torch.nn as nn

pytest.importorskip("torchao", reason="int8 quantisation needs torchao (requirements.txt)")

from jcs.cli import main  # noqa: E402
from jcs.data import SegmentationSlices  # noqa: E402
from jcs.engine import train  # noqa: E402
from jcs.engine.evaluate import load_trained_model  # noqa: E402
from jcs.engine.quantize import quantize_checkpoint  # noqa: E402
from jcs.quantization import (int8_available, is_int8_file, load_int8, quantize_int8,  # noqa: E402
                              save_int8, torchao_version)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("int8")]
SIZE = 128  # the smoke profile's segmentation size


@pytest.fixture(scope="module")
def quantised(tmp_path_factory, data_dir):
    """(checkpoint, int8 program, report) of a smoke jcs-seg, quantised on 2 training slices
    and compared on 2 test slices."""
    root = tmp_path_factory.mktemp("int8")
    result = train("jcs-seg", "medseg", "smoke", results_dir=root / "results", runs_dir=root / "runs",
                   quiet=True, data_root=data_dir)
    checkpoint = Path(result["checkpoint"])
    program = root / "jcs-seg-int8.pt2"
    report = quantize_checkpoint(checkpoint, program, calibration_slices=2, max_images=2,
                                 data_root=data_dir, quiet=True)
    return checkpoint, program, report


def test_report_compares_int8_with_the_original(quantised):
    checkpoint, program, report = quantised
    assert program.is_file() and Path(report["report"]) == program.with_suffix(".json")
    stored = json.loads(program.with_suffix(".json").read_text())
    assert stored["schema"] == "jcs-int8-report" and stored["model"] == "jcs-seg"
    assert stored["input_size"] == SIZE and len(stored["calibration"]["names"]) == 2
    assert stored["checkpoint_sha256"] and stored["git"]["sha"]
    assert stored["versions"]["torchao"] == torchao_version() and int8_available()
    # 7-bit activations exactly where the CPU has no int8 dot product (sums saturate in int16)
    from jcs.quantization import vnni_available

    assert stored["reduce_range"] is (not vnni_available()) and stored["vnni"] is vnni_available()
    assert load_int8(program, compile=False).metadata["reduce_range"] is stored["reduce_range"]
    check = stored["check"]
    assert check["n_images"] == 2 and set(check["metrics"]) == {"original", "int8"}
    for metrics in check["metrics"].values():
        assert 0 <= metrics["dice"] <= 1 and 0 <= metrics["e_mean"] <= 1
    assert len(check["per_image_dice"]["int8"]) == 2
    assert check["int8_compile_s"] > 0 and check["eval_seconds_per_slice"]["int8"] > 0
    assert abs(check["dice_change"]["mean"]) < 0.1


def test_int8_program_follows_the_float_model(quantised, data_dir):
    checkpoint, program, _ = quantised
    model, _ = load_trained_model(checkpoint)
    int8 = load_int8(program)
    assert is_int8_file(program) and not is_int8_file(checkpoint)
    assert int8.metadata["model"] == "jcs-seg" and int8.input_size == SIZE
    test = SegmentationSlices("medseg", "test", SIZE, root=data_dir, indices=[0, 1])
    x = torch.stack([test[i]["image"] for i in range(2)])
    with torch.no_grad():
        reference = model.eval()(x)
    probabilities = int8(x)  # two slices: one call each
    assert probabilities.shape == (2, 1, SIZE, SIZE) and probabilities.dtype == torch.float32
    assert (probabilities - reference).abs().mean() < 0.02
    assert ((probabilities >= 0.5) == (reference >= 0.5)).float().mean() > 0.98


def test_int8_segmenter_refuses_other_sizes_and_devices(quantised):
    int8 = load_int8(quantised[1], compile=False)
    # the non-quantised ops in bf16 only where bf16 is native (emulated bf16 is slower than fp32)
    from jcs.inference import bf16_supported

    assert int8.mixed == ("bf16" if bf16_supported(torch.device("cpu")) else "fp32")
    assert load_int8(quantised[1], compile=False, mixed="fp32").mixed == "fp32"
    with pytest.raises(ValueError, match="'bf16' or 'fp32'"):
        load_int8(quantised[1], compile=False, mixed="int4")
    with pytest.raises(ValueError, match=f"N×3×{SIZE}×{SIZE}.*--seg-size"):
        int8(torch.zeros(1, 3, 64, 64))
    with pytest.raises(RuntimeError, match="CPU only"):
        int8.to("meta")
    assert int8.to(torch.bfloat16, memory_format=torch.channels_last) is int8


@pytest.mark.usefixtures("one_thread")
def test_diagnose_with_an_int8_segmenter(quantised, data_dir, tmp_path, capsys):
    out = tmp_path / "report"
    patient = data_dir / "covid_ct_md_sample" / "COVID-19" / "P002"
    common = [patient, "--classifier-model", "jcs-classifier-res2net50", "--size", 64,
              "--segmenter", quantised[1], "--top-k", 2, "--device", "cpu", "--random-weights"]
    code = main([str(a) for a in ["diagnose", *common, "--out", out]])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["segmenter_precision"] == "int8" and summary["seg_batch_size"] == 1
    segmenter = summary["models"]["segmenter"]
    assert segmenter["int8"] and segmenter["input_size"] == SIZE and segmenter["compile_s"] > 0
    assert segmenter["quantised_from"] == str(quantised[0])
    assert "MEANINGLESS" in " ".join(summary["warnings"])  # the classifier, not the segmenter
    assert "SEGMENTER" not in " ".join(summary["warnings"])
    assert summary["lesion"]["segmented"] and len(list((out / "images").glob("*"))) > 0

    code = main([str(a) for a in ["diagnose", *common, "--out", tmp_path / "r2", "--seg-size", 64]])
    assert code == 2 and f"quantised for {SIZE}²" in capsys.readouterr().err


class TinySegmenter(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Conv2d(4, 1, 1)

    def forward(self, x):
        return torch.sigmoid(self.head(torch.relu(self.conv(x))))


def test_quantize_int8_needs_calibration_of_the_right_size():
    with pytest.raises(ValueError, match="at least one real slice"):
        quantize_int8(TinySegmenter(), [], 16)
    with pytest.raises(ValueError, match="1×3×16×16"):
        quantize_int8(TinySegmenter(), [torch.zeros(1, 3, 8, 8)], 16)


def test_bad_int8_files_give_clear_errors(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="jcs quantize"):
        load_int8(tmp_path / "missing.pt2")
    corrupt = tmp_path / "corrupt.pt2"
    corrupt.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a readable torch.export program"):
        load_int8(corrupt)
    foreign = tmp_path / "foreign.pt2"
    torch.export.save(torch.export.export(TinySegmenter(), (torch.zeros(1, 3, 8, 8),)), foreign)
    with pytest.raises(ValueError, match="not written by `jcs quantize`"):
        load_int8(foreign)
    with pytest.raises(ValueError, match="input_size"):
        save_int8(torch.export.export(TinySegmenter(), (torch.zeros(1, 3, 8, 8),)), foreign, {})
    with pytest.raises(ValueError, match=r"\.pt2 file"):
        quantize_checkpoint(tmp_path / "model.pt", tmp_path / "int8.pt")
    assert main(["quantize", str(tmp_path / "model.pt"), "--out", str(tmp_path / "x.pt2")]) == 2
    assert "train a segmentation model first" in capsys.readouterr().err
