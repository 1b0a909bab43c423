"""``ela``: error level analysis, normalised by texture and judged against the image's own errors (notebook 04).

Method: N. Krawetz, "A picture's worth: digital image analysis and forensics", Black Hat 2007 (error level
analysis); the error map is :func:`helpers.forensics.ela`.

Trace: re-saving a JPEG at quality ``q`` changes regions already compressed that way little, and regions with
another history (pasted from elsewhere, edited after the last save, never compressed on this grid) more. But the
raw error level mostly follows texture: edges and fine detail change a lot under any compression, flat areas
hardly at all, so thresholding it marks texture, not tampering. This detector therefore asks, per block, whether
the error is *higher than this image's blocks of similar texture show*:

1. per ``block`` x ``block`` block, the mean error ``E`` (absolute difference after a re-save at ``quality``,
   averaged over channels) and the mean texture ``T`` (absolute difference between the luminance and its 3x3
   box blur: the high frequencies a JPEG quantises);
2. the image's own error-versus-texture curve: blocks are sorted into ``bins`` texture quantiles and the median
   ``log E`` of each bin, interpolated over ``log T``, is the expected error at that texture;
3. the residual ``log E - expected``, averaged over ``smooth`` x ``smooth`` blocks, becomes a robust z-score
   against all blocks (:func:`helpers.detectors.decision.robust_z`);
4. a two-component mixture on the z-scores (:func:`helpers.detectors.decision.split_outliers`, one-sided:
   only excess error counts): ``heatmap`` is each block's posterior of the "more error" component, ``mask``
   is posterior > 0.5 when the component passes the guard (see :mod:`helpers.detectors.decision`; otherwise
   nothing is flagged), ``score`` the 99th percentile of the posterior when the split is accepted, else 0.

Parameters: ``quality`` (re-save quality, default 90), ``block`` (pixels, default 16), ``bins`` (texture
quantiles, default 16), ``smooth`` (z averaged over ``smooth`` x ``smooth`` blocks before the decision, odd),
``min_separation`` (the guard).

Where it fails: images re-saved many times (errors converge everywhere); a region pasted from a JPEG of the same
quality on the same grid; uncompressed images (PNG from a camera or a renderer: no JPEG history, errors follow
texture only, which the normalisation then removes, leaving noise); forgeries followed by resizing, filtering or
a save at a much lower quality than ``quality``; saturated or very dark regions, whose error is zero whatever
their history.
"""

from __future__ import annotations

import cv2
import numpy as np

from helpers.detectors.base import Detector, Prediction, register_detector
from helpers.detectors.decision import DEFAULT_MIN_SEPARATION, robust_z, split_outliers, top_score
from helpers.forensics.blocks import block_means, blocks_to_pixels, channel_mean, luminance
from helpers.forensics.ela import ela
from helpers.imageio import LoadedImage

__all__ = ["ELADetector", "texture_normalised_error"]


def texture_normalised_error(rgb: np.ndarray, *, quality: int = 90, block: int = 16, bins: int = 16) -> np.ndarray:
    """Per-block ``log`` error level minus the image's expected ``log`` error at that texture, float32.

    Returns a ``(H // block, W // block)`` map (see the module docstring, steps 1-2); positive values mean more
    error than the image's blocks of similar texture show.
    """
    error = channel_mean(ela(rgb, quality))
    y = luminance(rgb)
    texture = np.abs(y - cv2.blur(y, (3, 3), borderType=cv2.BORDER_REFLECT_101))
    error_blocks = block_means(error, block)
    if error_blocks.size == 0:
        return np.zeros((0, 0), np.float32)
    # +0.5 grey level: a block with no error at all (flat, saturated) stays finite and near the bottom.
    log_error = np.log(error_blocks + 0.5)
    log_texture = np.log(block_means(texture, block) + 0.5)
    flat_texture = log_texture.ravel()
    edges = np.unique(np.quantile(flat_texture, np.linspace(0.0, 1.0, int(bins) + 1)))
    if edges.size < 2:
        expected = np.full(log_error.shape, np.median(log_error))
    else:
        which = np.clip(np.searchsorted(edges, flat_texture, side="right") - 1, 0, edges.size - 2)
        centres, medians = [], []
        for index in range(edges.size - 1):
            members = which == index
            if members.any():
                centres.append(float(np.median(flat_texture[members])))
                medians.append(float(np.median(log_error.ravel()[members])))
        expected = np.interp(flat_texture, centres, medians).reshape(log_error.shape)
    return (log_error - expected).astype(np.float32)


@register_detector("ela")
class ELADetector(Detector):
    description = "error level analysis against the image's own error-vs-texture curve (Krawetz 2007)"

    def __init__(self, quality: int = 90, block: int = 16, bins: int = 16, smooth: int = 3,
                 min_separation: float = DEFAULT_MIN_SEPARATION) -> None:
        if not 1 <= int(quality) <= 100:
            raise ValueError(f"quality must be within 1..100, not {quality!r}")
        if int(block) < 2:
            raise ValueError(f"block must be at least 2 pixels, not {block!r}")
        if int(smooth) < 1 or int(smooth) % 2 == 0:
            raise ValueError(f"smooth must be a positive odd number of blocks, not {smooth!r}")
        self.quality = int(quality)
        self.block = int(block)
        self.bins = int(bins)
        self.smooth = int(smooth)
        self.min_separation = float(min_separation)

    def predict(self, image: LoadedImage) -> Prediction:
        shape = image.shape
        residual = texture_normalised_error(image.rgb, quality=self.quality, block=self.block, bins=self.bins)
        if residual.size == 0:
            return Prediction(np.zeros(shape, np.float32), np.zeros(shape, bool), 0.0)
        if self.smooth > 1:
            residual = cv2.blur(residual, (self.smooth, self.smooth), borderType=cv2.BORDER_REFLECT)
        split = split_outliers(robust_z(residual), side="high", min_separation=self.min_separation)
        heatmap = blocks_to_pixels(split.posterior, shape, block=self.block)
        mask = blocks_to_pixels(split.mask, shape, block=self.block)
        return Prediction(heatmap, mask, top_score(split.posterior) if split.accepted else 0.0)
