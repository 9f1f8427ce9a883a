"""Readers on the real data copies and on files corrupted in tmp_path."""

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import jcs.data as jd
from jcs.data.errors import (CorruptFileError, DatasetNotFoundError, EmptyFolderError,
                             MissingDependencyError, MixedSeriesError, ShapeMismatchError)

REPO = Path(__file__).resolve().parents[1]


def folder_of(data_dir: Path, name: str) -> Path:
    folder = data_dir / jd.get_dataset_info(name).folder
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    return folder


@pytest.fixture(scope="module")
def medseg(data_dir):
    return folder_of(data_dir, "medseg")


@pytest.fixture(scope="module")
def ctmd(data_dir):
    return folder_of(data_dir, "covid-ct-md")


@pytest.fixture(scope="module")
def p002_dicom(ctmd):
    return jd.read_volume(ctmd / "dicom" / "P002")


# --- 2-D images -------------------------------------------------------------------------------


def test_medseg_images_and_masks(medseg):
    images = sorted((medseg / "images").glob("*.png"))
    assert len(images) == 100
    image = jd.read_slice(images[0])
    assert image.shape == (512, 512) and image.dtype == np.uint8 and image.max() > 200
    mask = jd.read_mask(medseg / "masks_binary" / "tr_mask_0000.png")  # palette PNG {0, 1}
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
    assert np.array_equal(mask, np.asarray(Image.open(medseg / "masks_binary" / "tr_mask_0000.png")))
    assert jd.read_mask(medseg / "masks_binary" / "tr_mask_0048.png").sum() == 0  # the empty mask
    classes = jd.read_label_map(medseg / "masks_multiclass_reconstructed" / "mc_0000.png")
    assert set(np.unique(classes)) <= {0, 1, 2, 3} and {1, 2} <= set(np.unique(classes))
    assert np.array_equal(classes > 0, mask > 0)  # reconstructed classes cover the binary mask


def test_semiseg_masks(data_dir):
    folder = folder_of(data_dir, "covid-semiseg")
    raw = np.asarray(Image.open(folder / "train" / "GT" / "0.png"))
    assert set(np.unique(raw)) == {0, 255}
    mask = jd.read_mask(folder / "train" / "GT" / "0.png")
    assert set(np.unique(mask)) == {0, 1} and np.array_equal(mask, (raw > 0).astype(np.uint8))
    image = jd.read_slice(folder / "train" / "Imgs" / "0.jpg")
    assert image.shape == mask.shape == (369, 273)
    assert set(np.unique(jd.read_label_map(folder / "train" / "GT_multiclass" / "0.png"))) == {0, 1, 2}
    ggo = jd.read_mask(folder / "test" / "GT_multiclass_ggo" / "18.png")  # 1-bit PNG
    classes = jd.read_label_map(folder / "test" / "GT_multiclass" / "18.png")
    assert np.array_equal(ggo, (classes == 1).astype(np.uint8))


def test_ucsd_color_images_become_gray(data_dir):
    folder = folder_of(data_dir, "ucsd-covid-ct")
    seen = {}
    for path in sorted((folder / "CT_COVID").glob("*.png")):
        with Image.open(path) as image:
            seen.setdefault(image.mode, path)
        if {"RGB", "RGBA"} <= set(seen):
            break
    for mode in ("RGB", "RGBA"):
        with Image.open(seen[mode]) as image:
            width, height = image.size
        gray = jd.read_slice(seen[mode])
        assert gray.dtype == np.uint8 and gray.shape == (height, width), mode
    jpg = jd.read_slice(sorted((folder / "CT_NonCOVID").glob("*.jpg"))[0])
    assert jpg.ndim == 2 and jpg.dtype == np.uint8


def test_examples_read(data_dir):
    paths = sorted(folder_of(data_dir, "covid-cs-examples").glob("*.jpg"))
    assert len(paths) == 8
    assert all(jd.read_slice(p).shape == (512, 512) for p in paths)


