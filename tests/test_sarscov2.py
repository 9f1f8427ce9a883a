"""The ``sarscov2-ct`` dataset (SARS-CoV-2 CT-scan sample): registry entry, manifest, the block
split by file number and ``ClassificationSlices("sarscov2-ct", split)``.

Tests that read the real copy skip when ``<data root>/sarscov2_ct_sample`` is absent; the others
build tiny PNG folders under ``tmp_path``.
"""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import jcs.data as jd
from jcs.cli import main
from jcs.data.datasets import sarscov2_number, sarscov2_split_of
from jcs.data.errors import DataError, DatasetNotFoundError
from jcs.data.registry import SARSCOV2_BLOCKS

NAME = "sarscov2-ct"
COMMIT = "24d2b4890756bf6bdbda8236a89518ccbaf7dabd"
RAW = f"https://raw.githubusercontent.com/Coronavirus-Visualization-Team/CVT_COVID-CT-CNN/{COMMIT}/"
# (COVID, non-COVID) per split, counted by hand from the listing: COVID N = 1, 5, ..., 1249 (313),
# non-COVID N = 1, 5, ..., 1229 (308); train 1..797 = 200, val 801..897 = 25, test 901.. = 88 / 83.
COUNTS = {"train": (200, 200), "val": (25, 25), "test": (88, 83)}


def need(data_dir: Path) -> Path:
    folder = data_dir / jd.get_dataset_info(NAME).folder
    if not folder.is_dir():
        pytest.skip(f"{folder} not present (the sarscov2-ct sample; see data/README.md)")
    return data_dir


# --- registry (no data needed) ----------------------------------------------------------------


def test_registry_entry_and_manifest():
    info = jd.get_dataset_info(NAME)
    assert NAME in jd.list_datasets() and info.folder == "sarscov2_ct_sample"
    assert info.downloadable and info.commit == COMMIT
    assert "Soares" in info.citation and "10.1101/2020.04.24.20078584" in info.citation
    assert "CC BY-NC-SA 4.0" in info.licence
    assert "ClassificationSlices('sarscov2-ct'" in info.reader
    assert "train N 1-800, val N 801-900, test N >= 901" in info.description
    manifest = info.manifest()
    assert len(manifest) == 622
    assert sum(p.startswith("COVID/Covid (") for p in manifest) == 313
    assert sum(p.startswith("NonCOVID/Non-Covid (") for p in manifest) == 308
    assert list(manifest) == sorted(manifest)
    assert all(sarscov2_number(p) % 4 == 1 for p in manifest if p != "README.md")


def test_raw_urls_are_percent_encoded_at_the_pinned_commit():
    info = jd.get_dataset_info(NAME)
    assert info.url_for("COVID/Covid (5).png") == RAW + "Data/master-data/COVID/Covid%20%285%29.png"
    assert info.url_for("NonCOVID/Non-Covid (1229).png") == (
        RAW + "Data/master-data/NonCOVID/Non-Covid%20%281229%29.png")
    assert info.url_for("README.md") is None and info.derivation_of("README.md")
    files = info.files()
    assert all((f.url is None) != (f.derivation is None) for f in files)
    assert [f.path for f in files if f.url is None] == ["README.md"]


def test_block_split_by_file_number():
    assert SARSCOV2_BLOCKS == {"train": (1, 800), "val": (801, 900), "test": (901, None)}
    assert [sarscov2_split_of(n) for n in (1, 797, 800, 801, 897, 900, 901, 1249, 5000)] == [
        "train", "train", "train", "val", "val", "val", "test", "test", "test"]
    assert sarscov2_number("COVID/Covid (5).png") == 5
    assert sarscov2_number(Path("NonCOVID/Non-Covid (1229).png")) == 1229
    for bad in ("COVID/Covid.png", "COVID/Covid (5).jpg", "COVID/Covid (x).png", "COVID/Covid 5.png"):
        with pytest.raises(DataError, match=re.escape(bad)):
            sarscov2_number(bad)


# --- tiny synthetic copies --------------------------------------------------------------------


def tiny_copy(root: Path, covid=(1, 800, 801, 900, 901), noncovid=(5, 901)) -> Path:
    folder = root / "sarscov2_ct_sample"
    for sub, stem, numbers in (("COVID", "Covid", covid), ("NonCOVID", "Non-Covid", noncovid)):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        for n in numbers:
            Image.new("RGBA", (12, 10), (n % 256,) * 3 + (255,)).save(folder / sub / f"{stem} ({n}).png")
    return folder


def test_tiny_copy_boundaries_order_and_modes(tmp_path):
    tiny_copy(tmp_path, covid=(901, 1, 800, 801, 900, 13))
    names = {s: [x[0] for x in jd.ClassificationSlices(NAME, s, size=8, root=tmp_path).samples]
             for s in ("train", "val", "test")}
    assert names == {
        "train": ["COVID/Covid (1).png", "COVID/Covid (13).png", "COVID/Covid (800).png",
                  "NonCOVID/Non-Covid (5).png"],
        "val": ["COVID/Covid (801).png", "COVID/Covid (900).png"],
        "test": ["COVID/Covid (901).png", "NonCOVID/Non-Covid (901).png"]}
    item = jd.ClassificationSlices(NAME, "test", size=8, root=tmp_path)[1]
    assert item["label"] == 0 and item["image"].shape == (3, 8, 8)


