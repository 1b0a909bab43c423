"""Any detector on a large image in bounded memory: overlapping tiles on the JPEG grid (notebook 07,
``python -m helpers analyze``).

The training-free methods hold several float copies of what they read while they work (at peak about 25 bytes
per pixel for ``ela``, 55 for ``ghost``, 85 for ``splicebuster``), and the learned ones compute their streams on
the whole image: on a 100 MP photo each would need gigabytes. So an image with a side over ``tile`` pixels is
cut into tiles, and the detector runs on one tile at a time:

1. **Cores and tiles** (:func:`plan_tiles`). The image is partitioned into a grid of *cores*; each tile is its core
   extended by ``margin`` pixels into its neighbours (clipped at the image's border), at most ``tile`` pixels a
   side (2048 by default: 4.2 MP). Core boundaries and tile origins are multiples of 8, so every tile keeps the
   image's 8x8 JPEG grid phase and block-based traces (ELA, DQ, ghosts, the grid itself) stay aligned. A mask
   model reads a large image through a working copy of at most 2 MP (:mod:`helpers.detectors.learned`), so it is
   a whole-image method here (point 5); built with ``working_pixels=None`` it runs on the same tiles, its
   streams computed per tile instead of for the whole image (12-36 bytes per pixel).
2. **Pixels only** (:func:`tile_image`). A tile is a :class:`~helpers.imageio.LoadedImage` of its pixels, without
   the file's bytes: compression-domain detectors (``dq``) read the DCT from the pixels on the grid they find,
   as they do for PNG re-encodes of JPEGs. The file's own coefficients would cost 2-4 bytes per pixel of the
   whole image.
3. **Stitching by cores.** Each pixel's heatmap and mask value come from the tile in whose core it lies, so
   the margin is context, never output: a detector's border effects (partial blocks, smoothing reflected at the
   edge, windows cut short) fall in the margin and are dropped. Averaging the overlaps would blend them in, and
   an OR of the masks would keep their false alarms. The image score is the maximum over the tiles (a forgery in
   one tile makes the image suspicious); ``None`` when no tile gives one.
4. **Each tile is its own reference.** Methods that compare a block with "the image's own bulk" compare it with
   the bulk of its tile: a few megapixels, tens of thousands of blocks, enough for the statistics, but a
   forgery filling most of a tile is that tile's bulk.
5. **Whole-image methods** (``Detector.whole_image``: ``copy_move`` matches regions across the image) are never
   tiled; they bound themselves with a working copy of limited size (:meth:`Detector.predict_working`).

Two ways to use it: :class:`TiledDetector` wraps any detector behind the usual contract (full-size maps:
4 bytes per pixel for the heatmap and 1 for the mask, plus one tile at a time), for
:func:`helpers.evaluation.evaluate` or a notebook; and :func:`predict_pieces` with :func:`summarise_pieces`,
which ``analyze`` uses, never builds full-size maps at all: the score, the flagged fraction and the heatmap's
maximum are accumulated tile by tile, and the maps are kept at the size of the figure.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from helpers.detectors.base import Detector, Prediction, get_detector
from helpers.imageio import LoadedImage, as_loaded_image

__all__ = [
    "DEFAULT_TILE",
    "DEFAULT_MARGIN",
    "TILE_GRID",
    "Tile",
    "plan_tiles",
    "tile_image",
    "Piece",
    "predict_pieces",
    "stitch_pieces",
    "predict_tiled",
    "TiledDetector",
    "PieceSummary",
    "summarise_pieces",
    "preview_shape",
]

DEFAULT_TILE = 2048
"""Largest tile side in pixels (4.2 MP); an image whose sides both fit runs whole."""
DEFAULT_MARGIN = 128
"""Pixels each tile reaches into its neighbours' cores: context for the block statistics and the smoothing of
the training-free methods (their blocks and windows are 16-128 px), never output."""
TILE_GRID = 8
"""Core boundaries, tile origins, ``tile`` and ``margin`` are multiples of this: the JPEG block size."""


@dataclass(frozen=True)
class Tile:
    """One tile: the window the detector reads and the core of the image it answers for (image coordinates,
    end exclusive)."""

    top: int
    left: int
    bottom: int
    right: int
    core_top: int
    core_left: int
    core_bottom: int
    core_right: int

    @property
    def window(self) -> tuple[slice, slice]:
        """The tile's pixels, as slices of the image."""
        return slice(self.top, self.bottom), slice(self.left, self.right)

    @property
    def core(self) -> tuple[slice, slice]:
        """The core, as slices of the image."""
        return slice(self.core_top, self.core_bottom), slice(self.core_left, self.core_right)

    @property
    def core_in_window(self) -> tuple[slice, slice]:
        """The core, as slices of the tile."""
        return (slice(self.core_top - self.top, self.core_bottom - self.top),
                slice(self.core_left - self.left, self.core_right - self.left))


