"""Block-wise JPEG traces on pixels: luminance, the 8x8 DCT on a chosen grid, where the JPEG grid lies, and the
quantisation step of each DCT mode (notebook 04).

A JPEG stores each 8x8 block of the luminance as DCT coefficients rounded to multiples of a step (the
quantisation table). Decoding and saving the pixels losslessly (PNG, TIFF: the CASIA v1 fixtures) throws the
table away but not its trace: the DCT of the decoded luminance *on the same 8x8 grid* is still close to those
multiples, and the block boundaries still show a faint step (blockiness). These functions recover both, so the
compression-domain detectors (``helpers.detectors.dq``, ``helpers.detectors.grid``) work on pixels that were
once JPEG as well as on JPEG files:

* :func:`luminance` -- JPEG's Y channel from RGB;
* :func:`block_dct` -- the orthonormal 8x8 DCT-II of every whole block from a grid offset (JPEG's scale);
* :func:`boundary_steps`, :func:`phase_votes` and :func:`estimate_jpeg_grid` -- the grid offset from
  blockiness, with a significance test so that never-compressed pixels report no grid;
* :func:`estimate_quantisation_steps` -- each mode's step from how tightly the coefficients sit on a lattice;
* :func:`tile_blocks` and :func:`blocks_to_pixels` -- cut a map into blocks, and spread a per-block map back
  over the pixels.

Only NumPy and OpenCV are used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from helpers.imageio import check_rgb

__all__ = [
    "ZIGZAG",
    "luminance",
    "dct_matrix",
    "block_dct",
    "boundary_steps",
    "GridEstimate",
    "estimate_jpeg_grid",
    "phase_votes",
    "GRID_T_THRESHOLD",
    "estimate_quantisation_steps",
    "tile_blocks",
    "block_means",
    "channel_mean",
    "blocks_to_pixels",
]


def _zigzag() -> tuple[tuple[int, int], ...]:
    order: list[tuple[int, int]] = []
    for diagonal in range(15):
        cells = [(row, diagonal - row) for row in range(8) if 0 <= diagonal - row < 8]
        order.extend(cells if diagonal % 2 else cells[::-1])
    return tuple(order)


ZIGZAG: tuple[tuple[int, int], ...] = _zigzag()
"""The 64 ``(row, column)`` DCT modes in JPEG's zig-zag order: DC first, then rising frequency."""


def luminance(rgb: np.ndarray) -> np.ndarray:
    """JPEG's luminance ``Y = 0.299 R + 0.587 G + 0.114 B`` (JFIF, full range) as float32 ``(H, W)``.

    Decoding a JPEG converts Y, Cb, Cr to RGB, and this weighted sum cancels the chroma terms exactly, so it
    gives back the decoded luminance up to the rounding of R, G and B (about 0.2 grey levels).
    """
    image = check_rgb(rgb)
    y = image[..., 0].astype(np.float32) * np.float32(0.299)
    y += image[..., 1].astype(np.float32) * np.float32(0.587)
    y += image[..., 2].astype(np.float32) * np.float32(0.114)
    return y


def dct_matrix(size: int = 8) -> np.ndarray:
    """The orthonormal DCT-II matrix ``C`` (float64 ``(size, size)``): a block's DCT is ``C @ block @ C.T``."""
    k = np.arange(size)[:, None]
    n = np.arange(size)[None, :]
    matrix = np.sqrt(2.0 / size) * np.cos((2 * n + 1) * k * np.pi / (2 * size))
    matrix[0] /= np.sqrt(2.0)
    return matrix


_DCT8 = dct_matrix(8)


