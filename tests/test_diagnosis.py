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
from jcs.diagnosis import (DiagnosisPipeline, crop_box, effective_threshold, lung_mask,
                           slice_predictions, to_hu)
from jcs.metrics import threshold_sweep

TINY = dict(classifier_model="jcs-classifier-res2net50", size=64, seg_size=64, top_k=3,
            batch_size=32, seg_batch_size=16)


@pytest.fixture(autouse=True)
def one_thread():
    """2 OpenMP threads on a shared 2-core machine can be 5× slower than one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
    sources = re.findall(r'<img src="([^"]+)"', html)
    assert "probability.svg" in sources and len(sources) >= 1 + 3 * 4
    for src in sources:
        assert (out / src).is_file(), src
    return saved


def test_diagnose_png_patient(pipeline, data_dir, tmp_path):
    summary = pipeline.run(data_dir / "covid_ct_md_sample" / "COVID-19" / "P001", tmp_path)
    saved = _check_report(tmp_path, summary, 148)
    assert saved["unit"] == "uint8" and saved["spacing_mm"][0] == pytest.approx(2.0)
    lesion = saved["lesion"]
    assert lesion["lung_volume_ml"] > 1000  # two real lungs (about 6 l)
    assert lesion["percent_of_lung"] is None or 0 <= lesion["percent_of_lung"] <= 100


def test_diagnose_dicom_patient(pipeline, data_dir, tmp_path):
    summary = pipeline.run(data_dir / "covid_ct_md_sample" / "dicom" / "P002", tmp_path)
    saved = _check_report(tmp_path, summary, 133)
    assert saved["unit"] == "HU"
    assert saved["slice_shape"] == [512, 512]
    assert saved["top_slices"][0]["slice_id"].endswith(".dcm")


def test_positive_override_and_lesion_volume(pipeline, tmp_path):
    """A synthetic volume with known spacing: lesion volume = lesion voxels × voxel volume."""
    from jcs.data import synthetic_ct

    images, _ = synthetic_ct(4, 64, seed=1)
    volume = Volume(images.astype(np.float32), (2.0, 0.5, 0.5), "uint8", "synthetic", list("abcd"))
    summary = pipeline.run(volume, tmp_path, positive_override=[1, 2])
    assert summary["n_positive_slices"] == 2
    lesion = summary["lesion"]
    assert lesion["volume_ml"] == pytest.approx(lesion["voxels"] * 2.0 * 0.5 * 0.5 / 1000, abs=1e-3)
