"""Segmentation metrics: Dice, IoU, sensitivity, specificity, MAE, E-measure, S-measure and the
256-threshold curves (models_and_metrics.md §8, jcs_official.md §4.5).

Conventions (all documented in models_and_metrics.md §8.2-8.3):

* ``pred`` is a probability map in [0, 1] (float) or an 8-bit map (uint8, divided by 255). A
  float map whose every value lies within ``LEVEL_TOL`` of a level k/255 is an 8-bit map given
  as floats (``u8 / 255``, ``u8 * (1/255)``, float32 tensors: their rounding lands some pixels
  just below k/255) and is put back on those levels, so it scores as the uint8 map would.
* ``gt`` is binary: bool, or numbers where ``> 0.5`` is foreground; a uint8 mask whose maximum
  exceeds 1 is an 8-bit PNG mask and uses ``gt > 128`` as Fan's toolboxes.
* Fixed-threshold metrics binarise with ``pred > threshold`` (0.5 by default), as pysodmetrics'
  ``binary`` output.
* Adaptive threshold ``T = 2·mean(pred)``: ``"jcs"`` mode keeps ``pred > T`` (the authors'
  ``IoUEval``, Fan's MATLAB toolbox); ``"sod"`` mode keeps ``pred >= min(T, 1)`` (pysodmetrics,
  Inf-Net).
* Curves use 256 thresholds on ``k = uint8(pred·255)``: point ``i`` keeps ``k >= 255 - i``, i.e.
  threshold ``(255 - i) / 255`` (Inf-Net ``main.m``, pysodmetrics). Dataset curves are the mean
  of per-image curves; ``*_mean`` / ``*_max`` are the mean / max of that averaged curve.
* A ratio 0/0 (Dice, IoU or sensitivity of an empty GT with an empty prediction; specificity of
  an all-foreground GT) scores 0 with ``empty="zero"`` (pysodmetrics, Inf-Net) and 1 with
  ``empty="score_one"``. ``SegmentationMetrics(empty="exclude")`` skips empty-GT images.

Only numpy and torch are used.
"""
from __future__ import annotations

import numpy as np
import torch

EPS = float(np.spacing(1))  # MATLAB eps, as Fan's E-/S-measure code
N_THRESHOLDS = 256
THRESHOLDS = np.arange(255, -1, -1) / 255.0  # threshold of curve point i
EMPTY_POLICIES = ("exclude", "score_one", "zero")
#: Largest distance, in 8-bit levels (p·255), of a float map's values from k/255 for the map to be
#: taken as an 8-bit map (float32 rounding of k/255 is below 1e-4 levels).
LEVEL_TOL = 1e-3
ADAPTIVE_MODES = ("jcs", "sod")

__all__ = [
    "EPS",
    "THRESHOLDS",
    "SegmentationMetrics",
    "adaptive_binarize",
    "compute_curves",
    "compute_dice",
    "compute_emeasure",
    "compute_iou",
    "compute_mae",
    "compute_sensitivity",
    "compute_smeasure",
    "compute_specificity",
    "normalize_prediction",
]


# ---------------------------------------------------------------------------------------------
# input handling


