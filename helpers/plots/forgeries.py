"""A gallery of the online manipulation families (notebook 01) and of training batches (notebook 06)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from helpers.datasets.families import LOCAL_FAMILIES, FamilyConfig, make_forgery
from helpers.datasets.online import PhotoPool
from helpers.viz import overlay_mask

__all__ = ["show_families"]


def show_families(photos: PhotoPool, *, families: Sequence[str] = LOCAL_FAMILIES, size: int = 192, seed: int = 0,
                  columns: int = 5) -> plt.Figure:
    """One online forgery per family: the image with its mask outlined, titled with the family and the
    compression chain the sample went through."""
    samples = []
    for index, family in enumerate(families):
        config = FamilyConfig(authentic_fraction=0.0, families=(family,))
        for attempt in range(20):  # an edit on a flat crop can change nothing; draw again
            sample = make_forgery(np.random.default_rng([seed, index, attempt]), photos, size, config,
                                  photo_count=len(photos))
            if sample.label:
                break
        samples.append(sample)
    rows = -(-len(samples) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.8 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, sample in zip(axes.ravel(), samples):
        ax.imshow(overlay_mask(sample.image, sample.mask, alpha=0.0))
        ax.set_title(f"{sample.family}\n{sample.compression}, {sample.mask.mean():.0%} edited", fontsize=9)
    fig.tight_layout()
    return fig
