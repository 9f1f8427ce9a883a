"""The diagnosis' NIfTI masks land on the scan: read back with nibabel, their affine and voxel
grid are the input's (NIfTI, NRRD-free DICOM series of every patient position, a real
JPEG-lossless series, a series with a missing slice), checked against what nibabel and pydicom
read from the input files themselves (markers whose voxels are known in the input)."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import nibabel
import numpy as np
import pydicom
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import ct_builders  # noqa: E402

from jcs.data import Volume, read_volume  # noqa: E402
from jcs.data.grid import RAS_FROM_LPS  # noqa: E402
from jcs.diagnosis import save_on_grid, write_nifti_masks  # noqa: E402
from jcs.diagnosis.nifti_masks import LESION_FILE, LUNG_FILE, geometry_summary  # noqa: E402

MARKER_HU = 300.0  # the 8×8 block of display slice 2 (ct_builders: 100·(k+1) HU)


def _marker_mask(volume: Volume) -> np.ndarray:
    """bool S×H×W: the display voxels that hold the marker of display slice 2."""
    return np.isclose(volume.array, MARKER_HU)


def _world_points(image) -> np.ndarray:
    """RAS mm (N×3) of the voxels set in a NIfTI mask, by nibabel."""
    index = np.argwhere(np.asanyarray(image.dataobj) > 0)
    return nibabel.affines.apply_affine(image.affine, index)


def _dicom_marker_points(files) -> np.ndarray:
    """RAS mm of the marker pixels of a DICOM series, from each file's own header (pydicom):
    ImagePositionPatient + column·ΔX·row direction + row·ΔY·column direction."""
    points = []
    for path in files:
        ds = pydicom.dcmread(path)
        hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        rows, cols = np.nonzero(np.isclose(hu, MARKER_HU))
        iop = np.array([float(v) for v in ds.ImageOrientationPatient])
        dy, dx = (float(v) for v in ds.PixelSpacing)
        origin = np.array([float(v) for v in ds.ImagePositionPatient])
        lps = origin + np.outer(cols * dx, iop[:3]) + np.outer(rows * dy, iop[3:])
        points.append(lps * [-1, -1, 1])
    return np.concatenate(points)


def _same_points(a: np.ndarray, b: np.ndarray, atol: float = 1e-4) -> None:
    assert a.shape == b.shape and len(a)
    order_a, order_b = np.lexsort(a.T[::-1]), np.lexsort(b.T[::-1])
    np.testing.assert_allclose(a[order_a], b[order_b], atol=atol)


@pytest.mark.parametrize("position", sorted(ct_builders.POSITIONS))
def test_nifti_input_masks_keep_its_affine_and_land_on_its_voxels(tmp_path, position):
    display = ct_builders.display_volume(5)
    path = tmp_path / "scan.nii.gz"
    ct_builders.nifti_conversion(ct_builders.series_datasets(display, position), path)
    source = nibabel.load(path)
    volume = read_volume(path)
    # the grid's reorientation is the reader's: the file's data put in display order is the volume
    np.testing.assert_array_equal(volume.grid.to_display(source.get_fdata(dtype=np.float32)),
                                  volume.array)
    written = write_nifti_masks(tmp_path, volume, _marker_mask(volume), volume.array < -400)
    assert written == {"lesion_mask": LESION_FILE, "lung_mask": LUNG_FILE}
    mask = nibabel.load(tmp_path / LESION_FILE)
    np.testing.assert_array_equal(mask.affine, source.affine)
    assert mask.shape == source.shape and mask.get_data_dtype() == np.uint8
    assert mask.header["sform_code"] == source.header["sform_code"]
    # the marker's voxels in the input file (nibabel) are exactly the mask's voxels
    expected = np.isclose(source.get_fdata(), MARKER_HU)
    np.testing.assert_array_equal(np.asanyarray(mask.dataobj) > 0, expected)
    lungs = nibabel.load(tmp_path / LUNG_FILE)
    np.testing.assert_array_equal(np.asanyarray(lungs.dataobj) > 0, source.get_fdata() < -400)


def test_realworld_nifti_in_lps_and_ras_storage(realworld_dir, tmp_path):
    """The shared NIfTI files stored in two orientations: masks computed on the display
    volume come back on each file's own voxels."""
    for path in sorted((realworld_dir / "nii-orientation").glob("*.nii*")):
        source = nibabel.load(path)
        volume = read_volume(path)
        threshold = np.percentile(volume.array, 90)
        out = tmp_path / path.name.split(".")[0]
        out.mkdir()
        write_nifti_masks(out, volume, volume.array > threshold, None)
        mask = nibabel.load(out / LESION_FILE)
        np.testing.assert_array_equal(mask.affine, source.affine)
        raw = np.squeeze(source.get_fdata(dtype=np.float32))
        np.testing.assert_array_equal(np.asanyarray(mask.dataobj) > 0, raw > threshold)


