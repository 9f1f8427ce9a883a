"""Patient-level diagnosis (jcs.diagnosis): the rule, the Table IV sweep, the lung mask, and the
whole pipeline on the COVID-CT-MD sample (a PNG patient and the DICOM patient) with tiny random
models."""
import csv
import json
import re

import numpy as np
import pytest
import torch

from jcs.data import Volume
from jcs.data import read_volume, volume_to_uint8
from jcs.diagnosis import (DiagnosisPipeline, air_mask, crop_box, effective_threshold, lung_mask,
                           lungs_from_air, report_folder_names, slice_predictions, to_hu)
from jcs.inference import CompiledModel
from jcs.metrics import threshold_sweep

TINY = dict(classifier_model="jcs-classifier-res2net50", size=64, seg_size=64, top_k=3,
            batch_size=32, seg_batch_size=16)


pytestmark = pytest.mark.usefixtures("one_thread")


# -- rule -------------------------------------------------------------------------------------


def test_effective_threshold_by_thickness_else_count():
    assert effective_threshold(25, n_slices=133, spacing_mm=2.0) == (12.5, "thickness")
    assert effective_threshold(25, n_slices=150) == (12.5, "count")  # no spacing: 150 / 300
    assert effective_threshold(25, n_slices=300, spacing_mm=1.0) == (25, "thickness")
    assert effective_threshold(25, n_slices=133, spacing_mm=2.0, scaling="none") == (25, "none")
    assert effective_threshold(25, n_slices=150, spacing_mm=2.0, scaling="count") == (12.5, "count")
    with pytest.raises(ValueError, match=">= 0"):
        effective_threshold(-1, n_slices=100)
    with pytest.raises(ValueError, match="spacing"):
        effective_threshold(25, n_slices=100, scaling="thickness")
    with pytest.raises(ValueError, match="scaling must be one of"):
        effective_threshold(25, n_slices=100, scaling="relative")


def test_slice_predictions_use_greater_or_equal():
    assert slice_predictions([0.2, 0.5, 0.7]).tolist() == [0, 1, 1]


def _patient(n_slices, n_positive):
    probs = np.full(n_slices, 0.1)
    probs[:n_positive] = 0.9
    return probs


def test_table4_sweep_uses_the_diagnosis_rule():
    """The engine's Table IV (threshold_sweep with per-patient scales) and `jcs diagnose` decide
    every patient alike."""
    patients = {"covid": (1, _patient(150, 8)), "normal": (0, _patient(300, 15))}
    spacing = {"covid": 2.0, "normal": 1.0}
    scales = {pid: effective_threshold(1.0, n_slices=len(p), spacing_mm=spacing[pid])[0]
              for pid, (_, p) in patients.items()}
    preds = {pid: (label, slice_predictions(p)) for pid, (label, p) in patients.items()}
    row = threshold_sweep(preds, [15], scales)[0]
    assert (row["tp"], row["tn"]) == (1, 1)  # 8 > 7.5; 15 is not more than 15
    absolute = threshold_sweep(preds, [15])[0]
    assert (absolute["tp"], absolute["fn"]) == (0, 1)
    for pid, (label, p) in patients.items():
        t_eff, _ = effective_threshold(15, n_slices=len(p), spacing_mm=spacing[pid])
        assert (int(slice_predictions(p).sum()) > t_eff) == (pid == "covid")


# -- lung mask --------------------------------------------------------------------------------


def _phantom():
    """3 slices of 64²: air outside, a 40 HU body, two -850 HU lungs, a 40 HU vessel in the left lung."""
    yy, xx = np.mgrid[0:64, 0:64]
    hu = np.full((64, 64), -1000.0)
    hu[((yy - 32) / 26) ** 2 + ((xx - 32) / 30) ** 2 <= 1] = 40.0
    left = ((yy - 32) / 16) ** 2 + ((xx - 20) / 8) ** 2 <= 1
    right = ((yy - 32) / 16) ** 2 + ((xx - 44) / 8) ** 2 <= 1
    hu[left | right] = -850.0
    hu[31:34, 19:22] = 40.0  # vessel inside the left lung
    return np.stack([hu] * 3), np.stack([left | right] * 3)


