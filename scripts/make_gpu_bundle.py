"""Make a compact copy of the datasets for a GPU machine that has no internet and accepts at
most 64 MiB of carried files (see book/reproduce.md, "GPU run").

Same folder layout as the local copies. Changes, all recorded in ``BUNDLE.json``:
- UCSD COVID-CT images are resized so the shorter side is 256 px (the classifier reads them
  with Resize(256) + CenterCrop(224), so nothing the network sees is lost) and stored as PNG;
- COVID-CT-MD is left out (35 MB): Table IV is computed by the CPU profile;
- UCSD images are stored as 8-bit grayscale (the readers convert to grayscale anyway);
- every PNG is re-encoded with maximum lossless compression.
Usage: ``python scripts/make_gpu_bundle.py SRC_DATA_DIR OUT_DIR``.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from PIL import Image

KEEP = ["medseg_covid19_ct100", "ucsd_covid_ct", "jcs_covid_cs_examples"]


def copy_png(src: Path, dst: Path) -> None:
    with Image.open(src) as im:
        im.load()
        im.save(dst, optimize=True)


def main(src: Path, out: Path) -> None:
    changed = []
    for name in KEEP:
        for path in sorted((src / name).rglob("*")):
            rel = path.relative_to(src)
            if path.is_dir() or "dicom" in rel.parts:
                continue
            dst = out / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            if name == "ucsd_covid_ct" and path.suffix.lower() in {".png", ".jpg", ".jpeg"}:
                with Image.open(path) as im:
                    im = im.convert("L")  # the readers use grayscale anyway
                    scale = 256 / min(im.size)
                    if scale < 1:
                        im = im.resize((round(im.width * scale), round(im.height * scale)),
                                       Image.BILINEAR)
                    im.save(dst.with_suffix(path.suffix), optimize=True, quality=95)
                changed.append(str(rel))
            elif path.suffix.lower() == ".png":
                copy_png(path, dst)
            else:
                shutil.copy2(path, dst)
    (out / "BUNDLE.json").write_text(json.dumps(
        {"source": str(src), "resized_ucsd_images": len(changed),
         "dropped": ["covid_ct_md_sample", "infnet_covid_semiseg"]}, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
