"""JCS models (classifier, single segmentation model, Table V ablations, joint model): exact sizes
against jcs_official.md §4.6 / models_and_metrics.md §0, the train/eval output contract of
ARCHITECTURE.md, gradients, bf16 + channels_last, local ImageNet-weight files and the joint
model's initialisation from trained parts. Random init only; nothing is downloaded."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torchvision

from jcs.models import (CheckpointError, JCSClassifier, JCSJoint, JCSSeg, Res2Net, create_model,
                        list_models, model_arguments, save_checkpoint)
from jcs.models.jcs_seg import AFF, EFM, PlainContext, PlainFusion, SqueezeExcite


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def seg() -> JCSSeg:
    torch.manual_seed(0)
    return create_model("jcs-seg")


@pytest.fixture(scope="module")
def cls50() -> JCSClassifier:
    torch.manual_seed(0)
    return create_model("jcs-classifier-res2net50")


@pytest.fixture(scope="module")
def joint() -> JCSJoint:
    torch.manual_seed(0)
    return create_model("jcs-joint")


def assert_every_parameter_has_gradient(model: nn.Module) -> None:
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not no_grad, f"no gradient reached {no_grad[:5]}"
    bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients in {bad[:5]}"
    # AFF's SE blocks have a hidden width of 1 (jcs_official.md §4.2): at random init its single
    # ReLU can be off for the whole batch, which zeroes that SE's weight gradients. Nothing else
    # may get an all-zero gradient.
    zero = [n for n, p in model.named_parameters() if p.grad is not None and not p.grad.any()]
    assert all(".se" in n for n in zero), f"all-zero gradients outside SE blocks: {zero}"


# --- sizes ------------------------------------------------------------------------------------

def test_registered_names():
    assert {"jcs-classifier", "jcs-classifier-res2net50", "jcs-seg", "jcs-seg-base",
            "jcs-seg-efm", "jcs-seg-aff", "jcs-joint"} <= set(list_models())


def test_model_arguments_and_typos():
    assert {"norm", "pretrained"} <= set(model_arguments("jcs-seg"))
    with pytest.raises(KeyError, match="Did you mean 'jcs-seg'"):
        model_arguments("jcs-sg")


@pytest.mark.parametrize("name, frozen, trainable_bn", [
    ("jcs-seg", 42_501_423, 42_509_871),
    ("jcs-seg-base", 34_226_757, 34_235_205),
    ("jcs-seg-efm", 41_573_445, 41_581_893),
    ("jcs-seg-aff", 35_154_735, 35_163_183),
    ("jcs-classifier", 43_061_828, 43_061_828 + 119_188),
    ("jcs-classifier-res2net50", 23_613_828, 23_673_448),
])
def test_parameter_counts(name, frozen, trainable_bn):
    assert n_params(create_model(name)) == frozen
    assert n_params(create_model(name, norm="bn")) == trainable_bn


def test_seg_component_sizes(seg):
    assert n_params(seg.vgg) == 14_714_688
    assert n_params(seg.efm5) == n_params(seg.efm6) == 6_295_808
    assert [n_params(m) for m in seg.decoder.fuse] == [80_546, 320_834, 1_280_642, 5_117_186, 5_117_186]
    assert n_params(seg.decoder) == 15_193_642
    assert n_params(seg.heads) == 1_477
    assert all(isinstance(m, AFF) for m in seg.decoder.fuse)
    assert [m.dilation[0] for m in seg.efm5.branches] == [1, 3, 6, 9]
    assert [m.dilation[0] for m in seg.efm6.branches] == [1, 2, 3, 4]


@pytest.mark.parametrize("name, efm, aff", [
    ("jcs-seg-base", False, False), ("jcs-seg-efm", True, False), ("jcs-seg-aff", False, True)])
def test_ablation_variants_swap_modules(name, efm, aff):
    model = create_model(name)
    assert isinstance(model.efm5, EFM if efm else PlainContext)
    assert isinstance(model.efm6, EFM if efm else PlainContext)
    assert all(isinstance(m, AFF if aff else PlainFusion) for m in model.decoder.fuse)


def test_res2net_imagenet_sizes():
    """Published Res2Net-v1b-26w-4s sizes (trainable BN, fc 1000): 45.23 M and 25.72 M."""
    assert n_params(Res2Net(101, norm="bn", num_classes=1000)) == 45_225_920
    assert n_params(Res2Net(50, norm="bn", num_classes=1000)) == 25_718_352


def test_joint_parameter_counts(joint):
    assert n_params(joint) == 117_717_811
    assert n_params(joint.res2net) == 43_057_732
    assert n_params(joint.fusenet) == 32_158_656
    assert n_params(create_model("jcs-joint", norm="bn")) == 117_845_447


def test_flops_match_notes(seg):
    """models_and_metrics.md §0: JCS single model 243.0 GMACs at 512², classifier 8.30 at 224²."""
    from torch.utils.flop_counter import FlopCounterMode

    for name, size, gmacs in [("jcs-seg", 512, 243.0), ("jcs-classifier", 224, 8.30)]:
        with torch.device("meta"):
            model = create_model(name).eval()
            x = torch.empty(1, 3, size, size)
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(x)
        assert counter.get_total_flops() / 2e9 == pytest.approx(gmacs, abs=0.01)


# --- segmentation: outputs and gradients ------------------------------------------------------

def test_seg_train_outputs_loss_and_gradients(seg):
    torch.manual_seed(1)
    x = torch.randn(1, 3, 32, 32)
    mask = (torch.rand(1, 1, 32, 32) > 0.7).float()
    seg.train()
    seg.zero_grad(set_to_none=True)
    outputs = seg(x)
    assert isinstance(outputs, list) and len(outputs) == 5
    assert all(o.shape == (1, 1, 32, 32) and torch.isfinite(o).all() for o in outputs)
    loss = seg.criterion()(outputs, mask)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert_every_parameter_has_gradient(seg)
    # frozen BN: no BN parameter, statistics untouched by training mode
    assert all(not p.requires_grad or "bn" not in n for n, p in seg.vgg.named_parameters())
    # eval returns the sigmoid of the finest deep-supervision map
    seg.eval()
    with torch.no_grad():
        prob = seg(x)
    assert prob.shape == (1, 1, 32, 32)
    torch.testing.assert_close(prob, torch.sigmoid(outputs[0].detach()), rtol=1e-4, atol=1e-5)
    seg.zero_grad(set_to_none=True)


def test_seg_odd_input_size(seg):
    seg.eval()
    with torch.no_grad():
        prob = seg(torch.randn(1, 3, 40, 56))
    assert prob.shape == (1, 1, 40, 56)
    assert ((prob >= 0) & (prob <= 1)).all()


def test_seg_strides(seg):
    """conv5 stays at stride 8 (no pool4), conv6 at 16 (jcs_official.md §4.2)."""
    with torch.no_grad():
        feats = seg.encode(torch.randn(1, 3, 64, 64))
    assert [f.shape[1:] for f in feats] == [(64, 64, 64), (128, 32, 32), (256, 16, 16),
                                            (512, 8, 8), (512, 8, 8), (512, 4, 4)]


def test_squeeze_excite_is_mean_pool_mlp():
    """SE = x · sigmoid(fc2(relu(fc1(mean over H, W)))) in fp32, and in bf16 channels-last (the
    pooling is an avg_pool2d for speed; it must stay the spatial mean)."""
    torch.manual_seed(0)
    se = SqueezeExcite(16, 4)
    x = torch.randn(2, 16, 9, 7)
    weight = torch.sigmoid(se.fc2(torch.relu(se.fc1(x.mean(dim=(2, 3))))))
    torch.testing.assert_close(se(x), x * weight[:, :, None, None], rtol=0, atol=1e-6)
    fast = se.to(torch.bfloat16)
    x16 = x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(fast(x16).float(), x * weight[:, :, None, None], rtol=0.02, atol=0.02)


def test_seg_bf16_channels_last(seg):
    seg.eval()
    model = seg.to(memory_format=torch.channels_last)
    x = torch.randn(1, 3, 32, 32).to(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        prob = model(x)
    assert prob.shape == (1, 1, 32, 32) and torch.isfinite(prob.float()).all()
    seg.to(memory_format=torch.contiguous_format)


@pytest.mark.slow
def test_seg_full_size_inference(seg):
    seg.eval()
    with torch.inference_mode():
        prob = seg(torch.randn(1, 3, 512, 512))
    assert prob.shape == (1, 1, 512, 512)
    assert torch.isfinite(prob).all() and prob.min() >= 0 and prob.max() <= 1


def test_seg_local_vgg_weights(tmp_path):
    """pretrained=<path> loads a torchvision vgg16_bn state dict (the route pretrained=True uses
    after the download)."""
    torch.manual_seed(2)
    features = torchvision.models.vgg16_bn().features
    path = tmp_path / "vgg16_bn.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    model = create_model("jcs-seg", pretrained=str(path))
    torch.testing.assert_close(model.vgg.stages[0][0].conv.weight, features[0].weight)
    torch.testing.assert_close(model.vgg.stages[4][2].conv.bias, features[40].bias)
    torch.testing.assert_close(model.vgg.stages[4][2].bn.running_var, features[41].running_var)


# --- classifier ---------------------------------------------------------------------------------

def test_classifier_outputs_and_gradients(cls50):
    torch.manual_seed(3)
    x = torch.randn(2, 3, 32, 32)
    cls50.train()
    cls50.zero_grad(set_to_none=True)
    logits, features = cls50.forward_with_features(x)
    assert logits.shape == (2, 2) and features.shape == (2, 2048, 1, 1)
    assert cls50.features_layer == "layer4" and cls50.fc.bias is None
    loss = cls50.criterion()(logits, torch.tensor([0, 1]))
    loss.backward()
    assert_every_parameter_has_gradient(cls50)
    cls50.eval()
    with torch.no_grad():
        torch.testing.assert_close(cls50(x), logits.detach(), rtol=1e-4, atol=1e-5)
    cls50.zero_grad(set_to_none=True)


def test_res2net_feature_strides(cls50):
    with torch.no_grad():
        feats = cls50.forward_features(torch.randn(1, 3, 64, 64))
    assert [f.shape[1:] for f in feats] == [(64, 32, 32), (256, 16, 16), (512, 8, 8),
                                            (1024, 4, 4), (2048, 2, 2)]


def test_classifier_bf16_channels_last(cls50):
    cls50.eval()
    model = cls50.to(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 64, 64).to(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x)
    assert logits.shape == (2, 2) and torch.isfinite(logits.float()).all()
    cls50.to(memory_format=torch.contiguous_format)


@pytest.mark.slow
def test_classifier_full_size_inference():
    model = create_model("jcs-classifier").eval()
    with torch.inference_mode():
        logits = model(torch.randn(1, 3, 224, 224))
    assert logits.shape == (1, 2) and torch.isfinite(logits).all()


def test_classifier_local_res2net_weights(tmp_path):
    """pretrained=<path>: a state dict in the Res2Net-v1b / timm layout; the ImageNet fc is skipped."""
    torch.manual_seed(4)
    source = Res2Net(50, norm="bn", num_classes=1000)
    path = tmp_path / "res2net50_v1b.pth"
    torch.save(source.state_dict(), path)
    model = create_model("jcs-classifier-res2net50", pretrained=str(path))
    torch.testing.assert_close(model.conv1[0].weight, source.conv1[0].weight)
    torch.testing.assert_close(model.layer4[2].convs[1].weight, source.layer4[2].convs[1].weight)
    torch.testing.assert_close(model.layer3[0].downsample[2].running_mean,
                               source.layer3[0].downsample[2].running_mean)
    assert model.fc.weight.shape == (2, 2048)
    wrong = tmp_path / "vgg.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, wrong)
    with pytest.raises(ValueError, match="missing tensors"):
        create_model("jcs-classifier-res2net50", pretrained=str(wrong))


# --- joint model --------------------------------------------------------------------------------

def test_joint_outputs_and_gradients(joint):
    torch.manual_seed(5)
    x = torch.randn(2, 3, 32, 32)
    fused_shapes = []
    hooks = [b.register_forward_hook(lambda m, i, o: fused_shapes.append(tuple(o.shape[1:])))
             for b in joint.fusenet]
    joint.train()
    joint.zero_grad(set_to_none=True)
    try:
        outputs = joint(x)
    finally:
        for h in hooks:
            h.remove()
    # levels at the Res2Net resolutions (strides 2, 4, 8, 16, 32), VGG widths
    assert fused_shapes == [(64, 16, 16), (128, 8, 8), (256, 4, 4), (512, 2, 2), (512, 1, 1)]
    assert len(outputs) == 5 and all(o.shape == (2, 1, 32, 32) for o in outputs)
    joint.criterion()(outputs, (torch.rand(2, 1, 32, 32) > 0.5).float()).backward()
    assert_every_parameter_has_gradient(joint)
    joint.zero_grad(set_to_none=True)
    joint.eval()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        prob = joint(x)
    assert prob.shape == (2, 1, 32, 32) and ((prob >= 0) & (prob <= 1)).all()


def test_joint_from_trained_parts(tmp_path, joint, seg):
    torch.manual_seed(6)
    classifier = create_model("jcs-classifier")
    cls_path = save_checkpoint(tmp_path / "cls.pth", classifier)
    seg_path = save_checkpoint(tmp_path / "seg.pth", seg)
    joint.load_parts(cls_path, seg_path)
    torch.testing.assert_close(joint.res2net.layer3[22].conv3.weight, classifier.layer3[22].conv3.weight)
    torch.testing.assert_close(joint.res2net.bn1.running_var, classifier.bn1.running_var)
    torch.testing.assert_close(joint.efm6.se.fc2.bias, seg.efm6.se.fc2.bias)
    torch.testing.assert_close(joint.decoder.fuse[0].conv3[0].weight, seg.decoder.fuse[0].conv3[0].weight)
    torch.testing.assert_close(joint.heads[4].weight, seg.heads[4].weight)

    base_path = save_checkpoint(tmp_path / "base.pth", create_model("jcs-seg-base"))
    with pytest.raises(CheckpointError, match=r"missing \[efm5\.expand"):
        joint.load_parts(cls_path, base_path)
    with pytest.raises(ValueError, match="both classifier_ckpt and seg_ckpt"):
        create_model("jcs-joint", seg_ckpt=seg_path)
