"""How well does each forensic trace, on its own, separate tampered from authentic pixels?

For every tampered image the raw trace maps (no learning) are scored against the ground-truth mask with the
pixel ROC-AUC: the probability that a random tampered pixel scores higher than a random authentic one. The
direction of a trace is not known in advance (a splice may raise or lower error levels; inpainting lowers the
noise level), so the score reported first is the *direction-free* AUC, ``max(auc, 1 - auc)``; the signed AUC is
kept beside it. 0.5 means the map carries no information about where the edit is.

The two experiments show where error level analysis fails: each re-save of the whole image pulls the error
levels of edited and original regions together, and resizing after the last save breaks the 8x8 JPEG grid the
method relies on.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import pandas as pd

from helpers.config import ELA_QUALITY
from helpers.evaluation.pixel import pixel_auc
from helpers.forensics.ela import ela
from helpers.forensics.maps import TRACE_MAPS, trace_maps
from helpers.imageio import ImageLoadError, jpeg_roundtrip, load_mask, load_rgb
from helpers.parallel import process_map

__all__ = [
    "TRACE_MAPS",
    "trace_maps",
    "pixel_auc",
    "trace_separability",
    "resave_experiment",
    "resize_experiment",
    "ela_robustness",
]

def _image_separability(task: tuple[str, str, int]) -> list[dict]:
    image_path, mask_path, ela_quality = task
    try:
        rgb = load_rgb(image_path)
        mask = load_mask(mask_path, size=(rgb.shape[1], rgb.shape[0]))
    except ImageLoadError as error:
        return [{"image_path": image_path, "map": None, "error": str(error)}]
    rows = []
    for name, score_map in trace_maps(rgb, ela_quality=ela_quality).items():
        auc = pixel_auc(score_map, mask)
        rows.append({"image_path": image_path, "map": name, "auc": auc,
                     "auc_direction_free": max(auc, 1.0 - auc) if not np.isnan(auc) else np.nan, "error": ""})
    return rows


def trace_separability(
    manifest: pd.DataFrame,
    *,
    ela_quality: int = ELA_QUALITY,
    workers: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Pixel AUC of every trace map on every tampered image with a mask, in a process pool.

    Returns one row per image and map with ``auc`` (signed), ``auc_direction_free`` and the manifest's
    ``dataset`` and ``kind`` when present. Unreadable images or masks are reported in an ``error`` row (its
    ``map`` is ``None``) and do not stop the run.
    """
    rows_with_masks = manifest[(manifest["label"] == 1) & (manifest["mask_path"] != "")]
    tasks = [(row.image_path, row.mask_path, ela_quality) for row in rows_with_masks.itertuples()]
    records = [r for rows in process_map(_image_separability, tasks, workers=workers, desc="trace maps",
                                         unit="img", progress=progress) for r in rows]
    table = pd.DataFrame.from_records(records, columns=["image_path", "map", "auc", "auc_direction_free", "error"])
    extra = [c for c in ("dataset", "kind", "group") if c in manifest]
    if extra:
        table = table.merge(rows_with_masks[["image_path", *extra]], on="image_path", how="left")
    return table


def resave_experiment(
    rgb: np.ndarray, mask: np.ndarray, *, resaves: Sequence[int] = (0, 1, 2, 4, 8), quality: int = 90,
    ela_quality: int = ELA_QUALITY,
) -> pd.DataFrame:
    """ELA's pixel AUC and contrast (mean error inside the mask / outside) after re-saving the whole image.

    Each re-save is a full JPEG round trip at ``quality``: what sharing, messaging apps and editors do to a
    forgery after the fact.
    """
    rows = []
    current, done = rgb, 0
    for count in sorted(resaves):
        while done < count:
            current, done = jpeg_roundtrip(current, quality), done + 1
        level = ela(current, ela_quality).mean(axis=2, dtype=np.float32)
        rows.append({"resaves": count, **_ela_scores(level, mask)})
    return pd.DataFrame(rows)


def resize_experiment(
    rgb: np.ndarray, mask: np.ndarray, *, factors: Sequence[float] = (1.0, 0.9, 0.75, 0.5), ela_quality: int = ELA_QUALITY,
) -> pd.DataFrame:
    """ELA's pixel AUC and contrast after resizing the image (area interpolation; mask by nearest neighbour)."""
    rows = []
    height, width = rgb.shape[:2]
    for factor in factors:
        size = (max(8, round(width * factor)), max(8, round(height * factor)))
        image = rgb if factor == 1.0 else cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        region = mask if factor == 1.0 else cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        level = ela(np.ascontiguousarray(image), ela_quality).mean(axis=2, dtype=np.float32)
        rows.append({"factor": factor, **_ela_scores(level, region)})
    return pd.DataFrame(rows)


def _ela_scores(level: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    inside, outside = float(level[mask].mean()), float(level[~mask].mean())
    auc = pixel_auc(level, mask)
    return {"auc": auc, "auc_direction_free": max(auc, 1 - auc), "mean_inside": inside, "mean_outside": outside,
            "contrast": inside / outside if outside > 0 else float("nan")}


def ela_robustness(
    manifest: pd.DataFrame,
    *,
    kind: str | None = "splice",
    max_images: int = 30,
    seed: int = 0,
    resaves: Sequence[int] = (0, 1, 2, 4, 8),
    factors: Sequence[float] = (1.0, 0.9, 0.75, 0.5),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`resave_experiment` and :func:`resize_experiment` over up to ``max_images`` tampered images.

    Images are drawn at random (``seed``) among tampered rows with masks (of ``kind`` when the manifest has a
    ``kind`` column and ``kind`` is given). Returns the two tables with an ``image_path`` column; unreadable
    files are skipped.
    """
    rows = manifest[(manifest["label"] == 1) & (manifest["mask_path"] != "")]
    if kind is not None and "kind" in rows:
        rows = rows[rows["kind"] == kind]
    rows = rows.sample(n=min(max_images, len(rows)), random_state=seed) if len(rows) else rows
    resaved, resized = [], []
    for row in rows.itertuples():
        try:
            rgb = load_rgb(row.image_path)
            mask = load_mask(row.mask_path, size=(rgb.shape[1], rgb.shape[0]))
        except ImageLoadError:
            continue
        if not mask.any() or mask.all():
            continue
        resaved.append(resave_experiment(rgb, mask, resaves=resaves).assign(image_path=row.image_path))
        resized.append(resize_experiment(rgb, mask, factors=factors).assign(image_path=row.image_path))
    empty = pd.DataFrame(columns=["auc", "auc_direction_free", "image_path"])
    return (pd.concat(resaved, ignore_index=True) if resaved else empty,
            pd.concat(resized, ignore_index=True) if resized else empty)
