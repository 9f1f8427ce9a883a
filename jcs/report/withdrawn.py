"""Runs of a variant that was tried and not kept, as evidence: a results file moved to
``results/diagnostics/`` when the change that made it was taken back (for instance PoolNet with He
init of its VGG16 body, model revision 2 until it was withdrawn for PoolNet and EGNet), or written
there by a probe (``scripts/probe_dss_body_init.py``: DSS without He init). Such a file
keeps the ``profile``, ``experiment``, ``name`` and ``seed`` of the run it stood for, and adds
``variant`` (what differed, a phrase) and ``diagnostic_note`` (the story). The tables leave these
files out of every mean; :func:`withdrawn_notes` names them under the table of their profile,
each beside the Dice of the seed that is committed now."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from .results import DIAGNOSTICS_DIR, PathLike

__all__ = ["withdrawn_runs", "withdrawn_notes"]


def withdrawn_runs(results_dir: PathLike) -> List[Dict[str, Any]]:
    """The training results files of ``<results_dir>/diagnostics/`` that name a withdrawn
    ``variant`` (sorted by profile, experiment, name, seed; each with its ``path``). Files that
    cannot be read as JSON, or that are not training results of a variant, are skipped: the folder
    also holds the probes' own outputs."""
    found = []
    for path in sorted((Path(results_dir) / DIAGNOSTICS_DIR).glob("*.json")):
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if _is_variant_run(result):
            found.append(dict(result, path=str(path)))
    return sorted(found, key=lambda r: (r["profile"], r["experiment"], r["name"], int(r["seed"])))


def _is_variant_run(result: Any) -> bool:
    """A training result of a variant with the fields :func:`withdrawn_notes` reads."""
    if not isinstance(result, dict) or result.get("kind") != "train" or not result.get("variant"):
        return False
    metrics = result.get("metrics")
    try:
        int(result.get("seed"))
        float(metrics["dice"])
    except (TypeError, ValueError, KeyError):
        return False
    return all(isinstance(result.get(k), str) for k in ("profile", "experiment", "name"))


def withdrawn_notes(results_dir: PathLike, profile: str, label: str,
                    runs: Dict[Any, List[Dict[str, Any]]],
                    experiments: Optional[Sequence[str]] = None,
                    seeds: Optional[Sequence[int]] = None) -> List[str]:
    """One note for ``profile`` (prefixed ``"<label>: "``) naming its withdrawn runs of
    ``experiments`` (all when None), each with its Dice at 0.5 and, where ``runs`` (the table's
    results, ``{key: [result, ...]}``) holds the same experiment, run name and seed, that seed's
    Dice now; only seeds of ``seeds`` when given (the table's). ``[]`` when there are none."""
    parts = []
    for result in withdrawn_runs(results_dir):
        experiment, name = result.get("experiment"), result.get("name")
        if result.get("profile") != profile or (experiments is not None
                                                 and experiment not in experiments):
            continue
        seed = int(result["seed"])
        if seeds is not None and seed not in seeds:
            continue
        now = [r for rs in runs.values() for r in rs if r.get("name") == name
               and r.get("experiment", experiment) == experiment and int(r.get("seed") or 0) == seed]
        dice = float(result["metrics"]["dice"])
        text = f"{name} seed {seed} with {result['variant']}: Dice {dice:.1%}"
        if now and (now[0].get("metrics") or {}).get("dice") is not None:
            text += f" (the seed committed now: {float(now[0]['metrics']['dice']):.1%})"
        parts.append(f"{text}, {Path(result['path']).name}")
    if not parts:
        return []
    return [f"{label}: variants tried and not kept (withdrawn changes and probes, in "
            f"results/{DIAGNOSTICS_DIR}/, outside every mean): {'; '.join(parts)}."]
