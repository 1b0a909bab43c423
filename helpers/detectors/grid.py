"""``grid``: JPEG block-grid inconsistency, where the local 8x8 grid is shifted or missing (notebook 04).

Papers: W. Li, Y. Yuan, N. Yu, "Passive detection of doctored JPEG image via block artifact grid extraction",
Signal Processing 89(9), 2009 (BAG); T. Nikoukhah, J. Anger, T. Ehret, M. Colom, J.-M. Morel, R. Grompone von
Gioi, "JPEG grid detection based on the number of DCT zeros and its application to automatic and localized
forgery detection", CVPR Workshops 2019 (ZERO: local grid votes, the dominant grid, and regions voting for
another).

Trace: a JPEG leaves a faint step at every 8th pixel boundary (blockiness). A region pasted from another JPEG
keeps *its* grid, which is shifted unless the paste landed on a multiple of 8; a region pasted from an
uncompressed or resized source, or painted over, has no grid at all. The rule here, BAG's blockiness read with
ZERO's voting:

1. blockiness per pixel boundary (:func:`helpers.forensics.blocks.boundary_steps`), and along each line every
   8-pixel segment votes for the phase of its largest step (:func:`helpers.forensics.blocks.phase_votes`);
2. the image's dominant grid: the phase pair of :func:`helpers.forensics.blocks.estimate_jpeg_grid`, which must
   pass its significance test; an image with no significant grid (never compressed, or resized since) has
   nothing to be inconsistent with, so it gets an empty map and score 0;
3. per ``cell`` x ``cell`` cell and per axis, the votes of the 8 phases; the cell's disagreement is the sign-test
   z of the strongest *other* phase's votes against the dominant phase's (:func:`grid_disagreement`), summed
   over both axes: high where another grid wins (shifted), and higher than the image's usual (strongly
   negative) value where the dominant phase has lost its lead (absent); cells with few votes stay near 0;
   the votes are pooled over ``smooth`` x ``smooth`` cells first, so a shifted grid, which wins the same
   phase in every cell it covers, accumulates, while the random winners of flat or textured cells do not;
4. the disagreement becomes robust z-scores against the image's cells and goes through the shared mixture split
   (:func:`helpers.detectors.decision.split_outliers`, one-sided): ``heatmap`` is the posterior of the
   "disagreeing" component, ``mask`` posterior > 0.5 when the split passes the guard, ``score`` the 99th
   percentile of the posterior when accepted, else 0.

Parameters: ``cell`` (pixels per cell side, a multiple of 8, default 32: 128 votes per axis per cell),
``smooth`` (odd, default 3), ``min_separation`` (the guard).

Where it fails: high-quality JPEGs (quality 95 and up) leave almost no blockiness, and on the CASIA v1 fixtures
(high quality) the image grid is often not significant, so the map stays empty; flat or clipped areas cast no
votes and strong texture votes at random, so a grid cannot be read there, and fine directional texture (the wood
grain of scikit-image's ``coffee``) reads as a missing grid (12-15% of that untouched photo is flagged at
qualities 60-90); a region pasted on a multiple of 8
from a JPEG with the same grid alignment; an image resized or re-saved off-grid after the forgery (the final grid
then covers everything); forgeries smaller than a few cells.
"""

from __future__ import annotations

import cv2
import numpy as np

from helpers.detectors.base import Detector, Prediction, register_detector
from helpers.detectors.decision import DEFAULT_MIN_SEPARATION, robust_z, split_outliers, top_score
from helpers.forensics.blocks import boundary_steps, blocks_to_pixels, estimate_jpeg_grid, luminance, phase_votes
from helpers.imageio import LoadedImage

__all__ = ["GridDetector", "local_phase_votes", "grid_disagreement"]


