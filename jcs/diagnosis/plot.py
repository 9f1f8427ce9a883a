"""The report's per-slice probability plot, drawn with matplotlib as SVG."""
from __future__ import annotations

import io
from typing import Sequence

import numpy as np


def probability_svg(probs: np.ndarray, slice_threshold: float, highlight: Sequence[int],
                    positives: Sequence[int] = (), width_in: float = 7.2,
                    height_in: float = 2.4) -> str:
    """SVG text of P(COVID-19) (``probs``: float S in [0, 1]) against the slice index (0 = the
    most superior slice): the curve, the slice threshold as a dashed line, the positive slices
    shaded and the ``highlight`` slices (the report's top slices) marked. Drawn on a matplotlib
    :class:`~matplotlib.figure.Figure` (no pyplot state: safe in threads), with no date in the
    file so the same input gives the same SVG."""
    import matplotlib
    from matplotlib.figure import Figure

    probs = np.asarray(probs, dtype=np.float64)
    figure = Figure(figsize=(width_in, height_in))
    axes = figure.add_subplot()
    index = np.arange(len(probs))
    for i in positives:
        axes.axvspan(i - 0.5, i + 0.5, color="#f4c7c3", linewidth=0)
    axes.plot(index, probs, color="#1f5fa8", linewidth=1.3, label="P(COVID-19)")
    axes.axhline(slice_threshold, color="#c33", linestyle="--", linewidth=1,
                 label=f"slice threshold {slice_threshold:g}")
    shown = [i for i in highlight if 0 <= i < len(probs)]
    if shown:
        axes.plot(shown, probs[shown], "o", color="#e07b00", markersize=4, label="shown below")
    axes.set_xlim(-0.5, max(len(probs) - 0.5, 0.5))
    axes.set_ylim(-0.02, 1.02)
    axes.set_xlabel("slice index (superior → inferior)")
    axes.set_ylabel("P(COVID-19)")
    axes.legend(loc="upper right", fontsize="small", frameon=False)
    figure.tight_layout()
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "jcs-diagnosis"}):  # reproducible clip-path ids
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()
