"""Classical baselines on ELA features: what a CNN has to beat (the isthisimagefake comparison).

Features (:func:`ela_features`): for every image, the *same pixels the CNNs see* -- the central, JPEG-grid-
aligned ``size`` x ``size`` crop at native resolution that :class:`helpers.pipeline.ForgeryBatches` takes with
``augment=False`` (same :func:`helpers.augment.build_pipeline` call, same :func:`helpers.augment.with_forensics`)
-- and the same label rule (``crop_labels``: a tampered image counts as tampered only if its crop holds a tampered
pixel). So the baselines and the networks are scored on identical inputs and labels. ``size=None`` uses the
whole image and its image label instead. Nothing is resized before ELA: a resize moves every pixel off the
8x8 JPEG grid and ELA would then measure texture, not compression history.

From the raw ELA crop (uint8 absolute differences of a quality-``quality`` re-save), per colour channel:

* a histogram of error levels on fixed, roughly logarithmic bins (:data:`HISTOGRAM_EDGES`), as fractions of
  the crop: most error levels of a consistent JPEG sit in the first bins, an edited region adds mass further up;
* statistics: mean, standard deviation, median, 90th and 99th percentiles, maximum;

then, on the channel-mean ELA, the spread of its 8x8-block means (std, max, 90th percentile, max / median: an
edit makes some blocks' error levels disagree with the rest) and a ``thumb`` x ``thumb`` area-downsampled copy
(where the error is, coarsely). 3 x (12 + 6) + 4 + thumb^2 values; 314 with the default ``thumb=16``.

Models (:func:`train_baselines`): logistic regression (standardised features), random forest, gradient
boosting, AdaBoost, XGBoost when the optional ``xgboost`` package is installed (skipped with a
:class:`MissingOptionalDependency` warning otherwise), and soft-voting ensembles RF+AdaBoost and RF+GB, as
the isthisimagefake comparison did.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np
import pandas as pd
from sklearn.ensemble import AdaBoostClassifier, GradientBoostingClassifier, RandomForestClassifier, VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from helpers.augment import augment, build_pipeline, with_forensics
from helpers.config import ELA_QUALITY, JPEG_BLOCK
from helpers.imageio import ImageLoadError, load_mask, load_rgb
from helpers.parallel import process_map

__all__ = [
    "HISTOGRAM_EDGES",
    "BASELINE_NAMES",
    "MissingOptionalDependency",
    "feature_names",
    "image_features",
    "ela_features",
    "xgboost_available",
    "make_baselines",
    "train_baselines",
    "predict_scores",
]

HISTOGRAM_EDGES: tuple[int, ...] = (0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 256)
"""Bin edges of the per-channel error-level histograms (12 bins; the last, 64..255, is rare in a clean JPEG)."""

_STATISTICS = ("mean", "std", "median", "p90", "p99", "max")
_BLOCK_STATISTICS = ("block_std", "block_max", "block_p90", "block_max_over_median")
_CHANNELS = ("r", "g", "b")

BASELINE_NAMES: tuple[str, ...] = (
    "logistic_regression",
    "random_forest",
    "gradient_boosting",
    "adaboost",
    "xgboost",
    "voting_rf_adaboost",
    "voting_rf_gb",
)
"""Every baseline :func:`train_baselines` can fit, in report order (``xgboost`` only when installed)."""


class MissingOptionalDependency(UserWarning):
    """An optional package (``xgboost``) is not installed, so the model that needs it is skipped."""


# --------------------------------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------------------------------
def feature_names(thumb: int = 16) -> list[str]:
    """Names of :func:`image_features`' values, in order (for feature importances and tables)."""
    names = []
    for channel in _CHANNELS:
        names += [f"{channel}_hist_{lo}_{hi}" for lo, hi in zip(HISTOGRAM_EDGES[:-1], HISTOGRAM_EDGES[1:])]
        names += [f"{channel}_{stat}" for stat in _STATISTICS]
    names += list(_BLOCK_STATISTICS)
    names += [f"thumb_{i}_{j}" for i in range(thumb) for j in range(thumb)]
    return names


