"""The notebooks behind the book: their structure (one ``parameters`` cell, the Project Pythia
sections) and a papermill run of each on smoke results (no error cells, the expected tables,
figures and glued values).

These tests run the notebooks once, with papermill, in the smoke profile; ``make test`` also runs
``pytest --nbval-lax notebooks/``, which executes them against the committed ``results/`` and
compares the cells tagged ``nbval-check-output`` with their stored outputs. The README's papermill
command is run as written, from the repository root.
"""
import importlib.util
import os
import re
import shlex
import subprocess
from pathlib import Path

import nbformat
import pytest
import yaml
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
SECTIONS = ["Overview", "Prerequisites", "Parameters", "Imports", "Summary"]
DEFAULTS = {"profile": "auto", "results_dir": None, "retrain": False, "seeds": [0]}
HIDDEN = {"remove-cell", "remove-input", "hide-input"}  # Jupyter Book tags that hide code
TEACHING = re.compile(r"report\.(show|plot_\w+|table_view)\(")  # the calls a page must show
GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([^`:]+)")

# Per notebook: report tables (title fragment -> number of body rows) and at least this many
# figures.
EXPECTED = {
    "dataset": ({}, 3),
    "classification": ({"Slice classification": 2, "Table IV": 4}, 2),
    "ablation": ({"Table V:": 4, "Table VI:": 2, "Every segmentation metric": 5,
                  "Training loss": 4}, 1),
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


def test_the_book_passes_only_the_parameters_that_differ_from_the_defaults(tmp_path):
    build_book = _build_book_module()
    assert build_book.book_parameters() == {}  # make book: nothing injected, defaults shown
    assert build_book.book_parameters("cpu", tmp_path, True) == {
        "profile": "cpu", "results_dir": str(tmp_path.resolve()), "retrain": True}


def test_the_injected_parameters_cell_is_removed_from_the_page(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("profile = 'auto'", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("profile = 'cpu'",
                                          metadata={"tags": ["injected-parameters"]})]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    _build_book_module().hide_injected_parameters(path)
    cells = nbformat.read(path, as_version=4).cells
    assert cells[0].metadata["tags"] == ["parameters"]
    assert cells[1].metadata["tags"] == ["injected-parameters", "remove-cell"]


def test_notebooks_find_the_repository_folders_from_anywhere(tmp_path, monkeypatch):
    import jcs.report as report

    monkeypatch.chdir(tmp_path)  # e.g. notebooks/, or a reader's folder outside the repository
    monkeypatch.delenv("JCS_RESULTS_DIR", raising=False)
    monkeypatch.delenv("JCS_RUNS_DIR", raising=False)
    assert report.project_dir("results") == ROOT.resolve() / "results"
    assert report.project_dir("runs") == ROOT.resolve() / "runs"
    assert report.shown_path(report.project_dir("results")) == "results"
    assert report.project_dir("results", "mine") == tmp_path.resolve() / "mine"
    monkeypatch.setenv("JCS_RESULTS_DIR", str(tmp_path / "elsewhere"))
    assert report.project_dir("results") == tmp_path.resolve() / "elsewhere"
    assert report.shown_path(tmp_path / "elsewhere") == str(tmp_path.resolve() / "elsewhere")
    with pytest.raises(ValueError):
        report.project_dir("checkpoints")


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
    checked = [c for c in code if "nbval-check-output" in c.metadata.get("tags", [])]
    assert all(not c.outputs and c.execution_count is None for c in code if c not in checked), \
        f"{name}: committed notebooks must have no outputs but those of the nbval-check-output " \
        "cells (scripts/refresh_checked_outputs.py)"
    assert checked and all(c.outputs and all(o.output_type == "stream" for o in c.outputs)
                           for c in checked), \
        f"{name}: the nbval-check-output cells need their stored outputs " \
        "(scripts/refresh_checked_outputs.py)"
    assert nb.metadata["kernelspec"]["name"] == "python3"


def _tags(cell) -> set:
    return set(cell.metadata.get("tags", []))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_pages_show_the_teaching_cells_and_hide_the_bookkeeping(name):
    nb = _read(name)
    code = [c for c in nb.cells if c.cell_type == "code"]
    for cell in code:
        if "glue(" in cell.source:
            assert "remove-cell" in _tags(cell), f"{name}: a glue cell is not tagged remove-cell"
        if TEACHING.search(cell.source) and "glue(" not in cell.source:
            assert not _tags(cell) & HIDDEN, \
                f"{name}: a cell that makes a table or figure is hidden: {cell.source[:80]!r}"
        if "nbval-check-output" in _tags(cell):
            assert "remove-cell" in _tags(cell), f"{name}: a check cell is on the page"
        if "except" in cell.source:  # try/except plumbing: off the page, or its input hidden
            assert _tags(cell) & HIDDEN, f"{name}: try/except on the page: {cell.source[:80]!r}"
    assert any(TEACHING.search(c.source) for c in code if not _tags(c) & HIDDEN)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_notebooks_install_jcs_where_it_is_missing(name):
    """Colab opens the notebook alone: its first code cell after the parameters clones the
    repository named in _config.yml and installs jcs when it cannot be imported."""
    nb = _read(name)
    code = [c for c in nb.cells if c.cell_type == "code"]
    first = next(c for c in code if "parameters" not in _tags(c))
    assert "remove-cell" in _tags(first)
    assert 'importlib.util.find_spec("jcs") is None' in first.source
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    assert f'REPOSITORY = "{url}"' in first.source, \
        f"{name}: the install cell must clone repository.url of _config.yml ({url})"
    for cell in code:
        assert "../results" not in cell.source and "../runs" not in cell.source


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
    injected = [c for c in nb.cells if "injected-parameters" in _tags(c)]
    assert injected and all("remove-cell" in _tags(c) for c in injected), \
        f"{name}: papermill's injected parameters would show beside the parameters cell"

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


def _readme_papermill_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [m for m in re.findall(r"`(\.venv/bin/papermill [^`]+)`", text)]


def test_the_readme_gives_a_papermill_command_that_reads_the_committed_results():
    commands = _readme_papermill_commands()
    assert any("retrain" not in c for c in commands), commands


@pytest.mark.slow
def test_the_readme_papermill_command_works_from_the_repository_root(tmp_path):
    """The README's command, as written, from the repository root: the chapter finds the
    committed results (no --cwd), and nothing is written outside the repository."""
    command = next(c for c in _readme_papermill_commands() if "retrain" not in c)
    argv = shlex.split(command)
    out = ROOT / argv[2]
    assert not out.exists(), f"{out} exists already; remove it"
    papermill = ROOT / argv[0]
    if not papermill.exists():
        pytest.fail(f"{argv[0]} is missing: `make env` creates it")
    parent_before = sorted(os.listdir(ROOT.parent))
    try:
        run = subprocess.run(command, shell=True, cwd=ROOT, capture_output=True, text=True,
                             timeout=900)
        assert run.returncode == 0, run.stderr[-3000:]
        nb = nbformat.read(out, as_version=4)
    finally:
        out.unlink(missing_ok=True)
    assert sorted(os.listdir(ROOT.parent)) == parent_before, "wrote outside the repository"
    errors = [o for o in _outputs(nb) if o.output_type == "error"]
    assert not errors
    text = "".join(o.get("text", "") for o in _outputs(nb) if o.output_type == "stream")
    profile = argv[argv.index("profile") + 1]
    assert f"Showing profile {profile!r} from results" in text
    assert _report_tables(nb), "no table"
