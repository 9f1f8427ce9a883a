"""jcs.metrics.segmentation against the reference values of models_and_metrics.md §8.2, against
pysodmetrics, and on hand-computed tiny maps."""

import numpy as np
import pytest
import torch

from jcs.metrics import (
    THRESHOLDS,
    SegmentationMetrics,
    compute_curves,
    compute_dice,
    compute_emeasure,
    compute_iou,
    compute_mae,
    compute_sensitivity,
    compute_smeasure,
    compute_specificity,
)

TOL = 1e-6


# --- models_and_metrics.md §8.2 examples (uint8 maps, normalize=True, pysodmetrics conventions)


def example1():
    gt = np.zeros((8, 8), np.uint8)
    gt[2:5, 2:5] = 255
    pred = np.zeros((8, 8), np.uint8)
    pred[2:5, 3:6] = 200
    pred[3, 4] = 255
    pred[6, 6] = 60
    pred[0, 0] = 10
    return pred, gt


def example2():
    _, gt = example1()
    return gt.copy(), gt


def example3():
    gt = np.zeros((8, 8), np.uint8)
    pred = np.zeros((8, 8), np.uint8)
    pred[:2, :2] = 255
    return pred, gt


def example4():
    return np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8)


def example5():
    rng = np.random.RandomState(0)
    gt = np.zeros((64, 64), np.uint8)
    gt[10:40, 20:50] = 255
    pred = np.clip(rng.rand(64, 64) * 120 + (gt > 0) * 120, 0, 255).astype(np.uint8)
    return pred, gt


EXPECTED = [
    (example1, {"e_adaptive": 0.931685, "e_mean": 0.802816, "e_max": 0.931685,
                "s_measure": 0.684091, "mae": 0.104779,
                "dice_adaptive": 0.666667, "dice_mean": 0.555308, "dice_max": 0.666667,
                "dice": 0.666667, "iou_adaptive": 0.5, "iou_mean": 0.404744, "iou_max": 0.5,
                "iou": 0.5}),
    (example2, {"e_adaptive": 1.015873, "e_mean": 1.012897, "e_max": 1.015873,
                "s_measure": 1.0, "mae": 0.0, "dice_mean": 0.997057}),
    (example3, {"e_adaptive": 0.952381, "e_mean": 0.948661, "e_max": 0.952381,
                "s_measure": 0.9375, "mae": 0.0625, "dice": 0.0, "dice_adaptive": 0.0,
                "dice_mean": 0.0, "dice_max": 0.0, "iou": 0.0, "iou_adaptive": 0.0,
                "iou_mean": 0.0, "iou_max": 0.0}),
    (example4, {"e_adaptive": 0.0, "e_mean": 1.011905, "e_max": 1.015873, "s_measure": 1.0,
                "mae": 0.0, "dice": 0.0, "dice_adaptive": 0.0, "dice_mean": 0.0,
                "dice_max": 0.0}),
    (example5, {"e_adaptive": 0.809316, "e_mean": 0.598873, "e_max": 1.000244,
                "s_measure": 0.759057, "mae": 0.247062, "dice_adaptive": 0.724309,
                "dice": 1.0}),
]


@pytest.mark.parametrize("make, expected", EXPECTED, ids=[m.__name__ for m, _ in EXPECTED])
def test_reference_examples(make, expected):
    pred, gt = make()
    m = SegmentationMetrics(normalize=True, empty="zero", adaptive="sod")
    m.update(pred, gt)
    out = m.compute()
    for name, value in expected.items():
        # the document prints 6 decimals
        assert out[name] == pytest.approx(value, abs=5e-7), name


def test_example4_jcs_adaptive_is_strict():
    """Fan's ``>`` adaptive threshold keeps an empty map empty: E = N / (N − 1) (§8.2 ex. 4)."""
    m = SegmentationMetrics(normalize=True, empty="zero", adaptive="jcs")
    m.update(*example4())
    assert m.compute()["e_adaptive"] == pytest.approx(64 / 63, abs=TOL)


def test_perfect_map_emeasure_is_n_over_n_minus_1():
    _, gt = example1()
    assert compute_emeasure(gt > 0, gt) == pytest.approx(64 / 63, abs=TOL)


# --- pysodmetrics on random inputs


