"""Error level analysis (ELA): how much an image changes when it is JPEG-compressed once more.

A JPEG that was saved at quality ``q`` is close to a fixed point of compression at ``q``: re-saving it changes
little. A region pasted in from elsewhere (or edited and re-saved at another quality, or never compressed on the
same 8x8 grid) has not converged in the same way and shows a different error level. ELA is the per-pixel
absolute difference ``|rgb - decode(encode_jpeg(rgb, q))|``.

The round trip happens in memory (no temporary file, so parallel workers cannot overwrite each other's files
and nothing is left behind on a crash), with one Pillow encode, one decode and one ``cv2.absdiff`` on ``uint8``:
the JPEG codec is the whole cost, within a few percent of a bare encode+decode (``benchmarks/bench_features.py``).

Caveats worth keeping in mind when reading an ELA map:

* every re-save lowers the error levels of the whole image (it converges), so an image saved many times shows
  little contrast between original and edited regions;
* PNG and other uncompressed sources have no JPEG history: their ELA is high wherever the content has edges
  and texture, which says nothing about tampering;
* resizing, rotating or cropping off the 8x8 grid after the last JPEG save destroys the block structure the
  method relies on;
* dark, flat or saturated regions have low error whatever their history; textured ones high.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Literal

import cv2
import numpy as np
from PIL import Image

from helpers.config import ELA_QUALITY
from helpers.imageio import check_rgb as _check_rgb

__all__ = ["ELA_MODES", "ELAMode", "DEFAULT_GAIN", "ela"]

ELAMode = Literal["raw", "max", "gain"]
ELA_MODES: tuple[str, ...] = ("raw", "max", "gain")

DEFAULT_GAIN: float = 15.0
"""Gain of ``mode="gain"`` when none is given: the value of the U-Net seed notebook (differences of a
quality-90 re-save are mostly below 17, so x15 spreads them over the 0..255 range)."""


def ela(
    rgb: np.ndarray,
    quality: int | Sequence[int] = ELA_QUALITY,
    *,
    mode: ELAMode = "raw",
    gain: float | None = None,
) -> np.ndarray:
    """Error level analysis of a ``uint8`` ``(H, W, 3)`` image, computed in memory.

    ``quality`` (1..100, default :data:`helpers.config.ELA_QUALITY`) is the JPEG quality of the re-save; a sequence of qualities gives one ELA per quality,
    stacked along the channels: ``(H, W, 3 * len(quality))`` in the order given (different qualities reveal
    regions saved at different qualities, see also :func:`helpers.forensics.jpeg.jpeg_ghosts`).

    ``mode`` decides how the absolute difference is scaled; the result is always ``uint8``:

    * ``"raw"``: the absolute difference itself (comparable between images; what a model should see);
    * ``"max"``: each ELA map stretched so its largest difference becomes 255 (``scale = 255 / max``, as the
      ResNet50 seed pipeline's ``ImageEnhance.Brightness`` step), for display; an all-zero map stays zero.
      Values are rounded, where Pillow's brightness enhancement truncates (at most one grey level apart);
    * ``"gain"``: multiplied by a fixed ``gain`` (default :data:`DEFAULT_GAIN`, the U-Net seed's 15) and
      clipped to 255; unlike ``"max"`` the scale is the same for every image.

    Re-encoding uses Pillow's defaults otherwise (4:2:0 chroma subsampling), as the seed notebooks did.
    """
    image = _check_rgb(rgb)
    qualities = _check_qualities(quality)
    if mode not in ELA_MODES:
        raise ValueError(f"mode must be one of {ELA_MODES}, not {mode!r}")
    if mode == "gain":
        gain = DEFAULT_GAIN if gain is None else float(gain)
        if not np.isfinite(gain) or gain < 0:
            raise ValueError(f"gain must be a finite number >= 0, not {gain!r}")
    elif gain is not None:
        raise ValueError(f"gain only applies to mode='gain', not mode={mode!r}")

    # Pillow copies the array into its own buffer once; do it once for all qualities.
    pil_image = Image.fromarray(image)
    maps = [_scale(_abs_difference(image, pil_image, q), mode, gain) for q in qualities]
    if isinstance(quality, (int, np.integer)):
        return maps[0]
    return np.concatenate(maps, axis=2) if len(maps) > 1 else maps[0]


def _abs_difference(image: np.ndarray, pil_image: Image.Image, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    pil_image.save(buffer, format="JPEG", quality=quality)
    with Image.open(io.BytesIO(buffer.getvalue())) as decoded:
        # Read-only view of Pillow's decoded bytes: fine as an input, and saves a copy.
        resaved = np.asarray(decoded)
    if resaved.shape != image.shape:  # cannot happen for an RGB save, but never subtract misaligned arrays
        raise RuntimeError(f"JPEG round trip changed the shape {image.shape} to {resaved.shape}")
    return cv2.absdiff(image, resaved)


def _scale(diff: np.ndarray, mode: str, gain: float | None) -> np.ndarray:
    if mode == "raw":
        return diff
    if mode == "max":
        peak = int(diff.max())
        if peak == 0:
            return diff
        factor = 255.0 / peak
    else:
        assert gain is not None
        factor = gain
    # A 256-entry lookup table: the same result as multiplying every pixel, without a float image.
    table = np.clip(np.rint(np.arange(256, dtype=np.float64) * factor), 0, 255).astype(np.uint8)
    return cv2.LUT(diff, table)


def _check_qualities(quality: int | Sequence[int]) -> list[int]:
    values = [quality] if isinstance(quality, (int, np.integer)) else list(quality)
    if not values:
        raise ValueError("quality must be an integer or a non-empty sequence of integers")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= 100:
            raise ValueError(f"JPEG quality must be an integer from 1 to 100, not {value!r}")
    return [int(v) for v in values]
