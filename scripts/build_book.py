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


def notebook_path(path, notebooks_dir: Path = ROOT / "notebooks") -> str:
    """``path`` as the notebooks (run from ``notebooks_dir``) should see it: relative where it
    can be, so that the rendered parameter cells show ``../results``, not this machine's
    folders."""
    path = Path(path).resolve()
    try:
        return os.path.relpath(path, notebooks_dir)
    except ValueError:  # another drive (Windows)
        return str(path)


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
        pm.execute_notebook(
            str(src), str(out_dir / f"{name}.ipynb"), parameters=parameters,
            kernel_name="python3", cwd=str(notebooks_dir), progress_bar=False,
        )
        print(f"[book]   done in {time.time() - start:.0f} s", flush=True)


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
    parser.add_argument("--results-dir", default=str(ROOT / "results"))
    parser.add_argument("--retrain", action="store_true", help="retrain before making tables")
    parser.add_argument("--builddir", default=str(ROOT))
    parser.add_argument("--only", nargs="*", default=NOTEBOOKS, help="notebooks to execute")
    args = parser.parse_args(argv)
    params = {"profile": args.profile, "results_dir": notebook_path(args.results_dir),
              "retrain": args.retrain}
    execute_notebooks(args.only, params, ROOT / "book" / "generated")
    build_html(Path(args.builddir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
