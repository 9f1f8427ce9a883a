"""Datasets, network-input transforms, augmentation determinism and the synthetic generator."""

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

import jcs.data as jd
from jcs.data.errors import EmptyFolderError, ShapeMismatchError
from jcs.data.transforms import (IMAGENET_MEAN, IMAGENET_STD, random_crop_resize,
                                 random_resized_crop_flip, random_vertical_flip,
                                 resize_center_crop, resize_center_crop_batch,
                                 to_network_input_batch)


def need(data_dir: Path, name: str) -> Path:
    folder = data_dir / jd.get_dataset_info(name).folder
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    return data_dir


# --- transforms -------------------------------------------------------------------------------


def test_to_network_input_normalises_like_imagenet():
    x = jd.to_network_input(np.array([[0, 255], [51, 255]], dtype=np.uint8), 2)
    assert x.shape == (3, 2, 2) and x.dtype == torch.float32
    for c in range(3):
        expected = (np.array([[0, 1], [0.2, 1]]) - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
        np.testing.assert_allclose(x[c].numpy(), expected, rtol=1e-5)


def test_resize_is_bilinear_half_pixel_and_masks_nearest():
    x = jd.to_network_input(np.array([[0, 100], [0, 100]], dtype=np.uint8), 4)
    gray = x[0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]
    # align_corners=False: output columns sample input x = -0.25(clamped), 0.25, 0.75, 1.25(clamped)
    np.testing.assert_allclose(gray[0].numpy() * 255, [0, 25, 75, 100], atol=1e-3)
    m = jd.mask_to_tensor(np.array([[0, 1], [1, 0]], dtype=np.uint8), 4)
    assert m.shape == (1, 4, 4)
    assert m[0].tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0]]


@pytest.mark.parametrize("shape, size", [((512, 512), 224), ((256, 256), 192), ((256, 256), 224),
                                         ((300, 400), 224), ((400, 300), 192)])
def test_batched_transforms_match_the_per_slice_ones(shape, size):
    """The device-side transforms of `jcs diagnose` equal the PIL / per-slice ones the models were
    evaluated with: exactly for the segmenter input, within one gray level for the classifier's."""
    rng = np.random.default_rng(0)
    slices = rng.integers(0, 256, (2, *shape), dtype=np.uint8)
    slices[1] = np.clip(np.cumsum(rng.integers(-3, 4, shape), axis=1) + 128, 0, 255)  # smooth
    one_level = 1 / 255 / min(IMAGENET_STD) + 1e-5
    reference = torch.stack([resize_center_crop(s, size) for s in slices])
    batched = resize_center_crop_batch(torch.from_numpy(slices), size)
    assert batched.shape == reference.shape == (2, 3, size, size)
    assert float((batched - reference).abs().max()) <= one_level
    reference = torch.stack([jd.to_network_input(s, size) for s in slices])
    torch.testing.assert_close(to_network_input_batch(torch.from_numpy(slices), size), reference)


def test_vertical_flip_is_up_down():
    image = torch.arange(6.0).reshape(1, 3, 2)
    mask = (image > 3).float()
    flipped, flipped_mask = random_vertical_flip(image, mask, p=1.0)
    assert flipped[0].tolist() == [[4, 5], [2, 3], [0, 1]]
    assert flipped_mask[0].tolist() == [[1, 1], [0, 0], [0, 0]]
    assert random_vertical_flip(image, mask, p=0.0)[0] is image


def test_random_crop_resize_bounds():
    ramp = torch.arange(32.0).repeat(32, 1)[None]  # value = column index
    mask = (ramp > 15).float()
    same, _ = random_crop_resize(ramp, mask, margin=0, p=1.0)
    assert torch.equal(same, ramp)
    generator = torch.Generator().manual_seed(0)
    cuts = set()
    for _ in range(30):
        out, out_mask = random_crop_resize(ramp, mask, margin=3, p=1.0, generator=generator)
        assert out.shape == ramp.shape and set(out_mask.unique().tolist()) <= {0.0, 1.0}
        cuts.add(round(out[0, 0, 0].item()))  # the first kept column, up to interpolation
        assert 0 <= out[0, 0, 0] <= 3 and 28 <= out[0, 0, -1] <= 31
    assert len(cuts) > 1


def test_classifier_transforms():
    image = np.tile(np.arange(100, dtype=np.uint8), (50, 1))  # 50 x 100, wide
    x = resize_center_crop(image, 224)
    assert x.shape == (3, 224, 224)
    gray = x[0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]
    assert abs(gray[:, 112].mean().item() * 255 - 49.5) < 2  # centre column stays in the centre
    generator = torch.Generator().manual_seed(3)
    a = random_resized_crop_flip(image, 64, generator=generator)
    b = random_resized_crop_flip(image, 64, generator=torch.Generator().manual_seed(3))
    assert a.shape == (3, 64, 64) and torch.equal(a, b)