def image_features(level: np.ndarray, thumb: int = 16) -> np.ndarray:
    """The feature vector of one raw ELA map (``uint8 (H, W, 3)``), as described in the module docstring."""
    level = np.asarray(level)
    if level.ndim != 3 or level.shape[2] != 3:
        raise ValueError(f"expected an ELA map of shape (H, W, 3), not {level.shape}")
    values: list[float] = []
    pixels = level.reshape(-1, 3).astype(np.float32)
    for c in range(3):
        channel = pixels[:, c]
        hist, _ = np.histogram(channel, bins=HISTOGRAM_EDGES)
        values += (hist / channel.size).tolist()
        p50, p90, p99 = np.percentile(channel, [50, 90, 99])
        values += [float(channel.mean()), float(channel.std()), float(p50), float(p90), float(p99), float(channel.max())]
    grey = level.astype(np.float32).mean(axis=2)
    block = JPEG_BLOCK
    rows, cols = grey.shape[0] // block, grey.shape[1] // block
    if rows and cols:
        blocks = grey[: rows * block, : cols * block].reshape(rows, block, cols, block).mean(axis=(1, 3)).reshape(-1)
    else:  # smaller than one JPEG block: the whole map is one block
        blocks = np.array([grey.mean()], dtype=np.float32)
    median = float(np.median(blocks))
    values += [float(blocks.std()), float(blocks.max()), float(np.percentile(blocks, 90)),
               float(blocks.max() / median) if median > 0 else 0.0]
    values += cv2.resize(grey, (thumb, thumb), interpolation=cv2.INTER_AREA).reshape(-1).tolist()
    return np.asarray(values, dtype=np.float32)


def _features_task(task: tuple[str, str, int | None, int, int, bool, int]) -> tuple[np.ndarray | None, int, str]:
    """One image -> (features, crop label, error text); module-level so spawned workers can import it."""
    image_path, mask_path, size, quality, thumb, crop_labels, label = task
    try:
        rgb = load_rgb(image_path)
        mask = load_mask(mask_path, size=(rgb.shape[1], rgb.shape[0])) if mask_path else None
    except ImageLoadError as error:
        return None, label, str(error)
    if size is not None:
        # Exactly ForgeryBatches(augment=False, mode="crop"): the centre crop on the JPEG grid, padded if small.
        pipeline = build_pipeline(crop=size, geometric=None, photometric=False, centre=True)
        rgb, mask = augment(rgb, mask, pipeline, seed=0)
        if label == 1 and mask is not None and crop_labels:
            label = int(mask.any())
    level = with_forensics(rgb, ("ela",), quality)["ela"]
    return image_features(level, thumb), label, ""