def random_pairs(seed, n=6, float_maps=True):
    """Random maps with lesion rectangles, speckle, false positives and one empty GT."""
    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(n):
        h, w = rng.integers(6, 40, size=2)
        gt = np.zeros((h, w), bool)
        if i != 1:
            y, x = rng.integers(0, h - 2), rng.integers(0, w - 2)
            gt[y:y + rng.integers(1, h - y), x:x + rng.integers(1, w - x)] = True
            gt |= rng.random((h, w)) < 0.03
        pred = np.clip(0.6 * rng.random((h, w)) + 0.5 * gt * rng.random((h, w)), 0, 1)
        if float_maps:
            pairs.append((pred, gt))
        else:
            pairs.append(((pred * 255).astype(np.uint8), gt.astype(np.uint8) * 255))
    return pairs


def pysod_reference(pairs, normalize):
    psm = pytest.importorskip("py_sod_metrics")
    handlers = {
        name: cls(with_dynamic=True, with_adaptive=True, with_binary=True)
        for name, cls in (("dice", psm.DICEHandler), ("iou", psm.IOUHandler),
                          ("sen", psm.SensitivityHandler), ("spe", psm.SpecificityHandler))
    }
    em, sm, mae = psm.Emeasure(), psm.Smeasure(), psm.MAE()
    fm = psm.FmeasureV2(metric_handlers=handlers)
    for pred, gt in pairs:
        for acc in (em, sm, mae, fm):
            acc.step(pred, gt, normalize=normalize)
    e, r = em.get_results()["em"], fm.get_results()
    out = {"e_adaptive": e["adp"], "e_mean": e["curve"].mean(), "e_max": e["curve"].max(),
           "s_measure": sm.get_results()["sm"], "mae": mae.get_results()["mae"]}
    for ours, theirs in (("dice", "dice"), ("iou", "iou"), ("sensitivity", "sen"),
                         ("specificity", "spe")):
        out[ours] = r[theirs]["binary"]
        out[ours + "_mean"] = r[theirs]["dynamic"].mean()
    for name in ("dice", "iou"):
        out[name + "_adaptive"] = r[name]["adaptive"]
        out[name + "_max"] = r[name]["dynamic"].max()
    curves = {"emeasure": e["curve"], "dice": r["dice"]["dynamic"], "iou": r["iou"]["dynamic"]}
    return out, curves


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("float_maps", [True, False], ids=["float", "uint8"])
def test_matches_pysodmetrics(seed, float_maps):
    pairs = random_pairs(seed, float_maps=float_maps)
    normalize = not float_maps
    expected, expected_curves = pysod_reference(pairs, normalize)
    m = SegmentationMetrics(normalize=normalize, empty="zero", adaptive="sod")
    for pred, gt in pairs:
        m.update(pred, gt)
    out = m.compute()
    assert out["n_images"] == len(pairs) and out["n_empty_gt"] == 1
    for name, value in expected.items():
        assert out[name] == pytest.approx(value, abs=TOL), name
    curves = m.curves()
    for name, curve in expected_curves.items():
        np.testing.assert_allclose(curves[name], curve, atol=TOL, err_msg=name)


