"""``dq``: double-quantisation posterior map (Lin et al. 2009), for JPEG files and pixels once JPEG (notebook 04).

Paper: Z. Lin, J. He, X. Tang, C.-K. Tang, "Fast, automatic and fine-grained tampered JPEG image detection via
DCT coefficient analysis", Pattern Recognition 42(11), 2009 (the "DQ" baseline of the CASIA, Columbia and
PhotoHolmes benchmarks).

Trace: an authentic region of a JPEG that was decoded, edited and saved again on the same 8x8 grid is quantised
twice, which leaves a periodic pattern in each DCT mode's histogram; a pasted region (off the grid, resized or
never compressed) is quantised once and does not follow it (:mod:`helpers.forensics.dq` has the model). The
per-block log-likelihood ratios of the low-frequency modes are summed (Lin's naive Bayes combination),
averaged over a ``smooth`` x ``smooth`` neighbourhood of blocks (a forged region spans many blocks; one
block's 8x8 values are too few to decide on their own), and turned into the posterior of "singly quantised"
with equal priors.

Where the coefficients come from:

* a JPEG file (upright, EXIF orientation 1): its stored luminance coefficients, read with jpeglib;
* anything else (a PNG or TIFF re-encode of a JPEG, as the CASIA v1 fixtures, a rotated JPEG, a bare array):
  the 8x8 DCT of the luminance on the grid found from blockiness
  (:func:`helpers.forensics.blocks.estimate_jpeg_grid`; ``(0, 0)`` when none is significant), divided by each
  mode's step estimated from the lattice the coefficients sit on
  (:func:`helpers.forensics.blocks.estimate_quantisation_steps`) and rounded. Modes whose step cannot be
  estimated (steps of 1-2, i.e. quality 95+, or no lattice at all) are skipped. Rounding of the decoded
  pixels makes this path noisier than a JPEG's own coefficients, mostly in smooth areas.

Output: ``heatmap`` is the posterior of single quantisation per block (the averaged log-likelihood ratio with equal
priors, as Lin's), spread over its pixels; ``score`` is its 99th percentile. ``mask`` is the Bayes decision for
each block's ``smooth`` x ``smooth`` neighbourhood taken as one region: the sum of its blocks' log-likelihood
ratios (naive Bayes, as across modes) against the prior odds of a forged region, ``prior`` = 0.1 (a forgery is the
minority of an image). With equal priors instead, smooth areas with a little noisy evidence tip over (F1 at 0.5 on
all tampered fixtures: 0.310 with equal priors, 0.325 with 0.1). Two cases flag nothing (empty mask, score 0),
because the method has nothing to compare against: no mode shows double quantisation (all-zero map), or more than
half of the blocks read as singly quantised, so the premise that a doubly quantised background dominates the
histograms fails (the map is kept, as evidence, but the image as a whole reads as singly compressed; on the
authentic CASIA v1 fixtures this rule takes the share of flagged pixels from 40% to 0).

Parameters: ``max_frequency`` (modes ``(u, v)`` with ``0 < u + v <= max_frequency`` are used; 10 = the first 54
AC modes in zig-zag order; the first 15 to 44 modes, or all 63, gave lower best-threshold F1 on the CASIA v1
fixtures), ``smooth``
(neighbourhood in blocks, odd), ``prior`` (prior probability of a forged neighbourhood, below 0.5).

Where it fails: single-compressed images (no DQ anywhere: nothing found, by design); a second save at the same
quality, or with a step that is an integer multiple of the first (``Q2 = m * Q1`` maps every old bin to one new
bin: no periodic gaps); a re-save off the 8x8 grid (cropped or resized after the first save: that is
non-aligned double compression, which this model does not cover); copy-move within one image on the grid
(the copy is as doubly quantised as its source); small forgeries of a few blocks, which the smoothing blurs.
"""

from __future__ import annotations

import cv2
import numpy as np

from helpers.detectors.base import Detector, Prediction, register_detector
from helpers.detectors.decision import top_score
from helpers.forensics.blocks import (
    ZIGZAG,
    block_dct,
    blocks_to_pixels,
    estimate_jpeg_grid,
    estimate_quantisation_steps,
    luminance,
)
from helpers.forensics.dq import DQEvidence, dq_log_likelihood_ratio
from helpers.imageio import LoadedImage

