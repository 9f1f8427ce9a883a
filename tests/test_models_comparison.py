"""The Table VII comparison models (U-Net, DSS, PoolNet, EGNet): sizes against
models_and_metrics.md §0, the train/eval output contract of ARCHITECTURE.md, gradients, losses,
bf16 autocast and ImageNet-weight loading. Random init only; nothing is downloaded."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

import jcs.models.dss  # noqa: F401  (importing registers the models)
import jcs.models.egnet  # noqa: F401
import jcs.models.poolnet  # noqa: F401
import jcs.models.unet  # noqa: F401
from jcs.models.registry import create_model

# name: (exact parameter count, table value in M (models_and_metrics.md §0), GMACs at 512²)
SIZES = {
    "unet": (31_043_521, 31.044, 192.7),
    "unet-bilinear": (17_267_393, 17.267, 159.9),
    "dss": (62_225_505, 62.226, 251.4),
    "poolnet": (52_512_705, 52.513, 254.8),
    # the official EGNet also builds an unused 1×1 conv 256→128 (32,768 params), left out here
    "egnet": (108_035_658, 108.068, 627.2),
}
UNUSED_EGNET_PARAMS = 256 * 128
MODELS = list(SIZES)
VGG_MODELS = ["dss", "poolnet", "egnet"]
# small inputs giving odd feature sizes after pooling (72×60 → … 9×8, 5×4, 3×2); PoolNet's
# 1/16 map must hold its 8×8 FAM pool, hence larger ones (113 → 57, 29, 15, 8)
SHAPE_SIZES = {name: [(48, 48), (72, 60)] for name in MODELS}
SHAPE_SIZES["poolnet"] = [(113, 113), (128, 120)]
GRAD_SIZE = {name: (40, 36) for name in MODELS}
GRAD_SIZE["poolnet"] = (120, 113)
GRAD_BATCH = {"unet": 2, "unet-bilinear": 2}  # BN statistics over >1 image; others batch 1


@pytest.fixture(scope="module", params=MODELS)
def named_model(request):
    torch.manual_seed(0)
    return request.param, create_model(request.param)


def _sal_logits(outputs):
    """The saliency logits of a training-mode output (EGNet: the "sal" list)."""
    return outputs["sal"] if isinstance(outputs, dict) else outputs


def _all_logits(outputs):
    return outputs["sal"] + outputs["edge"] if isinstance(outputs, dict) else outputs


def _mask(n, h, w):
    mask = torch.zeros(n, 1, h, w)
    mask[:, :, h // 4 : h // 2 + 3, w // 3 : w // 2 + 5] = 1
    return mask


@pytest.mark.parametrize("name", MODELS)
def test_parameter_count_and_flops(name):
    count, table_m, gmacs = SIZES[name]
    with torch.device("meta"):
        model = create_model(name).eval()
        x = torch.empty(1, 3, 512, 512)
    n = sum(p.numel() for p in model.parameters())
    assert n == count
    official = n + (UNUSED_EGNET_PARAMS if name == "egnet" else 0)
    assert round(official / 1e6, 3) == table_m
    with FlopCounterMode(display=False) as counter:
        model(x)
    assert round(counter.get_total_flops() / 2e9, 1) == gmacs


def test_named_outputs(named_model):
    name, model = named_model
    n_sal, n_edge = {"dss": (7, 0), "egnet": (9, 1)}.get(name, (1, 0))
    for h, w in SHAPE_SIZES[name]:
        x = torch.randn(1, 3, h, w)
        with torch.no_grad():
            model.train()
            outputs = model(x)
            model.eval()
            prob = model(x)
        assert isinstance(outputs, dict) == (name == "egnet")
        if n_edge:
            assert len(outputs["edge"]) == n_edge
        assert len(_sal_logits(outputs)) == n_sal
        for logits in _all_logits(outputs):
            assert logits.shape == (1, 1, h, w) and torch.isfinite(logits).all()
        assert prob.shape == (1, 1, h, w)
        assert torch.isfinite(prob).all() and prob.min() >= 0 and prob.max() <= 1
        sal = _sal_logits(outputs)
        if name == "dss":  # released notebook: mean of sides 3, 4, 5 and the fusion
            expected = torch.stack([sal[i].sigmoid() for i in (2, 3, 4, 6)]).mean(0)
        elif name in ("poolnet", "egnet"):
            expected = sal[-1].sigmoid()
        else:  # U-Net: BN switches to running statistics in eval mode
            continue
        torch.testing.assert_close(prob, expected)


def test_gradients_reach_every_parameter(named_model):
    name, model = named_model
    h, w = GRAD_SIZE[name]
    model.train()
    model.zero_grad(set_to_none=True)
    n = GRAD_BATCH.get(name, 1)
    loss = model.criterion()(model(torch.randn(n, 3, h, w)), _mask(n, h, w))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    dead = [k for k, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert dead == []
    model.zero_grad(set_to_none=True)


def test_bf16_autocast_channels_last(named_model):
    name, model = named_model
    h, w = GRAD_SIZE[name]
    model.train().to(memory_format=torch.channels_last)
    x = torch.randn(1, 3, h, w).to(memory_format=torch.channels_last)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = model(x)
        loss = model.criterion()(outputs, _mask(1, h, w))
    for logits in _all_logits(outputs):
        assert logits.shape == (1, 1, h, w) and torch.isfinite(logits.float()).all()
    assert torch.isfinite(loss)
    model.to(memory_format=torch.contiguous_format)


@pytest.mark.parametrize("name", ["dss", "poolnet"])
def test_loss_option(name):
    from jcs.losses import BCEDiceLoss, SumBCELoss

    with torch.device("meta"):
        assert isinstance(create_model(name).criterion(), SumBCELoss)
        assert isinstance(create_model(name, loss="jcs").criterion(), BCEDiceLoss)
        with pytest.raises(ValueError, match="loss must be"):
            create_model(name, loss="dice")


def test_egnet_jcs_loss_adds_edge_term():
    from jcs.losses import BCEDiceLoss
    from jcs.models.egnet import EGNetJCSLoss

    mask = _mask(1, 16, 16)
    sal = [torch.randn(1, 1, 16, 16) for _ in range(3)]
    edge = [torch.randn(1, 1, 16, 16)]
    full = EGNetJCSLoss()({"sal": sal, "edge": edge}, mask)
    assert full > BCEDiceLoss()(sal, mask)


def test_dss_fusion_starts_as_mean():
    model = create_model("dss")
    torch.testing.assert_close(model.fuse.weight, torch.full((1, 6, 1, 1), 1 / 6))


def test_poolnet_rejects_too_small_input():
    with torch.device("meta"), pytest.raises(ValueError, match="at least 113"):
        create_model("poolnet")(torch.randn(1, 3, 112, 128))


@pytest.fixture(scope="module")
def vgg16_file(tmp_path_factory):
    """A random torchvision vgg16() state dict, conv part only (the part the models read)."""
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(1)
    features = torchvision.models.vgg16().features.state_dict()
    path = tmp_path_factory.mktemp("weights") / "vgg16.pth"
    torch.save({f"features.{k}": v for k, v in features.items()}, path)
    return path


@pytest.mark.parametrize("name", VGG_MODELS)
def test_pretrained_from_local_file(name, vgg16_file):
    state = torch.load(vgg16_file, weights_only=True)
    model = create_model(name, pretrained=vgg16_file)
    convs = [layer.conv for layer in model.body.conv_layers()]
    indices = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]  # convs in torchvision features
    for conv, i in zip(convs, indices):
        torch.testing.assert_close(conv.weight, state[f"features.{i}.weight"])
        torch.testing.assert_close(conv.bias, state[f"features.{i}.bias"])


def test_pretrained_errors(tmp_path):
    torch.save({"weight": torch.zeros(1)}, tmp_path / "other.pth")
    with torch.device("meta"):  # the errors come before any weight is copied
        with pytest.raises(FileNotFoundError, match="no such file"):
            create_model("dss", pretrained=tmp_path / "missing.pth")
        with pytest.raises(KeyError, match="not a torchvision vgg16 state dict"):
            create_model("poolnet", pretrained=tmp_path / "other.pth")
        with pytest.raises(ValueError, match="trained from scratch"):
            create_model("unet", pretrained=True)


def test_every_model_is_an_nn_module_with_criterion():
    for name in MODELS:
        with torch.device("meta"):
            model = create_model(name)
        assert isinstance(model, nn.Module) and isinstance(model.criterion(), nn.Module)
