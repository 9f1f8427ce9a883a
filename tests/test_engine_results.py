"""jcs.engine.results: file naming, JSON writing (NaN → null, atomic), schema validation."""
import json

import pytest

from jcs.engine.profiles import get_profile, run_fields
from jcs.engine.results import (COMMON_KEYS, SCHEMA, SCHEMA_VERSION, TRAIN_KEYS, finished,
                                load_result, load_results, predictions_dir, result_path,
                                write_result)


def _result(name="jcs-seg", seed=0, **changes):
    r = {k: None for k in COMMON_KEYS + TRAIN_KEYS}
    r.update(schema=SCHEMA, schema_version=SCHEMA_VERSION, kind="train", profile="smoke",
             experiment="table5", name=name, seed=seed, config_hash="abc",
             metrics={"dice": float("nan"), "iou": 0.5})
    r.update(changes)
    return r


def test_paths():
    assert result_path("res", "cpu", "table5", "jcs-seg").as_posix() == "res/cpu/table5/jcs-seg.json"
    assert result_path("res", "cpu", "table5", "jcs-seg", seed=2).name == "jcs-seg.seed2.json"
    assert predictions_dir(result_path("r", "cpu", "t", "unet")).name == "unet_predictions"


def test_write_then_load_roundtrip(tmp_path):
    path = write_result(result_path(tmp_path, "smoke", "table5", "jcs-seg"), _result())
    raw = json.loads(path.read_text())
    assert raw["metrics"] == {"dice": None, "iou": 0.5}  # NaN is not valid JSON
    loaded = load_result(path)
    assert loaded["path"] == str(path) and loaded["name"] == "jcs-seg"
    assert not list(path.parent.glob(".*.tmp"))
    assert not finished(path, {"profile": {}}, "segmentation")  # no config stored
    assert not finished(tmp_path / "missing.json", {"profile": {}}, "segmentation")


def test_finished_ignores_fields_that_cannot_change_the_run(tmp_path):
    """A results file written with the whole profile (before configs were trimmed) stays current
    for a segmentation model when only the classifier's recipe or selection changes."""
    full = get_profile("cpu").to_dict()
    del full["description"]
    config = {"profile": full, "model": "jcs-seg", "seed": 0}
    path = write_result(result_path(tmp_path, "cpu", "table5", "jcs-seg"), _result(config=config))
    new = get_profile("cpu", {"val_metric": "auc", "cls.epochs": 3}).to_dict()
    assert finished(path, {**config, "profile": run_fields(new, "segmentation")}, "segmentation")
    changed = get_profile("cpu", {"seg.epochs": 3}).to_dict()
    assert not finished(path, {**config, "profile": run_fields(changed, "segmentation")},
                        "segmentation")
    cls = {**config, "model": "jcs-classifier"}
    path = write_result(result_path(tmp_path, "cpu", "classification", "c"), _result(config=cls))
    assert not finished(path, {**cls, "profile": run_fields(new, "classification")},
                        "classification")
    assert finished(path, {**cls, "profile": run_fields(changed, "classification")},
                    "classification")
    assert "val_metric" not in run_fields(full, "segmentation")
    assert "seg" not in run_fields(full, "classification")
    with pytest.raises(ValueError, match="kind must be one of"):
        run_fields(full, "table4")


def test_load_results_sorted_and_filtered(tmp_path):
    for name, seed in (("unet", 0), ("dss", 1), ("dss", 0)):
        write_result(result_path(tmp_path, "smoke", "table7", name, seed), _result(name, seed))
    write_result(result_path(tmp_path, "cpu", "table7", "dss"), _result("dss"))
    (tmp_path / "smoke" / "table7" / "notes.json").write_text("[1, 2]")  # ignored: not a result
    found = [(r["name"], r["seed"]) for r in load_results(tmp_path, "smoke")]
    assert found == [("dss", 0), ("dss", 1), ("unet", 0)]
    assert len(load_results(tmp_path)) == 4
    assert load_results(tmp_path, "smoke", "table5") == []


def test_missing_key_or_wrong_version_is_an_error(tmp_path):
    bad = _result()
    del bad["loss"]
    path = write_result(tmp_path / "bad.json", bad)
    with pytest.raises(ValueError, match="lacks key.*loss"):
        load_result(path)
    path = write_result(tmp_path / "old.json", _result(schema_version=0))
    with pytest.raises(ValueError, match="schema_version"):
        load_result(path)


def test_write_probe_adds_provenance(tmp_path):
    """Diagnostic probes write their record with the script, args, git state, time and CPU."""
    import json
    import time

    from jcs.engine.provenance import write_probe

    out = tmp_path / "diag" / "probe.json"
    full = write_probe(out, "scripts/x.py", {"seed": 1}, {"runs": [{"auc": 0.5}]}, time.perf_counter() - 2.0)
    stored = json.loads(out.read_text())
    assert stored == full and stored["runs"] == [{"auc": 0.5}] and stored["args"] == {"seed": 1}
    assert stored["script"] == "scripts/x.py" and "sha" in stored["git"] and stored["seconds"] >= 2.0
    assert stored["hardware"]["type"] == "cpu" and stored["hardware"]["torch_threads"] >= 1


