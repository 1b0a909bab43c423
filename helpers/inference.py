"""Mask prediction on whole images of any size: overlapping tiles, blended seams, bounded memory.

Mask models are trained on crops at native resolution (``ForgeryBatches(mode="crop")``), never on resized
images: resizing smears the JPEG blocking and sensor noise the forensic streams read. At test time the same
holds, so :func:`predict_mask` does not resize either. It cuts the image into overlapping ``tile`` x ``tile``
windows, predicts them in batches and blends the overlaps back together. The recipe:

1. **Streams from the whole image, once.** ELA re-compresses the image on the 8x8 JPEG grid: computed per tile,
   a tile whose corner is off that grid would see a *re-gridded* image with error levels 1.5-2.5 times higher
   everywhere (see :mod:`helpers.augment`), and every tile would pay the JPEG round trip again. So ELA and SRM
   are computed on the full image, then cut into tiles with the image, exactly as ``ForgeryBatches`` scales them
   (``rgb / 255``, raw ELA ``/ 255``, SRM as is).
2. **Tiles on the JPEG grid.** The stride and the margin are multiples of 16 pixels, so every tile's corner
   sits on the 16-pixel grid of the image, as every training crop did.
3. **Edges.** The image is extended by reflection (indices mirrored, no padded copy is made) by a margin of
   half the overlap, and at the bottom and right up to a whole number of tiles; an image smaller than a tile
   becomes one padded tile. Reflection rather than zeros: a black border is an edge the model never saw.
4. **Blending.** Each tile's prediction is weighted by a separable trapezoid window: 1 in the middle, falling
   linearly over the ``overlap`` pixels at each side (always > 0). The weighted predictions are summed and
   divided by the summed weights, so weights are normalised at every pixel: a model that predicts a constant
   gives exactly that constant everywhere, and neighbouring tiles cross-fade instead of meeting at a seam.
   Because the tiles form a full grid, the summed weights are the outer product of two 1-D sums, so only one
   float32 canvas (the weighted sum) is kept in memory.
5. **Bounded memory.** Tiles are gathered and predicted ``batch_size`` at a time; memory is the image, its
   streams, one canvas and one batch, whatever the image size (a 4000 x 3000 photo: about 0.3 GB with ELA).

Classifiers read whole images the same way (:func:`classify_tiles`): streams from the whole image, tiles of the
training crop size on the JPEG grid, the image's score the maximum over its tiles.

Both are used through the detector contract (:mod:`helpers.detectors.learned`), which evaluation, ``analyze``
and notebook 07 call; saved models and their settings live in :mod:`helpers.models.artifact`.
"""

from __future__ import annotations

import math
import os
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from helpers import streams as streams_table
from helpers.augment import JPEG_GRID
from helpers.imageio import load_rgb
from helpers.models.portable import WHOLE_IMAGE_DIVISOR, WHOLE_IMAGE_MAX_SIDE, flip_average, predict_in_windows

__all__ = [
    "TileLayout",
    "tile_layout",
    "blend_window",
    "model_streams",
    "model_srm_bank",
    "compute_streams",
    "scale_stream",
    "predict_mask",
    "predict_whole",
    "TileScores",
    "classify_tiles",
    "MAX_CLASSIFIER_TILES",
]

_DIVISOR = 32


# ----------------------------------------------------------------------------------------------------------------
# Tiling
# ----------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TileLayout:
    """Where the tiles of one image go: corners ``ys`` x ``xs`` on a canvas extended by ``margin`` pixels.

    Canvas coordinate ``c`` is image coordinate ``c - margin``; the canvas is ``canvas_shape`` and every
    image pixel lies inside it, at least ``margin`` pixels from its border.
    """

    height: int
    width: int
    tile: int
    overlap: int
    stride: int
    margin: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]

    @property
    def canvas_shape(self) -> tuple[int, int]:
        return (self.ys[-1] + self.tile, self.xs[-1] + self.tile)

    @property
    def count(self) -> int:
        return len(self.ys) * len(self.xs)


