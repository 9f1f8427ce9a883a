"""DICOM series read as a new user's files come: slice geometry (order along the slice normal,
duplicates, scouts, gaps, non-uniform spacing, gantry tilt, patient position), Hounsfield units
(missing rescale, pixel padding) and finding the data (names, no preamble, DICOMDIR, enhanced
multi-frame). Every input is built here from pydicom's CT_small.dcm (tests/ct_builders.py); the
expected arrays are the display volumes the builders started from."""

import copy
import random
import shutil

import numpy as np
import pytest

import jcs.data as jd
from jcs.data.errors import DataError, EmptyFolderError, MixedSeriesError
from ct_builders import (INTERCEPT, PIXEL_MM, display_volume, markers, nifti_conversion,
                         series_datasets, write, write_series)

pydicom = pytest.importorskip("pydicom")
SPACING = (5.0, PIXEL_MM, PIXEL_MM)


def _only(warnings, *words):
    """The one warning that holds every word (fails when none or several do)."""
    found = [w for w in warnings if all(word in w for word in words)]
    assert len(found) == 1, (words, warnings)
    return found[0]


# -- 1. slice geometry -------------------------------------------------------------------------


def test_order_is_by_position_along_the_normal_not_instance_number_nor_name(tmp_path):
    display = display_volume(6)
    datasets = series_datasets(display)
    for ds in datasets:  # InstanceNumber runs inferior -> superior, the opposite of the positions
        ds.InstanceNumber = 7 - ds.InstanceNumber
    names = [f"{name}.dcm" for name in ("f", "a", "e", "b", "d", "c")]
    write(datasets, tmp_path / "s", names)
    volume = jd.read_volume(tmp_path / "s")
    np.testing.assert_array_equal(volume.array, display)
    assert markers(volume.array) == [100, 200, 300, 400, 500, 600]
    assert volume.slice_ids == names  # superior first
    assert volume.spacing == pytest.approx(SPACING) and volume.unit == "HU"
    assert volume.warnings == []


@pytest.mark.parametrize("position", ["HFS", "HFP", "FFS", "FFP"])
def test_every_patient_position_and_its_nifti_conversion_give_the_same_array(position, tmp_path):
    display = display_volume(4)
    datasets = series_datasets(display, position)
    write(datasets, tmp_path / position)
    volume = jd.read_volume(tmp_path / position)
    np.testing.assert_array_equal(volume.array, display)
    assert volume.spacing == pytest.approx(SPACING)
    nifti_conversion(datasets, tmp_path / f"{position}.nii.gz")
    converted = jd.read_volume(tmp_path / f"{position}.nii.gz")
    np.testing.assert_array_equal(converted.array, display)
    assert converted.spacing == pytest.approx(SPACING, abs=1e-5)


def test_without_positions_instance_number_orders_the_slices_with_a_warning(tmp_path):
    display = display_volume(5)
    datasets = series_datasets(display)
    order = [3, 0, 4, 1, 2]
    for ds in datasets:
        del ds.ImagePositionPatient, ds.SliceLocation
    write([datasets[i] for i in order], tmp_path / "s", [f"x{i}.dcm" for i in range(5)])
    volume = jd.read_volume(tmp_path / "s")
    assert markers(volume.array) == [100, 200, 300, 400, 500]
    assert volume.spacing == pytest.approx(SPACING)  # SpacingBetweenSlices
    _only(volume.warnings, "no slice positions", "InstanceNumber")


def test_without_image_positions_slice_location_orders_the_slices(tmp_path):
    display = display_volume(4)
    datasets = series_datasets(display)
    for ds in datasets:
        del ds.ImagePositionPatient
    write(datasets[::-1], tmp_path / "s")
    volume = jd.read_volume(tmp_path / "s")
    np.testing.assert_array_equal(volume.array, display)
    assert volume.spacing == pytest.approx(SPACING)
    _only(volume.warnings, "no ImagePositionPatient", "SliceLocation")


def test_rounding_noise_in_the_orientation_keeps_one_stack(tmp_path):
    display = display_volume(4)
    datasets = series_datasets(display)
    for k, ds in enumerate(datasets):  # 0.0049 and 0.0051 round apart at 2 decimals
        ds.ImageOrientationPatient = [1, 0.0049 + 0.0002 * (k % 2), 0, 0, 1, 0]
    write(datasets, tmp_path / "s")
    volume = jd.read_volume(tmp_path / "s")
    assert markers(volume.array) == [100, 200, 300, 400] and volume.warnings == []


