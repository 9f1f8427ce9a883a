"""Shared pytest fixtures. Keep this file small; add fixtures for other modules below."""

import os
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
