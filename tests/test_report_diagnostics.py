"""jcs.report.cross_source_tries: the rows come from the diagnostics files, means/stds computed."""
import json
from pathlib import Path

import numpy as np
import pytest

from jcs.report import ResultsNotFoundError, cross_source_tries, show


def _write(root, framing_aucs, ctmd_all, ctmd_lung):
    (root / "diagnostics").mkdir(parents=True)
    framing = {"args": {"epochs": 2, "seed": 0}, "notes": "probe note",
               "runs": {kind: {"history": [{"ucsd": 0.1, "sarscov2": 0.2, "ctmd": 0.3},
                                           dict(zip(("ucsd", "sarscov2", "ctmd"), aucs))]}
                        for kind, aucs in framing_aucs.items()}}
    analysis = {"profile": "p", "model": "m",
                "runs": [{"auc_by_min_lung_fraction": {"0.0": {"auc": a}, "0.1": {"auc": b}}}
                         for a, b in zip(ctmd_all, ctmd_lung)]}
    (root / "diagnostics" / "cls_framing_probe.json").write_text(json.dumps(framing))
    (root / "diagnostics" / "ctmd_score_analysis.json").write_text(json.dumps(analysis))


def test_rows_are_the_last_epoch_and_seed_means(tmp_path):
    _write(tmp_path, {"centre": (0.75, 0.87, 0.58), "body": (0.86, 0.79, 0.46)},
           ctmd_all=[0.5, 0.6, 0.4], ctmd_lung=[0.6, 0.6, 0.6])
    df = cross_source_tries(tmp_path)
    assert len(df) == 4
    centre, body, every, lung = (df.iloc[i] for i in range(4))
    assert (centre[("AUC", "UCSD test")], centre[("AUC", "real-scan held-out")],
            centre[("AUC", "COVID-CT-MD")]) == (0.75, 0.87, 0.58)
    assert body[("AUC", "COVID-CT-MD")] == 0.46
    assert every[("AUC", "COVID-CT-MD")] == pytest.approx(0.5)
    assert every[("AUC", "COVID-CT-MD std")] == pytest.approx(0.1)  # sample std of .5 .6 .4
    assert lung[("AUC", "COVID-CT-MD std")] == pytest.approx(0.0)
    assert np.isnan(every[("AUC", "UCSD test")])
    shown = show(df)._repr_html_().replace("\xa0", " ").replace("&nbsp;", " ")
    assert "50.0 ± 10.0" in shown


def test_lung_framing_rows_when_the_probe_ran(tmp_path):
    _write(tmp_path, {"centre": (0.75, 0.87, 0.58)}, ctmd_all=[0.5], ctmd_lung=[0.6])
    probe = {"runs": [{"centre": {"auc": 0.5}, "lungs": {"auc": 0.3}},
                      {"centre": {"auc": 0.7}, "lungs": {"auc": 0.4}}]}
    (tmp_path / "diagnostics" / "ctmd_lung_framing_probe.json").write_text(json.dumps(probe))
    df = cross_source_tries(tmp_path)
    assert len(df) == 4
    lungs = df.iloc[3]
    assert "2 seeds" in df.index[3] and "lungs" in df.index[3]
    assert lungs[("AUC", "COVID-CT-MD")] == pytest.approx(0.35)
    assert lungs[("AUC", "COVID-CT-MD std")] == pytest.approx(np.std([0.3, 0.4], ddof=1))
    assert any("lungs" in note for note in df.attrs["notes"])
    (tmp_path / "diagnostics" / "ctmd_adabn_probe.json").write_text(json.dumps(
        {"runs": [{"adabn": 0.45}, {"adabn": 0.55}]}))
    df = cross_source_tries(tmp_path)
    assert len(df) == 5 and "AdaBN" in df.index[4]
    assert df.iloc[4][("AUC", "COVID-CT-MD")] == pytest.approx(0.5)


def test_missing_file_names_the_script(tmp_path):
    with pytest.raises(ResultsNotFoundError, match="probe_cls_framing|analyse_ctmd_scores"):
        cross_source_tries(tmp_path)


def test_committed_files_load():
    df = cross_source_tries(Path(__file__).resolve().parents[1] / "results")
    assert df[("AUC", "COVID-CT-MD")].notna().all()