def test_lung_mask_keeps_lungs_fills_vessels_drops_outside_air():
    hu, lungs = _phantom()
    mask = lung_mask(hu)
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask, lungs)
    assert not mask[:, 0, 0].any()  # outside air is not lung


def test_to_hu_inverts_the_lung_window():
    volume = Volume(np.array([[[0.0, 255.0]]], dtype=np.float32), None, "uint8", "x", ["0"])
    np.testing.assert_allclose(to_hu(volume), [[[-1350.0, 150.0]]])


def _lungs_whole_volume(air, keep=2, min_fraction=0.1):
    """The three steps of lungs_from_air on the whole volume, written out with SciPy: the
    reference for its bounding-box shortcut."""
    from scipy import ndimage

    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[1] = [[0, 1, 0], [1, 1, 1], [0, 1, 0]]

    def touching_border(mask):
        labels, _ = ndimage.label(mask, structure=in_plane)
        border = np.unique(np.concatenate([labels[:, 0].ravel(), labels[:, -1].ravel(),
                                           labels[:, :, 0].ravel(), labels[:, :, -1].ravel()]))
        return np.isin(labels, border[border > 0])

    inside = air & ~touching_border(air)
    labels, count = ndimage.label(inside)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    largest = sorted(range(count), key=lambda k: -sizes[k])[:keep]
    kept = [k + 1 for k in largest if sizes[k] >= min_fraction * sizes[largest[0]]]
    return ~touching_border(~np.isin(labels, kept))


@pytest.mark.parametrize("patient", ["COVID-19/P001", "dicom/P002"])
def test_lung_mask_on_real_patients_equals_the_whole_volume_computation(data_dir, patient):
    volume = read_volume(data_dir / "covid_ct_md_sample" / patient)
    air = air_mask(volume)
    lungs = lungs_from_air(air)
    np.testing.assert_array_equal(lungs, _lungs_whole_volume(air))
    assert 0.05 < lungs.mean() < 0.3  # two real lungs: a sizeable share of each scan


def test_lung_mask_of_a_volume_without_air_inside_the_body_is_empty():
    hu = np.full((2, 16, 16), -1000.0)  # air everywhere, all of it touching the border
    assert not lung_mask(hu).any()
    assert not lung_mask(np.zeros((2, 16, 16))).any()  # no air at all


def test_air_mask_of_an_8_bit_volume_equals_thresholding_its_hu():
    values = np.arange(256, dtype=np.float32).reshape(1, 16, 16)
    volume = Volume(values, None, "uint8", "x", ["0"])
    gray = volume_to_uint8(volume)
    for threshold in (-1350.0, -400.0, -600.0 + 1500.0 * (10 / 255 - 0.5), 150.0, 151.0):
        np.testing.assert_array_equal(air_mask(volume, threshold, gray), to_hu(volume) < threshold)
    hu = Volume(np.array([[[-500.0, -400.0, -300.0]]], dtype=np.float32), None, "HU", "x", ["0"])
    assert air_mask(hu).tolist() == [[[True, False, False]]]


def test_crop_box_matches_resize_center_crop():
    # 256² slice at 224: Resize(256) keeps it, CenterCrop(224) starts at 16
    assert crop_box(256, 256, 224) == (16.0, 16.0, 240.0, 240.0)
    top, left, bottom, right = crop_box(512, 512, 224)
    assert (top, left, bottom, right) == (32.0, 32.0, 480.0, 480.0)


# -- pipeline on real patients ------------------------------------------------------------------


@pytest.fixture(scope="module")
def pipeline():
    torch.manual_seed(0)
    return DiagnosisPipeline(**TINY)