@pytest.mark.parametrize("position", sorted(ct_builders.POSITIONS))
def test_dicom_series_masks_land_where_the_headers_put_the_marker(tmp_path, position):
    folder = tmp_path / "series"
    ct_builders.write_series(folder, 5, position)
    volume = read_volume(folder)
    write_nifti_masks(tmp_path, volume, _marker_mask(volume), None)
    mask = nibabel.load(tmp_path / LESION_FILE)
    assert mask.shape == (128, 128, 5)
    _same_points(_world_points(mask), _dicom_marker_points(sorted(folder.glob("*.dcm"))))
    assert np.linalg.det(mask.affine[:3, :3]) > 0  # k along row × column: right-handed (DICOM's)


def test_dicom_series_affine_equals_nibabels_reading_of_the_headers(data_dir, tmp_path):
    """P002 (real, JPEG lossless): the written affine's in-plane columns and origin equal
    nibabel.nicom's affine of the first slice, its slice column the step between the first two
    slices, and every slice k lies at its file's ImagePositionPatient."""
    with warnings.catch_warnings():  # nicom says it is experimental: a second opinion only
        warnings.simplefilter("ignore", UserWarning)
        from nibabel.nicom import dicomwrappers

    folder = data_dir / "covid_ct_md_sample" / "dicom" / "P002"
    volume = read_volume(folder)
    lungs = volume.array < -400
    write_nifti_masks(tmp_path, volume, None, lungs)
    image = nibabel.load(tmp_path / LUNG_FILE)
    assert image.shape == (512, 512, 133)
    headers = sorted((pydicom.dcmread(p, stop_before_pixels=True) for p in folder.glob("*.dcm")),
                     key=lambda ds: float(ds.ImagePositionPatient[2]))
    lps = RAS_FROM_LPS @ image.affine
    # nibabel: (row, column, slice) voxel -> LPS mm; the NIfTI grid is (column, row, slice)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        first = dicomwrappers.wrapper_from_data(headers[0]).affine
    np.testing.assert_allclose(lps[:3, [1, 0, 3]], first[:3, [0, 1, 3]], atol=1e-4)
    # nibabel's slice normal is the cross product of ITS first two columns (ours swapped)
    np.testing.assert_allclose(np.cross(lps[:3, 1], lps[:3, 0]) / 0.603516 ** 2,
                               first[:3, 2] / np.linalg.norm(first[:3, 2]), atol=1e-4)
    np.testing.assert_allclose(lps[:3, 2], np.subtract(headers[1].ImagePositionPatient,
                                                       headers[0].ImagePositionPatient), atol=1e-4)
    for k, ds in enumerate(headers):
        np.testing.assert_allclose(nibabel.affines.apply_affine(lps, [0, 0, k]),
                                   [float(v) for v in ds.ImagePositionPatient], atol=1e-4)
    assert int(np.asanyarray(image.dataobj).sum()) == int(lungs.sum())


