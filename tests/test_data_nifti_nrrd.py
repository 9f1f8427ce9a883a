"""NIfTI and NRRD volumes as users bring them: orientations, trailing singleton dimensions,
several volumes in one file, 8-bit files with and without scaling, raw stored values, pixel
padding; and the two real chest CTs of the pyradiomics 3.0.1 archive (NRRD). The NIfTI / NRRD
files are built here from hand-made arrays, so the expected arrays are known."""

import numpy as np
import pytest

import jcs.data as jd
from jcs.data.errors import ShapeMismatchError
from ct_builders import display_volume, markers

nibabel = pytest.importorskip("nibabel")
nrrd = pytest.importorskip("nrrd")
ZOOMS = (0.7, 0.8, 5.0)  # x, y, z mm


def ras_image(display: np.ndarray, dtype=np.int16) -> "nibabel.Nifti1Image":
    """The RAS+ NIfTI of a display volume (S×H×W: slice 0 superior, row 0 anterior, column 0 the
    patient's right): every axis reversed, then data[x, y, z] towards right, anterior, superior."""
    data = display[::-1, ::-1, ::-1].transpose(2, 1, 0)
    return nibabel.Nifti1Image(np.ascontiguousarray(data).astype(dtype), np.diag([*ZOOMS, 1.0]))


def test_orientations_give_one_array(tmp_path):
    display = display_volume(4)
    ras = ras_image(display)
    nibabel.save(ras, tmp_path / "ras.nii.gz")
    data = np.asanyarray(ras.dataobj)
    las = nibabel.Nifti1Image(data[::-1].copy(), np.diag([-ZOOMS[0], ZOOMS[1], ZOOMS[2], 1.0]))
    nibabel.save(las, tmp_path / "las.nii.gz")
    z_reversed = nibabel.Nifti1Image(data[:, :, ::-1].copy(), np.diag([ZOOMS[0], ZOOMS[1], -ZOOMS[2], 1.0]))
    nibabel.save(z_reversed, tmp_path / "zrev.nii.gz")
    qform_only = nibabel.Nifti1Image(data, None)
    qform_only.set_qform(np.diag([*ZOOMS, 1.0]), code=1)
    qform_only.set_sform(None, code=0)
    nibabel.save(qform_only, tmp_path / "qform.nii.gz")
    for name in ("ras", "las", "zrev", "qform"):
        volume = jd.read_volume(tmp_path / f"{name}.nii.gz")
        np.testing.assert_array_equal(volume.array, display, err_msg=name)
        assert volume.spacing == pytest.approx((5.0, 0.8, 0.7)) and volume.unit == "HU"
        assert markers(volume.array) == [100, 200, 300, 400]


def test_trailing_singleton_dimensions_are_3d_and_several_volumes_are_refused(tmp_path):
    display = display_volume(3)
    data = np.asanyarray(ras_image(display).dataobj)
    nibabel.save(nibabel.Nifti1Image(data[..., None, None], np.diag([*ZOOMS, 1.0])),
                 tmp_path / "x_y_z_1_1.nii.gz")
    volume = jd.read_volume(tmp_path / "x_y_z_1_1.nii.gz")
    np.testing.assert_array_equal(volume.array, display)
    two = np.stack([data, data], axis=3)
    nibabel.save(nibabel.Nifti1Image(two, np.diag([*ZOOMS, 1.0])), tmp_path / "two.nii.gz")
    with pytest.raises(ShapeMismatchError,
                       match=r"two.nii.gz: holds 2 volumes of 128 x 128 x 3 voxels.*volumes 0 to 1"
                             r".*fslroi two.nii.gz volume0.nii.gz 0 1"):
        jd.read_volume(tmp_path / "two.nii.gz")


@pytest.mark.parametrize("dtype, slope, inter", [(np.uint8, 8.0, -1024.0), (np.int8, 8.0, 0.0)])
def test_eight_bit_files_with_scaling_hold_hounsfield_units(dtype, slope, inter, tmp_path):
    stored = np.zeros((4, 3, 2), dtype=dtype)  # x, y, z
    stored[..., 0] = 3   # 3·8 - 1024 = -1000 HU (air) / 24 HU
    stored[..., 1] = 100  # -224 HU / 800 HU
    image = nibabel.Nifti1Image(stored, np.diag([*ZOOMS, 1.0]))
    image.header.set_slope_inter(slope, inter)
    nibabel.save(image, tmp_path / "scaled.nii.gz")
    volume = jd.read_volume(tmp_path / "scaled.nii.gz")
    assert volume.unit == "HU"
    # slice 0 = most superior = z index 1
    assert set(volume.array[0].ravel()) == {100 * slope + inter}
    assert set(volume.array[1].ravel()) == {3 * slope + inter}