def eight_bit_pairs(n=12, seed=7):
    """``n`` random 64×80 uint8 maps with non-empty masks (rectangles plus speckle)."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        gt = np.zeros((64, 80), bool)
        y, x = rng.integers(0, 48), rng.integers(0, 60)
        gt[y:y + rng.integers(4, 16), x:x + rng.integers(4, 20)] = True
        gt |= rng.random((64, 80)) < 0.02
        pred = np.clip(0.55 * rng.random((64, 80)) + 0.45 * gt * rng.random((64, 80)), 0, 1)
        pairs.append(((pred * 255).astype(np.uint8), gt))
    return pairs


# the same 8-bit maps as floats, computed the ways callers do (float64 u8 * (1/255) lands just
# below k/255 for 24 of the 256 levels, so truncating p·255 puts those pixels one level low)
AS_FLOATS = {
    "u8/255.0": lambda u8: u8 / 255.0,
    "u8*(1/255)": lambda u8: u8 * (1 / 255.0),
    "float32 tensor": lambda u8: torch.from_numpy(u8).float() / 255,
    "float32 * reciprocal": lambda u8: u8.astype(np.float32) * np.float32(1 / 255.0),
}


def test_a_float_multiplied_by_the_reciprocal_is_one_level_low_when_truncated():
    levels = np.arange(256, dtype=np.uint8)
    truncated = (AS_FLOATS["u8*(1/255)"](levels) * 255).astype(np.uint8)
    assert (truncated != levels).sum() == 24  # why the maps must be put back on their levels


@pytest.mark.parametrize("normalize", [False, True], ids=["raw", "minmax"])
@pytest.mark.parametrize("given", ["uint8", *AS_FLOATS])
def test_eight_bit_maps_as_uint8_or_floats_match_pysodmetrics(normalize, given):
    """Curve metrics on 12 images: pysodmetrics on the uint8 maps (min-max normalised) or on
    ``u8 / 255`` (raw), against ours on the same maps given as uint8 and as floats."""
    pairs = eight_bit_pairs()
    reference = [(u8, gt.astype(np.uint8) * 255) if normalize else (u8 / 255.0, gt)
                 for u8, gt in pairs]
    expected, expected_curves = pysod_reference(reference, normalize)
    m = SegmentationMetrics(normalize=normalize, empty="zero", adaptive="sod")
    for u8, gt in pairs:
        m.update(u8 if given == "uint8" else AS_FLOATS[given](u8), gt)
    out = m.compute()
    for name in ("e_mean", "e_max", "dice_mean", "dice_max", "iou_mean", "iou_max",
                 "sensitivity_mean", "specificity_mean", "e_adaptive", "s_measure", "mae"):
        assert out[name] == pytest.approx(expected[name], abs=TOL), name
    for name, curve in expected_curves.items():
        np.testing.assert_allclose(m.curves()[name], curve, atol=TOL, err_msg=name)


def test_float_maps_off_the_levels_are_still_truncated():
    pred = np.array([[0.999, 0.5019], [0.25, 0.0]])  # 254.7, 127.98, 63.75 levels: not 8-bit
    gt = np.array([[1, 1], [0, 0]])
    curves = compute_curves(pred, gt)
    # point i keeps k >= 255 - i with k = floor(p·255): k = 254, 127, 63, 0
    assert curves["sensitivity"][1] == 1 / 2  # threshold 254/255 keeps only the 0.999 pixel
    assert curves["sensitivity"][127] == 1 / 2  # 128/255: 0.5019 (k = 127) not yet
    assert curves["sensitivity"][128] == 1.0


def test_pure_functions_match_pysodmetrics():
    psm = pytest.importorskip("py_sod_metrics")
    for pred, gt in random_pairs(5):
        sm, mae = psm.Smeasure(), psm.MAE()
        sm.step(pred, gt, normalize=False)
        mae.step(pred, gt, normalize=False)
        assert compute_smeasure(pred, gt) == pytest.approx(sm.get_results()["sm"], abs=TOL)
        assert compute_mae(pred, gt) == pytest.approx(mae.get_results()["mae"], abs=TOL)


# --- definitions, checked independently


def emeasure_per_pixel(fm, gt):
    """Fan's Emeasure.m written per pixel (models_and_metrics.md §8.1)."""
    fm, gt = fm.astype(float), gt.astype(float)
    eps = np.spacing(1)
    if gt.sum() == 0:
        phi = 1 - fm
    elif gt.sum() == gt.size:
        phi = fm
    else:
        a, b = fm - fm.mean(), gt - gt.mean()
        xi = 2 * a * b / (a * a + b * b + eps)
        phi = (xi + 1) ** 2 / 4
    return phi.sum() / (gt.size - 1 + eps)


def test_emeasure_closed_form_equals_per_pixel_definition():
    rng = np.random.default_rng(0)
    for _ in range(20):
        fm = rng.random((7, 9)) < rng.random()
        gt = rng.random((7, 9)) < rng.random()
        assert compute_emeasure(fm, gt) == pytest.approx(emeasure_per_pixel(fm, gt), abs=1e-12)
    for gt in (np.zeros((4, 4), bool), np.ones((4, 4), bool)):
        fm = np.eye(4, dtype=bool)
        assert compute_emeasure(fm, gt) == pytest.approx(emeasure_per_pixel(fm, gt), abs=1e-12)
    # all-black GT: E = #background-predicted / (N − 1) = 12 / 15
    assert compute_emeasure(np.eye(4), np.zeros((4, 4))) == pytest.approx(12 / 15)


def test_curve_point_i_uses_threshold_255_minus_i():
    pred = np.array([[0.0, 0.5], [0.75, 1.0]])
    gt = np.array([[0, 1], [1, 1]])
    c = compute_curves(pred, gt)
    np.testing.assert_allclose(c["thresholds"], THRESHOLDS)
    assert c["thresholds"][0] == 1.0 and c["thresholds"][-1] == 0.0
    for i in range(len(THRESHOLDS)):
        kept = (pred * 255).astype(np.uint8) >= 255 - i
        assert c["dice"][i] == pytest.approx(compute_dice(kept, gt))
    # threshold 0: everything is foreground → Dice 2·3 / (4 + 3)
    assert c["dice"][-1] == pytest.approx(6 / 7)