def test_exact_duplicates_are_dropped_with_a_warning(tmp_path):
    display = display_volume(5)
    datasets = series_datasets(display)
    write(datasets, tmp_path / "s")
    for k in (1, 3):  # a second copy of two files (same SOPInstanceUID)
        shutil.copyfile(tmp_path / "s" / f"IM000{k}.dcm", tmp_path / "s" / f"IM000{k} (1).dcm")
    again = copy.deepcopy(datasets[2])  # the same slice again under a new UID
    again.SOPInstanceUID = pydicom.uid.generate_uid()
    write([again], tmp_path / "s", ["export_0003.dcm"])
    volume = jd.read_volume(tmp_path / "s")
    np.testing.assert_array_equal(volume.array, display)
    assert volume.spacing == pytest.approx(SPACING)
    assert "IM0001.dcm" in volume.slice_ids and "IM0001 (1).dcm" not in volume.slice_ids
    _only(volume.warnings, "dropped 2 duplicate", "IM0001 (1).dcm", "SOPInstanceUID")
    _only(volume.warnings, "dropped 1 duplicate", "same position and same pixels")


def test_two_different_images_at_one_position_are_refused(tmp_path):
    datasets = series_datasets(display_volume(4))
    other = copy.deepcopy(datasets[1])
    other.SOPInstanceUID = pydicom.uid.generate_uid()
    other.PixelData = (np.frombuffer(other.PixelData, np.int16) + 100).astype(np.int16).tobytes()
    write(datasets + [other], tmp_path / "s")
    with pytest.raises(MixedSeriesError, match="same position.*more than one volume.*own"):
        jd.read_volume(tmp_path / "s")


def test_scouts_and_images_of_another_orientation_or_size_are_left_out(tmp_path):
    display = display_volume(5)
    datasets = series_datasets(display)
    scout = copy.deepcopy(datasets[0])  # a LOCALIZER, coronal, far above: would become slice 0
    scout.SOPInstanceUID = pydicom.uid.generate_uid()
    scout.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    scout.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    scout.ImagePositionPatient = [-42.3, 0.0, 150.0]
    reformat = copy.deepcopy(scout)  # coronal too, but not marked LOCALIZER
    reformat.SOPInstanceUID = pydicom.uid.generate_uid()
    reformat.ImageType = ["DERIVED", "SECONDARY", "REFORMATTED"]
    small = copy.deepcopy(datasets[2])  # another size
    small.SOPInstanceUID = pydicom.uid.generate_uid()
    small.Rows = small.Columns = 64
    small.PixelData = np.zeros((64, 64), np.int16).tobytes()
    small.ImagePositionPatient = [-42.3, -42.3, -42.5]
    write(datasets + [scout, reformat, small], tmp_path / "s",
          [f"IM{k:04d}.dcm" for k in range(5)] + ["scout.dcm", "coronal.dcm", "small.dcm"])
    volume = jd.read_volume(tmp_path / "s")
    np.testing.assert_array_equal(volume.array, display)
    _only(volume.warnings, "1 localizer", "scout.dcm")
    _only(volume.warnings, "2 image(s) whose orientation or size differs", "coronal.dcm", "small.dcm")


def test_a_missing_slice_is_warned_about_and_the_spacing_stays_the_step(tmp_path):
    display = display_volume(8)
    datasets = series_datasets(display)
    write(datasets[:3] + datasets[4:], tmp_path / "s",
          [f"IM{k + 1:04d}.dcm" for k in (0, 1, 2, 4, 5, 6, 7)])
    volume = jd.read_volume(tmp_path / "s")
    assert len(volume) == 7 and volume.spacing == pytest.approx(SPACING)
    assert markers(volume.array) == [100, 200, 300, 500, 600, 700, 800]
    _only(volume.warnings, "1 slice(s) missing", "steps 5 mm", "10 mm between slice 2 (IM0003.dcm) "
          "and slice 3 (IM0005.dcm)")


def test_non_uniform_spacing_reports_no_spacing(tmp_path):
    display = display_volume(5)
    datasets = series_datasets(display)
    for ds, z in zip(datasets, (-40.0, -45.0, -50.0, -53.0, -58.0)):  # steps 5, 5, 3, 5 mm
        ds.ImagePositionPatient = [-42.3, -42.3, z]
    write(datasets, tmp_path / "s")
    volume = jd.read_volume(tmp_path / "s")
    assert volume.spacing is None  # no median of 5, 5, 3, 5 passed off as the spacing
    assert markers(volume.array) == [100, 200, 300, 400, 500]
    _only(volume.warnings, "not uniform", "3, 5 mm", "no single spacing")


