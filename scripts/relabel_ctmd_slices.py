"""Rescore the COVID-CT-MD slice metrics of results files written before 2026-11-30, when CAP
lesions counted as positives ("any infection"), with the current labels (COVID-19 infection only;
jcs/data/ctmd_labels.py), from the per-slice scores the files already hold (no model is run).
Each rescored file records ``relabelled`` (previous labels and metrics, git state, time).

    python scripts/relabel_ctmd_slices.py            # every results file under results/
    python scripts/relabel_ctmd_slices.py --dry-run  # say what would change
"""
from __future__ import annotations

import argparse
from pathlib import Path

from jcs.data import CTMDSlices
from jcs.engine.relabel import CTMD_TEST, relabel_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default="results", help="results folder (default results/)")
    parser.add_argument("--data", default=None, help="data root (default $JCS_DATA_DIR or data/)")
    parser.add_argument("--dry-run", action="store_true", help="write nothing")
    args = parser.parse_args()
    slices = CTMDSlices(size=8, root=args.data)  # names and groups only: no image is read
    groups = dict(zip((name for name, *_ in slices.samples), slices.groups))
    changed = 0
    for path in sorted(Path(args.results).glob("*/*/*.json")):
        if CTMD_TEST not in path.read_text(encoding="utf-8"):
            continue
        result = relabel_file(path, groups, dry_run=args.dry_run)
        if result is None:
            continue
        changed += 1
        record = result["relabelled"]
        now = (result["metrics"]["slice"] if result.get("kind") == "patients"
               else result["tests"][CTMD_TEST]["metrics"])
        print(f"{path}: {record['part']} slice AUC {record['previous_metrics'].get('roc_auc'):.3f} "
              f"(any infection) -> {now['roc_auc']:.3f} (COVID-19 infection)")
    print(f"{changed} file(s) {'would be ' if args.dry_run else ''}rescored.")


if __name__ == "__main__":
    main()
