"""The HTML pages of a diagnosis, rendered with Jinja2 from the templates kept in the package
(``jcs/diagnosis/templates``): ``report.html`` of one patient and ``index.html`` of several.
Values are HTML-escaped (autoescape) and a value the template names but the summary lacks is an
error (StrictUndefined), so no placeholder is ever left in a page."""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Dict, Sequence

from .config import DISCLAIMER

#: What each NIfTI file of the report holds (the report's file list).
MASK_CAPTIONS = {
    "lesion_mask": "lesion mask (uint8, 1 = lesion; the segmenter on the positive slices, the "
                   "voxels counted in the lesion volume)",
    "lung_mask": "lung mask (uint8, 1 = lung; threshold segmentation)",
    "lesion_probability": "lesion probability (float32; the segmenter's output on every segmented "
                          "slice, 0 on the slices not segmented)",
}


def fmt(value: Any, unit: str = "", digits: int = 1) -> str:
    """``value`` with ``unit`` (floats to ``digits`` decimals); "n/a" for None."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


@lru_cache(maxsize=1)
def environment():
    """The Jinja2 environment of the package's templates (autoescape, StrictUndefined)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("jcs.diagnosis", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=False, lstrip_blocks=False)
    env.filters["fmt"] = fmt
    return env


def report_html(summary: Dict[str, Any]) -> str:
    """The human-readable page of one patient: the warnings first (the reader's
    ``Volume.warnings``, random weights, no lung mask), the verdict, rule, lesion burden,
    source, models, timings, the probability plot, the top slices' pictures and the files
    (NIfTI masks, DICOM SEG). ``summary``: the dict of ``summary.json`` with ``files`` set.
    Raises ``jinja2.UndefinedError`` when the summary lacks a value the page shows."""
    return environment().get_template("report.html.j2").render(s=summary,
                                                               mask_captions=MASK_CAPTIONS)


def patients_html(rows: Sequence[Dict[str, Any]], warnings: Sequence[str] = ()) -> str:
    """The index page of a multi-patient run: one line per patient (verdict, positive slices,
    lesion burden, time) linking to its report, or the error that stopped it; ``warnings`` (the
    pipeline's) at the top."""
    return environment().get_template("index.html.j2").render(
        rows=list(rows), warnings=list(warnings), disclaimer=DISCLAIMER)