def _overlap_pixels(tile: int, overlap: float | int) -> int:
    if isinstance(overlap, bool) or not isinstance(overlap, (int, float, np.integer, np.floating)):
        raise TypeError(f"overlap must be a fraction of the tile (float) or pixels (int), not {overlap!r}")
    if isinstance(overlap, (float, np.floating)):
        if not 0.0 <= float(overlap) < 1.0:
            raise ValueError(f"overlap as a fraction must lie in [0, 1), not {overlap}")
        pixels = int(round(float(overlap) * tile))
    else:
        pixels = int(overlap)
    if not 0 <= pixels <= tile - JPEG_GRID:
        raise ValueError(f"overlap must be 0..{tile - JPEG_GRID} pixels for a {tile}-pixel tile, not {pixels}")
    return pixels


def tile_layout(height: int, width: int, tile: int = 256, overlap: float | int = 0.25) -> TileLayout:
    """The tiles covering a ``height`` x ``width`` image (see the module docstring for the rules).

    ``tile`` must be a multiple of 32 (the models' five stride-2 stages) and at least 32; ``overlap`` is a
    fraction of the tile (``0.25``) or pixels (``64``). The stride ``tile - overlap`` is rounded down to a
    multiple of 16 (the JPEG grid), so the effective overlap may be up to 15 pixels larger than asked.
    """
    if isinstance(tile, bool) or int(tile) != tile or tile < _DIVISOR or tile % _DIVISOR:
        raise ValueError(f"tile must be a multiple of {_DIVISOR} pixels (>= {_DIVISOR}), not {tile!r}")
    if height < 1 or width < 1:
        raise ValueError(f"cannot tile an empty image of {height} x {width}")
    tile = int(tile)
    asked = _overlap_pixels(tile, overlap)
    stride = max(JPEG_GRID, ((tile - asked) // JPEG_GRID) * JPEG_GRID)
    real_overlap = tile - stride
    margin = int(math.ceil(real_overlap / 2 / JPEG_GRID)) * JPEG_GRID if real_overlap else 0

    def corners(extent: int) -> tuple[int, ...]:
        needed = extent + 2 * margin
        count = 1 if needed <= tile else 1 + math.ceil((needed - tile) / stride)
        return tuple(i * stride for i in range(count))

    return TileLayout(int(height), int(width), tile, real_overlap, stride, margin, corners(height), corners(width))


def blend_window(tile: int, overlap: int) -> np.ndarray:
    """1-D float64 weights of length ``tile``: 1 in the middle, a linear ramp over ``overlap`` pixels each side.

    Strictly positive (the ramp starts at ``0.5 / overlap``), so every pixel has weight; ``overlap=0`` gives
    flat weights (tiles abut, no blending).
    """
    t = np.arange(tile, dtype=np.float64) + 0.5
    if overlap <= 0:
        return np.ones(tile, dtype=np.float64)
    return np.minimum(1.0, np.minimum(t, tile - t) / float(overlap))


def _reflect(indices: np.ndarray, size: int) -> np.ndarray:
    """Mirror indices into ``[0, size)`` as ``np.pad(mode="reflect")`` would (repeatedly, for any distance)."""
    if size == 1:
        return np.zeros_like(indices)
    period = 2 * (size - 1)
    folded = np.abs(indices) % period
    return np.where(folded >= size, period - folded, folded)


def _coverage(corners: Sequence[int], window: np.ndarray, extent: int) -> np.ndarray:
    total = np.zeros(extent, dtype=np.float64)
    for corner in corners:
        total[corner : corner + len(window)] += window
    return total


# ----------------------------------------------------------------------------------------------------------------
# Streams
# ----------------------------------------------------------------------------------------------------------------
def model_streams(model: keras.Model) -> tuple[str, ...]:
    """The names of ``model``'s inputs (``"rgb"``, ``"ela"``, ``"srm"``), as ``ForgeryBatches`` keys them."""
    names = tuple(str(tensor.name) for tensor in model.inputs)
    unknown = [n for n in names if n not in ("rgb", "ela", "srm")]
    if unknown:
        raise ValueError(f"model inputs {names} are not stream names (rgb, ela, srm); pass streams= explicitly")
    return names


def _input_channels(model: keras.Model) -> dict[str, int]:
    return {str(tensor.name): int(tensor.shape[-1]) for tensor in model.inputs}


def model_srm_bank(model: keras.Model) -> str:
    """The SRM bank a model's ``srm`` input expects, from its channel count (3: ``zhou3``, 30: ``full30``)."""
    channels = _input_channels(model).get("srm", 3)
    return {3: "zhou3", 30: "full30"}.get(channels, "zhou3")


def compute_streams(
    rgb: np.ndarray, streams: Sequence[str], *, ela_quality: int = 90, srm_bank: str = "zhou3"
) -> dict[str, np.ndarray]:
    """Each stream of the whole image as a model reads it, from the one stream table (:mod:`helpers.streams`,
    the function training batches use too): ``{name: float32 (H, W, C)}``."""
    return streams_table.compute_streams(rgb, tuple(streams), ela_quality=ela_quality, srm_bank=srm_bank)


def scale_stream(stream: str, values: np.ndarray) -> np.ndarray:
    """A stream's values as a model reads them: :func:`compute_streams` already scales every stream by the
    table, so this only makes the tile float32 (kept so tile code reads the same for every stream)."""
    return values.astype(np.float32, copy=False)


def predict_whole(
    model: keras.Model, rgb: np.ndarray, streams: Sequence[str], *, ela_quality: int = 90, srm_bank: str = "zhou3",
    max_side: int = WHOLE_IMAGE_MAX_SIDE, flip_views: int = 1,
) -> np.ndarray:
    """Per-pixel probability ``float32 (H, W)`` of a fully convolutional model on the whole image in one pass.

    For models whose head compares each region with the rest of the image (the forensic network's anomaly head,
    notebook 06), tiles would change what "the rest" is. The streams are computed on the whole image, padded by
    reflection to a multiple of :data:`WHOLE_IMAGE_DIVISOR`, and predicted at once; an image with a side above
    ``max_side`` is predicted in overlapping windows of that side, averaged where they overlap. ``flip_views``
    (1, 2 or 4) averages the map over mirror images of the streams (:func:`helpers.models.portable.flip_average`).
    """
    values = compute_streams(rgb, streams, ela_quality=ela_quality, srm_bank=srm_bank)
    return flip_average(lambda view: predict_in_windows(
        lambda window, rows, cols: _predict_padded(model, window, streams, rows, cols), view, max_side=max_side),
        values, flip_views)


def _predict_padded(model: keras.Model, values: dict[str, np.ndarray], streams: Sequence[str], height: int,
                    width: int) -> np.ndarray:
    div = WHOLE_IMAGE_DIVISOR
    pad_h, pad_w = -height % div, -width % div
    mode = "reflect" if min(height, width) > max(pad_h, pad_w) else "edge"
    padded = [np.pad(values[name], ((0, pad_h), (0, pad_w), (0, 0)), mode=mode)[None] for name in streams]
    input_names = [str(tensor.name) for tensor in model.inputs]
    batch = {name: padded[list(streams).index(name)] for name in input_names} if set(input_names) == set(streams) \
        else padded
    # predict_on_batch runs a compiled graph, twice as fast as a direct call on a CASIA-sized image (the direct
    # call dispatches some 300 operations one by one), but it is compiled per input shape: seconds of tracing
    # (with JAX, of XLA compilation) that a photo seen once never earns back. So the first image of a padded
    # shape is called directly and the compiled graph is used from the second on: a dataset of few sizes (CASIA:
    # two) runs compiled, a folder of photos in every size runs as before.
    shape = tuple(int(n) for n in padded[0].shape[1:3])
    seen = _SHAPES_SEEN.setdefault(model, set())
    if shape in seen:
        probability = keras.ops.convert_to_numpy(model.predict_on_batch(batch))
    else:
        seen.add(shape)
        probability = keras.ops.convert_to_numpy(model(batch, training=False))
    return np.asarray(probability, dtype=np.float32)[0, :height, :width, 0]


_SHAPES_SEEN: weakref.WeakKeyDictionary[keras.Model, set[tuple[int, int]]] = weakref.WeakKeyDictionary()
"""Padded input shapes each model has already been called on (see :func:`_predict_padded`)."""


def _batches(layout: TileLayout, batch_size: int) -> Iterator[list[tuple[int, int]]]:
    corners = [(y, x) for y in layout.ys for x in layout.xs]
    for start in range(0, len(corners), batch_size):
        yield corners[start : start + batch_size]


def predict_mask(
    model: keras.Model,
    rgb: np.ndarray | str | os.PathLike[str],
    *,
    tile: int = 256,
    overlap: float | int = 0.25,
    streams: Sequence[str] | None = None,
    batch_size: int = 8,
    ela_quality: int = 90,
    srm_bank: str | None = None,
    flip_views: int = 1,
) -> np.ndarray:
    """Tampering probability of every pixel of an image of any size: float32 ``(H, W)`` in [0, 1].

    ``rgb`` is a uint8 ``(H, W, 3)`` array or an image path (read with :func:`helpers.imageio.load_rgb`).
    ``streams`` defaults to the model's input names (a model whose inputs are named otherwise takes
    ``streams[i]`` as its input ``i``); ``srm_bank`` defaults to the bank matching its ``srm`` input.
    ``tile`` (a multiple of 32; use the training crop size or larger) and ``overlap`` (fraction or pixels)
    set the tiling (:func:`tile_layout`); ``tile=0`` predicts the whole image at once (:func:`predict_whole`, which
    alone takes ``flip_views`` above 1); ``batch_size`` tiles are predicted at once. See the module docstring for
    why streams are computed once on the whole image and how seams are blended.
    """
    image = load_rgb(rgb) if isinstance(rgb, (str, os.PathLike)) else np.asarray(rgb)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) image, not {image.dtype} {image.shape}")
    if isinstance(batch_size, bool) or int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}")
    names = tuple(streams) if streams is not None else model_streams(model)
    bank = srm_bank or model_srm_bank(model)
    if tile == 0:
        return predict_whole(model, image, names, ela_quality=ela_quality, srm_bank=bank, flip_views=flip_views)
    if flip_views != 1:
        raise ValueError(f"flip_views {flip_views!r} averages whole-image maps; a tiled model (tile {tile}) takes 1")
    height, width = image.shape[:2]
    layout = tile_layout(height, width, tile, overlap)
    features = compute_streams(image, names, ela_quality=ela_quality, srm_bank=bank)

    input_names = [str(tensor.name) for tensor in model.inputs]
    by_name = set(input_names) == set(names)  # else inputs named otherwise: streams[i] feeds the model's input i
    if not by_name and len(input_names) != len(names):
        raise ValueError(f"{len(names)} streams {names} for a model with {len(input_names)} inputs {input_names}")

    window = blend_window(layout.tile, layout.overlap)
    weights2d = np.outer(window, window).astype(np.float32)
    canvas_h, canvas_w = layout.canvas_shape
    canvas = np.zeros((canvas_h, canvas_w), dtype=np.float32)
    offsets = np.arange(layout.tile)
    # One batch shape for all batches of an image (the last one padded), so the compiled predict step is traced
    # once per image size class: the batch is the smallest power of two holding all tiles, at most batch_size,
    # which bounds the shapes a model ever sees (retracing a large model costs seconds) without making a
    # one-tile image pay for batch_size tiles.
    batch = min(int(batch_size), 1 << max(0, layout.count - 1).bit_length())
    for corners in _batches(layout, batch):
        x: dict[str, np.ndarray] = {}
        for stream in names:
            source = features[stream]
            tiles = np.zeros((batch, layout.tile, layout.tile, source.shape[2]), dtype=np.float32)
            for i, (y0, x0) in enumerate(corners):
                rows = _reflect(y0 - layout.margin + offsets, height)
                cols = _reflect(x0 - layout.margin + offsets, width)
                tiles[i] = scale_stream(stream, source[rows[:, None], cols[None, :]])
            x[stream] = tiles
        feed: Any = x if by_name else ([x[n] for n in names] if len(names) > 1 else x[names[0]])
        predicted = keras.ops.convert_to_numpy(model.predict_on_batch(feed))
        predicted = np.asarray(predicted, dtype=np.float32).reshape(batch, layout.tile, layout.tile, -1)[..., 0]
        for i, (y0, x0) in enumerate(corners):
            canvas[y0 : y0 + layout.tile, x0 : x0 + layout.tile] += predicted[i] * weights2d
    rows_total = _coverage(layout.ys, window, canvas_h)[layout.margin : layout.margin + height]
    cols_total = _coverage(layout.xs, window, canvas_w)[layout.margin : layout.margin + width]
    out = canvas[layout.margin : layout.margin + height, layout.margin : layout.margin + width]
    out /= rows_total.astype(np.float32)[:, None]
    out /= cols_total.astype(np.float32)[None, :]
    return np.clip(out, 0.0, 1.0)  # a new array: the canvas (and its margins) is freed


