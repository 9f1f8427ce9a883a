"""Store in ``notebooks/*.ipynb`` the outputs of the cells tagged ``nbval-check-output`` (the key
numbers of each chapter's tables), as the notebooks compute them from the committed ``results/``;
every other cell stays without outputs. ``pytest --nbval-lax notebooks/`` (part of ``make test``)
then fails when a chapter's numbers drift from these.

Run it after committing new results (``make reproduce``) and review the diff of the notebooks:
``python scripts/refresh_checked_outputs.py [--only ablation ...]``.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
TAG = "nbval-check-output"


def _build_book():
    spec = importlib.util.spec_from_file_location("build_book", ROOT / "scripts" / "build_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def copy_checked_outputs(executed: Path, source: Path) -> int:
    """Copy the outputs of the ``nbval-check-output`` cells of ``executed`` into the same cells
    (by cell id) of ``source``; clear every other output of ``source``. Returns the number of
    checked cells."""
    ran = nbformat.read(executed, as_version=4)
    outputs = {cell.id: cell.outputs for cell in ran.cells if cell.cell_type == "code"}
    counts = {cell.id: cell.execution_count for cell in ran.cells if cell.cell_type == "code"}
    nb = nbformat.read(source, as_version=4)
    checked = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.execution_count = None
        if TAG in cell.metadata.get("tags", []):
            cell.outputs = [out for out in outputs[cell.id] if out.output_type == "stream"]
            # nbval compares only cells that ran: a stored output needs an execution count
            cell.execution_count = counts[cell.id] or 1
            checked += 1
        else:
            cell.outputs = []
    nbformat.write(nb, source)
    return checked


def main(argv=None) -> int:
    build_book = _build_book()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", default=build_book.NOTEBOOKS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        build_book.execute_notebooks(args.only, {}, Path(tmp))
        for name in args.only:
            n = copy_checked_outputs(Path(tmp) / f"{name}.ipynb",
                                     ROOT / "notebooks" / f"{name}.ipynb")
            print(f"notebooks/{name}.ipynb: {n} checked cell(s) stored")
    return 0


if __name__ == "__main__":
    sys.exit(main())