def test_mask_conventions(tmp_path):
    noisy = np.array([[0, 3, 250, 255]], dtype=np.uint8)  # {0,255} mask with JPEG-like noise
    Image.fromarray(noisy).save(tmp_path / "noisy.png")
    assert jd.read_mask(tmp_path / "noisy.png").tolist() == [[0, 0, 1, 1]]
    labels = np.array([[0, 1, 2, 3]], dtype=np.uint8)  # class indices: any lesion
    Image.fromarray(labels).save(tmp_path / "labels.png")
    assert jd.read_mask(tmp_path / "labels.png").tolist() == [[0, 1, 1, 1]]
    rgb = np.zeros((1, 2, 3), dtype=np.uint8)
    rgb[0, 1] = 255
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    assert jd.read_mask(tmp_path / "rgb.png").tolist() == [[0, 1]]


def test_uint8_conversions_equal_the_numpy_formula_bit_for_bit():
    """window and volume_to_uint8 run as torch ops; half-way values still round to even."""
    rng = np.random.default_rng(0)
    hu = np.concatenate([rng.uniform(-1500, 300, 20000).astype(np.float32),
                         np.float32(-1350.0) + np.arange(0, 1500, 1500 / 510, dtype=np.float32)])
    scaled = (hu - np.float32(-1350.0)) / np.float32(1500.0) * np.float32(255.0)
    np.testing.assert_array_equal(jd.window(hu), np.round(np.clip(scaled, 0, 255)).astype(np.uint8))
    values = np.concatenate([rng.uniform(-10, 270, 20000), np.arange(-2, 258, 0.5)]).astype(np.float32)
    volume = jd.Volume(values.reshape(1, 1, -1), None, "uint8", "x", ["0"])
    np.testing.assert_array_equal(jd.volume_to_uint8(volume)[0, 0],
                                  np.clip(np.round(values), 0, 255).astype(np.uint8))
    values.flags.writeable = False  # read-only arrays (e.g. memory-mapped) work too
    assert jd.volume_to_uint8(volume).shape == (1, 1, values.size)


def test_window_and_volume_to_uint8():
    hu = np.array([-2000, -1350, -600, 150, 1000], dtype=np.float32)
    assert jd.window(hu).tolist() == [0, 0, 128, 255, 255]  # (-600+1350)/1500*255 = 127.5 -> 128
    assert jd.window(np.array([0.0]), level=40, width=400).tolist() == [102]  # 160/400*255 = 102
    volume = jd.Volume(hu.reshape(1, 1, 5), None, "HU", "x", ["0"])
    assert jd.volume_to_uint8(volume).tolist() == [[[0, 0, 128, 255, 255]]]
    gray = jd.Volume(np.array([[[0.0, 17.0, 255.0]]], dtype=np.float32), None, "uint8", "x", ["0"])
    assert jd.volume_to_uint8(gray).tolist() == [[[0, 17, 255]]]


# --- bad input ---------------------------------------------------------------------------------