def test_gantry_tilt_is_warned_about(tmp_path):
    tilt = np.radians(15.0)
    datasets = series_datasets(display_volume(4))
    for ds in datasets:  # planes tilted about x; the table moves along z only
        ds.ImageOrientationPatient = [1, 0, 0, 0, float(np.cos(tilt)), float(-np.sin(tilt))]
    write(datasets, tmp_path / "s")
    volume = jd.read_volume(tmp_path / "s")
    assert volume.spacing[0] == pytest.approx(5.0 * np.cos(tilt))  # distance between the planes
    assert markers(volume.array) == [100, 200, 300, 400]
    _only(volume.warnings, "gantry tilt", "15.0 degrees", "dcm2niix")


# -- 2. Hounsfield units -------------------------------------------------------------------------


def test_missing_rescale_is_not_silently_hounsfield_units(tmp_path):
    datasets = series_datasets(display_volume(4))
    for ds in datasets:
        del ds.RescaleIntercept, ds.RescaleSlope
    write(datasets, tmp_path / "s")
    volume = jd.read_volume(tmp_path / "s")
    stored = display_volume(4) - INTERCEPT
    np.testing.assert_array_equal(volume.array, stored)  # nothing invented
    warning = _only(volume.warnings, "no RescaleSlope / RescaleIntercept", "taken as HU as they are")
    assert "do not look like Hounsfield units" in warning and "dcmodify" in warning


def test_pixel_padding_becomes_air(tmp_path):
    display = display_volume(3)
    padded = display.copy()
    padded[:, 100:, :20] = -2000.0 + INTERCEPT  # stored -2000 = PixelPaddingValue (GE)
    write(series_datasets(padded), tmp_path / "declared")
    volume = jd.read_volume(tmp_path / "declared")
    expected = display.copy()
    expected[:, 100:, :20] = -1024.0
    np.testing.assert_array_equal(volume.array, expected)
    _only(volume.warnings, "pixel padding", "PixelPaddingValue -2000", "-1024 HU")

    fill = display.copy()
    fill[:, :4, 60:] = -2000.0  # the fill outside the scan circle, not declared
    datasets = series_datasets(fill)
    for ds in datasets:
        del ds.PixelPaddingValue
    write(datasets, tmp_path / "fill")
    volume = jd.read_volume(tmp_path / "fill")
    expected = display.copy()
    expected[:, :4, 60:] = -1024.0
    np.testing.assert_array_equal(volume.array, expected)
    _only(volume.warnings, "pixel padding", "down to -2000 HU")


# -- 3. finding the data ---------------------------------------------------------------------------


@pytest.mark.parametrize("names", [
    ["IM1", "IM2", "IM3"],  # no extension
    [f"SYNTH.CT.CHEST.0002.{k:04d}.2024.IMA" for k in (1, 2, 3)],  # Siemens
    [f"1.2.826.0.1.3680043.8.498.{k}" for k in (1, 2, 3)],  # UID names
    ["A.DCM", "B.DCM", "C.DCM"],
], ids=["no-extension", "ima", "uid", "upper-case"])
def test_dicom_is_found_by_content_not_by_name(names, tmp_path):
    display = display_volume(3)
    write(series_datasets(display), tmp_path / "s", names)
    (tmp_path / "s" / "README.txt").write_text("exported by a viewer\n")
    volume = jd.read_volume(tmp_path / "s")
    np.testing.assert_array_equal(volume.array, display)
    _only(volume.warnings, "left out 1 file(s) that are not DICOM", "README.txt")
    np.testing.assert_array_equal(jd.read_volume(tmp_path / "s" / names[0]).array, display[:1])


def test_files_without_preamble_or_file_meta_are_read(tmp_path):
    display = display_volume(3)
    folder = tmp_path / "s"
    folder.mkdir()
    for k, ds in enumerate(series_datasets(display)):
        del ds.file_meta
        ds.preamble = None
        pydicom.dcmwrite(folder / f"IM{k}", ds, implicit_vr=True, little_endian=True,
                         enforce_file_format=False)
    assert (folder / "IM0").read_bytes()[128:132] != b"DICM"
    volume = jd.read_volume(folder)
    np.testing.assert_array_equal(volume.array, display)
    assert volume.warnings == []