def _check_report(out, summary, n_slices):
    for name in ("report.html", "summary.json", "slices.csv", "probability.svg"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "summary.json").read_text())
    assert saved["n_slices"] == summary["n_slices"] == n_slices
    assert set(saved["timings_s"]) >= {"read", "classify", "segment", "explain", "write", "total"}
    assert saved["diagnosis"] in ("COVID-19 positive", "COVID-19 negative")
    assert saved["positive"] == (saved["n_positive_slices"] > saved["rule"]["effective_threshold"])
    spacing = saved["spacing_mm"]
    expected = 25 / spacing[0] if spacing else 25 * n_slices / 300
    assert saved["rule"]["basis"] == ("thickness" if spacing else "count")
    assert saved["rule"]["effective_threshold"] == pytest.approx(expected, abs=1e-3)
    assert any("MEANINGLESS" in w for w in saved["warnings"])
    assert len(saved["top_slices"]) == 3
    with open(out / "slices.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == n_slices
    assert all(0.0 <= float(r["probability"]) <= 1.0 for r in rows)
    html = (out / "report.html").read_text()
    assert "MEANINGLESS" in html
    assert "{{" not in html and "{%" not in html  # every template placeholder filled
    if saved["lesion"]["segmented"]:
        assert saved["files"]["masks"]["lesion_mask"] == "lesion_mask.nii.gz"
        assert (out / "lesion_mask.nii.gz").is_file() and (out / "lung_mask.nii.gz").is_file()
        assert 'href="lesion_mask.nii.gz"' in html
    sources = re.findall(r'<img src="([^"]+)"', html)
    assert "probability.svg" in sources and len(sources) >= 1 + 3 * 4
    for src in sources:
        assert (out / src).is_file(), src
    return saved


def test_diagnose_png_patient(pipeline, data_dir, tmp_path):
    summary = pipeline.run(data_dir / "covid_ct_md_sample" / "COVID-19" / "P001", tmp_path)
    saved = _check_report(tmp_path, summary, 148)
    assert saved["unit"] == "uint8" and saved["spacing_mm"][0] == pytest.approx(2.0)
    assert saved["geometry"]["basis"] == "assumed"  # PNG slices: no position in the patient
    assert saved["files"]["dicom_seg"] is None and "no DICOM SEG" in saved["dicom_seg"]["reason"]
    lesion = saved["lesion"]
    assert lesion["lung_volume_ml"] > 1000  # two real lungs (about 6 l)
    assert lesion["percent_of_lung"] is None or 0 <= lesion["percent_of_lung"] <= 100


def test_lung_mask_runs_beside_the_models_and_its_errors_reach_the_caller(pipeline, data_dir,
                                                                          tmp_path, monkeypatch):
    volume = read_volume(data_dir / "covid_ct_md_sample" / "COVID-19" / "P001")
    summary = pipeline.run(volume, tmp_path / "ok")
    assert summary["lesion"]["lung_voxels"] >= int(pipeline.lungs(volume).sum())
    assert summary["background_s"]["lung_mask"] > 0
    assert summary["timings_s"]["lung_mask"] <= summary["background_s"]["lung_mask"] + 0.05

    def broken(*args):
        raise MemoryError("no room for the lung mask")

    monkeypatch.setattr(pipeline, "lungs", broken)
    with pytest.raises(MemoryError, match="lung mask"):
        pipeline.run(volume, tmp_path / "broken")
    assert not (tmp_path / "broken" / "summary.json").exists()


def test_diagnose_dicom_patient(pipeline, data_dir, tmp_path):
    summary = pipeline.run(data_dir / "covid_ct_md_sample" / "dicom" / "P002", tmp_path)
    saved = _check_report(tmp_path, summary, 133)
    assert saved["unit"] == "HU"
    assert saved["slice_shape"] == [512, 512]
    assert saved["top_slices"][0]["slice_id"].endswith(".dcm")
    # the masks as the field opens them: NIfTI on the series' grid, and a DICOM SEG
    import nibabel
    import pydicom

    folder = data_dir / "covid_ct_md_sample" / "dicom" / "P002"
    lesion = nibabel.load(tmp_path / "lesion_mask.nii.gz")
    assert lesion.shape == (512, 512, 133) and saved["geometry"]["basis"] == "dicom"
    np.testing.assert_allclose(lesion.affine, saved["geometry"]["affine_ras"], atol=1e-4)  # float32 sform
    assert int(np.asanyarray(lesion.dataobj).sum()) == saved["lesion"]["voxels"]
    lungs = int(np.asanyarray(nibabel.load(tmp_path / "lung_mask.nii.gz").dataobj).sum())
    assert 0 < lungs <= saved["lesion"]["lung_voxels"]
    # P002's files are anonymised with empty SOP Instance UIDs: a SEG could reference no image,
    # so none is written and the report says why (the NIfTI masks above hold the masks)
    assert not any(str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)
                   for p in folder.glob("*.dcm"))
    assert saved["files"]["dicom_seg"] is None and not (tmp_path / "segmentation.dcm").exists()
    assert "no SOP Instance UID" in saved["dicom_seg"]["reason"]
    assert any("no SOP Instance UID" in w for w in saved["warnings"])
    assert "no SOP Instance UID" in (tmp_path / "report.html").read_text()


