"""Download (``fetch``) and check (``verify``) the local dataset copies against the registry's
sha256 manifests. Back end of ``jcs data fetch NAME`` / ``jcs data verify NAME``.

``fetch`` downloads the files that are byte-identical upstream (raw GitHub URLs at a pinned
commit), or, for data shipped inside a package's source archive on PyPI (``pyradiomics-lungs``),
downloads that archive with pip, checks its sha256 and extracts the files. Derived files
(converted PNGs, reconstructed masks, notes) are not downloaded; the only one ``fetch`` rebuilds
is ``medseg``'s ``splits/infnet_split.csv`` (from a local covid-semiseg copy). ``verify`` lists
the missing derived files with how they were made.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CorruptFileError, FetchError
from .registry import DATASETS, DatasetInfo, data_root, dataset_path, get_dataset_info
from .readers import read_pair_list

_MAX_LISTED = 20


@dataclass
class VerifyReport:
    """Result of :func:`verify` / :func:`fetch`: relative paths of ok / missing / mismatched files,
    and ``hints`` on how to obtain missing files that cannot be downloaded."""

    name: str
    folder: Path
    ok: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)

    @property
    def n_ok(self) -> int:
        return len(self.ok)

    @property
    def n_missing(self) -> int:
        return len(self.missing)

    @property
    def n_mismatched(self) -> int:
        return len(self.mismatched)

    @property
    def all_ok(self) -> bool:
        return not self.missing and not self.mismatched

    def summary(self) -> str:
        lines = [f"{self.name} ({self.folder}): {self.n_ok} ok, {self.n_missing} missing, "
                 f"{self.n_mismatched} mismatched"]
        for label, paths in (("missing", self.missing), ("mismatched", self.mismatched)):
            for path in paths[:_MAX_LISTED]:
                lines.append(f"  {label}: {path}")
            if len(paths) > _MAX_LISTED:
                lines.append(f"  ... and {len(paths) - _MAX_LISTED} more {label}")
        lines += [f"  hint: {hint}" for hint in self.hints]
        return "\n".join(lines)


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(name: str, root: str | os.PathLike | None = None) -> VerifyReport:
    """Check every file of the local copy of ``name`` against its sha256 manifest.

    For ``covid-cs`` (no manifest) it checks that train.txt / test.txt and the files they list exist.
    """
    info = get_dataset_info(name)
    folder = dataset_path(name, root)
    report = VerifyReport(name, folder)
    if not info.downloadable:
        return _verify_pair_lists(report)
    derived_missing: dict[str, list[str]] = {}
    for entry in info.files():
        path = folder / entry.path
        if not path.is_file():
            report.missing.append(entry.path)
            if entry.derivation is not None:
                derived_missing.setdefault(entry.derivation, []).append(entry.path)
        elif sha256_file(path) != entry.sha256:
            report.mismatched.append(entry.path)
        else:
            report.ok.append(entry.path)
    report.hints = [f"{len(paths)} derived file(s), e.g. {paths[0]}: {how}"
                    for how, paths in derived_missing.items()]
    if report.mismatched:
        report.hints.append(f"mismatched files differ from the registered copy: delete them and run "
                            f"`jcs data fetch {name}` (or copy them again from a prepared copy).")
    return report


def _verify_pair_lists(report: VerifyReport) -> VerifyReport:
    for list_name in ("train.txt", "test.txt"):
        list_path = report.folder / list_name
        if not list_path.is_file():
            report.missing.append(list_name)
            continue
        report.ok.append(list_name)
        for pair in read_pair_list(list_path):
            for rel in pair:
                (report.ok if (report.folder / rel).is_file() else report.missing).append(rel)
    if report.missing:
        report.hints.append(get_dataset_info(report.name).how_to_get)
    return report


def _download(url: str, dest: Path) -> None:
    """Stream ``url`` to ``dest`` (tests replace this function; they never use the network)."""
    with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as handle:
        shutil.copyfileobj(response, handle)


def _pip_download(requirement: str, dest: Path) -> Path:
    """Download the source archive of ``requirement`` into ``dest`` with this Python's pip and
    return its path (tests replace this function). pip prepares the archive's metadata, so the
    package's build requirements must be installed (pyradiomics: numpy and versioneer)."""
    name = requirement.split("==")[0]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-build-isolation",
               "--no-binary", name, "--disable-pip-version-check", "-d", str(dest), requirement]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OSError(f"pip did not run ({exc})") from exc
    archives = sorted(dest.glob("*.tar.gz")) + sorted(dest.glob("*.zip"))
    if done.returncode != 0 or not archives:
        tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise OSError(f"`pip download {requirement}` failed: {tail}")
    return archives[0]


def _fetch_from_package(info: DatasetInfo, folder: Path, todo: list) -> None:
    """Download ``info.package``'s source archive with pip, check its sha256 and extract the
    files of ``todo`` (each checked against the manifest) into ``folder``."""
    with tempfile.TemporaryDirectory(prefix="jcs-fetch-") as tmp:
        try:
            archive = _pip_download(info.package, Path(tmp))
        except OSError as exc:
            raise FetchError(f"Could not download {info.package} through pip ({exc}). It needs "
                             "access to PyPI and, in this environment, numpy and versioneer to "
                             "prepare the archive (`pip install numpy versioneer==0.29`).\n"
                             f"{_manual_instructions(info, folder)}") from exc
        digest = sha256_file(archive)
        if digest != info.package_sha256:
            raise CorruptFileError(
                f"{archive.name} downloaded with sha256 {digest}, expected {info.package_sha256}: "
                f"the package index served another file. Retry, or place the files by hand.\n"
                f"{_manual_instructions(info, folder)}")
        with tarfile.open(archive) as tar:
            for entry in todo:
                dest = folder / entry.path
                dest.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(info.members[entry.path])
                if source is None:
                    raise CorruptFileError(f"{archive.name} has no file {info.members[entry.path]}.")
                part = dest.with_name(f".{dest.name}.{os.getpid()}.part")
                with source, open(part, "wb") as handle:
                    shutil.copyfileobj(source, handle)
                if sha256_file(part) != entry.sha256:
                    part.unlink()
                    raise CorruptFileError(f"{info.members[entry.path]} in {archive.name} does not "
                                           f"match the registered sha256 of {entry.path}.")
                part.replace(dest)