def local_phase_votes(y: np.ndarray, axis: int, cell: int) -> np.ndarray:
    """Per ``cell`` x ``cell`` cell, the votes of the 8 boundary phases across ``axis``: int ``(rows, cols, 8)``.

    ``axis=1``: column phases (vertical block boundaries, voted along rows); ``axis=0``: row phases. Only whole
    cells are counted; each line's 8-pixel segments vote as in :func:`helpers.forensics.blocks.phase_votes`.
    """
    steps = boundary_steps(y, axis)
    moved = np.moveaxis(steps, axis, 1)  # (lines, along): lines run along ``axis``
    lines, along = moved.shape
    rows, cols = lines // cell, along // cell
    per_cell = np.zeros((rows, cols, 8), np.int64)
    for column in range(cols if rows else 0):
        piece = moved[: rows * cell, column * cell:(column + 1) * cell]
        per_cell[:, column] = phase_votes(piece, 1).reshape(rows, cell, 8).sum(axis=1)
    return per_cell.transpose(1, 0, 2) if axis == 0 else per_cell


def grid_disagreement(votes: np.ndarray, dominant: int) -> np.ndarray:
    """Per cell, how significantly the strongest other phase out-votes the dominant one: float32 ``(rows, cols)``.

    ``(n_other - n_dominant) / sqrt(n_other + n_dominant + 1)``: the sign-test z of the two counts (each vote for
    one of the two is a coin flip when neither grid is there). Strongly negative where the dominant grid is
    clear, near 0 where no grid can be read (absent, or too few votes), positive where another grid wins.
    """
    own = votes[..., dominant].astype(np.float64)
    other = np.delete(votes, dominant, axis=2).max(axis=2).astype(np.float64)
    return ((other - own) / np.sqrt(other + own + 1.0)).astype(np.float32)


@register_detector("grid")
class GridDetector(Detector):
    description = "JPEG block-grid inconsistency: local grid votes against the dominant grid (BAG, ZERO)"

    def __init__(self, cell: int = 32, smooth: int = 3, min_separation: float = DEFAULT_MIN_SEPARATION) -> None:
        if int(cell) < 8 or int(cell) % 8:
            raise ValueError(f"cell must be a positive multiple of 8 pixels, not {cell!r}")
        if int(smooth) < 1 or int(smooth) % 2 == 0:
            raise ValueError(f"smooth must be a positive odd number of cells, not {smooth!r}")
        self.cell = int(cell)
        self.smooth = int(smooth)
        self.min_separation = float(min_separation)

    def _pool(self, votes: np.ndarray) -> np.ndarray:
        """Votes summed over ``smooth`` x ``smooth`` cells: a shifted grid wins the same phase in every cell of
        the region and accumulates, while the random winners of textured or flat cells do not."""
        if self.smooth == 1:
            return votes
        pooled = cv2.boxFilter(votes.astype(np.float32), -1, (self.smooth, self.smooth), normalize=False,
                               borderType=cv2.BORDER_REFLECT)
        return pooled.reshape(votes.shape)

    def predict(self, image: LoadedImage) -> Prediction:
        shape = image.shape
        empty = Prediction(np.zeros(shape, np.float32), np.zeros(shape, bool), 0.0)
        y = luminance(image.rgb)
        grid = estimate_jpeg_grid(y)
        if not grid.found:
            return empty
        # Blocks start at offset d, so the dominant boundary lies after pixel d - 1 (mod 8).
        row_votes = local_phase_votes(y, 0, self.cell)
        col_votes = local_phase_votes(y, 1, self.cell)
        rows = min(row_votes.shape[0], col_votes.shape[0])
        cols = min(row_votes.shape[1], col_votes.shape[1])
        if rows == 0 or cols == 0:
            return empty
        disagreement = (grid_disagreement(self._pool(row_votes[:rows, :cols]), (grid.offset[0] - 1) % 8)
                        + grid_disagreement(self._pool(col_votes[:rows, :cols]), (grid.offset[1] - 1) % 8))
        split = split_outliers(robust_z(disagreement), side="high", min_separation=self.min_separation)
        heatmap = blocks_to_pixels(split.posterior, shape, block=self.cell)
        mask = blocks_to_pixels(split.mask, shape, block=self.cell)
        return Prediction(heatmap, mask, top_score(split.posterior) if split.accepted else 0.0)
