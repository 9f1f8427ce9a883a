"""Runtime of the system beside the paper's 22 s per patient (paper Sec. V): timings of the
patient-level runs (``table4`` results files: every slice of every COVID-CT-MD patient
classified), the benchmark files of ``jcs bench`` (``results/bench/<host>.json``) and the model
sizes (``results/flops.json``)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np
import pandas as pd

from jcs import paper

from .results import PROFILE_ORDER, available_profiles, hardware_label, load_runs

__all__ = ["runtime_table", "bench_models"]

PathLike = Union[str, Path]


def _paper_runtime() -> Dict[str, Any]:
    items = {r["item"]: r["value"] for r in paper.RUNTIME.records()}
    seconds = items["seconds per patient (classification of all slices + segmentation)"]
    return {"seconds": seconds, "slices": items["slices per patient"], "device": items["GPU"],
            "radiologist_min": items["radiologist, minutes per case"]}


def _patient_rows(results_dir: PathLike) -> List[Dict[str, Any]]:
    """Classification of every slice of every patient, per profile (``table4`` results)."""
    rows = []
    for profile in available_profiles(results_dir, ["table4"]):
        for name, results in load_runs(results_dir, profile, "table4").items():
            for result in results:
                patients = result.get("patients", [])
                if not patients:
                    continue
                seconds = np.array([p["seconds"] for p in patients], dtype=float)
                slices = np.array([p["n_slices"] for p in patients], dtype=float)
                rows.append({
                    "source": f"ours, {profile}: classify every slice ({name}, seed {result['seed']})",
                    "device": hardware_label([result]),
                    "what": "classification only", "slices per patient": float(slices.mean()),
                    "seconds per patient": float(seconds.mean()),
                    "seconds per 300 slices": float((seconds / slices).mean() * 300),
                })
    return rows


def _bench_rows(results_dir: PathLike) -> List[Dict[str, Any]]:
    """The end-to-end patient timings of ``jcs bench`` files (``results/bench/*.json``)."""
    rows = []
    for path in sorted((Path(results_dir) / "bench").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for entry in data.get("patients", []):
            rows.append({
                "source": f"ours, jcs bench ({path.stem})",
                "device": data.get("device", {}).get("name", path.stem),
                "what": entry.get("what", "classification + segmentation"),
                "slices per patient": float(entry["slices"]),
                "seconds per patient": float(entry["seconds"]),
                "seconds per 300 slices": float(entry["seconds"]) / float(entry["slices"]) * 300,
            })
    return rows


def runtime_table(results_dir: PathLike = "results") -> pd.DataFrame:
    """Seconds per patient: the paper's (RTX 2080Ti, ~300 slices) beside every timing we have,
    with seconds per 300 slices for a like-for-like row. ``attrs["fastest"]`` describes our
    fastest row in words (for the text)."""
    ref = _paper_runtime()
    rows = [{"source": "paper", "device": ref["device"], "what": "classification + segmentation",
             "slices per patient": float(ref["slices"]), "seconds per patient": float(ref["seconds"]),
             "seconds per 300 slices": float(ref["seconds"]) / float(ref["slices"]) * 300}]
    ours = _patient_rows(results_dir) + _bench_rows(results_dir)
    rows += ours
    df = pd.DataFrame(rows).set_index("source")
    if ours:
        best = min(ours, key=lambda r: r["seconds per 300 slices"])
        fastest = (f"{best['seconds per 300 slices']:.1f} s per 300 slices ({best['what']}) on "
                   f"{best['device']}")
    else:
        fastest = "no timings yet (run `make bench` or the table4 experiment)"
    df.attrs.update({
        "title": "Runtime per patient", "fastest": fastest, "paper_seconds": float(ref["seconds"]),
        "paper_slices": int(ref["slices"]), "paper_device": ref["device"],
        "radiologist_min": float(ref["radiologist_min"]),
        "ours": "every timing found under the results folder (all profiles)",
        "definitions": {"seconds per 300 slices": "seconds per patient / slices × 300 (the "
                                                   "paper's patients have about 300 slices)",
                        "classification only": "Res2Net-101 on every slice of the patient, "
                                               "measured while making Table IV"},
        "notes": [paper.RUNTIME.source,
                  f"A radiologist needs about {ref['radiologist_min']} minutes per case (paper)."],
        "source": "jcs.report.runtime_table", "api": "api-runtime", "percent": False,
        "digits": 1, "plain": ["slices per patient"], "seeds_note": False,
        "profiles": [p for p in PROFILE_ORDER if p in available_profiles(results_dir)],
    })
    return df


def bench_models(results_dir: PathLike = "results") -> pd.DataFrame:
    """Per model: parameters and GMACs at its input size (``results/flops.json``) beside the
    published reference counts where known."""
    path = Path(results_dir) / "flops.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; it lists the parameter and GMAC counts of "
                                "every model (made by the models' FLOP count script)")
    entries = json.loads(path.read_text(encoding="utf-8"))
    rows = {}
    for e in entries:
        rows[e["model"]] = {("input", ""): e["input"], ("params (M)", "ours"): e["params"] / 1e6,
                            ("params (M)", "reference"): e.get("reference_params_m", np.nan),
                            ("GMACs", "ours"): e["gmacs"],
                            ("GMACs", "reference"): e.get("reference_gmacs", np.nan)}
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "model"
    df.columns = pd.MultiIndex.from_tuples(df.columns, names=["metric", "column"])
    df.attrs.update({
        "title": "Model sizes", "percent": False, "plain": ["input"], "digits": 1,
        "seeds_note": False,
        "ours": f"counted by our implementation ({path.name})",
        "definitions": {"GMACs": "multiply-accumulates of one forward pass at the input size, "
                                 "convolutions and linear layers only",
                        "reference": "the count of the official implementation "
                                     "(models_and_metrics.md)"},
        "notes": [], "source": "jcs.report.bench_models",
    })
    return df
