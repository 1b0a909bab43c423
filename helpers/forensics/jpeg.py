"""JPEG analysis: the quality a file was saved at, read from its quantisation tables.

Encoders that follow the Independent JPEG Group's reference (libjpeg, libjpeg-turbo, and so Pillow, OpenCV and
most editors) scale the standard tables of the JPEG specification (Annex K) by one quality factor. Comparing a
file's tables with those scaled tables recovers the factor, exactly for such encoders and approximately for
cameras with their own tables (``exact`` is then False).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["STANDARD_LUMINANCE", "STANDARD_CHROMINANCE", "scaled_table", "JpegQuality", "estimate_jpeg_quality"]

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
    from helpers.imageio import ImageLoadError

    file = Path(path)
    try:
        with Image.open(file) as img:
            image_format = img.format or "unknown"
            tables = getattr(img, "quantization", None) or {}
    except FileNotFoundError as exc:
        raise ImageLoadError(file, "file not found") from exc
    except Exception as exc:  # noqa: BLE001 - any Pillow failure means the header is unreadable
        raise ImageLoadError(file, f"unreadable image header ({type(exc).__name__}: {exc})") from exc
    if image_format != "JPEG" or not tables:
        return JpegQuality(quality=None, exact=False, format=image_format)
    luminance = np.sort(np.asarray(tables[min(tables)], dtype=np.int64))
    distances = {q: int(np.abs(table - luminance).sum()) for q, table in _SORTED_LUMINANCE.items()}
    best = min(distances, key=lambda q: (distances[q], -q))
    return JpegQuality(quality=best, exact=distances[best] == 0, format=image_format, tables=len(tables))