# --- segmentation -----------------------------------------------------------------------------


def test_medseg_infnet_split(data_dir):
    root = need(data_dir, "medseg")
    train = jd.SegmentationSlices("medseg", "train", size=64, root=root)
    test = jd.SegmentationSlices("medseg", "test", size=64, root=root)
    assert (len(train), len(test)) == (50, 48)
    train_names = {name for name, _, _ in train.samples}
    test_names = {name for name, _, _ in test.samples}
    assert not train_names & test_names
    with open(root / "medseg_covid19_ct100" / "splits" / "infnet_split.csv", newline="") as handle:
        unused = {f"tr_im_{int(r['medseg_index']):04d}" for r in csv.DictReader(handle)
                  if r["infnet_split"] == "not_in_infnet"}
    assert unused == {"tr_im_0022", "tr_im_0048"}
    assert len(train_names | test_names | unused) == 100
    item = test[0]
    assert item["image"].shape == (3, 64, 64) and item["image"].dtype == torch.float32
    assert item["mask"].shape == (1, 64, 64) and set(item["mask"].unique().tolist()) <= {0.0, 1.0}
    assert item["name"] == test.samples[0][0]
    subset = jd.SegmentationSlices("medseg", "train", size=64, root=root, indices=[3, 1])
    assert [s[0] for s in subset.samples] == [train.samples[3][0], train.samples[1][0]]


def test_semiseg_split(data_dir):
    root = need(data_dir, "covid-semiseg")
    train = jd.SegmentationSlices("covid-semiseg", "train", size=96, root=root)
    test = jd.SegmentationSlices("covid-semiseg", "test", size=96, root=root)
    assert (len(train), len(test)) == (50, 48)
    item = train[0]
    assert item["name"] == "0" and item["image"].shape == (3, 96, 96) and item["mask"].sum() > 0


def _write_covid_cs(root: Path, mask_size=(40, 40)) -> None:
    folder = root / "COVID-CS"
    (folder / "dcm_png").mkdir(parents=True)
    (folder / "labels").mkdir()
    for k in range(3):
        Image.fromarray(np.full((40, 40), 60 * k, dtype=np.uint8)).save(folder / "dcm_png" / f"{k}.jpg")
        size = mask_size if k == 2 else (40, 40)
        mask = np.zeros(size, dtype=np.uint8)
        mask[5:15, 5:15] = 255
        Image.fromarray(mask).save(folder / "labels" / f"{k}.png")
    lines = [f"dcm_png/{k}.jpg labels/{k}.png\r\n" for k in range(3)]
    (folder / "train.txt").write_text("".join(lines[:2]), newline="")
    (folder / "test.txt").write_text(lines[2], newline="")


def test_covid_cs_layout_and_size_mismatch(tmp_path):
    _write_covid_cs(tmp_path, mask_size=(30, 40))
    train = jd.SegmentationSlices("covid-cs", "train", size=32, root=tmp_path)
    assert len(train) == 2 and train[1]["name"] == "1"
    assert train[0]["mask"].sum() == pytest.approx(8 * 8, abs=16)  # 10x10 of 40x40 at 32x32
    test = jd.SegmentationSlices("covid-cs", "test", size=32, root=tmp_path)
    with pytest.raises(ShapeMismatchError) as info:
        test[0]
    assert "labels/2.png" in str(info.value) and "dcm_png/2.jpg" in str(info.value)


def test_segmentation_missing_pieces(tmp_path):
    _write_covid_cs(tmp_path)
    (tmp_path / "COVID-CS" / "labels" / "1.png").unlink()
    with pytest.raises(jd.DatasetNotFoundError, match="1.png.*jcs data verify covid-cs"):
        jd.SegmentationSlices("covid-cs", "train", root=tmp_path)
    with pytest.raises(ValueError, match="split must be one of"):
        jd.SegmentationSlices("covid-cs", "val", root=tmp_path)
    (tmp_path / "infnet_covid_semiseg" / "train" / "Imgs").mkdir(parents=True)
    with pytest.raises(EmptyFolderError, match="no train images"):
        jd.SegmentationSlices("covid-semiseg", "train", root=tmp_path)


def _items(dataset, count=4):
    return [dataset[i] for i in range(count)]


def test_augmentation_is_reproducible(data_dir):
    root = need(data_dir, "medseg")
    dataset = jd.SegmentationSlices("medseg", "train", size=64, augment=True, root=root, indices=range(6))
    torch.manual_seed(0)
    first = _items(dataset, 6)
    torch.manual_seed(0)
    second = _items(dataset, 6)
    torch.manual_seed(1)
    third = _items(dataset, 6)
    assert all(torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])
               for a, b in zip(first, second))
    assert not all(torch.equal(a["image"], c["image"]) for a, c in zip(first, third))
    plain = jd.SegmentationSlices("medseg", "train", size=64, root=root, indices=range(6))
    assert not all(torch.equal(a["image"], p["image"]) for a, p in zip(first, _items(plain, 6)))