def test_smeasure_special_cases():
    pred = np.array([[0.2, 0.4], [0.6, 0.8]])
    assert compute_smeasure(pred, np.zeros((2, 2))) == pytest.approx(0.5)  # 1 − mean
    assert compute_smeasure(pred, np.ones((2, 2))) == pytest.approx(0.5)  # mean
    gt = np.zeros((6, 6))
    gt[1:4, 2:5] = 1
    assert compute_smeasure(gt, gt) == pytest.approx(1.0)
    assert compute_smeasure(1 - gt, gt) == 0.0  # clipped at 0


# --- hand-computed tiny maps


def test_tiny_2x2():
    pred = np.array([[0.9, 0.2], [0.7, 0.4]])  # > 0.5: TL, BL
    gt = np.array([[1, 1], [0, 0]])  # TP 1 (TL), FP 1 (BL), FN 1 (TR), TN 1 (BR)
    assert compute_dice(pred, gt) == pytest.approx(2 / 4)
    assert compute_iou(pred, gt) == pytest.approx(1 / 3)
    assert compute_sensitivity(pred, gt) == pytest.approx(1 / 2)
    assert compute_specificity(pred, gt) == pytest.approx(1 / 2)
    assert compute_mae(pred, gt) == pytest.approx((0.1 + 0.8 + 0.7 + 0.4) / 4)


def test_tiny_3x3_and_threshold_is_strict():
    pred = np.array([[1.0, 1.0, 0.5], [1.0, 0.0, 0.0], [0.0, 0.0, 0.6]])
    gt = np.array([[1, 1, 1], [1, 1, 0], [0, 0, 0]])  # 5 GT pixels
    # pred > 0.5: (0,0) (0,1) (1,0) (2,2): TP 3, FP 1, FN 2, TN 3; 0.5 itself is negative
    assert compute_dice(pred, gt) == pytest.approx(6 / 9)
    assert compute_iou(pred, gt) == pytest.approx(3 / 6)
    assert compute_sensitivity(pred, gt) == pytest.approx(3 / 5)
    assert compute_specificity(pred, gt) == pytest.approx(3 / 4)
    assert compute_dice(pred, gt, threshold=0.4) == pytest.approx(8 / 10)


def test_accumulator_averages_per_image():
    pred = np.array([[[0.9, 0.2], [0.7, 0.4]], [[0.9, 0.9], [0.1, 0.1]]])
    gt = np.array([[[1, 1], [0, 0]], [[1, 1], [0, 0]]])
    m = SegmentationMetrics()
    m.update(pred, gt)
    out = m.compute()
    assert out["dice"] == pytest.approx((0.5 + 1.0) / 2)
    assert out["iou"] == pytest.approx((1 / 3 + 1.0) / 2)
    assert out["sensitivity"] == pytest.approx(0.75)
    assert out["specificity"] == pytest.approx(0.75)
    assert m.per_image["dice"] == pytest.approx([0.5, 1.0])
    assert m.per_image["lesion_area"] == [2, 2]
    assert set(m.per_image) >= {"dice", "iou", "e_adaptive", "mae", "lesion_area"}
    assert out["n_images"] == 2


def test_adaptive_modes_differ_on_a_tie():
    """mean = 0.25 → T = 0.5; ``jcs`` keeps pred > 0.5, ``sod`` keeps pred >= 0.5."""
    pred = np.array([[0.5, 0.5], [0.0, 0.0]])
    gt = np.array([[1, 1], [0, 0]])
    jcs, sod = SegmentationMetrics(adaptive="jcs"), SegmentationMetrics(adaptive="sod")
    jcs.update(pred, gt)
    sod.update(pred, gt)
    assert jcs.compute()["iou_adaptive"] == 0.0
    assert sod.compute()["iou_adaptive"] == 1.0
    assert sod.compute()["dice_adaptive"] == 1.0


def test_normalize_option():
    pred = np.array([[0.3, 0.3], [0.1, 0.1]])  # nothing above 0.5 unless min-max normalised
    gt = np.array([[1, 1], [0, 0]])
    raw, norm = SegmentationMetrics(), SegmentationMetrics(normalize=True)
    raw.update(pred, gt)
    norm.update(pred, gt)
    assert raw.compute()["dice"] == 0.0
    assert norm.compute()["dice"] == 1.0
    assert norm.compute()["mae"] == 0.0