def test_bad_file_name_raises_data_error_naming_it(tmp_path):
    folder = tiny_copy(tmp_path)
    Image.new("L", (4, 4)).save(folder / "NonCOVID" / "Non-Covid.png")
    with pytest.raises(DataError, match=r"Non-Covid\.png.*\(N\)\.png"):
        jd.ClassificationSlices(NAME, "train", root=tmp_path)


def test_missing_class_folder_says_how_to_restore(tmp_path):
    folder = tiny_copy(tmp_path)
    for path in (folder / "NonCOVID").iterdir():
        path.unlink()
    (folder / "NonCOVID").rmdir()
    with pytest.raises(DatasetNotFoundError, match="jcs data verify sarscov2-ct") as info:
        jd.ClassificationSlices(NAME, "train", root=tmp_path)
    assert "NonCOVID" in str(info.value) and "jcs data fetch sarscov2-ct" in str(info.value)
    with pytest.raises(ValueError, match="'ucsd-covid-ct', 'sarscov2-ct'"):
        jd.ClassificationSlices("sarscov2", "train", root=tmp_path)


# --- the real copy ----------------------------------------------------------------------------


def test_manifest_matches_the_shared_copy(data_dir):
    root = need(data_dir)
    report = jd.verify(NAME, root)
    assert report.all_ok, report.summary()
    assert report.n_ok == 622


def test_cli_lists_and_verifies(capsys, data_dir):
    root = need(data_dir)
    assert main(["data", "list", "--root", str(root)]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.strip().startswith(NAME))
    assert "present" in line and "fetch" in line
    assert main(["data", "verify", NAME, "--root", str(root)]) == 0
    assert "622 ok, 0 missing, 0 mismatched" in capsys.readouterr().out


def test_split_counts_blocks_and_order(data_dir):
    root = need(data_dir)
    numbers = {}
    for split, (n_covid, n_noncovid) in COUNTS.items():
        dataset = jd.ClassificationSlices(NAME, split, root=root)
        assert (sum(dataset.labels), len(dataset) - sum(dataset.labels)) == (n_covid, n_noncovid)
        names = [name for name, _, _ in dataset.samples]
        labels = dataset.labels
        assert labels == [1] * n_covid + [0] * n_noncovid  # COVID first
        covid, noncovid = names[:n_covid], names[n_covid:]
        assert all(n.startswith("COVID/Covid (") for n in covid)
        assert all(n.startswith("NonCOVID/Non-Covid (") for n in noncovid)
        for group in (covid, noncovid):
            nums = [sarscov2_number(n) for n in group]
            assert nums == sorted(nums) and len(set(nums)) == len(nums)
        numbers[split] = {sarscov2_number(n) for n in names}
    assert max(numbers["train"]) <= 800 and min(numbers["train"]) == 1
    assert min(numbers["val"]) >= 801 and max(numbers["val"]) <= 900
    assert min(numbers["test"]) > 900
    assert max(numbers["test"]) == 1249
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not numbers[a] & numbers[b], (a, b)
    total = sum(c + n for c, n in COUNTS.values())
    assert total == 313 + 308  # every file is in exactly one split


def test_items_and_modes(data_dir):
    root = need(data_dir)
    test = jd.ClassificationSlices(NAME, "test", size=64, root=root)
    first, last = test[0], test[len(test) - 1]
    assert first["image"].shape == (3, 64, 64) and first["image"].dtype == torch.float32
    assert first["label"] == 1 and first["name"] == "COVID/Covid (901).png"
    assert last["label"] == 0 and last["name"] == "NonCOVID/Non-Covid (1229).png"
    assert torch.isfinite(first["image"]).all()
    subset = jd.ClassificationSlices(NAME, "train", size=32, root=root, indices=[0, 399])
    assert subset.labels == [1, 0] and len(subset) == 2
    assert [s[0] for s in subset.samples] == ["COVID/Covid (1).png", "NonCOVID/Non-Covid (797).png"]
    augmented = jd.ClassificationSlices(NAME, "train", size=32, augment=True, root=root, indices=[0])
    assert augmented[0]["image"].shape == (3, 32, 32)
    # gray slices stored as RGB (COVID N <= 413) and as RGBA (all others, opaque): read as H×W uint8
    folder = root / "sarscov2_ct_sample"
    for rel, mode in (("COVID/Covid (1).png", "RGB"), ("NonCOVID/Non-Covid (1).png", "RGBA")):
        with Image.open(folder / rel) as image:
            assert image.mode == mode
            red = np.asarray(image.convert("RGB"))[..., 0]
        gray = jd.read_slice(folder / rel)
        assert gray.dtype == np.uint8 and gray.ndim == 2
        np.testing.assert_array_equal(gray, red)
