"""The scaling table of ``jcs bench --scaling`` (jcs.bench_scaling, quick mode, no assertion on
timings) and its report (jcs.report.scaling_table / scaling_figure) on hand-made bench files."""
import json

import numpy as np
import pytest
import torch

import jcs.bench_scaling as bench_scaling
import jcs.report as report
from jcs.bench import default_file_name
from jcs.bench_scaling import (compute_limit, cpu_peak, format_scaling, measure_scaling,
                               projected_patient_seconds, thread_counts)
from conftest import run_cli

pytestmark = pytest.mark.usefixtures("one_thread")

ROW_KEYS = {"threads", "torch_threads", "cls_slices_per_s", "seg_slices_per_s", "patient_seconds",
            "patient_seconds_kind", "patient_seconds_projected", "patient_seconds_measured",
            "speedup_cls", "speedup_seg", "speedup_patient", "load_1min", "cls_timing", "seg_timing",
            "cls_streams", "seg_streams"}


def test_thread_counts_double_up_to_the_maximum():
    assert thread_counts(1) == [1]
    assert thread_counts(2) == [1, 2]
    assert thread_counts(6) == [1, 2, 4, 6]
    assert thread_counts(8) == [1, 2, 4, 8]
    assert thread_counts()[-1] == thread_counts(None)[-1] > 0
    with pytest.raises(ValueError, match="at least 1"):
        thread_counts(0)


def test_projection_by_hand():
    # 300 slices at 20 slices/s + 150 segmented at 0.5 slices/s = 15 s + 300 s
    assert projected_patient_seconds(300, 150, 20.0, 0.5) == pytest.approx(315.0)


def test_cpu_peak_and_compute_limit_by_hand(monkeypatch):
    peak = cpu_peak("AVX2", cores=4, clock_mhz=3000)  # 4 cores × 2 FMA × 8 lanes × 2 × 3 GHz
    assert peak["flops_per_cycle_per_core"] == 32 and peak["peak_flops_per_s"] == pytest.approx(384e9)
    # 10 slices × 1 GFLOP + 5 segmented × 2 GFLOP = 20 GFLOP at 384 GFLOP/s
    limit = compute_limit(1e9, 2e9, 10, 5, peak)
    assert limit["flops"] == pytest.approx(20e9)
    assert limit["seconds"] == pytest.approx(20 / 384)
    # read from the machine: ISA from torch, cores and clock from the helpers
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.setattr(bench_scaling, "physical_cores", lambda: {"cores": 3, "source": "test"})
    monkeypatch.setattr(bench_scaling, "cpu_clock_mhz", lambda: {"mhz": 1000.0, "source": "test"})
    peak = cpu_peak()  # 3 × 2 × 16 × 2 × 1 GHz
    assert (peak["isa"], peak["fp32_lanes"], peak["clock_source"]) == ("AVX512", 16, "test")
    assert peak["peak_flops_per_s"] == pytest.approx(192e9)
    # no clock, or an ISA without known lanes: no peak, no limit
    monkeypatch.setattr(bench_scaling, "cpu_clock_mhz", lambda: {"mhz": None, "source": "unknown"})
    unknown = cpu_peak()
    assert unknown["clock_mhz"] is None and unknown["peak_flops_per_s"] is None
    assert compute_limit(1e9, 2e9, 10, 5, unknown)["seconds"] is None
    assert cpu_peak("DEFAULT", cores=2, clock_mhz=2000)["peak_flops_per_s"] is None


