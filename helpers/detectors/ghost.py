"""``ghost``: JPEG ghosts (Farid 2009), one map from the difference curves over a range of qualities (notebook 04).

Paper: H. Farid, "Exposing digital forgeries from JPEG ghosts", IEEE Transactions on Information Forensics and
Security 4(1), 2009.

Trace: a region once saved at quality ``q1`` and then, inside the whole image, at ``q0 > q1``, still changes
least when re-saved at ``q1``: its difference curve (mean squared change after a re-save at quality ``q``, as a
function of ``q``) has a local minimum, a "ghost", at ``q1``, which the rest of the image lacks. Farid shows one
difference map per quality for a person to read; this detector turns them into one map with a stated rule:

1. for each quality ``q`` in ``qualities`` the image is re-saved in memory and the squared difference, averaged
   over the colour channels and over ``block`` x ``block`` blocks (Farid averaged over 16x16 windows), gives
   ``D[q, b]`` for every block ``b``;
2. each block's curve is divided by its own mean over ``q`` (texture scales the whole curve; the shape is what
   carries the history), giving ``r[q, b]``, and the image's typical curve is the median over blocks,
   ``m[q] = median_b r[q, b]``;
3. the image's dominant quality ``q0`` is the one its JPEG tables give (IJG scaling, for JPEG files), or else
   the quality whose re-save changes the image least (the minimum of the median curve ``median_b D[q, b]``);
4. the ghost depth of block ``b`` is ``max (m[q] - r[q, b])`` over the qualities ``q <= q0 - gap``: how far
   below the image's typical curve the block dips at a quality clearly lower than the last one;
5. the depths become robust z-scores against the image's blocks and go through the shared mixture split
   (:func:`helpers.detectors.decision.split_outliers`, one-sided): ``heatmap`` is the posterior of the "ghost"
   component, ``mask`` posterior > 0.5 when the split passes the guard, ``score`` the 99th percentile of the
   posterior when accepted, else 0.

Parameters: ``qualities`` (default 50, 55, ..., 95), ``block`` (pixels, default 16), ``gap`` (how far below
``q0`` a ghost must lie, default 10: Farid found ghosts clear when the qualities differ by 10 or more),
``smooth`` (depths averaged over ``smooth`` x ``smooth`` blocks, odd), ``min_separation`` (the guard).

Where it fails: a region whose earlier quality was *higher* than the final one (its ghost is erased by the coarser
final quantisation); qualities outside ``qualities`` or within ``gap`` of ``q0``; a region re-saved off the 8x8
grid or resized (the ghost needs the grids to line up); flat or saturated areas, whose difference is near zero at
every quality (blocks that change by under half a grey level squared are left out); an image whose last save was at
a low quality (everything below it is close).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from helpers.detectors.base import Detector, Prediction, register_detector
from helpers.detectors.decision import DEFAULT_MIN_SEPARATION, robust_z, split_outliers, top_score
from helpers.forensics.blocks import block_means, blocks_to_pixels, channel_mean
from helpers.forensics.ela import ela
from helpers.forensics.jpeg import DEFAULT_GHOST_QUALITIES, scaled_table
from helpers.imageio import LoadedImage

__all__ = ["GhostDetector", "block_ghost_curves", "quality_from_tables"]

_MIN_CHANGE = 0.5
"""Mean squared change (grey levels squared, over all qualities) below which a block has no readable curve."""


def block_ghost_curves(rgb: np.ndarray, qualities: Sequence[int], block: int = 16) -> np.ndarray:
    """``D[q, b]``: mean squared change of each ``block`` x ``block`` block after a re-save at each quality.

    float32 ``(len(qualities), H // block, W // block)``; one quality at a time, so memory stays at one image.
    """
    curves = []
    for quality in qualities:
        difference = ela(rgb, int(quality)).astype(np.float32)
        squared = channel_mean(np.square(difference, out=difference))
        curves.append(block_means(squared, block))
    return np.stack(curves).astype(np.float32)


def quality_from_tables(tables: dict[int, np.ndarray] | None) -> int | None:
    """The IJG quality (1-100) whose scaled luminance table is closest to table 0, or ``None`` without tables."""
    if not tables:
        return None
    luminance = np.sort(np.asarray(tables[min(tables)], dtype=np.int64).ravel())
    distances = [int(np.abs(np.sort(scaled_table(q).ravel()) - luminance).sum()) for q in range(1, 101)]
    # Ties go to the higher quality, as helpers.forensics.jpeg.estimate_jpeg_quality does.
    return int(max(range(1, 101), key=lambda q: (-distances[q - 1], q)))


@register_detector("ghost")
class GhostDetector(Detector):
    description = "JPEG ghosts: dips of the re-save difference curve below a lower quality (Farid 2009)"

    def __init__(self, qualities: Sequence[int] = DEFAULT_GHOST_QUALITIES, block: int = 16, gap: int = 10,
                 smooth: int = 3, min_separation: float = DEFAULT_MIN_SEPARATION) -> None:
        qualities = sorted({int(q) for q in qualities})
        if len(qualities) < 3 or not all(1 <= q <= 100 for q in qualities):
            raise ValueError(f"qualities must be at least 3 values within 1..100, not {qualities!r}")
        if int(block) < 2:
            raise ValueError(f"block must be at least 2 pixels, not {block!r}")
        if int(smooth) < 1 or int(smooth) % 2 == 0:
            raise ValueError(f"smooth must be a positive odd number of blocks, not {smooth!r}")
        self.qualities = tuple(qualities)
        self.block = int(block)
        self.gap = int(gap)
        self.smooth = int(smooth)
        self.min_separation = float(min_separation)

    def dominant_quality(self, image: LoadedImage, curves: np.ndarray) -> int:
        """``q0``: from the JPEG tables when the file has them, else where the median curve is lowest."""
        from_tables = quality_from_tables(image.quantization_tables) if image.is_jpeg else None
        if from_tables is not None:
            return from_tables
        typical = np.median(curves.reshape(curves.shape[0], -1), axis=1)
        return int(self.qualities[int(np.argmin(typical))])

    def predict(self, image: LoadedImage) -> Prediction:
        shape = image.shape
        empty = Prediction(np.zeros(shape, np.float32), np.zeros(shape, bool), 0.0)
        curves = block_ghost_curves(image.rgb, self.qualities, self.block)
        if curves.shape[1] == 0 or curves.shape[2] == 0:
            return empty
        q0 = self.dominant_quality(image, curves)
        lower = np.array([q <= q0 - self.gap for q in self.qualities])
        if not lower.any():
            return empty  # no quality clearly below the last save: nowhere for a ghost to be
        level = curves.mean(axis=0)
        # Blocks that barely change at any quality (flat, saturated: under half a grey level squared on
        # average) have no curve shape to read; they are left out of the reference and never flagged.
        valid = level > _MIN_CHANGE
        if not valid.any():
            return empty
        relative = curves / np.maximum(level, np.float32(_MIN_CHANGE))[None]
        typical = np.median(relative[:, valid], axis=1)[:, None, None]
        depth = (typical - relative)[lower].max(axis=0)
        depth[~valid] = np.median(depth[valid])
        if self.smooth > 1:
            depth = cv2.blur(depth, (self.smooth, self.smooth), borderType=cv2.BORDER_REFLECT)
        split = split_outliers(robust_z(depth, valid), side="high", min_separation=self.min_separation,
                               valid=valid)
        heatmap = blocks_to_pixels(split.posterior, shape, block=self.block)
        mask = blocks_to_pixels(split.mask, shape, block=self.block)
        return Prediction(heatmap, mask, top_score(split.posterior) if split.accepted else 0.0)
