"""The shared real-world CT inputs (../shared/realworld, one folder or file per case, described by
expected.json): each reads with the slice count, spacing, unit, slice order (markers) and array
expected, and what was fixed or left out is said in ``Volume.warnings``; or, where the note
allows it, it is refused with a DataError that names the input. Other cases of the same kinds are
built by tests/test_data_dicom.py and tests/test_data_nifti_nrrd.py."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

import jcs.data as jd

ROOT = Path(os.environ.get("JCS_REALWORLD_DIR")
            or Path(__file__).resolve().parents[1].parent / "shared" / "realworld")

#: A word the warnings must hold, per kind of case (by folder name prefix).
WARNED = {"dcm-duplicates": "duplicate", "dcm-localizer": "localizer",
          "dcm-missing-slice": "missing", "dcm-no-rescale": "RescaleIntercept"}


def cases(realworld_dir):
    return json.loads((realworld_dir / "expected.json").read_text())


def pytest_generate_tests(metafunc):
    """One test per case of expected.json (the realworld_dir fixture skips when it is absent)."""
    if "case" in metafunc.fixturenames:
        index = ROOT / "expected.json"
        names = sorted(json.loads(index.read_text())) if index.is_file() else ["absent"]
        metafunc.parametrize("case", names)


def _same_as(realworld_dir, reference: str) -> np.ndarray:
    if reference == "NREF":
        return np.load(realworld_dir / "nii-orientation" / "reference.npy")
    return jd.read_volume(realworld_dir / reference).array


def test_case_reads_as_expected_or_is_refused_clearly(realworld_dir, case):
    expected = cases(realworld_dir)[case]
    path = realworld_dir / expected["path"]
    try:
        volume = jd.read_volume(path)
    except jd.DataError as error:
        note = expected.get("note", "")
        assert "error" in note or "refus" in note, f"{case} refused: {error}"
        assert expected["path"].split("/")[-1] in str(error)
        return
    assert len(volume) == expected["n_slices"]
    assert volume.unit == expected["unit"]
    assert volume.spacing == pytest.approx(tuple(expected["spacing"]), abs=1e-4)
    found = volume.array[:, :8, :8].mean(axis=(1, 2))
    if "markers" in expected:
        np.testing.assert_allclose(found, expected["markers"], atol=1e-3)
    if "approx_markers" in expected:
        np.testing.assert_allclose(found, expected["approx_markers"], atol=5)
    for key in ("same_as", "same_array_as"):
        if key in expected:
            np.testing.assert_array_equal(volume.array, _same_as(realworld_dir, expected[key]))
    for prefix, word in WARNED.items():
        if case.startswith(prefix):
            assert any(word in w for w in volume.warnings), volume.warnings
    if case.startswith(("nii-orientation", "dcm-filenames", "dcm-order", "dcm-enhanced")):
        assert volume.warnings == []