def test_truncated_and_fake_images(medseg, tmp_path):
    data = (medseg / "images" / "tr_im_0003.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match="cut.png.*truncated"):
        jd.read_slice(tmp_path / "cut.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(CorruptFileError, match="text.png"):
        jd.read_mask(tmp_path / "text.png")
    with pytest.raises(DatasetNotFoundError, match="nothere.png"):
        jd.read_slice(tmp_path / "nothere.png")


def test_empty_and_unreadable_folders(tmp_path):
    with pytest.raises(EmptyFolderError, match=str(tmp_path)):
        jd.read_volume(tmp_path)
    (tmp_path / "notes.txt").write_text("no slices here")
    with pytest.raises(EmptyFolderError, match="no DICOM files and no PNG/JPEG slices"):
        jd.read_volume(tmp_path)
    with pytest.raises(DatasetNotFoundError):
        jd.read_volume(tmp_path / "missing")


def test_pair_list(tmp_path):
    (tmp_path / "train.txt").write_bytes(b"img/a.jpg gt/a.png\r\n\r\nimg/b.jpg gt/b.png\r\n")
    assert jd.read_pair_list(tmp_path / "train.txt") == [("img/a.jpg", "gt/a.png"), ("img/b.jpg", "gt/b.png")]
    (tmp_path / "bad.txt").write_text("img/a.jpg gt/a.png\nimg/b.jpg\n")
    with pytest.raises(CorruptFileError, match="bad.txt, line 2"):
        jd.read_pair_list(tmp_path / "bad.txt")


# --- volumes ----------------------------------------------------------------------------------


def test_png_slice_folder(ctmd):
    volume = jd.read_volume(ctmd / "COVID-19" / "P002")
    assert volume.array.shape == (133, 256, 256) and volume.array.dtype == np.float32
    assert volume.unit == "uint8" and volume.slice_ids[:2] == ["slice_000", "slice_001"]
    assert volume.spacing == pytest.approx((2.0, 1.20703125, 1.20703125))


def test_slice_folder_natural_order_and_size_check(tmp_path):
    for value in (1, 2, 10):
        Image.fromarray(np.full((4, 5), value, dtype=np.uint8)).save(tmp_path / f"{value}.png")
    (tmp_path / "meta.json").write_text(json.dumps({"spacing": [3, 0.5, 0.5]}))
    volume = jd.read_volume(tmp_path)
    assert volume.slice_ids == ["1", "2", "10"] and volume.array[:, 0, 0].tolist() == [1, 2, 10]
    assert volume.spacing == (3.0, 0.5, 0.5)
    Image.fromarray(np.zeros((4, 6), dtype=np.uint8)).save(tmp_path / "11.png")
    with pytest.raises(ShapeMismatchError, match="11.png"):
        jd.read_volume(tmp_path)


def test_dicom_p002_in_hu(p002_dicom, ctmd):
    volume = p002_dicom
    assert volume.array.shape == (133, 512, 512) and volume.array.dtype == np.float32
    assert volume.unit == "HU" and volume.spacing == pytest.approx((2.0, 0.603515625, 0.603515625))
    assert volume.array.min() == -1024.0 and volume.array.max() > 500  # CT range, bone present
    assert np.median(volume.array[:, :20, :20]) < -900  # air in the corners
    meta = json.loads((ctmd / "COVID-19" / "P002" / "meta.json").read_text())
    assert np.all(np.diff(meta["slice_location"]) < 0)  # the PNG copy runs superior -> inferior
    assert volume.slice_ids == meta["source_file"]


def test_dicom_order_matches_png_copy(p002_dicom, ctmd):
    hu = p002_dicom.array
    for k in (0, 40, 66, 100, 132):
        downsampled = jd.window(hu[k].reshape(256, 2, 256, 2).mean(axis=(1, 3)))
        png = jd.read_slice(ctmd / "COVID-19" / "P002" / f"slice_{k:03d}.png")
        assert np.corrcoef(downsampled.ravel(), png.ravel())[0, 1] > 0.99
        assert np.abs(downsampled.astype(int) - png.astype(int)).max() <= 1
        if k != 66:  # the reversed order would not match
            flipped = jd.read_slice(ctmd / "COVID-19" / "P002" / f"slice_{132 - k:03d}.png")
            assert np.abs(downsampled.astype(int) - flipped.astype(int)).mean() > 3


def _copy_dicoms(ctmd: Path, target: Path, renames: dict) -> None:
    target.mkdir()
    for source, name in renames.items():
        shutil.copyfile(ctmd / "dicom" / "P002" / source, target / name)


def test_dicom_sorted_by_position_not_name(ctmd, tmp_path):
    _copy_dicoms(ctmd, tmp_path / "s", {"IM0001.dcm": "c.dcm", "IM0002.dcm": "b.dcm", "IM0003.dcm": "a.dcm"})
    volume = jd.read_volume(tmp_path / "s")
    assert volume.slice_ids == ["c.dcm", "b.dcm", "a.dcm"]  # superior (IM0001) first
    assert volume.spacing[0] == pytest.approx(2.0)


def test_dicom_mixed_series(ctmd, tmp_path):
    pydicom = pytest.importorskip("pydicom")
    _copy_dicoms(ctmd, tmp_path / "s", {"IM0001.dcm": "IM0001.dcm", "IM0002.dcm": "IM0002.dcm"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(tmp_path / "s" / "IM0002.dcm")
        ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.1"
        ds.save_as(tmp_path / "s" / "IM0002.dcm")
    with pytest.raises(MixedSeriesError) as info:
        jd.read_volume(tmp_path / "s")
    assert "1.2.826.0.1.3680043.8.498.1" in str(info.value) and "09bc8aea" in str(info.value)
    assert "own folder" in str(info.value)


def test_dicom_truncated(ctmd, tmp_path):
    _copy_dicoms(ctmd, tmp_path / "s", {"IM0001.dcm": "IM0001.dcm", "IM0002.dcm": "IM0002.dcm"})
    path = tmp_path / "s" / "IM0002.dcm"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match="IM0002.dcm"):
        jd.read_volume(tmp_path / "s")


def test_dicom_without_jpeg_decoder_is_explained(ctmd, tmp_path, monkeypatch):
    pixels = pytest.importorskip("pydicom.pixels")

    class Unavailable:
        is_available = False

    monkeypatch.setattr(pixels, "get_decoder", lambda uid: Unavailable())
    _copy_dicoms(ctmd, tmp_path / "s", {"IM0001.dcm": "IM0001.dcm"})
    with pytest.raises(MissingDependencyError, match="IM0001.dcm.*JPEG Lossless.*pylibjpeg"):
        jd.read_volume(tmp_path / "s")


def test_nifti_orientation_and_spacing(tmp_path):
    nibabel = pytest.importorskip("nibabel")
    data = np.arange(4 * 3 * 2, dtype=np.int16).reshape(4, 3, 2)  # x, y, z
    ras = np.diag([0.7, 0.8, 2.5, 1.0])
    nibabel.save(nibabel.Nifti1Image(data, ras), tmp_path / "ras.nii.gz")
    volume = jd.read_volume(tmp_path / "ras.nii.gz")
    assert volume.array.shape == (2, 3, 4) and volume.unit == "HU"
    assert volume.spacing == pytest.approx((2.5, 0.8, 0.7))
    # slice 0 = most superior (largest z), row 0 = most anterior (largest y),
    # column 0 = patient's right (largest RAS x): data[x=3, y=2, z=1] = 3*6 + 2*2 + 1
    assert volume.array[0, 0, 0] == 23 and volume.array[1, 2, 3] == 0
    np.testing.assert_array_equal(volume.array, data.transpose(2, 1, 0)[::-1, ::-1, ::-1])
    lps = np.diag([-0.7, -0.8, 2.5, 1.0])  # same voxels stored with flipped x and y
    nibabel.save(nibabel.Nifti1Image(data[::-1, ::-1, :].copy(), lps), tmp_path / "lps.nii")
    np.testing.assert_array_equal(jd.read_volume(tmp_path / "lps.nii").array, volume.array)
    raw = (tmp_path / "ras.nii.gz").read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CorruptFileError, match="cut.nii.gz"):
        jd.read_volume(tmp_path / "cut.nii.gz")


def test_missing_nibabel_is_explained(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "nibabel", None)
    (tmp_path / "v.nii").write_bytes(b"")
    with pytest.raises(MissingDependencyError, match=r"pip install 'jcs\[io\]'"):
        jd.read_volume(tmp_path / "v.nii")


def test_import_needs_only_torch_numpy_pillow():
    code = ("import sys\n"
            "for m in ('nibabel', 'pydicom', 'pylibjpeg', 'torchvision', 'pandas', 'scipy'):\n"
            "    sys.modules[m] = None\n"
            "import jcs.data as jd\n"
            "images, masks = jd.synthetic_ct(1, 64)\n"
            "assert jd.to_network_input(images[0], 32).shape == (3, 32, 32)\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
