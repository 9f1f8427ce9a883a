"""Grad-CAM, the overlay and the activation-map loss (jcs_official.md §4.1, paper Fig. 9), on a tiny
classifier and on toy models whose answer is known."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from jcs.explain import ActivationMapLoss, GradCAM, class_activation_map, jet, overlay
from jcs.models import create_model


@pytest.fixture(scope="module")
def classifier():
    """Random Res2Net-50 classifier; its COVID row of the fc is made positive so that the CAM of
    class 1 (ReLU of a weighted sum of non-negative layer4 maps) is not all zero."""
    torch.manual_seed(0)
    model = create_model("jcs-classifier-res2net50").eval()
    with torch.no_grad():
        model.fc.weight[1].abs_()
    return model


class LeftRight(nn.Module):
    """``layer4`` passes a 2-channel map through; logit 1 = mean of channel 0, logit 0 = mean of
    channel 1. Channel 0 is bright on the left, channel 1 on the right."""

    features_layer = "layer4"

    def __init__(self):
        super().__init__()
        self.layer4 = nn.Conv2d(2, 2, 1, bias=False)
        with torch.no_grad():
            self.layer4.weight.copy_(torch.eye(2).view(2, 2, 1, 1))

    def forward(self, x):
        a = self.layer4(x).mean(dim=(2, 3))
        return torch.stack([a[:, 1], a[:, 0]], dim=1)


def left_right_input(n=2, size=8):
    x = torch.zeros(n, 2, size, size)
    x[:, 0, :, : size // 2] = 1.0
    x[:, 1, :, size // 2:] = 1.0
    return x


def test_gradcam_points_where_the_logit_looks():
    model = LeftRight()
    x = left_right_input()
    cams = GradCAM(model)(x, class_index=1)
    assert cams.shape == (2, 8, 8)
    assert torch.allclose(cams[:, :, :4], torch.ones(1)) and torch.allclose(cams[:, :, 5:], torch.zeros(1))
    cams0 = GradCAM(model)(x, class_index=0)
    assert (cams0[:, :, 5:] > cams0[:, :, :3].max()).all()


def test_gradcam_on_classifier_shape_range_and_no_leftovers(classifier):
    torch.manual_seed(1)
    x = torch.randn(2, 3, 64, 64)
    layer = classifier.layer4
    with torch.no_grad():  # Grad-CAM must work inside no_grad
        with GradCAM(classifier) as gradcam:
            cams = gradcam(x)
            logits = gradcam.last_logits
    assert cams.shape == (2, 64, 64) and cams.dtype == torch.float32
    assert cams.min() >= 0 and cams.max() <= 1
    assert torch.allclose(cams.flatten(1).amax(dim=1), torch.ones(2))
    assert not layer._forward_hooks and not layer._backward_hooks
    assert all(p.grad is None for p in classifier.parameters())
    with torch.no_grad():
        torch.testing.assert_close(logits, classifier(x), rtol=1e-4, atol=1e-5)


def test_gradcam_equals_cam_for_gap_linear_head(classifier):
    """With GAP + linear, Grad-CAM weights are fc.weight[c] / (h·w): after min-max it is the CAM."""
    torch.manual_seed(2)
    x = torch.randn(1, 3, 64, 64)
    cams = GradCAM(classifier, layer="layer4")(x)
    with torch.no_grad():
        _, feats = classifier.forward_with_features(x)
        cam = class_activation_map(feats, classifier.fc.weight)[:, None]
    cam = F.interpolate(cam, size=(64, 64), mode="bilinear", align_corners=False)[:, 0]
    cam = (cam - cam.amin()) / (cam.amax() - cam.amin())
    torch.testing.assert_close(cams, cam, rtol=1e-3, atol=1e-4)


def test_gradcam_unknown_layer(classifier):
    with pytest.raises(ValueError, match="no module 'layer9'"):
        GradCAM(classifier, layer="layer9")


def test_jet_endpoints():
    np.testing.assert_allclose(jet(np.array([0.0, 0.5, 1.0])),
                               [[0, 0, 0.5], [0.5, 1, 0.5], [0.5, 0, 0]], atol=1e-6)


def test_overlay_is_heat_plus_image_over_max():
    image = np.array([[0, 255], [128, 64]], dtype=np.uint8)
    cam = np.array([[0.0, 1.0], [0.5, 0.25]], dtype=np.float32)
    out = overlay(image, cam)
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    expected = jet(cam) + image[..., None] / 255.0  # the authors' heat + image, / max
    np.testing.assert_allclose(out, np.round(expected / expected.max() * 255), atol=1)
    big = overlay(np.zeros((8, 8, 3), np.uint8), torch.rand(4, 4))  # cam resized to the image
    assert big.shape == (8, 8, 3)
    with pytest.raises(ValueError, match="cam must be H×W"):
        overlay(image, np.zeros((1, 2, 2)))


def test_activation_map_loss_prefers_maps_that_cover_the_lesion():
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :4, :4] = 1  # lesion in the top-left quarter; pooled to 4×4 it is the top-left 2×2
    fc_weight = torch.tensor([[0.0, 0.0], [1.0, 0.0]])  # COVID logit reads channel 0
    on_lesion = torch.zeros(1, 2, 4, 4)
    on_lesion[:, 0, :2, :2] = 3.0
    off_lesion = torch.zeros(1, 2, 4, 4)
    off_lesion[:, 0, 2:, 2:] = 3.0
    for mode in ("dice", "bce"):
        loss = ActivationMapLoss(mode=mode)
        good = loss.map_loss(on_lesion, fc_weight, mask)
        bad = loss.map_loss(off_lesion, fc_weight, mask)
        assert good < 0.01 and bad > 0.5, (mode, good, bad)


def test_activation_map_loss_total_and_gradients():
    torch.manual_seed(3)
    features = torch.rand(3, 4, 4, 4, requires_grad=True)
    fc_weight = torch.rand(2, 4, requires_grad=True)  # positive: the CAM is not all zero
    logits = torch.randn(3, 2, requires_grad=True)
    labels = torch.tensor([1, 0, 1])
    masks = torch.zeros(3, 1, 16, 16)
    masks[0, :, 2:8, 2:8] = 1  # image 1 is negative (empty mask), image 2 has no lesion drawn
    loss_fn = ActivationMapLoss(weight=0.5)
    total = loss_fn(logits, features, fc_weight, labels, masks)
    map_part = loss_fn.map_loss(features[:1], fc_weight, masks[:1])
    expected = F.cross_entropy(logits, labels) + 0.5 * map_part
    torch.testing.assert_close(total, expected)
    total.backward()
    assert features.grad[0].abs().sum() > 0 and fc_weight.grad.abs().sum() > 0
    assert features.grad[1:].abs().sum() == 0  # images without a lesion give no map loss
    no_masks = loss_fn(logits, features, fc_weight, labels, None)
    torch.testing.assert_close(no_masks, F.cross_entropy(logits, labels))
    with pytest.raises(ValueError, match="mode"):
        ActivationMapLoss(mode="l2")


def test_activation_map_loss_with_classifier_under_bf16(classifier):
    torch.manual_seed(4)
    x = torch.randn(1, 3, 64, 64)
    masks = (torch.rand(1, 1, 64, 64) > 0.5).float()
    classifier.train()
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits, features = classifier.forward_with_features(x)
            loss = ActivationMapLoss(weight=1.0)(logits, features, classifier.fc.weight,
                                                 torch.tensor([1]), masks)
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
        loss.backward()
        assert classifier.layer4[2].conv3.weight.grad is not None
    finally:
        classifier.zero_grad(set_to_none=True)
        classifier.eval()