# --- empty-GT policies


def empty_gt_batch():
    pred = np.zeros((3, 2, 2))
    pred[0] = [[0.9, 0.1], [0.1, 0.1]]  # lesion image, perfect
    pred[2] = [[0.0, 0.8], [0.0, 0.0]]  # empty GT, one false positive
    gt = np.zeros((3, 2, 2))
    gt[0, 0, 0] = 1  # image 1: empty GT and empty prediction
    return pred, gt


@pytest.mark.parametrize("empty, n_images, dice, sensitivity", [
    ("exclude", 1, 1.0, 1.0),
    ("score_one", 3, (1 + 1 + 0) / 3, 1.0),
    ("zero", 3, 1 / 3, 1 / 3),
])
def test_empty_gt_policies(empty, n_images, dice, sensitivity):
    m = SegmentationMetrics(empty=empty)
    m.update(*empty_gt_batch())
    out = m.compute()
    assert out["n_images"] == n_images and out["n_empty_gt"] == 2
    assert out["dice"] == pytest.approx(dice)
    assert out["iou"] == pytest.approx(dice)  # 0/1 scores: IoU = Dice
    assert out["sensitivity"] == pytest.approx(sensitivity)
    assert len(m.per_image["dice"]) == n_images


def test_empty_policy_in_pure_functions():
    z = np.zeros((3, 3))
    assert compute_dice(z, z) == 0.0
    assert compute_dice(z, z, empty="score_one") == 1.0
    assert compute_iou(z, z, empty="score_one") == 1.0
    fp = z.copy()
    fp[1, 1] = 1
    assert compute_dice(fp, z, empty="score_one") == 0.0
    with pytest.raises(ValueError, match="empty"):
        compute_dice(z, z, empty="exclude")


def test_all_images_excluded_gives_nan():
    m = SegmentationMetrics()
    m.update(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)))
    out = m.compute()
    assert out["n_images"] == 0 and out["n_empty_gt"] == 2
    assert np.isnan(out["dice"]) and np.isnan(out["e_mean"])


# --- inputs


def test_torch_and_numpy_and_layouts_agree():
    pairs = random_pairs(7, n=3)
    h, w = 12, 10
    rng = np.random.default_rng(0)
    pred = rng.random((4, h, w))
    gt = rng.random((4, h, w)) < 0.3
    results = []
    for p, g in (
        (pred, gt),
        (torch.from_numpy(pred), torch.from_numpy(gt)),
        (torch.from_numpy(pred).float()[:, None], torch.from_numpy(gt).float()[:, None]),
    ):
        m = SegmentationMetrics()
        m.update(p, g)
        results.append(m.compute())
    per_image = SegmentationMetrics()
    for p, g in zip(pred, gt):
        per_image.update(p, g)
    results.append(per_image.compute())
    for other in results[1:]:
        for name, value in results[0].items():
            assert other[name] == pytest.approx(value, abs=1e-6), name
    pred2, gt2 = pairs[0]
    assert compute_dice(torch.tensor(pred2), torch.tensor(gt2)) == compute_dice(pred2, gt2)


def test_uint8_masks():
    """0/255 PNG masks use gt > 128; 0/1 uint8 masks (jcs.data.read_mask) use gt > 0."""
    pred = np.array([[0.9, 0.1], [0.1, 0.1]])
    for gt in (np.array([[255, 0], [0, 0]], np.uint8), np.array([[1, 0], [0, 0]], np.uint8)):
        assert compute_dice(pred, gt) == 1.0


def test_bad_shapes_name_both_shapes():
    m = SegmentationMetrics()
    with pytest.raises(ValueError, match=r"\(2, 4, 4\).*\(2, 4, 5\)"):
        m.update(np.zeros((2, 4, 4)), np.zeros((2, 4, 5)))
    with pytest.raises(ValueError, match=r"\(4, 4\).*\(5, 4\)"):
        compute_dice(np.zeros((4, 4)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="Nx1xHxW"):
        m.update(np.zeros((2, 3, 4, 4)), np.zeros((2, 3, 4, 4)))


def test_logits_are_rejected():
    with pytest.raises(ValueError, match="sigmoid"):
        SegmentationMetrics().update(np.array([[-2.0, 3.0]]), np.array([[0, 1]]))