def test_a_missing_slice_stays_an_empty_plane(realworld_dir, tmp_path):
    """dcm-missing-slice (IM0004 absent): the grid keeps the 5 mm step, the gap is an empty
    plane, and every present file's marker lands on its own position."""
    folder = realworld_dir / "dcm-missing-slice"
    volume = read_volume(folder)
    markers = np.isin(np.round(volume.array), [100.0 * (k + 1) for k in range(8)])
    write_nifti_masks(tmp_path, volume, markers, None)
    image = nibabel.load(tmp_path / LESION_FILE)
    assert image.shape[2] == len(volume) + 1
    data = np.asanyarray(image.dataobj)
    empty = np.flatnonzero(data.sum(axis=(0, 1)) == 0).tolist()
    assert len(empty) == 1 and 0 < empty[0] < image.shape[2] - 1
    expected = []
    for path in sorted(folder.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        rows, cols = np.nonzero(np.isin(np.round(hu), [100.0 * (k + 1) for k in range(8)]))
        iop = np.array([float(v) for v in ds.ImageOrientationPatient])
        dy, dx = (float(v) for v in ds.PixelSpacing)
        lps = (np.array([float(v) for v in ds.ImagePositionPatient])
               + np.outer(cols * dx, iop[:3]) + np.outer(rows * dy, iop[3:]))
        expected.append(lps * [-1, -1, 1])
    _same_points(_world_points(image), np.concatenate(expected))
    assert geometry_summary(volume)["missing_slices"] == 1


def test_an_input_without_geometry_is_written_in_the_display_frame_and_says_so(tmp_path):
    volume = Volume(np.zeros((3, 8, 8), np.float32), (2.0, 0.5, 0.5), "uint8", "pngs", list("abc"))
    mask = np.zeros((3, 8, 8), bool)
    mask[0, 1, 2] = True
    write_nifti_masks(tmp_path, volume, mask, None)
    image = nibabel.load(tmp_path / LESION_FILE)
    assert image.shape == (3, 8, 8)
    assert np.flatnonzero(np.asanyarray(image.dataobj)).tolist() == [np.ravel_multi_index((0, 1, 2), (3, 8, 8))]
    assert nibabel.aff2axcodes(image.affine) == ("I", "P", "L")  # slice 0 superior, ...
    assert image.header.get_zooms() == (2.0, 0.5, 0.5)
    geometry = geometry_summary(volume)
    assert geometry["basis"] == "assumed" and "no position in the patient" in geometry["notes"][0]


def test_a_mask_of_the_wrong_shape_is_refused(tmp_path):
    volume = read_volume_of_shape((4, 8, 8))
    with pytest.raises(ValueError, match="not on this volume's display grid"):
        save_on_grid(np.zeros((4, 8, 9), np.uint8), volume.grid, tmp_path / "x.nii.gz")


def read_volume_of_shape(shape):
    from jcs.data.grid import assumed_grid

    return Volume(np.zeros(shape, np.float32), None, "HU", "x", [str(k) for k in range(shape[0])],
                  grid=assumed_grid(shape, None))


def test_nrrd_input_masks_land_where_its_header_puts_the_marker(tmp_path):
    """A NRRD in RAS space, axes stored right-to-left reversed and feet first: the mask's voxels
    map (written affine) to the points the NRRD header gives the marker's voxels."""
    import nrrd

    display = ct_builders.display_volume(5)  # slices I, rows P, columns L
    data = np.ascontiguousarray(display.transpose(2, 1, 0)[::-1, :, ::-1])  # i -> R, j -> P, k -> S
    mm = ct_builders.PIXEL_MM
    directions = np.array([[mm, 0.0, 0.0], [0.0, -mm, 0.0], [0.0, 0.0, 5.0]])  # RAS space
    origin = np.array([10.0, 20.0, -30.0])
    path = tmp_path / "scan.nrrd"
    nrrd.write(str(path), data.astype(np.int16), {"space": "right-anterior-superior",
                                                   "space directions": directions,
                                                   "space origin": origin})
    volume = read_volume(path)
    np.testing.assert_array_equal(volume.array, display)
    write_nifti_masks(tmp_path, volume, _marker_mask(volume), None)
    image = nibabel.load(tmp_path / LESION_FILE)
    assert image.shape == data.shape
    raw, header = nrrd.read(str(path))
    index = np.argwhere(np.isclose(raw, MARKER_HU))
    expected = header["space origin"] + index @ header["space directions"]  # RAS mm (RAS space)
    _same_points(_world_points(image), expected)
