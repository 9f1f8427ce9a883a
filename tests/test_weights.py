"""Checkpoints: round trip, strict key/shape checks with readable errors, weights_only loading."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from jcs.models import CheckpointError, load_checkpoint, save_checkpoint
from jcs.models.layers import make_norm


def tiny(norm: str = "frozen", width: int = 4) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, width, 3), make_norm(width, norm), nn.ReLU(), nn.Conv2d(width, 1, 1))


def test_round_trip_with_optimizer_and_extra(tmp_path):
    torch.manual_seed(0)
    model = tiny("bn")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(2, 3, 8, 8)).mean().backward()
    optimizer.step()
    path = save_checkpoint(tmp_path / "sub" / "ckpt.pth", model, optimizer, epoch=3, history=[0.5, 0.25])
    assert path.is_file()

    clone = tiny("bn")
    payload = load_checkpoint(path, clone)
    for (k, a), b in zip(model.state_dict().items(), clone.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)
    assert payload["epoch"] == 3 and payload["history"] == [0.5, 0.25]
    assert payload["model_name"] == "Sequential"
    fresh = torch.optim.Adam(clone.parameters(), lr=1e-3)
    fresh.load_state_dict(payload["optimizer"])
    assert fresh.state_dict()["state"][0]["step"] == 1


def test_architecture_argument_order_and_payload_only(tmp_path):
    model = tiny()
    path = save_checkpoint(tmp_path / "a.pth", model)
    other = tiny()
    load_checkpoint(other, path)  # ARCHITECTURE.md order
    torch.testing.assert_close(other[0].weight, model[0].weight)
    assert set(load_checkpoint(path)) == {"model", "model_name"}


def test_wrong_checkpoint_names_the_keys(tmp_path):
    path = save_checkpoint(tmp_path / "wide.pth", tiny(width=4))
    expected = r"wide\.pth.*7 shape mismatches: 0\.weight \(file \(4, 3, 3, 3\), model \(8, 3, 3, 3\)\)"
    with pytest.raises(CheckpointError, match=expected):
        load_checkpoint(path, tiny(width=8))
    longer = nn.Sequential(*tiny(), nn.Conv2d(1, 1, 1))
    with pytest.raises(CheckpointError, match=r"2 missing keys: 4\.weight, 4\.bias"):
        load_checkpoint(path, longer)
    with pytest.raises(CheckpointError, match=r"unexpected keys: 3\.weight"):
        load_checkpoint(path, tiny()[:3])
    load_checkpoint(path, longer, strict=False)  # non-strict: only shared keys must agree


def test_bare_state_dicts_dataparallel_prefix_and_bn_counter(tmp_path):
    """A bare (or ``module.``-prefixed) state dict loads, and ``num_batches_tracked`` is not
    required between frozen and trainable BN."""
    torch.manual_seed(1)
    source = tiny("bn")
    path = tmp_path / "bare.pth"
    torch.save({f"module.{k}": v for k, v in source.state_dict().items()}, path)
    target = tiny("frozen")
    load_checkpoint(path, target)
    torch.testing.assert_close(target[1].running_var, source[1].running_var)
    back = tiny("bn")
    load_checkpoint(save_checkpoint(tmp_path / "frozen.pth", target), back)
    torch.testing.assert_close(back[1].weight.data, source[1].weight.data)


def test_missing_and_unsafe_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth not found"):
        load_checkpoint(tmp_path / "nope.pth", tiny())
    unsafe = tmp_path / "unsafe.pth"
    torch.save({"model": tiny().state_dict(), "object": nn.ReLU()}, unsafe)  # needs pickle
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        load_checkpoint(unsafe, tiny())