def test_positive_override_and_lesion_volume(pipeline, tmp_path):
    """A synthetic volume with known spacing: lesion volume = lesion voxels × voxel volume."""
    from jcs.data import synthetic_ct

    images, _ = synthetic_ct(4, 64, seed=1)
    volume = Volume(images.astype(np.float32), (2.0, 0.5, 0.5), "uint8", "synthetic", list("abcd"))
    summary = pipeline.run(volume, tmp_path, positive_override=[1, 2])
    assert summary["n_positive_slices"] == 2
    lesion = summary["lesion"]
    assert lesion["volume_ml"] == pytest.approx(lesion["voxels"] * 2.0 * 0.5 * 0.5 / 1000, abs=1e-3)


def test_reader_warnings_and_an_empty_lung_mask_reach_the_report(pipeline, tmp_path):
    """Volume.warnings go to summary.json (warnings, volume_warnings) and to the top of
    report.html; a volume with no air says "Lung mask not found" instead of a share of None."""
    soft_tissue = np.full((4, 64, 64), 40.0, dtype=np.float32)
    volume = Volume(soft_tissue, (5.0, 0.7, 0.7), "HU", "no-air", list("abcd"),
                    ["no-air: 1 slice(s) missing: the series steps 5 mm but jumps 10 mm ..."])
    summary = pipeline.run(volume, tmp_path, positive_override=[1])
    assert summary["volume_warnings"] == volume.warnings
    assert summary["warnings"][-2:] == [volume.warnings[0], summary["warnings"][-1]]
    assert summary["warnings"][-1].startswith("Lung mask not found")
    lesion = summary["lesion"]
    assert lesion["lung_mask_found"] is False and lesion["percent_of_lung"] is None
    assert lesion["volume_ml"] == pytest.approx(lesion["voxels"] * 5.0 * 0.7 * 0.7 / 1000, abs=1e-3)
    assert summary["verdict"].startswith(summary["diagnosis"] + " (RANDOM WEIGHTS in the classifier")
    html = (tmp_path / "report.html").read_text()
    assert html.index("1 slice(s) missing") < html.index("Lung mask not found") < html.index(
        'class="verdict"') < html.index("lung mask not found")
    assert "None" not in html.split('class="verdict"')[1].split("Timings")[0]
    assert "RANDOM WEIGHTS" in html.split('class="verdict"')[1].split("</p>")[0]


def test_every_shared_realworld_input_is_diagnosed(pipeline, realworld_dir, tmp_path):
    """One `jcs diagnose` run (several patients) over every shared real-world input: each is read
    and diagnosed, its reader warnings in its summary and flagged on the index page."""
    cases = json.loads((realworld_dir / "expected.json").read_text())
    paths = [realworld_dir / case["path"] for case in cases.values()]
    rows = pipeline.run_many(paths, tmp_path, quiet=True)
    assert [row["error"] for row in rows] == [""] * len(paths)
    for (name, case), row in zip(cases.items(), rows):
        summary = json.loads((tmp_path / row["patient"] / "summary.json").read_text())
        assert summary["n_slices"] == case["n_slices"] and summary["unit"] == case["unit"], name
        assert summary["volume_warnings"] == read_volume(realworld_dir / case["path"]).warnings
        assert row["volume_warnings"] == summary["volume_warnings"]
    index = (tmp_path / "index.html").read_text()
    assert "warning(s) on the volume" in index
    with open(tmp_path / "patients.csv") as handle:
        saved = {r["patient"]: r for r in csv.DictReader(handle)}
    assert any("duplicate" in r["volume_warnings"] for r in saved.values())


