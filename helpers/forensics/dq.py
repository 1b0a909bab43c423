"""Double quantisation (DQ): per-block evidence that a JPEG block was compressed once, not twice (notebook 04).

Lin, He, Tang & Tang, "Fast, automatic and fine-grained tampered JPEG image detection via DCT coefficient
analysis" (Pattern Recognition 42, 2009). When a JPEG saved with step ``Q1`` is decoded and saved again with
step ``Q2`` on the same grid, each new bin ``k * Q2`` collects the old multiples of ``Q1`` that round to it, and
their number varies periodically with ``k``: the histogram of a DCT mode's quantised values shows a periodic
pattern of full, thin or empty bins. A region pasted in from elsewhere (off the grid, resized or never
compressed) was quantised only once, with ``Q2``: its values spread smoothly over the bins. So for a value in
bin ``k`` of a mode whose histogram ``h`` has period ``p``:

* ``P(k | doubly quantised) = h(k) / sum of h over the period around k`` (the authentic part dominates ``h``);
* ``P(k | singly quantised) = 1 / p`` (smooth within one period);

and a block's log-likelihood ratio is the sum over modes of ``log(P_single / P_double)`` (Lin's naive Bayes
product of the per-mode posteriors). Values in the zero bin are left out: flat content of either kind falls
there, so it says nothing. A mode without a detectable period contributes nothing; an image with none at all
carries no double-quantisation trace, which is an answer ("nothing to see"), not evidence of tampering.

The periodicity test follows Lin's FFT rule as published implementations apply it: the histogram's spectrum,
past its first valley, must have a peak of at least a fifth of the DC term that stands out of the rest
(minimum / peak < 0.9); the period is the histogram length over the peak frequency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DQEvidence", "histogram_period", "dq_log_likelihood_ratio"]

_MAX_BIN = 512
"""Quantised values beyond +-512 are too rare to histogram usefully; they count as neutral."""

_PROBABILITY_FLOOR = 1e-3
"""Per-mode posteriors are kept within [1e-3, 1 - 1e-3] so one empty bin cannot decide a block alone."""


@dataclass(frozen=True)
class DQEvidence:
    """Per-block double-quantisation evidence of an image."""

    log_likelihood_ratio: np.ndarray
    """float32 ``(blocks_y, blocks_x)``: ``log P(single) / P(double)`` summed over modes; > 0 leans tampered."""
    periods: dict[tuple[int, int], int]
    """The modes that showed a double-quantisation period, and the period (in bins)."""

    @property
    def found(self) -> bool:
        """Whether any mode showed double quantisation at all."""
        return bool(self.periods)


def histogram_period(histogram: np.ndarray) -> int:
    """Period (in bins) of a DCT histogram's double-quantisation pattern, or 1 when there is none (Lin 2009)."""
    histogram = np.asarray(histogram, dtype=np.float64)
    n = histogram.size
    if n < 4 or histogram.sum() <= 0:
        return 1
    spectrum = np.abs(np.fft.rfft(histogram))
    # Skip the low-frequency lobe of the histogram's overall shape: start after its first valley.
    start = 1
    while start < spectrum.size - 1 and spectrum[start] >= spectrum[start + 1]:
        start += 1
    tail = spectrum[start:]
    if tail.size == 0:
        return 1
    peak = int(np.argmax(tail))
    if tail[peak] < spectrum[0] / 5.0 or tail.min() / tail[peak] > 0.9:
        return 1
    frequency = peak + start
    return max(1, int(round(n / frequency)))


def dq_log_likelihood_ratio(quantised: np.ndarray, modes: tuple[tuple[int, int], ...]) -> DQEvidence:
    """Per-block log-likelihood ratio (single vs double quantisation) from quantised DCT values.

    ``quantised`` is an integer ``(blocks_y, blocks_x, 8, 8)`` array (a JPEG's stored coefficients, or block
    DCTs divided by the estimated steps and rounded); modes whose values are all zero (unknown step) are
    skipped. See the module docstring for the model.
    """
    quantised = np.asarray(quantised)
    if quantised.ndim != 4 or quantised.shape[2:] != (8, 8):
        raise ValueError(f"expected quantised coefficients of shape (by, bx, 8, 8), not {quantised.shape}")
    total = np.zeros(quantised.shape[:2], np.float64)
    periods: dict[tuple[int, int], int] = {}
    for u, v in modes:
        values = quantised[:, :, u, v].astype(np.int64)
        inside = np.abs(values) <= _MAX_BIN
        informative = inside & (values != 0)
        if not informative.any():
            continue
        low = int(values[inside].min())
        high = int(values[inside].max())
        histogram = np.bincount(values[inside] - low, minlength=high - low + 1).astype(np.float64)
        period = histogram_period(histogram)
        if period <= 1:
            continue
        periods[(u, v)] = period
        # Sum of h over the p bins centred on each bin (Lin's "period around k"), via a cumulative sum.
        padded = np.concatenate([np.zeros(period), histogram, np.zeros(period)])
        cumulative = np.concatenate([[0.0], np.cumsum(padded)])
        first = np.arange(histogram.size) + period - period // 2
        window = cumulative[first + period] - cumulative[first]
        p_double = histogram / np.maximum(window, 1e-12)
        p_single = 1.0 / period
        posterior = np.clip(p_single / (p_single + p_double), _PROBABILITY_FLOOR, 1.0 - _PROBABILITY_FLOOR)
        log_odds = np.log(posterior / (1.0 - posterior))
        contribution = np.zeros(values.shape, np.float64)
        contribution[informative] = log_odds[values[informative] - low]
        total += contribution
    return DQEvidence(log_likelihood_ratio=total.astype(np.float32), periods=periods)