def _disc(tmp_path, series):
    """A disc: DICOMDIR at the root, files under PT*/ST*/SE*/ (pydicom's FileSet layout)."""
    from pydicom.fileset import FileSet

    file_set = FileSet()
    for datasets in series:
        for ds in datasets:
            file_set.add(ds)
    file_set.write(tmp_path / "disc")
    return tmp_path / "disc"


def test_dicomdir_at_the_root_is_followed_and_skipped_inside_a_series(tmp_path):
    display = display_volume(4)
    disc = _disc(tmp_path, [series_datasets(display)])
    assert (disc / "DICOMDIR").is_file() and not any(p.is_file() for p in disc.glob("*.dcm"))
    volume = jd.read_volume(disc)
    np.testing.assert_array_equal(volume.array, display)
    np.testing.assert_array_equal(jd.read_volume(disc / "DICOMDIR").array, display)
    series_folder = next(p.parent for p in disc.rglob("*") if p.is_file() and p.name != "DICOMDIR")
    shutil.copyfile(disc / "DICOMDIR", series_folder / "DICOMDIR")
    inside = jd.read_volume(series_folder)
    np.testing.assert_array_equal(inside.array, display)
    assert inside.warnings == []


def test_a_disc_with_several_series_says_which_folder_to_give(tmp_path):
    disc = _disc(tmp_path, [series_datasets(display_volume(3)), series_datasets(display_volume(2))])
    with pytest.raises(MixedSeriesError) as info:
        jd.read_volume(disc)
    message = str(info.value)
    assert "lists 2 image series" in message and "3 images" in message and "2 images" in message
    assert "giving its folder" in message and str(disc) in message


def test_a_folder_of_series_folders_names_them(tmp_path):
    write_series(tmp_path / "study" / "series1", 2)
    with pytest.raises(EmptyFolderError, match="sub-folders hold DICOM files.*series1"):
        jd.read_volume(tmp_path / "study")


def _enhanced(datasets, order):
    """An enhanced (multi-frame) CT made by highdicom from single-frame data sets, its frames
    then stored in ``order`` (frame i = slice order[i])."""
    highdicom = pytest.importorskip("highdicom")
    image = highdicom.legacy.LegacyConvertedEnhancedCTImage(
        legacy_datasets=datasets, series_instance_uid=pydicom.uid.generate_uid(), series_number=9,
        sop_instance_uid=pydicom.uid.generate_uid(), instance_number=1)
    frames = image.pixel_array
    image.PixelData = np.ascontiguousarray(frames[order]).tobytes()
    groups = list(image.PerFrameFunctionalGroupsSequence)
    image.PerFrameFunctionalGroupsSequence = [groups[i] for i in order]
    return image


def test_enhanced_multiframe_ct_is_read_in_position_order(tmp_path):
    display = display_volume(6)
    order = [3, 0, 5, 1, 4, 2]
    _enhanced(series_datasets(display), order).save_as(tmp_path / "enhanced.dcm")
    volume = jd.read_volume(tmp_path / "enhanced.dcm")
    np.testing.assert_array_equal(volume.array, display)
    assert volume.spacing == pytest.approx(SPACING) and volume.unit == "HU"
    (tmp_path / "folder").mkdir()
    shutil.copyfile(tmp_path / "enhanced.dcm", tmp_path / "folder" / "1.2.3.4")
    np.testing.assert_array_equal(jd.read_volume(tmp_path / "folder").array, display)


def test_enhanced_multiframe_ct_with_a_gap_is_refused_with_how_to_convert(tmp_path):
    datasets = series_datasets(display_volume(5))
    _enhanced([datasets[i] for i in (0, 1, 3, 4)], [0, 1, 2, 3]).save_as(tmp_path / "gap.dcm")
    with pytest.raises(DataError, match="gap.dcm.*multi-frame.*regularly spaced.*dcm2niix"):
        jd.read_volume(tmp_path / "gap.dcm")


def test_random_file_names_and_order_do_not_matter(tmp_path):
    display = display_volume(5)
    datasets = series_datasets(display)
    names = [pydicom.uid.generate_uid() for _ in datasets]
    shuffled = list(range(5))
    random.Random(3).shuffle(shuffled)
    write([datasets[i] for i in shuffled], tmp_path / "s", names)
    np.testing.assert_array_equal(jd.read_volume(tmp_path / "s").array, display)