def block_dct(y: np.ndarray, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """DCT of every whole 8x8 block of ``y`` from ``offset = (dy, dx)``: float32 ``(blocks_y, blocks_x, 8, 8)``.

    The blocks start at row ``dy`` and column ``dx`` (0..7); rows and columns that do not fill a block at the
    edges are left out. Pixels are level-shifted by 128 and the transform is orthonormal, as in JPEG, so on the
    grid a JPEG was saved on, coefficient ``(u, v)`` is close to a multiple of that JPEG's step ``Q[u, v]``.
    An image smaller than one block gives an empty ``(0, 0, 8, 8)`` array.
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 2:
        raise ValueError(f"expected a (H, W) luminance array, not shape {y.shape}")
    dy, dx = (int(offset[0]), int(offset[1]))
    if not (0 <= dy < 8 and 0 <= dx < 8):
        raise ValueError(f"grid offset must be within 0..7, not {offset!r}")
    rows = (y.shape[0] - dy) // 8
    cols = (y.shape[1] - dx) // 8
    if rows <= 0 or cols <= 0:
        return np.zeros((0, 0, 8, 8), np.float32)
    blocks = y[dy:dy + rows * 8, dx:dx + cols * 8].reshape(rows, 8, cols, 8).transpose(0, 2, 1, 3)
    blocks = blocks.astype(np.float64) - 128.0
    # C @ B @ C.T for every block at once, in float64 so the lattice (steps of 1) is not blurred by rounding.
    return np.matmul(np.matmul(_DCT8, blocks), _DCT8.T).astype(np.float32)


def boundary_steps(y: np.ndarray, axis: int) -> np.ndarray:
    """Per-pixel blockiness across ``axis``: float32, one value per pair of neighbours along ``axis``.

    For neighbours ``a = y[i]`` and ``b = y[i + 1]`` along ``axis``, the value is ``|b - a|`` minus the mean
    of the two steps beside it (``|a - y[i-1]|`` and ``|y[i+2] - b|``), clipped at zero: a step that is
    larger than the ones around it, as at a JPEG block boundary (Fan & de Queiroz 2003; the "block artifact
    grid" of Li, Yuan & Yu 2009). Smooth gradients give zero; an edge gives a large value at every phase it
    crosses, so averages over many rows (or columns) are what reveal the grid. The output has length
    ``n - 1`` along ``axis`` (index ``i`` is the boundary between pixels ``i`` and ``i + 1``); the first and
    last boundaries, which lack a neighbour step, use the one they have.
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 2 or axis not in (0, 1):
        raise ValueError(f"expected a (H, W) array and axis 0 or 1, got shape {y.shape} and axis {axis}")
    steps = np.abs(np.diff(y, axis=axis))
    if steps.shape[axis] < 3:
        return steps
    moved = np.moveaxis(steps, axis, 0)
    before = np.concatenate([moved[:1], moved[:-1]], axis=0)
    after = np.concatenate([moved[1:], moved[-1:]], axis=0)
    excess = moved - np.float32(0.5) * (before + after)
    np.maximum(excess, 0.0, out=excess)
    return np.ascontiguousarray(np.moveaxis(excess, 0, axis))


@dataclass(frozen=True)
class GridEstimate:
    """Where the last JPEG's 8x8 grid lies in an image, estimated from blockiness."""

    offset: tuple[int, int]
    """``(dy, dx)``: the first block starts at row ``dy`` and column ``dx`` (``(0, 0)`` when not found)."""
    found: bool
    """True when both the row and the column phase stand out significantly (see :func:`estimate_jpeg_grid`)."""
    t_statistic: tuple[float, float]
    """The test statistics of the row and the column phase (larger = clearer grid)."""
    row_profile: np.ndarray
    """Share of votes of the 8 row phases (index ``p``: boundary between rows ``8k + p`` and ``8k + p + 1``)."""
    col_profile: np.ndarray
    """Share of votes of the 8 column phases."""


GRID_T_THRESHOLD: float = 3.0
"""One-sided t-statistic (over held-out strips) a phase must reach to count as the grid: about the 1% level
for 7 or more degrees of freedom."""


def estimate_jpeg_grid(y: np.ndarray, *, strips: int = 32) -> GridEstimate:
    """The 8x8 grid offset of the last JPEG compression of ``y``, from blockiness (:func:`boundary_steps`).

    Along each axis every 8-pixel segment of every line votes for the phase of its largest boundary step
    (segments with no step at all, such as flat or clipped areas, do not vote); votes rather than sums keep a
    single strong edge from deciding. The image is cut into ``strips`` bands across the axis: the winning
    phase is chosen on the even bands, and a one-sided t-test on the odd bands asks whether that phase's share
    of votes exceeds the median share of the other phases (t > :data:`GRID_T_THRESHOLD`). Choosing on one
    half and testing on the other keeps the test honest: picking the largest of 8 phases and testing it on the
    same data would find a "grid" in pure noise. Never-compressed pixels, JPEGs resized since, or images under
    64 pixels on a side report ``found=False`` and ``offset=(0, 0)``.
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 2:
        raise ValueError(f"expected a (H, W) luminance array, not shape {y.shape}")
    row_phase, row_t, row_profile = _phase_votes(boundary_steps(y, 0), 0, strips)
    col_phase, col_t, col_profile = _phase_votes(boundary_steps(y, 1), 1, strips)
    found = row_t > GRID_T_THRESHOLD and col_t > GRID_T_THRESHOLD
    # A boundary after pixel 8k + p means blocks start at 8k + p + 1.
    offset = ((row_phase + 1) % 8, (col_phase + 1) % 8) if found else (0, 0)
    return GridEstimate(offset=offset, found=found, t_statistic=(row_t, col_t),
                        row_profile=row_profile, col_profile=col_profile)


def phase_votes(steps: np.ndarray, axis: int) -> np.ndarray:
    """Per line, the votes of its 8-pixel segments for each boundary phase: int ``(lines, 8)``.

    ``steps`` is :func:`boundary_steps` along ``axis``; a line runs along ``axis`` (a row for ``axis=1``).
    Segment ``k`` covers boundaries ``8k .. 8k + 7`` and votes for the phase of its largest step, or not at
    all when it has no step.
    """
    moved = np.moveaxis(np.asarray(steps), axis, 1)
    lines, along = moved.shape
    usable = (along // 8) * 8
    if usable == 0:
        return np.zeros((lines, 8), np.int64)
    segments = moved[:, :usable].reshape(lines, usable // 8, 8)
    winner = np.argmax(segments, axis=2)
    votes = np.zeros((lines, 8), np.int64)
    line_index = np.broadcast_to(np.arange(lines)[:, None], winner.shape)
    voting = segments.max(axis=2) > 0
    np.add.at(votes, (line_index[voting], winner[voting]), 1)
    return votes


def _phase_votes(steps: np.ndarray, axis: int, strips: int) -> tuple[int, float, np.ndarray]:
    """Winning phase along ``axis`` (chosen on even strips), its t-statistic on odd strips, the vote shares."""
    along = steps.shape[axis]
    across = steps.shape[1 - axis]
    if along < 64 or across < 64:
        return 0, 0.0, np.full(8, 1.0 / 8.0, np.float32)
    votes = phase_votes(steps, axis)
    n_strips = int(max(4, min(strips, across // 8)))
    n_strips -= n_strips % 2
    bounds = np.linspace(0, across, n_strips + 1).astype(int)
    per_strip = np.stack([votes[a:b].sum(axis=0) for a, b in zip(bounds[:-1], bounds[1:])]).astype(np.float64)
    shares = per_strip / np.maximum(per_strip.sum(axis=1, keepdims=True), 1.0)
    profile = (per_strip.sum(axis=0) / max(per_strip.sum(), 1.0)).astype(np.float32)
    phase = int(np.argmax(shares[0::2].mean(axis=0)))
    held_out = shares[1::2]
    lead = held_out[:, phase] - np.median(np.delete(held_out, phase, axis=1), axis=1)
    mean = float(lead.mean())
    spread = float(lead.std(ddof=1))
    if spread <= 0.0:
        t = float("inf") if mean > 0 else 0.0
    else:
        t = mean / (spread / np.sqrt(len(lead)))
    return phase, float(t), profile


def estimate_quantisation_steps(
    coefficients: np.ndarray,
    modes: tuple[tuple[int, int], ...] | None = None,
    *,
    max_step: int = 100,
    min_samples: int = 50,
    min_fit: float = 0.5,
    max_samples: int = 4096,
    seed: int = 0,
) -> np.ndarray:
    """Each DCT mode's quantisation step, from unquantised coefficients on the JPEG's grid: int ``(8, 8)``.

    ``coefficients`` is :func:`block_dct` of pixels decoded from a JPEG. For a candidate step ``q`` the fit is
    ``mean(cos(2 pi c / q))`` over the coefficients ``c`` with ``|c| >= q / 2`` (those outside the zero bin):
    1 when every one lies on a multiple of ``q``, about 0 for values unrelated to ``q``. Rounding noise (about
    0.3 to 0.7 in these units) lowers the fit of a divisor ``Q / m`` of the true step ``Q`` more than that of
    ``Q`` itself, and multiples ``m Q`` fit only when every value happens to be a multiple of them, so the step
    is the ``q`` in ``2..max_step`` with the best fit, kept when the fit reaches ``min_fit`` with at least
    ``min_samples`` coefficients. Otherwise the entry is 0 (unknown): a step of 1 or 2 (quality 95 and above)
    drowns in the rounding noise, and never-compressed pixels have no lattice at all. Only ``modes`` are
    estimated (default: all 64); at most ``max_samples`` blocks are used per mode (a fixed random subset, so
    the result is deterministic), which is plenty for the lattice and bounds the cost on large images.
    """
    coefficients = np.asarray(coefficients)
    if coefficients.ndim != 4 or coefficients.shape[2:] != (8, 8):
        raise ValueError(f"expected block coefficients of shape (by, bx, 8, 8), not {coefficients.shape}")
    flat = coefficients.reshape(-1, 8, 8)
    if flat.shape[0] > max_samples:
        pick = np.random.default_rng(seed).choice(flat.shape[0], size=max_samples, replace=False)
        flat = flat[np.sort(pick)]
    steps = np.zeros((8, 8), np.int64)
    candidates = np.arange(2, int(max_step) + 1, dtype=np.float32)
    for u, v in modes if modes is not None else ZIGZAG:
        # cos is even, so magnitudes suffice; sorted, the coefficients outside q's zero bin are a tail.
        magnitudes = np.sort(np.abs(flat[:, u, v].astype(np.float32)))
        starts = np.searchsorted(magnitudes, candidates / 2.0, side="left")
        counts = magnitudes.size - starts
        usable = int(np.count_nonzero(counts >= min_samples))
        if usable == 0:
            continue
        first = int(starts[0])
        tail = magnitudes[first:]
        phases = np.cos((np.float32(2.0 * np.pi) / candidates[:usable, None]) * tail[None, :])
        # Each candidate's own tail: blank the values inside its zero bin, then one sum per row.
        phases[np.arange(tail.size)[None, :] < (starts[:usable] - first)[:, None]] = 0.0
        fit = phases.sum(axis=1, dtype=np.float64) / counts[:usable]
        best = int(np.argmax(fit))
        if fit[best] >= min_fit:
            steps[u, v] = int(candidates[best])
    return steps


def tile_blocks(values: np.ndarray, block: int) -> np.ndarray:
    """The whole ``block`` x ``block`` tiles of a ``(H, W)`` map as ``(rows, cols, block * block)``.

    Tiles start at the top-left corner; the pixels past the last whole tile are left out (spread the per-tile
    results back with :func:`blocks_to_pixels`, which extends the edge tiles over them). A map smaller than
    one tile gives ``(0, 0, block * block)``.
    """
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"expected a (H, W) map, not shape {values.shape}")
    rows, cols = values.shape[0] // block, values.shape[1] // block
    if rows == 0 or cols == 0:
        return np.zeros((0, 0, block * block), values.dtype)
    tiles = values[:rows * block, :cols * block].reshape(rows, block, cols, block).transpose(0, 2, 1, 3)
    return tiles.reshape(rows, cols, block * block)


def channel_mean(values: np.ndarray) -> np.ndarray:
    """float32 ``(H, W)`` mean over the channels of an ``(H, W, C)`` array, plane by plane: equal to
    ``values.astype(np.float32).mean(axis=2)``, but NumPy reduces a 3-long last axis several times slower than it
    adds three planes (half a second against a tenth on a 5 MP image)."""
    values = np.asarray(values)
    if values.ndim != 3 or values.shape[2] < 1:
        raise ValueError(f"expected an (H, W, C) array, not shape {values.shape}")
    total = values[..., 0].astype(np.float32)
    for channel in range(1, values.shape[2]):
        total += values[..., channel]
    total /= np.float32(values.shape[2])
    return total


def block_means(values: np.ndarray, block: int) -> np.ndarray:
    """The mean of every whole ``block`` x ``block`` tile of a ``(H, W)`` map, float32 ``(rows, cols)``: the same
    tiles as :func:`tile_blocks` (``tile_blocks(values, block).mean(axis=2)``, to float rounding) without the
    transposed copy it makes, which on a 12 MP map cost a second per call."""
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 2:
        raise ValueError(f"expected a (H, W) map, not shape {values.shape}")
    rows, cols = values.shape[0] // block, values.shape[1] // block
    if rows == 0 or cols == 0:
        return np.zeros((0, 0), np.float32)
    # Sum along each row's contiguous block first, then over the block's rows: two reductions on views.
    across = values[:rows * block, :cols * block].reshape(rows * block, cols, block).sum(axis=2)
    return (across.reshape(rows, block, cols).sum(axis=1) / np.float32(block * block)).astype(np.float32)


def blocks_to_pixels(values: np.ndarray, shape: tuple[int, int], *, block: int = 8,
                     offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Spread a per-block map ``values`` ``(rows, cols)`` over an image of ``shape`` ``(H, W)``.

    Block ``(i, j)`` covers rows ``dy + i * block`` to ``dy + (i + 1) * block`` and likewise for columns; the
    pixels before the offset and past the last whole block take the nearest block's value, so the result
    always has the image's size. An empty ``values`` gives zeros.
    """
    values = np.asarray(values)
    height, width = int(shape[0]), int(shape[1])
    if values.ndim != 2:
        raise ValueError(f"expected a (rows, cols) block map, not shape {values.shape}")
    if values.size == 0:
        return np.zeros((height, width), dtype=values.dtype if values.dtype != bool else bool)
    rows = np.clip((np.arange(height) - int(offset[0])) // block, 0, values.shape[0] - 1)
    cols = np.clip((np.arange(width) - int(offset[1])) // block, 0, values.shape[1] - 1)
    return np.ascontiguousarray(values[rows[:, None], cols[None, :]])
