"""jcs.engine: profiles and overrides, learning-rate schedules, RNG capture, Table IV thresholds
(no data, no training)."""
import random

import numpy as np
import pytest
import torch

from jcs.engine import get_profile, list_profiles, valid_keys
from jcs.engine.experiments import plan, scaled_thresholds
from jcs.engine.profiles import Recipe, config_hash
from jcs.engine.runtime import rng_state, set_rng_state, use_channels_last
from jcs.engine.schedule import learning_rate


def test_profiles_listed_and_paper_recipe():
    assert list_profiles() == ["paper", "gpu", "cpu", "cpu-pretrained", "smoke", "authors"]
    paper = get_profile("paper")
    seg, cls = paper.seg, paper.cls
    assert (seg.size, seg.epochs, seg.batch_size, seg.optimizer, seg.lr) == (512, 60, 1, "adam", 2.5e-5)
    assert (seg.betas, seg.weight_decay, seg.schedule, seg.poly_power, seg.warmup_iters) == (
        (0.9, 0.999), 1e-4, "poly", 0.9, 200)
    assert (cls.size, cls.epochs, cls.batch_size, cls.optimizer, cls.lr) == (224, 100, 256, "sgd", 0.1)
    assert (cls.momentum, cls.weight_decay, cls.schedule, cls.step_epochs, cls.step_gamma) == (
        0.9, 1e-4, "step", 30, 0.1)


def test_overrides_convert_strings_and_keep_the_rest():
    base = get_profile("cpu")
    p = get_profile("cpu", {"seg.lr": "1e-3", "precision": "fp32", "seg.betas": "0.8, 0.99",
                            "cls.max_train": "none", "channels_last": "false", "seg.epochs": "3"})
    assert p.seg.lr == 1e-3 and p.seg.betas == (0.8, 0.99) and p.seg.epochs == 3
    assert p.precision == "fp32" and p.channels_last is False and p.cls.max_train is None
    assert p.cls == base.cls and p.seg.size == base.seg.size
    assert get_profile("cpu", seg__lr=5e-4).seg.lr == 5e-4  # keyword form


def test_unknown_key_lists_valid_keys():
    with pytest.raises(KeyError) as err:
        get_profile("smoke", {"lr": 0.1})
    message = str(err.value)
    assert "'lr'" in message and "seg.lr" in message and "cls.lr" in message
    assert set(valid_keys()) >= {"seg.lr", "cls.epochs", "precision", "num_workers"}


@pytest.mark.parametrize("overrides, error", [
    ({"seg.epochs": "many"}, ValueError), ({"precision": "fp16"}, ValueError),
    ({"cls.optimizer": "rmsprop"}, ValueError), ({"seg.batch_size": 0}, ValueError),
])
def test_bad_values_are_rejected(overrides, error):
    with pytest.raises(error):
        get_profile("smoke", overrides)


def test_unknown_profile():
    with pytest.raises(KeyError, match="valid profiles: paper, gpu, cpu, cpu-pretrained, smoke"):
        get_profile("laptop")


def test_config_hash_is_order_independent_and_value_sensitive():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_poly_schedule_with_warmup_hand_computed():
    r = Recipe(size=8, epochs=2, batch_size=1, optimizer="adam", lr=1.0, schedule="poly",
               warmup_iters=4)
    # warm-up in epoch 0: 0.1 + 0.9 * (it + 1) / 4
    assert [learning_rate(r, 0, it, 10) for it in range(4)] == pytest.approx([0.325, 0.55, 0.775, 1.0])
    assert learning_rate(r, 0, 4, 10) == pytest.approx(0.6 ** 0.9)  # poly from iteration 4 on
    # warm-up applies in epoch 0 only (the authors' code), even for a small iteration index
    assert learning_rate(r, 1, 2, 10) == pytest.approx(0.8 ** 0.9)
    assert learning_rate(r, 1, 10, 10) == 0.0


def test_step_schedule():
    r = Recipe(size=8, epochs=100, batch_size=1, optimizer="sgd", lr=0.1, schedule="step",
               step_epochs=30)
    assert [learning_rate(r, e, 0, 1) for e in (0, 29, 30, 60, 99)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.001, 0.0001])


def test_rng_state_roundtrip_repeats_every_generator():
    gen = torch.Generator().manual_seed(3)
    state = rng_state(gen)

    def draw():
        return (random.random(), float(np.random.rand()), float(torch.rand(1)),
                float(torch.rand(1, generator=gen)))

    first = draw()
    set_rng_state(state, gen)
    assert draw() == first


def test_thresholds_scaled_per_patient_by_thickness_else_count():
    patients = [{"id": "a", "spacing": (2.0, 0.7, 0.7), "n_slices": 150},
                {"id": "b", "spacing": (2.0, 0.7, 0.7), "n_slices": 130},
                {"id": "c", "spacing": None, "n_slices": 60}]  # e.g. a PNG folder
    t = scaled_thresholds(get_profile("cpu"), patients)
    assert t["paper"] == [15, 20, 25, 30] and t["slice_mm"] == 2.0
    assert t["per_patient"]["a"] == {"scale": 0.5, "basis": "thickness", "slice_mm": 2.0}
    assert t["per_patient"]["c"] == {"scale": 0.2, "basis": "count", "slice_mm": None}
    assert t["scale"] == 0.5 and t["scaled"] == [7.5, 10.0, 12.5, 15.0]


def test_plan_order_classifiers_then_segmentation_then_joint():
    steps = [f"{s.experiment}/{s.name}" for s in plan(get_profile("smoke"))]
    assert steps[:2] == ["classification/jcs-classifier", "classification/jcs-classifier-pixel"]
    assert steps.index("table6/jcs-joint") > steps.index("table5/jcs-seg")
    assert {"table7/unet", "table7/dss", "table7/poolnet", "table7/egnet"} <= set(steps)
    assert steps[-2:] == ["table4/jcs-classifier", "table4/jcs-classifier-pixel"]


def test_evenly_spaced_subsets_and_task_names():
    from jcs.engine.datasets import evenly_spaced, fixed_names, task_of

    assert evenly_spaced(10, None) is None and evenly_spaced(3, 5) is None
    assert evenly_spaced(203, 4) == [0, 67, 135, 202]  # both ends: COVID first, non-COVID last
    assert fixed_names(["a", "b", "c", "d", "e"], 3) == ["a", "c", "e"]
    assert task_of("jcs-classifier-res2net50") == "classification"
    assert task_of("jcs-joint") == task_of("egnet") == "segmentation"


def test_channels_last_only_where_it_was_measured_faster():
    """Channels-last made fp32 training slower on a CPU (results/diagnostics/channels_last_training.json):
    the engine keeps it for bf16 and for GPUs only, and never when the profile does not ask."""
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert use_channels_last(True, cpu, "bf16") and use_channels_last(True, cpu, "bf16-true")
    assert not use_channels_last(True, cpu, "fp32")
    assert use_channels_last(True, cuda, "fp32") and use_channels_last(True, cuda, "bf16")
    assert not any(use_channels_last(False, d, p) for d in (cpu, cuda) for p in ("fp32", "bf16"))