def _to_numpy(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.dtype not in (torch.bool, torch.uint8):
            x = x.to(torch.float64)
        return x.numpy()
    if isinstance(x, np.ndarray):
        return x
    raise TypeError(f"{name} must be a numpy array or a torch tensor, got {type(x).__name__}")


def _on_levels(pred: np.ndarray) -> np.ndarray:
    """``pred`` put exactly on the levels k/255 when every value is within :data:`LEVEL_TOL`
    levels of one (an 8-bit map given as floats); otherwise ``pred`` unchanged. Without this the
    curves' ``uint8(p·255)`` truncation puts pixels stored just below k/255 one level low."""
    scaled = pred * 255.0
    levels = np.rint(scaled)
    if pred.size and np.abs(scaled - levels).max() <= LEVEL_TOL:
        return levels / 255.0
    return pred


def _prediction(pred: np.ndarray) -> np.ndarray:
    """float64 map in [0, 1]; uint8 maps are divided by 255, 8-bit maps given as floats are put
    back on their levels (:func:`_on_levels`)."""
    if pred.dtype == np.uint8:
        return pred.astype(np.float64) / 255.0
    if pred.dtype == np.bool_:
        return pred.astype(np.float64)
    pred = pred.astype(np.float64, copy=False)
    lo, hi = (pred.min(), pred.max()) if pred.size else (0.0, 0.0)
    if not (lo >= 0.0 and hi <= 1.0):  # also rejects NaN
        raise ValueError(
            f"pred values must lie in [0, 1] (got min {lo}, max {hi}): pass probabilities "
            "(apply torch.sigmoid to logits) or a uint8 map in 0-255"
        )
    return _on_levels(pred)


def _ground_truth(gt: np.ndarray) -> np.ndarray:
    """bool mask: ``gt > 128`` for 8-bit uint8 masks, ``gt > 0.5`` otherwise."""
    if gt.dtype == np.bool_:
        return gt
    if gt.dtype == np.uint8 and gt.size and gt.max() > 1:
        return gt > 128
    return gt > 0.5


def _check_policy(empty: str, allowed=EMPTY_POLICIES) -> None:
    if empty not in allowed:
        raise ValueError(f"empty must be one of {allowed}, got {empty!r}")


def _image_pair(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    """One HxW image: (float64 prediction in [0, 1], bool GT)."""
    p, g = _to_numpy(pred, "pred"), _to_numpy(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred shape {p.shape} and gt shape {g.shape} must be equal")
    if p.ndim != 2:
        raise ValueError(
            f"pred and gt must be single HxW images here, got shape {p.shape}; "
            "use SegmentationMetrics for batches"
        )
    return _prediction(p), _ground_truth(g)


def normalize_prediction(pred: np.ndarray) -> np.ndarray:
    """Per-image min-max normalisation to [0, 1], skipped for a constant map (the SOD toolboxes'
    ``mapminmax`` / pysodmetrics ``normalize=True``, models_and_metrics.md §8.1)."""
    lo, hi = pred.min(), pred.max()
    return (pred - lo) / (hi - lo) if hi > lo else pred


def adaptive_binarize(pred: np.ndarray, mode: str = "jcs") -> np.ndarray:
    """Binarise at ``T = 2·mean(pred)``: ``pred > T`` (``"jcs"``, the authors' ``IoUEval``) or
    ``pred >= min(T, 1)`` (``"sod"``, pysodmetrics / Inf-Net)."""
    _check_policy(mode, ADAPTIVE_MODES)
    t = 2.0 * pred.mean()
    return pred > t if mode == "jcs" else pred >= min(t, 1.0)


# ---------------------------------------------------------------------------------------------
# confusion-count formulas (vectorised over thresholds)


def _ratio(num, den, empty: str):
    """num / den with 0/0 → 1 for ``"score_one"``, 0 otherwise."""
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    fill = 1.0 if empty == "score_one" else 0.0
    out = np.divide(num, den, out=np.full(np.broadcast(num, den).shape, fill), where=den > 0)
    return out if out.ndim else float(out)


def _emeasure_from_counts(tp, fp, fn, tn):
    """Closed-form E-measure (Fan et al., IJCAI 2018; models_and_metrics.md §8.1) of a binary map
    from its confusion counts; vectorised. Denominator N − 1 + eps as ``Emeasure.m``."""
    tp, fp, fn, tn = (np.asarray(c, np.float64) for c in (tp, fp, fn, tn))
    n = tp + fp + fn + tn
    n_fg, n_gt = tp + fp, tp + fn
    mu_f, mu_g = n_fg / n, n_gt / n
    total = np.zeros(np.broadcast(tp, fp, fn, tn).shape)
    for count, f, g in ((tp, 1.0, 1.0), (fp, 1.0, 0.0), (fn, 0.0, 1.0), (tn, 0.0, 0.0)):
        a, b = f - mu_f, g - mu_g
        xi = 2.0 * a * b / (a * a + b * b + EPS)
        total = total + count * (xi + 1.0) ** 2 / 4.0
    total = np.where(n_gt == 0, n - n_fg, total)  # GT all black: φ = 1 − FM
    total = np.where(n_gt == n, n_fg, total)  # GT all white: φ = FM
    out = total / (n - 1.0 + EPS)
    return out if out.ndim else float(out)


def _counts(fm: np.ndarray, g: np.ndarray) -> tuple[int, int, int, int]:
    tp = int(np.count_nonzero(fm & g))
    n_fm, n_g = int(np.count_nonzero(fm)), int(np.count_nonzero(g))
    return tp, n_fm - tp, n_g - tp, fm.size - n_fm - n_g + tp


def _scores_from_counts(tp, fp, fn, tn, empty: str) -> dict:
    """Dice, IoU, sensitivity, specificity and E-measure from confusion counts (scalars for one
    threshold, or arrays over the 256 thresholds of a curve)."""
    return {
        "dice": _ratio(2 * tp, 2 * tp + fp + fn, empty),
        "iou": _ratio(tp, tp + fp + fn, empty),
        "sensitivity": _ratio(tp, tp + fn, empty),
        "specificity": _ratio(tn, tn + fp, empty),
        "emeasure": _emeasure_from_counts(tp, fp, fn, tn),
    }


def _binary_scores(fm: np.ndarray, g: np.ndarray, empty: str) -> dict[str, float]:
    return _scores_from_counts(*_counts(fm, g), empty)


# ---------------------------------------------------------------------------------------------
# pure functions on one HxW image


def compute_dice(pred, gt, threshold: float = 0.5, empty: str = "zero") -> float:
    """Dice ``2|P∩G| / (|P| + |G|)`` of ``P = pred > threshold`` (0/0 per ``empty``)."""
    _check_policy(empty, ("score_one", "zero"))
    p, g = _image_pair(pred, gt)
    return _binary_scores(p > threshold, g, empty)["dice"]


def compute_iou(pred, gt, threshold: float = 0.5, empty: str = "zero") -> float:
    """IoU ``|P∩G| / |P∪G|`` of ``P = pred > threshold`` (0/0 per ``empty``)."""
    _check_policy(empty, ("score_one", "zero"))
    p, g = _image_pair(pred, gt)
    return _binary_scores(p > threshold, g, empty)["iou"]


def compute_sensitivity(pred, gt, threshold: float = 0.5, empty: str = "zero") -> float:
    """Sensitivity (recall) ``TP / (TP + FN)`` of ``pred > threshold`` (0/0 per ``empty``)."""
    _check_policy(empty, ("score_one", "zero"))
    p, g = _image_pair(pred, gt)
    return _binary_scores(p > threshold, g, empty)["sensitivity"]


def compute_specificity(pred, gt, threshold: float = 0.5, empty: str = "zero") -> float:
    """Specificity ``TN / (TN + FP)`` of ``pred > threshold`` (0/0, an all-foreground GT, per
    ``empty``)."""
    _check_policy(empty, ("score_one", "zero"))
    p, g = _image_pair(pred, gt)
    return _binary_scores(p > threshold, g, empty)["specificity"]


def compute_mae(pred, gt) -> float:
    """Mean absolute error ``mean|pred − gt|`` (jcs_official.md §4.5)."""
    p, g = _image_pair(pred, gt)
    return float(np.abs(p - g).mean())


def compute_emeasure(pred, gt, threshold: float = 0.5) -> float:
    """E-measure (Fan et al., IJCAI 2018) of the binary map ``pred > threshold``
    (models_and_metrics.md §8.1: closed form, N − 1 denominator, all-0 / all-1 GT cases)."""
    p, g = _image_pair(pred, gt)
    return _emeasure_from_counts(*_counts(p > threshold, g))


def _ssim(p: np.ndarray, g: np.ndarray) -> float:
    """Structural similarity of one quadrant as in Fan's S-measure ``ssim.m``."""
    n = p.size
    if n == 0:
        return 0.0  # only happens with quadrant weight 0
    x, y = p.mean(), g.mean()
    dp, dg = p - x, g - y
    sx2 = (dp * dp).sum() / (n - 1 + EPS)
    sy2 = (dg * dg).sum() / (n - 1 + EPS)
    sxy = (dp * dg).sum() / (n - 1 + EPS)
    alpha = 4.0 * x * y * sxy
    beta = (x * x + y * y) * (sx2 + sy2)
    if alpha != 0:
        return float(alpha / (beta + EPS))
    return 1.0 if beta == 0 else 0.0


def _object_similarity(values: np.ndarray) -> float:
    """``2x / (x² + 1 + σ_x + eps)`` over one region (σ with N − 1, as MATLAB ``std``)."""
    if values.size == 0:
        return 0.0
    x = values.mean()
    sigma = values.std(ddof=1) if values.size > 1 else 0.0
    return float(2.0 * x / (x * x + 1.0 + sigma + EPS))


def _centroid(g: np.ndarray) -> tuple[int, int]:
    """GT centroid as 1-based (row, col) split indices: the 0-based mean pixel position rounded
    half to even, plus 1 (pysodmetrics; models_and_metrics.md §8.2 example 5 needs this). Fan's
    MATLAB code rounds the 1-based centroid half away from zero, one pixel further when the
    centroid lies exactly half-way between two pixels."""
    area = g.sum()
    rows = np.arange(g.shape[0]) @ g.sum(axis=1) / area
    cols = np.arange(g.shape[1]) @ g.sum(axis=0) / area
    return int(np.round(rows)) + 1, int(np.round(cols)) + 1


def _smeasure(p: np.ndarray, g: np.ndarray, alpha: float) -> float:
    mu = g.mean()
    if mu == 0:
        return float(1.0 - p.mean())
    if mu == 1:
        return float(p.mean())
    # object-aware term: foreground on the GT, background (1 − pred) off it
    s_object = mu * _object_similarity(p[g]) + (1 - mu) * _object_similarity(1.0 - p[~g])
    # region-aware term: SSIM of the four quadrants split at the GT centroid
    h, w = g.shape
    y, x = _centroid(g)
    gf = g.astype(np.float64)
    s_region = 0.0
    for rows, cols, weight in (
        (slice(0, y), slice(0, x), x * y),
        (slice(0, y), slice(x, w), (w - x) * y),
        (slice(y, h), slice(0, x), x * (h - y)),
        (slice(y, h), slice(x, w), (w - x) * (h - y)),
    ):
        if weight:
            s_region += weight / (h * w) * _ssim(p[rows, cols], gf[rows, cols])
    return float(max(0.0, alpha * s_object + (1 - alpha) * s_region))


def compute_smeasure(pred, gt, alpha: float = 0.5) -> float:
    """Structure measure (Fan et al., ICCV 2017): ``α·S_object + (1 − α)·S_region``, clipped at
    0; ``1 − mean(pred)`` for an all-background GT and ``mean(pred)`` for an all-foreground GT."""
    p, g = _image_pair(pred, gt)
    return _smeasure(p, g, alpha)


def _curve_counts(p: np.ndarray, g: np.ndarray):
    """TP, FP, FN, TN of ``uint8(p·255) >= k`` for k = 255…0 from cumulative histograms."""
    k = (p * 255).astype(np.uint8).ravel()
    hist = np.bincount(k.astype(np.intp) + 256 * g.ravel(), minlength=512)
    tp = np.cumsum(hist[256:][::-1])
    fp = np.cumsum(hist[:256][::-1])
    n_g = tp[-1]
    return tp, fp, n_g - tp, g.size - n_g - fp


def _curves(p: np.ndarray, g: np.ndarray, empty: str) -> dict[str, np.ndarray]:
    return _scores_from_counts(*_curve_counts(p, g), empty)


def compute_curves(pred, gt, empty: str = "zero") -> dict[str, np.ndarray]:
    """256-point curves of one image: ``dice``, ``iou``, ``sensitivity``, ``specificity``,
    ``emeasure`` and their ``thresholds`` (point i: ``uint8(pred·255) >= 255 − i``)."""
    _check_policy(empty, ("score_one", "zero"))
    p, g = _image_pair(pred, gt)
    return {"thresholds": THRESHOLDS.copy(), **_curves(p, g, empty)}


# ---------------------------------------------------------------------------------------------
# accumulator


def _as_batch(x: np.ndarray, original_shape) -> np.ndarray:
    if x.ndim == 2:
        return x[None]
    if x.ndim == 3:
        return x
    if x.ndim == 4 and x.shape[1] == 1:
        return x[:, 0]
    raise ValueError(f"expected HxW, NxHxW or Nx1xHxW, got shape {tuple(original_shape)}")


_PER_IMAGE = ("dice", "iou", "sensitivity", "specificity", "e_adaptive", "s_measure", "mae",
              "lesion_area")
_CURVES = ("dice", "iou", "sensitivity", "specificity", "emeasure")


class SegmentationMetrics:
    """Dataset accumulator: ``update(pred, gt)`` per batch, then ``compute()``.

    Args:
        threshold: fixed threshold for ``dice``, ``iou``, ``sensitivity``, ``specificity``
            (``pred > threshold``).
        normalize: per-image min-max normalisation of the prediction before every metric (the
            SOD toolboxes / pysodmetrics ``normalize=True``). Default False: sigmoid outputs are
            already probabilities and min-max would turn a near-empty map into a confident one.
        empty: empty-GT policy. ``"exclude"`` (default; the COVID-CS / Inf-Net test sets are
            lesion slices) skips empty-GT images entirely and counts them in ``n_empty_gt``;
            ``"score_one"`` keeps them and scores a 0/0 Dice / IoU / sensitivity as 1 (an empty
            prediction of an empty GT is perfect, any foreground pixel gives 0); ``"zero"`` keeps
            them with 0/0 → 0, as pysodmetrics and Inf-Net.
        adaptive: ``"jcs"`` (default, ``pred > 2·mean``, the authors' ``IoUEval``) or ``"sod"``
            (``pred >= min(2·mean, 1)``, pysodmetrics) for the ``*_adaptive`` metrics.

    ``compute()`` returns floats (NaN when no image was kept): ``dice``, ``iou``,
    ``sensitivity``, ``specificity`` (fixed threshold, mean over images); ``dice_adaptive``,
    ``iou_adaptive``, ``e_adaptive``; ``dice_mean``/``dice_max``, ``iou_mean``/``iou_max``,
    ``sensitivity_mean``, ``specificity_mean``, ``e_mean``/``e_max`` (mean / max over the 256
    thresholds of the dataset-averaged curve, as Inf-Net); ``s_measure``; ``mae``; and the counts
    ``n_images`` (kept) and ``n_empty_gt``. ``per_image`` holds per-image ``dice``, ``iou``,
    ``sensitivity``, ``specificity`` (fixed threshold), ``e_adaptive``, ``s_measure``, ``mae``
    and ``lesion_area`` (GT pixels) of the kept images; ``curves()`` the averaged curves.
    """

    def __init__(self, threshold: float = 0.5, normalize: bool = False, empty: str = "exclude",
                 adaptive: str = "jcs"):
        _check_policy(empty)
        _check_policy(adaptive, ADAPTIVE_MODES)
        self.threshold = threshold
        self.normalize = normalize
        self.empty = empty
        self.adaptive = adaptive
        self.reset()

    def reset(self) -> None:
        self.per_image: dict[str, list[float]] = {name: [] for name in _PER_IMAGE}
        self._adaptive: dict[str, list[float]] = {"dice": [], "iou": []}
        self._curve_sums = {name: np.zeros(N_THRESHOLDS) for name in _CURVES}
        self.n_empty_gt = 0

    def update(self, pred, gt) -> None:
        """Add images: ``pred`` probabilities in [0, 1] (or uint8 0-255), ``gt`` binary; numpy or
        torch; shapes HxW, NxHxW or Nx1xHxW, equal for both."""
        p_raw, g_raw = _to_numpy(pred, "pred"), _to_numpy(gt, "gt")
        p, g = _as_batch(p_raw, p_raw.shape), _as_batch(g_raw, g_raw.shape)
        if p.shape != g.shape:
            raise ValueError(
                f"pred shape {tuple(p_raw.shape)} and gt shape {tuple(g_raw.shape)} do not "
                "describe the same images (expected equal HxW, NxHxW or Nx1xHxW)"
            )
        for p_i, g_i in zip(p, g):
            self._add(_prediction(p_i), _ground_truth(g_i))

    def _add(self, p: np.ndarray, g: np.ndarray) -> None:
        area = int(np.count_nonzero(g))
        if area == 0:
            self.n_empty_gt += 1
            if self.empty == "exclude":
                return
        if self.normalize:
            p = normalize_prediction(p)
        empty = self.empty
        fixed = _binary_scores(p > self.threshold, g, empty)
        adaptive = _binary_scores(adaptive_binarize(p, self.adaptive), g, empty)
        for name in ("dice", "iou", "sensitivity", "specificity"):
            self.per_image[name].append(fixed[name])
        self.per_image["e_adaptive"].append(adaptive["emeasure"])
        self.per_image["s_measure"].append(_smeasure(p, g, 0.5))
        self.per_image["mae"].append(float(np.abs(p - g).mean()))
        self.per_image["lesion_area"].append(area)
        self._adaptive["dice"].append(adaptive["dice"])
        self._adaptive["iou"].append(adaptive["iou"])
        for name, curve in _curves(p, g, empty).items():
            self._curve_sums[name] += curve

    @property
    def n_images(self) -> int:
        return len(self.per_image["mae"])

    def curves(self) -> dict[str, np.ndarray]:
        """Dataset-averaged 256-point curves (``thresholds``, ``dice``, ``iou``, ``sensitivity``,
        ``specificity``, ``emeasure``)."""
        n = self.n_images
        scale = 1.0 / n if n else np.nan
        return {"thresholds": THRESHOLDS.copy(),
                **{name: s * scale for name, s in self._curve_sums.items()}}

    def compute(self) -> dict[str, float]:
        def mean(values):
            return float(np.mean(values)) if values else float("nan")

        c = self.curves()
        out = {name: mean(self.per_image[name])
               for name in ("dice", "iou", "sensitivity", "specificity")}
        out.update({
            "dice_adaptive": mean(self._adaptive["dice"]),
            "iou_adaptive": mean(self._adaptive["iou"]),
            "e_adaptive": mean(self.per_image["e_adaptive"]),
            "dice_mean": float(c["dice"].mean()),
            "dice_max": float(c["dice"].max()),
            "iou_mean": float(c["iou"].mean()),
            "iou_max": float(c["iou"].max()),
            "sensitivity_mean": float(c["sensitivity"].mean()),
            "specificity_mean": float(c["specificity"].mean()),
            "e_mean": float(c["emeasure"].mean()),
            "e_max": float(c["emeasure"].max()),
            "s_measure": mean(self.per_image["s_measure"]),
            "mae": mean(self.per_image["mae"]),
            "n_images": self.n_images,
            "n_empty_gt": self.n_empty_gt,
        })
        return out