def ela_features(
    manifest: pd.DataFrame,
    *,
    size: int | None = 128,
    quality: int = ELA_QUALITY,
    thumb: int = 16,
    crop_labels: bool = True,
    workers: int | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)``: :func:`image_features` of every manifest row (``float32 (N, F)``) and its label (``int64 (N,)``).

    ``size``/``crop_labels`` as in ``ForgeryBatches(mode="crop", augment=False)`` (module docstring); ``quality``
    is the ELA re-save quality. Images are processed in a :func:`helpers.parallel.process_map` pool of
    ``workers`` spawned processes (default: all cores; ``1`` runs here). An unreadable image raises
    ``ValueError`` naming it: silently dropping rows would misalign ``X`` with the manifest.
    """
    images = manifest["image_path"] if "image_path" in manifest else manifest["image"]
    masks = manifest["mask_path"] if "mask_path" in manifest else manifest.get("mask", pd.Series([""] * len(manifest)))
    tasks = [
        (str(image), "" if not isinstance(mask, str) else mask, size, int(quality), int(thumb), bool(crop_labels),
         int(label))
        for image, mask, label in zip(images, masks, manifest["label"])
    ]
    rows, labels = [], []
    for features, label, error in process_map(_features_task, tasks, workers=workers, desc="ELA features",
                                              unit="img", progress=progress):
        if features is None:
            raise ValueError(f"cannot compute ELA features: {error}")
        rows.append(features)
        labels.append(label)
    if not rows:
        raise ValueError("the manifest has no rows")
    return np.stack(rows).astype(np.float32), np.asarray(labels, dtype=np.int64)


# --------------------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------------------
def xgboost_available() -> bool:
    """Whether the optional ``xgboost`` package can be imported."""
    try:
        import xgboost  # noqa: F401  (optional dependency: imported only where it is used)
    except ImportError:
        return False
    return True


def make_baselines(seed: int = 0, *, include: Sequence[str] | None = None) -> dict[str, Any]:
    """Unfitted scikit-learn-style estimators by name (:data:`BASELINE_NAMES`, or the subset ``include``).

    Settings are modest and fixed (a few hundred trees, depth-limited boosting) rather than tuned: these are
    reference points, and tuning them on a small validation split would overfit it. Random forest and logistic
    regression weight classes inversely to their frequency (crop labels are imbalanced); every estimator that
    draws random numbers gets ``seed``. ``xgboost`` is left out, with a :class:`MissingOptionalDependency`
    warning, when the package is missing.
    """
    wanted = list(BASELINE_NAMES if include is None else include)
    unknown = [name for name in wanted if name not in BASELINE_NAMES]
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; choose from {BASELINE_NAMES}")

    def forest() -> Any:
        return RandomForestClassifier(n_estimators=300, min_samples_leaf=2, class_weight="balanced",
                                      random_state=seed, n_jobs=-1)

    def boosting() -> Any:
        return GradientBoostingClassifier(n_estimators=150, max_depth=3, learning_rate=0.05, subsample=0.8,
                                          random_state=seed)

    def adaboost() -> Any:
        return AdaBoostClassifier(n_estimators=200, learning_rate=0.5, random_state=seed)

    factories = {
        "logistic_regression": lambda: make_pipeline(
            StandardScaler(), LogisticRegression(C=0.1, max_iter=5000, class_weight="balanced")
        ),
        "random_forest": forest,
        "gradient_boosting": boosting,
        "adaboost": adaboost,
        "voting_rf_adaboost": lambda: VotingClassifier([("rf", forest()), ("ada", adaboost())], voting="soft"),
        "voting_rf_gb": lambda: VotingClassifier([("rf", forest()), ("gb", boosting())], voting="soft"),
    }
    models: dict[str, Any] = {}
    for name in wanted:
        if name == "xgboost":
            if not xgboost_available():
                warnings.warn("xgboost is not installed: skipping the XGBoost baseline "
                              "(pip install xgboost to include it)", MissingOptionalDependency, stacklevel=2)
                continue
            from xgboost import XGBClassifier  # optional dependency, checked just above

            models[name] = XGBClassifier(n_estimators=300, max_depth=4, learning_rate=0.05, subsample=0.8,
                                         colsample_bytree=0.8, random_state=seed, n_jobs=-1,
                                         eval_metric="logloss", tree_method="hist")
        else:
            models[name] = factories[name]()
    return models


def train_baselines(
    X_train: np.ndarray, y_train: np.ndarray, seed: int = 0, *, include: Sequence[str] | None = None
) -> dict[str, Any]:
    """Fit every baseline of :func:`make_baselines` on ``(X_train, y_train)``; returns ``{name: fitted}``.

    Raises ``ValueError`` when ``y_train`` holds one class only (no classifier can learn from that; with crop
    labels, use larger crops or more images).
    """
    X = np.asarray(X_train, dtype=np.float32)
    y = np.asarray(y_train).reshape(-1).astype(np.int64)
    if X.ndim != 2 or X.shape[0] != y.size:
        raise ValueError(f"X_train must be (N, F) with N = len(y_train); got {X.shape} and {y.size}")
    if np.unique(y).size < 2:
        raise ValueError("y_train holds a single class: the baselines need both authentic and tampered examples")
    models = make_baselines(seed, include=include)
    for model in models.values():
        model.fit(X, y)
    return models


def predict_scores(models: Mapping[str, Any], X: np.ndarray) -> dict[str, np.ndarray]:
    """``{name: P(tampered)}`` of every fitted model on ``X`` (``float64 (N,)``), for :mod:`helpers.metrics`."""
    X = np.asarray(X, dtype=np.float32)
    out: dict[str, np.ndarray] = {}
    for name, model in models.items():
        proba = model.predict_proba(X)
        classes = list(getattr(model, "classes_", [0, 1]))
        out[name] = np.asarray(proba[:, classes.index(1)], dtype=np.float64)
    return out
