"""The three demonstrations of notebook 03: what goes wrong when augmentation ignores forensic traces.

* :func:`ela_pitfall` -- augmenting a precomputed ELA map (the wrong order) against computing ELA from the
  augmented image (the right one), for one deterministic hue shift or resize;
* :func:`grid_alignment_ela` -- the mean ELA of crops at several offsets from the JPEG grid: the evidence
  behind :class:`helpers.augment.transforms.GridAlignedCrop`;
* :func:`leakage_demo` -- how much augmenting before splitting inflates a validation score (1-NN on
  thumbnails, both orders).

They measure; the pipelines themselves live in :mod:`helpers.augment.transforms`.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import albumentations as A
import cv2
import numpy as np
import pandas as pd

from helpers.augment.transforms import Strength, augment, build_pipeline, reseed
from helpers.config import ELA_QUALITY, JPEG_GRID
from helpers.datasets.splits import group_split
from helpers.forensics.ela import ela
from helpers.imageio import ImageLoadError, load_rgb

__all__ = [
    "ElaPitfall",
    "ela_pitfall",
    "grid_alignment_ela",
    "LeakageResult",
    "leakage_demo",
]


# --------------------------------------------------------------------------------------------------------------
# The ELA pitfall
# --------------------------------------------------------------------------------------------------------------
@dataclass
class ElaPitfall:
    """ELA of an augmented image next to the augmented ELA of the original, for one deterministic change."""

    change: str
    augmented: np.ndarray
    """The image after the change (uint8 RGB)."""
    ela_of_augmented: np.ndarray
    """Right: ELA computed from the augmented image (uint8, raw)."""
    augmented_ela: np.ndarray
    """Wrong: the original's ELA map put through the same change as if it were a photo (uint8)."""

    @property
    def difference(self) -> np.ndarray:
        return cv2.absdiff(self.ela_of_augmented, self.augmented_ela)

    @property
    def mean_abs_difference(self) -> float:
        return float(self.difference.mean())

    @property
    def relative_difference(self) -> float:
        """Mean absolute difference over the mean of the right map (0: identical; 1: as large as the signal)."""
        return self.mean_abs_difference / max(float(self.ela_of_augmented.mean()), 1e-6)


def ela_pitfall(
    rgb: np.ndarray, change: Literal["hue", "resize"] = "hue", *, quality: int = ELA_QUALITY, amount: float | None = None
) -> ElaPitfall:
    """Compare the right order (augment, then ELA) with the wrong one (ELA, then augment) for one change.

    ``change="hue"`` shifts the hue by ``amount`` degrees-of-OpenCV (default 15); ``"resize"`` scales by
    ``amount`` (default 0.75). Both are deterministic, so the two orders see exactly the same change.
    """
    if change == "hue":
        shift = 15.0 if amount is None else float(amount)
        transform = A.HueSaturationValue(
            hue_shift_limit=(shift, shift), sat_shift_limit=(0, 0), val_shift_limit=(0, 0), p=1.0
        )
    elif change == "resize":
        factor = 0.75 if amount is None else float(amount)
        height, width = rgb.shape[:2]
        size = (max(8, round(height * factor)), max(8, round(width * factor)))
        transform = A.Resize(*size, interpolation=cv2.INTER_AREA)
    else:
        raise ValueError(f"change must be 'hue' or 'resize', not {change!r}")
    pipeline = reseed(A.Compose([transform]), 0)
    augmented = pipeline(image=np.ascontiguousarray(rgb))["image"]
    original_ela = ela(rgb, quality)
    augmented_ela = reseed(pipeline, 0)(image=original_ela)["image"]
    return ElaPitfall(change, augmented, ela(augmented, quality), augmented_ela)


