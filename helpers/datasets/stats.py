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
from helpers.imageio import ImageLoadError, load_mask

__all__ = ["file_stats", "mask_fractions", "metadata_leakage", "LEAKAGE_FEATURES"]

# Channels per Pillow mode: the seeds found 4-channel (RGBA, CMYK) and greyscale images in CASIA.
_MODE_CHANNELS = {"1": 1, "L": 1, "P": 1, "I": 1, "F": 1, "I;16": 1, "I;16B": 1, "I;16L": 1, "LA": 2, "La": 2,
                  "PA": 2, "RGB": 3, "YCbCr": 3, "LAB": 3, "HSV": 3, "RGBA": 4, "RGBa": 4, "RGBX": 4, "CMYK": 4}

LEAKAGE_FEATURES: tuple[str, ...] = ("file_bytes", "bytes_per_pixel", "width", "height", "jpeg_quality", "is_jpeg")


def file_stats(manifest: pd.DataFrame) -> pd.DataFrame:
    """Per image: format, Pillow mode and channels, file size, bytes per pixel, width, height, and estimated
    JPEG quality (NaN if not JPEG).

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
                mode = img.mode
            jpeg = estimate_jpeg_quality(file)
            size = file.stat().st_size
            record.update(
                format=jpeg.format, mode=mode, channels=_MODE_CHANNELS.get(mode, np.nan), file_bytes=size, width=width, height=height,
                bytes_per_pixel=size / float(width * height),
                jpeg_quality=float(jpeg.quality) if jpeg.quality is not None else np.nan,
                is_jpeg=float(jpeg.is_jpeg),
            )
        except (ImageLoadError, OSError):
            record.update(readable=False, format="unreadable", mode="", channels=np.nan, file_bytes=np.nan, width=np.nan, height=np.nan,
                          bytes_per_pixel=np.nan, jpeg_quality=np.nan, is_jpeg=np.nan)
        records.append(record)
    stats = pd.DataFrame.from_records(records, index=manifest.index)
    return stats.assign(label=manifest["label"].to_numpy())


def mask_fractions(manifest: pd.DataFrame) -> pd.Series:
    """Fraction of tampered pixels per image: 0 for images without a mask, NaN for unreadable masks.

    A recorded ``mask_fraction`` (the embedded set writes one) is used where present; other masks are read.
    """
    recorded = (manifest["mask_fraction"].astype(float) if "mask_fraction" in manifest
                else pd.Series(np.nan, index=manifest.index))
    values = []
    for known, path in zip(recorded, manifest["mask_path"]):
        if not pd.isna(known):
            values.append(float(known))
        elif not isinstance(path, str) or not path:
            values.append(0.0)
        else:
            try:
                values.append(float(load_mask(path).mean()))
            except ImageLoadError:
                values.append(np.nan)
    return pd.Series(values, index=manifest.index, name="mask_fraction")


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
    groups = None
    if "group" in manifest:
        column = manifest["group"]
        if column.notna().all() and (column.astype(str) != "").all():
            groups = column.astype(str).to_numpy()
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
