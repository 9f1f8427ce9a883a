"""The notebooks behind the book: their structure (one ``parameters`` cell, the Project Pythia
sections) and a papermill run of each on smoke results (no error cells, the expected tables,
figures and glued values).

These tests run the notebooks once, with papermill, in the smoke profile. ``pytest --nbval-lax
notebooks/`` also works (it runs them against the committed ``results/``) but is not part of
``make test``, so that no notebook runs twice in CI.
"""
import importlib.util
import re
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
SECTIONS = ["Overview", "Prerequisites", "Parameters", "Imports", "Summary"]
DEFAULTS = {"profile": "auto", "results_dir": "../results", "retrain": False, "seeds": [0]}
GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([^`:]+)")

# Per notebook: report tables (title fragment -> number of body rows) and at least this many
# figures.
EXPECTED = {
    "dataset": ({}, 3),
    "classification": ({"Slice classification": 2, "Table IV": 4}, 2),
    "ablation": ({"Table V:": 4, "Table VI:": 2, "Every segmentation metric": 5}, 1),
    "comparison": ({"Table VII:": 5, "Inf-Net": 9, "Every segmentation metric": 5}, 2),
    "dice_distribution": ({"what the paper says": 2, "distribution of per-slice Dice": 10,
                           "by lesion area": 5}, 1),
    "runtime": ({"Runtime": 3}, 0),  # paper + the two table4 classifiers (no bench in smoke)
    "summary": ({"every profile": 9, "Table IV": 4, "Table V:": 4, "Table VI:": 2, "Table VII:": 5,
                 "what the paper says": 2, "Runtime": 3, "Inf-Net": 9}, 0),
}


def _build_book_module():
    spec = importlib.util.spec_from_file_location("build_book", ROOT / "scripts" / "build_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read(name: str, folder: Path = NOTEBOOK_DIR) -> nbformat.NotebookNode:
    return nbformat.read(folder / f"{name}.ipynb", as_version=4)


def _headings(nb) -> list[str]:
    return [line[3:].strip() for cell in nb.cells if cell.cell_type == "markdown"
            for line in cell.source.splitlines() if line.startswith("## ")]


def test_the_book_shows_results_paths_relative_to_the_notebooks(tmp_path):
    build_book = _build_book_module()
    assert build_book.notebook_path(ROOT / "results") == str(Path("..") / "results")
    assert build_book.notebook_path(tmp_path, notebooks_dir=tmp_path / "notebooks") == ".."


def test_every_notebook_is_built_into_the_book():
    names = {p.stem for p in NOTEBOOK_DIR.glob("*.ipynb")}
    assert names == set(_build_book_module().NOTEBOOKS) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_structure(name):
    nb = _read(name)
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{name}: {len(tagged)} cells tagged 'parameters', expected 1"
    values = {}
    exec(tagged[0].source, {}, values)  # plain assignments only
    for key, default in DEFAULTS.items():
        assert values.get(key) == default, f"{name}: parameter {key} = {values.get(key)!r}"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    headings = _headings(nb)
    positions = [headings.index(s) if s in headings else -1 for s in SECTIONS]
    missing = [s for s, p in zip(SECTIONS, positions) if p < 0]
    assert not missing, f"{name}: missing sections {missing}"
    assert positions == sorted(positions), f"{name}: sections out of order: {headings}"
    assert headings[-1] == "Summary" or "What's next?" in nb.cells[-1].source
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), \
        f"{name}: committed notebooks must have no outputs (clear them)"
    assert nb.metadata["kernelspec"]["name"] == "python3"


def _outputs(nb):
    for cell in nb.cells:
        if cell.cell_type == "code":
            yield from cell.get("outputs", [])


def _report_tables(nb) -> dict[str, int]:
    """{caption title: number of body rows} of every report.show output."""
    tables = {}
    for out in _outputs(nb):
        html = out.get("data", {}).get("text/html")
        if not html or "jcs-report-table" not in html:
            continue
        soup = BeautifulSoup("".join(html), "html.parser")
        title = soup.find("strong").get_text() if soup.find("strong") else ""
        table = soup.find("table")
        tables[title] = len(table.find("tbody").find_all("tr"))
        assert "ours" in table.get_text(), f"{title}: no 'ours' column or row"
    return tables


@pytest.mark.slow
@pytest.mark.xdist_group("smoke")
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_runs_on_smoke_results(name, executed_notebooks):
    nb = _read(name, executed_notebooks)
    errors = [out for out in _outputs(nb) if out.output_type == "error"]
    assert not errors, f"{name}: {errors[0].ename}: {errors[0].evalue}"
    text = "".join(out.get("text", "") for out in _outputs(nb) if out.output_type == "stream")
    assert "Traceback" not in text
    assert "Showing profile 'smoke'" in text or name in ("dataset", "runtime")

    expected_tables, min_figures = EXPECTED[name]
    tables = _report_tables(nb)
    for fragment, rows in expected_tables.items():
        match = [t for t in tables if fragment.lower() in t.lower()]
        assert match, f"{name}: no table titled like {fragment!r}; tables: {list(tables)}"
        assert tables[match[0]] == rows, \
            f"{name}: {match[0]!r} has {tables[match[0]]} rows, expected {rows}"
    figures = sum("image/png" in out.get("data", {}) for out in _outputs(nb))
    assert figures >= min_figures, f"{name}: {figures} figures, expected at least {min_figures}"

    glued = {out.metadata["scrapbook"]["name"] for out in _outputs(nb)
             if "scrapbook" in out.get("metadata", {})}
    referenced = {key for cell in nb.cells if cell.cell_type == "markdown"
                  for key in GLUE_ROLE.findall(cell.source)}
    assert referenced <= glued, f"{name}: glue keys used but never glued: {referenced - glued}"


@pytest.mark.slow
@pytest.mark.xdist_group("smoke")
def test_dataset_notebook_shows_the_real_data(executed_notebooks):
    nb = _read("dataset", executed_notebooks)
    tables = [out for out in _outputs(nb)
              if "<table" in "".join(out.get("data", {}).get("text/html", ""))]
    assert len(tables) >= 4
    glued = {out.metadata["scrapbook"]["name"]:
             out["data"]["application/papermill.record/text/plain"]
             for out in _outputs(nb) if "scrapbook" in out.get("metadata", {})}
    counts = (glued["n_medseg_train"], glued["n_medseg_test"], glued["ctmd_patients"])
    assert counts == ("50", "48", "6")