def grid_alignment_ela(
    paths: Sequence[str | os.PathLike[str]],
    *,
    size: int = 128,
    offsets: Sequence[tuple[int, int]] = ((0, 0), (16, 16), (8, 8), (0, 8), (4, 4), (3, 5), (1, 0)),
    quality: int = ELA_QUALITY,
) -> pd.DataFrame:
    """Mean ELA of ``size`` x ``size`` crops taken at several ``(dy, dx)`` offsets from each image's corner.

    The evidence behind :class:`GridAlignedCrop`: a JPEG's 8x8 blocks (16x16 with 4:2:0 chroma) start at its
    top-left corner, so only crops at multiples of 16 keep them; crops elsewhere re-block the image and raise
    its error level everywhere. Returns one row per image and offset (``offset``, ``on_grid``, ``mean_ela``,
    and ``relative``: the mean ELA over that image's (0, 0) crop, when present). Images too small for every
    offset are left out; unreadable ones are reported with a warning.
    """
    reach = size + max(max(dy, dx) for dy, dx in offsets)
    rows = []
    for path in paths:
        try:
            rgb = load_rgb(path)
        except ImageLoadError as exc:
            warnings.warn(f"grid_alignment_ela: skipped {exc}", stacklevel=2)
            continue
        if min(rgb.shape[:2]) < reach:
            continue
        for dy, dx in offsets:
            value = float(ela(rgb[dy : dy + size, dx : dx + size], quality).mean())
            rows.append({"image": str(path), "offset": f"({dy}, {dx})",
                         "on_grid": dy % JPEG_GRID == 0 and dx % JPEG_GRID == 0, "mean_ela": value})
    frame = pd.DataFrame(rows, columns=["image", "offset", "on_grid", "mean_ela"])
    corner = frame[frame["offset"] == "(0, 0)"].set_index("image")["mean_ela"]
    frame["relative"] = frame["mean_ela"] / frame["image"].map(corner).clip(lower=1e-6)
    return frame


# --------------------------------------------------------------------------------------------------------------
# The leakage demonstration
# --------------------------------------------------------------------------------------------------------------
@dataclass
class LeakageResult:
    """1-NN accuracy on held-out images, when the split comes after augmentation and when it comes before."""

    augment_then_split: float
    """Variants made first, then a random image-level split (the seed notebook's order)."""
    split_then_augment: float
    """Split by source group first, only training images augmented, held-out originals scored."""
    chance: float
    """Share of the majority label among the held-out images of the correct split."""
    sibling_neighbour_share: float
    """In the wrong order: share of held-out items whose nearest training item is a variant of the same image."""
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_THUMB = 64
_FEATURE_SIDE = 16


def _dihedral_mean(image: np.ndarray) -> np.ndarray:
    """Average over the 8 flips/quarter turns: a model trained with them learns to be invariant to them."""
    views = [np.rot90(image, k) for k in range(4)]
    views += [v[:, ::-1] for v in views]
    return np.mean(views, axis=0)


