"""Write jcs/data/manifests/<name>.sha256 (``sha256sum`` format) from a prepared data copy.

Usage: python scripts/make_manifests.py [--data-dir DIR]   (default: $JCS_DATA_DIR, else ../shared/data)

Every file of every dataset folder must be classified by the registry (upstream URL or derivation
note), otherwise the script stops and names the file. Check a copy by hand with
``cd DIR/<folder> && sha256sum -c <repo>/jcs/data/manifests/<name>.sha256``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from jcs.data.registry import DATASETS  # noqa: E402

IGNORED = {".DS_Store", "Thumbs.db"}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("JCS_DATA_DIR") or REPO.parent / "shared" / "data"
    parser.add_argument("--data-dir", type=Path, default=Path(default))
    args = parser.parse_args()
    out_dir = REPO / "jcs" / "data" / "manifests"
    out_dir.mkdir(exist_ok=True)
    for info in DATASETS.values():
        if not info.downloadable or info.package is not None:
            continue  # package data (pyradiomics-lungs): its manifest is written by hand
        folder = args.data_dir / info.folder
        paths = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                       if p.is_file() and p.name not in IGNORED)
        unclassified = [p for p in paths if info.url_for(p) is None and info.derivation_of(p) is None]
        if unclassified:
            sys.exit(f"{info.name}: files neither upstream nor derived in the registry: {unclassified[:5]}")
        lines = [f"{sha256_of(folder / p)}  {p}\n" for p in paths]
        target = out_dir / f"{info.name}.sha256"
        target.write_text("".join(lines), encoding="utf-8")
        n_url = sum(info.url_for(p) is not None for p in paths)
        print(f"{target.relative_to(REPO)}: {len(paths)} files ({n_url} upstream, "
              f"{len(paths) - n_url} derived), {target.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