__all__ = ["DQDetector", "quantised_luminance_coefficients"]


def quantised_luminance_coefficients(
    image: LoadedImage, modes: tuple[tuple[int, int], ...]
) -> tuple[np.ndarray, tuple[int, int]]:
    """Quantised luminance DCT values ``(by, bx, 8, 8)`` of ``image`` and the grid offset they lie on.

    A JPEG file in stored orientation gives its own coefficients (offset ``(0, 0)``); otherwise they are
    recomputed from the pixels on the detected grid and divided by the estimated steps (modes without an
    estimate are zero, which :func:`helpers.forensics.dq.dq_log_likelihood_ratio` skips).
    """
    if image.is_jpeg and image.orientation == 1:
        stored = image.dct_coefficients
        if stored is not None and stored.ndim == 4 and stored.shape[2:] == (8, 8):
            return stored, (0, 0)
    y = luminance(image.rgb)
    offset = estimate_jpeg_grid(y).offset
    coefficients = block_dct(y, offset)
    if coefficients.size == 0:
        return np.zeros((0, 0, 8, 8), np.int64), offset
    steps = estimate_quantisation_steps(coefficients, modes)
    quantised = np.zeros(coefficients.shape, np.int64)
    known = steps > 0
    quantised[:, :, known] = np.rint(coefficients[:, :, known] / steps[known]).astype(np.int64)
    return quantised, offset


@register_detector("dq")
class DQDetector(Detector):
    description = "double-quantisation posterior from DCT histograms (Lin et al. 2009)"

    def __init__(self, max_frequency: int = 10, smooth: int = 5, prior: float = 0.1) -> None:
        if not 1 <= int(max_frequency) <= 14:
            raise ValueError(f"max_frequency must be within 1..14, not {max_frequency!r}")
        if int(smooth) < 1 or int(smooth) % 2 == 0:
            raise ValueError(f"smooth must be a positive odd number of blocks, not {smooth!r}")
        if not 0.0 < float(prior) < 0.5:
            raise ValueError(f"prior must be within (0, 0.5): a tampered region is the minority, not {prior!r}")
        self.prior = float(prior)
        self.max_frequency = int(max_frequency)
        self.smooth = int(smooth)
        self.modes = tuple((u, v) for u, v in ZIGZAG[1:] if u + v <= self.max_frequency)

    def evidence(self, image: LoadedImage) -> tuple[DQEvidence, tuple[int, int]]:
        """The per-block evidence and the grid offset it lies on (for notebooks that show the raw map)."""
        quantised, offset = quantised_luminance_coefficients(image, self.modes)
        return dq_log_likelihood_ratio(quantised, self.modes), offset

    def predict(self, image: LoadedImage) -> Prediction:
        shape = image.shape
        evidence, offset = self.evidence(image)
        ratio = evidence.log_likelihood_ratio
        if not evidence.found or ratio.size == 0:
            return Prediction(np.zeros(shape, np.float32), np.zeros(shape, bool), 0.0)
        averaged = cv2.blur(ratio.astype(np.float32), (self.smooth, self.smooth), borderType=cv2.BORDER_REFLECT)
        posterior = (1.0 / (1.0 + np.exp(-np.clip(averaged, -60.0, 60.0)))).astype(np.float32)
        heatmap = blocks_to_pixels(posterior, shape, offset=offset)
        if (averaged > 0).mean() > 0.5:
            # The model's premise (a doubly quantised background, estimated from the histograms it dominates)
            # fails: the image reads as singly compressed as a whole, which says nothing about tampering.
            return Prediction(heatmap, np.zeros(shape, bool), 0.0)
        # The decision for a neighbourhood of smooth x smooth blocks: the sum of their log-likelihood ratios
        # against the log prior odds of a minority region (prior probability ``prior`` of being tampered).
        neighbourhood = averaged * np.float32(self.smooth * self.smooth)
        single = neighbourhood > np.log((1.0 - self.prior) / self.prior)
        return Prediction(heatmap, blocks_to_pixels(single, shape, offset=offset), top_score(posterior))
