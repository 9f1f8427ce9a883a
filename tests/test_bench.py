"""Benchmark (jcs.bench, quick mode) and the optimised inference path (jcs.inference): BN folding
is exact in fp32, bf16 stays within bf16 tolerance of fp32 eager."""
import copy
import json
import platform
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn as nn

from jcs.bench import benchmark, format_table, parameter_count, targets
from jcs.engine.runtime import resolve_precision as engine_precision
from jcs.inference import (CompiledModel, bf16_supported, fold_batchnorm, inference_context,
                           optimize_for_inference, predict, prepare_input, resolve_precision)
from jcs.models import create_model
from jcs.models.layers import FrozenBatchNorm2d

BF16 = bf16_supported(torch.device("cpu"))


pytestmark = pytest.mark.usefixtures("one_thread")


def _randomise_norms(model):
    """Non-trivial BN statistics and affine terms, so that folding has something to fold."""
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, (FrozenBatchNorm2d, nn.BatchNorm2d)):
            n = module.num_features
            module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
            module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
            module.weight.data.copy_(0.5 + torch.rand(n, generator=generator))
            module.bias.data.copy_(0.1 * torch.randn(n, generator=generator))
    return model


def _count_norms(model):
    return sum(isinstance(m, (FrozenBatchNorm2d, nn.BatchNorm2d)) for m in model.modules())


@pytest.mark.parametrize("norm", ["frozen", "bn"])
def test_folded_bn_equals_unfolded_fp32(norm):
    torch.manual_seed(0)
    model = _randomise_norms(create_model("jcs-seg-base", norm=norm)).eval()
    x = torch.randn(2, 3, 64, 64)
    folded = copy.deepcopy(model)
    assert fold_batchnorm(folded) == _count_norms(model) == 13
    assert _count_norms(folded) == 0
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), atol=1e-5, rtol=0)


def test_fold_skips_a_conv_whose_output_is_used_elsewhere():
    class PreNormSkip(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.bn = FrozenBatchNorm2d(4)

        def forward(self, x):
            y = self.conv(x)
            return self.bn(y) + y  # folding would change the second term

    model = _randomise_norms(PreNormSkip()).eval()
    x = torch.randn(1, 3, 8, 8)
    expected = model(x).detach()
    assert fold_batchnorm(model, x) == 0
    torch.testing.assert_close(model(x), expected)


def test_fold_handles_resnet_blocks_of_the_classifier():
    torch.manual_seed(0)
    model = _randomise_norms(create_model("jcs-classifier-res2net50")).eval()
    x = torch.randn(2, 3, 64, 64)
    folded = copy.deepcopy(model)
    assert fold_batchnorm(folded) == _count_norms(model)
    with torch.no_grad():
        expected, got = model(x), folded(x)
    torch.testing.assert_close(got, expected, atol=1e-4 * expected.abs().max().item(), rtol=1e-4)


@pytest.mark.skipif(not BF16, reason="no native bf16 on this CPU")
@pytest.mark.parametrize("precision", ["bf16", "bf16-true"])
def test_optimised_probabilities_match_fp32_eager(precision):
    torch.manual_seed(0)
    seg = create_model("jcs-seg").eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        expected = seg(x)
    fast = optimize_for_inference(copy.deepcopy(seg), "cpu", precision=precision)
    got = predict(fast, x, 2, device="cpu", precision=precision)
    assert got.dtype == torch.float32 and got.shape == expected.shape
    assert (got - expected).abs().max() < 0.05

    cls = create_model("jcs-classifier-res2net50").eval()
    with torch.no_grad():  # random frozen-BN nets have huge logits: scale the head to O(1)
        cls.fc.weight.div_(cls(x).abs().max())
        expected = torch.softmax(cls(x), dim=1)[:, 1]
    fast = optimize_for_inference(copy.deepcopy(cls), "cpu", precision=precision)
    with inference_context(torch.device("cpu"), precision):
        got = torch.softmax(fast(prepare_input(x, torch.device("cpu"), precision)).float(), dim=1)[:, 1]
    assert (got - expected).abs().max() < 0.05


def test_parameter_count_on_meta_device():
    assert parameter_count("jcs-classifier") == 43_061_828  # jcs_official.md §4.1


def test_quick_benchmark_writes_valid_json(tmp_path):
    out = tmp_path / "bench" / "host.json"
    result = benchmark(["jcs-seg"], quick=True, out=out, log=lambda _: None)
    data = json.loads(out.read_text())
    prov = data["provenance"]
    assert prov["versions"]["torch"] == torch.__version__
    assert "sha" in prov["git"] and prov["device"]["cpu"] and prov["device"]["torch_threads"] == 1
    assert prov["date"]
    record = data["models"]["jcs-seg"]["sizes"]["64"]
    assert record["train_fp32"]["seconds"] > 0 and record["train_optimised"]["images_per_s"] > 0
    inference = record["inference"]
    assert inference["fp32-eager"]["per_slice_s"] > 0
    for precision in data["precisions"]:
        run = inference[f"optimised-{precision}"]
        assert run["speedup_vs_fp32_eager"] > 0 and run["max_abs_diff_vs_fp32"] < 0.05
    patient = data["patient"]
    assert patient["n_slices"] == 8 and patient["seconds"] > 0 and patient["warmup_slices"] == 8
    assert set(patient["timings_s"]) >= {"read", "classify", "segment", "explain", "write"}
    assert data["patients"][0]["slices"] == 8  # the list read by jcs.report.runtime_table
    assert set(data["targets"]) == {"jcs_seg_speedup", "patient_time"}
    assert patient["background_s"]["lung_mask"] > 0
    table = format_table(result)
    assert "jcs-seg" in table and "patient" in table


def test_patient_only_benchmark_and_the_gpu_patient_target(tmp_path):
    result = benchmark(quick=True, per_model=False, out=tmp_path / "p.json", log=lambda _: None)
    assert result["models"] == {} and result["patient"]["n_slices"] == 8
    assert result["patient"]["model_compute_projection_s"] is None
    assert set(result["targets"]) == {"patient_time"}  # no jcs-seg timing, no speed-up target
    assert result["targets"]["patient_time"]["target"] == 120.0
    on_gpu = {**result, "device": {"type": "cuda"}}
    on_gpu["patient"] = {**result["patient"], "seconds": 1.5}
    on_gpu["patient_compiled"] = {**result["patient"], "seconds": 2.5, "compiled": True}
    held = targets(on_gpu, quick=True)
    assert held["patient_time"] == {
        "n_slices": 8, "seconds": 1.5, "segmenter_precision": result["patient"]["segmenter_precision"],
        "compiled": False, "target": 2.0, "met": True}
    assert held["patient_time_compiled"]["compiled"] and not held["patient_time_compiled"]["met"]


def test_precision_names_shared_by_training_and_inference():
    cpu = torch.device("cpu")
    native = bf16_supported(cpu)
    assert resolve_precision("auto", cpu) == ("bf16-true" if native else "fp32")
    assert engine_precision("auto", cpu) == ("bf16" if native else "fp32")  # autocast
    assert engine_precision("bf16", cpu) == resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(ValueError, match="training precision must be 'auto' or one of fp32, bf16"):
        engine_precision("bf16-true", cpu)
    with pytest.raises(ValueError, match="autocast"):
        resolve_precision("autocast", cpu)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="mallopt is glibc's")
