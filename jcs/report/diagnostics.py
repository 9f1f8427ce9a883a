"""What was tried against the classifier's cross-source gap (COVID-CT-MD), read from the files of
``results/diagnostics/`` that the probe scripts write (``scripts/probe_cls_framing.py``,
``scripts/analyse_ctmd_scores.py``, ``scripts/probe_ctmd_lung_framing.py``,
``scripts/probe_ctmd_adabn.py``): one row per try, slice AUC on the three tests."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Union

import numpy as np
import pandas as pd

from .results import ResultsNotFoundError

PathLike = Union[str, Path]

FRAMING_FILE = "diagnostics/cls_framing_probe.json"
CTMD_ANALYSIS_FILE = "diagnostics/ctmd_score_analysis.json"
# test-time tries on the committed classifiers (no training): file, rows (label, AUC of a run), note
TEST_TIME_PROBES = (
    {"file": "diagnostics/ctmd_lung_framing_probe.json",
     "rows": (("cut to the lungs at test time (framed like the SARS-CoV-2 slices)",
               lambda r: r["lungs"]["auc"]),),
     "note": "Cutting the COVID-CT-MD slices to their lungs (threshold lung mask, 5 % margin) so that "
             "they look like the SARS-CoV-2 training slices lowers the AUC further "
             "(scripts/probe_ctmd_lung_framing.py, which scores the full field as the results files "
             "do, 0.474, before): framing is not what separates the sources."},
    {"file": "diagnostics/ctmd_adabn_probe.json",
     "rows": (("with BN statistics re-estimated on its own slices (AdaBN, transductive)",
               lambda r: r["adabn"]),),
     "note": "Re-estimating every batch-norm layer's statistics on the unlabelled COVID-CT-MD slices "
             "(AdaBN; scripts/probe_ctmd_adabn.py) does not raise the AUC either: the scanners differ "
             "in what the features respond to, not only in their first and second moments. That row "
             "has seen the test images (not their labels) and is a diagnosis, not a result."},
)
TESTS = (("ucsd", "UCSD test"), ("sarscov2", "real-scan held-out"), ("ctmd", "COVID-CT-MD"))
FRAMING_LABELS = {"centre": "Resize + centre crop (the authors' transform; profile default)",
                  "body": "Cut to the body first (jcs.data.transforms.crop_to_body), then squashed"}


def _read(path: Path) -> dict:
    if not path.is_file():
        raise ResultsNotFoundError(f"{path} is missing; make it with the script it names "
                                   f"(scripts/probe_cls_framing.py or scripts/analyse_ctmd_scores.py).")
    return json.loads(path.read_text())


def cross_source_tries(results_dir: PathLike = "results") -> pd.DataFrame:
    """Slice AUC (fractions) of each try at the COVID-CT-MD gap, rows = tries, columns =
    ``("AUC", test)`` for the three tests (NaN where a try does not apply to a test).

    Rows: each framing of the framing probe (EfficientNet-Lite2 from the packaged ImageNet
    weights, one seed, its last epoch), and the committed ``cpu-pretrained`` runs scored on the
    COVID-CT-MD slices whose threshold lung mask covers at least 0 % / 10 % of the slice (mean
    over seeds, std in ``"<test> std"``); where ``scripts/probe_ctmd_lung_framing.py`` has run,
    the same runs on the COVID-CT-MD slices as framed for training (Resize + centre crop of the full
    field) and cut to the lungs first, as the SARS-CoV-2 sample's slices are; where
    ``scripts/probe_ctmd_adabn.py`` has run, with BN statistics re-estimated on those slices. Raises
    :class:`ResultsNotFoundError` when one of the first two files is missing."""
    root = Path(results_dir)
    framing = _read(root / FRAMING_FILE)
    analysis = _read(root / CTMD_ANALYSIS_FILE)
    rows: List[dict] = []
    index: List[str] = []
    epochs = framing["args"]["epochs"]
    for kind, run in framing["runs"].items():
        last = run["history"][-1]
        index.append(f"Probe, seed {framing['args']['seed']}, {epochs} epochs: "
                     f"{FRAMING_LABELS.get(kind, kind)}")
        rows.append({("AUC", label): last[key] for key, label in TESTS})
    for fraction, label in (("0.0", "all labelled slices"), ("0.1", "slices with ≥ 10 % lung")):
        values = [run["auc_by_min_lung_fraction"][fraction]["auc"] for run in analysis["runs"]]
        index.append(f"{analysis['profile']} runs ({len(values)} seeds), COVID-CT-MD {label}")
        rows.append({("AUC", "COVID-CT-MD"): float(np.mean(values)),
                     ("AUC", "COVID-CT-MD std"): float(np.std(values, ddof=1)) if len(values) > 1
                     else np.nan})
    notes = [framing.get("notes", ""),
             "Within each COVID-CT-MD patient the most superior fifth of the slices scores "
             "highest (results/diagnostics/ctmd_score_analysis.json); dropping the slices with little lung "
             "does not close the gap, so the classifier misses the lesions of these scans "
             "themselves, not only their non-lung slices."]
    for probe in TEST_TIME_PROBES:  # optional: rows only where the probe has run
        path = root / probe["file"]
        if not path.is_file():
            continue
        runs = json.loads(path.read_text())["runs"]
        for label, value in probe["rows"]:
            values = [value(run) for run in runs]
            index.append(f"{analysis['profile']} runs ({len(runs)} seeds), COVID-CT-MD {label}")
            rows.append({("AUC", "COVID-CT-MD"): float(np.mean(values)),
                         ("AUC", "COVID-CT-MD std"): (float(np.std(values, ddof=1)) if len(runs) > 1
                                                      else np.nan)})
        notes.append(probe["note"])
    columns = pd.MultiIndex.from_tuples([("AUC", label) for _, label in TESTS]
                                        + [("AUC", "COVID-CT-MD std")])
    df = pd.DataFrame(rows, index=index, columns=columns)
    df.attrs.update({
        "title": "What was tried against the cross-source gap (slice AUC)",
        "ours": f"{analysis['model']}; the probe trains on the same data as profile "
                f"{analysis['profile']} (UCSD + real-scan training block)",
        "wrap_index": True,
        "notes": notes,
        "source": "jcs.report.cross_source_tries"})
    return df
