"""``noise``: local noise-level inconsistency (Mahdian & Saic 2009, "NOI1") (notebook 04).

Paper: B. Mahdian, S. Saic, "Using noise inconsistencies for blind image forensics", Image and Vision Computing
27(10), 2009.

Trace: a spliced region usually comes from another camera, ISO setting or processing chain, and a retouched one
was smoothed or re-noised, so its noise level differs from the rest of the image even when its colours match.
As in the paper, the noise standard deviation of each block is estimated from the finest diagonal wavelet
sub-band with Donoho's robust median estimator, ``sigma = median(|HH|) / 0.6745``: HH is almost blind to smooth
content, and the median ignores the few coefficients an edge contributes. Here the wavelet is Haar (one 2x2
difference per coefficient, ``HH = (a - b - c + d) / 2``, orthonormal, so white noise keeps its sigma), where the
paper used Daubechies' db8; Haar is exact, separable and fast, and its shorter support mixes fewer edges into a
block.

Decision: where the paper merges blocks of homogeneous noise into regions, this detector measures each block's
deviation from the image's *dominant* noise level: the robust z-score of ``log(sigma)`` against the image's
own blocks (:func:`helpers.detectors.decision.robust_z`), then a two-component mixture on those z-scores
(:func:`helpers.detectors.decision.split_outliers`, two-sided, since a forged region may be noisier or cleaner):
``heatmap`` is each block's posterior of the "different noise" component, ``mask`` is posterior > 0.5 when the
component passes the guard (see :mod:`helpers.detectors.decision`), ``score`` the 99th percentile of the
posterior when the split is accepted, else 0. Blocks that are mostly clipped (luminance <= 1 or >= 254) carry
no noise and are neither used for the reference nor flagged.

Parameters: ``block`` (pixels per block side, even; default 32: 256 HH coefficients per estimate),
``smooth`` (the log-sigma map is averaged over ``smooth`` x ``smooth`` blocks before scoring, odd; default 1 =
off), ``min_separation`` (the guard). Blocks of 16 pixels with 3x3 smoothing were tried: their estimates follow
texture more closely and the tampered blocks no longer stand apart (on the scikit-image photographs with a
region of added noise of sigma 15-25, none of 24 cases was found, against 8 with the defaults).

Where it fails: strong texture reads as noise (HH responds to fine texture; hair, foliage and gravel look
"noisier"); an image whose content is itself split between smooth and finely textured areas (a cat's fur
against a blurred background) has two "dominant" levels, and a mixture with one bulk cannot single out the
forged one; flat, dark or saturated areas and heavily compressed ones look "cleaner" (JPEG removes noise first
where there is least texture); images whose noise was made uniform (re-noised, denoised, or resized down after
the forgery) hide the trace; a forgery whose source had the same noise level is invisible by construction.
"""

from __future__ import annotations

import cv2
import numpy as np

from helpers.detectors.base import Detector, Prediction, register_detector
from helpers.detectors.decision import DEFAULT_MIN_SEPARATION, robust_z, split_outliers, top_score
from helpers.forensics.blocks import blocks_to_pixels, luminance, tile_blocks
from helpers.imageio import LoadedImage

__all__ = ["NoiseDetector", "haar_diagonal", "block_noise_sigma"]

_MAD_TO_SIGMA = 1.0 / 0.6744897501960817


def haar_diagonal(y: np.ndarray) -> np.ndarray:
    """The first-level Haar HH sub-band of ``y``: float32 ``(H // 2, W // 2)``, ``(a - b - c + d) / 2`` per 2x2."""
    y = np.asarray(y, dtype=np.float32)
    height, width = (y.shape[0] // 2) * 2, (y.shape[1] // 2) * 2
    y = y[:height, :width]
    return (y[0::2, 0::2] - y[0::2, 1::2] - y[1::2, 0::2] + y[1::2, 1::2]) * np.float32(0.5)


def block_noise_sigma(y: np.ndarray, block: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Noise sigma per ``block`` x ``block`` pixel block (Donoho's estimator on Haar HH), and which blocks count.

    Returns ``(sigma, valid)``, both ``(H // block, W // block)``; ``valid`` is False for blocks whose pixels are
    mostly clipped (luminance <= 1 or >= 254), where no noise survives.
    """
    if block < 4 or block % 2:
        raise ValueError(f"block must be an even number of pixels >= 4, not {block!r}")
    coefficients = tile_blocks(np.abs(haar_diagonal(y)), block // 2)
    if coefficients.size == 0:
        return np.zeros((0, 0), np.float32), np.zeros((0, 0), bool)
    sigma = (np.median(coefficients, axis=2) * _MAD_TO_SIGMA).astype(np.float32)
    clipped = tile_blocks((y <= 1.0) | (y >= 254.0), block)[: sigma.shape[0], : sigma.shape[1]]
    valid = clipped.mean(axis=2) < 0.5
    return sigma, valid


@register_detector("noise")
class NoiseDetector(Detector):
    description = "local noise-level inconsistency, Haar HH median (Mahdian & Saic 2009, NOI1)"

    def __init__(self, block: int = 32, smooth: int = 1, min_separation: float = DEFAULT_MIN_SEPARATION) -> None:
        if int(block) < 4 or int(block) % 2:
            raise ValueError(f"block must be an even number of pixels >= 4, not {block!r}")
        if int(smooth) < 1 or int(smooth) % 2 == 0:
            raise ValueError(f"smooth must be a positive odd number of blocks, not {smooth!r}")
        self.block = int(block)
        self.smooth = int(smooth)
        self.min_separation = float(min_separation)

    def predict(self, image: LoadedImage) -> Prediction:
        shape = image.shape
        sigma, valid = block_noise_sigma(luminance(image.rgb), self.block)
        if sigma.size == 0 or not valid.any():
            return Prediction(np.zeros(shape, np.float32), np.zeros(shape, bool), 0.0)
        # Rounding to 8 bits alone leaves ~0.29 grey levels of noise: anything under 0.5 is "as clean as 8 bits
        # allow", so flat or compressed-flat blocks do not become extreme outliers of log(sigma).
        level = np.log(np.maximum(sigma, 0.5))
        level[~valid] = np.median(level[valid])  # clipped blocks must not drag their neighbours when smoothing
        if self.smooth > 1:
            level = cv2.blur(level, (self.smooth, self.smooth), borderType=cv2.BORDER_REFLECT)
        split = split_outliers(robust_z(level, valid), side="both", min_separation=self.min_separation,
                               valid=valid)
        heatmap = blocks_to_pixels(split.posterior, shape, block=self.block)
        mask = blocks_to_pixels(split.mask, shape, block=self.block)
        return Prediction(heatmap, mask, top_score(split.posterior) if split.accepted else 0.0)