def test_report_folder_names_are_unique_and_drop_volume_extensions():
    assert report_folder_names(["a/P002", "dicom/P002", "x/scan.nii.gz", "y/scan.NII", "P002-2",
                                "z/P002"]) == ["P002", "P002-2", "scan", "scan-2", "P002-2-2", "P002-3"]


def test_several_patients_share_one_pipeline_and_a_bad_volume_loses_nothing(pipeline, data_dir,
                                                                            tmp_path):
    ctmd = data_dir / "covid_ct_md_sample"
    empty = tmp_path / "empty_series"
    empty.mkdir()
    rows = pipeline.run_many([ctmd / "Normal" / "normal001", empty, ctmd / "dicom" / "P002"],
                             tmp_path / "out", quiet=True)
    assert [r["patient"] for r in rows] == ["normal001", "empty_series", "P002"]
    assert rows[1]["error"] and "empty_series" in rows[1]["error"]
    for row, n_slices in ((rows[0], 154), (rows[2], 133)):
        assert not row["error"] and row["n_slices"] == n_slices
        _check_report(tmp_path / "out" / row["patient"],
                      json.loads((tmp_path / "out" / row["patient"] / "summary.json").read_text()),
                      n_slices)
    with open(tmp_path / "out" / "patients.csv") as handle:
        saved = list(csv.DictReader(handle))
    assert [r["patient"] for r in saved] == ["normal001", "empty_series", "P002"]
    assert saved[2]["report"] == "P002/report.html" and saved[1]["error"] == rows[1]["error"]
    index = (tmp_path / "out" / "index.html").read_text()
    assert 'href="P002/report.html"' in index and "not diagnosed" in index and "MEANINGLESS" in index


def test_a_failed_compile_says_how_to_go_on(monkeypatch):
    class NoCompiler(torch.nn.Module):  # what Inductor raises on a machine without g++
        def __init__(self, model, batch_size):
            super().__init__()

        def forward(self, x):
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")

    monkeypatch.setattr("jcs.diagnosis.pipeline.CompiledModel", NoCompiler)
    with pytest.raises(RuntimeError, match="classifier failed.*C\\+\\+ compiler.*without --compile"):
        DiagnosisPipeline(**TINY, compile=True)


@pytest.mark.slow
def test_compiled_pipeline_gives_the_same_diagnosis(pipeline, data_dir, tmp_path):
    """torch.compile (Inductor, frozen weights) of both models: compiled once when the pipeline
    is made, then the same probabilities and masks as the eager pipeline."""
    torch.manual_seed(0)
    compiled = DiagnosisPipeline(**TINY, compile=True)
    for role in ("classifier", "segmenter"):
        assert isinstance(getattr(compiled, role), CompiledModel)
        info = getattr(compiled, f"{role}_info")
        assert info["compiled"] and info["compile_s"] > 0
    gray = volume_to_uint8(read_volume(data_dir / "covid_ct_md_sample" / "COVID-19" / "P001"))[:20]
    np.testing.assert_allclose(compiled.classify(gray), pipeline.classify(gray), atol=2e-2)
    eager, fast = pipeline.segment(gray, range(5)), compiled.segment(gray, range(5))
    assert np.mean([(eager[i] == fast[i]).mean() for i in eager]) > 0.99
    summary = compiled.run(data_dir / "covid_ct_md_sample" / "dicom" / "P002", tmp_path)
    assert summary["models"]["classifier"]["compiled"]
