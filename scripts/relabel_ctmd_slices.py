"""Rescore the COVID-CT-MD slice metrics of results files written before 2026-11-30, when CAP
lesions counted as positives ("any infection"), with the current labels (COVID-19 infection only;
jcs/data/ctmd_labels.py), from the per-slice scores the files already hold (no model is run).
Each rescored file records ``relabelled`` (previous labels and metrics, git state, time).

    python scripts/relabel_ctmd_slices.py            # every results file under results/
    python scripts/relabel_ctmd_slices.py --dry-run  # say what would change
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jcs.data import CTMDSlices
from jcs.engine.relabel import CTMD_TEST, RelabelError, relabel_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default="results", help="results folder (default results/)")
    parser.add_argument("--data", default=None, help="data root (default $JCS_DATA_DIR or data/)")
    parser.add_argument("--dry-run", action="store_true", help="write nothing")
    args = parser.parse_args()
    slices = CTMDSlices(size=8, root=args.data)  # names and groups only: no image is read
    groups = dict(zip((name for name, *_ in slices.samples), slices.groups))
    changed, failed = 0, []
    paths = [p for p in sorted(Path(args.results).glob("*/*/*.json"))
             if CTMD_TEST in p.read_text(encoding="utf-8")]
    # donors before the files borrowed from them (jcs.engine.borrow)
    paths.sort(key=lambda p: '"borrowed_from"' in p.read_text(encoding="utf-8"))
    for path in paths:
        try:
            result = relabel_file(path, groups, dry_run=args.dry_run, results_dir=args.results)
        except (RelabelError, ValueError, KeyError) as err:
            failed.append(path)
            print(f"{path}: not rescored: {err}", file=sys.stderr)
            continue
        if result is None:
            continue
        changed += 1
        record = result["relabelled"]
        now = (result["metrics"]["slice"] if result.get("kind") == "patients"
               else result["tests"][CTMD_TEST]["metrics"])
        print(f"{path}: {record['part']} slice AUC {_auc(record['previous_metrics'])} "
              f"(any infection) -> {_auc(now)} (COVID-19 infection)")
    print(f"{changed} file(s) {'would be ' if args.dry_run else ''}rescored"
          + (f"; {len(failed)} could not be (above)." if failed else "."))
    if failed:
        sys.exit(1)


def _auc(metrics: dict) -> str:
    value = metrics.get("roc_auc")
    return "n/a" if value is None or value != value else f"{value:.3f}"

if __name__ == "__main__":
    main()