def test_plain_uint8_holds_display_values(tmp_path):
    image = nibabel.Nifti1Image(np.full((4, 3, 2), 200, np.uint8), np.diag([*ZOOMS, 1.0]))
    nibabel.save(image, tmp_path / "windowed.nii.gz")
    volume = jd.read_volume(tmp_path / "windowed.nii.gz")
    assert volume.unit == "uint8" and volume.warnings == [] and volume.array.max() == 200


def test_raw_stored_values_are_not_silently_hounsfield_units(tmp_path):
    stored = display_volume(3) + 1024  # air near 24 instead of -1000: no intercept applied
    nibabel.save(ras_image(stored), tmp_path / "raw.nii.gz")
    volume = jd.read_volume(tmp_path / "raw.nii.gz")
    assert volume.unit == "HU"
    (warning,) = volume.warnings
    assert "do not look like Hounsfield units" in warning and "scl_inter" in warning


def test_padding_outside_the_scan_circle_becomes_air(tmp_path):
    display = display_volume(2)
    padded = display.copy()
    padded[:, :10, 100:] = -3024
    nibabel.save(ras_image(padded), tmp_path / "padded.nii.gz")
    volume = jd.read_volume(tmp_path / "padded.nii.gz")
    expected = display.copy()
    expected[:, :10, 100:] = -1024
    np.testing.assert_array_equal(volume.array, expected)
    (warning,) = volume.warnings
    assert "pixel padding" in warning and "-3024" in warning


@pytest.mark.parametrize("space, lps_signs", [("left-posterior-superior", (1, 1, 1)),
                                              ("right-anterior-superior", (-1, -1, 1)),
                                              ("left-posterior-superior", (1, -1, -1))])
def test_nrrd_spaces_and_directions_give_one_array(space, lps_signs, tmp_path):
    """Stored axis i runs along LPS axis i with sign lps_signs[i]; the file writes that
    direction in its own space (RAS flips x and y)."""
    display = display_volume(3)
    lps = display[::-1].transpose(2, 1, 0)  # [x, y, z]: x towards left, y posterior, z superior
    data = lps[tuple(slice(None, None, -1) if sign < 0 else slice(None) for sign in lps_signs)]
    to_space = np.array([-1, -1, 1]) if space.startswith("right") else np.ones(3)
    directions = np.diag(np.array([0.7, 0.8, 5.0]) * np.array(lps_signs) * to_space)
    nrrd.write(str(tmp_path / "v.nrrd"), np.ascontiguousarray(data).astype(np.int16),
               {"space": space, "space directions": directions, "encoding": "gzip"})
    volume = jd.read_volume(tmp_path / "v.nrrd")
    np.testing.assert_array_equal(volume.array, display)
    assert volume.spacing == pytest.approx((5.0, 0.8, 0.7)) and volume.unit == "HU"


def test_nrrd_with_several_volumes_is_refused(tmp_path):
    data = np.zeros((2, 4, 3, 2), np.int16)
    nrrd.write(str(tmp_path / "list.nrrd"), data, {
        "space": "left-posterior-superior", "kinds": ["list", "domain", "domain", "domain"],
        "space directions": [[np.nan] * 3, [0.7, 0, 0], [0, 0.8, 0], [0, 0, 5.0]]})
    with pytest.raises(ShapeMismatchError, match="list.nrrd.*2 volume"):
        jd.read_volume(tmp_path / "list.nrrd")


def test_pyradiomics_chest_cts(pyradiomics_lungs):
    """The two real chest CTs of the pyradiomics 3.0.1 archive: HU, 5 mm slices, superior first,
    anterior at the top (the spine, the densest bone, in the lower half)."""
    for name, slices, pixel in (("lung1", 48, 0.5703125), ("lung2", 61, 0.6269531)):
        volume = jd.read_volume(pyradiomics_lungs / f"{name}_image.nrrd")
        assert volume.array.shape == (slices, 512, 512) and volume.unit == "HU"
        assert volume.spacing == pytest.approx((5.0, pixel, pixel))
        assert volume.warnings == []
        assert volume.array.min() == -1024 and np.percentile(volume.array, 1) < -900
        middle = volume.array[slices // 2]
        rows = np.nonzero(middle > 700)[0]
        assert np.median(rows) > 256
