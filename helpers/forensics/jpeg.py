"""JPEG analysis: the quality a file was saved at (from its quantisation tables) and JPEG ghosts.

Encoders that follow the Independent JPEG Group's reference (libjpeg, libjpeg-turbo, and so Pillow, OpenCV and
most editors) scale the standard tables of the JPEG specification (Annex K) by one quality factor. Comparing a
file's tables with those scaled tables recovers the factor, exactly for such encoders and approximately for
cameras with their own tables (``exact`` is then False).

:func:`jpeg_ghosts` works on pixels instead: a region that was once saved at a lower quality than the rest of
the image changes least when re-saved at that quality (Farid, "Exposing Digital Forgeries from JPEG Ghosts",
IEEE TIFS 2009).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from helpers.forensics.ela import _abs_difference, _check_qualities, _check_rgb
from helpers.imageio import ImageLoadError

__all__ = [
    "STANDARD_LUMINANCE",
    "STANDARD_CHROMINANCE",
    "scaled_table",
    "JpegQuality",
    "estimate_jpeg_quality",
    "jpeg_quantization_tables",
    "DEFAULT_GHOST_QUALITIES",
    "jpeg_ghosts",
]

# JPEG specification, Annex K.1 and K.2, in natural (row-major) order.
STANDARD_LUMINANCE = np.array(
    [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
     14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
     49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99],
    dtype=np.int64,
)
STANDARD_CHROMINANCE = np.array(
    [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
     47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32,
    dtype=np.int64,
)


def scaled_table(quality: int, base: np.ndarray = STANDARD_LUMINANCE) -> np.ndarray:
    """The table libjpeg uses at ``quality`` (1-100), from a standard ``base`` table."""
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be within 1..100, got {quality}")
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((base * scale + 50) // 100, 1, 255)


@dataclass(frozen=True)
class JpegQuality:
    """The estimated quality of a JPEG file."""

    quality: int | None
    """Estimated IJG quality factor 1-100; ``None`` when the file is not a JPEG."""
    exact: bool
    """True when the luminance table equals libjpeg's table at ``quality`` entry for entry."""
    format: str
    """The file format Pillow reports (``JPEG``, ``PNG``, ``TIFF``, ...)."""
    tables: int = 0
    """How many quantisation tables the file holds (JPEG only)."""

    @property
    def is_jpeg(self) -> bool:
        return self.quality is not None


# Sorted entries make the comparison independent of the order Pillow lists a table in (zig-zag or natural).
_SORTED_LUMINANCE = {q: np.sort(scaled_table(q)) for q in range(1, 101)}


def estimate_jpeg_quality(path: str | os.PathLike[str]) -> JpegQuality:
    """Estimate the quality factor a file was saved at from its luminance quantisation table.

    Non-JPEG files get ``quality=None`` and their format, not an error: a PNG or TIFF simply has no JPEG
    history to read. An unreadable file raises :class:`helpers.imageio.ImageLoadError`.
    """
    image_format, tables = _read_tables(Path(path))
    if image_format != "JPEG" or not tables:
        return JpegQuality(quality=None, exact=False, format=image_format)
    luminance = np.sort(np.asarray(tables[min(tables)], dtype=np.int64))
    distances = {q: int(np.abs(table - luminance).sum()) for q, table in _SORTED_LUMINANCE.items()}
    best = min(distances, key=lambda q: (distances[q], -q))
    return JpegQuality(quality=best, exact=distances[best] == 0, format=image_format, tables=len(tables))


def jpeg_quantization_tables(path: str | os.PathLike[str]) -> dict[int, np.ndarray]:
    """The quantisation tables stored in a JPEG file, ``{table id: (8, 8) int array}`` in natural order.

    Table 0 is normally luminance and table 1 chrominance. The tables are the most direct record of how a
    JPEG was last saved (the quality factor of IJG encoders, or a camera's or editor's own tables, which can
    identify the software). A file that is not a JPEG (PNG, TIFF, ...) gives ``{}``: it has no tables, which is
    an answer, not an error. An unreadable file raises :class:`helpers.imageio.ImageLoadError`.
    """
    image_format, tables = _read_tables(Path(path))
    if image_format != "JPEG":
        return {}
    return {int(k): np.asarray(v, dtype=np.int64).reshape(8, 8) for k, v in sorted(tables.items())}


def _read_tables(file: Path) -> tuple[str, dict]:
    try:
        with Image.open(file) as img:
            return img.format or "unknown", dict(getattr(img, "quantization", None) or {})
    except FileNotFoundError as exc:
        raise ImageLoadError(file, "file not found") from exc
    except Exception as exc:  # noqa: BLE001 - any Pillow failure means the header is unreadable
        raise ImageLoadError(file, f"unreadable image header ({type(exc).__name__}: {exc})") from exc


DEFAULT_GHOST_QUALITIES: tuple[int, ...] = tuple(range(50, 100, 5))
"""Qualities 50, 55, ..., 95: the range where real-world JPEG qualities lie."""


def jpeg_ghosts(
    rgb: np.ndarray,
    qualities: Iterable[int] = DEFAULT_GHOST_QUALITIES,
    *,
    window: int = 16,
    normalize: bool = True,
) -> np.ndarray:
    """JPEG ghosts (Farid 2009): float32 ``(len(qualities), H, W)``, one difference map per quality.

    For each quality ``q`` the image is re-saved in memory and the squared difference, averaged over the colour
    channels and over a ``window`` x ``window`` neighbourhood (Farid used 16; reflect-101 borders), is
    recorded. A region once saved at quality ``q1`` shows a minimum (a dark "ghost") in the map for ``q1``
    even after the whole image was saved again at a higher quality. With ``normalize`` each map is scaled to
    [0, 1] on its own (the paper's presentation: the ghost is a *relative* minimum within one map);
    ``normalize=False`` keeps mean squared differences in grey levels squared.

    Works on any array, whatever the file format was, but only says something about pixels that went through a
    JPEG save: a PNG that never did shows no ghost, and resizing or re-gridding (cropping by a number of pixels
    that is not a multiple of 8) after the saves weakens ghosts, since Farid's method assumes the 8x8 grids
    line up. Ghosts are clear when the region's quality is well below the final quality (by 10 or more).
    """
    image = _check_rgb(rgb)
    quality_list = _check_qualities(list(qualities))
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be a positive integer, not {window!r}")
    import cv2

    pil_image = Image.fromarray(image)
    height, width = image.shape[:2]
    out = np.empty((len(quality_list), height, width), dtype=np.float32)
    for index, quality in enumerate(quality_list):
        diff = _abs_difference(image, pil_image, quality).astype(np.float32)
        np.multiply(diff, diff, out=diff)
        mean = diff.sum(axis=2)
        mean *= np.float32(1.0 / 3.0)
        smoothed = cv2.blur(mean, (int(window), int(window)), borderType=cv2.BORDER_REFLECT_101)
        if normalize:
            low, high = float(smoothed.min()), float(smoothed.max())
            if high > low:
                smoothed = (smoothed - np.float32(low)) * np.float32(1.0 / (high - low))
            else:
                smoothed = np.zeros_like(smoothed)
        out[index] = smoothed
    return out