def test_keep_freed_memory_reuses_large_buffers():
    """After keep_freed_memory(), a freed 256 MB buffer is reused: allocating it again can cost
    few page faults (glibc's default maps it anew every time: ~65,000 faults of 4 KB). In a fresh
    process, so that the heap state of earlier tests does not matter."""
    script = textwrap.dedent("""
        import resource, sys, torch
        from jcs.inference import keep_freed_memory

        def faults():
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            buffer = torch.ones(64 * 1024 * 1024)  # 256 MB, written in full
            del buffer
            return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

        default = [faults() for _ in range(3)]
        kept = keep_freed_memory()
        # the heap grows to hold the buffer, then reuses it (every other time where the
        # alignment of the freed block does not fit the next request)
        tuned = [faults() for _ in range(6)]
        print(default, kept, tuned)
        sys.exit(0 if kept and min(default) > 50_000 and min(tuned[1:]) < 10_000 else 1)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("channels_last", [False, True])
def test_compiled_model_pads_short_batches_and_chunks_long_ones(channels_last):
    """Every batch reaches the compiled graph at the one batch size it was made for, in the
    input's memory format; outputs equal the model's (backend "eager": the wrapper's logic
    without Inductor's compile time)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten()).eval()
    compiled = CompiledModel(model, batch_size=3, backend="eager")
    seen, graph = [], compiled._run
    object.__setattr__(compiled, "_run", lambda x: seen.append(
        (x.shape[0], x.is_contiguous(memory_format=torch.channels_last))) or graph(x))
    for n in (1, 3, 5, 7):
        x = torch.randn(n, 3, 8, 8)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            assert torch.allclose(compiled(x), model(x), atol=1e-6), n
    assert len(seen) == 1 + 1 + 2 + 3 and seen[0] == (3, channels_last)
    assert set(seen) == {(3, channels_last)}
    with pytest.raises(ValueError, match="empty batch"):
        compiled(torch.zeros(0, 3, 8, 8))