def _features(rgb: np.ndarray, quality: int) -> np.ndarray:
    small = cv2.resize(rgb, (_FEATURE_SIDE, _FEATURE_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32)
    error = cv2.resize(ela(rgb, quality), (_FEATURE_SIDE, _FEATURE_SIDE), interpolation=cv2.INTER_AREA)
    # ELA / 16: raw error levels are mostly below 16, so both halves of the vector get a similar range.
    colour = _dihedral_mean(small).ravel() / 255.0
    return np.concatenate([colour, _dihedral_mean(error.astype(np.float32)).ravel() / 16.0])


def _nearest(train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Index of each test row's nearest training row (Euclidean)."""
    distances = (test**2).sum(1)[:, None] - 2.0 * test @ train.T + (train**2).sum(1)[None, :]
    return np.argmin(distances, axis=1)


def leakage_demo(
    manifest: pd.DataFrame,
    *,
    variants: int = 4,
    holdout: float = 0.3,
    geometric: Strength | None = "mild",
    photometric: bool = True,
    ela_quality: int = ELA_QUALITY,
    seed: int = 0,
) -> LeakageResult:
    """Measure how much augmenting before splitting inflates a validation score.

    Every image becomes a 64x64 thumbnail with ``variants`` augmented copies (``geometric``/``photometric`` as
    in training); a feature vector is its 16x16 RGB and ELA maps averaged over flips and quarter turns. A
    1-nearest-neighbour classifier of the label is scored on held-out items twice:

    * **augment, then split**: originals and variants pooled, ``holdout`` of the pool drawn at random. A
      held-out variant usually has a sibling (same source image, same label) in training, and 1-NN finds it;
    * **split, then augment**: :func:`helpers.datasets.splits.group_split` by source group first, variants of
      the training images only, scored on the untouched held-out originals.

    The gap between the two is the leak. Thumbnails keep it fast (a couple of seconds for 200 images); the
    point is the order of operations, not the classifier.
    """
    started = time.perf_counter()
    if variants < 1:
        raise ValueError(f"variants must be at least 1, not {variants!r}")
    frame = manifest.reset_index(drop=True)
    paths = frame["image_path"] if "image_path" in frame else frame["image"]
    pipeline = build_pipeline(crop=None, geometric=geometric, photometric=photometric)
    originals: list[np.ndarray] = []
    copies: list[list[np.ndarray]] = []
    keep: list[int] = []
    for row, path in enumerate(paths):
        try:
            rgb = load_rgb(path)
        except ImageLoadError as exc:
            warnings.warn(f"leakage_demo: skipped {exc}", stacklevel=2)
            continue
        thumb = cv2.resize(rgb, (_THUMB, _THUMB), interpolation=cv2.INTER_AREA)
        originals.append(_features(thumb, ela_quality))
        copies.append(
            [_features(augment(thumb, None, pipeline, seed=[seed, row, j])[0], ela_quality) for j in range(variants)]
        )
        keep.append(row)
    frame = frame.iloc[keep].reset_index(drop=True)
    labels = frame["label"].to_numpy(int)
    if len(frame) < 4 or len(np.unique(labels)) < 2:
        raise ValueError("leakage_demo needs at least 4 readable images of both labels")
    base = np.stack(originals)
    variant_features = np.stack([f for per_image in copies for f in per_image])
    everything = np.concatenate([base, variant_features])
    mean, std = everything.mean(0), everything.std(0) + 1e-6

    def scaled(x: np.ndarray) -> np.ndarray:
        return (x - mean) / std

    # Wrong order: pool originals and variants, split the pool at random.
    source = np.concatenate([np.arange(len(frame)), np.repeat(np.arange(len(frame)), variants)])
    pool = scaled(everything)
    order = np.random.default_rng([seed, 1]).permutation(len(pool))
    cut = int(round(len(pool) * holdout))
    test_items, train_items = order[:cut], order[cut:]
    nearest = train_items[_nearest(pool[train_items], pool[test_items])]
    after = float((labels[source[nearest]] == labels[source[test_items]]).mean())
    siblings = float((source[nearest] == source[test_items]).mean())

    # Right order: split by group, augment the training side only.
    split = group_split(frame, val=0.0, test=holdout, seed=seed)["split"].to_numpy()
    train_rows, test_rows = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")
    train_x = np.concatenate([base[train_rows], np.stack([copies[r][j] for r in train_rows for j in range(variants)])])
    train_y = np.concatenate([labels[train_rows], np.repeat(labels[train_rows], variants)])
    predicted = train_y[_nearest(scaled(train_x), scaled(base[test_rows]))]
    before = float((predicted == labels[test_rows]).mean())
    chance = float(max(np.mean(labels[test_rows] == 0), np.mean(labels[test_rows] == 1)))
    counts = {
        "images": len(frame),
        "variants_per_image": variants,
        "after_train_items": int(len(train_items)),
        "after_held_out_items": int(len(test_items)),
        "before_train_items": int(len(train_x)),
        "before_held_out_images": int(len(test_rows)),
    }
    return LeakageResult(after, before, chance, siblings, counts, round(time.perf_counter() - started, 2))
