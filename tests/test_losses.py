"""jcs.losses on hand-computed tensors."""
import math

import pytest
import torch

from jcs.losses import (
    BalancedBCELoss,
    BCEDiceLoss,
    EGNetLoss,
    SumBCELoss,
    balanced_bce_weights,
    mask_to_edges,
)

LN3 = math.log(3.0)


def tiny_case():
    """sigmoid(logits) = [[0.5, 0.75], [0.25, 0.5]] against mask [[1, 1], [0, 0]]."""
    logits = torch.tensor([[[[0.0, LN3], [-LN3, 0.0]]]])
    mask = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])
    bce = (2 * math.log(2) + 2 * math.log(4 / 3)) / 4
    dice = (2 * (0.5 + 0.75) + 1e-5) / (2.0 + 2.0 + 1e-5)
    return logits, mask, bce, dice


def test_bce_dice_hand_computed():
    logits, mask, bce, dice = tiny_case()
    assert BCEDiceLoss()([logits], mask).item() == pytest.approx(bce + 1 - dice, rel=1e-6)
    assert BCEDiceLoss()(logits, mask[:, 0]).item() == pytest.approx(bce + 1 - dice, rel=1e-6)


def test_bce_dice_sums_outputs_and_accepts_k_channels():
    logits, mask, bce, dice = tiny_case()
    one = bce + 1 - dice
    assert BCEDiceLoss()([logits, logits, logits], mask).item() == pytest.approx(3 * one, rel=1e-6)
    stacked = torch.cat([logits, logits], dim=1)  # N×2×H×W = two outputs
    assert BCEDiceLoss()(stacked, mask).item() == pytest.approx(2 * one, rel=1e-6)
    weighted = BCEDiceLoss(weights=[1.0, 0.5])([logits, logits], mask)
    assert weighted.item() == pytest.approx(1.5 * one, rel=1e-6)
    with pytest.raises(ValueError, match="2 weights for 3 outputs"):
        BCEDiceLoss(weights=[1.0, 0.5])([logits] * 3, mask)


def test_dice_is_over_the_whole_batch():
    logits = torch.tensor([[[[20.0, -20.0]]], [[[20.0, 20.0]]]])  # p ≈ [1, 0] and [1, 1]
    mask = torch.tensor([[[[1.0, 0.0]]], [[[1.0, 0.0]]]])
    loss = BCEDiceLoss()(logits, mask).item()
    bce = 20.0 / 4  # one confident mistake (BCE ≈ 20) among 4 pixels
    batch_dice = 2 * 2 / (3 + 2)  # per-image Dice would average 1 and 2/3
    assert loss == pytest.approx(bce + 1 - batch_dice, rel=1e-4)


def test_perfect_prediction_and_finite_gradients():
    mask = torch.zeros(2, 1, 8, 8)
    mask[:, :, 2:6, 3:7] = 1
    perfect = (mask * 2 - 1) * 30
    assert BCEDiceLoss()([perfect], mask).item() == pytest.approx(0.0, abs=1e-5)
    logits = ((1 - mask * 2) * 200).requires_grad_()  # confidently wrong, far into saturation
    loss = BCEDiceLoss()([logits], mask) + EGNetLoss()({"sal": [logits], "edge": [logits]}, mask)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


def test_bf16_logits_give_float32_loss():
    torch.manual_seed(0)
    logits = torch.randn(2, 1, 16, 16)
    mask = (torch.rand(2, 1, 16, 16) > 0.7).float()
    loss = BCEDiceLoss()([logits.bfloat16()], mask)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(BCEDiceLoss()([logits.bfloat16().float()], mask).item())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert BCEDiceLoss()([logits], mask).dtype == torch.float32


def test_shape_mismatch_is_explained():
    with pytest.raises(ValueError, match=r"\(1, 1, 4, 4\).*\(1, 1, 8, 8\).*up-sample"):
        BCEDiceLoss()([torch.zeros(1, 1, 4, 4)], torch.zeros(1, 1, 8, 8))