def test_scaling_cli_quick_writes_the_table(tmp_path, capsys):
    before = torch.get_num_threads()  # 1 (fixture): the last row sets 2, which must not stay
    out = tmp_path / "bench" / "host-scaling.json"
    code, printed, err = run_cli(capsys, "bench", "--scaling", "--quick", "--threads-list", 1, 2,
                                 "--out", out)
    assert code == 0, err
    assert torch.get_num_threads() == before
    data = json.loads(out.read_text())
    assert data["models"] == {} and data["patient"] is None and data["device"]["type"] == "cpu"
    scaling = data["scaling"]
    assert scaling["threads_before"] == before and scaling["quick"]
    assert scaling["patient"]["kind"] == "projected"
    n, n_seg = scaling["patient"]["n_slices"], scaling["patient"]["n_segmented"]
    assert (n, n_seg) == (8, 4)
    rows = scaling["rows"]
    assert [r["threads"] for r in rows] == [r["torch_threads"] for r in rows] == [1, 2]
    # the pipeline's default layout: one stream (jcs.streams.DEFAULT_STREAMS)
    assert [r["seg_streams"] for r in rows] == [r["cls_streams"] for r in rows] == [1, 1]
    assert scaling["streams_requested"] is None
    for row in rows:
        assert set(row) == ROW_KEYS
        assert row["patient_seconds_kind"] == "projected" and row["patient_seconds_measured"] is None
        assert row["patient_seconds"] == row["patient_seconds_projected"] == pytest.approx(
            n / row["cls_slices_per_s"] + n_seg / row["seg_slices_per_s"])
        assert row["cls_slices_per_s"] == pytest.approx(scaling["classifier"]["slices"]
                                                        / row["cls_timing"]["seconds"])
    assert rows[0]["speedup_cls"] == rows[0]["speedup_seg"] == rows[0]["speedup_patient"] == 1.0
    assert rows[1]["speedup_seg"] == pytest.approx(rows[1]["seg_slices_per_s"] / rows[0]["seg_slices_per_s"])
    assert rows[1]["speedup_patient"] == pytest.approx(rows[0]["patient_seconds"] / rows[1]["patient_seconds"])
    limit = scaling["compute_limit"]
    assert (limit["n_slices"], limit["n_segmented"]) == (n, n_seg)
    assert limit["flops"] == pytest.approx(n * limit["classifier_flops_per_slice"]
                                           + n_seg * limit["segmenter_flops_per_slice"])
    peak = limit["peak"]
    assert {"isa", "cores", "clock_mhz", "clock_source", "amx_bf16", "notes"} <= set(peak)
    if peak["peak_flops_per_s"]:
        assert limit["seconds"] == pytest.approx(limit["flops"] / peak["peak_flops_per_s"])
    assert "threads" in printed and "compute limit" in printed
    assert default_file_name(torch.device("cpu"), True, "-scaling").endswith("-scaling-quick.json")


def test_measured_patient_times(capsys):
    before = torch.get_num_threads()
    scaling = measure_scaling([1], quick=True, patient=True, log=lambda _: None)
    assert torch.get_num_threads() == before
    row = scaling["rows"][0]
    assert scaling["patient"]["kind"] == row["patient_seconds_kind"] == "measured"
    assert row["patient_seconds"] == row["patient_seconds_measured"] == row["patient_run"]["seconds"]
    assert row["patient_run"]["threads"] == 1 and row["patient_seconds_projected"] > 0
    assert "measured" in format_scaling(scaling)


@pytest.mark.parametrize("argv, expected", [
    (["--threads-list", "1"], "goes with --scaling"),
    (["--scaling", "--threads-list", "0"], "at least 1"),
    (["--scaling", "--patient-only"], "scaling table alone"),
    (["--scaling", "--device", "cuda"], "CPU threads"),
    (["--scaling", "--scaling-segmenter", "nowhere.pt2"], "not found"),
])
def test_scaling_cli_user_errors(capsys, argv, expected):
    code, _, err = run_cli(capsys, "bench", *argv)
    assert code == 2 and expected in err


# ---------------------------------------------------------------------------------------------
# Report


def _bench_file(rows, limit=400.0):
    return {"quick": False, "device": {"type": "cpu", "name": "Test CPU", "cpu_count": 2},
            "models": {}, "patients": [],
            "scaling": {"device": {"type": "cpu", "name": "Test CPU", "cpu_count": 2},
                        "patient": {"n_slices": 300, "n_segmented": 150},
                        "compute_limit": {"seconds": limit}, "rows": rows}}


ROWS = [{"threads": 1, "cls_slices_per_s": 10.0, "seg_slices_per_s": 0.5, "patient_seconds": 330.0,
         "patient_seconds_kind": "projected", "speedup_cls": 1.0, "speedup_seg": 1.0,
         "speedup_patient": 1.0, "load_1min": 1.0},
        {"threads": 2, "cls_slices_per_s": 15.0, "seg_slices_per_s": 1.0, "patient_seconds": 170.0,
         "patient_seconds_kind": "projected", "speedup_cls": 1.5, "speedup_seg": 2.0,
         "speedup_patient": 330 / 170, "load_1min": 2.0}]


