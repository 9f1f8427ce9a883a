"""Shared pytest fixtures. Keep this file small; add fixtures for other modules below."""

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Folder with the real dataset copies: $JCS_DATA_DIR, else ../shared/data next to the repo."""
    path = Path(os.environ.get("JCS_DATA_DIR") or REPO.parent / "shared" / "data")
    if not path.is_dir():
        pytest.skip(f"real data not found at {path}; set JCS_DATA_DIR to the folder that holds "
                    "medseg_covid19_ct100/, ucsd_covid_ct/, ... (see data/README.md)")
    return path


@pytest.fixture(scope="session")
def realworld_dir() -> Path:
    """The shared real-world CT inputs (one folder per case and expected.json):
    $JCS_REALWORLD_DIR, else ../shared/realworld next to the repo."""
    path = Path(os.environ.get("JCS_REALWORLD_DIR") or REPO.parent / "shared" / "realworld")
    if not (path / "expected.json").is_file():
        pytest.skip(f"shared real-world inputs not found at {path}; set JCS_REALWORLD_DIR")
    return path


@pytest.fixture(scope="session")
def pyradiomics_lungs() -> Path:
    """Folder with lung1_image.nrrd and lung2_image.nrrd (dataset ``pyradiomics-lungs``): the
    data root's copy if it verifies, else fetched through pip into <repo>/data (git-ignored;
    fetched once, then reused). Skips, saying why, when pip cannot get the archive."""
    from jcs.data import DataError, FetchError, dataset_path, fetch, verify

    for root in (os.environ.get("JCS_DATA_DIR"), REPO / "data"):
        try:
            if root and verify("pyradiomics-lungs", root).all_ok:
                return dataset_path("pyradiomics-lungs", root)
        except DataError:
            pass
    try:
        report = fetch("pyradiomics-lungs", root=REPO / "data", progress=False)
    except FetchError as error:
        pytest.skip(f"pyradiomics 3.0.1 could not be fetched through pip (no access to PyPI?): "
                    f"{str(error).splitlines()[0]}")
    assert report.all_ok, report.summary()
    return dataset_path("pyradiomics-lungs", REPO / "data")


@pytest.fixture
def one_thread():
    """One torch thread for the test (restored after): 2 OpenMP threads on a shared 2-core
    machine can be 5× slower than one. Modules use it with ``pytest.mark.usefixtures``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

# ---------------------------------------------------------------------------------------------
# Smoke results and executed notebooks (tests/test_report.py, test_notebooks.py, test_book.py).
# Tests using them carry @pytest.mark.xdist_group("smoke") so that one xdist worker builds them.

@pytest.fixture(scope="session")
def smoke_results(tmp_path_factory, data_dir) -> Path:
    """A results folder of the smoke profile made by the engine on the real data (every
    experiment, seed 0, plus seed 1 of ``table5/jcs-seg-base`` so that a table has a std).
    Checkpoints but the classifiers' (Fig. 9) are deleted once it is built: they take GBs. Takes a
    few minutes; set ``JCS_SMOKE_RESULTS`` to the results folder of an earlier smoke run to
    reuse it while developing."""
    from jcs.engine import reproduce

    if os.environ.get("JCS_SMOKE_RESULTS"):
        return Path(os.environ["JCS_SMOKE_RESULTS"])

    root = tmp_path_factory.mktemp("smoke")
    results, runs = root / "results", root / "runs"
    reproduce("smoke", results_dir=results, runs_dir=runs, data_root=data_dir, quiet=True)
    reproduce("smoke", results_dir=results, runs_dir=runs, data_root=data_dir, quiet=True,
              seeds=[1], only=["table5/jcs-seg-base"])
    for run in (runs / "smoke").iterdir():  # ~2 GB of model.pt files (EGNet alone 0.4 GB):
        if run.name != "classification":      # only the classifiers' are read (Fig. 9 maps)
            shutil.rmtree(run)
    return results


@pytest.fixture(scope="session")
def executed_notebooks(tmp_path_factory, smoke_results, data_dir) -> Path:
    """Every notebook executed once with papermill on ``smoke_results`` (profile smoke), in the
    folder returned; shared by the notebook tests and the book build."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_book", REPO / "scripts" / "build_book.py")
    build_book = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_book)
    os.environ.setdefault("JCS_DATA_DIR", str(data_dir))
    from papermill.exceptions import PapermillExecutionError

    out = tmp_path_factory.mktemp("executed")
    params = {"profile": "smoke", "results_dir": str(smoke_results)}
    for name in build_book.NOTEBOOKS:
        try:
            build_book.execute_notebooks([name], params, out)
        except PapermillExecutionError:
            pass  # the executed copy keeps the error cell; test_notebooks.py reports it
    return out


def run_cli(capsys, *argv):
    """``(exit status, stdout, stderr)`` of ``jcs *argv`` (arguments turned into strings); test
    modules import it with ``from conftest import run_cli``."""
    from jcs.cli import main

    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse: --help (0) and usage errors (2)
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err