def test_code_state_is_the_code_the_process_imported(monkeypatch):
    """A commit that lands while a long `jcs reproduce` runs does not change the code it runs:
    results record the state at import, and where HEAD is now."""
    from jcs.engine import provenance

    monkeypatch.setattr(provenance, "_AT_IMPORT", {"sha": "a" * 40, "dirty": False})
    monkeypatch.setattr(provenance, "git_state", lambda: {"sha": "b" * 40, "dirty": True})
    assert provenance.code_state() == {"sha": "a" * 40, "dirty": False,
                                       "head_now": "b" * 40, "dirty_now": True}
    monkeypatch.setattr(provenance, "git_state", lambda: {"sha": "a" * 40, "dirty": False})
    assert provenance.code_state() == {"sha": "a" * 40, "dirty": False}


def _proc_cpu_flags():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def test_device_info_records_the_cpu_features_that_set_the_speed():
    """Two VMs both named "AMD EPYC" (AVX2 only; AVX512-BF16) train at 5x different speeds: the
    results record the CPU's features, checked against the kernel's /proc/cpuinfo flags."""
    import torch

    from jcs.engine.provenance import CPU_FEATURES, device_info

    info = device_info(torch.device("cpu"))
    assert info["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert set(info["cpu_features"]) <= set(CPU_FEATURES)
    flags = _proc_cpu_flags()
    if not flags:
        pytest.skip("no /proc/cpuinfo flags to check against")
    # torch's names -> the kernel's names of the same instructions
    for torch_name, kernel_name in (("avx2", "avx2"), ("avx512_f", "avx512f"),
                                    ("avx512_bf16", "avx512_bf16"), ("avx512_vnni", "avx512_vnni"),
                                    ("amx_bf16", "amx_bf16")):
        assert (torch_name in info["cpu_features"]) == (kernel_name in flags), torch_name


def test_hardware_label_names_the_cpu_features():
    """The label of a CPU run names its best matrix feature; files from before it was recorded
    keep the plain label; bench files fall back to torch's CPU capability."""
    from jcs.report.results import cpu_isa_label, hardware_label
    from jcs.report.runtime import _bench_device

    def run(**device):
        return {"environment": {"device": {"type": "cpu", "name": "AMD EPYC", "cpu_count": 2, **device}}}

    assert cpu_isa_label({"cpu_features": ["avx2", "avx512_f", "amx_tile", "amx_bf16"]}) == "AMX"
    assert cpu_isa_label({"cpu_features": ["avx2", "avx512_f", "avx512_bf16"]}) == "AVX512-BF16"
    assert cpu_isa_label({"cpu_features": ["avx2", "avx512_f"]}) == "AVX-512"
    assert cpu_isa_label({"cpu_features": [], "cpu_capability": "AVX2"}) == "AVX2"
    assert cpu_isa_label({"cpu_capability": "AVX512"}) == "AVX-512"
    assert cpu_isa_label({}) is None
    old, new = run(), run(cpu_features=["avx2", "avx512_f", "avx512_bf16"], cpu_capability="AVX512")
    assert hardware_label([old]) == "AMD EPYC (2 cores)"
    assert hardware_label([old, new]) == "AMD EPYC (2 cores); AMD EPYC (2 cores, AVX512-BF16)"
    gpu = {"environment": {"device": {"type": "cuda", "name": "NVIDIA H200", "cpu_count": 16,
                                      "cpu_features": ["avx2"]}}}
    assert hardware_label([gpu]) == "NVIDIA H200"
    bench = {"device": {"type": "cpu", "name": "AMD EPYC", "cpu_count": 2},
             "provenance": {"cpu_capability": "AVX2"}}
    assert _bench_device(bench) == "AMD EPYC (2 cores, AVX2)"


def test_backfill_infers_the_machine_only_where_the_precision_decides_it():
    """scripts/backfill_cpu_features.py: AMD EPYC + fp32 under precision='auto' was the AVX2 EPYC,
    + bf16 the AVX512-BF16 one; other CPUs, files that already record features and GPU runs stay."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "backfill_cpu_features.py"
    spec = importlib.util.spec_from_file_location("backfill_cpu_features", path)
    backfill = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(backfill)
    epyc = {"type": "cpu", "cpu": "AMD EPYC", "cpu_count": 2}
    old = backfill.inferred({"device": dict(epyc), "precision": "fp32"})
    assert old["cpu_features"] == ["avx2"] and "inferred" in old["cpu_features_source"]
    assert "avx512_bf16" in backfill.inferred({"device": dict(epyc), "precision": "bf16"})["cpu_features"]
    assert backfill.inferred({"device": {**epyc, "cpu": "Intel(R) Xeon(R) Processor"},
                              "precision": "bf16"}) is None
    assert backfill.inferred({"device": {**epyc, "cpu_features": []}, "precision": "fp32"}) is None
    assert backfill.inferred({"device": {**epyc, "type": "cuda"}, "precision": "bf16"}) is None
