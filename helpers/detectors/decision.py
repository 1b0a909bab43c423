"""From a trace map to a decision: robust z-scores, an Otsu split with a contrast guard (notebooks 04 and 07).

Training-free detectors measure a trace per block (an error level, a noise level, a ghost depth, ...). Whether
a value is suspicious depends on the image: a block is tampered when it differs from *this image's own* bulk.
The rule shared by ``ela``, ``noise``, ``ghost`` and ``grid``:

1. :func:`robust_z`: express each block's trace as a robust z-score against the image's own distribution
   (median and scaled median absolute deviation), so a tampered minority barely moves the reference;
2. :func:`otsu_threshold` on the z-scores: the split of the values into two classes with the largest
   between-class variance (Otsu 1979);
3. the guard (:func:`outlier_mask`): the split only counts when its threshold lies at least ``min_z`` robust
   standard deviations above the bulk (3 by default: a Gaussian bulk passes it for 0.13% of its blocks). A map
   with no second mode, such as an untouched image's, gives an Otsu threshold inside the bulk and so flags
   nothing;
4. :func:`z_heatmap`: a logistic of ``z - min_z`` as the heatmap (0.5 exactly at the guard), monotone in the
   evidence so best-threshold metrics see the full ranking.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MAD_TO_SIGMA", "robust_z", "otsu_threshold", "outlier_mask", "z_heatmap", "top_score"]

MAD_TO_SIGMA: float = 1.4826
"""``1 / Phi^-1(3/4)``: the scaled median absolute deviation estimates a Gaussian's standard deviation."""

DEFAULT_MIN_Z: float = 3.0


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


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of 1-D ``values`` (the split maximising between-class variance), on ``bins`` bins.

    Returns ``+inf`` for fewer than two distinct values (nothing to split).
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size < 2:
        return float("inf")
    low, high = float(values.min()), float(values.max())
    if not high > low:
        return float("inf")
    counts, edges = np.histogram(values, bins=bins, range=(low, high))
    centres = 0.5 * (edges[:-1] + edges[1:])
    weight_low = np.cumsum(counts)
    weight_high = weight_low[-1] - weight_low
    sum_low = np.cumsum(counts * centres)
    mean_low = sum_low / np.maximum(weight_low, 1)
    mean_high = (sum_low[-1] - sum_low) / np.maximum(weight_high, 1)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    split = int(np.argmax(between[:-1])) if bins > 1 else 0
    return float(edges[split + 1])


def outlier_mask(z: np.ndarray, min_z: float = DEFAULT_MIN_Z, valid: np.ndarray | None = None) -> np.ndarray:
    """Blocks above the Otsu split of ``z``, provided the split lies at least ``min_z`` above the bulk.

    ``z`` are robust z-scores (:func:`robust_z`); Otsu runs over ``valid`` entries (all by default). When the
    threshold falls below ``min_z`` the map has no separate high mode and the mask is empty.
    """
    z = np.asarray(z, dtype=np.float64)
    pool = z if valid is None else z[np.asarray(valid, bool)]
    threshold = otsu_threshold(pool)
    if not threshold >= min_z:
        return np.zeros(z.shape, bool)
    mask = z > threshold
    if valid is not None:
        mask &= np.asarray(valid, bool)
    return mask


def z_heatmap(z: np.ndarray, min_z: float = DEFAULT_MIN_Z) -> np.ndarray:
    """``1 / (1 + exp(-(z - min_z)))`` as float32: 0.5 at the guard, about 0.05 at the bulk's median."""
    z = np.asarray(z, dtype=np.float64)
    return (1.0 / (1.0 + np.exp(-np.clip(z - min_z, -60.0, 60.0)))).astype(np.float32)


def top_score(heatmap: np.ndarray, percentile: float = 99.0) -> float:
    """Image-level score: the ``percentile`` of a (block) heatmap, so one stray block cannot decide it."""
    heatmap = np.asarray(heatmap, dtype=np.float64)
    if heatmap.size == 0:
        return 0.0
    return float(np.clip(np.percentile(heatmap, percentile), 0.0, 1.0))
