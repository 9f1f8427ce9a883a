"""The report writers: the Jinja2 templates (package data, escaped, no placeholder left, a missing
value is an error), the matplotlib probability plot, and the probability map that
``--save-probabilities`` writes."""
from __future__ import annotations

import tomllib
import xml.etree.ElementTree as ET
from dataclasses import replace
from importlib import resources
from pathlib import Path

import jinja2
import nibabel
import numpy as np
import pytest
import torch

from jcs.data import Volume, synthetic_ct
from jcs.diagnosis import DiagnosisPipeline, patients_html, probability_svg, report_html

REPO = Path(__file__).resolve().parents[1]
TINY = dict(classifier_model="jcs-classifier-res2net50", size=64, seg_size=64, top_k=2,
            batch_size=32, seg_batch_size=16)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_templates_are_package_data():
    templates = resources.files("jcs.diagnosis") / "templates"
    assert {"base.html.j2", "report.html.j2", "index.html.j2"} <= {p.name for p in templates.iterdir()}
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "templates/*.j2" in package_data["jcs.diagnosis"]


def test_probability_plot_is_svg_and_reproducible():
    probs = np.linspace(0.0, 1.0, 40)
    svg = probability_svg(probs, 0.5, [39, 38], positives=range(20, 40))
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert svg == probability_svg(probs, 0.5, [39, 38], positives=range(20, 40))
    assert "P(COVID-19)" in svg and "superior" in svg


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    torch.manual_seed(0)
    pipeline = DiagnosisPipeline(**TINY, save_probabilities=True)
    images, _ = synthetic_ct(4, 64, seed=1)
    volume = Volume(images.astype(np.float32), (2.0, 0.5, 0.5), "uint8", "synthetic", list("abcd"),
                    ["synthetic: <b>a reader warning</b> & how to fix it"])
    out = tmp_path_factory.mktemp("report")
    return out, pipeline.run(volume, out, positive_override=[1, 2])


def test_report_shows_the_reader_warnings_escaped_at_the_top(summary):
    out, saved = summary
    html = (out / "report.html").read_text()
    assert "&lt;b&gt;a reader warning&lt;/b&gt; &amp; how to fix it" in html
    assert html.index("a reader warning") < html.index('class="verdict"')
    assert "{{" not in html and "{%" not in html and "Undefined" not in html
    assert "Not a medical device" in html


def test_probability_map_is_written_and_thresholds_to_the_lesion_mask(summary):
    out, saved = summary
    assert saved["files"]["masks"]["lesion_probability"] == "lesion_probability.nii.gz"
    probability = nibabel.load(out / "lesion_probability.nii.gz").get_fdata()
    lesion = np.asanyarray(nibabel.load(out / "lesion_mask.nii.gz").dataobj)
    assert probability.dtype == np.float64 and 0.0 <= probability.min() and probability.max() <= 1.0
    assert probability.shape == lesion.shape == (4, 64, 64)  # display grid: no geometry given
    positive = np.zeros(4, bool)
    positive[[1, 2]] = True
    np.testing.assert_array_equal(lesion[positive] > 0, probability[positive] >= 0.5)
    assert not lesion[~positive].any()  # lesions counted on positive slices only
    assert int(lesion.sum()) == saved["lesion"]["voxels"]


def test_a_summary_without_a_value_the_page_shows_is_an_error(summary):
    _, saved = summary
    broken = {k: v for k, v in saved.items() if k != "verdict"}
    with pytest.raises(jinja2.UndefinedError, match="verdict"):
        report_html(broken)


def test_index_page_lists_patients_and_errors():
    rows = [{"patient": "P1", "error": "P1: <no slices>"},
            {"patient": "P2", "error": "", "diagnosis": "COVID-19 negative", "report": "P2/report.html",
             "n_positive_slices": 3, "n_slices": 100, "effective_threshold": 12.5,
             "lesion_volume_ml": None, "percent_of_lung": 1.25, "seconds": 2.0,
             "volume_warnings": ["gap"]}]
    html = patients_html(rows, ["PIPELINE WARNING"])
    assert "not diagnosed: P1: &lt;no slices&gt;" in html and 'href="P2/report.html"' in html
    assert "1 warning(s) on the volume" in html and "n/a" in html and "1.2 %" in html
    assert html.index("PIPELINE WARNING") < html.index("<table>")


def test_the_pipeline_config_switches_the_writers_off(summary, tmp_path):
    _, saved = summary
    torch.manual_seed(0)
    pipeline = DiagnosisPipeline(**TINY)
    pipeline.config = replace(pipeline.config, nifti=False, dicom_seg=False)
    images, _ = synthetic_ct(2, 64, seed=1)
    result = pipeline.run(Volume(images.astype(np.float32), None, "uint8", "s", ["a", "b"]), tmp_path)
    assert result["files"]["masks"] == {} and not list(tmp_path.glob("*.nii.gz"))
