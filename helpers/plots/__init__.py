"""Figures shared by notebooks (each module names the notebook that shows it), and the one way they mark a true
region: :func:`outline_truth`."""

from __future__ import annotations

import cv2
import matplotlib.pyplot as plt
import numpy as np

from helpers.viz import TAMPERED_COLOUR

__all__ = ["DISPLAY_SIDE", "TRUTH_COLOUR", "for_display", "outline_truth"]

TRUTH_COLOUR = tuple(channel / 255 for channel in TAMPERED_COLOUR)
"""The workbook's red for a tampered region, as matplotlib's 0-1 RGB."""


def outline_truth(ax: plt.Axes, truth: np.ndarray | None, *, width: float = 1.4) -> None:
    """Draw the true region's boundary on ``ax`` (over an image drawn with ``imshow``) as a red contour: a line,
    not pixels, so it stays visible however small the panel is drawn. Nothing for ``None`` or an empty mask."""
    if truth is not None and np.any(truth):
        ax.contour(np.asarray(truth, dtype=np.float32), levels=[0.5], colors=[TRUTH_COLOUR], linewidths=width)


DISPLAY_SIDE = 384
"""Longest side of an image or map as a figure draws it (:func:`helpers.plots.forgeries.show_heatmaps`, the ``analyze`` page): a panel a few centimetres wide shows no
more, and matplotlib's antialiased downsampling of multi-megapixel arrays takes seconds per panel."""


def for_display(array: np.ndarray, *, nearest: bool = False) -> np.ndarray:
    """``array`` shrunk (area averaging; nearest neighbour for masks) so its longest side is at most
    :data:`DISPLAY_SIDE`."""
    height, width = array.shape[:2]
    scale = DISPLAY_SIDE / max(height, width)
    if scale >= 1:
        return array
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if nearest:
        return cv2.resize(array.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(array.dtype)
    return cv2.resize(array, size, interpolation=cv2.INTER_AREA)
