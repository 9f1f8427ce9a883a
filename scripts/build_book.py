"""Build the Jupyter Book: execute every notebook with papermill (``retrain=False`` by default,
i.e. tables and figures are regenerated from the committed ``results/``), write the executed
copies to ``book/generated/``, then build the HTML with execution off and warnings as errors.

Usage: ``python scripts/build_book.py [--profile smoke] [--results-dir results] [--retrain]``.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ["dataset", "classification", "ablation", "comparison", "dice_distribution", "runtime",
             "summary"]


def execute_notebooks(names, parameters, out_dir: Path,
                      notebooks_dir: Path = ROOT / "notebooks") -> None:
    """Run ``notebooks_dir/<name>.ipynb`` with papermill (working directory ``notebooks_dir``)
    and write the executed copies to ``out_dir/<name>.ipynb``. A failing cell stops the run
    with papermill's error, which names the notebook and the cell."""
    import papermill as pm

    out_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        src = notebooks_dir / f"{name}.ipynb"
        if not src.exists():
            raise FileNotFoundError(f"{src} does not exist; the notebooks are "
                                    f"{', '.join(NOTEBOOKS)}")
        start = time.time()
        print(f"[book] executing {src.name} ...", flush=True)
        out = out_dir / f"{name}.ipynb"
        try:
            pm.execute_notebook(str(src), str(out), parameters=parameters, kernel_name="python3",
                                cwd=str(notebooks_dir), progress_bar=False)
        finally:
            hide_injected_parameters(out)
        print(f"[book]   done in {time.time() - start:.0f} s", flush=True)


def hide_injected_parameters(path: Path) -> None:
    """Tag the cell papermill injects after the ``parameters`` cell (``injected-parameters``)
    ``remove-cell``, so that a page shows its parameters once, in the commented ``parameters``
    cell (the cell after them prints the profile and results folder actually shown)."""
    import nbformat

    if not Path(path).is_file():
        return
    nb = nbformat.read(path, as_version=4)
    changed = False
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
            changed = True
    if changed:
        nbformat.write(nb, path)


def book_parameters(profile: str = "auto", results_dir=None, retrain: bool = False) -> dict:
    """The papermill parameters that differ from the notebooks' defaults (``profile="auto"``,
    ``results_dir=None``: the repository's ``results/``, ``retrain=False``)."""
    params = {}
    if profile != "auto":
        params["profile"] = profile
    if results_dir is not None:
        params["results_dir"] = str(Path(results_dir).resolve())
    if retrain:
        params["retrain"] = True
    return params


def build_html(builddir: Path, source: Path = ROOT) -> Path:
    """``jupyter-book build source`` into ``builddir/_build/html`` (warnings are errors);
    returns the HTML folder."""
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(source), "--path-output",
           str(builddir), "-W", "-n", "--keep-going"]
    subprocess.run(cmd, check=True, cwd=source)
    html = Path(builddir) / "_build" / "html"
    print(f"[book] open {html / 'index.html'}")
    return html


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default=os.environ.get("JCS_BOOK_PROFILE", "auto"),
                        help="results profile the notebooks show (auto = best available)")
    parser.add_argument("--results-dir", default=None,
                        help="results folder (default: $JCS_RESULTS_DIR, else results/)")
    parser.add_argument("--retrain", action="store_true", help="retrain before making tables")
    parser.add_argument("--builddir", default=str(ROOT))
    parser.add_argument("--only", nargs="*", default=NOTEBOOKS, help="notebooks to execute")
    args = parser.parse_args(argv)
    params = book_parameters(args.profile, args.results_dir, args.retrain)
    execute_notebooks(args.only, params, ROOT / "book" / "generated")
    build_html(Path(args.builddir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
