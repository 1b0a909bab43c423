"""From a trace map to a decision: robust z-scores and a two-component mixture with a guard (notebooks 04 and 07).

Training-free detectors measure a trace per block (an error level, a noise level, a ghost depth, ...). Whether a
value is suspicious depends on the image: a block is tampered when it differs from *this image's own* bulk.
The rule shared by ``ela``, ``noise``, ``ghost`` and ``grid``:

1. :func:`robust_z`: each block's trace as a robust z-score against the image's own blocks (median and scaled
   median absolute deviation), so the bulk is close to a standard normal and a tampered minority barely moves
   the reference;
2. :func:`split_outliers`: a two-component mixture fitted by EM, in which the bulk component is held at
   ``N(0, 1)`` (step 1 made it so) and a second, "different" component ``N(mu, s^2)`` with weight ``pi`` is free;
   each block's posterior of the second component is the heatmap, and the mask is posterior > 0.5 (the Bayes
   decision);
3. the guard: the split is accepted only when the second component lies at least ``min_separation`` robust
   standard deviations from the bulk, the two are clearly bimodal (Ashman's
   ``D = sqrt(2) |mu| / sqrt(1 + s^2) >= 2``) and the second holds at most half of the blocks (a forgery is the
   minority, else there is no "background" to compare with). A map without a separate mode, such as an
   untouched image's, fits a weak or wide second component that fails the guard, and nothing is flagged.

Otsu's threshold on the z-scores was tried first and dropped: on real maps (ELA, noise) the tampered blocks form
a tail rather than a second mode, and Otsu then splits the bulk near its median and flags half of the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = [
    "MAD_TO_SIGMA",
    "threshold_to_half",
    "DEFAULT_MIN_SEPARATION",
    "MIN_BIMODALITY",
    "robust_z",
    "OutlierSplit",
    "split_outliers",
    "top_score",
]

MAD_TO_SIGMA: float = 1.4826
"""``1 / Phi^-1(3/4)``: the scaled median absolute deviation estimates a Gaussian's standard deviation."""

DEFAULT_MIN_SEPARATION: float = 3.0
"""Distance (robust standard deviations) the second component's mean must keep from the bulk's. At 2, the tails
of untouched photographs (texture the normalisations do not fully remove) passed as components; at 3 they fail
on the scikit-image photographs while pasted or re-compressed regions still pass."""

MIN_BIMODALITY: float = 2.0
"""Ashman's D (Ashman, Bird & Zucker 1994) the two components must reach: ``D > 2`` is their criterion for a
clean separation of two Gaussians; a wide component hugging the bulk's tail stays below it."""

Side = Literal["high", "low", "both"]


