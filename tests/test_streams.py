"""Several batches in flight on the CPU (jcs.streams, jcs.inference.predict, jcs diagnose --streams)."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import torch.nn as nn

from jcs.diagnosis import DiagnosisPipeline
from jcs.inference import predict
from jcs.streams import (DEFAULT_STREAMS, effective_streams, intra_op_threads, resolve_streams,
                         run_streams)

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
TINY = dict(classifier_model="jcs-classifier-res2net50", size=64, seg_size=64, top_k=2,
            batch_size=4, seg_batch_size=1)


def test_one_stream_by_default_and_several_on_the_cpu_only():
    assert DEFAULT_STREAMS == 1  # measured: results/diagnostics/cpu_streams_probe.json
    assert resolve_streams(None, CPU) == resolve_streams(None, CUDA) == 1
    assert resolve_streams(3, CPU) == 3
    with pytest.raises(ValueError, match="at least 1"):
        resolve_streams(0, CPU)
    with pytest.raises(ValueError, match="CPU only"):
        resolve_streams(2, CUDA)


def test_run_streams_keeps_the_order_splits_the_threads_and_restores_them():
    seen = {}
    lock = threading.Lock()

    def work(span):
        with lock:
            seen[span] = (threading.current_thread().name, torch.get_num_threads())
        return span[0] * 10

    spans = [(i, i + 1) for i in range(7)]
    with intra_op_threads(2):
        assert run_streams(work, spans, 2) == [i * 10 for i in range(7)]
        assert torch.get_num_threads() == 2  # restored
    assert {threads for _, threads in seen.values()} == {1}  # 2 threads / 2 streams
    assert all(name.startswith("jcs-stream") for name, _ in seen.values())
    # one stream: in the caller's thread, with the caller's threads
    seen.clear()
    with intra_op_threads(2):
        run_streams(work, spans[:2], 1)
    assert {name for name, _ in seen.values()} == {threading.current_thread().name}
    assert {threads for _, threads in seen.values()} == {2}


def test_two_streams_really_overlap_and_never_outnumber_the_threads():
    barrier = threading.Barrier(2, timeout=10)  # passes only when two spans run at once

    def work(span):
        barrier.wait()
        return span[0]

    with intra_op_threads(2):
        assert run_streams(work, [(0, 1), (1, 2), (2, 3), (3, 4)], 2) == [0, 1, 2, 3]
    # one thread: one stream, in the caller's thread, whatever was asked for
    names = []
    with intra_op_threads(1):
        run_streams(lambda span: names.append(threading.current_thread().name), [(0, 1), (1, 2)], 4)
    assert names == [threading.current_thread().name] * 2
    assert effective_streams(4, n_batches=3, threads=8) == 3
    assert effective_streams(4, n_batches=10, threads=2) == 2
    assert effective_streams(2, n_batches=0, threads=2) == 1


def test_run_streams_raises_the_error_of_a_stream_and_restores_the_threads():
    def work(span):
        if span[0] == 3:
            raise RuntimeError("slice 3 is broken")
        return span[0]

    with intra_op_threads(2):
        with pytest.raises(RuntimeError, match="slice 3 is broken"):
            run_streams(work, [(i, i + 1) for i in range(5)], 2)
        assert torch.get_num_threads() == 2


def test_predict_gives_the_same_outputs_with_two_streams():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 1, 1)).eval()
    inputs = torch.rand(7, 3, 24, 24)
    with intra_op_threads(2):
        one = predict(model, inputs, 2, device="cpu", streams=1)
        two = predict(model, inputs, 2, device="cpu", streams=2,
                      output=lambda out: out.float())  # output= runs inside each stream
    assert two.shape == one.shape == (7, 1, 24, 24)
    torch.testing.assert_close(two, one, rtol=1e-5, atol=1e-6)
    assert not two.requires_grad  # inference_mode entered inside the workers too
    with pytest.raises(ValueError, match="CPU only"):
        predict(model, inputs, 2, device="meta", streams=2)


def test_the_pipeline_records_its_streams_and_gives_the_same_diagnosis(tmp_path):
    torch.manual_seed(0)
    slices = np.random.default_rng(0).integers(0, 255, (5, 64, 64), dtype=np.uint8)
    pipe = DiagnosisPipeline(**TINY, streams=1)
    with intra_op_threads(2):
        probs_one = pipe.classify(slices)
        masks_one = pipe.segment(slices, [0, 2, 4], probabilities=True)
        pipe.config.streams = 2
        assert pipe.streams("classifier") == pipe.streams("segmenter") == 2
        probs_two = pipe.classify(slices)
        masks_two = pipe.segment(slices, [0, 2, 4], probabilities=True)
        pipe.config.streams = None
        assert pipe.streams("segmenter") == 1  # the default
    np.testing.assert_allclose(probs_two, probs_one, rtol=1e-5, atol=1e-6)
    for i in (0, 2, 4):
        np.testing.assert_allclose(masks_two[i], masks_one[i], rtol=1e-5, atol=1e-6)
    summary_streams = None
    with intra_op_threads(2):
        pipe.config.streams = 2
        summary = pipe.run(_volume(slices), tmp_path / "run", positive_override=[0, 1, 2])
        summary_streams = summary["streams"]
    # 5 slices in 2 classifier batches of 4; 3 + top-2 segmented slices in batches of 1
    assert summary_streams == {"classifier": 2, "segmenter": 2}
    pipe.segmenter_info["int8"] = True  # an int8 program runs one stream
    assert pipe.streams("segmenter") == 1


def _volume(slices):
    from jcs.data import Volume

    return Volume(slices.astype(np.float32) * 4 - 1000, (2.0, 0.7, 0.7), "HU", "synthetic",
                  [str(i) for i in range(len(slices))])


def test_an_int8_segmenter_with_streams_warns(monkeypatch):
    from jcs.diagnosis import pipeline as pipeline_module

    def fake_int8(self, config):
        self.segmenter_info = {"name": "jcs-seg", "int8": True}
        self.segmenter, self.seg_size, self.seg_batch_size = object(), 64, 1

    monkeypatch.setattr(pipeline_module, "is_int8_file", lambda path: True)
    monkeypatch.setattr(pipeline_module.DiagnosisPipeline, "_load_int8_segmenter", fake_int8)
    pipe = DiagnosisPipeline(**TINY, streams=2, segmenter="fake.pt2")
    assert any("int8 segmenter runs one stream" in w for w in pipe.warnings)
    assert pipe.streams("segmenter") == 1 and pipe.streams("classifier") == 2


def test_bad_streams_are_refused_when_the_pipeline_is_made():
    with pytest.raises(ValueError, match="at least 1"):
        DiagnosisPipeline(**TINY, streams=0)
    with pytest.raises(ValueError, match="--compile runs one stream"):
        DiagnosisPipeline(**TINY, streams=2, compile=True)


def test_cli_refuses_zero_streams(tmp_path, capsys):
    from jcs.cli import main

    volume = tmp_path / "vol"
    volume.mkdir()
    code = main(["diagnose", str(volume), "--out", str(tmp_path / "out"), "--random-weights",
                 "--streams", "0", "--classifier-model", "jcs-classifier-res2net50",
                 "--size", "64", "--seg-size", "64"])
    assert code == 2
    assert "streams must be at least 1" in capsys.readouterr().err


def test_streams_probe_table_reads_the_committed_probe(tmp_path):
    import json
    from pathlib import Path

    from jcs.report import ResultsNotFoundError, streams_probe

    results = Path(__file__).resolve().parents[1] / "results"
    data = json.loads((results / "diagnostics" / "cpu_streams_probe.json").read_text())
    df = streams_probe(results)
    assert len(df) == sum(len(run["rows"]) for run in data["runs"])
    first = data["runs"][0]["rows"][0]
    assert df.iloc[0]["median (s per slice)"] == first["median"]
    assert df.iloc[0]["round 1"] == first["seconds_per_slice"][0]
    assert data["git"]["sha"][:7] in df.attrs["ours"]
    with pytest.raises(ResultsNotFoundError, match="probe_cpu_streams.py"):
        streams_probe(tmp_path)
