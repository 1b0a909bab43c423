"""Image-level (detection) metrics over a set of images: is this image tampered? (notebook 07).

Every detector gives each image a score in ``[0, 1]`` (its own, or the maximum of its heatmap when it has none;
see :func:`helpers.evaluation.protocol.evaluate`). An image is *called tampered* when its score is above the
threshold (strictly, as TruFor's ``scores > 0.5``). Label 1 = tampered, the positive class.

* :func:`image_auc`: ROC-AUC of the scores (threshold-free); NaN when only one class is present, which is why
  the protocol computes it over the whole manifest as well as per dataset;
* :func:`balanced_accuracy`: the mean of the two recalls at the threshold (TruFor's bACC); NaN with one class;
* :func:`false_alarm_rate`: the fraction of *authentic* images called tampered; NaN without authentic images.

Scores that are NaN (a detector that failed on an image) are left out of all three.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from helpers.evaluation.pixel import pixel_auc

__all__ = ["image_auc", "balanced_accuracy", "false_alarm_rate", "detection_metrics"]


def _labelled(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(f"{y.size} labels but {s.size} scores")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be 0 (authentic) or 1 (tampered), found {np.unique(y)[:6].tolist()}")
    keep = np.isfinite(s)
    return y[keep].astype(np.int64), s[keep]


def image_auc(labels: Any, scores: Any) -> float:
    """ROC-AUC of image scores against 0/1 labels; NaN when fewer than two classes have a finite score."""
    y, s = _labelled(labels, scores)
    if np.unique(y).size < 2:
        return float("nan")
    return pixel_auc(s, y == 1)  # the same rank statistic (Mann-Whitney U, ties averaged) as scikit-learn's


def balanced_accuracy(labels: Any, scores: Any, threshold: float = 0.5) -> float:
    """Mean of the recalls of tampered and authentic images, calling ``score > threshold`` tampered; NaN with one class."""
    y, s = _labelled(labels, scores)
    if np.unique(y).size < 2:
        return float("nan")
    called = s > threshold
    return float((called[y == 1].mean() + (~called[y == 0]).mean()) / 2.0)


def false_alarm_rate(labels: Any, scores: Any, threshold: float = 0.5) -> float:
    """Fraction of authentic images (label 0) with ``score > threshold``; NaN when there is none."""
    y, s = _labelled(labels, scores)
    authentic = s[y == 0]
    return float((authentic > threshold).mean()) if authentic.size else float("nan")


def detection_metrics(labels: Any, scores: Any, threshold: float = 0.5) -> dict[str, float]:
    """``image_auc``, ``balanced_accuracy`` and ``false_alarm_rate`` of one set of images, in one dict."""
    return {
        "image_auc": image_auc(labels, scores),
        "balanced_accuracy": balanced_accuracy(labels, scores, threshold),
        "false_alarm_rate": false_alarm_rate(labels, scores, threshold),
    }