# ----------------------------------------------------------------------------------------------------------------
# Classifiers on whole images
# ----------------------------------------------------------------------------------------------------------------
MAX_CLASSIFIER_TILES = 64
"""Tiles scored per image at most; larger images are sampled on a coarser, still grid-aligned, lattice."""


@dataclass(frozen=True)
class TileScores:
    """A classifier's P(tampered) per tile: ``scores[r, c]`` for the tile at ``(r * step * size, c * step * size)``.

    Each score stands for the ``step * size`` square starting at its tile (with ``step > 1`` the tiles between
    sampled ones are not scored), which :meth:`upsample` paints back at the image's size.
    """

    scores: np.ndarray
    size: int
    step: int
    height: int
    width: int

    @property
    def image_score(self) -> float:
        """The image's P(tampered): the maximum over tiles (one tile showing the edit is enough)."""
        return float(self.scores.max())

    def upsample(self) -> np.ndarray:
        """``float32 (height, width)``: every pixel takes the score of the tile that stands for it."""
        block = self.size * self.step
        full = np.repeat(np.repeat(self.scores.astype(np.float32), block, axis=0), block, axis=1)
        return np.ascontiguousarray(full[: self.height, : self.width])


def classify_tiles(
    model: keras.Model,
    rgb: np.ndarray,
    *,
    size: int | None = None,
    streams: Sequence[str] | None = None,
    ela_quality: int = 90,
    srm_bank: str = "zhou3",
    batch_size: int = 16,
    max_tiles: int = MAX_CLASSIFIER_TILES,
) -> TileScores:
    """A classifier's tampered probability for every ``size`` x ``size`` tile of a whole image.

    Tiles start on a grid of ``size`` (the training crop, a multiple of 16, so JPEG blocks stay aligned) from the
    top-left corner, the image padded by reflection to whole tiles; streams are computed once on the whole image,
    as in training. When more than ``max_tiles`` tiles would be needed, every ``step``-th tile in each direction is
    scored. A softmax model's tampered score is ``1 - P(authentic)`` (class 0).
    """
    image = np.asarray(rgb)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) image, not {image.dtype} {image.shape}")
    names = list(streams) if streams is not None else list(model_streams(model))
    size = int(size or model.inputs[0].shape[1])
    height, width = image.shape[:2]
    rows, cols = -(-height // size), -(-width // size)
    step = 1
    while (-(-rows // step)) * (-(-cols // step)) > max_tiles:
        step += 1
    full = compute_streams(image, names, ela_quality=ela_quality, srm_bank=srm_bank)
    padded = {name: _pad_to(values, rows * size, cols * size) for name, values in full.items()}
    corners = [(r * size, c * size) for r in range(0, rows, step) for c in range(0, cols, step)]
    # One batch shape per image, the last batch padded (as in predict_mask): the predict step is traced once.
    batch = min(int(batch_size), 1 << max(0, len(corners) - 1).bit_length())
    scores: list[float] = []
    for start in range(0, len(corners), batch):
        chunk = corners[start : start + batch]
        feed = {}
        for name in names:
            tiles = np.zeros((batch, size, size, padded[name].shape[2]), dtype=np.float32)
            for i, (y, x) in enumerate(chunk):
                tiles[i] = scale_stream(name, padded[name][y : y + size, x : x + size])
            feed[name] = tiles
        output = np.asarray(keras.ops.convert_to_numpy(model.predict_on_batch(feed)), dtype=np.float64)
        output = output.reshape(batch, -1)[: len(chunk)]
        tampered = 1.0 - output[:, 0] if output.shape[-1] > 1 else output[:, 0]
        scores.extend(float(s) for s in tampered)
    grid = np.clip(np.array(scores), 0.0, 1.0).reshape(-(-rows // step), -(-cols // step))
    return TileScores(grid, size, step, height, width)


def _pad_to(values: np.ndarray, height: int, width: int) -> np.ndarray:
    extra_h, extra_w = height - values.shape[0], width - values.shape[1]
    if extra_h == 0 and extra_w == 0:
        return values
    mode = "reflect" if extra_h < values.shape[0] and extra_w < values.shape[1] else "symmetric"
    return np.pad(values, ((0, extra_h), (0, extra_w), (0, 0)), mode=mode)