def test_mask_to_edges_square_band():
    mask = torch.zeros(1, 1, 8, 8)
    mask[0, 0, 2:5, 2:5] = 1  # 3×3 square
    expected = torch.zeros(8, 8)
    expected[1:6, 1:6] = 1  # band one pixel outside and inside the boundary ...
    for r, c in ((1, 1), (1, 5), (5, 1), (5, 5), (3, 3)):  # ... without corners and centre
        expected[r, c] = 0
    edges = mask_to_edges(mask)
    assert edges.shape == (1, 1, 8, 8)
    assert torch.equal(edges[0, 0], expected)
    assert torch.equal(mask_to_edges(mask[:, 0]), edges)  # N×H×W accepted


def test_mask_to_edges_borders_use_one_sided_differences():
    mask = torch.zeros(1, 1, 5, 5)
    mask[0, 0, :3, :3] = 1  # square in the top-left corner
    edges = mask_to_edges(mask)[0, 0]
    assert edges[0, 0] == 0  # f[0,1] − f[0,0] = 0 on both axes
    assert edges[0, 2] == 1 and edges[0, 3] == 1 and edges[0, 4] == 0
    assert mask_to_edges(torch.ones(1, 1, 4, 4)).sum() == 0
    assert mask_to_edges(torch.zeros(1, 1, 4, 4)).sum() == 0


def test_balanced_weights():
    target = torch.zeros(1, 1, 2, 4)
    target[0, 0, 0, :2] = 1  # 2 positives, 6 negatives
    w = balanced_bce_weights(target)
    assert w[0, 0, 0, 0].item() == pytest.approx(6 / 8)
    assert w[0, 0, 1, 0].item() == pytest.approx(1.1 * 2 / 8)
    assert w.sum().item() == pytest.approx(2.1 * 2 * 6 / 8)  # 2.1·pos·neg / total
    batch = torch.cat([target, torch.ones_like(target)])  # weights are per image
    assert torch.equal(balanced_bce_weights(batch)[0], w[0])
    assert balanced_bce_weights(batch)[1].sum() == 0  # all-positive image: num_neg = 0


def test_balanced_bce_loss_reductions():
    target = torch.zeros(1, 1, 2, 4)
    target[0, 0, 0, :2] = 1
    logits = torch.zeros(1, 1, 2, 4)  # BCE = ln 2 everywhere
    total_weight = 2.1 * 2 * 6 / 8
    assert BalancedBCELoss()([logits], target).item() == pytest.approx(math.log(2) * total_weight)
    two = BalancedBCELoss()(logits.repeat(2, 1, 1, 1), target.repeat(2, 1, 1, 1))
    assert two.item() == pytest.approx(math.log(2) * total_weight)  # divided by the batch size
    mean = BalancedBCELoss(reduction="mean")([logits], target)
    assert mean.item() == pytest.approx(math.log(2) * total_weight / 8)


def test_sum_bce_loss():
    mask = torch.zeros(2, 1, 4, 4)
    mask[:, :, :2] = 1
    logits = torch.zeros(2, 1, 4, 4)
    assert SumBCELoss()([logits, logits], mask).item() == pytest.approx(2 * 16 * math.log(2))
    assert SumBCELoss("mean")([logits], mask).item() == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="reduction"):
        SumBCELoss("none")


def test_egnet_loss_combines_edge_and_saliency_terms():
    torch.manual_seed(0)
    mask = torch.zeros(2, 1, 8, 8)
    mask[:, :, 2:6, 2:6] = 1
    sal = [torch.randn(2, 1, 8, 8) for _ in range(3)]
    edge = [torch.randn(2, 1, 8, 8)]
    expected = BalancedBCELoss()(edge, mask_to_edges(mask)) + SumBCELoss()(sal, mask)
    got = EGNetLoss()({"sal": sal, "edge": edge}, mask)
    assert got.item() == pytest.approx(expected.item())
    with pytest.raises(ValueError, match="'sal' and 'edge'"):
        EGNetLoss()({"sal": sal}, mask)