def robust_z(values: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """``(values - median) / (1.4826 * MAD)`` as float32, the statistics taken over ``valid`` entries.

    Entries outside ``valid`` (e.g. saturated blocks that carry no trace) get 0. When the MAD is 0 (more than
    half the values equal) the standard deviation is used instead, and a constant map gives all zeros.
    """
    values = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(values) if valid is None else (np.asarray(valid, bool) & np.isfinite(values))
    out = np.zeros(values.shape, np.float32)
    if not keep.any():
        return out
    reference = values[keep]
    centre = float(np.median(reference))
    scale = MAD_TO_SIGMA * float(np.median(np.abs(reference - centre)))
    if not scale > 0:
        scale = float(reference.std())
    if not scale > 0:
        return out
    out[keep] = ((values[keep] - centre) / scale).astype(np.float32)
    return out


@dataclass(frozen=True)
class OutlierSplit:
    """The fitted mixture of :func:`split_outliers`."""

    posterior: np.ndarray
    """float32, same shape as the input: each entry's posterior of the "different" component."""
    mask: np.ndarray
    """bool: posterior > 0.5 where the split is accepted (all False otherwise)."""
    accepted: bool
    """Whether the second component passed the guard."""
    weight: float
    """Mixing weight of the second component."""
    mean: float
    """Its mean, in robust standard deviations of the bulk."""
    spread: float
    """Its standard deviation."""


def split_outliers(
    z: np.ndarray,
    *,
    side: Side = "high",
    min_separation: float = DEFAULT_MIN_SEPARATION,
    valid: np.ndarray | None = None,
    iterations: int = 50,
) -> OutlierSplit:
    """Fit ``(1 - pi) N(0, 1) + pi N(mu, s^2)`` to robust z-scores by EM and split off the second component.

    ``side`` says where tampering may lie: ``"high"`` keeps ``mu >= 0`` (e.g. more error than expected),
    ``"low"`` keeps ``mu <= 0``, ``"both"`` lets it start on the side of the longer tail and move freely.
    The spread has a floor of 0.5 so the component cannot collapse onto a few equal values. Only ``valid``
    entries are fitted and flagged (posterior 0 elsewhere). See the module docstring for the guard.
    """
    z = np.asarray(z, dtype=np.float64)
    keep = np.ones(z.shape, bool) if valid is None else np.asarray(valid, bool)
    posterior = np.zeros(z.shape, np.float32)
    values = z[keep]
    if values.size < 2:
        return OutlierSplit(posterior, np.zeros(z.shape, bool), False, 0.0, 0.0, 1.0)
    high, low = np.percentile(values, [95.0, 5.0])
    if side == "high":
        mean = max(float(high), 0.0)
    elif side == "low":
        mean = min(float(low), 0.0)
    else:
        mean = float(high) if abs(high) >= abs(low) else float(low)
    weight, spread = 0.1, 1.0
    responsibility = np.zeros(values.shape)
    for _ in range(int(iterations)):
        # Unnormalised Gaussian densities share the 1/sqrt(2 pi) factor, which cancels in the ratio.
        other = weight * np.exp(-0.5 * ((values - mean) / spread) ** 2) / spread
        bulk = (1.0 - weight) * np.exp(-0.5 * values**2)
        responsibility = other / np.maximum(other + bulk, 1e-300)
        total = float(responsibility.sum())
        if total < 1e-9:
            break
        weight = float(np.clip(total / values.size, 1e-4, 1.0 - 1e-4))
        mean = float((responsibility * values).sum() / total)
        if side == "high":
            mean = max(mean, 0.0)
        elif side == "low":
            mean = min(mean, 0.0)
        spread = float(np.sqrt(max(float((responsibility * (values - mean) ** 2).sum()) / total, 0.25)))
    posterior[keep] = responsibility.astype(np.float32)
    bimodality = np.sqrt(2.0) * abs(mean) / np.sqrt(1.0 + spread**2)
    accepted = abs(mean) >= min_separation and bimodality >= MIN_BIMODALITY and weight <= 0.5
    mask = (posterior > 0.5) & keep if accepted else np.zeros(z.shape, bool)
    return OutlierSplit(posterior, mask, bool(accepted), weight, mean, spread)


def top_score(heatmap: np.ndarray, percentile: float = 99.0) -> float:
    """Image-level score: the ``percentile`` of a (block) heatmap, so one stray block cannot decide it."""
    heatmap = np.asarray(heatmap, dtype=np.float64)
    if heatmap.size == 0:
        return 0.0
    return float(np.clip(np.percentile(heatmap, percentile), 0.0, 1.0))


def threshold_to_half(probability: np.ndarray, threshold: float) -> np.ndarray:
    """Map a probability map so that ``threshold`` becomes 0.5, linearly on each side (monotone, 0 and 1 fixed).

    A learned map's decision threshold chosen on validation (the fusion's, a mask model's ``map_threshold``) is
    written into the map's own scale this way, so the protocol's "pixel > 0.5", the detector's mask and every
    ranking (pixel AUC, best-threshold F1) agree."""
    value = float(threshold)
    if not 0.0 < value < 1.0:  # also refuses NaN
        raise ValueError(f"threshold must lie in (0, 1) to be mapped to 0.5, not {threshold!r}")
    p = np.asarray(probability, np.float32)
    low = p * np.float32(0.5 / value)
    high = np.float32(0.5) + (p - np.float32(value)) * np.float32(0.5 / (1.0 - value))
    return np.where(p <= value, low, high).astype(np.float32)