def _manual_instructions(info: DatasetInfo, folder: Path) -> str:
    if info.package is not None:
        archive = info.package.replace("==", "-") + ".tar.gz"
        members = " ".join(info.members.values())
        return (f"Without pip access, place the files by hand: on a machine with internet run\n"
                f"    pip install numpy versioneer==0.29\n"
                f"    pip download --no-deps --no-build-isolation --no-binary "
                f"{info.package.split('==')[0]} {info.package}\n"
                f"check `sha256sum {archive}` = {info.package_sha256}, then\n"
                f"    tar xzf {archive} {members}\n"
                f"and copy {', '.join(info.members)} into {folder}. Then run "
                f"`jcs data verify {info.name}`.")
    clone = info.repo.split("/")[1]
    copies = "\n".join(f"    {upstream or '<repo root>'}  ->  {folder / local}"
                       for local, upstream in info.upstream.items())
    return (f"Without internet, place the files by hand: on a machine with internet run\n"
            f"    git clone https://github.com/{info.repo} && git -C {clone} checkout {info.commit}\n"
            f"and copy (paths relative to the clone):\n{copies}\n"
            f"or copy a prepared copy of {info.folder}/ into {folder.parent} (or set JCS_DATA_DIR to "
            f"the folder that holds it). Then run `jcs data verify {info.name}`.")


def fetch(name: str, root: str | os.PathLike | None = None, progress: bool = True) -> VerifyReport:
    """Download the upstream files of ``name`` into ``root`` (default :func:`data_root`), check
    each sha256, rebuild what can be rebuilt, and return :func:`verify`'s report. Data inside a
    package's source archive comes through pip (:attr:`DatasetInfo.package`).

    Files already present with the right checksum are skipped. A failed download raises
    :class:`FetchError` naming the URL and explaining how to place the files by hand; a download
    with the wrong checksum raises :class:`CorruptFileError`.
    """
    info = get_dataset_info(name)
    if not info.downloadable:
        raise FetchError(info.how_to_get)
    base = Path(root) if root is not None else data_root()
    folder = base / info.folder
    todo = [f for f in info.files() if (f.url is not None or f.path in info.members)
            and not ((folder / f.path).is_file() and sha256_file(folder / f.path) == f.sha256)]
    if todo and info.package is not None:
        _fetch_from_package(info, folder, todo)
    elif todo:
        from tqdm.auto import tqdm

        for entry in tqdm(todo, desc=f"fetch {name}", unit="file", disable=not progress):
            dest = folder / entry.path
            dest.parent.mkdir(parents=True, exist_ok=True)
            part = dest.with_name(dest.name + ".part")
            try:
                _download(entry.url, part)
            except OSError as exc:
                part.unlink(missing_ok=True)
                raise FetchError(f"Could not download {entry.url} ({exc}).\n"
                                 f"{_manual_instructions(info, folder)}") from exc
            digest = sha256_file(part)
            if digest != entry.sha256:
                part.unlink()
                raise CorruptFileError(
                    f"{entry.url} downloaded with sha256 {digest}, expected {entry.sha256}: the "
                    f"download is damaged or upstream changed. Retry, or place {dest} by hand.\n"
                    f"{_manual_instructions(info, folder)}")
            part.replace(dest)
    if name == "medseg" and any((base / DATASETS["covid-semiseg"].folder).glob("*/Imgs/*.jpg")):
        make_infnet_split(base)
    return verify(name, base)


def make_infnet_split(root: str | os.PathLike | None = None) -> Path:
    """Write ``medseg``'s ``splits/infnet_split.csv`` from the file names of covid-semiseg.

    Inf-Net named its doctor-labelled slices by MedSeg index; ``train/Imgs`` (50) and
    ``test/Imgs`` (48) give the split, MedSeg slices in neither are ``not_in_infnet``.
    """
    base = Path(root) if root is not None else data_root()
    semiseg = dataset_path("covid-semiseg", base)
    split_of = {int(p.stem): split for split in ("train", "test")
                for p in (semiseg / split / "Imgs").glob("*.jpg")}
    medseg = DATASETS["medseg"]
    indices = sorted(int(path[len("images/tr_im_"):-len(".png")]) for path in medseg.manifest()
                     if path.startswith("images/tr_im_"))
    rows = ["medseg_index,image,mask_binary,mask_multiclass,infnet_split"]
    for k in indices:
        multiclass = f"masks_multiclass_reconstructed/mc_{k:04d}.png" if k in split_of else ""
        rows.append(f"{k},images/tr_im_{k:04d}.png,masks_binary/tr_mask_{k:04d}.png,{multiclass},"
                    f"{split_of.get(k, 'not_in_infnet')}")
    target = base / medseg.folder / "splits" / "infnet_split.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return target