def test_augmentation_reproducible_with_seeded_workers(data_dir):
    root = need(data_dir, "medseg")
    dataset = jd.SegmentationSlices("medseg", "train", size=32, augment=True, root=root, indices=range(4))

    def batches():
        loader = DataLoader(dataset, batch_size=2, shuffle=True, num_workers=1,
                            generator=torch.Generator().manual_seed(7))
        return [batch["image"] for batch in loader]

    assert all(torch.equal(a, b) for a, b in zip(batches(), batches()))


# --- classification ---------------------------------------------------------------------------


def test_ucsd_official_split(data_dir):
    root = need(data_dir, "ucsd-covid-ct")
    counts = {}
    for split in ("train", "val", "test"):
        dataset = jd.ClassificationSlices(split=split, root=root)
        counts[split] = (sum(dataset.labels), len(dataset) - sum(dataset.labels))
    assert counts == {"train": (191, 234), "val": (60, 58), "test": (98, 105)}
    test = jd.ClassificationSlices(split="test", size=64, root=root)
    item = test[0]
    assert item["image"].shape == (3, 64, 64) and item["label"] == 1
    assert item["name"].startswith("CT_COVID/")
    last = test[len(test) - 1]
    assert last["label"] == 0 and last["name"].startswith("CT_NonCOVID/") and "\r" not in last["name"]
    augmented = jd.ClassificationSlices(split="train", size=64, augment=True, root=root, indices=[0])
    assert augmented[0]["image"].shape == (3, 64, 64)
    with pytest.raises(ValueError, match="'train', 'val', 'test'"):
        jd.ClassificationSlices(split="validation", root=root)


# --- COVID-CT-MD ------------------------------------------------------------------------------


def test_ctmd_patients(data_dir):
    patients = jd.CTMDPatients(need(data_dir, "covid-ct-md"))
    assert patients.ids == ["P001", "P002", "cap001", "cap002", "normal001", "normal002"]
    infected = {p["id"]: int(p["slice_labels"].sum()) for p in patients if p["slice_labels"] is not None}
    assert infected == {"P001": 80, "P002": 68, "cap001": 30, "cap002": 15}
    p002 = patients.get("P002")
    assert p002["diagnosis"] == "COVID-19" and p002["label"] == 1 and len(p002["slice_paths"]) == 133
    assert p002["slice_paths"][0].name == "slice_000.png" and p002["slice_paths"][-1].name == "slice_132.png"
    assert p002["spacing"] == pytest.approx((2.0, 1.20703125, 1.20703125))
    assert p002["dicom_dir"].name == "P002" and patients.get("P001")["dicom_dir"] is None
    normal = patients.get("normal001")
    assert normal["slice_labels"] is None and normal["label"] == 0 and len(normal["slice_paths"]) == 154
    with pytest.raises(ValueError, match="known: P001, P002"):
        patients.get("P999")


def test_ctmd_slices(data_dir):
    root = need(data_dir, "covid-ct-md")
    slices = jd.CTMDSlices(patients=["P002", "normal001"], size=64, root=root)
    assert len(slices) == 133 + 154 and sum(slices.labels) == 68
    item = slices[0]
    assert item["image"].shape == (3, 64, 64) and item["name"] == "P002/slice_000"
    assert item["patient"] == "P002" and item["label"] == 0
    assert len(jd.CTMDSlices(root=root)) == 148 + 133 + 168 + 131 + 154 + 167


# --- synthetic --------------------------------------------------------------------------------


def test_synthetic_ct_is_deterministic_and_plausible():
    images, masks = jd.synthetic_ct(12, size=64, seed=5)
    again_images, again_masks = jd.synthetic_ct(12, size=64, seed=5)
    other_images, _ = jd.synthetic_ct(12, size=64, seed=6)
    assert images.shape == masks.shape == (12, 64, 64)
    assert images.dtype == masks.dtype == np.uint8
    assert np.array_equal(images, again_images) and np.array_equal(masks, again_masks)
    assert not np.array_equal(images, other_images)
    assert set(np.unique(masks)) == {0, 1}
    for image, mask in zip(images, masks):
        assert mask.sum() > 0
        # lesions (GGO ~153, consolidation ~233) are brighter than lung (~85) in the lung window
        assert image[mask == 1].mean() > 120
    assert (np.abs(images.astype(int) - 85) < 20).mean() > 0.1  # dark lungs are present


def test_synthetic_small_images_still_have_lesions():
    _, masks = jd.synthetic_ct(40, size=32, seed=1)
    assert (masks.reshape(40, -1).sum(axis=1) > 0).all()
    with pytest.raises(ValueError, match="size >= 32"):
        jd.synthetic_ct(1, size=16)
