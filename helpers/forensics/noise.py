"""Noise residuals and local noise level maps.

A spliced region usually comes from another camera, another ISO setting or another processing chain, and a
retouched one has been smoothed or re-noised: its noise level differs from the rest of the image even when its
colours match. These maps make that visible (Mahdian & Saic, "Using noise inconsistencies for blind image
forensics", 2009, estimate the noise per block in the same spirit).
"""

from __future__ import annotations

import cv2
import numpy as np

from helpers.imageio import check_rgb as _check_rgb

__all__ = ["median_residual", "local_noise_map", "NOISE_KERNEL"]

NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
"""Immerkaer's noise-estimation mask ("Fast noise variance estimation", CVIU 1996): the difference of two
Laplacians, blind to constant, linear and (mostly) quadratic content; Gaussian noise of standard deviation
``sigma`` gives a response of standard deviation ``6 * sigma`` (the kernel's L2 norm is 6)."""

_MAD_TO_SIGMA = 1.0 / 0.6744897501960817
"""median(|N(0, s^2)|) = 0.6745 s: turns a median absolute residual into a standard deviation."""


def median_residual(rgb: np.ndarray, size: int = 3) -> np.ndarray:
    """The image minus its ``size`` x ``size`` median filter, float32 ``(H, W, 3)`` (signed grey levels).

    The median filter removes impulsive detail and noise while keeping edges, so the residual is mostly noise
    and fine texture; median-filtered or smoothed regions show up as unusually quiet (Kang et al. used the
    median residual to detect median filtering, 2013). Borders replicate the edge pixels (OpenCV's choice).
    """
    image = _check_rgb(rgb)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 3 or size % 2 == 0:
        raise ValueError(f"size must be an odd integer >= 3, not {size!r}")
    filtered = cv2.medianBlur(image, int(size))
    residual = image.astype(np.float32)
    residual -= filtered
    return residual


def local_noise_map(rgb: np.ndarray, window: int = 16) -> np.ndarray:
    """Estimated noise standard deviation (grey levels) per ``window`` x ``window`` block, float32 ``(H, W)``.

    The grey image ``(R + G + B) / 3`` is filtered with :data:`NOISE_KERNEL`, and each block's noise level is
    ``median(|residual|) / (0.6745 * 6)``: the median ignores the few edge pixels a block may contain, where
    a standard deviation would follow them. Each block's value fills the block (nearest-neighbour upsampling,
    so the map says which block an estimate came from); partial blocks at the right and bottom edges are
    estimated from the pixels they have.

    Strongly textured blocks still read higher than flat ones: compare blocks of similar content, and prefer
    ``window`` >= 16 so each median has enough samples.
    """
    image = _check_rgb(rgb)
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 2:
        raise ValueError(f"window must be an integer >= 2, not {window!r}")
    window = int(window)
    height, width = image.shape[:2]
    grey = image.sum(axis=2, dtype=np.float32)
    grey *= np.float32(1.0 / 3.0)
    residual = np.abs(cv2.filter2D(grey, cv2.CV_32F, NOISE_KERNEL, borderType=cv2.BORDER_REFLECT_101))

    rows = -(-height // window)
    cols = -(-width // window)
    # Pad with NaN to whole blocks; nanmedian then uses only the real pixels of partial blocks.
    padded = np.full((rows * window, cols * window), np.nan, dtype=np.float32)
    padded[:height, :width] = residual
    blocks = padded.reshape(rows, window, cols, window).transpose(0, 2, 1, 3).reshape(rows, cols, window * window)
    if rows * window == height and cols * window == width:
        levels = np.median(blocks, axis=2)
    else:
        levels = np.nanmedian(blocks, axis=2)
    levels = (levels * np.float32(_MAD_TO_SIGMA / 6.0)).astype(np.float32)
    full = np.repeat(np.repeat(levels, window, axis=0), window, axis=1)
    return np.ascontiguousarray(full[:height, :width])