def _check_geometry(tile: int, margin: int) -> tuple[int, int]:
    if isinstance(tile, bool) or int(tile) != tile or tile % TILE_GRID or tile < 64:
        raise ValueError(f"tile must be a multiple of {TILE_GRID} pixels, at least 64, not {tile!r}")
    if isinstance(margin, bool) or int(margin) != margin or margin % TILE_GRID or margin < 0:
        raise ValueError(f"margin must be a non-negative multiple of {TILE_GRID} pixels, not {margin!r}")
    if tile < 4 * margin:
        raise ValueError(f"margin ({margin}) must be at most a quarter of the tile ({tile}): tiles would be mostly "
                         "margin")
    return int(tile), int(margin)


def _cuts(extent: int, tile: int, margin: int) -> list[int]:
    """Core boundaries along one axis: ``[0, b1, ..., extent]``, the inner ones multiples of :data:`TILE_GRID`.

    Interior cores get at most ``tile - 2 * margin`` pixels (a margin on both sides) and the two outer ones at
    most ``tile - margin`` (nothing to reach into beyond the border); the boundaries are spread evenly.
    """
    if extent <= tile:
        return [0, extent]
    inner = tile - 2 * margin
    # Rounding a boundary down to the grid can lengthen the next core by up to 7 px: plan for inner - 8.
    count = -(-(extent - 2 * margin) // (inner - TILE_GRID))
    spread = (extent - 2 * margin) / count
    inside = [int(margin + i * spread) // TILE_GRID * TILE_GRID for i in range(1, count)]
    return [0, *inside, extent]


def plan_tiles(height: int, width: int, *, tile: int = DEFAULT_TILE, margin: int = DEFAULT_MARGIN) -> list[Tile]:
    """The tiles of a ``height`` x ``width`` image, row by row: one tile (the whole image) when both sides fit in
    ``tile``; otherwise cores partitioning the image, each read with ``margin`` pixels around it (see the module
    docstring)."""
    tile, margin = _check_geometry(tile, margin)
    if height < 1 or width < 1:
        raise ValueError(f"cannot tile an empty image of {height} x {width}")
    if height <= tile and width <= tile:
        return [Tile(0, 0, height, width, 0, 0, height, width)]
    rows, cols = _cuts(height, tile, margin), _cuts(width, tile, margin)
    tiles = []
    for top, bottom in zip(rows[:-1], rows[1:]):
        for left, right in zip(cols[:-1], cols[1:]):
            tiles.append(Tile(max(0, top - margin), max(0, left - margin), min(height, bottom + margin),
                              min(width, right + margin), top, left, bottom, right))
    return tiles


def tile_image(image: LoadedImage, tile: Tile) -> LoadedImage:
    """The tile's pixels as an image of their own (a contiguous copy of the window; no file bytes)."""
    return LoadedImage(image.rgb[tile.window])


# ----------------------------------------------------------------------------------------------------------------
# Pieces: a detector's answer, region by region
# ----------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Piece:
    """A detector's maps over one region of the image (image coordinates, end exclusive).

    The maps cover the region at its own size (a tile's core) or, for a method working on a reduced copy of the
    image (``copy_move`` on a large photo), at that copy's size.
    """

    top: int
    left: int
    bottom: int
    right: int
    heatmap: np.ndarray
    mask: np.ndarray
    score: float | None

    @property
    def shape(self) -> tuple[int, int]:
        """The region's size in image pixels."""
        return self.bottom - self.top, self.right - self.left

    @property
    def reduced(self) -> bool:
        """Whether the maps are smaller than the region (a working copy)."""
        return self.heatmap.shape != self.shape


def predict_pieces(
    detector: Detector, image: LoadedImage | Any, *, tile: int = DEFAULT_TILE, margin: int = DEFAULT_MARGIN,
) -> Iterator[Piece]:
    """``detector``'s answer on ``image`` as pieces that partition the image, one tile at a time.

    An image that fits in one tile gives one piece, the detector's prediction on it; a whole-image method gives
    one piece at its working size (:meth:`Detector.predict_working`); otherwise one piece per tile core. A
    :class:`TiledDetector` is unwrapped and its own tile and margin used. Memory: one tile's work at a time
    plus what the caller keeps of the pieces.
    """
    if isinstance(detector, TiledDetector):
        detector, tile, margin = detector.detector, detector.tile, detector.margin
    image = as_loaded_image(image)
    height, width = image.shape
    if detector.whole_image:
        working = detector.predict_working(image)
        yield Piece(0, 0, height, width, working.heatmap, working.mask, working.score)
        return
    tiles = plan_tiles(height, width, tile=tile, margin=margin)
    if len(tiles) == 1:
        whole = detector(image)
        yield Piece(0, 0, height, width, whole.heatmap, whole.mask, whole.score)
        return
    for part in tiles:
        prediction = detector(tile_image(image, part))
        inside = part.core_in_window
        # Copies of the core, and the tile's own maps let go before the next tile runs.
        piece = Piece(part.core_top, part.core_left, part.core_bottom, part.core_right,
                      prediction.heatmap[inside].copy(), prediction.mask[inside].copy(), prediction.score)
        del prediction
        yield piece


def _max_score(scores: Iterable[float | None]) -> float | None:
    given = [float(s) for s in scores if s is not None]
    return max(given) if given else None


def stitch_pieces(pieces: Iterable[Piece], shape: tuple[int, int]) -> Prediction:
    """Full-size maps from pieces that partition an image of ``shape``: one float32 heatmap and one bool mask,
    each piece written into its region (reduced maps scaled up: the heatmap linearly, the mask by nearest
    neighbour); the score is the maximum over the pieces."""
    height, width = shape
    heatmap = np.zeros((height, width), np.float32)
    mask = np.zeros((height, width), bool)
    scores = []
    for piece in pieces:
        region = (slice(piece.top, piece.bottom), slice(piece.left, piece.right))
        rows, cols = piece.shape
        if piece.reduced:
            heatmap[region] = cv2.resize(piece.heatmap, (cols, rows), interpolation=cv2.INTER_LINEAR)
            mask[region] = cv2.resize(piece.mask.view(np.uint8), (cols, rows), interpolation=cv2.INTER_NEAREST) > 0
        else:
            heatmap[region] = piece.heatmap
            mask[region] = piece.mask
        scores.append(piece.score)
    return Prediction(heatmap=heatmap, mask=mask, score=_max_score(scores))


def predict_tiled(
    detector: Detector, image: LoadedImage | Any, *, tile: int = DEFAULT_TILE, margin: int = DEFAULT_MARGIN,
) -> Prediction:
    """``detector`` on ``image`` through tiles when it does not fit in one (see the module docstring), as one
    full-size :class:`Prediction`."""
    image = as_loaded_image(image)
    if detector.whole_image or len(plan_tiles(*image.shape, tile=tile, margin=margin)) == 1:
        return detector(image)  # one piece: the detector's own maps, without a copy into a canvas
    return stitch_pieces(predict_pieces(detector, image, tile=tile, margin=margin), image.shape)


class TiledDetector(Detector):
    """``detector`` run whole on images that fit in one ``tile``, tile by tile on larger ones (module docstring).

    Keeps the wrapped detector's ``name``, ``description`` and ``trained``, so evaluation tables read the same;
    ``TiledDetector("ela")`` builds the registered detector by name.
    """

    def __init__(self, detector: Detector | str, *, tile: int = DEFAULT_TILE, margin: int = DEFAULT_MARGIN) -> None:
        built = get_detector(detector) if isinstance(detector, str) else detector
        if not isinstance(built, Detector):
            raise TypeError(f"TiledDetector wraps a Detector, not {type(built).__name__}")
        self.tile, self.margin = _check_geometry(tile, margin)
        self.detector = built
        self.name = built.name  # type: ignore[misc]  # the wrapped method's name, per instance
        self.description = built.description  # type: ignore[misc]
        self.trained = built.trained  # type: ignore[misc]
        self.whole_image = False  # type: ignore[misc]  # a whole-image method inside is run whole anyway

    def predict(self, image: LoadedImage) -> Prediction:
        return predict_tiled(self.detector, image, tile=self.tile, margin=self.margin)

    def __repr__(self) -> str:
        return f"TiledDetector({self.detector!r}, tile={self.tile}, margin={self.margin})"


# ----------------------------------------------------------------------------------------------------------------
# Summaries without full-size maps
# ----------------------------------------------------------------------------------------------------------------
def preview_shape(height: int, width: int, side: int) -> tuple[int, int]:
    """``(rows, cols)`` of a copy whose longer side is at most ``side`` (the image's own size when it fits)."""
    if side < 1:
        raise ValueError(f"side must be a positive number of pixels, not {side!r}")
    if max(height, width) <= side:
        return height, width
    scale = side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


@dataclass(frozen=True)
class PieceSummary:
    """What a caller keeps of a detector's answer on a large image: the numbers, and the maps at preview size."""

    score: float | None
    """The maximum over the pieces' scores (``None`` when none gives one)."""
    mask_fraction: float
    """The share of the image's pixels the mask flags (exact for full-size pieces, to the working copy's
    resolution for reduced ones)."""
    heatmap_max: float
    heatmap: np.ndarray
    """float32 ``preview`` map: each piece's heatmap reduced by area averaging into its place."""
    mask: np.ndarray
    """bool ``preview`` mask: where at least half of a preview pixel is flagged."""
    pieces: int
    working_shape: tuple[int, int] | None
    """The working copy's ``(rows, cols)`` when the detector read a reduced copy, else ``None``."""


def _into(values: np.ndarray, rows: int, cols: int) -> np.ndarray:
    if values.shape == (rows, cols):
        return values
    return cv2.resize(values, (cols, rows), interpolation=cv2.INTER_AREA)


def summarise_pieces(pieces: Iterable[Piece], shape: tuple[int, int], preview: tuple[int, int]) -> PieceSummary:
    """Score, flagged fraction, heatmap maximum and ``preview``-sized maps of pieces partitioning an image of
    ``shape``, one piece at a time (no full-size map is ever built)."""
    height, width = shape
    rows, cols = preview
    heatmap = np.zeros((rows, cols), np.float32)
    coverage = np.zeros((rows, cols), np.float32)
    flagged = 0.0
    highest = 0.0
    scores = []
    count = 0
    working: tuple[int, int] | None = None
    for piece in pieces:
        count += 1
        scores.append(piece.score)
        region_rows, region_cols = piece.shape
        # A reduced map stands for the region's pixels in proportion to its own.
        flagged += float(np.count_nonzero(piece.mask)) * (region_rows * region_cols) / max(1, piece.mask.size)
        if piece.heatmap.size:
            highest = max(highest, float(piece.heatmap.max()))
        if piece.reduced:
            working = (int(piece.heatmap.shape[0]), int(piece.heatmap.shape[1]))
        # The preview pixels of this region (pieces partition the image, so their previews partition the preview).
        top, bottom = round(piece.top * rows / height), round(piece.bottom * rows / height)
        left, right = round(piece.left * cols / width), round(piece.right * cols / width)
        if bottom > top and right > left:
            heatmap[top:bottom, left:right] = _into(piece.heatmap, bottom - top, right - left)
            coverage[top:bottom, left:right] = _into(piece.mask.astype(np.float32), bottom - top, right - left)
    return PieceSummary(score=_max_score(scores), mask_fraction=flagged / float(height * width),
                        heatmap_max=highest, heatmap=heatmap, mask=coverage >= 0.5, pieces=count,
                        working_shape=working)
