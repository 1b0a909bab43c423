"""Image-level classification metrics in NumPy and scikit-learn, the same for every model of the workbook.

Why one module: the compact CNN, ResNet50 transfer and the classical baselines are only comparable when the
same function scores all of them on the same labels. Everything here takes arrays and returns plain Python
(floats, ints, nested lists), so the result goes straight into ``metrics.json``. No Keras: the baselines and
the report must not pay for importing a deep-learning backend.

Conventions: label 1 = tampered (the positive class), scores are probabilities of that class, and a score
``>= threshold`` predicts tampered. A metric that is undefined on the data (ROC-AUC with one class present)
is ``nan`` rather than an exception, because a small held-out split or a fixture subset can legitimately
hold one class only; :func:`helpers.atomic.json_safe` (re-exported here) turns ``nan`` into ``None``, and
:func:`helpers.atomic.atomic_write_json` applies it to everything it writes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from helpers.atomic import json_safe

__all__ = ["classification_metrics", "multiclass_metrics", "roc_points", "best_threshold", "json_safe"]


def _binary_arrays(y_true: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(f"y_true has {y.size} values but scores has {s.size}")
    if y.size == 0:
        raise ValueError("cannot score an empty set")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"y_true must hold 0 (authentic) and 1 (tampered) only, found {np.unique(y)[:6]}")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite (a diverged model predicts NaN; check its training curves)")
    return y.astype(np.int64), s


def classification_metrics(y_true: Any, scores: Any, threshold: float = 0.5) -> dict[str, Any]:
    """Binary metrics of tampered-vs-authentic scores at ``threshold``.

    Returns ``accuracy``, ``balanced_accuracy`` (the mean of both recalls: honest when one class dominates,
    as crop labels often make it), ``precision``, ``recall``, ``f1`` (of the tampered class; 0 when the model
    predicts no tampered image at all), ``roc_auc`` (threshold-free; ``nan`` when only one class is present),
    ``confusion_matrix`` as ``[[tn, fp], [fn, tp]]`` (rows: truth, columns: prediction), ``threshold`` and the
    counts ``n``, ``positives``, ``negatives``.
    """
    y, s = _binary_arrays(y_true, scores)
    predicted = (s >= threshold).astype(np.int64)
    both = np.unique(y).size == 2
    cm = confusion_matrix(y, predicted, labels=[0, 1])
    return {
        "accuracy": float(accuracy_score(y, predicted)),
        # sklearn warns (and returns the one recall) when a class is absent; keep the definition explicit.
        "balanced_accuracy": float(balanced_accuracy_score(y, predicted)) if both else float(accuracy_score(y, predicted)),
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "roc_auc": float(roc_auc_score(y, s)) if both else math.nan,
        "confusion_matrix": cm.astype(int).tolist(),
        "threshold": float(threshold),
        "n": int(y.size),
        "positives": int(y.sum()),
        "negatives": int(y.size - y.sum()),
    }


def multiclass_metrics(y_true: Any, proba: Any, class_names: Sequence[str]) -> dict[str, Any]:
    """Per-class and macro metrics of a softmax classifier (prediction = the most probable class).

    ``y_true`` holds class indices into ``class_names``; ``proba`` is ``(N, K)`` probabilities (or ``(N,)``
    predicted indices). Returns ``accuracy``, ``balanced_accuracy``, ``macro_f1`` (over the classes present in
    ``y_true`` or predicted, as scikit-learn counts them), ``per_class`` ``{name: {precision, recall, f1,
    support}}`` and the ``K x K`` ``confusion_matrix`` (rows: truth, in ``class_names`` order).
    """
    names = list(class_names)
    y = np.asarray(y_true).reshape(-1).astype(np.int64)
    p = np.asarray(proba)
    predicted = p.argmax(axis=1) if p.ndim == 2 else p.reshape(-1).astype(np.int64)
    if p.ndim == 2 and p.shape[1] != len(names):
        raise ValueError(f"proba has {p.shape[1]} columns but {len(names)} class names were given")
    if y.shape != predicted.shape:
        raise ValueError(f"y_true has {y.size} values but proba has {predicted.size} rows")
    if y.size == 0:
        raise ValueError("cannot score an empty set")
    if y.min() < 0 or y.max() >= len(names):
        raise ValueError(f"class indices must lie in 0..{len(names) - 1}, found {np.unique(y)[:6]}")
    labels = list(range(len(names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y, predicted, labels=labels, zero_division=0
    )
    present = sorted(set(y.tolist()) | set(predicted.tolist()))
    return {
        "accuracy": float(accuracy_score(y, predicted)),
        "balanced_accuracy": float(np.mean([recall[i] for i in sorted(set(y.tolist()))])),
        "macro_f1": float(np.mean([f1[i] for i in present])),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(names)
        },
        "confusion_matrix": confusion_matrix(y, predicted, labels=labels).astype(int).tolist(),
        "class_names": names,
        "n": int(y.size),
    }


def roc_points(y_true: Any, scores: Any) -> tuple[np.ndarray, np.ndarray, float]:
    """``(false positive rates, true positive rates, AUC)`` for a ROC plot; empty curves and ``nan`` for one class."""
    y, s = _binary_arrays(y_true, scores)
    if np.unique(y).size < 2:
        return np.array([]), np.array([]), math.nan
    fpr, tpr, _ = roc_curve(y, s)
    return fpr, tpr, float(roc_auc_score(y, s))


def best_threshold(y_true: Any, scores: Any) -> float:
    """The score threshold maximising balanced accuracy (Youden's J) on ``(y_true, scores)``; 0.5 for one class.

    Choose it on the *validation* split and apply it to the test split: picking it on the test split would
    report a score no deployed model could reach.
    """
    y, s = _binary_arrays(y_true, scores)
    if np.unique(y).size < 2:
        return 0.5
    fpr, tpr, thresholds = roc_curve(y, s)
    best = int(np.argmax(tpr - fpr))
    return float(min(1.0, max(0.0, thresholds[best])))
