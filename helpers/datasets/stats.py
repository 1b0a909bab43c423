"""File-level statistics of a manifest, and a check that they do not give the label away.

A detector should learn from pixels, not from how a file was stored. If tampered images were all PNGs, or all
saved at quality 75, a model would score well by reading the container and learn nothing about forgeries
(early CASIA v2 results suffered from this). :func:`metadata_leakage` measures how well the file's format,
size, dimensions and JPEG quality alone predict the label; near 0.5 ROC-AUC means they do not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from helpers.forensics.jpeg import estimate_jpeg_quality
from helpers.imageio import ImageLoadError

__all__ = ["file_stats", "metadata_leakage", "LEAKAGE_FEATURES"]

LEAKAGE_FEATURES: tuple[str, ...] = ("file_bytes", "bytes_per_pixel", "width", "height", "jpeg_quality", "is_jpeg")


def file_stats(manifest: pd.DataFrame) -> pd.DataFrame:
    """Per image: format, file size, bytes per pixel, width, height, estimated JPEG quality (NaN if not JPEG).

    Unreadable files get NaN entries and ``readable=False`` rather than stopping the table.
    """
    records = []
    for path in manifest["image_path"]:
        file = Path(path)
        record: dict[str, object] = {"image_path": path, "readable": True}
        try:
            from PIL import Image

            with Image.open(file) as img:
                width, height = img.size
            jpeg = estimate_jpeg_quality(file)
            size = file.stat().st_size
            record.update(
                format=jpeg.format, file_bytes=size, width=width, height=height,
                bytes_per_pixel=size / float(width * height),
                jpeg_quality=float(jpeg.quality) if jpeg.quality is not None else np.nan,
                is_jpeg=float(jpeg.is_jpeg),
            )
        except (ImageLoadError, OSError):
            record.update(readable=False, format="unreadable", file_bytes=np.nan, width=np.nan, height=np.nan,
                          bytes_per_pixel=np.nan, jpeg_quality=np.nan, is_jpeg=np.nan)
        records.append(record)
    stats = pd.DataFrame.from_records(records, index=manifest.index)
    return stats.assign(label=manifest["label"].to_numpy())


def metadata_leakage(manifest: pd.DataFrame, *, folds: int = 5, seed: int = 0,
                     stats: pd.DataFrame | None = None) -> dict[str, float]:
    """Cross-validated ROC-AUC of classifiers that see only file-level features, one entry per model.

    Folds are grouped by ``group`` when the manifest has one (crops of one photo share file traits), so the
    score reflects new photos. Returns ``{"logistic_regression": auc, "random_forest": auc}``.
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, StratifiedKFold, cross_val_predict
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    stats = stats if stats is not None else file_stats(manifest)
    features = stats[list(LEAKAGE_FEATURES)].to_numpy(dtype=float)
    labels = manifest["label"].to_numpy()
    if len(np.unique(labels)) < 2:
        raise ValueError("metadata_leakage needs both authentic and tampered images")
    groups = manifest["group"].to_numpy() if "group" in manifest else None
    if groups is not None and len(np.unique(groups)) >= folds:
        splitter, split_groups = GroupKFold(n_splits=folds), groups
    else:
        splitter, split_groups = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed), None
    models = {
        "logistic_regression": make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=1000)),
        "random_forest": make_pipeline(
            SimpleImputer(), RandomForestClassifier(n_estimators=200, min_samples_leaf=3, random_state=seed)
        ),
    }
    scores = {}
    for name, model in models.items():
        probabilities = cross_val_predict(model, features, labels, cv=splitter, groups=split_groups,
                                          method="predict_proba")[:, 1]
        scores[name] = float(roc_auc_score(labels, probabilities))
    return scores
