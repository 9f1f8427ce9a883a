"""The DICOM SEG of a DICOM series input, parsed back with highdicom and pydicom: two segments
(lesion, lung) with the algorithm identification, one frame per source slice and segment, the
source SOP Instance UIDs referenced, and each frame's mask equal to what the source file itself
(its own pixel layout) says, for every patient position."""
from __future__ import annotations

import sys
from pathlib import Path

import highdicom
import numpy as np
import pydicom
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import ct_builders  # noqa: E402

import jcs  # noqa: E402
from jcs.data import Volume, read_volume  # noqa: E402
from jcs.diagnosis import write_dicom_seg  # noqa: E402
from jcs.diagnosis.dicom_seg import CONTENT_DESCRIPTION, dicom_seg_unavailable  # noqa: E402

SEGMENTER = {"name": "jcs-seg", "checkpoint": "/runs/cpu/jcs-seg/seed0/model.pt", "random_init": False}


def _stored_hu(ds) -> np.ndarray:
    return ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


@pytest.mark.parametrize("position", ["HFS", "FFP"])
def test_seg_references_every_source_image_and_round_trips_the_masks(tmp_path, position):
    folder = tmp_path / "series"
    ct_builders.write_series(folder, 5, position)
    volume = read_volume(folder)
    lesion = np.isclose(volume.array, 300.0)  # the marker block of display slice 2
    lungs = volume.array < -400
    info = write_dicom_seg(tmp_path / "seg.dcm", volume.grid, lesion, lungs, SEGMENTER, -400.0)
    seg = highdicom.seg.segread(tmp_path / "seg.dcm")
    files = sorted(folder.glob("*.dcm"))
    sources = {str(pydicom.dcmread(p).SOPInstanceUID): p for p in files}

    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"  # Segmentation Storage
    assert int(seg.NumberOfFrames) == info["frames"] == 2 * len(files)
    assert [int(s.SegmentNumber) for s in seg.SegmentSequence] == [1, 2]
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["COVID-19 lesion", "Lung"]
    assert seg.SegmentSequence[1].SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Lung"
    algorithm = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert algorithm.AlgorithmName == "jcs jcs-seg" and algorithm.AlgorithmVersion == jcs.__version__
    assert "model.pt" in algorithm.AlgorithmParameters
    assert seg.ContentDescription == CONTENT_DESCRIPTION and "not a medical device" in seg.SeriesDescription
    assert seg.StudyInstanceUID == pydicom.dcmread(files[0]).StudyInstanceUID

    referenced = {str(item.ReferencedSOPInstanceUID)
                  for series in seg.ReferencedSeriesSequence for item in series.ReferencedInstanceSequence}
    assert referenced == set(sources)
    uids = sorted(sources)
    pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, segment_numbers=[1, 2])
    for uid, frame in zip(uids, pixels):
        hu = _stored_hu(pydicom.dcmread(sources[uid]))  # the file's own row/column layout
        np.testing.assert_array_equal(frame[..., 0] > 0, np.isclose(hu, 300.0))
        np.testing.assert_array_equal(frame[..., 1] > 0, hu < -400)


def test_seg_of_a_series_with_a_missing_slice_references_the_files_present(realworld_dir, tmp_path):
    folder = realworld_dir / "dcm-missing-slice"
    volume = read_volume(folder)
    lesion = volume.array > 50
    write_dicom_seg(tmp_path / "seg.dcm", volume.grid, lesion, None, SEGMENTER, -400.0)
    seg = highdicom.seg.segread(tmp_path / "seg.dcm")
    files = sorted(folder.glob("*.dcm"))
    assert int(seg.NumberOfFrames) == 2 * len(files) == 2 * len(volume)
    uids = [str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in files]
    pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, segment_numbers=[1, 2])
    for path, frame in zip(files, pixels):
        np.testing.assert_array_equal(frame[..., 0] > 0, _stored_hu(pydicom.dcmread(path)) > 50)
        assert not frame[..., 1].any()  # no lung mask given: an empty segment


def test_no_seg_for_an_input_that_is_not_a_dicom_series(realworld_dir, tmp_path):
    for path in (realworld_dir / "nii-orientation" / "lps.nii.gz", realworld_dir / "dcm-enhanced-multiframe"):
        volume = read_volume(path)
        reason = dicom_seg_unavailable(volume.grid)
        assert reason and reason.startswith("no DICOM SEG") and "NIfTI" in reason
        with pytest.raises(ValueError, match="no DICOM SEG"):
            write_dicom_seg(tmp_path / "seg.dcm", volume.grid, volume.array > 0, None, SEGMENTER, -400.0)
    png = Volume(np.zeros((2, 4, 4), np.float32), None, "uint8", "pngs", ["a", "b"])
    assert "not a single-frame DICOM series" in dicom_seg_unavailable(png.grid)


@pytest.mark.parametrize("defect", ["empty", "shared"])
def test_series_without_distinct_sop_instance_uids_gets_no_seg(tmp_path, defect):
    """Anonymised series with blank (COVID-CT-MD P002) or repeated SOP Instance UIDs: a SEG would
    reference no image, or several at once; refused with the reason, nothing written."""
    from jcs.diagnosis.dicom_seg import UnreferenceableSeriesError

    folder = tmp_path / "series"
    ct_builders.write_series(folder, 3, "HFS")
    for path in sorted(folder.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        ds.SOPInstanceUID = "" if defect == "empty" else "1.2.3.4"
        ds.save_as(path)
    volume = read_volume(folder)
    lesion = np.zeros(volume.array.shape, dtype=bool)
    match = "no SOP Instance UID" if defect == "empty" else "shared by several"
    with pytest.raises(UnreferenceableSeriesError, match=match):
        write_dicom_seg(tmp_path / "seg.dcm", volume.grid, lesion, None, SEGMENTER, -400.0)
    assert not (tmp_path / "seg.dcm").exists()