def test_scaling_table_and_figure_from_a_bench_file(tmp_path):
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "host.json").write_text(json.dumps(_bench_file(ROWS)))
    (tmp_path / "bench" / "other.json").write_text(json.dumps({"device": {"type": "cpu"}, "patients": []}))
    df = report.scaling_table(tmp_path)
    assert list(df.index) == [("host", 1), ("host", 2)]  # the file without scaling is left out
    assert df.loc[("host", 2), "segmentation slices/s"] == 1.0
    assert df.loc[("host", 2), "speedup segmentation"] == 2.0
    assert df.loc[("host", 1), "compute limit (s)"] == 400.0
    assert set(df["patient time"]) == {"projected"} and set(df["device"]) == {"Test CPU (2 cores)"}
    assert df.attrs["summary"] == ("host (Test CPU (2 cores)): 330 s per patient at 1 thread(s), "
                                   "170 s at 2 (projected); compute limit 400 s")
    assert "170.00" in repr(report.show(df))

    import matplotlib
    import matplotlib.pyplot as plt

    matplotlib.use("Agg")
    fig = report.scaling_figure(tmp_path)
    left, right = fig.axes
    horizontal = {float(line.get_ydata()[0]) for line in left.lines
                  if len(set(np.ravel(line.get_ydata()))) == 1 and len(line.get_ydata()) == 2}
    assert horizontal == {22.0, 400.0}  # the paper (jcs.paper.RUNTIME) and the compute limit
    assert left.get_yscale() == "log"
    ideal = [line for line in right.lines if line.get_linestyle() == "--" and len(line.get_xdata())]
    assert [list(line.get_ydata()) for line in ideal] == [[10.0, 20.0], [0.5, 1.0]]
    plt.close(fig)


def test_scaling_without_data_says_what_is_missing(tmp_path, capsys):
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "old.json").write_text(json.dumps({"device": {"type": "cpu"}}))
    for function in (report.scaling_table, report.scaling_figure):
        with pytest.raises(FileNotFoundError, match="jcs bench --scaling"):
            function(tmp_path)
        with pytest.raises(FileNotFoundError, match="no scaling table"):
            function(tmp_path / "nowhere")
    with report.note_missing("Scaling with CPU threads"):
        report.scaling_figure(tmp_path)
    assert capsys.readouterr().out.startswith("Scaling with CPU threads not shown: no scaling table")
    # a file without per-model rows no longer breaks the per-model table
    with pytest.raises(FileNotFoundError, match="no per-model benchmark"):
        report.bench_models(tmp_path)


def test_issue16_targets_from_the_scaling_table(tmp_path):
    """2 threads >= 1.8x faster than 1 (here 330/170 = 1.94x: met) and a measured 300-slice patient
    at the most threads in <= 30 s (here 95 s: not met), computed from the scaling rows."""
    measured = [dict(ROWS[1], threads=2, patient_seconds=95.0, patient_seconds_kind="measured",
                     speedup_patient=None)]
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "proj.json").write_text(json.dumps(_bench_file(ROWS)))
    data = _bench_file(measured)
    data["scaling"]["segmenter"] = {"int8": True}
    (tmp_path / "bench" / "meas.json").write_text(json.dumps(data))
    df = report.bench_targets(tmp_path)
    assert list(df.index) == ["meas", "proj"]
    meas, proj = df.loc["meas"], df.loc["proj"]
    assert meas["target"] == "300-slice patient at 2 threads, measured, segmenter int8"
    assert (meas["measured"], meas["limit"], meas["met"]) == ("95.0 s", "≤ 30 s", "no")
    assert proj["target"] == "patient, 2 threads against 1 (projected, segmenter float)"
    assert (proj["measured"], proj["limit"], proj["met"]) == ("1.94 ×", "≥ 1.8×", "yes")
    assert df.attrs["summary"].startswith("1 of 2 checks met; not met: 300-slice patient")


def test_scaling_cli_measures_the_streams_it_is_given(tmp_path, capsys):
    out = tmp_path / "host-scaling.json"
    code, printed, err = run_cli(capsys, "bench", "--scaling", "--quick", "--threads-list", 2,
                                 "--streams", 2, "--out", out)
    assert code == 0, err
    scaling = json.loads(out.read_text())["scaling"]
    assert scaling["streams_requested"] == 2
    # the streams that ran: the quick sizes have one batch per stage, so one stream each
    assert [(r["threads"], r["cls_streams"], r["seg_streams"]) for r in scaling["rows"]] == [(2, 1, 1)]
    assert "threads streams" in printed
    code, _, err = run_cli(capsys, "bench", "--scaling", "--quick", "--streams", 0, "--out", out)
    assert code == 2 and "--streams needs at least 1" in err
